#!/usr/bin/env bash
# The long run of the pipeline simulation (the test command runs 2,000 schedules). It
# uses the test build (no separate release build of the AWS SDK to wait for):
#   scripts/simulate.sh [SCHEDULES] [FIRST_SEED] [FAULT_RATE]     (default 100000 1 0.15)
# Prints schedules/s and, on a broken invariant, the failing seed and its trace; replay
# one seed with GENHOOK_SIM_SEED=N cargo test -p genhook-tests --test simulation.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --locked -p genhook-tests --bin genhook-sim -- "$@"
