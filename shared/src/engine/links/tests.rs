//! The link service on the in-memory cache and a scripted job API.

use std::collections::VecDeque;
use std::sync::Mutex;

use async_trait::async_trait;
use futures_util::future::join_all;
use time::OffsetDateTime;
use time::macros::datetime;
use url::Url;

use super::*;
use crate::adapters::memory::MemoryStore;
use crate::domain::clock::ManualClock;
use crate::domain::job::{Job, JobOutput};
use crate::engine::stage::without_stage;

const NOW: OffsetDateTime = datetime!(2026-11-24 12:00:00 UTC);
const SECRET: &[u8] = b"link-secret-for-tests";

/// Answers `get_job` from a script (the last answer repeats), after `delay`, counting calls.
struct ScriptedJobs {
    answers: Mutex<VecDeque<Result<Job, JobApiError>>>,
    calls: Mutex<u32>,
    delay: Duration,
}

impl ScriptedJobs {
    fn new(answers: Vec<Result<Job, JobApiError>>) -> Arc<Self> {
        Self::slow(answers, Duration::ZERO)
    }
    fn slow(answers: Vec<Result<Job, JobApiError>>, delay: Duration) -> Arc<Self> {
        Arc::new(Self { answers: Mutex::new(answers.into()), calls: Mutex::new(0), delay })
    }
    fn calls(&self) -> u32 {
        *self.calls.lock().unwrap()
    }
}

#[async_trait]
impl JobApi for ScriptedJobs {
    async fn get_job(&self, _job_id: &str) -> Result<Job, JobApiError> {
        *self.calls.lock().unwrap() += 1;
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        let mut a = self.answers.lock().unwrap();
        if a.len() > 1 { a.pop_front().unwrap() } else { a.front().cloned().unwrap() }
    }
}

/// A succeeded job whose outputs' URLs end in `tag` and expire `ttl` after `at`.
fn succeeded(tag: &str, at: OffsetDateTime, ttl: i64, outputs: usize) -> Result<Job, JobApiError> {
    Ok(Job {
        job_id: "job_1".into(),
        state: JobState::Succeeded,
        status: "succeeded".into(),
        outputs: (0..outputs)
            .map(|i| JobOutput {
                url: format!("https://cdn.example/job_1/{i}.png?sig={tag}"),
                expires_at: Some(at + time::Duration::seconds(ttl)),
            })
            .collect(),
        failure: None,
        reference: None,
        progress: None,
        metadata: None,
        source_asset_id: None,
        outputs_removed: false,
    })
}

fn ended(state: JobState) -> Result<Job, JobApiError> {
    let mut job = succeeded("x", NOW, 3600, 0)?;
    job.state = state;
    job.status = state.word().into();
    Ok(job)
}

struct Fixture {
    service: Arc<LinkService>,
    api: Arc<ScriptedJobs>,
    clock: Arc<ManualClock>,
    cache: Arc<MemoryStore>,
    signer: LinkSigner,
}

fn settings() -> LinkSettings {
    LinkSettings { wait: Duration::from_millis(300), poll: Duration::from_millis(10), ..LinkSettings::default() }
}

fn fixture(api: Arc<ScriptedJobs>) -> Fixture {
    fixture_with(api, settings())
}

fn fixture_with(api: Arc<ScriptedJobs>, settings: LinkSettings) -> Fixture {
    let clock = Arc::new(ManualClock::new(NOW));
    let cache = Arc::new(MemoryStore::default());
    let signer = LinkSigner::new(SECRET, None).unwrap();
    let service = LinkService::new(signer.clone(), cache.clone(), clock.clone(), settings)
        .serve("katalo", api.clone())
        .unserved("apimp", "APIMP_API_KEY is not configured");
    Fixture { service: Arc::new(service), api, clock, cache, signer }
}

impl Fixture {
    fn link(&self, provider: &str, index: usize) -> String {
        let base = Url::parse("https://hooks.example.com").unwrap();
        self.signer.link(&base, provider, "job_1", index, self.clock.now()).unwrap()
    }

    async fn get(&self, link: &str) -> Response<String> {
        let uri = link.strip_prefix("https://hooks.example.com").unwrap_or(link);
        self.service.handle(&Method::GET, &uri.parse().unwrap()).await
    }
}

fn location(r: &Response<String>) -> &str {
    assert_eq!(r.status(), StatusCode::FOUND, "{}", r.body());
    r.headers()[header::LOCATION].to_str().unwrap()
}

fn error_code(r: &Response<String>) -> String {
    let v: serde_json::Value = serde_json::from_str(r.body()).unwrap();
    v["error"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_link_redirects_to_a_fresh_url_and_the_cache_serves_the_next_clicks() {
    let f = fixture(ScriptedJobs::new(vec![succeeded("first", NOW, 3600, 2), succeeded("second", NOW, 3600, 2)]));
    let r = f.get(&f.link("katalo", 1)).await;
    assert_eq!(location(&r), "https://cdn.example/job_1/1.png?sig=first");
    assert_eq!(r.headers()[header::CACHE_CONTROL], "no-store");
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    assert_eq!(location(&f.get(&f.link("katalo", 0)).await), "https://cdn.example/job_1/0.png?sig=first");
    // 49 minutes later the URLs still live 11 minutes: served from the cache.
    f.clock.advance(time::Duration::seconds(49 * 60));
    assert_eq!(location(&f.get(&f.link("katalo", 1)).await), "https://cdn.example/job_1/1.png?sig=first");
    assert_eq!(f.api.calls(), 1);
    let cached = f.cache.get_outputs("katalo", "job_1").await.unwrap().unwrap();
    assert_eq!(cached.outputs.len(), 2);
}

#[tokio::test]
async fn a_url_nearing_expiry_is_never_handed_out_and_is_read_again() {
    let f = fixture(ScriptedJobs::new(vec![succeeded("first", NOW, 3600, 1), succeeded("second", NOW, 7200, 1)]));
    assert!(location(&f.get(&f.link("katalo", 0)).await).ends_with("sig=first"));
    // 50 min 1 s later the cached URL has less than the 10 minutes left.
    f.clock.advance(time::Duration::seconds(50 * 60 + 1));
    assert!(location(&f.get(&f.link("katalo", 0)).await).ends_with("sig=second"));
    assert_eq!(f.api.calls(), 2);
}

#[tokio::test]
async fn a_rate_limited_provider_gets_503_with_retry_after_never_a_stale_url() {
    let limited = Err(JobApiError::RateLimited { retry_after: Some(Duration::from_secs(7)) });
    let f = fixture(ScriptedJobs::new(vec![succeeded("first", NOW, 3600, 1), limited]));
    assert!(location(&f.get(&f.link("katalo", 0)).await).ends_with("sig=first"));
    f.clock.advance(time::Duration::seconds(3001));
    let r = f.get(&f.link("katalo", 0)).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()[header::RETRY_AFTER], "7");
    assert!(!r.body().contains("sig=first"), "{}", r.body());
    // The lease is held for its length; after it, the next click tries the provider again.
    f.clock.advance(time::Duration::seconds(13));
    let r = f.get(&f.link("katalo", 0)).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(f.api.calls(), 3);

    let down = Err(JobApiError::Transient { reason: "HTTP 502".into(), retry_after: None });
    let f = fixture(ScriptedJobs::new(vec![down]));
    let r = f.get(&f.link("katalo", 0)).await;
    assert_eq!(
        (r.status(), &r.headers()[header::RETRY_AFTER]),
        (StatusCode::SERVICE_UNAVAILABLE, &"2".parse().unwrap())
    );
}

#[tokio::test]
async fn forged_expired_and_malformed_links_are_refused() {
    let f = fixture(ScriptedJobs::new(vec![succeeded("first", NOW, 3600, 1)]));
    let good = f.link("katalo", 0);
    let forged = good.replace("/job_1/", "/job_2/");
    let r = f.get(&forged).await;
    assert_eq!((r.status(), error_code(&r).as_str()), (StatusCode::FORBIDDEN, "invalid_token"));
    let other_secret = LinkSigner::new(b"another secret", None).unwrap();
    let base = Url::parse("https://hooks.example.com").unwrap();
    let r = f.get(&other_secret.link(&base, "katalo", "job_1", 0, NOW).unwrap()).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = f.get(&good.replace("/0?", "/1?")).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "the index is signed");

    let expiring = LinkSigner::new(SECRET, Some(Duration::from_secs(60))).unwrap();
    let link = expiring.link(&base, "katalo", "job_1", 0, NOW).unwrap();
    assert!(location(&f.get(&link).await).ends_with("sig=first"), "a live expiring link works");
    f.clock.advance(time::Duration::seconds(60));
    let r = f.get(&link).await;
    assert_eq!((r.status(), error_code(&r).as_str()), (StatusCode::FORBIDDEN, "link_expired"));

    for bad in [
        "/outputs/katalo/job_1/0",
        "/outputs/katalo/job_1?token=ab",
        "/webhooks/katalo",
        "/outputs/katalo/job_1/00?token=x",
    ] {
        let r = f.get(bad).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{bad}");
    }
    let path = good.strip_prefix("https://hooks.example.com").unwrap();
    let r = f.service.handle(&Method::POST, &path.parse().unwrap()).await;
    assert_eq!(
        (r.status(), &r.headers()[header::ALLOW]),
        (StatusCode::METHOD_NOT_ALLOWED, &"GET, HEAD".parse().unwrap())
    );
    assert_eq!(f.api.calls(), 1, "no refused request reached the provider");
}

#[tokio::test]
async fn jobs_without_the_output_get_404_and_outputs_no_longer_served_get_410() {
    let cases = [
        (Err(JobApiError::Permanent { status: 404, reason: "not_found".into() }), StatusCode::NOT_FOUND),
        (ended(JobState::Failed), StatusCode::NOT_FOUND),
        (ended(JobState::Pending), StatusCode::NOT_FOUND),
        (succeeded("one", NOW, 3600, 1), StatusCode::NOT_FOUND),
        (succeeded("gone", NOW, -1, 3), StatusCode::GONE),
        (succeeded("short", NOW, 60, 3), StatusCode::BAD_GATEWAY),
        (Err(JobApiError::Permanent { status: 401, reason: "unauthorized".into() }), StatusCode::BAD_GATEWAY),
    ];
    for (answer, want) in cases {
        let f = fixture(ScriptedJobs::new(vec![answer.clone()]));
        // Output 2: the job has none when it has one output (404), or its URLs are gone
        // (410) or too short-lived (502).
        let r = f.get(&f.link("katalo", 2)).await;
        assert_eq!(r.status(), want, "{answer:?}: {}", r.body());
        assert!(!r.body().contains("sig="), "never a URL in an error: {}", r.body());
    }
    let f = fixture(ScriptedJobs::new(vec![succeeded("x", NOW, 3600, 1)]));
    let r = f.get(&f.link("apimp", 0)).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.body().contains("APIMP_API_KEY"), "{}", r.body());
    let r = f.get(&f.link("replicate", 0)).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_burst_of_clicks_costs_one_provider_read() {
    let api = ScriptedJobs::slow(vec![succeeded("only", NOW, 3600, 1)], Duration::from_millis(50));
    let f = fixture(api);
    let link = f.link("katalo", 0);
    let answers = join_all((0..100).map(|_| f.get(&link))).await;
    for r in &answers {
        assert!(location(r).ends_with("sig=only"));
    }
    assert_eq!(f.api.calls(), 1);
}

#[tokio::test]
async fn a_request_waiting_on_a_lease_nobody_finishes_gets_503_then_a_later_one_refreshes() {
    let f = fixture(ScriptedJobs::new(vec![succeeded("first", NOW, 3600, 1)]));
    // A request that took the lease and died.
    assert!(
        f.cache.lease_refresh("katalo", "job_1", "dead", f.clock.now_ms() + 12_000, f.clock.now_ms()).await.unwrap()
    );
    let r = f.get(&f.link("katalo", 0)).await;
    assert_eq!(
        (r.status(), &r.headers()[header::RETRY_AFTER]),
        (StatusCode::SERVICE_UNAVAILABLE, &"1".parse().unwrap())
    );
    assert_eq!(f.api.calls(), 0);
    f.clock.advance(time::Duration::seconds(13));
    assert!(location(&f.get(&f.link("katalo", 0)).await).ends_with("sig=first"));
}

#[tokio::test]
async fn a_link_minted_under_a_stage_is_followed_once_the_front_end_cuts_it() {
    let f = fixture(ScriptedJobs::new(vec![succeeded("first", NOW, 3600, 1)]));
    let base = Url::parse("https://abc.execute-api.us-east-1.amazonaws.com/Prod").unwrap();
    let link = f.signer.link(&base, "katalo", "job_1", 0, NOW).unwrap();
    let path = link.strip_prefix("https://abc.execute-api.us-east-1.amazonaws.com").unwrap();
    assert!(path.starts_with("/Prod/outputs/"), "{path}");
    // The functions cut the front end's stage by the receiver's rule before the service
    // sees the path (config::lambda::without_stage); a segment that is no stage stays.
    let r = f.service.handle(&Method::GET, &without_stage(path, Some("Prod")).parse().unwrap()).await;
    assert!(location(&r).ends_with("sig=first"));
    let r = f.service.handle(&Method::GET, &without_stage(path, Some("live")).parse().unwrap()).await;
    assert_eq!(r.status(), 404);
}

/// A refresh that ends without caching frees its lease: right after a 429 (or a job with
/// no outputs, or a cache that refused the put) the next click reads the provider again,
/// as soon as the provider's own Retry-After allows, never "another request is
/// refreshing" for the rest of the lease.
#[tokio::test]
async fn every_ending_of_a_refresh_frees_its_lease() {
    let limited = Err(JobApiError::RateLimited { retry_after: Some(Duration::from_secs(3)) });
    let f = fixture(ScriptedJobs::new(vec![limited, ended(JobState::Pending), succeeded("ok", NOW, 3600, 1)]));
    let r = f.get(&f.link("katalo", 0)).await;
    assert_eq!(
        (r.status(), r.headers()[header::RETRY_AFTER].to_str().unwrap()),
        (StatusCode::SERVICE_UNAVAILABLE, "3")
    );
    f.clock.advance(time::Duration::seconds(3));
    let r = f.get(&f.link("katalo", 0)).await;
    assert_eq!((r.status(), f.api.calls()), (StatusCode::NOT_FOUND, 2), "read again: {}", r.body());
    let r = f.get(&f.link("katalo", 0)).await;
    assert!(location(&r).ends_with("sig=ok"));
    assert_eq!(f.api.calls(), 3);
}

/// A job whose provider removed its files (Replicate's `data_removed`) answers 410 Gone,
/// not 404: the link was good, the file is no more.
#[tokio::test]
async fn a_job_whose_outputs_were_removed_is_gone() {
    let mut removed = succeeded("x", NOW, 3600, 0);
    if let Ok(job) = &mut removed {
        job.outputs_removed = true;
    }
    let f = fixture(ScriptedJobs::new(vec![removed]));
    let r = f.get(&f.link("katalo", 0)).await;
    assert_eq!((r.status(), error_code(&r).as_str()), (StatusCode::GONE, "gone"), "{}", r.body());
}

/// A service a re-read of the secrets gives, once; counts the re-reads.
struct FreshOnce {
    service: Mutex<Option<LinkService>>,
    reads: std::sync::atomic::AtomicU32,
}

#[async_trait]
impl crate::engine::reload::Reload<LinkService> for FreshOnce {
    async fn reload(&self) -> Option<LinkService> {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.service.lock().unwrap().take()
    }
}

/// A key rotated (the old one revoked at the provider) while the links function runs:
/// the refusal re-reads the secrets and the click is answered once more with the new
/// key, not 502 until the instance is replaced.
#[tokio::test]
async fn a_refused_key_is_answered_once_more_with_the_re_read_one() {
    let refused = Err(JobApiError::Permanent { status: 401, reason: "bad key".into() });
    let f = fixture(ScriptedJobs::new(vec![refused.clone()]));
    let service = |api: Arc<ScriptedJobs>| {
        LinkService::new(f.signer.clone(), f.cache.clone(), f.clock.clone(), settings()).serve("katalo", api)
    };
    let uri: Uri = f.link("katalo", 0).strip_prefix("https://hooks.example.com").unwrap().parse().unwrap();

    let stale = Links::new(service(ScriptedJobs::new(vec![refused.clone()])), None);
    let r = stale.handle(&Method::GET, &uri).await;
    assert_eq!((r.status(), error_code(&r).as_str()), (StatusCode::BAD_GATEWAY, "bad_gateway"));

    let rotated = service(ScriptedJobs::new(vec![succeeded("new-key", NOW, 3600, 1)]));
    let reload = Arc::new(FreshOnce { service: Mutex::new(Some(rotated)), reads: Default::default() });
    let links = Links::new(service(ScriptedJobs::new(vec![refused])), Some(reload.clone()));
    let r = links.handle(&Method::GET, &uri).await;
    assert!(location(&r).ends_with("sig=new-key"), "{}", r.body());
    assert_eq!(reload.reads.load(std::sync::atomic::Ordering::SeqCst), 1);
    let r = links.handle(&Method::GET, &uri).await;
    assert!(location(&r).ends_with("sig=new-key"), "the re-read service stays: {}", r.body());
}

/// Issue 20, item 8: a link never redirects to a URL that is not `https` on a host the
/// provider serves files from (an open redirect on the operator's domain): it answers
/// 502 `output_host_refused` naming why, and counts the refusal.
#[tokio::test]
async fn a_link_never_redirects_off_the_providers_hosts() {
    use crate::toolkit::http::output_hosts::{OutputHosts, OutputRule};
    let rule = |list: &str| OutputRule {
        provider: "katalo",
        variable: "KATALO_OUTPUT_HOSTS",
        hosts: OutputHosts::parse(list).unwrap(),
    };
    let job = |url: &str| {
        let mut job = succeeded("x", NOW, 3600, 1).unwrap();
        job.outputs[0].url = url.into();
        Ok(job)
    };
    for (url, why) in [
        ("https://evil.example/login", "its host \"evil.example\""),
        ("http://cdn.example/job_1/0.png", "its scheme is \"http\""),
        ("javascript:alert(1)", "its scheme is \"javascript\""),
    ] {
        let f = fixture(ScriptedJobs::new(vec![job(url)]));
        let service = LinkService::new(f.signer.clone(), f.cache.clone(), f.clock.clone(), settings())
            .serve("katalo", f.api.clone())
            .with_output_hosts(vec![rule("cdn.example")]);
        let counts = crate::domain::testing::metrics::Counts::default();
        let uri: Uri = f.link("katalo", 0).strip_prefix("https://hooks.example.com").unwrap().parse().unwrap();
        let (r, _) = counts
            .record(|| futures_util::FutureExt::now_or_never(service.handle_noting_keys(&Method::GET, &uri)))
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_GATEWAY, "{url}");
        assert_eq!(error_code(&r), "output_host_refused");
        let message =
            serde_json::from_str::<serde_json::Value>(r.body()).unwrap()["message"].as_str().unwrap().to_string();
        assert!(message.contains(why) && message.contains("KATALO_OUTPUT_HOSTS"), "{message}");
        assert!(!r.headers().contains_key(header::LOCATION));
        assert_eq!(counts.get(name::LINKS_REFUSED, &[("reason", "output_host_refused")]), 1);
    }
    // On a listed host: followed.
    let f = fixture(ScriptedJobs::new(vec![succeeded("ok", NOW, 3600, 1)]));
    let service = LinkService::new(f.signer.clone(), f.cache.clone(), f.clock.clone(), settings())
        .serve("katalo", f.api.clone())
        .with_output_hosts(vec![rule("cdn.example")]);
    let uri: Uri = f.link("katalo", 0).strip_prefix("https://hooks.example.com").unwrap().parse().unwrap();
    assert_eq!(service.handle(&Method::GET, &uri).await.status(), StatusCode::FOUND);
}
