//! genhook's receiver for `scripts/perf.sh`: `Receiver::handle` on the in-memory store
//! and queue, one Katalo source and the system clock, for every delivery of a bodies
//! file, on a current-thread tokio runtime. Each pass gets a fresh receiver (an empty
//! store), so every delivery is new: verify, parse, claim, inbox message, mark; each must
//! be answered 200.
//!
//! Usage: perf-receiver-loop BODIES_FILE SECRET MODE [log]
//!   BODIES_FILE  one `hexsig<TAB>body` line per delivery (scripts/perf/bodies.py)
//!   MODE `count` a warm-up on another receiver, then one pass inside `counted_region`
//!                (callgrind zeroes its counters on entering it), then exits at once
//!   MODE `wall`  a warm-up pass, then 5 timed passes: `receiver wall_ns A B C D E` on
//!                stderr
//!   `log`        first install a subscriber writing the Lambdas' JSON log lines (as
//!                `AWS_LAMBDA_LOG_FORMAT=JSON` deploys them), so each delivery also writes
//!                its log line to stdout

use std::sync::Arc;
use std::time::Instant;

use genhook::adapters::memory::{MemoryQueue, MemoryStore};
use genhook::domain::clock::SystemClock;
use genhook::engine::receiver::{Receiver, ReceiverSettings};
use genhook::ports::provider::WebhookSource;
use genhook::providers::katalo::source::KataloSource;
use genhook::toolkit::auth::hmac::HmacSecrets;
use tokio::runtime::Runtime;

type Req = http::Request<Vec<u8>>;

/// A fresh receiver as the Lambda builds it, on the in-memory adapters.
fn receiver(secret: &str) -> Receiver {
    let katalo: Arc<dyn WebhookSource> = Arc::new(KataloSource::new(HmacSecrets::new(secret, None)));
    Receiver::new(
        Arc::new(MemoryStore::default()),
        Arc::new(MemoryQueue::default()),
        vec![katalo],
        ReceiverSettings::default(),
        Arc::new(SystemClock),
    )
}

/// The HTTP requests of a pass, built before the clock starts.
fn requests(deliveries: &[(String, Vec<u8>)]) -> Vec<Req> {
    deliveries
        .iter()
        .map(|(sig, body)| {
            http::Request::post("/webhooks/katalo")
                .header("x-katalo-signature", sig)
                .body(body.clone())
                .expect("a valid request")
        })
        .collect()
}

/// One pass: how many deliveries were answered 200.
fn pass(rt: &Runtime, receiver: &Receiver, reqs: Vec<Req>) -> usize {
    rt.block_on(async {
        let mut ok = 0;
        for req in reqs {
            ok += usize::from(receiver.handle(req, None).await.status() == 200);
        }
        ok
    })
}

/// The region callgrind counts: scripts/perf.sh runs valgrind with
/// `--zero-before='*counted_region*'`, and the process exits right after it.
#[inline(never)]
fn counted_region<R>(f: impl FnOnce() -> R) -> R {
    f()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (file, secret, mode) = match &args[..] {
        [_, file, secret, mode] | [_, file, secret, mode, _] => (file, secret.as_str(), mode.as_str()),
        _ => panic!("usage: perf-receiver-loop BODIES_FILE SECRET count|wall [log]"),
    };
    if args.get(4).is_some_and(|a| a == "log") {
        // The Lambdas' log lines (JSON, no time stamp or target, INFO), installed here
        // rather than through genhook's API, which `--baseline` revisions predate.
        tracing_subscriber::fmt().json().with_target(false).without_time().with_ansi(false).init();
    }
    let text = std::fs::read_to_string(file).expect("read the bodies file");
    let deliveries: Vec<(String, Vec<u8>)> = text
        .lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (sig, body) = line.split_once('\t').expect("a `hexsig<TAB>body` line");
            (sig.to_owned(), body.as_bytes().to_vec())
        })
        .collect();
    let n = deliveries.len();
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("a tokio runtime");
    match mode {
        "count" => {
            // One-time lazy set-up (thread RNG, tracing callsites) stays out of the region.
            let warm = &deliveries[..n.min(100)];
            assert_eq!(pass(&rt, &receiver(secret), requests(warm)), warm.len(), "every warm-up delivery is accepted");
            let (r, reqs) = (receiver(secret), requests(&deliveries));
            assert_eq!(counted_region(|| pass(&rt, &r, reqs)), n, "every delivery is new and answered 200");
            // Exit without dropping anything: the counters then hold the region only
            // (and a few hundred instructions of exit).
            std::process::exit(0);
        }
        "wall" => {
            let mut ns = Vec::new();
            // Pass 0 warms up; passes 1-5 are timed.
            for i in 0..6 {
                let (r, reqs) = (receiver(secret), requests(&deliveries));
                let start = Instant::now();
                let ok = pass(&rt, &r, reqs);
                let elapsed = start.elapsed();
                assert_eq!(ok, n, "every delivery is new and answered 200");
                if i > 0 {
                    ns.push(format!("{:.1}", elapsed.as_nanos() as f64 / n as f64));
                }
            }
            eprintln!("receiver wall_ns {}", ns.join(" "));
        }
        other => panic!("unknown mode {other}: count or wall"),
    }
}
