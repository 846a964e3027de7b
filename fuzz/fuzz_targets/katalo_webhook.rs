//! A (verified) Katalo webhook body.
#![no_main]

use genhook::providers::katalo::webhook::KataloWebhook;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(w) = KataloWebhook::parse(data) {
        assert!(!w.job_id.is_empty() && !w.event_type.is_empty());
    }
});
