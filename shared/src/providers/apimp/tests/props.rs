use proptest::prelude::*;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::domain::clock::{MAX_INSTANT, MIN_INSTANT};
use crate::domain::testing::{body, cases, deeply_nested, json, number, text, writable};
use crate::providers::apimp::api::{media_from_url, parse_task};
use crate::providers::apimp::callback::{Callback, parse, task_state};
use crate::providers::apimp::capability::{mint_callback_url, verify_query};
use crate::providers::apimp::upstream::Upstream;
use crate::providers::apimp::vidu;
use crate::toolkit::auth::hmac::HmacSecrets;

fn upstream() -> impl Strategy<Value = Upstream> {
    prop::sample::select(Upstream::ALL.to_vec())
}

/// A callback shaped like one of the upstreams', with adversarial values.
fn callback() -> impl Strategy<Value = Value> {
    let field = prop::sample::select(vec!["task_id", "id", "task_status", "status", "state", "challenge"]);
    let value = prop_oneof![text().prop_map(Value::String), number(), json()];
    prop::collection::vec((field, value), 0..5)
        .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect()))
}

fn files() -> impl Strategy<Value = Value> {
    let file = prop_oneof![
        text().prop_map(Value::String),
        (text(), prop_oneof![number(), text().prop_map(Value::String)])
            .prop_map(|(url, at)| json!({"file_url": url, "file_type": "image", "expires_at": at})),
        json(),
    ];
    (text(), prop::collection::vec(file, 0..4), prop_oneof![number(), json()])
        .prop_map(|(status, files, progress)| json!({"code": 200, "data": {"status": status, "files": files, "progress": progress}}))
}

fn check_task(v: &Value) -> Result<(), TestCaseError> {
    if let Ok(t) = parse_task(v, "t") {
        prop_assert!(t.progress.is_none_or(|p| p <= 100));
        for f in &t.files {
            let _ = media_from_url(&f.url);
            if let Some(e) = f.expires_at {
                writable(e)?;
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn any_callback_body_parses_or_is_refused(u in upstream(), raw in prop_oneof![body(), callback().prop_map(|v| v.to_string().into_bytes())]) {
        if let Ok(Callback::Update(update)) = parse(u, &raw) {
            prop_assert!(!update.upstream_task_id.is_empty());
            prop_assert_eq!(update.state, task_state(u, &update.status));
        }
    }

    #[test]
    fn any_status_response_is_read_with_bounded_values(v in prop_oneof![json(), files()]) {
        check_task(&v)?;
    }

    #[test]
    fn any_url_has_a_media_or_none(url in text()) {
        let _ = media_from_url(&url);
    }

    /// A minted capability URL verifies on its own route only.
    #[test]
    fn mint_then_verify(u in upstream(), other in upstream(), reference in "[A-Za-z0-9._:-]{1,200}", secret in "[ -~]{1,40}") {
        let secrets = HmacSecrets::new(secret, None);
        let url = mint_callback_url("https://abc.example.com/prod", u, &reference, &secrets).unwrap();
        let query = url::Url::parse(&url).unwrap().query().map(str::to_string);
        prop_assert_eq!(verify_query(query.as_deref(), u, &secrets), Ok(reference));
        if other != u {
            prop_assert!(verify_query(query.as_deref(), other, &secrets).is_err());
        }
    }

    #[test]
    fn any_query_is_checked_without_panicking(u in upstream(), q in prop_oneof![text(), "(ref|token|x)=[^&]{0,80}(&(ref|token)=[^&]{0,80}){0,3}"]) {
        let _ = verify_query(Some(&q), u, &HmacSecrets::new("s", None));
    }

    /// A request signed the way Vidu does verifies within the window, whatever its
    /// path, query and nonce.
    #[test]
    fn vidu_sign_then_verify(path in "/[ -~]{0,40}", query in "[ -~]{0,60}", nonce in "[!-~]{1,40}", skew in -300i64..=300) {
        let now = time::macros::datetime!(2026-11-23 12:00:00 UTC);
        let date = httpdate::fmt_http_date(std::time::SystemTime::from(now + time::Duration::seconds(skew)));
        let mut headers = http::HeaderMap::new();
        for (k, v) in vidu::sign("vidu-secret", &path, &query, &date, &nonce) {
            headers.insert(k, v.parse().unwrap());
        }
        prop_assert_eq!(vidu::verify(&headers, &path, &query, &HmacSecrets::new("vidu-secret", None), now), Ok(()));
    }

    #[test]
    fn any_vidu_headers_are_checked_without_panicking(
        values in prop::collection::vec((prop::sample::select(vec!["date", "x-hmac-signed-headers", "x-hmac-algorithm", "x-hmac-access-key", "x-hmac-signature", "x-request-nonce"]), prop_oneof![text(), "[ -~]{0,80}"]), 0..8),
        now in prop::sample::select(vec![MIN_INSTANT, MAX_INSTANT, time::macros::datetime!(2026-11-23 12:00:00 UTC), OffsetDateTime::UNIX_EPOCH]),
    ) {
        let mut headers = http::HeaderMap::new();
        for (k, v) in values {
            if let Ok(v) = http::HeaderValue::from_str(&v) {
                headers.append(k, v);
            }
        }
        let _ = vidu::verify(&headers, "/p", "q", &HmacSecrets::new("s", None), now);
    }
}

#[test]
fn deep_callbacks_are_refused() {
    for raw in deeply_nested(50_000) {
        for u in Upstream::ALL {
            assert!(parse(u, raw.as_bytes()).is_err());
        }
    }
}
