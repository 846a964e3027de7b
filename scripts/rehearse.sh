#!/usr/bin/env bash
# The deploy rehearsal: template.yaml translated (aws-sam-translator) and created as a
# stack on its own moto server, the real receiver, worker and links binaries run under
# the Lambda emulator (`cargo lambda watch --only-lambda-apis`) with exactly the
# environment the stack gives each function and credentials carrying only that
# function's role policies (moto checks every call), Lambda's SQS event source emulated
# from the stack's mapping, signed Katalo deliveries and an APIMP callback driven to the
# outbox, then the checks (one event per job, a link followed, DLQs, alarms, logs).
# Fails on any AccessDenied. See scripts/rehearsal/rehearse.py.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/emulators.sh

step() { printf '\n==> rehearsal: %s\n' "$*" >&2; }
free_port() { "$TOOLS/venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

emulators_install
export PATH="$TOOLS/venv/bin:$PATH" SAM_CLI_TELEMETRY=0
# Only the rehearsal's own moto: nothing of the test suite's emulators.
unset AWS_ENDPOINT_URL_DYNAMODB AWS_ENDPOINT_URL_SQS AWS_ENDPOINT_URL_SECRETS_MANAGER AWS_ENDPOINT_URL
started=$(date +%s)

step "building the functions and the CLI (the suite's own build: nothing extra)"
cargo build --workspace --bins --locked
# Where cargo put them (a CARGO_TARGET_DIR set for the suite is honoured).
BIN="${CARGO_TARGET_DIR:-target}/debug"

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true; done
  if [ "${KEEP_REHEARSAL:-}" = "" ]; then rm -rf "$WORK"; else echo "rehearsal state kept in $WORK" >&2; fi
}
trap cleanup EXIT INT TERM
# Every process gets its own group, so cleanup stops what it spawned too.
spawn() { local log=$1; shift; setsid "$@" > "$log" 2>&1 < /dev/null & PIDS+=("$!"); }

MOTO_PORT=$(free_port); SIM_PORT=$(free_port)
MOTO="http://127.0.0.1:$MOTO_PORT"; SIM="http://127.0.0.1:$SIM_PORT"
declare -A PORT
for f in receiver worker links; do PORT[$f]=$(free_port); done

step "moto (CloudFormation, IAM, S3, DynamoDB, SQS, Lambda, Secrets Manager, CloudWatch) and the provider simulator"
spawn "$WORK/moto.log" "$TOOLS/venv/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT"
spawn "$WORK/simulator.log" "$BIN/genhook" simulate --listen "127.0.0.1:$SIM_PORT" --adopt-unknown-jobs --api-key sim_katalo_local_key
for url in "$MOTO/moto-api/" "$SIM/healthz"; do
  for _ in $(seq 100); do curl -sf -o /dev/null "$url" && break; sleep 0.1; done
  curl -sf -o /dev/null "$url" || { echo "$url did not come up" >&2; exit 1; }
done

step "deploying the stack"
"$TOOLS/venv/bin/python" scripts/rehearsal/rehearse.py deploy template.yaml "$WORK" "$MOTO" "$SIM" \
  "http://127.0.0.1:${PORT[links]}/lambda-url/_"

step "running the functions under the Lambda emulator"
for f in receiver worker links; do
  # The emulator answers a runtime's idle poll for the next invocation with an empty
  # response once its --timeout passes (lambda_runtime then panics), and it passes the
  # function no real deadline (a relative 600000 in the epoch-ms header, which the
  # worker reads as unknown): so a long --timeout, and the stack's Timeouts are not
  # enforced here.
  spawn "$WORK/$f-emulator.log" cargo lambda watch --only-lambda-apis -A 127.0.0.1 -P "${PORT[$f]}" \
    --timeout 1800
done
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for f in receiver worker links; do
  for _ in $(seq 300); do listening "${PORT[$f]}" && break; sleep 0.1; done
  listening "${PORT[$f]}" || { echo "the Lambda emulator for $f did not start" >&2; exit 1; }
done
for f in receiver worker links; do
  spawn "$WORK/$f.log" env -i PATH="$PATH" HOME="$HOME" \
    AWS_LAMBDA_FUNCTION_NAME=_ AWS_LAMBDA_FUNCTION_VERSION=1 AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256 \
    AWS_LAMBDA_RUNTIME_API="http://127.0.0.1:${PORT[$f]}/.rt" \
    $(cat "$WORK/$f.env") "$BIN/$f"
done

step "driving deliveries through the stack's routes"
"$TOOLS/venv/bin/python" scripts/rehearsal/rehearse.py drive "$WORK" "$MOTO" \
  "http://127.0.0.1:${PORT[receiver]}/lambda-url/_" "http://127.0.0.1:${PORT[worker]}" "$BIN/genhook"
"$TOOLS/venv/bin/python" scripts/rehearsal/rehearse.py check-logs "$WORK"

skipped=$(grep -o "No Moto CloudFormation support for [A-Za-z0-9:]*" "$WORK/moto.log" | sort -u | sed 's/.* for //' | paste -sd, - || true)
printf '\nrehearsal passed in %s s (resource types moto does not create, checked in the template instead: %s)\n' \
  "$(( $(date +%s) - started ))" "${skipped:-none}"
