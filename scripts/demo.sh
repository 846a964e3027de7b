#!/usr/bin/env bash
# Runs the main job locally: `genhook dev --demo` (the receiver and worker in one process
# on the embedded store, the built-in Katalo simulator delivering signed webhooks with
# duplicates, forgeries, failed jobs and API errors). Nothing to install but Rust.
# Extra arguments go to `genhook dev` (e.g. --demo-jobs 20, or --aws under emulators.sh run).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --quiet -p genhook-cli -- dev --demo "$@"
