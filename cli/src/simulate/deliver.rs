//! The webhook delivery engine: creates jobs in the simulator, waits for each to finish,
//! and POSTs its signed webhook the way the provider does (at-least-once, retried with
//! bounded exponential backoff; see [`retry`](super::retry) for which answers are
//! retried). Katalo signs the body (`x-katalo-signature`); Replicate signs each attempt
//! per Standard Webhooks (the same `webhook-id` on every attempt and copy of a message, a
//! fresh `webhook-timestamp`), and also sends each prediction's `starting` webhook, which
//! it never retries.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::Rng;
use rand::seq::SliceRandom;
use serde_json::json;

use genhook::toolkit::auth::standard_webhooks::Secret;

use super::api::KataloSimulator;
use super::jobs::{JobOutcome, JobSpec, random_hex};
use super::replicate::{Prediction, message_id, prediction_id};
use super::retry::{Backoff, Verdict, judge};
use super::summary::{End, Kind, Outcome, Summary};
use super::{Provider, SimulateError};

/// How [`deliver`] sends webhooks.
#[derive(Clone, PartialEq)]
pub struct DeliveryOptions {
    /// Whose webhooks to send.
    pub provider: Provider,
    /// The receiver's webhook URL (http or https).
    pub url: String,
    /// The webhook signing secret (never printed).
    pub secret: String,
    /// Jobs to create; each gets one webhook.
    pub jobs: u32,
    /// Fraction (0–1) of jobs that end `failed` (`generation.failed`); for Replicate,
    /// every second of them ends `canceled` instead.
    pub fail_rate: f64,
    /// Fraction (0–1) of jobs whose webhook is sent twice (same bytes).
    pub duplicate_rate: f64,
    /// Extra deliveries signed with a wrong secret; a correct receiver answers 401.
    pub forged: u32,
    /// Shuffle the order deliveries are dispatched in (else job order, each duplicate
    /// right after its original; forged deliveries go at random places either way).
    pub reorder: bool,
    /// Each delivery first waits a random time up to this.
    pub max_delay: Duration,
    /// HTTP attempts per delivery, the first included (at least one).
    ///
    /// Katalo's docs only say "transient delivery failures are retried with bounded
    /// exponential backoff". Read as transient, and retried: no answer (connection error,
    /// timeout), `408`, `429` and `5xx`. Final: `2xx` (acknowledged) and every other
    /// status (rejected, e.g. `401` for a bad signature, `400` for an unusable body).
    ///
    /// Replicate retries only a prediction's final webhook, on no answer, `4xx` or `5xx`;
    /// its `starting` webhooks (and forged deliveries) get one attempt.
    pub max_attempts: u32,
    /// First retry delay; it doubles per retry, capped at 32 × this, with jitter.
    pub retry_base: Duration,
    /// Deliveries in flight at once (at least one).
    pub concurrency: usize,
    /// Show a progress bar on stderr (it hides itself when stderr is not a terminal).
    pub progress: bool,
}

/// The less common delivery settings, for [`deliver_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pacing {
    /// Shortest simulated job run time.
    pub runs_for_min: Duration,
    /// Longest simulated job run time.
    pub runs_for_max: Duration,
    /// Timeout of each HTTP attempt.
    pub timeout: Duration,
}

impl Default for Pacing {
    /// Jobs run 200–1500 ms; each attempt times out after 10 s.
    fn default() -> Self {
        Self {
            runs_for_min: Duration::from_millis(200),
            runs_for_max: Duration::from_millis(1500),
            timeout: Duration::from_secs(10),
        }
    }
}

impl Pacing {
    /// Checks the settings, saying which one is wrong and how.
    pub fn validate(&self) -> Result<(), SimulateError> {
        if self.runs_for_min > self.runs_for_max {
            return Err(SimulateError::invalid("job run time", "the minimum must not exceed the maximum"));
        }
        if self.timeout.is_zero() {
            return Err(SimulateError::invalid("timeout", "must be more than zero"));
        }
        Ok(())
    }
}

impl Default for DeliveryOptions {
    /// The `genhook simulate` defaults, with an empty URL and secret to fill in.
    fn default() -> Self {
        Self {
            provider: Provider::Katalo,
            url: String::new(),
            secret: String::new(),
            jobs: 10,
            fail_rate: 0.1,
            duplicate_rate: 0.2,
            forged: 0,
            reorder: false,
            max_delay: Duration::ZERO,
            max_attempts: 6,
            retry_base: Duration::from_millis(250),
            concurrency: 8,
            progress: true,
        }
    }
}

impl std::fmt::Debug for DeliveryOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryOptions")
            .field("provider", &self.provider)
            .field("url", &genhook::toolkit::http::redact::redact(&self.url))
            .field("secret", &"<redacted>")
            .field("jobs", &self.jobs)
            .field("fail_rate", &self.fail_rate)
            .field("duplicate_rate", &self.duplicate_rate)
            .field("forged", &self.forged)
            .field("reorder", &self.reorder)
            .field("max_delay", &self.max_delay)
            .field("max_attempts", &self.max_attempts)
            .field("retry_base", &self.retry_base)
            .field("concurrency", &self.concurrency)
            .field("progress", &self.progress)
            .finish()
    }
}

impl DeliveryOptions {
    /// Checks the options, saying which one is wrong and how.
    pub fn validate(&self) -> Result<(), SimulateError> {
        let url = reqwest::Url::parse(&self.url).map_err(|e| SimulateError::InvalidUrl {
            url: genhook::toolkit::http::redact::redact(&self.url),
            reason: e.to_string(),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(SimulateError::InvalidUrl {
                url: genhook::toolkit::http::redact::redact(&self.url),
                reason: "the scheme must be http or https".into(),
            });
        }
        if self.secret.is_empty() {
            return Err(SimulateError::MissingSecret(self.provider.secret_var()));
        }
        if self.provider == Provider::Replicate && Secret::parse(&self.secret).is_err() {
            let reason = "a Replicate signing secret is `whsec_` followed by base64 (GET /v1/webhooks/default/secret)";
            return Err(SimulateError::invalid("secret", reason));
        }
        super::check_fraction("fail rate", self.fail_rate)?;
        super::check_fraction("duplicate rate", self.duplicate_rate)?;
        if self.max_attempts == 0 {
            return Err(SimulateError::invalid("max attempts", "must be at least 1"));
        }
        if self.concurrency == 0 {
            return Err(SimulateError::invalid("concurrency", "must be at least 1"));
        }
        Ok(())
    }
}

/// One planned delivery.
#[derive(Debug, Clone, Copy)]
struct Planned {
    /// Index into the jobs; `None` for forged deliveries.
    job: Option<usize>,
    kind: Kind,
    delay: Duration,
}

/// The random choices of a run, made up front.
#[derive(Debug)]
struct Plan {
    specs: Vec<JobSpec>,
    deliveries: Vec<Planned>,
}

fn random_delay(max: Duration, rng: &mut impl Rng) -> Duration {
    if max.is_zero() { Duration::ZERO } else { rng.random_range(Duration::ZERO..=max) }
}

/// `round(n × fraction)` distinct indices below `n`, chosen at random.
fn pick<R: Rng>(n: u32, fraction: f64, rng: &mut R) -> Vec<bool> {
    let chosen = ((f64::from(n) * fraction).round() as usize).min(n as usize);
    let mut flags: Vec<bool> = (0..n as usize).map(|i| i < chosen).collect();
    flags.shuffle(rng);
    flags
}

/// Plans a run. Exactly `round(jobs × fail_rate)` jobs fail and `round(jobs ×
/// duplicate_rate)` webhooks are sent twice (which ones is random), so summaries are
/// predictable.
fn plan<R: Rng>(opts: &DeliveryOptions, pacing: &Pacing, rng: &mut R) -> Plan {
    let delay = |rng: &mut R| random_delay(opts.max_delay, rng);
    let failing = pick(opts.jobs, opts.fail_rate, rng);
    let doubled = pick(opts.jobs, opts.duplicate_rate, rng);
    let replicate = opts.provider == Provider::Replicate;
    let mut specs = Vec::new();
    let mut deliveries = Vec::new();
    let mut failures = 0;
    for i in 0..opts.jobs as usize {
        let outcome = if failing[i] {
            failures += 1;
            // Replicate: every second failing prediction is canceled instead.
            if replicate && failures % 2 == 0 { JobOutcome::Canceled } else { JobOutcome::Failed }
        } else {
            JobOutcome::Completed
        };
        specs.push(JobSpec {
            outcome,
            runs_for: rng.random_range(pacing.runs_for_min..=pacing.runs_for_max),
            reference: Some(format!("sim-{:04}", i + 1)),
        });
        if replicate {
            deliveries.push(Planned { job: Some(i), kind: Kind::Progress, delay: delay(rng) });
        }
        deliveries.push(Planned { job: Some(i), kind: Kind::Original, delay: delay(rng) });
        if doubled[i] {
            deliveries.push(Planned { job: Some(i), kind: Kind::Duplicate, delay: delay(rng) });
        }
    }
    if opts.reorder {
        deliveries.shuffle(rng);
    }
    for _ in 0..opts.forged {
        let at = rng.random_range(0..=deliveries.len());
        deliveries.insert(at, Planned { job: None, kind: Kind::Forged, delay: delay(rng) });
    }
    Plan { specs, deliveries }
}

/// Creates `opts.jobs` jobs in `sim`, waits for each to finish and POSTs its signed
/// webhook to `opts.url` with duplicates, delays, optional reordering, forged
/// deliveries and retries, with the default [`Pacing`]. Errors only on invalid options;
/// delivery failures are counted in the [`Summary`].
pub async fn deliver(sim: &KataloSimulator, opts: &DeliveryOptions) -> Result<Summary, SimulateError> {
    deliver_with(sim, opts, &Pacing::default()).await
}

/// [`deliver`] with explicit job run times and attempt timeout.
pub async fn deliver_with(
    sim: &KataloSimulator,
    opts: &DeliveryOptions,
    pacing: &Pacing,
) -> Result<Summary, SimulateError> {
    opts.validate()?;
    pacing.validate()?;
    let Plan { specs, deliveries } = plan(opts, pacing, &mut rand::rng());
    let job_ids: Vec<String> = specs
        .into_iter()
        .map(|spec| match opts.provider {
            Provider::Replicate => sim.create_prediction(spec),
            Provider::Katalo => sim.create_job(spec),
        })
        .collect();
    let bodies: Vec<tokio::sync::OnceCell<Bytes>> = job_ids.iter().map(|_| tokio::sync::OnceCell::new()).collect();
    let (right, wrong) = Key::pair(opts)?;
    let ctx = Ctx {
        sim,
        opts,
        job_ids: &job_ids,
        message_ids: job_ids.iter().map(|_| message_id()).collect(),
        bodies: &bodies,
        client: genhook::toolkit::http::http_client(pacing.timeout),
        backoff: Backoff::new(opts.retry_base),
        right,
        wrong,
    };
    let bar = progress_bar(opts, deliveries.len());
    let outcomes: Vec<Outcome> = futures_util::stream::iter(deliveries)
        .map(|p| ctx.run(p))
        .buffer_unordered(opts.concurrency)
        .inspect(|o| {
            bar.inc(1);
            if !matches!(o.end, End::Acked { .. }) || o.attempts > 1 {
                bar.set_message("(some retried or refused)");
            }
        })
        .collect()
        .await;
    bar.finish_and_clear();
    Ok(Summary::tally(opts.jobs, &outcomes))
}

fn progress_bar(opts: &DeliveryOptions, len: usize) -> ProgressBar {
    if !opts.progress {
        return ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::hidden());
    }
    // Draws on stderr, and not at all when stderr is not a terminal.
    let style = ProgressStyle::with_template("{spinner} delivering [{bar:30}] {pos}/{len} {elapsed} {msg}")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    let bar = ProgressBar::new(len as u64).with_style(style);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// A signing key: Katalo's (hex HMAC of the body) or a Standard Webhooks secret.
enum Key {
    Katalo(Vec<u8>),
    Standard(Secret),
}

impl Key {
    /// The run's signing key and a wrong one for forgeries.
    fn pair(opts: &DeliveryOptions) -> Result<(Key, Key), SimulateError> {
        Ok(match opts.provider {
            Provider::Katalo => (
                Key::Katalo(opts.secret.as_bytes().to_vec()),
                Key::Katalo(format!("whsec_forged_{}", random_hex(16)).into_bytes()),
            ),
            Provider::Replicate => {
                let invalid = |_| SimulateError::invalid("secret", "not a `whsec_` secret");
                let wrong = Secret::from_bytes(&rand::random::<[u8; 24]>()).map_err(invalid)?;
                (Key::Standard(Secret::parse(&opts.secret).map_err(invalid)?), Key::Standard(wrong))
            }
        })
    }

    /// The signature headers of one attempt to deliver message `id` (Standard Webhooks
    /// signs each attempt at its own time; Katalo signs the body alone).
    fn headers(&self, id: &str, body: &[u8]) -> Vec<(&'static str, String)> {
        match self {
            Key::Katalo(secret) => {
                vec![(
                    genhook::providers::katalo::SIGNATURE_HEADER,
                    genhook::toolkit::auth::hmac::sign_hex(secret, body),
                )]
            }
            Key::Standard(secret) => {
                secret.headers(id, time::OffsetDateTime::now_utc().unix_timestamp(), body).to_vec()
            }
        }
    }
}

/// What every delivery of a run shares.
struct Ctx<'a> {
    sim: &'a KataloSimulator,
    opts: &'a DeliveryOptions,
    job_ids: &'a [String],
    /// Each job's final webhook's message id (Standard Webhooks): the same on its copies
    /// and retries.
    message_ids: Vec<String>,
    /// Each job's final webhook body, minted once when it is first delivered, so
    /// duplicates and retries are the same bytes.
    bodies: &'a [tokio::sync::OnceCell<Bytes>],
    client: reqwest::Client,
    backoff: Backoff,
    right: Key,
    wrong: Key,
}

impl Ctx<'_> {
    async fn run(&self, p: Planned) -> Outcome {
        let (body, id) = match (p.job, p.kind) {
            (Some(i), Kind::Progress) => (self.start_body(i), message_id()),
            (Some(i), _) => (self.job_body(i).await, self.message_ids[i].clone()),
            (None, _) => (self.forged_body(), message_id()),
        };
        tokio::time::sleep(p.delay).await;
        let key = if p.kind == Kind::Forged { &self.wrong } else { &self.right };
        let (attempts, end) = self.send(body, key, &id, p.kind).await;
        Outcome { kind: p.kind, attempts, end }
    }

    async fn job_body(&self, i: usize) -> Bytes {
        self.bodies[i]
            .get_or_init(|| async {
                // The job was created by this run, so it exists.
                let body = self.sim.wait_for_webhook_body_for(self.opts.provider, &self.job_ids[i]).await;
                Bytes::from(body.unwrap_or_default())
            })
            .await
            .clone()
    }

    /// Replicate's `starting` webhook for job `i`.
    fn start_body(&self, i: usize) -> Bytes {
        Bytes::from(self.sim.start_body(&self.job_ids[i]).unwrap_or_default())
    }

    /// A plausible completion for a job nobody created, pointing at someone else's file.
    fn forged_body(&self) -> Bytes {
        let body = match self.opts.provider {
            Provider::Katalo => json!({
                "event_type": genhook::domain::event::COMPLETED,
                "job_id": format!("job_sim_{}", random_hex(8)),
                "source_asset_id": format!("src_sim_{}", random_hex(6)),
                "reference": "forged",
                "outputs": [{"url": "https://attacker.example/payload.png"}],
                "failure": null,
                "metadata": {},
            }),
            Provider::Replicate => {
                let now = time::OffsetDateTime::now_utc();
                Prediction {
                    id: &prediction_id(),
                    status: "succeeded",
                    output: json!(["https://attacker.example/payload.png"]),
                    error: None,
                    created_at: now,
                    started_at: Some(now),
                    completed_at: Some(now),
                    api_base: genhook::providers::replicate::DEFAULT_BASE_URL,
                }
                .to_json()
            }
        };
        Bytes::from(body.to_string())
    }

    /// How many attempts a delivery gets, and whether a `4xx` is retried: Katalo retries
    /// every delivery on transient failures; Replicate retries only final webhooks, on
    /// any failure, and sends the rest (and a forger's) once.
    fn policy(&self, kind: Kind) -> (u32, bool) {
        match (self.opts.provider, kind) {
            (Provider::Katalo, _) => (self.opts.max_attempts, false),
            (Provider::Replicate, Kind::Original | Kind::Duplicate) => (self.opts.max_attempts, true),
            (Provider::Replicate, Kind::Progress | Kind::Forged) => (1, false),
        }
    }

    /// POSTs with retries, signing each attempt; returns the attempts made and how it ended.
    async fn send(&self, body: Bytes, key: &Key, id: &str, kind: Kind) -> (u32, End) {
        let (max_attempts, retry_client_errors) = self.policy(kind);
        let user_agent = match self.opts.provider {
            Provider::Katalo => "Katalo-Webhooks/1.0 (genhook simulate)",
            Provider::Replicate => "genhook-simulate (Replicate webhooks)",
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut request = self
                .client
                .post(&self.opts.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(reqwest::header::USER_AGENT, user_agent);
            for (name, value) in key.headers(id, &body) {
                request = request.header(name, value);
            }
            let verdict = match request.body(body.clone()).send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = genhook::toolkit::http::retry_after_header(resp.headers());
                    let answer = resp.bytes().await.unwrap_or_default();
                    judge(status, &answer, retry_after, retry_client_errors)
                }
                Err(e) => {
                    tracing::debug!(error = %e.without_url(), attempt, "delivery attempt failed");
                    Verdict::Retry { retry_after: None }
                }
            };
            match verdict {
                Verdict::Acked { duplicate } => return (attempt, End::Acked { duplicate }),
                Verdict::Rejected { status } => {
                    tracing::debug!(status, attempt, "delivery rejected");
                    return (attempt, End::Rejected);
                }
                Verdict::Retry { .. } if attempt >= max_attempts => return (attempt, End::GaveUp),
                Verdict::Retry { retry_after } => {
                    tokio::time::sleep(self.backoff.delay(attempt, retry_after)).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn opts() -> DeliveryOptions {
        DeliveryOptions { url: "http://127.0.0.1:9/hook".into(), secret: "s".into(), ..DeliveryOptions::default() }
    }

    #[test]
    fn plans_exact_counts_of_failures_duplicates_and_forgeries() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let o = DeliveryOptions { jobs: 50, duplicate_rate: 0.5, forged: 4, fail_rate: 0.3, ..opts() };
        let pacing = Pacing::default();
        let p = plan(&o, &pacing, &mut rng);
        assert_eq!(p.specs.len(), 50);
        let count = |k: Kind| p.deliveries.iter().filter(|d| d.kind == k).count();
        assert_eq!((count(Kind::Original), count(Kind::Duplicate), count(Kind::Forged)), (50, 25, 4));
        assert_eq!(p.specs.iter().filter(|s| s.outcome == JobOutcome::Failed).count(), 15);
        assert!(p.specs.iter().all(|s| (pacing.runs_for_min..=pacing.runs_for_max).contains(&s.runs_for)));
        // Without reordering, genuine deliveries come in job order.
        let order: Vec<usize> = p.deliveries.iter().filter_map(|d| d.job).collect();
        assert!(order.windows(2).all(|w| w[0] <= w[1]));
        assert!(p.deliveries.iter().all(|d| d.delay.is_zero()));
    }

    #[test]
    fn replicate_plans_a_starting_webhook_per_job_and_cancels_every_second_failure() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let o = DeliveryOptions { provider: Provider::Replicate, jobs: 20, fail_rate: 0.25, forged: 2, ..opts() };
        let p = plan(&o, &Pacing::default(), &mut rng);
        let count = |k: Kind| p.deliveries.iter().filter(|d| d.kind == k).count();
        assert_eq!((count(Kind::Progress), count(Kind::Original), count(Kind::Forged)), (20, 20, 2));
        let outcome = |w: JobOutcome| p.specs.iter().filter(|s| s.outcome == w).count();
        assert_eq!(
            (outcome(JobOutcome::Failed), outcome(JobOutcome::Canceled)),
            (3, 2),
            "5 failing: 3 failed, 2 canceled"
        );
        // Without reordering, a job's starting webhook comes before its final one.
        for i in 0..20 {
            let at = |k: Kind| p.deliveries.iter().position(|d| d.job == Some(i) && d.kind == k);
            assert!(at(Kind::Progress) < at(Kind::Original), "job {i}");
        }
        let katalo = plan(&DeliveryOptions { fail_rate: 1.0, ..opts() }, &Pacing::default(), &mut rng);
        assert!(katalo.specs.iter().all(|s| s.outcome == JobOutcome::Failed), "Katalo jobs never cancel");
        assert!(katalo.deliveries.iter().all(|d| d.kind != Kind::Progress));
    }

    #[test]
    fn replicate_needs_a_whsec_secret() {
        let o = DeliveryOptions { provider: Provider::Replicate, ..opts() };
        assert!(o.validate().unwrap_err().to_string().contains("whsec_"));
        let o = DeliveryOptions { secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(), ..o };
        assert!(o.validate().is_ok());
        let missing = DeliveryOptions { secret: String::new(), ..o };
        assert!(missing.validate().unwrap_err().to_string().contains("REPLICATE_WEBHOOK_SECRET"));
    }

    #[test]
    fn counts_round_and_never_exceed_the_jobs() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        assert_eq!(pick(4, 0.1, &mut rng).iter().filter(|b| **b).count(), 0);
        assert_eq!(pick(10, 0.25, &mut rng).iter().filter(|b| **b).count(), 3, "2.5 rounds away from zero");
        assert_eq!(pick(3, 1.0, &mut rng), [true; 3]);
        assert!(pick(0, 0.5, &mut rng).is_empty());
    }

    #[test]
    fn reordering_shuffles_and_delays_are_bounded() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let o = DeliveryOptions { jobs: 40, reorder: true, max_delay: Duration::from_millis(30), ..opts() };
        let p = plan(&o, &Pacing::default(), &mut rng);
        let order: Vec<usize> = p.deliveries.iter().filter_map(|d| d.job).collect();
        assert!(order.windows(2).any(|w| w[0] > w[1]));
        assert!(p.deliveries.iter().all(|d| d.delay <= o.max_delay));
    }

    #[test]
    fn validation_says_what_is_wrong() {
        let msg = |o: DeliveryOptions| o.validate().unwrap_err().to_string();
        assert!(msg(DeliveryOptions { url: "nope".into(), ..opts() }).contains("nope"));
        assert!(msg(DeliveryOptions { url: "ftp://x/".into(), ..opts() }).contains("http or https"));
        assert!(msg(DeliveryOptions { secret: String::new(), ..opts() }).contains("--secret"));
        assert!(msg(DeliveryOptions { fail_rate: -0.1, ..opts() }).contains("fail rate"));
        assert!(msg(DeliveryOptions { duplicate_rate: f64::NAN, ..opts() }).contains("duplicate rate"));
        assert!(msg(DeliveryOptions { max_attempts: 0, ..opts() }).contains("max attempts"));
        assert!(msg(DeliveryOptions { concurrency: 0, ..opts() }).contains("concurrency"));
        assert!(opts().validate().is_ok());
        assert!(!format!("{:?}", DeliveryOptions { secret: "topsecret".into(), ..opts() }).contains("topsecret"));
        let backwards =
            Pacing { runs_for_min: Duration::from_secs(2), runs_for_max: Duration::from_secs(1), ..Pacing::default() };
        assert!(backwards.validate().unwrap_err().to_string().contains("minimum"));
    }

    #[tokio::test]
    async fn unreachable_receivers_are_given_up_on() {
        let sim = KataloSimulator::start("127.0.0.1:0".parse().unwrap(), Default::default()).await.unwrap();
        // A port nothing listens on: bind one, then free it.
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let o = DeliveryOptions {
            url: format!("http://{free}/hook"),
            jobs: 2,
            duplicate_rate: 0.0,
            max_attempts: 3,
            retry_base: Duration::from_millis(1),
            progress: false,
            ..opts()
        };
        let fast = Pacing { runs_for_min: Duration::ZERO, runs_for_max: Duration::ZERO, ..Pacing::default() };
        let s = deliver_with(&sim, &o, &fast).await.unwrap();
        assert_eq!((s.jobs, s.sent, s.retried, s.gave_up, s.acknowledged), (2, 6, 4, 2, 0));
        assert!(!s.all_acknowledged());
    }
}
