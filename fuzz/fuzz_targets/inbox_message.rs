//! An inbox message as the worker reads it: the envelope, then the provider's own type,
//! then what the worker derives from it before any I/O (keys, the next poll's message,
//! re-serialization).
#![no_main]

use genhook::domain::inbox::Envelope;
use genhook::providers::apimp::message::{ApimpMessage, ApimpWatchMessage, publish_key, watch_message};
use genhook::providers::katalo::message::KataloMessage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(envelope) = Envelope::parse(text) else { return };
    let _ = envelope.provider();
    if let Ok(KataloMessage::Webhook(m)) = serde_json::from_str::<KataloMessage>(text) {
        let again: KataloMessage = serde_json::from_str(&m.to_json()).expect("what we serialize parses back");
        let KataloMessage::Webhook(again) = again else { panic!("a webhook message read back as another kind") };
        assert_eq!(again.dedupe_key, m.dedupe_key);
        let next = genhook::providers::katalo::message::KataloWebhookMessage { polls: m.polls + 1, ..m.clone() };
        let _ = next.poll_message(std::time::Duration::from_secs(1));
    }
    let Ok(message) = serde_json::from_str::<ApimpMessage>(text) else { return };
    let again: ApimpMessage = serde_json::from_str(&message.to_json()).expect("what we serialize parses back");
    assert_eq!(again, message);
    if let ApimpMessage::Watch(m) = &message {
        let _ = publish_key(&m.watch.task_id);
        let polls = m.polls + 1;
        let next = ApimpWatchMessage { polls, ..m.clone() };
        let _ = watch_message(&next, None);
        let _ = format!("poll {}", polls + 1);
        let _ = 1_795_435_200 >= m.watch.horizon_at;
    }
});
