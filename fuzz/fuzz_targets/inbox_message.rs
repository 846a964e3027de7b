//! An inbox message as the worker reads it: deserialize, then what the worker derives
//! from it before any I/O (keys, the next poll's message, re-serialization).
#![no_main]

use genhook::domain::inbox::{ApimpWatchMessage, InboxMessage};
use genhook::domain::watch::publish_key;
use genhook::providers::apimp::watch::watch_message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(message) = serde_json::from_str::<InboxMessage>(text) else { return };
    let _ = message.dedupe_key();
    let json = message.to_json();
    let again: InboxMessage = serde_json::from_str(&json).expect("what we serialize parses back");
    assert_eq!(again.dedupe_key(), message.dedupe_key());
    if let InboxMessage::ApimpWatch(m) = &message {
        let _ = publish_key(&m.watch.task_id);
        let polls = m.polls + 1;
        let next = ApimpWatchMessage { polls, ..m.clone() };
        let _ = watch_message(&next, None);
        let _ = format!("poll {}", polls + 1);
        let _ = 1_795_435_200 >= m.watch.horizon_at;
    }
});
