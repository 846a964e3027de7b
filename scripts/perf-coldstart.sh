#!/usr/bin/env bash
# Cold starts of the Lambda binaries against a fake Lambda Runtime API
# (scripts/perf/coldstart.py), release build, next to the lambda_runtime hello world
# (perf/hello) built with the same profile.
#
#   scripts/perf-coldstart.sh [RUNS]          # default 20
#   PERF_BIN_DIR=DIR scripts/perf-coldstart.sh  # measure already built binaries
#
# Table 1: init (spawn → first GET /invocation/next) and peak RSS at that moment, with
# the connection warm-up off (GENHOOK_WARMUP_TIMEOUT_MS=0): the process's own start.
# Table 2 (when AWS_ENDPOINT_URL_DYNAMODB and AWS_ENDPOINT_URL_SQS are set, e.g. after
# `source scripts/emulators.sh && emulators_start`): the receiver with the warm-up on and
# off, its first and second invocation (each a new signed Katalo delivery: GetItem-free
# PutItem + SendMessage + UpdateItem). The emulators are plain HTTP, so what the warm-up
# saves there is the TCP connection set-up (and the emulators' first-request costs), not
# a TLS handshake.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-20}
PY=${PYTHON:-python3}
if [ -z "${PERF_BIN_DIR:-}" ]; then
  cargo build --release --locked -p perf-hello -p genhook-receiver -p genhook-worker -p genhook-links >&2
  PERF_BIN_DIR=${CARGO_TARGET_DIR:-target}/release
fi
common=(--env GENHOOK_TABLE=genhook-coldstart --env GENHOOK_WARMUP_TIMEOUT_MS=0)
queue=https://sqs.us-east-1.amazonaws.com/123456789012/genhook-coldstart
declare -A extra=(
  [perf-hello]=""
  [receiver]="--env GENHOOK_INBOX_QUEUE_URL=$queue --env KATALO_WEBHOOK_SECRET=whsec_fixture_secret_0001"
  [worker]="--env GENHOOK_INBOX_QUEUE_URL=$queue --env GENHOOK_OUTBOX_QUEUE_URL=$queue-out --env KATALO_API_KEY=k"
  [links]="--env GENHOOK_LINK_SECRET=coldstart-link-secret-0123456789abcdef --env KATALO_API_KEY=k"
)
field() { "$PY" -c 'import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); v=d[sys.argv[1]]; print("-" if v is None else v)' "$1"; }

printf '%-10s %10s %10s %12s %9s\n' binary init_med init_min peak_rss size
for b in perf-hello receiver worker links; do
  # shellcheck disable=SC2086
  out=$("$PY" scripts/perf/coldstart.py --bin "$PERF_BIN_DIR/$b" --runs "$RUNS" "${common[@]}" ${extra[$b]})
  size=$(stat -c %s "$PERF_BIN_DIR/$b")
  printf '%-10s %8s ms %8s ms %9s MB %9s\n' "$b" "$(field init_ms_median <<<"$out")" "$(field init_ms_min <<<"$out")" \
    "$(field hwm_mb_median <<<"$out")" "$size"
done

if [ -n "${AWS_ENDPOINT_URL_DYNAMODB:-}" ] && [ -n "${AWS_ENDPOINT_URL_SQS:-}" ]; then
  VENV_PY=${GENHOOK_TOOLS_DIR:-.tools}/venv/bin/python
  # A table and a queue on the emulators (boto3 comes with moto).
  queue=$("$VENV_PY" - <<'PYEOF'
import os, boto3
kw = dict(region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test")
ddb = boto3.client("dynamodb", endpoint_url=os.environ["AWS_ENDPOINT_URL_DYNAMODB"], **kw)
if "genhook-coldstart" not in ddb.list_tables()["TableNames"]:
    ddb.create_table(TableName="genhook-coldstart", BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
sqs = boto3.client("sqs", endpoint_url=os.environ["AWS_ENDPOINT_URL_SQS"], **kw)
print(sqs.create_queue(QueueName="genhook-coldstart")["QueueUrl"])
PYEOF
)
  emu=(--env "AWS_ENDPOINT_URL_DYNAMODB=$AWS_ENDPOINT_URL_DYNAMODB" --env "AWS_ENDPOINT_URL_SQS=$AWS_ENDPOINT_URL_SQS"
       --env GENHOOK_TABLE=genhook-coldstart --env "GENHOOK_INBOX_QUEUE_URL=$queue"
       --env KATALO_WEBHOOK_SECRET=whsec_fixture_secret_0001 --event-cmd "$PY scripts/perf/katalo_event.py")
  echo
  printf '%-22s %10s %12s %12s\n' 'receiver (emulators)' init_med first_inv second_inv
  for warm in 0 1000; do
    out=$("$PY" scripts/perf/coldstart.py --bin "$PERF_BIN_DIR/receiver" --runs "$RUNS" "${emu[@]}" \
      --env "GENHOOK_WARMUP_TIMEOUT_MS=$warm")
    printf '%-22s %8s ms %9s ms %9s ms\n' "warm-up ${warm} ms" "$(field init_ms_median <<<"$out")" \
      "$(field first_invoke_ms <<<"$out")" "$(field second_invoke_ms <<<"$out")"
  done
fi
