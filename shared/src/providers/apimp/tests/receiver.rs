//! The APIMP callback routes on the in-memory adapters.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use time::macros::datetime;

use crate::adapters::memory::{MemoryQueue, MemoryStore};
use crate::domain::clock::ManualClock;
use crate::engine::receiver::{Receiver, ReceiverSettings};
use crate::engine::stage::SentPath;
use crate::ports::provider::WebhookSource;
use crate::providers::apimp::capability::mint_callback_url;
use crate::providers::apimp::source::ApimpSource;
use crate::providers::apimp::upstream::Upstream;
use crate::providers::apimp::vidu;
use crate::providers::katalo::source::KataloSource;
use crate::toolkit::auth::hmac::HmacSecrets;

const CALLBACK_SECRET: &str = "apimp-callback-secret";
const VIDU_SECRET: &str = "vidu-signing-secret";

struct Rig {
    receiver: Receiver,
    store: Arc<MemoryStore>,
    inbox: Arc<MemoryQueue>,
}

fn rig(vidu: bool) -> Rig {
    let store = Arc::new(MemoryStore::default());
    let inbox = Arc::new(MemoryQueue::default());
    let clock = Arc::new(ManualClock::new(datetime!(2026-11-23 12:00:00 UTC)));
    let apimp = ApimpSource {
        callback_secrets: HmacSecrets::new(CALLBACK_SECRET, None),
        vidu_secrets: vidu.then(|| HmacSecrets::new(VIDU_SECRET, None)),
    };
    let sources: Vec<Arc<dyn WebhookSource>> =
        vec![Arc::new(KataloSource::new(HmacSecrets::new("katalo", None))), Arc::new(apimp)];
    let receiver = Receiver::new(store.clone(), inbox.clone(), sources, ReceiverSettings::default(), clock);
    Rig { receiver, store, inbox }
}

/// The path and query of a minted callback URL.
fn minted(upstream: Upstream, reference: &str) -> String {
    let url =
        mint_callback_url("https://hooks.example.com", upstream, reference, &HmacSecrets::new(CALLBACK_SECRET, None))
            .unwrap();
    url.trim_start_matches("https://hooks.example.com").to_string()
}

fn post(uri: &str, body: &Value) -> Request<Vec<u8>> {
    Request::builder().method(Method::POST).uri(uri).body(body.to_string().into_bytes()).unwrap()
}

/// `req` with Vidu's signature headers over `path` and `query`, dated `date`.
fn vidu_signed(mut req: Request<Vec<u8>>, path: &str, query: &str, date: &str) -> Request<Vec<u8>> {
    for (k, v) in vidu::sign(VIDU_SECRET, path, query, date, "nonce-1") {
        req.headers_mut().insert(k, v.parse().unwrap());
    }
    req
}

async fn send(rig: &Rig, req: Request<Vec<u8>>) -> (StatusCode, Value) {
    let resp = rig.receiver.handle(req, None).await;
    (resp.status(), serde_json::from_str(resp.body()).unwrap())
}

fn fixtures() -> Vec<(Upstream, Value)> {
    vec![
        (
            Upstream::Kling,
            json!({"task_id":"kt_1","task_status":"succeed","task_status_msg":"","created_at":1722769557708_i64,"updated_at":1722769557708_i64,"task_result":{"videos":[{"id":"v","url":"https://k/v.mp4","duration":"5"}]}}),
        ),
        (
            Upstream::Doubao,
            json!({"id":"cgt-2025-abc","model":"doubao-seedance-1-0-pro-250528","status":"succeeded","content":{"video_url":"https://ark/v.mp4"},"created_at":1743414619,"updated_at":1743414673}),
        ),
        (
            Upstream::Minimax,
            json!({"task_id":"115334141465231360","status":"Success","file_id":"205258526306433","base_resp":{"status_code":0,"status_msg":"success"}}),
        ),
        (
            Upstream::Vidu,
            json!({"id":"vidu_1","state":"success","err_code":"","credits":4,"payload":"","creations":[{"id":"c","url":"https://v/c.mp4"}]}),
        ),
    ]
}

#[tokio::test]
async fn each_upstream_callback_is_verified_deduped_and_queued() {
    let rig = rig(false);
    for (upstream, body) in fixtures() {
        let uri = minted(upstream, "order-7");
        let (status, json) = send(&rig, post(&uri, &body)).await;
        assert_eq!((status, &json["duplicate"]), (StatusCode::OK, &Value::Bool(false)), "{upstream}: {json}");
        let (_, again) = send(&rig, post(&uri, &body)).await;
        assert_eq!(again["duplicate"], true, "{upstream}");
    }
    let msgs: Vec<Value> = rig.inbox.messages().iter().map(|m| serde_json::from_str(&m.body).unwrap()).collect();
    assert_eq!(msgs.len(), 4);
    let keys: Vec<&str> = msgs.iter().map(|m| m["dedupe_key"].as_str().unwrap()).collect();
    assert_eq!(
        keys,
        [
            "apimp#kling:order-7#on:succeed",
            "apimp#doubao:order-7#on:succeeded",
            "apimp#minimax:order-7#on:success",
            "apimp#vidu:order-7#on:success"
        ]
    );
    for m in &msgs {
        assert_eq!(
            (m["type"].as_str(), m["reference"].as_str(), m["state"].as_str()),
            (Some("apimp.callback"), Some("order-7"), Some("succeeded"))
        );
    }
    assert_eq!(msgs[0]["payload"]["task_result"]["videos"][0]["duration"], "5", "payloads are carried whole");
}

#[tokio::test]
async fn progress_callbacks_are_deduped_too() {
    let rig = rig(false);
    let uri = minted(Upstream::Kling, "order-7");
    let body = json!({"task_id": "kt_1", "task_status": "processing"});
    send(&rig, post(&uri, &body)).await;
    let (_, again) = send(&rig, post(&uri, &body)).await;
    assert_eq!(again["duplicate"], true);
    let (_, done) = send(&rig, post(&uri, &json!({"task_id": "kt_1", "task_status": "succeed"}))).await;
    assert_eq!(done["duplicate"], false, "a new status is a new callback");
}

#[tokio::test]
async fn bad_or_missing_tokens_are_refused_before_anything_is_stored() {
    let rig = rig(false);
    let body = fixtures().remove(0).1;
    let good = minted(Upstream::Kling, "order-7");
    for uri in [
        "/webhooks/apimp/kling".to_string(),
        "/webhooks/apimp/kling?ref=order-7".to_string(),
        good.replace("order-7", "order-8"),
        good.replace("/kling", "/vidu"),
        format!("{good}0"),
    ] {
        let (status, json) = send(&rig, post(&uri, &body)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}: {json}");
    }
    assert_eq!(rig.store.calls.load(Ordering::SeqCst), 0);
    assert!(rig.inbox.messages().is_empty());
}

#[tokio::test]
async fn the_minimax_challenge_is_echoed_without_storing_or_queueing() {
    let rig = rig(false);
    let (status, json) = send(&rig, post(&minted(Upstream::Minimax, "order-7"), &json!({"challenge": "c-123"}))).await;
    assert_eq!((status, json), (StatusCode::OK, json!({"challenge": "c-123"})));
    assert_eq!(rig.store.calls.load(Ordering::SeqCst), 0);
    assert_eq!(rig.inbox.calls.load(Ordering::SeqCst), 0);
    // Without the token, no echo.
    let (status, _) = send(&rig, post("/webhooks/apimp/minimax", &json!({"challenge": "c-123"}))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// One callback URL stands for one task: whatever task ids and status words its bodies
/// carry, it opens at most one inbox message per terminal status and one for progress.
#[tokio::test]
async fn one_callback_url_enqueues_a_bounded_number_of_messages() {
    let rig = rig(false);
    let uri = minted(Upstream::Kling, "order-9");
    for i in 0..50 {
        for status in ["succeed", "failed", "processing", &format!("made-up-{i}")] {
            let body = json!({"task_id": format!("kt_{i}"), "task_status": status});
            let (code, json) = send(&rig, post(&uri, &body)).await;
            assert_eq!(code, StatusCode::OK, "{json}");
        }
    }
    let keys: Vec<String> = rig
        .inbox
        .messages()
        .iter()
        .map(|m| serde_json::from_str::<Value>(&m.body).unwrap()["dedupe_key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        keys,
        ["apimp#kling:order-9#on:succeed", "apimp#kling:order-9#on:failed", "apimp#kling:order-9#on:progress"],
        "the first task's, once each"
    );
    let first: Value = serde_json::from_str(&rig.inbox.messages()[0].body).unwrap();
    assert_eq!(first["upstream_task_id"], "kt_0");
}

#[tokio::test]
async fn vidu_signatures_are_required_when_configured() {
    let rig = rig(true);
    let body = json!({"id": "vidu_1", "state": "success"});
    let uri = minted(Upstream::Vidu, "order-7");
    let (path, query) = uri.split_once('?').unwrap();
    let (status, _) = send(&rig, post(&uri, &body)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "unsigned");
    let signed = |date: &str| vidu_signed(post(&uri, &body), path, query, date);
    let (status, json) = send(&rig, signed("Mon, 23 Nov 2026 11:50:00 GMT")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "stale Date: {json}");
    assert_eq!(json["message"], "signature verification failed", "the reason stays in the log");
    let (status, json) = send(&rig, signed("Mon, 23 Nov 2026 12:01:00 GMT")).await;
    assert_eq!(status, StatusCode::OK, "{json}");

    // A URL minted under a stage (`https://…/prod/webhooks/apimp/vidu`) is signed by Vidu
    // over that path; the front end's adapter cuts the stage for routing and hands the
    // path as sent along ([`SentPath`]), which the signature is checked over.
    let staged = format!("/prod{path}");
    let staged_post = |signed_path: &str| {
        let mut req = vidu_signed(post(&uri, &body), signed_path, query, "Mon, 23 Nov 2026 12:01:00 GMT");
        req.extensions_mut().insert(SentPath(staged.clone()));
        req
    };
    let (status, json) = send(&rig, staged_post(&staged)).await;
    assert_eq!(status, StatusCode::OK, "signed over the minted path: {json}");
    let (status, _) = send(&rig, staged_post(path)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "signed over the cut path, which Vidu never saw");
}

#[tokio::test]
async fn routes_methods_and_payloads() {
    let rig = rig(false);
    let (status, _) = send(&rig, post("/webhooks/apimp/sora?ref=r&token=t", &json!({}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "unknown upstream");
    let get = Request::builder().method(Method::GET).uri(minted(Upstream::Kling, "r")).body(Vec::new()).unwrap();
    assert_eq!(send(&rig, get).await.0, StatusCode::METHOD_NOT_ALLOWED);
    let (status, json) = send(&rig, post(&minted(Upstream::Doubao, "r"), &json!({"status": "queued"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(json["message"].as_str().unwrap().contains("`id`"), "{json}");
    // Not configured: the routes do not exist.
    let plain = Receiver::new(
        Arc::new(MemoryStore::default()),
        Arc::new(MemoryQueue::default()),
        crate::engine::receiver::tests::katalo_only(HmacSecrets::new("k", None)),
        ReceiverSettings::default(),
        Arc::new(ManualClock::new(datetime!(2026-11-23 12:00:00 UTC))),
    );
    let resp = plain.handle(post(&minted(Upstream::Kling, "r"), &fixtures()[0].1), None).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}
