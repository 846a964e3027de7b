//! Secrets from Secrets Manager (moto's), as the Lambdas read them: the receiver and the
//! worker configured from one JSON secret, a rotation picked up without a restart (the
//! previous value working while the store keeps it, revoked once it does not), a rotated
//! API key reaching a running worker, and clear errors for a missing or malformed secret.

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
    assert!(WorkerConfig::from_env(&worker_secrets.env).unwrap().build_with(&sdk, None).is_ok());

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

/// A provider API key rotated in Secrets Manager (the old one revoked at the provider)
/// reaches a running worker: the provider refuses the old key, the record is retried,
/// not dead-lettered, and the worker's re-read of the store makes the retry go with the
/// new key.
#[tokio::test]
async fn a_rotated_api_key_reaches_a_running_worker() {
    use genhook_cli::simulate::script::Answer;
    use genhook_cli::simulate::{ApiOptions, KataloSimulator};

    let sm = client().await;
    let aws = genhook_tests::aws::aws().await;
    let stack = aws.stack().await;
    let options = ApiOptions { api_key: "kat_rotated_new".into(), rate_limit_per_min: 0, ..ApiOptions::default() };
    let katalo = KataloSimulator::start(([127, 0, 0, 1], 0).into(), options).await.unwrap();
    katalo.script("job_rot", vec![Answer::Job(genhook_tests::fake_katalo::succeeded("job_rot", 3600))]);
    let arn = secret(&sm, r#"{"KATALO_API_KEY": "kat_rotated_old"}"#).await;
    let vars = env(&[
        ("GENHOOK_SECRET_IDS", arn.clone()),
        ("GENHOOK_SECRET_REFRESH_SECS", "1".into()),
        ("GENHOOK_RETRY_BASE_SECS", "1".into()),
        ("GENHOOK_TABLE", stack.table.clone()),
        ("GENHOOK_INBOX_QUEUE_URL", stack.inbox.clone()),
        ("GENHOOK_INBOX_DLQ_URL", stack.inbox_dlq.clone()),
        ("GENHOOK_OUTBOX_QUEUE_URL", stack.outbox.clone()),
        ("KATALO_API_BASE_URL", katalo.base_url()),
    ]);
    let sdk = load_sdk_config().await;
    let secrets = SecretEnv::load(&sdk, vars, api_secret_names()).await.unwrap();
    let worker = WorkerConfig::from_env(&secrets.env).unwrap().build_with(&sdk, Some(&secrets)).unwrap();

    let message = serde_json::json!({"type": "katalo.webhook", "dedupe_key": "katalo#job_rot#on:generation.completed",
        "job_id": "job_rot", "event_type": "generation.completed", "received_at": "2026-11-23T12:00:00Z", "payload": {}});
    aws.sqs.send_message().queue_url(&stack.inbox).message_body(message.to_string()).send().await.unwrap();
    sm.put_secret_value()
        .secret_id(&arn)
        .secret_string(r#"{"KATALO_API_KEY": "kat_rotated_new"}"#)
        .send()
        .await
        .unwrap();

    let first = lambda::pump(&aws, &worker, &stack.inbox).await;
    assert_eq!(
        (first.received, first.failed.len()),
        (1, 0),
        "the old key refused: retried (sent anew), not dead-lettered"
    );
    assert!(aws.receive_all(&stack.inbox_dlq).await.is_empty());
    lambda::pump_until_empty(&aws, &worker, &stack.inbox, 40).await;
    assert!(aws.receive_all(&stack.inbox_dlq).await.is_empty(), "nothing dead-lettered");
    let events = aws.receive_all(&stack.outbox).await;
    assert_eq!(events.len(), 1, "published with the new key");
    assert!(katalo.calls("job_rot") >= 1);
}
