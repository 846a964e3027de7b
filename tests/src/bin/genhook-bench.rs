//! Receiver and worker throughput/latency on DynamoDB Local and the SQS emulator
//! (started by `scripts/bench.sh`). A benchmark, not a test: it prints figures and
//! asserts only correctness (every delivery acknowledged, one event per job).
//!
//! Usage: genhook-bench [DELIVERIES] [CONCURRENCY]   (defaults 1000 and 16)

use std::sync::Arc;
use std::time::{Duration, Instant};

use genhook_cli::simulate::script::Answer;
use genhook_tests::fake_katalo::succeeded;
use genhook_tests::{Harness, webhook};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn run(h: &Arc<Harness>, label: &str, jobs: Arc<Vec<Vec<u8>>>, concurrency: usize) {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (h, jobs, next) = (h.clone(), jobs.clone(), next.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(body) = jobs.get(i) else { return lat };
                    let t = Instant::now();
                    let (status, _) = h.post(body).await;
                    assert_eq!(status, 200, "every delivery is acknowledged");
                    lat.push(t.elapsed());
                }
            })
        })
        .collect();
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let wall = start.elapsed();
    lat.sort();
    println!(
        "receiver {label:<10} n={:<5} c={concurrency:<3} {:>7.0} deliveries/s  p50 {:>6.2} ms  p90 {:>6.2} ms  p99 {:>6.2} ms",
        lat.len(),
        lat.len() as f64 / wall.as_secs_f64(),
        percentile(&lat, 0.5).as_secs_f64() * 1e3,
        percentile(&lat, 0.9).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
    );
}

/// genhook's own cost per delivery: the same receiver code on in-memory adapters
/// (signature check, parse, claim logic, message build), no network.
async fn in_memory(n: usize) {
    use genhook::adapters::memory::{MemoryQueue, MemoryStore};
    use genhook::ports::env::Env;
    use genhook::toolkit::auth::hmac::sign_hex;
    let env = Env::from_pairs([("KATALO_WEBHOOK_SECRET", genhook_tests::WEBHOOK_SECRET)]);
    let receiver = genhook::config::receiver(
        &env,
        Arc::new(MemoryStore::default()),
        Arc::new(MemoryQueue::default()),
        Arc::new(genhook::domain::clock::SystemClock),
    )
    .expect("receiver config");
    let requests: Vec<_> = (0..n)
        .map(|i| {
            let body = webhook(&format!("job_mem_{i}"), "generation.completed");
            let sig = sign_hex(genhook_tests::WEBHOOK_SECRET.as_bytes(), &body);
            http::Request::post("/webhooks/katalo").header("x-katalo-signature", sig).body(body).unwrap()
        })
        .collect();
    let start = Instant::now();
    for req in requests {
        assert_eq!(receiver.handle(req, None).await.status(), 200);
    }
    let per = start.elapsed() / n as u32;
    println!(
        "receiver in-memory n={n:<5} one task   {:>7.2} us per new delivery (genhook's own CPU cost)",
        per.as_secs_f64() * 1e6
    );
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(1000, |a| a.parse().expect("DELIVERIES is a number"));
    let c: usize = args.next().map_or(16, |a| a.parse().expect("CONCURRENCY is a number"));
    in_memory(n.max(10_000)).await;
    let h = Arc::new(Harness::new().await);
    let jobs: Vec<Vec<u8>> = (0..n).map(|i| webhook(&format!("job_bench_{i}"), "generation.completed")).collect();
    for i in 0..n {
        h.katalo.script(&format!("job_bench_{i}"), vec![Answer::Job(succeeded(&format!("job_bench_{i}"), 3600))]);
    }
    let jobs = Arc::new(jobs);
    // Warm-up: SDK connections, DynamoDB Local's JIT.
    let warm: Vec<Vec<u8>> = (0..50).map(|i| webhook(&format!("job_warm_{i}"), "generation.completed")).collect();
    for i in 0..50 {
        h.katalo.script(&format!("job_warm_{i}"), vec![Answer::Job(succeeded(&format!("job_warm_{i}"), 3600))]);
    }
    run(&h, "warm-up", Arc::new(warm), c).await;
    run(&h, "new", jobs.clone(), c).await;
    run(&h, "duplicate", jobs.clone(), c).await;

    let start = Instant::now();
    genhook_tests::lambda::pump_until_empty(&h.aws, &h.worker, &h.stack.inbox, usize::MAX).await;
    let wall = start.elapsed();
    let events = h.events().await.len();
    println!(
        "worker   reconcile  n={events:<5} one instance, batches of 10, {:>7.0} events/s (bound by the SQS emulator; Katalo rate limit lifted)",
        events as f64 / wall.as_secs_f64()
    );
    assert_eq!(events, n + 50, "one event per job");
}
