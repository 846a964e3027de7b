//! The floor for `scripts/perf.sh`: per delivery exactly the irreducible work of a
//! Katalo webhook receiver, and nothing else. Hex-decode the 64-character
//! `x-katalo-signature` into 32 bytes, verify HMAC-SHA256 over the raw body in constant
//! time (from a keyed state cloned per delivery: the key never changes), and parse the
//! two fields a consumer branches on with a typed, borrowing serde_json parse.
//!
//! Usage: perf-floor BODIES_FILE SECRET MODE
//!   BODIES_FILE  one `hexsig<TAB>body` line per delivery (scripts/perf/bodies.py)
//!   MODE `count` a warm-up, then one pass inside `counted_region` (callgrind zeroes its
//!                counters on entering it), then exits at once
//!   MODE `wall`  a warm-up pass, then 5 timed passes: `floor wall_ns A B C D E` on stderr

use std::borrow::Cow;
use std::hint::black_box;
use std::time::Instant;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The two fields, borrowed from the body unless they hold escapes.
#[derive(Deserialize)]
struct Hook<'a> {
    #[serde(borrow)]
    job_id: Cow<'a, str>,
    #[serde(borrow)]
    event_type: Cow<'a, str>,
}

/// One delivery; `false` when it does not verify or parse.
#[inline(always)]
fn accept(keyed: &HmacSha256, sig_hex: &[u8], body: &[u8]) -> bool {
    let mut tag = [0u8; 32];
    if hex::decode_to_slice(sig_hex, &mut tag).is_err() {
        return false;
    }
    let mut mac = keyed.clone();
    mac.update(body);
    // verify_slice compares in constant time.
    if mac.verify_slice(&tag).is_err() {
        return false;
    }
    match serde_json::from_slice::<Hook>(body) {
        Ok(hook) => !hook.job_id.is_empty() && !hook.event_type.is_empty(),
        Err(_) => false,
    }
}

/// One pass over every delivery: how many were accepted.
fn pass(keyed: &HmacSha256, deliveries: &[(Vec<u8>, Vec<u8>)]) -> usize {
    deliveries.iter().filter(|(sig, body)| black_box(accept(keyed, black_box(sig), black_box(body)))).count()
}

/// The region callgrind counts: scripts/perf.sh runs valgrind with
/// `--zero-before='*counted_region*'`, and the process exits right after it.
#[inline(never)]
fn counted_region<R>(f: impl FnOnce() -> R) -> R {
    f()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, file, secret, mode] = &args[..] else { panic!("usage: perf-floor BODIES_FILE SECRET count|wall|probe") };
    let text = std::fs::read(file).expect("read the bodies file");
    let deliveries: Vec<(Vec<u8>, Vec<u8>)> = text
        .split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| {
            let tab = line.iter().position(|b| *b == b'\t').expect("a `hexsig<TAB>body` line");
            (line[..tab].to_vec(), line[tab + 1..].to_vec())
        })
        .collect();
    let keyed = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    let n = deliveries.len();
    match mode.as_str() {
        "count" => {
            let warm = &deliveries[..n.min(100)];
            assert_eq!(pass(&keyed, warm), warm.len(), "every warm-up delivery verifies");
            assert_eq!(counted_region(|| pass(&keyed, &deliveries)), n, "every delivery verifies and parses");
            // Exit without dropping anything: the counters then hold the region only
            // (and a few hundred instructions of exit).
            std::process::exit(0);
        }
        "wall" => {
            assert_eq!(pass(&keyed, &deliveries), n, "every delivery verifies and parses");
            let mut ns = Vec::new();
            for _ in 0..5 {
                let start = Instant::now();
                assert_eq!(pass(&keyed, &deliveries), n);
                ns.push(format!("{:.1}", start.elapsed().as_nanos() as f64 / n as f64));
            }
            eprintln!("floor wall_ns {}", ns.join(" "));
        }
        "probe" => {
            // Whether this CPU has the SHA-256 instructions sha2 looks for (SHA-NI on
            // x86_64, ARMv8's `sha2` on aarch64), then one timed pass: run under
            // qemu-aarch64 with a CPU model with and without them (scripts/perf.sh).
            #[cfg(target_arch = "aarch64")]
            let sha = std::arch::is_aarch64_feature_detected!("sha2");
            #[cfg(target_arch = "x86_64")]
            let sha = std::arch::is_x86_feature_detected!("sha");
            #[cfg(not(any(target_arch = "aarch64", target_arch = "x86_64")))]
            let sha = false;
            let start = Instant::now();
            assert_eq!(pass(&keyed, &deliveries), n, "every delivery verifies and parses");
            let ns = start.elapsed().as_nanos() as f64 / n as f64;
            println!("arch={} cpu_sha256={sha} ns_per_webhook={ns:.0}", std::env::consts::ARCH);
        }
        other => panic!("unknown mode {other}: count, wall or probe"),
    }
}
