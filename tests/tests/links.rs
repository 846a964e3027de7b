//! Output links end to end on the emulators: a Katalo webhook → receiver → DynamoDB
//! Local + SQS → worker (against the provider simulator, whose signed URLs really
//! expire) → an event whose outputs carry `link` → the links Lambda's handler, with its
//! cache in the same DynamoDB table.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use genhook::config::{LinksConfig, WorkerConfig};
use genhook::engine::links::Links;
use genhook::engine::receiver::Receiver;
use genhook::engine::worker::Worker;
use genhook_cli::simulate::{ApiOptions, JobOutcome, JobSpec, KataloSimulator, SIM_API_KEY};
use genhook_tests::aws::{Aws, Stack};
use genhook_tests::lambda::{apigw_event, pump_until_empty};
use genhook_tests::{Harness, env, schema};
use serde_json::Value;

const PUBLIC_URL: &str = "https://hooks.example.com";
const LINK_SECRET: &str = "link_integration_secret_0001";

struct Rig {
    aws: Aws,
    stack: Stack,
    sim: KataloSimulator,
    receiver: Receiver,
    worker: Worker,
    links: Arc<Links>,
}

/// A stack whose provider mints URLs that live `url_ttl`; nothing is handed out that
/// lives less than a second.
async fn rig(url_ttl: Duration) -> Rig {
    let aws = genhook_tests::aws::aws().await;
    let stack = aws.stack().await;
    let opts = ApiOptions { url_ttl, rate_limit_per_min: 0, ..ApiOptions::default() };
    let sim = KataloSimulator::start("127.0.0.1:0".parse().unwrap(), opts).await.unwrap();
    let receiver = Harness::receiver_for(&stack, &stack.inbox).await;
    let vars = env(&[
        ("GENHOOK_TABLE", stack.table.clone()),
        ("GENHOOK_INBOX_QUEUE_URL", stack.inbox.clone()),
        ("GENHOOK_INBOX_DLQ_URL", stack.inbox_dlq.clone()),
        ("GENHOOK_OUTBOX_QUEUE_URL", stack.outbox.clone()),
        ("KATALO_API_BASE_URL", sim.base_url()),
        // The simulator serves the files itself, over plain http on loopback.
        ("KATALO_OUTPUT_HOSTS", sim.base_url()),
        ("KATALO_API_KEY", SIM_API_KEY.into()),
        ("KATALO_API_MAX_RPS", "1000".into()),
        ("GENHOOK_MIN_URL_TTL_SECS", "1".into()),
        ("GENHOOK_HTTP_TIMEOUT_SECS", "2".into()),
        ("GENHOOK_LINK_SECRET", LINK_SECRET.into()),
        ("GENHOOK_PUBLIC_URL", PUBLIC_URL.into()),
    ]);
    let worker = WorkerConfig::from_env(&vars).unwrap().build().await.unwrap();
    let links = Arc::new(LinksConfig::from_env(&vars).unwrap().build().await.unwrap());
    Rig { aws, stack, sim, receiver, worker, links }
}

impl Rig {
    /// A job that has succeeded, delivered by its signed webhook and published; returns
    /// its id and event.
    async fn published_job(&self, outputs_wanted: usize) -> (String, Value) {
        let job = self.sim.create_job(JobSpec {
            outcome: JobOutcome::Completed,
            runs_for: Duration::from_millis(10),
            reference: None,
        });
        let body = self.sim.wait_for_webhook_body(&job).await.unwrap();
        assert_eq!(Harness::post_full(&self.receiver, &body).await.0, 200);
        pump_until_empty(&self.aws, &self.worker, &self.stack.inbox, 40).await;
        let events: Vec<Value> = self
            .aws
            .receive_all(&self.stack.outbox)
            .await
            .iter()
            .map(|m| schema::parse_event(m.body().unwrap()))
            .filter(|e| e["job_id"] == job.as_str())
            .collect();
        assert_eq!(events.len(), 1, "{events:?}");
        let event = events.into_iter().next().unwrap();
        assert!(event["outputs"].as_array().unwrap().len() >= outputs_wanted, "{event}");
        (job, event)
    }

    /// Follows a link through the links Lambda's handler: the status and `Location`.
    async fn follow(&self, link: &str) -> (u16, Option<String>, Value) {
        let path = link.strip_prefix(PUBLIC_URL).expect("a link on the public URL");
        let response =
            genhook_links::function_handler(&self.links, apigw_event("GET", path, b"", None, false)).await.unwrap();
        let location = response.headers().get("location").map(|v| v.to_str().unwrap().to_string());
        let body = match response.body() {
            lambda_http::Body::Text(t) if !t.is_empty() => serde_json::from_str(t).unwrap(),
            _ => Value::Null,
        };
        (response.status().as_u16(), location, body)
    }
}

async fn fetch(url: &str) -> u16 {
    genhook::toolkit::http::http_client(Duration::from_secs(5)).get(url).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn a_link_redirects_to_a_live_url_after_the_published_one_expired() {
    let r = rig(Duration::from_secs(3)).await;
    let (job, event) = r.published_job(1).await;
    let output = &event["outputs"][0];
    let (url, link) = (output["url"].as_str().unwrap(), output["link"].as_str().unwrap());
    assert!(link.starts_with(&format!("{PUBLIC_URL}/outputs/katalo/{job}/0?token=")), "{link}");
    assert_eq!(fetch(url).await, 200, "the published URL works at first");

    // Past its expiry the published URL is refused by the provider's storage...
    let expires_at = time::OffsetDateTime::parse(
        output["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let wait = expires_at - time::OffsetDateTime::now_utc() + time::Duration::milliseconds(1100);
    tokio::time::sleep(wait.try_into().unwrap_or_default()).await;
    assert_eq!(fetch(url).await, 403, "the simulator's URLs really expire");

    // ...and the link answers 302 to a freshly signed one that works.
    let reads = r.sim.reads();
    let (status, location, body) = r.follow(link).await;
    assert_eq!(status, 302, "{body}");
    let location = location.unwrap();
    assert_ne!(location, url);
    assert_eq!(fetch(&location).await, 200);
    assert_eq!(r.sim.reads(), reads + 1, "one provider read refreshed the cache");

    // Every output of the job has its own link.
    for (index, output) in event["outputs"].as_array().unwrap().iter().enumerate() {
        let (status, location, _) = r.follow(output["link"].as_str().unwrap()).await;
        assert_eq!(status, 302);
        assert!(location.unwrap().contains(&format!("/files/{job}/{}.png", index + 1)));
    }
}

#[tokio::test]
async fn forged_and_unknown_links_are_refused_without_a_provider_read() {
    let r = rig(Duration::from_secs(3600)).await;
    let (job, event) = r.published_job(1).await;
    let link = event["outputs"][0]["link"].as_str().unwrap().to_string();
    let reads = r.sim.reads();

    let last = link.chars().last().unwrap();
    let flipped = format!("{}{}", &link[..link.len() - 1], if last == '0' { '1' } else { '0' });
    let (status, _, body) = r.follow(&flipped).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("invalid_token")), "{body}");
    let other_job = link.replace(&job, "job_someone_else");
    assert_eq!(r.follow(&other_job).await.0, 403, "a token is bound to its job");
    let other_index = link.replace("/0?", "/7?");
    assert_eq!(r.follow(&other_index).await.0, 403, "and to its output");
    assert_eq!(r.follow(&format!("{PUBLIC_URL}/outputs/katalo/{job}/0")).await.0, 404, "no token: not a link");
    assert_eq!(r.sim.reads(), reads, "refused links never reach the provider");

    // A genuine link to a job the provider does not know gets 404.
    let signer = genhook::toolkit::auth::link_token::LinkSigner::new(LINK_SECRET.as_bytes(), None).unwrap();
    let base = url::Url::parse(PUBLIC_URL).unwrap();
    let unknown = signer.link(&base, "katalo", "job_never_created", 0, time::OffsetDateTime::now_utc()).unwrap();
    let (status, _, body) = r.follow(&unknown).await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test]
async fn a_burst_of_100_clicks_costs_at_most_one_provider_read() {
    let r = rig(Duration::from_secs(3600)).await;
    let (_, event) = r.published_job(1).await;
    let link = event["outputs"][0]["link"].as_str().unwrap().to_string();
    let reads = r.sim.reads();
    let answers = join_all((0..100).map(|_| r.follow(&link))).await;
    let redirected = answers.iter().filter(|(s, _, _)| *s == 302).count();
    assert_eq!(redirected, 100, "{:?}", answers.iter().find(|(s, _, _)| *s != 302));
    assert!(r.sim.reads() - reads <= 1, "{} provider reads", r.sim.reads() - reads);
    // While the cached URLs are fresh, later clicks cost none.
    for _ in 0..10 {
        assert_eq!(r.follow(&link).await.0, 302);
    }
    assert!(r.sim.reads() - reads <= 1);
    let cached = answers.iter().map(|(_, l, _)| l.clone()).collect::<std::collections::HashSet<_>>();
    assert_eq!(cached.len(), 1, "every click got the one cached URL");
}

/// Issue 20, item 4: the links and the worker read Katalo within one budget counted in
/// the table (1,200 a minute by default: 20 in each second). With the coming seconds'
/// reads all taken (by other instances), a first click waits a few windows and answers
/// 503 with `Retry-After`, and the worker's record waits, neither reading the provider;
/// once the windows pass, the click is answered from a fresh read.
#[tokio::test]
async fn the_links_and_the_worker_share_the_providers_read_budget() {
    use genhook::adapters::dynamodb::DynamoDedupeStore;
    use genhook::ports::budget::ReadBudget;
    let r = rig(Duration::from_secs(3600)).await;
    let (_, event) = r.published_job(1).await;
    let link = event["outputs"][0]["link"].as_str().unwrap().to_string();

    let store = DynamoDedupeStore::new(r.aws.ddb.clone(), r.stack.table.clone());
    let now_s = time::OffsetDateTime::now_utc().unix_timestamp();
    let spent = 15;
    for window_s in now_s..now_s + spent {
        while store.take_read("katalo", window_s, 20).await.unwrap() {}
    }
    let reads = r.sim.reads();
    let (status, _, body) = r.follow(&link).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "unavailable");
    let job = r.sim.create_job(JobSpec { outcome: JobOutcome::Completed, runs_for: Duration::ZERO, reference: None });
    let webhook = r.sim.wait_for_webhook_body(&job).await.unwrap();
    assert_eq!(Harness::post_full(&r.receiver, &webhook).await.0, 200);
    let pumped = genhook_tests::lambda::pump(&r.aws, &r.worker, &r.stack.inbox).await;
    assert_eq!((pumped.received, pumped.failed.len()), (1, 0), "the record waits (sent anew)");
    assert_eq!(r.sim.reads(), reads, "neither function read the provider past the budget");

    let left = now_s + spent - time::OffsetDateTime::now_utc().unix_timestamp();
    tokio::time::sleep(Duration::from_secs(u64::try_from(left).unwrap_or(0) + 1)).await;
    let (status, _, body) = r.follow(&link).await;
    assert_eq!(status, 302, "{body}");
    assert_eq!(r.sim.reads(), reads + 1);
}
