//! `genhook dev --demo`: the simulator delivers a burst of signed webhooks (duplicates,
//! forgeries, failed jobs, reordering) to the running receiver; the run ends when the
//! inbox is drained and every job's event is out. One more Katalo job is watched only:
//! its webhook never comes, and the poller publishes it. Then two APIMP tasks run on the
//! same simulator: one calls back through a minted Kling callback URL (twice), the other
//! is polling-only; each is registered with a watch and published once. Last, two
//! Replicate predictions lose their final webhook: one is published by the watch its
//! `starting` delivery registered, the other, which sent nothing at all, by a sweep.

use std::process::ExitCode;
use std::time::Duration;

use genhook::domain::clock::{Clock, SystemClock};
use genhook::providers::apimp::capability::mint_callback_url;
use genhook::providers::apimp::upstream::Upstream;
use genhook::providers::apimp::watch::{DEFAULT_HORIZON, watch};
use genhook::providers::replicate::sweep::ReplicateSweepMessage;
use genhook::toolkit::auth::hmac::HmacSecrets;
use genhook::toolkit::auth::standard_webhooks::Secret;

use super::{DevError, Running, summary};
use crate::simulate::{DeliveryOptions, JobOutcome, JobSpec, KataloSimulator, Provider, deliver};

/// How long the pipeline may take to drain after the last delivery.
const DRAIN_BUDGET: Duration = Duration::from_secs(90);

/// Runs the demo against `running`; exit code 0 when every job was published once.
pub async fn run(running: &Running, jobs: u32) -> Result<ExitCode, DevError> {
    let sim = running.simulator.as_ref().ok_or_else(|| DevError::Demo("the demo needs the simulator".into()))?;
    let opts = DeliveryOptions {
        url: running.webhook_url.clone(),
        secret: running.secret.clone(),
        jobs,
        fail_rate: 0.25,
        duplicate_rate: 0.5,
        forged: 2,
        reorder: true,
        max_delay: Duration::from_millis(300),
        max_attempts: 6,
        retry_base: Duration::from_millis(200),
        concurrency: 4,
        progress: true,
        ..DeliveryOptions::default()
    };
    eprintln!(
        "genhook dev --demo: {jobs} simulated jobs; their signed webhooks arrive reordered, some twice, plus {} forged deliveries",
        opts.forged
    );
    let delivered = deliver(sim, &opts).await?;
    eprintln!("\nDeliveries (simulated provider's view)\n{delivered}");
    watched_katalo_job(running, sim).await?;
    apimp_tasks(running, sim).await?;
    replicate_predictions(running, sim).await?;

    let deadline = tokio::time::Instant::now() + DRAIN_BUDGET;
    loop {
        let depth = running.inbox.depth().await.map_err(|e| DevError::Demo(e.to_string()))?;
        if depth == 0 {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            return Err(DevError::Demo(format!("{depth} messages still in the inbox after {DRAIN_BUDGET:?}")));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    follow_link(running).await?;
    let totals = running.worker.lock().expect("totals lock").clone();
    eprintln!("{}", summary(&running.receiver, &totals));
    let expected = jobs as usize + WATCHED_JOBS + APIMP_TASKS + REPLICATE_PREDICTIONS;
    let ok = delivered.gave_up == 0 && totals.published == expected && totals.dead_lettered == 0;
    if ok {
        eprintln!("genhook dev --demo: every job was reconciled and published exactly once");
        Ok(ExitCode::SUCCESS)
    } else {
        Err(DevError::Demo(format!(
            "expected {expected} events, published {} ({} dead-lettered, {} deliveries given up)",
            totals.published, totals.dead_lettered, delivered.gave_up
        )))
    }
}

/// Katalo jobs the demo publishes through their watch alone.
const WATCHED_JOBS: usize = 1;

/// Creates a Katalo job whose webhook is never sent (as if the endpoint had been down
/// past Katalo's retries) and registers it with a watch: the poller publishes it.
async fn watched_katalo_job(running: &Running, sim: &KataloSimulator) -> Result<(), DevError> {
    let spec = JobSpec { outcome: JobOutcome::Completed, runs_for: Duration::from_millis(1500), reference: None };
    let job = sim.create_job(spec);
    let horizon = genhook::providers::katalo::watch::DEFAULT_HORIZON;
    genhook::providers::katalo::watch::watch(running.inbox_queue.as_ref(), &job, horizon, SystemClock.now())
        .await
        .map_err(|e| DevError::Demo(e.to_string()))?;
    eprintln!("genhook dev --demo: Katalo job {job} watched only (its webhook never comes; the poller publishes it)");
    Ok(())
}

/// Follows the first published output's `link` as a consumer would, long after the
/// event: the link service answers 302 to a live URL, which the simulator serves.
async fn follow_link(running: &Running) -> Result<(), DevError> {
    let demo = |e: String| DevError::Demo(e);
    let link = running.outbox.first_link().ok_or_else(|| demo("no published output carried a link".into()))?;
    let client = genhook::toolkit::http::client_builder(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| demo(e.to_string()))?;
    // The simulator fails some reads on purpose: a 503 says when to try again.
    let mut attempts = 0;
    let location = loop {
        attempts += 1;
        let resp = client.get(&link).send().await.map_err(|e| demo(e.without_url().to_string()))?;
        let status = resp.status();
        if status == reqwest::StatusCode::FOUND {
            let location = resp.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok());
            break location.ok_or_else(|| demo("the link's 302 has no Location".into()))?.to_string();
        }
        if status != reqwest::StatusCode::SERVICE_UNAVAILABLE || attempts >= 10 {
            return Err(demo(format!("following the output link got HTTP {status}")));
        }
        let wait = resp.headers().get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()?.parse().ok());
        tokio::time::sleep(Duration::from_secs(wait.unwrap_or(1))).await;
    };
    let file = client.get(&location).send().await.map_err(|e| demo(e.without_url().to_string()))?.status();
    eprintln!(
        "genhook dev --demo: followed output link {} -> 302 -> {} (HTTP {})",
        genhook::toolkit::http::redact::redact(&link),
        genhook::toolkit::http::redact::redact(&location),
        file.as_u16()
    );
    if !file.is_success() {
        return Err(demo(format!("the link's target answered HTTP {file}")));
    }
    Ok(())
}

/// APIMP tasks the demo runs: one with a callback, one polling-only.
const APIMP_TASKS: usize = 2;

/// Registers two simulator tasks as APIMP watches, and sends the first one's Kling
/// callback (twice: upstreams retry) to its minted callback URL once it finishes.
async fn apimp_tasks(running: &Running, sim: &KataloSimulator) -> Result<(), DevError> {
    let demo = |e: String| DevError::Demo(e);
    let spec = || JobSpec { outcome: JobOutcome::Completed, runs_for: Duration::from_millis(1500), reference: None };
    let (called_back, polled) = (sim.create_job(spec()), sim.create_job(spec()));
    let now = SystemClock.now();
    let inbox = running.inbox_queue.as_ref();
    // A reference names one task for good: each run of the demo (same state directory or
    // not) uses its own, named after its tasks.
    let (kling_ref, sora_ref) = (format!("demo-kling-{called_back}"), format!("demo-sora-{polled}"));
    watch(inbox, &kling_ref, &called_back, Some(Upstream::Kling), DEFAULT_HORIZON, now)
        .await
        .map_err(|e| demo(e.to_string()))?;
    watch(inbox, &sora_ref, &polled, None, DEFAULT_HORIZON, now).await.map_err(|e| demo(e.to_string()))?;
    eprintln!(
        "genhook dev --demo: APIMP tasks {called_back} (Kling, calls back) and {polled} (polling-only) registered"
    );

    let secrets = HmacSecrets::new(running.apimp_callback_secret.clone(), None);
    let url =
        mint_callback_url(&running.base_url, Upstream::Kling, &kling_ref, &secrets).map_err(|e| demo(e.to_string()))?;
    sim.wait_for_webhook_body(&called_back).await;
    let body = serde_json::json!({"task_id": "kling_demo_1", "task_status": "succeed",
        "task_result": {"videos": [{"url": "https://upstream.example/unsigned.mp4", "duration": "5"}]}});
    let client = genhook::toolkit::http::http_client(Duration::from_secs(10));
    for _ in 0..2 {
        let resp = client.post(&url).json(&body).send().await.map_err(|e| demo(e.without_url().to_string()))?;
        if !resp.status().is_success() {
            return Err(demo(format!("the Kling callback got HTTP {}", resp.status())));
        }
    }
    eprintln!("genhook dev --demo: Kling callback delivered twice to {}", genhook::toolkit::http::redact::redact(&url));
    Ok(())
}

/// Replicate predictions the demo publishes without their final webhook.
const REPLICATE_PREDICTIONS: usize = 2;

/// Two predictions whose final webhook is lost: the first sends its `starting` webhook
/// (which registers its watch: the poller publishes it); the second sends nothing at all,
/// and a sweep of the last hour's predictions, started once it ended, publishes it.
async fn replicate_predictions(running: &Running, sim: &KataloSimulator) -> Result<(), DevError> {
    let demo = |e: String| DevError::Demo(e);
    let spec = |ms| JobSpec { runs_for: Duration::from_millis(ms), ..JobSpec::default() };
    let (watched, swept) = (sim.create_prediction(spec(1500)), sim.create_prediction(spec(300)));
    let body = sim.start_body(&watched).ok_or_else(|| demo("the simulator lost a prediction".into()))?;
    let secret = Secret::parse(&running.replicate_secret).map_err(|e| demo(e.to_string()))?;
    let client = genhook::toolkit::http::http_client(Duration::from_secs(10));
    let mut request = client
        .post(format!("{}/webhooks/replicate", running.base_url))
        .header(reqwest::header::CONTENT_TYPE, "application/json");
    for (name, value) in secret.headers(&format!("msg_demo_{watched}"), SystemClock.now().unix_timestamp(), &body) {
        request = request.header(name, value);
    }
    let resp = request.body(body).send().await.map_err(|e| demo(e.without_url().to_string()))?;
    if !resp.status().is_success() {
        return Err(demo(format!("the Replicate starting webhook got HTTP {}", resp.status())));
    }
    eprintln!(
        "genhook dev --demo: Replicate prediction {watched} sent its starting webhook and will never send its final one (the watch it registered publishes it)"
    );
    sim.wait_for_webhook_body_for(Provider::Replicate, &swept).await;
    let sweep = ReplicateSweepMessage::start(Duration::from_secs(3600)).outgoing();
    running.inbox_queue.send(sweep).await.map_err(|e| demo(e.to_string()))?;
    eprintln!(
        "genhook dev --demo: Replicate prediction {swept} ended without a single webhook; a sweep of the last hour's predictions (genhook sweep) publishes it"
    );
    Ok(())
}
