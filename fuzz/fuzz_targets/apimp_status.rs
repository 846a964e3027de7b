//! APIMP's status response, and formatting every expiry it yields.
#![no_main]

use genhook::domain::clock::{MAX_INSTANT, MIN_INSTANT, rfc3339};
use genhook::providers::apimp::api::{media_from_url, parse_task};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    if let Ok(task) = parse_task(&value, "task_fuzz") {
        assert!(task.progress.is_none_or(|p| p <= 100));
        for f in &task.files {
            let _ = media_from_url(&f.url);
            if let Some(t) = f.expires_at {
                assert!((MIN_INSTANT..=MAX_INSTANT).contains(&t), "{t}");
                let _ = rfc3339(t);
            }
        }
    }
});
