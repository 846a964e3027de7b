//! A deterministic simulation of the whole pipeline, after FoundationDB's and
//! TigerBeetle's: the real [`Receiver`] and [`Worker`] over the in-memory adapters, a
//! manual clock, and a seeded fault injector ([`chaos`]) around every port call. One
//! seed is one schedule: Katalo jobs finish, Katalo delivers their signed webhooks (late,
//! early, twice, forged, retried on every non-2xx or missing answer), Replicate
//! predictions start and end with Standard Webhooks deliveries (the final one sometimes
//! lost: the watch the `starting` delivery registered recovers it; or every delivery lost:
//! a sweep of the prediction list recovers it), APIMP tasks are registered and called
//! back through their minted Kling URLs (progress, then the final callback, sometimes
//! lost: the watch's polls publish them), some Katalo jobs never end (the worker
//! gives up at their horizon with one `generation.abandoned`), SQS delivers inbox
//! messages in any order and sometimes twice, and receiver and worker invocations run
//! concurrently, failing, timing out after their effects, stalling and crashing between
//! any two steps. Then the faults stop (the heal phase) and the pipeline runs until it is
//! quiet. The invariants ([`check`]) must hold after every schedule; a failure names its
//! seed, which replays it exactly.

pub mod chaos;
pub mod ports;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use genhook::adapters::memory::{MemoryQueue, MemoryQueueSettings, MemoryStore};
use genhook::domain::backoff::Backoff;
use genhook::domain::clock::{Clock, ManualClock};
use genhook::domain::dedupe::{RecordStatus, dedupe_key, event_id};
use genhook::engine::receiver::{Receiver, ReceiverSettings};
use genhook::engine::worker::{FAILURE_REASON_ATTRIBUTE, InboxRecord, Worker, WorkerPorts, WorkerSettings};
use genhook::ports::{Queue, QueueConsumer};
use genhook::providers::apimp::capability::mint_callback_url;
use genhook::providers::apimp::reconcile::ApimpReconciler;
use genhook::providers::apimp::source::ApimpSource;
use genhook::providers::apimp::upstream::Upstream;

use genhook::providers::katalo::reconcile::KataloReconciler;
use genhook::providers::katalo::source::KataloSource;
use genhook::providers::replicate::reconcile::{ReplicateReconciler, Watching};
use genhook::providers::replicate::source::ReplicateSource;
use genhook::providers::replicate::sweep::{ReplicateSweepMessage, Sweeping};
use genhook::toolkit::auth::hmac::{HmacSecrets, sign_hex};
use genhook::toolkit::auth::standard_webhooks::{Secret, Secrets};
use genhook::toolkit::http::output_hosts::{OutputHosts, OutputRule};
use http::Request;
use rand::Rng;
use rand::seq::SliceRandom;
use time::macros::datetime;

use chaos::{Actor, Chaos};
use ports::{FaultyQueue, FaultyStore, Publication, SimJob, SimKatalo, Spell, SpellAnswer, publish_key_of};

const SECRET: &str = "whsec_sim";
/// The APIMP callback URLs' key.
const APIMP_SECRET: &str = "apimp_sim_callback_key";
/// Replicate's Standard Webhooks secret, and one an attacker signs with.
const REPLICATE_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const FORGED_REPLICATE_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

fn replicate_secrets() -> Secrets {
    Secrets::parse([REPLICATE_SECRET]).unwrap_or_else(|e| panic!("{e}"))
}
const RECEIVER_TIMEOUT_MS: i64 = 10_000;
const WORKER_TIMEOUT_MS: i64 = 60_000;
/// Katalo's retries of a delivery that got no 2xx: then it gives up.
const PROVIDER_ATTEMPTS: u32 = 8;

/// What one schedule did.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Webhook deliveries made (attempts included).
    pub deliveries: u64,
    /// Jobs whose webhook was acknowledged with 2xx at least once.
    pub acked_jobs: u64,
    /// Published jobs that were watched from creation.
    pub watched_jobs: u64,
    /// Events on the outbox.
    pub events: u64,
    /// Extra copies of an event (the documented at-least-once window).
    pub republished: u64,
    /// Port calls, failures and crashes injected.
    pub calls: u64,
    /// Injected failures.
    pub failures: u64,
    /// Injected crashes.
    pub crashes: u64,
    /// Jobs with a foreign output URL, never published.
    pub refused_jobs: u64,
    /// Jobs given up on with their `generation.abandoned` (foreign outputs, and jobs that
    /// never end, at their horizon).
    pub abandoned: u64,
    /// Of them, jobs that never end.
    pub endless_jobs: u64,
    /// Sweeps started.
    pub sweeps: u64,
    /// Predictions with no delivery at all, published by a sweep.
    pub swept_predictions: u64,
    /// APIMP tasks published (registered, called back or not).
    pub apimp_tasks: u64,
    /// Replicate predictions published.
    pub predictions: u64,
    /// Of those, predictions whose final webhook was lost (published by the watch their
    /// `starting` delivery registered).
    pub recovered_predictions: u64,
}

impl Stats {
    /// Adds another run's counts to these.
    pub fn add(&mut self, s: &Stats) {
        self.deliveries += s.deliveries;
        self.acked_jobs += s.acked_jobs;
        self.watched_jobs += s.watched_jobs;
        self.events += s.events;
        self.republished += s.republished;
        self.calls += s.calls;
        self.failures += s.failures;
        self.crashes += s.crashes;
        self.refused_jobs += s.refused_jobs;
        self.abandoned += s.abandoned;
        self.endless_jobs += s.endless_jobs;
        self.sweeps += s.sweeps;
        self.swept_predictions += s.swept_predictions;
        self.apimp_tasks += s.apimp_tasks;
        self.predictions += s.predictions;
        self.recovered_predictions += s.recovered_predictions;
    }
}

/// A broken invariant, with the seed that replays it.
#[derive(Debug)]
pub struct Failure {
    /// The schedule's seed.
    pub seed: u64,
    /// Which invariant, and how.
    pub what: String,
    /// The schedule's last steps.
    pub trace: Vec<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "seed {}: {}", self.seed, self.what)?;
        writeln!(f, "replay: GENHOOK_SIM_SEED={} cargo test -p genhook-tests --test simulation", self.seed)?;
        for line in self.trace.iter().rev().take(60).rev() {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

/// A webhook delivery Katalo keeps trying.
#[derive(Debug, Clone)]
struct Delivery {
    job: usize,
    body: Vec<u8>,
    /// Katalo's `x-katalo-signature`.
    signature: String,
    /// A Replicate delivery: its `webhook-id` (signed when it is sent).
    replicate: Option<String>,
    /// An APIMP upstream's callback: the minted callback URL's path and query.
    apimp: Option<String>,
    forged: bool,
    attempts: u32,
    due_ms: i64,
}

struct World {
    chaos: Arc<Chaos>,
    clock: Arc<ManualClock>,
    store: Arc<MemoryStore>,
    inbox: Arc<MemoryQueue>,
    inbox_dlq: Arc<MemoryQueue>,
    publications: Arc<Mutex<Vec<Publication>>>,
    receiver: Receiver,
    worker: Worker,
    jobs: Vec<SimJob>,
    acked: BTreeSet<usize>,
    /// Jobs registered with a watch (`katalo.watch`) when they were created.
    watched: BTreeSet<usize>,
    /// Replicate predictions whose final webhook never comes.
    lost_finals: BTreeSet<usize>,
    /// Replicate predictions none of whose webhooks come (a sweep publishes them).
    silent: BTreeSet<usize>,
    /// Katalo jobs that never end (watched: given up on at their horizon).
    endless: BTreeSet<usize>,
    /// When the stack's schedule starts a sweep (epoch ms).
    sweeps_due: Vec<i64>,
    /// Their registrations, queued when the schedule starts.
    registrations: Vec<genhook::ports::OutgoingMessage>,
    pending: Vec<Delivery>,
    stats: Stats,
}

impl World {
    fn new(seed: u64, fault_rate: f64) -> Self {
        let clock = Arc::new(ManualClock::new(datetime!(2026-11-23 12:00:00 UTC)));
        let chaos = Arc::new(Chaos::new(seed, fault_rate, clock.clone()));
        let store = Arc::new(MemoryStore::default());
        let inbox_dlq = Arc::new(MemoryQueue::new(MemoryQueueSettings { clock: clock.clone(), ..Default::default() }));
        let inbox = Arc::new(MemoryQueue::new(MemoryQueueSettings {
            visibility_timeout: Duration::from_secs(360),
            dead_letter: Some((inbox_dlq.clone(), 20)),
            clock: clock.clone(),
        }));
        let outbox = Arc::new(MemoryQueue::new(MemoryQueueSettings { clock: clock.clone(), ..Default::default() }));
        let publications = Arc::new(Mutex::new(Vec::new()));
        let faulty_store = Arc::new(FaultyStore { inner: store.clone(), chaos: chaos.clone() });
        let faulty = |q: &Arc<MemoryQueue>, name| {
            Arc::new(FaultyQueue { inner: q.clone(), chaos: chaos.clone(), name, publications: None })
        };

        let start = clock.now_ms();
        let n_jobs = chaos.with_rng(|r| r.random_range(1..=4usize));
        let jobs: Vec<SimJob> = (0..n_jobs)
            .map(|i| {
                let (done, succeeds, foreign, endless) = chaos.with_rng(|r| {
                    (r.random_range(0..600_000i64), r.random_bool(0.75), r.random_bool(0.1), r.random_bool(0.08))
                });
                SimJob {
                    job_id: format!("job_{i}"),
                    done_at_ms: if endless { i64::MAX / 2 } else { start + done },
                    succeeds,
                    foreign: succeeds && foreign && !endless,
                    replicate: false,
                    apimp: false,
                }
            })
            .collect();
        // Replicate predictions: their `starting` delivery comes at once, their final one
        // when they end, unless it is lost (the watch `starting` registered recovers it).
        let n_predictions = chaos.with_rng(|r| r.random_range(0..=2usize));
        let predictions: Vec<SimJob> = (0..n_predictions)
            .map(|k| {
                let (done, succeeds) = chaos.with_rng(|r| (r.random_range(0..600_000i64), r.random_bool(0.75)));
                SimJob {
                    job_id: format!("pred_{k}"),
                    done_at_ms: start + done,
                    succeeds,
                    foreign: false,
                    replicate: true,
                    apimp: false,
                }
            })
            .collect();
        // APIMP tasks: registered with a watch when submitted (reference → task id); Kling
        // calls back through the minted URL (a progress callback, then the final one,
        // which may be lost: the watch's polls publish the task).
        let n_tasks = chaos.with_rng(|r| r.random_range(0..=2usize));
        let tasks: Vec<SimJob> = (0..n_tasks)
            .map(|k| {
                let (done, succeeds) = chaos.with_rng(|r| (r.random_range(0..600_000i64), r.random_bool(0.75)));
                SimJob {
                    job_id: format!("task_{k}"),
                    done_at_ms: start + done,
                    succeeds,
                    foreign: false,
                    replicate: false,
                    apimp: true,
                }
            })
            .collect();
        let katalo_jobs = jobs.len();
        let (mut lost_finals, mut silent) = (BTreeSet::new(), BTreeSet::new());
        let endless: BTreeSet<usize> =
            jobs.iter().enumerate().filter(|(_, j)| j.done_at_ms == i64::MAX / 2).map(|(i, _)| i).collect();
        let first_task = katalo_jobs + predictions.len();
        let jobs: Vec<SimJob> = jobs.into_iter().chain(predictions).chain(tasks).collect();
        let mut pending = Vec::new();
        let (mut watched, mut registrations) = (BTreeSet::new(), Vec::new());
        for (i, job) in jobs.iter().enumerate().take(first_task).skip(katalo_jobs) {
            let status = if job.succeeds { "succeeded" } else { "failed" };
            let (lost, forged, quiet) =
                chaos.with_rng(|r| (r.random_bool(0.3), r.random_bool(0.2), r.random_bool(0.2)));
            let prediction = |status: &str, model: &str| {
                serde_json::json!({"id": job.job_id, "status": status, "model": model}).to_string().into_bytes()
            };
            let replicate = |body, id: String, forged, due_ms| Delivery {
                job: i,
                body,
                signature: String::new(),
                replicate: Some(id),
                apimp: None,
                forged,
                attempts: 0,
                due_ms,
            };
            if quiet {
                // Nobody registered it and none of its webhooks comes: only a sweep finds it.
                silent.insert(i);
                continue;
            }
            pending.push(replicate(prediction("starting", "m"), format!("msg_{i}_start"), false, start));
            if lost {
                lost_finals.insert(i);
            } else {
                pending.push(replicate(prediction(status, "m"), format!("msg_{i}_end"), false, job.done_at_ms));
            }
            if forged {
                pending.push(replicate(prediction("succeeded", "forged"), format!("msg_{i}_x"), true, job.done_at_ms));
            }
        }
        for (i, job) in jobs.iter().enumerate().take(katalo_jobs) {
            // Some jobs are watched from creation; some of those never get their webhook
            // (the endpoint was down past Katalo's retries): the poller alone publishes them.
            let (watch, lost) = chaos.with_rng(|r| (r.random_bool(0.4), r.random_bool(0.3)));
            // A job that never ends is watched and gets no webhook: the worker gives up on
            // it at its horizon.
            let endless_job = endless.contains(&i);
            let (watch, lost) = (watch || endless_job, lost || endless_job);
            if watch {
                let horizon = Duration::from_secs(6 * 3600);
                if let Ok(m) = genhook::providers::katalo::watch::registration(&job.job_id, horizon, clock.now()) {
                    watched.insert(i);
                    registrations.push(m.outgoing(None));
                }
            }
            let event_type = if job.succeeds { "generation.completed" } else { "generation.failed" };
            let body =
                serde_json::json!({"event_type": event_type, "job_id": job.job_id, "reference": format!("ref-{i}")})
                    .to_string()
                    .into_bytes();
            // The webhook is a hint: it may even arrive a little before the API agrees.
            let early = chaos.with_rng(|r| if r.random_bool(0.2) { r.random_range(1_000..20_000i64) } else { 0 });
            let signature = sign_hex(SECRET.as_bytes(), &body);
            if !(watch && lost) {
                pending.push(Delivery {
                    job: i,
                    body: body.clone(),
                    signature,
                    replicate: None,
                    apimp: None,
                    forged: false,
                    attempts: 0,
                    due_ms: job.done_at_ms - early,
                });
            }
            // A forgery of the same job, with a different body: must never be queued.
            if chaos.with_rng(|r| r.random_bool(0.2)) {
                let forged = serde_json::json!({"event_type": "generation.completed", "job_id": job.job_id, "reference": "forged"}).to_string().into_bytes();
                let signature = sign_hex(b"not-the-secret", &forged);
                pending.push(Delivery {
                    job: i,
                    body: forged,
                    signature,
                    replicate: None,
                    apimp: None,
                    forged: true,
                    attempts: 0,
                    // (A job that never ends is forged within the schedule too.)
                    due_ms: job.done_at_ms.min(start + 600_000),
                });
            }
        }

        let apimp_secrets = HmacSecrets::new(APIMP_SECRET, None);
        for (i, job) in jobs.iter().enumerate().skip(first_task) {
            let reference = format!("ref-{}", job.job_id);
            let horizon = Duration::from_secs(6 * 3600);
            let registration = genhook::providers::apimp::watch::registration(
                &reference,
                &job.job_id,
                Some(Upstream::Kling),
                horizon,
                clock.now(),
            );
            let minted = mint_callback_url("http://sim.invalid", Upstream::Kling, &reference, &apimp_secrets);
            let (Ok(m), Ok(url)) = (registration, minted) else { continue };
            watched.insert(i);
            registrations.push(genhook::providers::apimp::message::watch_message(&m, None));
            let path = url.strip_prefix("http://sim.invalid").unwrap_or(&url).to_string();
            let callback = |status: &str, due_ms| Delivery {
                job: i,
                body: serde_json::json!({"task_id": format!("kling_{}", job.job_id), "task_status": status})
                    .to_string()
                    .into_bytes(),
                signature: String::new(),
                replicate: None,
                apimp: Some(path.clone()),
                forged: false,
                attempts: 0,
                due_ms,
            };
            let (progress, lost) = chaos.with_rng(|r| (r.random_bool(0.5), r.random_bool(0.3)));
            if progress {
                pending.push(callback("processing", start));
            }
            if !lost {
                pending.push(callback(if job.succeeds { "succeed" } else { "failed" }, job.done_at_ms));
            }
        }

        // Spells within the fault phase: a 429 storm of up to an hour (the account's budget
        // spent by someone else), and a key refused for up to ten minutes (a rotation).
        let mut spells = Vec::new();
        if chaos.with_rng(|r| r.random_bool(0.3)) {
            let (from, len, after) = chaos.with_rng(|r| {
                (r.random_range(0..3_600_000i64), r.random_range(300_000..3_600_000i64), r.random_range(1..=30u64))
            });
            spells.push(Spell {
                from_ms: start + from,
                until_ms: start + from + len,
                answer: SpellAnswer::RateLimited(after),
            });
        }
        if chaos.with_rng(|r| r.random_bool(0.2)) {
            let (from, len) = chaos.with_rng(|r| (r.random_range(0..3_600_000i64), r.random_range(60_000..600_000i64)));
            spells.push(Spell { from_ms: start + from, until_ms: start + from + len, answer: SpellAnswer::KeyRefused });
        }
        // The stack's schedule starts sweeps during the faults, and one after them.
        let mut sweeps_due: Vec<i64> = (0..chaos.with_rng(|r| r.random_range(0..=2u32)))
            .map(|_| start + chaos.with_rng(|r| r.random_range(0..7_200_000i64)))
            .collect();
        sweeps_due.push(start + 9_000_000);
        for s in &spells {
            chaos.note(format!(
                "spell {:?} from +{} s for {} s",
                s.answer,
                (s.from_ms - start) / 1000,
                (s.until_ms - s.from_ms) / 1000
            ));
        }

        let receiver = Receiver::new(
            faulty_store.clone(),
            faulty(&inbox, "inbox"),
            vec![
                Arc::new(KataloSource::new(HmacSecrets::new(SECRET, None))),
                Arc::new(ApimpSource { callback_secrets: HmacSecrets::new(APIMP_SECRET, None), vidu_secrets: None }),
                Arc::new(ReplicateSource::new(replicate_secrets())),
            ],
            ReceiverSettings::default(),
            clock.clone(),
        );
        let settings = WorkerSettings {
            concurrency: 4,
            backoff: Backoff { base: Duration::from_secs(5), cap: Duration::from_secs(300), jitter: false },
            ..WorkerSettings::default()
        };
        let outbox_q = Arc::new(FaultyQueue {
            inner: outbox.clone(),
            chaos: chaos.clone(),
            name: "outbox",
            publications: Some((store.clone(), publications.clone())),
        });
        let worker = Worker::new(
            WorkerPorts {
                store: faulty_store.clone(),
                inbox: faulty(&inbox, "inbox"),
                inbox_dlq: Some(faulty(&inbox_dlq, "dlq")),
                outbox: outbox_q,
                clock: clock.clone(),
            },
            vec![
                Arc::new(KataloReconciler::new(
                    Arc::new(SimKatalo { jobs: jobs.clone(), chaos: chaos.clone(), spells, created_ms: start }),
                    Duration::from_secs(6 * 3600),
                )),
                Arc::new(ApimpReconciler::new(
                    Arc::new(SimKatalo {
                        jobs: jobs.clone(),
                        chaos: chaos.clone(),
                        spells: Vec::new(),
                        created_ms: start,
                    }),
                    faulty_store.clone(),
                )),
                Arc::new(
                    ReplicateReconciler::new(Arc::new(SimKatalo {
                        jobs: jobs.clone(),
                        chaos: chaos.clone(),
                        spells: Vec::new(),
                        created_ms: start,
                    }))
                    .watching(Watching { horizon: Duration::from_secs(6 * 3600), auto_watch: true })
                    .sweeping(Sweeping { max_pages: 5, horizon: Duration::from_secs(6 * 3600) }),
                ),
            ],
            settings,
        )
        .with_output_hosts(vec![OutputRule {
            provider: "katalo",
            variable: "KATALO_OUTPUT_HOSTS",
            hosts: OutputHosts::parse("cdn.example").unwrap_or_else(|e| panic!("{e}")),
        }]);
        Self {
            chaos,
            clock,
            store,
            inbox,
            inbox_dlq,
            publications,
            receiver,
            worker,
            jobs,
            acked: BTreeSet::new(),
            watched,
            lost_finals,
            silent,
            endless,
            sweeps_due,
            registrations,
            pending,
            stats: Stats::default(),
        }
    }

    /// One receiver invocation for a delivery; the provider's view of the answer.
    async fn deliver(&self, d: &Delivery) -> Option<u16> {
        let req = match (&d.replicate, &d.apimp) {
            (None, Some(path)) => Request::builder()
                .method("POST")
                .uri(path.as_str())
                .header("content-type", "application/json")
                .body(d.body.clone())
                .ok()?,
            (None, None) => Request::builder()
                .method("POST")
                .uri("/webhooks/katalo")
                .header("x-katalo-signature", &d.signature)
                .body(d.body.clone())
                .ok()?,
            (Some(id), _) => {
                // Signed at each attempt, with its own timestamp, as Replicate does.
                let secret = if d.forged { FORGED_REPLICATE_SECRET } else { REPLICATE_SECRET };
                let secret = Secret::parse(secret).ok()?;
                let mut b = Request::builder().method("POST").uri("/webhooks/replicate");
                for (name, value) in secret.headers(id, self.clock.now().unix_timestamp(), &d.body) {
                    b = b.header(name, value);
                }
                b.body(d.body.clone()).ok()?
            }
        };
        let deadline = self.clock.now_ms() + RECEIVER_TIMEOUT_MS;
        let actor = Actor::new(deadline);
        let resp = actor.run(self.receiver.handle(req, Some(deadline))).await?;
        Some(resp.status().as_u16())
    }

    /// Lambda's event source mapping: after a random pause, receive a batch (in any
    /// order) and invoke the worker on it.
    async fn poll_and_work(&self) {
        let pause = self.chaos.with_rng(|r| r.random_range(0..8u32));
        for _ in 0..pause {
            tokio::task::yield_now().await;
        }
        let Ok(mut batch) = self.inbox.receive(10, Duration::ZERO).await else { return };
        if batch.is_empty() {
            return;
        }
        self.chaos.with_rng(|r| batch.shuffle(r));
        self.invoke_worker(batch).await;
    }

    /// One worker invocation on a batch, as Lambda's event source mapping runs it.
    async fn invoke_worker(&self, batch: Vec<genhook::ports::ReceivedMessage>) {
        let receipts: Vec<(String, String)> =
            batch.iter().map(|m| (m.message_id.clone(), m.receipt_handle.clone())).collect();
        let records: Vec<InboxRecord> = batch.into_iter().map(InboxRecord::from).collect();
        let deadline = self.clock.now_ms() + WORKER_TIMEOUT_MS;
        let actor = Actor::new(deadline);
        let Some(report) = actor.run(self.worker.process_batch_by(records, Some(deadline))).await else {
            self.chaos.note("worker invocation crashed");
            return;
        };
        let done: Vec<String> =
            receipts.into_iter().filter(|(id, _)| !report.failed.contains(id)).map(|(_, r)| r).collect();
        let _ = self.inbox.delete(done).await;
    }

    /// Runs until nothing is due; `chaos_until_ms` ends the fault phase.
    async fn run(&mut self, chaos_until_ms: i64, max_steps: usize) -> Result<(), String> {
        for _ in 0..max_steps {
            let now = self.clock.now_ms();
            if now >= chaos_until_ms && self.chaos.enabled.swap(false, Ordering::SeqCst) {
                self.chaos.note("--- heal: faults off ---");
            }
            // What is due now: deliveries, and inbox messages.
            let (due, later): (Vec<Delivery>, Vec<Delivery>) =
                std::mem::take(&mut self.pending).into_iter().partition(|d| d.due_ms <= now);
            self.pending = later;
            // The schedule's sweeps put their first message on the inbox (EventBridge).
            let (sweeps, later): (Vec<i64>, Vec<i64>) = self.sweeps_due.iter().partition(|t| **t <= now);
            self.sweeps_due = later;
            for _ in sweeps {
                self.chaos.note("sweep started");
                self.stats.sweeps += 1;
                let lookback = Duration::from_secs(24 * 3600);
                self.inbox.send(ReplicateSweepMessage::start(lookback).outgoing()).await.map_err(|e| e.to_string())?;
            }
            let visible = self.inbox.next_visible_at_ms().is_some_and(|t| t <= now);
            if due.is_empty() && !visible {
                // Nothing due: jump to the next thing that will be.
                let next_delivery = self.pending.iter().map(|d| d.due_ms).chain(self.sweeps_due.iter().copied()).min();
                let next_message = self.inbox.next_visible_at_ms();
                match next_delivery.into_iter().chain(next_message).min() {
                    Some(t) if t > now => self.clock.advance(time::Duration::milliseconds(t - now)),
                    Some(_) => self.clock.advance(time::Duration::milliseconds(1)),
                    None => return Ok(()),
                }
                continue;
            }
            // Everything due runs concurrently, interleaved at port calls.
            let answers = {
                let receivers = futures_util::future::join_all(due.iter().map(|d| self.deliver(d)));
                // Workers poll the inbox at random points among the receivers' calls, so
                // a message can be worked while the receiver that sent it is still busy.
                let n_workers = self.chaos.with_rng(|r| r.random_range(1..=2usize));
                let workers = futures_util::future::join_all((0..n_workers).map(|_| self.poll_and_work()));
                let (answers, _) = futures_util::join!(receivers, workers);
                answers
            };
            for (mut d, answer) in due.into_iter().zip(answers) {
                self.stats.deliveries += 1;
                d.attempts += 1;
                let ok = answer.is_some_and(|s| (200..300).contains(&s));
                self.chaos.note(format!("delivery job_{} forged={} -> {answer:?}", d.job, d.forged));
                if d.forged {
                    if ok {
                        return Err(format!("a forged delivery of job_{} was acknowledged", d.job));
                    }
                    continue;
                }
                if ok {
                    self.acked.insert(d.job);
                    // At-least-once: Katalo may deliver the same webhook again.
                    if self.chaos.with_rng(|r| r.random_bool(0.15)) {
                        let wait = self.chaos.with_rng(|r| r.random_range(1_000..3_600_000i64));
                        self.pending.push(Delivery {
                            due_ms: self.clock.now_ms() + wait,
                            attempts: PROVIDER_ATTEMPTS,
                            ..d
                        });
                    }
                } else if d.attempts < PROVIDER_ATTEMPTS {
                    let wait = 5_000i64 << d.attempts.min(10);
                    self.pending.push(Delivery { due_ms: self.clock.now_ms() + wait, ..d });
                }
            }
            // SQS sometimes delivers an in-flight message again.
            let held = self.inbox.held_ids();
            if !held.is_empty() && self.chaos.with_rng(|r| r.random_bool(0.05)) {
                let pick = self.chaos.with_rng(|r| r.random_range(0..held.len()));
                if let Some(id) = held.get(pick) {
                    self.inbox.redeliver(id);
                }
            }
        }
        Err(format!("not quiet after {max_steps} steps"))
    }

    /// The invariants.
    fn check(&self) -> Result<Stats, String> {
        if let Some(v) = self.chaos.violations().first() {
            return Err(v.clone());
        }
        let pubs = self.publications.lock().map_err(|_| "poisoned".to_string())?.clone();
        let mut by_job: BTreeMap<String, Vec<&Publication>> = BTreeMap::new();
        let mut abandoned: BTreeMap<String, Vec<&Publication>> = BTreeMap::new();
        for p in &pubs {
            let into = if p.event_type == "generation.abandoned" { &mut abandoned } else { &mut by_job };
            into.entry(p.job_id.clone()).or_default().push(p);
        }
        let mut stats = self.stats.clone();
        for (i, job) in self.jobs.iter().enumerate() {
            let event_type = if job.succeeds { "generation.completed" } else { "generation.failed" };
            let key = dedupe_key(job.provider(), &job.job_id, event_type);
            let copies = by_job.get(&job.job_id).map(Vec::as_slice).unwrap_or_default();
            let given_up = abandoned.get(&job.job_id).map(Vec::as_slice).unwrap_or_default();
            // 0. A job whose output is on a foreign host is never published, and when it
            //    was acknowledged or watched, it is in the DLQ with the reason and the app
            //    got one generation.abandoned (once, unless a copy left before its
            //    PUBLISHED mark was written).
            if job.foreign {
                if !copies.is_empty() {
                    return Err(format!("{} was published with a foreign output URL", job.job_id));
                }
                let abandon_id = event_id(&dedupe_key(job.provider(), &job.job_id, "generation.abandoned"));
                for p in given_up {
                    if p.event_id != abandon_id || p.after_published {
                        return Err(format!(
                            "{} abandoned as {} (again after PUBLISHED: {})",
                            job.job_id, p.event_id, p.after_published
                        ));
                    }
                }
                if (self.acked.contains(&i) || self.watched.contains(&i)) && given_up.is_empty() {
                    return Err(format!("{} was given up on but no generation.abandoned was published", job.job_id));
                }
                stats.abandoned += u64::from(!given_up.is_empty());
                let dead = self.inbox_dlq.messages().iter().any(|m| {
                    m.body.contains(&format!("\"{}\"", job.job_id))
                        && m.attributes
                            .iter()
                            .any(|(k, v)| k == FAILURE_REASON_ATTRIBUTE && v.contains("is not published"))
                });
                if (self.acked.contains(&i) || self.watched.contains(&i)) && !dead {
                    return Err(format!("{} has a foreign output but is not dead-lettered with why", job.job_id));
                }
                stats.refused_jobs += 1;
                continue;
            }
            // 0b. A job that never ends is never published, and the worker gives up on it at
            //     its horizon: one generation.abandoned, and its messages in the DLQ with why.
            if self.endless.contains(&i) {
                if !copies.is_empty() {
                    return Err(format!("{} never ended but was published as {}", job.job_id, copies[0].event_type));
                }
                let abandon_id = event_id(&dedupe_key(job.provider(), &job.job_id, "generation.abandoned"));
                if given_up.is_empty() || given_up.iter().any(|p| p.event_id != abandon_id || p.after_published) {
                    return Err(format!(
                        "{} never ended: abandoned {:?}",
                        job.job_id,
                        given_up.iter().map(|p| (&p.event_id, p.after_published)).collect::<Vec<_>>()
                    ));
                }
                stats.abandoned += 1;
                stats.endless_jobs += 1;
                continue;
            }
            // Every fault passes: nothing else is given up on.
            if !given_up.is_empty() {
                return Err(format!("{} was abandoned although every fault was passing", job.job_id));
            }
            // 1. Every acknowledged delivery, every watched job, and every prediction only a
            //    sweep could find, is published.
            if (self.acked.contains(&i) || self.watched.contains(&i) || self.silent.contains(&i)) && copies.is_empty() {
                return Err(format!(
                    "{} was acknowledged or watched but never published (record: {:?})",
                    job.job_id,
                    self.store.record(&publish_key_of(job.provider(), &job.job_id))
                ));
            }
            // 2. Once, unless a copy left before the PUBLISHED mark was written (the
            //    documented window), and always with the same event id and type.
            for p in copies {
                if p.event_id != event_id(&key) || p.event_type != event_type {
                    return Err(format!("{} published as {} / {}", job.job_id, p.event_type, p.event_id));
                }
                if p.after_published {
                    return Err(format!("{} published again after its record was PUBLISHED", job.job_id));
                }
            }
            if !copies.is_empty() {
                stats.acked_jobs += u64::from(self.acked.contains(&i));
                stats.watched_jobs += u64::from(self.watched.contains(&i));
                stats.predictions += u64::from(job.replicate);
                stats.recovered_predictions += u64::from(self.lost_finals.contains(&i));
                stats.swept_predictions += u64::from(self.silent.contains(&i));
                stats.apimp_tasks += u64::from(job.apimp);
                stats.events += 1;
                stats.republished += copies.len() as u64 - 1;
                // Weakened on purpose: when every try of the PUBLISHED mark failed, the
                // record stays ENQUEUED, which still answers later deliveries as
                // duplicates until it expires.
                match self.store.record(&publish_key_of(job.provider(), &job.job_id)) {
                    Some(r) if matches!(r.status, RecordStatus::Published | RecordStatus::Enqueued) => {}
                    other => return Err(format!("{} published but its record is {other:?}", job.job_id)),
                }
            }
        }
        // 3. Nothing unsigned was queued.
        for m in self.inbox.messages() {
            if m.body.contains("\"forged\"") {
                return Err(format!("a forged body reached the inbox: {}", m.body));
            }
        }
        // 4. Nothing left blocked forever, nothing left behind.
        let now_ms = self.clock.now_ms();
        let horizon_s = now_ms / 1000 + 16 * 24 * 3600;
        for r in self.store.records() {
            if r.expires_at > horizon_s
                || r.work_lease_until_ms.is_some_and(|u| u > now_ms + 3_600_000)
                || r.lease_until_ms > now_ms + 3_600_000
            {
                return Err(format!("record blocked too long: {r:?}"));
            }
        }
        // Only the foreign jobs' messages are dead-lettered, and the endless jobs' at their
        // horizon, each with its reason.
        let quoted = |j: &SimJob| format!("\"{}\"", j.job_id);
        let foreign: Vec<String> = self.jobs.iter().filter(|j| j.foreign).map(quoted).collect();
        let endless: Vec<String> = self.endless.iter().filter_map(|i| self.jobs.get(*i)).map(quoted).collect();
        let dlq: Vec<_> = self
            .inbox_dlq
            .messages()
            .into_iter()
            .filter(|m| {
                let reason = |what: &str| {
                    m.attributes.iter().any(|(k, v)| k == FAILURE_REASON_ATTRIBUTE && !v.is_empty() && v.contains(what))
                };
                let of = |ids: &[String]| ids.iter().any(|id| m.body.contains(id.as_str()));
                !((reason("") && of(&foreign)) || (reason("horizon") && of(&endless)))
            })
            .collect();
        if !dlq.is_empty() {
            return Err(format!(
                "{} message(s) dead-lettered although every fault was passing: {:?}",
                dlq.len(),
                dlq.iter().map(|m| &m.attributes).collect::<Vec<_>>()
            ));
        }
        if !self.inbox.held_ids().is_empty() {
            return Err(format!("inbox not drained: {:?}", self.inbox.held_ids()));
        }
        stats.calls = self.chaos.injected.calls.load(Ordering::Relaxed);
        stats.failures = self.chaos.injected.failures.load(Ordering::Relaxed);
        stats.crashes = self.chaos.injected.crashes.load(Ordering::Relaxed);
        Ok(stats)
    }
}

/// Runs the schedule of `seed` with the given fault rate (per port call) and checks the
/// invariants. Call it on a current-thread runtime: the schedule is then the same on
/// every run.
pub async fn run_schedule(seed: u64, fault_rate: f64) -> Result<Stats, Failure> {
    let mut world = World::new(seed, fault_rate);
    // The user registers the watched jobs (a failed send would be retried by them).
    for m in std::mem::take(&mut world.registrations) {
        if let Err(e) = world.inbox.send(m).await {
            return Err(Failure { seed, what: format!("registration refused: {e}"), trace: vec![] });
        }
    }
    let chaos_until = world.clock.now_ms() + 2 * 3600 * 1000;
    let fail = |world: &World, what: String| Failure { seed, what, trace: world.chaos.trace() };
    if let Err(what) = world.run(chaos_until, 20_000).await {
        return Err(fail(&world, what));
    }
    world.check().map_err(|what| fail(&world, what))
}

/// Runs `count` schedules from `first_seed`; the first failure stops the run.
pub fn run_many(first_seed: u64, count: u64, fault_rate: f64) -> Result<Stats, Failure> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().map_err(|e| Failure {
        seed: first_seed,
        what: format!("no runtime: {e}"),
        trace: vec![],
    })?;
    let mut total = Stats::default();
    for seed in first_seed..first_seed.saturating_add(count) {
        total.add(&rt.block_on(run_schedule(seed, fault_rate))?);
    }
    Ok(total)
}
