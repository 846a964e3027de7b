//! A (verified) Katalo webhook body, and the inbox message the receiver writes around it.
#![no_main]

use genhook::providers::katalo::message::{KataloMessage, KataloWebhookMessage};
use genhook::providers::katalo::webhook::KataloWebhook;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(w) = KataloWebhook::parse(data) {
        assert!(!w.job_id.is_empty() && !w.event_type.is_empty());
        // The message carries the body as sent: it must read back as the same webhook.
        let json = KataloWebhookMessage::received_json("katalo#j#e", &w.job_id, &w.event_type, "t", w.text)
            .expect("a message is written for every webhook that parses");
        let Ok(KataloMessage::Webhook(m)) = serde_json::from_str::<KataloMessage>(&json) else {
            panic!("not a katalo.webhook message: {json}");
        };
        assert_eq!((m.job_id.as_str(), m.event_type.as_str()), (&*w.job_id, &*w.event_type));
        assert_eq!(Some(m.payload), serde_json::from_slice(data).ok());
    }
});
