//! Each APIMP upstream's callback body (the first byte picks the upstream).
#![no_main]

use genhook::providers::apimp::callback;
use genhook::providers::apimp::upstream::Upstream;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((first, body)) = data.split_first() else { return };
    let upstream = Upstream::ALL[usize::from(*first) % Upstream::ALL.len()];
    if let Ok(callback::Callback::Update(u)) = callback::parse(upstream, body) {
        assert!(!u.upstream_task_id.is_empty());
        assert_eq!(u.state, callback::task_state(upstream, &u.status));
    }
});
