#!/usr/bin/env bash
# Benchmark: receiver and worker handlers on DynamoDB Local + the SQS emulator, release
# build. Usage: scripts/bench.sh [DELIVERIES] [CONCURRENCY]. Numbers include the
# emulators' own cost, so compare runs on the same machine; they are not AWS latencies.
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/emulators.sh run cargo run --quiet --release -p genhook-tests --bin genhook-bench -- "$@"
