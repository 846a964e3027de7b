//! The provider port: what the provider-agnostic receiver and worker ask of a provider.
//!
//! A provider is one folder under `crate::providers` with one [`Provider`] (registered
//! in `crate::providers::ALL`), which builds from configuration:
//! - a [`WebhookSource`]: its routes, its authentication (signature, capability token,
//!   handshake) and the parsing of a delivery into a dedupe key and an inbox message;
//! - a [`Reconciler`]: the inbox messages it sent, turned into the key to publish under
//!   and a [`Reconciliation`] that reads the job from the provider's API, decides whether
//!   it is ready, and maps it to the normalized event.
//!
//! The receiver does the rest (size limit, JSON depth, the dedupe claim, the inbox send,
//! every HTTP answer); the worker does the batch mechanics (lease, publish in batches,
//! retry with backoff, dead letters, poll chains, the invocation deadline, URL freshness).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http::HeaderMap;
use serde_json::Value;
use time::OffsetDateTime;

use super::budget::ReadBudget;
use super::env::{ConfigError, Env};
use super::{JobApi, JobApiError, MAX_DELAY, OutgoingMessage, WatchStore};
use crate::domain::abandon::{Abandonment, GiveUp};
use crate::domain::backoff::Backoff;
use crate::domain::clock::Clock;
use crate::domain::event::NormalizedEvent;
use crate::domain::job::Job;

/// What every provider's pieces may be built with, besides its own variables.
#[derive(Clone)]
pub struct Deps {
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Task watches (in the dedupe table), for providers that register tasks.
    pub watches: Arc<dyn WatchStore>,
    /// The longest one provider API call may take (`GENHOOK_HTTP_TIMEOUT_SECS`).
    pub http_timeout: Duration,
    /// Where the providers' read budgets are counted across functions and instances;
    /// `None`: each instance's own rate limit only.
    pub budget: Option<Arc<dyn ReadBudget>>,
}

/// A provider, as registered: static facts plus the factories of its two halves.
pub trait Provider: Sync {
    /// The name in dedupe keys, inbox message types (`<name>.<kind>`) and events.
    fn name(&self) -> &'static str;

    /// Whether a request path is one of this provider's routes (whether or not the
    /// provider is configured).
    fn route(&self, path: &str) -> RouteMatch;

    /// The 404 message for this provider's routes when its receiving side is off (names
    /// the variable that turns it on).
    fn receive_hint(&self) -> &'static str;

    /// The dead-letter reason for its messages when its API is not configured (names the
    /// variable).
    fn reconcile_hint(&self) -> &'static str;

    /// The variables its receiving side reads that hold secrets (webhook signing keys):
    /// a deployment may keep them in a stored secret instead of the environment.
    fn receive_secrets(&self) -> &'static [&'static str];

    /// The variables its API clients read that hold secrets (API keys).
    fn api_secrets(&self) -> &'static [&'static str];

    /// The variable naming the hosts it serves output files from
    /// (`<NAME>_OUTPUT_HOSTS`), and the hosts when it is unset: only `https` URLs on
    /// them are published or redirected to ([`crate::toolkit::http::output_hosts`]).
    fn output_hosts(&self) -> (&'static str, &'static [&'static str]);

    /// The receiving side from `env`; `Ok(None)` when its variables are unset.
    fn source(&self, env: &Env) -> Result<Option<Arc<dyn WebhookSource>>, ConfigError>;

    /// Its job API client from `env` (rate-limited, as the worker and the output links
    /// share it); `Ok(None)` when its API is not configured.
    fn jobs(&self, env: &Env, deps: &Deps) -> Result<Option<Arc<dyn JobApi>>, ConfigError>;

    /// The reconciling side from `env`, reading jobs through [`Self::jobs`]; `Ok(None)`
    /// when its API is not configured.
    fn reconciler(&self, env: &Env, deps: &Deps) -> Result<Option<Arc<dyn Reconciler>>, ConfigError>;
}

/// How a request path relates to a provider's routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteMatch {
    /// Not this provider's.
    NotMine,
    /// One of its routes.
    Mine,
    /// Under its prefix, but naming nothing (answered 404 with this message).
    Unknown(&'static str),
}

/// One HTTP delivery, as the receiver hands it to a source (after the size check).
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// The path, without a trailing slash (and without the front end's stage).
    pub path: &'a str,
    /// The path exactly as the sender addressed it, stage included: what a signature
    /// over the URL's path (Vidu's) covers.
    pub sent_path: &'a str,
    /// The raw query string, if any.
    pub query: Option<&'a str>,
    /// The request headers.
    pub headers: &'a HeaderMap,
    /// The exact raw body bytes (verify signatures over these).
    pub body: &'a [u8],
    /// When it arrived.
    pub now: OffsetDateTime,
    /// `now` as RFC 3339 ([`crate::domain::clock::rfc3339`]), formatted once per delivery
    /// for the message and the dedupe record.
    pub received_at: &'a str,
}

/// What a source made of an authentic delivery.
#[derive(Debug, Clone, PartialEq)]
pub enum Intake {
    /// Claim `key` and put the message on the inbox; acknowledge once queued.
    Enqueue(Enqueue),
    /// Answer 200 with this JSON at once, storing and queueing nothing (a handshake).
    Reply(Value),
}

/// A delivery to claim and enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct Enqueue {
    /// The dedupe key (`<provider>#<id>#<kind>`), also the message group.
    pub key: String,
    /// The inbox message (JSON text with `type` and `dedupe_key`; see
    /// [`crate::domain::inbox`]).
    pub message: String,
    /// Message attributes, `provider` first.
    pub attributes: Vec<(String, String)>,
    /// The HMAC-SHA256 of the raw body the source verified it with, when that MAC is
    /// the same on every retry of the body (a plain body signature, not one over a
    /// timestamp): the dedupe record's body digest, so the body is not hashed again.
    /// `None`: the receiver hashes the body.
    pub body_mac: Option<[u8; 32]>,
}

impl Enqueue {
    /// The size SQS counts against its limit: the body, and each attribute's name, data
    /// type (`String`) and value.
    pub fn queued_bytes(&self) -> usize {
        let attributes: usize =
            self.attributes.iter().map(|(n, v)| n.len().saturating_add(v.len()).saturating_add("String".len())).sum();
        self.message.len().saturating_add(attributes)
    }
}

/// Why a source refused a delivery; the receiver answers with the status and logs the
/// detail (the caller learns nothing about a failed check beyond its kind).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// 401 `invalid_signature` / `invalid_token`.
    #[error("{what}: {detail}")]
    Unauthenticated {
        /// The error code (`invalid_signature`, `invalid_token`).
        code: &'static str,
        /// The answer's message.
        message: &'static str,
        /// What was checked, for the log (`signature`, `callback token`).
        what: &'static str,
        /// Why it failed, for the log only.
        detail: String,
    },
    /// 400 `invalid_payload`, with the reason in the answer.
    #[error("payload: {0}")]
    Invalid(String),
    /// 404 with this message.
    #[error("not found: {0}")]
    NotFound(String),
}

/// The receiving half of a provider.
pub trait WebhookSource: Send + Sync {
    /// The provider's name.
    fn provider(&self) -> &'static str;

    /// Whether a path is one of this source's routes.
    fn route(&self, path: &str) -> RouteMatch;

    /// The upstream one of its routes serves, for an aggregator's (the `upstream`
    /// dimension of the receiver's metrics); `None` by default.
    fn upstream(&self, _path: &str) -> Option<&'static str> {
        None
    }

    /// The top-level fields of its deliveries' bodies the event may need and the
    /// provider's API may not give back: a delivery too large for its inbox message is
    /// queued thin ([`crate::domain::inbox::thin_message`]) with these, bounded, as its
    /// payload. None by default (the API gives back everything).
    fn hints(&self) -> &'static [&'static str] {
        &[]
    }

    /// Authenticates a delivery to one of its routes and parses it (POST only; the body is
    /// within the size limit). Verify over `delivery.body` before parsing anything.
    fn intake(&self, delivery: &Delivery<'_>) -> Result<Intake, Refusal>;
}

/// What the worker knows when it hands a message to a reconciler.
#[derive(Debug, Clone, Copy)]
pub struct WorkContext {
    /// This attempt's number (1-based): the message's receives, plus the attempts of the
    /// copies sent before it while the record waited.
    pub attempt: u32,
    /// Now.
    pub now: OffsetDateTime,
    /// The worker's retry delays (for retries and poll schedules).
    pub backoff: Backoff,
    /// The key's poll chain position under the worker lease (0 before the lease).
    pub poll_seq: u32,
}

impl WorkContext {
    /// The backoff delay for this attempt.
    pub fn retry_delay(&self) -> Duration {
        self.backoff.delay(self.attempt)
    }

    /// The chain position a message that reschedules itself continues from: a poll
    /// continues from its own number; a message that starts polling (poll 0: a webhook
    /// or a registration) takes the chain over from where the key's chain is, so the
    /// chain another message started on the same key (a watch, an earlier webhook) ends
    /// at its next poll and exactly one chain lives on.
    pub fn chain_from(&self, polls: u32) -> u32 {
        if polls == 0 { self.poll_seq } else { polls }
    }

    /// The next poll of `what` (`job J`, `task T`…), still `status`, from a message that
    /// has made `polls` polls: giving up on the job once `horizon_at` (epoch s) has
    /// passed, else the message `next` builds for the next poll number and its delay (the
    /// backoff's, at most SQS's 15 minutes), continuing the key's chain.
    pub fn next_poll(
        &self,
        what: &str,
        status: &str,
        polls: u32,
        horizon_at: i64,
        next: impl FnOnce(u32, Duration) -> OutgoingMessage,
    ) -> Step {
        if self.now.unix_timestamp() >= horizon_at {
            return Step::GiveUp(Abandonment {
                why: GiveUp::HorizonPassed,
                detail: format!("polling horizon passed; {what} is still {status}"),
                provider_status: Some(status.to_string()),
            });
        }
        let from = self.chain_from(polls);
        let polls = from.saturating_add(1);
        let delay = self.backoff.delay(polls).min(MAX_DELAY);
        Step::Reschedule {
            message: Box::new(next(polls, delay)),
            from,
            reason: format!("{what} is still {status}; poll {} in {} s", polls.saturating_add(1), delay.as_secs()),
        }
    }
}

/// What a reconciler asks the worker to do instead of publishing.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Nothing to publish for this message (e.g. a progress callback): done.
    Skip {
        /// Why, for the log.
        reason: String,
    },
    /// Try the message again after `delay`.
    Retry {
        /// How long to hide it.
        delay: Duration,
        /// Why.
        reason: String,
    },
    /// It can never succeed: dead-letter it with the reason.
    Dead {
        /// Why.
        reason: String,
    },
    /// Give up on the job: dead-letter the message with the detail, and publish the
    /// job's `generation.abandoned` event ([`Reconciliation::abandoned`]).
    GiveUp(Abandonment),
    /// Done with this message once these go to the inbox (a sweep's watches and its next
    /// page); sent again, whole, if any is not taken (each is idempotent).
    Fanout {
        /// The messages to send.
        messages: Vec<OutgoingMessage>,
        /// What was done, for the log.
        reason: String,
    },
    /// Done with this message; send `message` (delayed: the next poll) to the inbox if
    /// this message, poll number `from`, is where the record's poll chain stands.
    Reschedule {
        /// The follow-up (boxed: it is much larger than the other steps).
        message: Box<OutgoingMessage>,
        /// This message's poll number.
        from: u32,
        /// Why, for the log.
        reason: String,
    },
}

impl Step {
    /// A provider's inbox message read from its raw body; a body that is not one can
    /// never be worked, so it is dead-lettered as malformed.
    pub fn parse_message<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, Step> {
        serde_json::from_str(body).map_err(|e| Step::Dead { reason: format!("malformed inbox message: {e}") })
    }
}

/// The reconciling half of a provider: takes the inbox messages whose `type` starts
/// with `<provider>.`.
#[async_trait]
pub trait Reconciler: Send + Sync {
    /// The provider's name.
    fn provider(&self) -> &'static str;

    /// The upstreams this provider runs jobs on, by the names its events carry in
    /// `upstream` (an aggregator's: APIMP's Kling, Doubao…); empty for a provider that
    /// runs its own. The metrics' `upstream` dimension takes only these, so it stays
    /// bounded whatever an event says.
    fn upstreams(&self) -> &'static [&'static str] {
        &[]
    }

    /// Parses a message (the raw inbox body) and does what must precede the lease (e.g.
    /// recording a registration, resolving a callback to its task); returns what to
    /// reconcile under the lease, or the step to take instead.
    async fn prepare(&self, body: &str, cx: &WorkContext) -> Result<Box<dyn Reconciliation>, Step>;
}

/// One message's reconciliation, done under the worker's lease on [`Self::key`].
#[async_trait]
pub trait Reconciliation: Send + Sync {
    /// The dedupe key the event is published under (leased by the worker).
    fn key(&self) -> &str;

    /// Reads the job from the provider's API (freshly signed URLs each time).
    async fn read(&self) -> Result<Job, JobApiError>;

    /// Whether the job as read can be published: `None` when it can (the worker then
    /// checks that its URLs live long enough), or the step to take instead (e.g. the
    /// next poll of a job still running).
    fn assess(&self, job: &Job, cx: &WorkContext) -> Option<Step>;

    /// The normalized event for a publishable job.
    fn event(&self, job: Job, now: OffsetDateTime) -> NormalizedEvent;

    /// The `generation.abandoned` event when the worker gives up on the job
    /// ([`NormalizedEvent::abandoned`], with what the provider adds); `None` (the
    /// default) for a message that is not about one job's outcome (a refresh), which is
    /// only dead-lettered.
    fn abandoned(&self, _abandonment: &Abandonment, _now: OffsetDateTime) -> Option<NormalizedEvent> {
        None
    }
}
