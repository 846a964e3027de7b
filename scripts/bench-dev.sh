#!/usr/bin/env bash
# Benchmark of the embedded pipeline, as a user runs it: `genhook dev` (release build,
# SQLite store) receives JOBS webhooks from `genhook simulate` at CONCURRENCY, with 20 %
# duplicates; prints the delivery rate and the time until every event is published.
# Usage: scripts/bench-dev.sh [JOBS] [CONCURRENCY]
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${1:-500}
concurrency=${2:-16}
cargo build --quiet --release -p genhook-cli
bin=target/release/genhook
state=$(mktemp -d)
trap 'kill "$dev" 2>/dev/null || true; cp "$state/dev.log" /tmp/bench-dev.log 2>/dev/null; rm -rf "$state"' EXIT
"$bin" dev --listen 127.0.0.1:0 --state-dir "$state" >"$state/events.jsonl" 2>"$state/dev.log" &
dev=$!
for _ in $(seq 100); do
  url=$(sed -n 's/.*receiving Katalo webhooks at //p' "$state/dev.log")
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { cat "$state/dev.log"; exit 1; }
now_ms() { date +%s%3N; }
accepted() { grep -c 'accepted.*duplicate=false' "$state/dev.log" || true; }
wait_for() { # wait_for CMD N: until CMD prints at least N
  until [ "$($1)" -ge "$2" ]; do
    sleep 0.02
    if [ $(( $(now_ms) - start )) -gt 300000 ]; then echo "timed out"; exit 1; fi
  done
}
events() { wc -l <"$state/events.jsonl"; }
start=$(now_ms)
RUST_LOG=warn "$bin" simulate --listen 127.0.0.1:0 --url "$url" --secret whsec_genhook_dev_local \
  --jobs "$jobs" --concurrency "$concurrency" --duplicate-rate 0.2 --fail-rate 0.1 \
  --min-runtime-ms 0 --max-runtime-ms 1 --no-progress >"$state/summary.txt" &
sim=$!
wait_for accepted "$jobs"
accepted_ms=$(now_ms)
wait_for events "$jobs"
done_ms=$(now_ms)
wait "$sim"
cat "$state/summary.txt"
echo "receiver: ${jobs} new deliveries (plus 20 % duplicates) accepted in $((accepted_ms - start)) ms = $(( jobs * 1000 / (accepted_ms - start + 1) ))/s at concurrency ${concurrency}"
echo "pipeline: ${jobs} events published in $((done_ms - start)) ms = $(( jobs * 1000 / (done_ms - start + 1) ))/s"
echo "          (the built-in simulator enforces Katalo's 1,200 reads/min, so the worker is rate-limited by design)"
