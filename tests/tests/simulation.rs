//! The quick run of the pipeline simulation (see `genhook_tests::sim`): a few thousand
//! seeded fault schedules, each checked against the invariants. `GENHOOK_SIM_SEED=N`
//! replays one schedule; `GENHOOK_SIM_SCHEDULES` sets how many run (default 2000).
//! The long run is `scripts/simulate.sh`.

use genhook_tests::sim;

#[test]
fn the_pipeline_keeps_its_promise_under_random_faults() {
    let (first, count) = match std::env::var("GENHOOK_SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        Some(seed) => (seed, 1),
        None => (1, std::env::var("GENHOOK_SIM_SCHEDULES").ok().and_then(|s| s.parse().ok()).unwrap_or(2000)),
    };
    match sim::run_many(first, count, 0.15) {
        Ok(stats) => {
            eprintln!("{count} schedules from seed {first}: {stats:?}");
            assert!(stats.crashes > 0 && stats.failures > 0, "the schedules injected faults: {stats:?}");
            if count > 100 {
                assert!(stats.watched_jobs > 0, "some jobs were published through their watch: {stats:?}");
                assert!(stats.refused_jobs > 0, "some jobs had a foreign output URL: {stats:?}");
                assert!(stats.abandoned > 0, "and some of them were abandoned: {stats:?}");
                assert!(stats.recovered_predictions > 0, "some predictions were recovered by their watch: {stats:?}");
                assert!(stats.swept_predictions > 0, "some predictions were found by a sweep alone: {stats:?}");
                assert!(stats.endless_jobs > 0, "some jobs never ended and were given up on: {stats:?}");
                assert!(stats.apimp_tasks > 0, "some APIMP tasks were published: {stats:?}");
            }
        }
        Err(failure) => panic!("{failure}"),
    }
}
