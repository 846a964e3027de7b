#!/usr/bin/env bash
# Runs the main job locally: starts DynamoDB Local and the SQS emulator, then pushes
# signed Katalo webhooks (with duplicates and a forgery) through the real receiver and
# worker handlers against a fake Katalo API, printing the published events and a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
exec scripts/emulators.sh run cargo run --quiet -p genhook-tests --bin genhook-demo
