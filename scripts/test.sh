#!/usr/bin/env bash
# genhook's test command (what CI runs): installs and starts DynamoDB Local and the SQS
# emulator, checks formatting and lints, lints the SAM template, runs the whole test
# suite against the emulators, runs the deploy rehearsal (scripts/rehearse.sh), and
# stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/emulators.sh

step() { printf '\n==> %s\n' "$*" >&2; }

step "installing emulators and linters"
emulators_install

step "cargo fmt --check"
cargo fmt --all -- --check

step "template lint (sam validate --lint, cfn-lint)"
SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 "$TOOLS/venv/bin/sam" validate --lint --template template.yaml
"$TOOLS/venv/bin/cfn-lint" template.yaml

step "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "starting DynamoDB Local and the SQS emulator"
trap emulators_stop EXIT INT TERM
emulators_start

step "cargo test (unit + integration against the emulators)"
results=$(mktemp)
set +e
cargo test --workspace --locked 2>&1 | tee "$results"
status=${PIPESTATUS[0]}
set -e
if [ "$status" -eq 0 ]; then
  step "deploy rehearsal (the stack on moto's CloudFormation, the functions under their own IAM policies)"
  emulators_stop
  ./scripts/rehearse.sh || status=$?
fi
read -r passed failed < <(awk '/^test result:/ { for (i = 1; i < NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } } END { print p + 0, f + 0 }' "$results")
rm -f "$results"
printf '\ntests: %s passed, %s failed\n' "$passed" "$failed"
exit "$status"
