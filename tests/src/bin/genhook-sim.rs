//! The long run of the pipeline simulation: `genhook-sim [SCHEDULES] [FIRST_SEED]
//! [FAULT_RATE]` runs that many seeded fault schedules (default 100000 from seed 1 at a
//! 0.15 fault rate per port call), prints progress with schedules per second, and stops
//! at the first broken invariant with its seed and trace (exit 1).

use std::time::Instant;

use genhook_tests::sim;

fn main() {
    let mut args = std::env::args().skip(1);
    let count: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let first: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1);
    let rate: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(0.15);
    let started = Instant::now();
    let chunk = 10_000u64;
    let mut done = 0u64;
    let mut total = sim::Stats::default();
    while done < count {
        let n = chunk.min(count - done);
        match sim::run_many(first + done, n, rate) {
            Ok(s) => total.add(&s),
            Err(failure) => {
                eprintln!("INVARIANT BROKEN after {done} good schedules\n{failure}");
                std::process::exit(1);
            }
        }
        done += n;
        let secs = started.elapsed().as_secs_f64();
        eprintln!("{done} schedules, {:.0} schedules/s", done as f64 / secs.max(1e-9));
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{count} schedules from seed {first} at fault rate {rate}: no invariant broken; {:.1} s, {:.0} schedules/s",
        secs,
        count as f64 / secs.max(1e-9)
    );
    println!(
        "deliveries {}, events {}, at-least-once republications {}, port calls {}, injected failures {}, crashes {}",
        total.deliveries, total.events, total.republished, total.calls, total.failures, total.crashes
    );
    println!(
        "watched jobs published {}, Replicate predictions {} (recovered by their watch {}, found by a sweep alone {}), APIMP tasks {}, sweeps {}, jobs abandoned once {} (never ending {}, foreign outputs {})",
        total.watched_jobs,
        total.predictions,
        total.recovered_predictions,
        total.swept_predictions,
        total.apimp_tasks,
        total.sweeps,
        total.abandoned,
        total.endless_jobs,
        total.refused_jobs
    );
}
