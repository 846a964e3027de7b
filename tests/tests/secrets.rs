//! Secrets from Secrets Manager (moto's), as the Lambdas read them: the receiver and the
//! worker configured from one JSON secret, a rotation picked up without a restart while
//! the old value keeps working, and clear errors for a missing or malformed secret.

use genhook::adapters::aws::load_sdk_config;
use genhook::config::{ReceiverConfig, SecretEnv, WorkerConfig, api_secret_names, receiver_secret_names};
use genhook::domain::clock::SystemClock;
use genhook_tests::{env, lambda, unique};
use std::sync::Arc;

async fn client() -> aws_sdk_secretsmanager::Client {
    let var = "AWS_ENDPOINT_URL_SECRETS_MANAGER";
    assert!(
        std::env::var(var).is_ok_and(|v| v.starts_with("http://127.0.0.1")),
        "{var} must point at moto: run the suite with scripts/test.sh"
    );
    aws_sdk_secretsmanager::Client::new(&load_sdk_config().await)
}

/// Creates a secret holding `text`; returns its ARN.
async fn secret(sm: &aws_sdk_secretsmanager::Client, text: &str) -> String {
    let out = sm.create_secret().name(unique("genhook-secrets")).secret_string(text).send().await.unwrap();
    out.arn().unwrap().to_string()
}

async fn post(receiver: &genhook::engine::receiver::Receiver, job: &str, key: &str) -> u16 {
    let body = serde_json::json!({"event_type": "generation.completed", "job_id": job, "outputs": []}).to_string();
    let sig = genhook::toolkit::auth::hmac::sign_hex(key.as_bytes(), body.as_bytes());
    let event = lambda::apigw_event("POST", "/webhooks/katalo", body.as_bytes(), Some(&sig), true);
    lambda::deliver(receiver, event).await.0
}

#[tokio::test]
async fn the_functions_read_their_secrets_and_pick_up_a_rotation() {
    let sm = client().await;
    let aws = genhook_tests::aws::aws().await;
    let stack = aws.stack().await;
    let arn = secret(
        &sm,
        r#"{"KATALO_WEBHOOK_SECRET": "whsec_moto_first_01", "KATALO_API_KEY": "kat_from_the_store", "GENHOOK_LINK_SECRET": "links_from_the_store"}"#,
    )
    .await;
    let vars = env(&[
        ("GENHOOK_SECRET_IDS", arn.clone()),
        ("GENHOOK_SECRET_REFRESH_SECS", "1".into()),
        ("GENHOOK_TABLE", stack.table.clone()),
        ("GENHOOK_INBOX_QUEUE_URL", stack.inbox.clone()),
        ("GENHOOK_OUTBOX_QUEUE_URL", stack.outbox.clone()),
        ("GENHOOK_PUBLIC_URL", "https://hooks.example.com".into()),
    ]);
    let sdk = load_sdk_config().await;

    // The receiver: configured from the stored secret alone.
    let secrets = SecretEnv::load(&sdk, vars.clone(), receiver_secret_names()).await.unwrap();
    let reload = secrets.receiver_reload(Arc::new(SystemClock)).unwrap().unwrap();
    let receiver = ReceiverConfig::from_env(&secrets.env).unwrap().build_with(&sdk).with_reload(reload);
    assert_eq!(post(&receiver, "job_sm_1", "whsec_moto_first_01").await, 200);

    // The worker: its API key and the links' key come from the same secret.
    let worker_secrets = SecretEnv::load(&sdk, vars.clone(), api_secret_names()).await.unwrap();
    assert_eq!(worker_secrets.env.optional("KATALO_API_KEY").as_deref(), Some("kat_from_the_store"));
    assert_eq!(worker_secrets.env.optional("KATALO_WEBHOOK_SECRET"), None);
    assert!(WorkerConfig::from_env(&worker_secrets.env).unwrap().build_with(&sdk).is_ok());

    // Rotated in Secrets Manager (the new key, the old one as the previous): the running
    // receiver accepts both.
    let put = |text: &'static str| sm.put_secret_value().secret_id(&arn).secret_string(text).send();
    put(
        r#"{"KATALO_WEBHOOK_SECRET": "whsec_moto_second_02", "KATALO_WEBHOOK_SECRET_PREVIOUS": "whsec_moto_first_01"}"#,
    )
    .await
    .unwrap();
    // The receiver re-reads the store every second here (a minute by default).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(post(&receiver, "job_sm_2", "whsec_moto_second_02").await, 200);
    assert_eq!(post(&receiver, "job_sm_3", "whsec_moto_first_01").await, 200);
    assert_eq!(post(&receiver, "job_sm_4", "whsec_never_stored_3").await, 401);

    // The previous key revoked in the store: refused within the period, by a receiver
    // whose last delivery verified.
    put(r#"{"KATALO_WEBHOOK_SECRET": "whsec_moto_second_02"}"#).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(post(&receiver, "job_sm_5", "whsec_moto_second_02").await, 200);
    assert_eq!(post(&receiver, "job_sm_6", "whsec_moto_first_01").await, 401, "revoked");
}

#[tokio::test]
async fn a_missing_or_malformed_secret_stops_the_cold_start_naming_it() {
    let sm = client().await;
    let sdk = load_sdk_config().await;
    let plain = secret(&sm, "whsec_not_json_at_all").await;
    let missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:genhook-missing-AbCdEf".to_string();
    for (id, says) in [(plain.clone(), "JSON"), (missing.clone(), "GetSecretValue")] {
        let vars = env(&[("GENHOOK_SECRET_IDS", id.clone())]);
        let err = SecretEnv::load(&sdk, vars, receiver_secret_names()).await.unwrap_err().to_string();
        assert!(err.contains("GENHOOK_SECRET_IDS") && err.contains(&id) && err.contains(says), "{err}");
        assert!(!err.contains("whsec_not_json"), "never the secret's content: {err}");
    }
}
