//! Katalo's job response, and formatting every expiry it yields.
#![no_main]

use genhook::domain::clock::{MAX_INSTANT, MIN_INSTANT, rfc3339};
use genhook::providers::katalo::job::parse_job;
use libfuzzer_sys::fuzz_target;
use time::macros::datetime;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    for now in [datetime!(2026-11-23 12:00:00 UTC), datetime!(9999-12-31 23:59:59 UTC), datetime!(0000-01-01 0:00 UTC)]
    {
        if let Ok(job) = parse_job(&value, "job_fuzz", now) {
            for o in &job.outputs {
                if let Some(t) = o.expires_at {
                    assert!((MIN_INSTANT..=MAX_INSTANT).contains(&t), "{t}");
                    let _ = rfc3339(t);
                    // The worker's check that a URL lives long enough.
                    let _ = now.checked_add(time::Duration::minutes(10)).is_none_or(|min| t >= min);
                }
            }
        }
    }
});
