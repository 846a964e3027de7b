//! Stored secrets: laid over the environment at cold start, re-read periodically and
//! when a delivery fails authentication (rate-limited, within a time budget), the store
//! the truth for previous values.

use std::sync::Mutex;

use http::Request;
use serde_json::json;
use time::macros::datetime;

use super::*;
use crate::adapters::memory::{MemoryQueue, MemoryStore};
use crate::domain::clock::ManualClock;
use crate::engine::receiver::Receiver;
use crate::ports::secrets::SecretError;
use crate::toolkit::auth::hmac::sign_hex;

/// A secret store whose content the test sets, counting reads.
struct Store {
    values: Mutex<Result<BTreeMap<String, String>, SecretError>>,
    reads: Mutex<u32>,
    /// Each read first waits this long (a store that hangs).
    slow: Mutex<std::time::Duration>,
}

impl Store {
    fn with(pairs: &[(&str, &str)]) -> Arc<Self> {
        let s = Self { values: Mutex::new(Ok(BTreeMap::new())), reads: Mutex::new(0), slow: Mutex::default() };
        s.set(pairs);
        Arc::new(s)
    }
    fn set(&self, pairs: &[(&str, &str)]) {
        *self.values.lock().unwrap() = Ok(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
    }
    fn fail(&self) {
        *self.values.lock().unwrap() =
            Err(SecretError::Unavailable { id: "arn:secret".into(), reason: "AccessDenied".into() });
    }
    fn reads(&self) -> u32 {
        *self.reads.lock().unwrap()
    }
}

#[async_trait]
impl SecretSource for Store {
    async fn fetch(&self) -> Result<BTreeMap<String, String>, SecretError> {
        *self.reads.lock().unwrap() += 1;
        let slow = *self.slow.lock().unwrap();
        tokio::time::sleep(slow).await;
        self.values.lock().unwrap().clone()
    }
}

fn base() -> Env {
    Env::from_pairs([("GENHOOK_SECRET_IDS", "arn:secret"), ("KATALO_API_KEY", "from-env")])
}

#[tokio::test]
async fn each_function_takes_only_its_own_variables_from_the_store() {
    let store = Store::with(&[
        ("KATALO_WEBHOOK_SECRET", "whsec_stored"),
        ("KATALO_API_KEY", "kat_stored"),
        ("GENHOOK_LINK_SECRET", "link_stored"),
        ("GENHOOK_TABLE", "not-a-secret"),
    ]);
    let receiver = SecretEnv::load_from(base(), receiver_secret_names(), store.clone()).await.unwrap();
    assert_eq!(receiver.env.optional("KATALO_WEBHOOK_SECRET").as_deref(), Some("whsec_stored"));
    assert_eq!(receiver.env.optional("KATALO_API_KEY").as_deref(), Some("from-env"), "not the receiver's");
    assert_eq!(receiver.env.optional("GENHOOK_LINK_SECRET"), None);
    assert_eq!(receiver.env.optional("GENHOOK_TABLE"), None, "only secret variables come from the store");
    assert!(!format!("{receiver:?}").contains("stored\""), "values never show in Debug");

    let worker = SecretEnv::load_from(base(), api_secret_names(), store.clone()).await.unwrap();
    assert_eq!(worker.env.optional("KATALO_API_KEY").as_deref(), Some("kat_stored"));
    assert_eq!(worker.env.optional("GENHOOK_LINK_SECRET").as_deref(), Some("link_stored"));
    assert_eq!(worker.env.optional("KATALO_WEBHOOK_SECRET"), None, "not the worker's");

    store.fail();
    let err = SecretEnv::load_from(base(), api_secret_names(), store).await.unwrap_err().to_string();
    assert!(err.contains("GENHOOK_SECRET_IDS") && err.contains("AccessDenied"), "{err}");
}

fn delivery(job: &str, secret: &str) -> Request<Vec<u8>> {
    let body = json!({"event_type": "generation.completed", "job_id": job, "outputs": []}).to_string().into_bytes();
    Request::post("/webhooks/katalo")
        .header("x-katalo-signature", sign_hex(secret.as_bytes(), &body))
        .body(body)
        .unwrap()
}

async fn receiver(store: Arc<Store>, clock: Arc<ManualClock>) -> Receiver {
    let secrets = SecretEnv::load_from(base(), receiver_secret_names(), store).await.unwrap();
    let reload = secrets.receiver_reload(clock.clone()).unwrap().unwrap();
    let (dedupe, inbox) = (Arc::new(MemoryStore::default()), Arc::new(MemoryQueue::default()));
    super::super::receiver(&secrets.env, dedupe, inbox, clock).unwrap().with_reload(reload)
}

#[tokio::test]
async fn a_rotation_is_picked_up_and_a_revocation_holds_within_the_period() {
    let clock = Arc::new(ManualClock::new(datetime!(2026-11-24 12:00:00 UTC)));
    let store = Store::with(&[("KATALO_WEBHOOK_SECRET", "whsec_old_value_01")]);
    let r = receiver(store.clone(), clock.clone()).await;
    assert_eq!(r.handle(delivery("job_1", "whsec_old_value_01"), None).await.status(), 200);
    assert_eq!(store.reads(), 1, "read once at cold start");

    // The rotation procedure: the new key, and the old one as the previous.
    store.set(&[
        ("KATALO_WEBHOOK_SECRET", "whsec_new_value_02"),
        ("KATALO_WEBHOOK_SECRET_PREVIOUS", "whsec_old_value_01"),
    ]);
    clock.advance(time::Duration::seconds(30));
    assert_eq!(r.handle(delivery("job_2", "whsec_new_value_02"), None).await.status(), 401, "not re-read yet");
    clock.advance(time::Duration::seconds(31));
    assert_eq!(r.handle(delivery("job_2", "whsec_new_value_02"), None).await.status(), 200);
    assert_eq!(store.reads(), 2, "re-read once the period was over");
    // Deliveries signed before the provider switched still verify.
    assert_eq!(r.handle(delivery("job_3", "whsec_old_value_01"), None).await.status(), 200);
    assert_eq!(store.reads(), 2, "a good signature reads nothing within the period");

    // The previous value cleared in the store: a warm receiver that sees no failed check
    // drops it within the period all the same.
    store.set(&[("KATALO_WEBHOOK_SECRET", "whsec_new_value_02")]);
    clock.advance(time::Duration::seconds(61));
    assert_eq!(r.handle(delivery("job_4", "whsec_new_value_02"), None).await.status(), 200);
    assert_eq!(store.reads(), 3, "the periodic re-read");
    assert_eq!(r.handle(delivery("job_5", "whsec_old_value_01"), None).await.status(), 401, "revoked");
}

/// A key replaced without a previous value in the store is refused at once: nothing
/// keeps it alive on an instance that knew it.
#[tokio::test]
async fn a_replaced_key_without_a_stored_previous_is_refused() {
    let clock = Arc::new(ManualClock::new(datetime!(2026-11-24 12:00:00 UTC)));
    let store = Store::with(&[("KATALO_WEBHOOK_SECRET", "whsec_leaked_key_01")]);
    let r = receiver(store.clone(), clock.clone()).await;
    store.set(&[("KATALO_WEBHOOK_SECRET", "whsec_fresh_key_002")]);
    clock.advance(time::Duration::seconds(61));
    assert_eq!(r.handle(delivery("job_1", "whsec_fresh_key_002"), None).await.status(), 200);
    assert_eq!(r.handle(delivery("job_2", "whsec_leaked_key_01"), None).await.status(), 401);
}

#[tokio::test]
async fn bad_signatures_re_read_the_store_at_most_once_a_minute() {
    let clock = Arc::new(ManualClock::new(datetime!(2026-11-24 12:00:00 UTC)));
    let store = Store::with(&[("KATALO_WEBHOOK_SECRET", "whsec_current_0001")]);
    let r = receiver(store.clone(), clock.clone()).await;
    for _ in 0..5 {
        assert_eq!(r.handle(delivery("job_f", "whsec_forged_key_0"), None).await.status(), 401);
    }
    assert_eq!(store.reads(), 1, "not within a minute of the last read");
    clock.advance(time::Duration::seconds(60));
    for _ in 0..5 {
        assert_eq!(r.handle(delivery("job_f", "whsec_forged_key_0"), None).await.status(), 401);
    }
    assert_eq!(store.reads(), 2, "one read per minute, however many forgeries");

    // A store that fails, or holds nothing usable, keeps the secrets in use.
    clock.advance(time::Duration::seconds(60));
    store.fail();
    assert_eq!(r.handle(delivery("job_f", "whsec_forged_key_0"), None).await.status(), 401);
    clock.advance(time::Duration::seconds(60));
    store.set(&[]);
    assert_eq!(r.handle(delivery("job_f", "whsec_forged_key_0"), None).await.status(), 401);
    assert_eq!(r.handle(delivery("job_4", "whsec_current_0001"), None).await.status(), 200);
}

/// A store that hangs holds a delivery up no longer than the reload budget, which the
/// receiver's `Timeout` counts; the delivery goes on with the secrets in use.
#[tokio::test(start_paused = true)]
async fn a_hanging_store_holds_a_delivery_up_no_longer_than_the_budget() {
    let clock = Arc::new(ManualClock::new(datetime!(2026-11-24 12:00:00 UTC)));
    let store = Store::with(&[("KATALO_WEBHOOK_SECRET", "whsec_current_0001")]);
    let r = receiver(store.clone(), clock.clone()).await;
    *store.slow.lock().unwrap() = std::time::Duration::from_secs(60);
    clock.advance(time::Duration::seconds(61));
    let started = tokio::time::Instant::now();
    assert_eq!(r.handle(delivery("job_1", "whsec_current_0001"), None).await.status(), 200);
    assert_eq!(store.reads(), 2, "the periodic re-read was tried");
    assert!(started.elapsed() <= crate::engine::reload::SECRET_RELOAD_BUDGET, "{:?}", started.elapsed());
}

/// The worker's API keys are re-read on the same period (and, by the worker, when a
/// provider refuses one): a rotated key rebuilds the reconcilers.
#[tokio::test]
async fn the_worker_re_reads_its_api_keys_on_the_period() {
    let clock = Arc::new(ManualClock::new(datetime!(2026-11-24 12:00:00 UTC)));
    let store = Store::with(&[("KATALO_API_KEY", "kat_old_key")]);
    let secrets = SecretEnv::load_from(base(), api_secret_names(), store.clone()).await.unwrap();
    let deps = crate::config::deps(clock.clone(), Arc::new(MemoryStore::default()), std::time::Duration::from_secs(10));
    let reload = secrets.worker_reload(clock.clone(), deps).unwrap().unwrap();
    store.set(&[("KATALO_API_KEY", "kat_new_key")]);
    assert!(!reload.due(clock.now_ms()));
    assert!(reload.reload().await.is_none(), "not within the period");
    clock.advance(time::Duration::seconds(61));
    assert!(reload.due(clock.now_ms()));
    assert!(reload.reload().await.is_some(), "the rotated key rebuilds the reconcilers");
    assert_eq!(store.reads(), 2);
    clock.advance(time::Duration::seconds(61));
    assert!(reload.reload().await.is_none(), "nothing changed");
}

/// The links function re-reads its keys on the period too: a rotated links' key (or API
/// key) rebuilds the service.
#[tokio::test]
async fn the_links_function_re_reads_its_keys_on_the_period() {
    let clock = Arc::new(ManualClock::new(datetime!(2026-11-24 12:00:00 UTC)));
    let store = Store::with(&[("KATALO_API_KEY", "kat_key"), ("GENHOOK_LINK_SECRET", "links_key_1")]);
    let secrets = SecretEnv::load_from(base(), api_secret_names(), store.clone()).await.unwrap();
    let cache = Arc::new(MemoryStore::default());
    let reload = secrets.links_reload(clock.clone(), cache.clone(), cache).unwrap().unwrap();
    store.set(&[
        ("KATALO_API_KEY", "kat_key"),
        ("GENHOOK_LINK_SECRET", "links_key_2"),
        ("GENHOOK_LINK_SECRET_PREVIOUS", "links_key_1"),
    ]);
    assert!(reload.reload().await.is_none(), "not within the period");
    clock.advance(time::Duration::seconds(61));
    assert!(reload.due(clock.now_ms()));
    assert!(reload.reload().await.is_some(), "the rotated key rebuilds the service");
}

/// The worker's links' key is re-read too: new links are minted under a rotated key.
#[tokio::test]
async fn the_worker_re_reads_its_links_key() {
    let clock = Arc::new(ManualClock::new(datetime!(2026-11-24 12:00:00 UTC)));
    let store = Store::with(&[("KATALO_API_KEY", "kat_key"), ("GENHOOK_LINK_SECRET", "links_key_1")]);
    let env = base().overlaid([("GENHOOK_PUBLIC_URL", "https://hooks.example.com")]);
    let secrets = SecretEnv::load_from(env, api_secret_names(), store.clone()).await.unwrap();
    let deps = crate::config::deps(clock.clone(), Arc::new(MemoryStore::default()), std::time::Duration::from_secs(10));
    let reload = secrets.worker_reload(clock.clone(), deps).unwrap().unwrap();
    store.set(&[("KATALO_API_KEY", "kat_key"), ("GENHOOK_LINK_SECRET", "links_key_2")]);
    clock.advance(time::Duration::seconds(61));
    let keys = reload.reload().await.expect("the rotated links' key rebuilds the keys");
    assert!(keys.links.is_some(), "the worker still mints links");
}
