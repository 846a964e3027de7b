//! [`DedupeStore`] on DynamoDB: one item per dedupe key, partition key `pk`, TTL on
//! `expires_at`. Every transition is a conditional write, so concurrent receivers and
//! workers never step on each other.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

use crate::domain::budget::{BUDGET_KIND, WINDOW_RETENTION_SECS, budget_key};
use crate::domain::dedupe::{Claim, ClaimOutcome, DedupeRecord, LeaseOutcome, RecordStatus, WorkLease};
use crate::domain::link_cache::CachedOutputs;
use crate::domain::watch::Watch;
use crate::ports::budget::ReadBudget;
use crate::ports::link_cache::LinkCache;
use crate::ports::link_cache::{encode_cached_outputs, lease_item_expiry, link_cache_key};
use crate::ports::{DedupeStore, StoreError, WatchStore};

type Item = HashMap<String, AttributeValue>;

/// The attribute holding a record's body digest ([`DedupeRecord::body_digest`]); it keeps
/// the name it had when the digest was always a SHA-256, so existing tables read on.
const BODY_DIGEST_ATTRIBUTE: &str = "body_sha256";

/// The dedupe table.
#[derive(Debug, Clone)]
pub struct DynamoDedupeStore {
    client: Client,
    table: String,
}

impl DynamoDedupeStore {
    /// An `UpdateItem` of the item under `key` in this table.
    fn update(
        &self,
        key: impl Into<String>,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client.update_item().table_name(&self.table).key("pk", s(key))
    }

    /// A store on `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// The item at `pk`, read strongly consistent.
    async fn get_item(&self, pk: String) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| err("GetItem", e))?;
        Ok(out.item)
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: i64) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn err<E: ProvideErrorMetadata + std::error::Error + 'static>(op: &str, e: SdkError<E>) -> StoreError {
    let detail = match e.as_service_error() {
        Some(se) => format!("{}: {}", se.code().unwrap_or("ServiceError"), se.message().unwrap_or_default()),
        None => aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string(),
    };
    StoreError(format!("{op}: {detail}"))
}

/// Reads a record from an item; `None` if the item is not a dedupe record.
fn record(item: &Item) -> Option<DedupeRecord> {
    let st = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
    let num = |k: &str| item.get(k).and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<i64>().ok());
    Some(DedupeRecord {
        key: st("pk")?,
        status: RecordStatus::parse(&st("status")?)?,
        claim_id: st("claim_id").unwrap_or_default(),
        lease_until_ms: num("lease_until_ms").unwrap_or(0),
        // An item without an expiry counts as expired: no key is ever blocked forever.
        expires_at: num("expires_at").unwrap_or(0),
        body_digest: st(BODY_DIGEST_ATTRIBUTE).unwrap_or_default(),
        received_at: st("received_at").unwrap_or_default(),
        conflicts: num("conflicts").unwrap_or(0),
        work_lease_until_ms: num("work_lease_until_ms"),
        work_token: st("work_token"),
        event_id: st("event_id"),
        last_error: st("last_error"),
        poll_seq: num("poll_seq").and_then(|n| u32::try_from(n).ok()).unwrap_or(0),
    })
}

fn is_ccf<E: ProvideErrorMetadata>(e: &SdkError<E>) -> bool {
    e.as_service_error().and_then(|se| se.code()) == Some("ConditionalCheckFailedException")
}

/// A conditional write's result: `true` if written, `false` if its condition failed.
fn written<T, E: ProvideErrorMetadata + std::error::Error + 'static>(
    op: &str,
    result: Result<T, SdkError<E>>,
) -> Result<bool, StoreError> {
    match result {
        Ok(_) => Ok(true),
        Err(e) if is_ccf(&e) => Ok(false),
        Err(e) => Err(err(op, e)),
    }
}

#[async_trait]
impl DedupeStore for DynamoDedupeStore {
    async fn claim(&self, claim: &Claim, now_ms: i64) -> Result<ClaimOutcome, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(&claim.key))
            .item("status", s(RecordStatus::InProgress.as_str()))
            .item("claim_id", s(&claim.claim_id))
            .item("lease_until_ms", n(claim.lease_until_ms))
            .item("expires_at", n(claim.expires_at))
            .item(BODY_DIGEST_ATTRIBUTE, s(&claim.body_digest))
            .item("received_at", s(&claim.received_at))
            // The same rule as DedupeRecord::is_claimable (Powertools' condition, plus: a
            // record a worker has leased belongs to the worker).
            .condition_expression(
                "attribute_not_exists(pk) OR ((attribute_not_exists(work_lease_until_ms) \
                 OR work_lease_until_ms < :now_ms) AND (expires_at < :now_s \
                 OR (#status = :in_progress AND lease_until_ms < :now_ms AND attribute_not_exists(work_token))))",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":now_s", n(now_ms / 1000))
            .expression_attribute_values(":now_ms", n(now_ms))
            .expression_attribute_values(":in_progress", s(RecordStatus::InProgress.as_str()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(ClaimOutcome::Claimed),
            Err(e) if is_ccf(&e) => {
                let old = e.as_service_error().and_then(|se| match se {
                    aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(c) => {
                        c.item().and_then(record)
                    }
                    _ => None,
                });
                match old {
                    Some(r) => Ok(ClaimOutcome::Existing(Box::new(r))),
                    // Older emulators omit the item: read it (consistently) instead.
                    None => match self.get(&claim.key).await? {
                        Some(r) => Ok(ClaimOutcome::Existing(Box::new(r))),
                        None => Err(StoreError("claim refused but no record found; retry".into())),
                    },
                }
            }
            Err(e) => Err(err("PutItem", e)),
        }
    }

    async fn mark_enqueued(&self, key: &str, claim_id: &str) -> Result<bool, StoreError> {
        let result = self
            .update(key)
            .update_expression("SET #status = :enqueued")
            .condition_expression("claim_id = :claim AND #status = :in_progress")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":enqueued", s(RecordStatus::Enqueued.as_str()))
            .expression_attribute_values(":in_progress", s(RecordStatus::InProgress.as_str()))
            .expression_attribute_values(":claim", s(claim_id))
            .send()
            .await;
        written("UpdateItem", result)
    }

    async fn release(&self, key: &str, claim_id: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(key))
            // DedupeRecord::is_releasable_by: never a record a worker has leased.
            .condition_expression("claim_id = :claim AND #status = :in_progress AND attribute_not_exists(work_token)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":in_progress", s(RecordStatus::InProgress.as_str()))
            .expression_attribute_values(":claim", s(claim_id))
            .send()
            .await;
        written("DeleteItem", result).map(drop)
    }

    async fn note_conflict(&self, key: &str) -> Result<(), StoreError> {
        let result = self
            .update(key)
            .update_expression("ADD conflicts :one")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(":one", n(1))
            .send()
            .await;
        written("UpdateItem", result).map(drop)
    }

    async fn get(&self, key: &str) -> Result<Option<DedupeRecord>, StoreError> {
        Ok(self.get_item(key.to_string()).await?.as_ref().and_then(record))
    }

    async fn acquire_work(&self, lease: &WorkLease, now_ms: i64) -> Result<LeaseOutcome, StoreError> {
        let result = self
            .update(&lease.key)
            // The message is in the inbox (IN_PROGRESS becomes ENQUEUED), and the record
            // lives a full TTL from now.
            .update_expression(
                "SET work_lease_until_ms = :until, work_token = :token, #status = :enqueued, expires_at = :exp, \
                 received_at = if_not_exists(received_at, :received)",
            )
            // The same rule as DedupeRecord::is_workable; a missing record is recreated.
            .condition_expression(
                "attribute_not_exists(pk) OR (#status <> :published \
                 AND (attribute_not_exists(work_lease_until_ms) OR work_lease_until_ms < :now_ms))",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":until", n(lease.until_ms))
            .expression_attribute_values(":token", s(&lease.token))
            .expression_attribute_values(":enqueued", s(RecordStatus::Enqueued.as_str()))
            .expression_attribute_values(":published", s(RecordStatus::Published.as_str()))
            .expression_attribute_values(":exp", n(lease.expires_at))
            .expression_attribute_values(":received", s(&lease.received_at))
            .expression_attribute_values(":now_ms", n(now_ms))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => {
                Ok(LeaseOutcome::Acquired { poll_seq: out.attributes().and_then(record).map_or(0, |r| r.poll_seq) })
            }
            Err(e) if is_ccf(&e) => {
                let old = match e.as_service_error() {
                    Some(
                        aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(c),
                    ) => c.item().and_then(record),
                    _ => None,
                };
                let old = match old {
                    Some(r) => Some(r),
                    None => self.get(&lease.key).await?,
                };
                Ok(match old {
                    Some(r) if r.status == RecordStatus::Published => LeaseOutcome::AlreadyPublished,
                    Some(r) => LeaseOutcome::Busy { until_ms: r.work_lease_until_ms.unwrap_or(now_ms) },
                    None => LeaseOutcome::Busy { until_ms: now_ms },
                })
            }
            Err(e) => Err(err("UpdateItem", e)),
        }
    }

    async fn release_work(&self, key: &str, token: &str, reason: &str) -> Result<(), StoreError> {
        let result = self
            .update(key)
            .update_expression("SET last_error = :reason REMOVE work_lease_until_ms, work_token")
            .condition_expression("work_token = :token")
            .expression_attribute_values(":token", s(token))
            .expression_attribute_values(":reason", s(reason))
            .send()
            .await;
        written("UpdateItem", result).map(drop)
    }

    async fn mark_published(
        &self,
        key: &str,
        token: &str,
        event_id: &str,
        published_at: &str,
    ) -> Result<bool, StoreError> {
        let result = self
            .update(key)
            .update_expression(
                "SET #status = :published, event_id = :event_id, published_at = :at \
                 REMOVE work_lease_until_ms, work_token, last_error",
            )
            // Only the lease holder, and never a new item (it would have no expiry).
            .condition_expression("attribute_exists(pk) AND work_token = :token")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":published", s(RecordStatus::Published.as_str()))
            .expression_attribute_values(":event_id", s(event_id))
            .expression_attribute_values(":at", s(published_at))
            .expression_attribute_values(":token", s(token))
            .send()
            .await;
        written("UpdateItem", result)
    }

    async fn advance_polls(&self, key: &str, token: &str, from: u32) -> Result<bool, StoreError> {
        let result = self
            .update(key)
            .update_expression("SET poll_seq = :to")
            .condition_expression(
                "attribute_exists(pk) AND work_token = :token \
                 AND (poll_seq = :from OR (attribute_not_exists(poll_seq) AND :from = :zero))",
            )
            .expression_attribute_values(":token", s(token))
            .expression_attribute_values(":from", n(i64::from(from)))
            .expression_attribute_values(":to", n(i64::from(from).saturating_add(1)))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        written("UpdateItem", result)
    }
}

/// How long a watch item outlives its polling horizon before TTL removes it.
const WATCH_GRACE_SECS: i64 = 7 * 24 * 60 * 60;

fn watch_pk(reference: &str) -> String {
    format!("apimp-watch#{reference}")
}

#[async_trait]
impl WatchStore for DynamoDedupeStore {
    async fn put_watch(&self, watch: &Watch) -> Result<Watch, StoreError> {
        let mut req = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(watch_pk(&watch.reference)))
            .item("kind", s("apimp_watch"))
            .item("reference", s(&watch.reference))
            .item("task_id", s(&watch.task_id))
            .item("registered_at", s(&watch.registered_at))
            .item("horizon_at", n(watch.horizon_at))
            .item("expires_at", n(watch.horizon_at.saturating_add(WATCH_GRACE_SECS)));
        if let Some(u) = &watch.upstream {
            req = req.item("upstream", s(u));
        }
        // A registration never replaces another: the first one for a reference stands.
        let result = req.condition_expression("attribute_not_exists(pk)").send().await;
        match result {
            Ok(_) => Ok(watch.clone()),
            Err(e) if is_ccf(&e) => self
                .get_watch(&watch.reference)
                .await?
                .ok_or_else(|| StoreError(format!("watch {} refused but not found; retry", watch.reference))),
            Err(e) => Err(err("PutItem", e)),
        }
    }

    async fn get_watch(&self, reference: &str) -> Result<Option<Watch>, StoreError> {
        let Some(item) = self.get_item(watch_pk(reference)).await? else { return Ok(None) };
        let st = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned();
        Ok(Some(Watch {
            reference: reference.to_string(),
            task_id: st("task_id").ok_or_else(|| StoreError(format!("watch {reference} has no task_id")))?,
            upstream: st("upstream"),
            registered_at: st("registered_at").unwrap_or_default(),
            horizon_at: item.get("horizon_at").and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap_or(0),
        }))
    }
}

/// The `kind` of output-link cache items.
const LINK_CACHE_KIND: &str = "link_cache";

/// The cached outputs in an item; `None` unless it is a link cache item holding outputs
/// that read back.
fn cached_outputs(item: &Item) -> Option<CachedOutputs> {
    if item.get("kind").and_then(|v| v.as_s().ok()).map(String::as_str) != Some(LINK_CACHE_KIND) {
        return None;
    }
    let json = item.get("outputs").and_then(|v| v.as_s().ok())?;
    let fetched_at = item.get("fetched_at").and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<i64>().ok())?;
    CachedOutputs::decode_outputs(json, fetched_at)
}

/// Output-link cache items share the table: `link#<provider>#<job_id>`, `kind` =
/// `link_cache`, the outputs as a JSON string, TTL on `expires_at`. Neither write ever
/// touches an item of another kind.
#[async_trait]
impl ReadBudget for DynamoDedupeStore {
    async fn take_read(&self, provider: &str, window_s: i64, limit: u32) -> Result<bool, StoreError> {
        let key =
            budget_key(provider, window_s).ok_or_else(|| StoreError(format!("invalid provider name {provider:?}")))?;
        if limit == 0 {
            return Ok(false);
        }
        // One conditional increment: a window's item counts its reads, and the table's
        // TTL removes it after the window.
        let result = self
            .update(key)
            .update_expression("SET kind = :kind, expires_at = :exp ADD read_count :one")
            .condition_expression("attribute_not_exists(read_count) OR read_count < :limit")
            .expression_attribute_values(":kind", s(BUDGET_KIND))
            .expression_attribute_values(":exp", n(window_s.saturating_add(WINDOW_RETENTION_SECS)))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":limit", n(i64::from(limit)))
            .send()
            .await;
        written("UpdateItem", result)
    }
}

#[async_trait]
impl LinkCache for DynamoDedupeStore {
    async fn get_outputs(&self, provider: &str, job_id: &str) -> Result<Option<CachedOutputs>, StoreError> {
        let key = link_cache_key(provider, job_id)?;
        Ok(self.get_item(key).await?.as_ref().and_then(cached_outputs))
    }

    async fn put_outputs(
        &self,
        provider: &str,
        job_id: &str,
        outputs: &CachedOutputs,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let key = link_cache_key(provider, job_id)?;
        let json = encode_cached_outputs(outputs)?;
        // A whole new item: the outputs replace the old ones and the lease attributes go.
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(key))
            .item("kind", s(LINK_CACHE_KIND))
            .item("outputs", s(json))
            .item("fetched_at", n(outputs.fetched_at))
            .item("expires_at", n(expires_at))
            .condition_expression("attribute_not_exists(pk) OR kind = :kind")
            .expression_attribute_values(":kind", s(LINK_CACHE_KIND))
            .send()
            .await;
        if written("PutItem", result)? {
            Ok(())
        } else {
            Err(StoreError(format!("link cache: the item of a {}-byte job id is not a link cache item", job_id.len())))
        }
    }

    async fn lease_refresh(
        &self,
        provider: &str,
        job_id: &str,
        token: &str,
        until_ms: i64,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let key = link_cache_key(provider, job_id)?;
        let result = self
            .update(key)
            // Cached outputs stay; an item the lease creates goes once the lease has ended.
            .update_expression(
                "SET kind = :kind, lease_token = :token, lease_until_ms = :until, \
                 expires_at = if_not_exists(expires_at, :exp)",
            )
            .condition_expression(
                "(attribute_not_exists(pk) OR kind = :kind) \
                 AND (attribute_not_exists(lease_until_ms) OR lease_until_ms < :now_ms)",
            )
            .expression_attribute_values(":kind", s(LINK_CACHE_KIND))
            .expression_attribute_values(":token", s(token))
            .expression_attribute_values(":until", n(until_ms))
            .expression_attribute_values(":exp", n(lease_item_expiry(until_ms)))
            .expression_attribute_values(":now_ms", n(now_ms))
            .send()
            .await;
        written("UpdateItem", result)
    }

    async fn release_refresh(&self, provider: &str, job_id: &str, token: &str) -> Result<(), StoreError> {
        let key = link_cache_key(provider, job_id)?;
        let result = self
            .update(key)
            .update_expression("REMOVE lease_token, lease_until_ms")
            .condition_expression("kind = :kind AND lease_token = :token")
            .expression_attribute_values(":kind", s(LINK_CACHE_KIND))
            .expression_attribute_values(":token", s(token))
            .send()
            .await;
        // Not ours (taken over after it ended, or already freed): nothing to do.
        written("UpdateItem", result).map(drop)
    }
}
