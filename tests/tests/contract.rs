//! The adapter contract (`genhook_tests::contract`) against every backend: each
//! function runs once on the memory adapters, once on SQLite, and once on DynamoDB
//! Local and the SQS emulator.

use genhook_tests::contract::{
    budget, dynamodb_store, link, memory_queue, memory_store, queue, sqlite_queue, sqlite_store, sqs_queue, store,
};

macro_rules! store_cases {
    ($fixture:ident: $($case:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $case() {
            let f = $fixture().await;
            store::$case(&*f.store).await;
        }
    )*};
}

macro_rules! link_cases {
    ($fixture:ident: $($case:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $case() {
            let f = $fixture().await;
            link::$case(&*f.store).await;
        }
    )*};
}

macro_rules! budget_cases {
    ($fixture:ident: $($case:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $case() {
            let f = $fixture().await;
            budget::$case(&*f.store).await;
        }
    )*};
}

macro_rules! queue_cases {
    ($fixture:ident: $($case:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $case() {
            queue::$case(&$fixture().await).await;
        }
    )*};
}

/// Every contract function, on one store and one queue backend.
macro_rules! contract {
    ($backend:ident, $store:ident, $queue:ident) => {
        mod $backend {
            use super::*;

            mod store_contract {
                use super::*;
                store_cases!($store:
                    claim_takes_a_free_key,
                    live_in_progress_claim_blocks,
                    expired_claim_lease_is_reclaimable,
                    enqueued_and_published_block_until_expiry,
                    body_hash_and_conflicts,
                    existing_returns_the_live_record,
                    mark_enqueued_only_own_in_progress_claim,
                    release_deletes_only_own_in_progress_claim,
                    release_never_deletes_a_leased_record,
                    acquire_work_recreates_a_missing_record,
                    acquire_work_busy_then_taken_over,
                    acquire_work_on_a_published_record,
                    acquire_work_enqueues_and_pushes_expiry,
                    claim_never_overwrites_a_live_work_lease,
                    release_work_only_by_holder,
                    mark_published_only_by_holder,
                    advance_polls_only_for_holder_from_current,
                    released_claim_survives_a_worker_lease,
                    watches_are_never_replaced,
                );
            }

            mod link_contract {
                use super::*;
                link_cases!($store:
                    link_outputs_round_trip,
                    link_outputs_of_a_missing_job_are_none,
                    link_lease_is_taken_once_then_refused_while_live,
                    link_lease_is_taken_again_after_it_expires,
                    link_put_frees_the_lease,
                    link_release_frees_only_the_holders_lease,
                    link_lease_on_a_missing_job_creates_it_without_outputs,
                    link_lease_keeps_cached_outputs,
                    link_jobs_are_independent,
                    link_job_ids_of_any_characters,
                    link_cache_refuses_what_it_cannot_hold,
                );
            }

            mod budget_contract {
                use super::*;
                budget_cases!($store:
                    budget_grants_the_limit_per_window,
                    budget_providers_are_independent,
                    budget_refuses_an_invalid_provider,
                );
            }

            mod queue_contract {
                use super::*;
                queue_cases!($queue:
                    send_receive_delete,
                    attributes_round_trip,
                    trace_attributes_round_trip,
                    receive_count_increments_per_receive,
                    visibility_timeout_hides_then_redelivers,
                    delay_retries_hides_for_the_given_time,
                    delayed_sends_are_invisible_until_due,
                    batch_sends_report_in_order,
                    dead_letter_after_max_receives,
                    depth_counts_everything_held,
                    oversized_messages_are_rejected,
                );
            }
        }
    };
}

contract!(memory, memory_store, memory_queue);
contract!(sqlite, sqlite_store, sqlite_queue);
contract!(aws, dynamodb_store, sqs_queue);

/// What the DynamoDB adapter writes for the output links' cache, beyond the contract: the
/// item's key, `kind` and TTL, and that it never writes over an item of another kind.
mod aws_link_items {
    use aws_sdk_dynamodb::types::AttributeValue;
    use genhook::adapters::dynamodb::DynamoDedupeStore;
    use genhook::adapters::provision::create_table;
    use genhook::domain::link_cache::{CachedOutputs, CachedUrl};
    use genhook::ports::link_cache::LinkCache;
    use genhook_tests::aws::aws;

    #[tokio::test]
    async fn link_cache_items_carry_their_kind_and_ttl() {
        let aws = aws().await;
        let table = genhook_tests::unique("genhook-contract");
        create_table(&aws.ddb, &table).await.expect("create table");
        let store = DynamoDedupeStore::new(aws.ddb.clone(), table.clone());
        let t0 = super::store::T0;
        let num = |item: &std::collections::HashMap<String, AttributeValue>, k: &str| -> i64 {
            item[k].as_n().unwrap().parse().unwrap()
        };

        assert!(store.lease_refresh("replicate", "j#1", "tok", t0 + 1_500, t0).await.unwrap());
        let item = aws.item(&table, "link#replicate#j#1").await.expect("the lease's item");
        assert_eq!(item["kind"].as_s().unwrap(), "link_cache");
        assert_eq!(item["lease_token"].as_s().unwrap(), "tok");
        assert_eq!(num(&item, "expires_at"), t0 / 1000 + 2, "a lease alone goes once it has ended");

        let outputs = CachedOutputs {
            outputs: vec![CachedUrl { url: "https://cdn/a.png".into(), expires_at: Some(t0 / 1000 + 60) }],
            fetched_at: t0 / 1000,
        };
        store.put_outputs("replicate", "j#1", &outputs, t0 / 1000 + 86_400).await.unwrap();
        let item = aws.item(&table, "link#replicate#j#1").await.expect("the item");
        assert_eq!(item["kind"].as_s().unwrap(), "link_cache");
        assert_eq!(num(&item, "expires_at"), t0 / 1000 + 86_400);
        assert_eq!(num(&item, "fetched_at"), t0 / 1000);
        assert!(!item.contains_key("lease_token") && !item.contains_key("lease_until_ms"), "the put freed the lease");
        assert_eq!(
            item["outputs"].as_s().unwrap(),
            &format!(r#"[{{"url":"https://cdn/a.png","expires_at":{}}}]"#, t0 / 1000 + 60)
        );
        assert!(store.lease_refresh("replicate", "j#1", "tok2", t0 + 1_000, t0).await.unwrap());
        let item = aws.item(&table, "link#replicate#j#1").await.expect("the item");
        assert_eq!(num(&item, "expires_at"), t0 / 1000 + 86_400, "a lease keeps the item's TTL");

        // An item of another kind under a link key (a provider called "link") is left alone.
        aws.ddb
            .put_item()
            .table_name(&table)
            .item("pk", AttributeValue::S("link#p#j".into()))
            .item("status", AttributeValue::S("ENQUEUED".into()))
            .send()
            .await
            .unwrap();
        assert!(store.put_outputs("p", "j", &outputs, t0 / 1000).await.is_err());
        assert!(!store.lease_refresh("p", "j", "tok", t0 + 1_000, t0).await.unwrap());
        assert_eq!(store.get_outputs("p", "j").await.unwrap(), None);
        let item = aws.item(&table, "link#p#j").await.expect("the other item");
        assert_eq!((item.len(), item["status"].as_s().unwrap().as_str()), (2, "ENQUEUED"));
    }
}

/// What the SQS adapter does for FIFO queues, beyond the contract: any group (a provider
/// and job id of any length) and any deduplication id is sent as one SQS accepts (at most
/// 128 characters it allows), and messages of one group keep their order.
mod aws_fifo {
    use aws_sdk_sqs::types::QueueAttributeName;
    use genhook::adapters::sqs::SqsQueue;
    use genhook::ports::{OutgoingMessage, Queue};
    use genhook_tests::aws::aws;

    #[tokio::test]
    async fn any_group_and_deduplication_id_is_sent() {
        let aws = aws().await;
        let name = format!("{}.fifo", genhook_tests::unique("genhook-fifo"));
        let url = aws
            .sqs
            .create_queue()
            .queue_name(&name)
            .attributes(QueueAttributeName::FifoQueue, "true")
            .send()
            .await
            .expect("create the FIFO queue")
            .queue_url
            .expect("its URL");
        let queue = SqsQueue::new(aws.sqs.clone(), url.clone());
        let long_job = "j".repeat(300);
        let message = |body: &str, group: String, dedup: String| OutgoingMessage {
            body: body.into(),
            attributes: Vec::new(),
            group_id: Some(group),
            dedup_id: Some(dedup),
            delay: None,
        };
        let sent = queue
            .send_batch(vec![
                message("first", format!("katalo#{long_job}"), format!("evt_{long_job}")),
                message("second", format!("katalo#{long_job}"), "evt with spaces é".into()),
                message("third", "katalo#short".into(), "evt_short".into()),
            ])
            .await;
        assert!(sent.iter().all(Result::is_ok), "{sent:?}");
        assert!(queue.send(message("fourth", format!("replicate#{long_job}"), long_job.clone())).await.is_ok());
        let bodies: Vec<String> = aws.receive_all(&url).await.into_iter().filter_map(|m| m.body).collect();
        let first = bodies.iter().position(|b| b == "first");
        let second = bodies.iter().position(|b| b == "second");
        assert!(first.is_some() && second.is_some() && first < second, "one group keeps its order: {bodies:?}");
        assert_eq!(bodies.len(), 4, "{bodies:?}");
    }
}
