#!/usr/bin/env bash
# Fuzzes every parser of untrusted bytes (see docs/fuzzing.md).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET]     (default 60)
#
# Installs cargo-fuzz if missing, builds the targets in fuzz/, runs each for the given
# time and prints, per target, the inputs executed and whether it crashed. Exits
# non-zero when any target crashed; the crashing input is under fuzz/artifacts/<target>/.
# Works on the stable toolchain: RUSTC_BOOTSTRAP lets it accept the -Z flags cargo-fuzz
# passes, and no sanitizer is needed to catch panics (Rust is memory safe; a panic is
# what we look for). Debug assertions are on, so integer overflow panics too.
set -euo pipefail

secs="${1:-60}"
if ! [[ "$secs" =~ ^[0-9]+$ ]] || [ "$secs" -lt 1 ]; then
  echo "usage: $0 [SECONDS_PER_TARGET]" >&2
  exit 2
fi
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
flags=(--sanitizer none --debug-assertions)
# Inputs libFuzzer finds go to a scratch corpus; the committed seeds stay read-only.
scratch="fuzz/target/corpus"
logs="fuzz/target/logs"
mkdir -p "$scratch" "$logs"

cargo fuzz build "${flags[@]}"

failed=0
printf '%-20s %8s %12s  %s\n' target seconds inputs result
for t in $(cargo fuzz list); do
  mkdir -p "$scratch/$t" "fuzz/corpus/$t"
  log="$logs/$t.log"
  start=$(date +%s)
  if cargo fuzz run "${flags[@]}" "$t" "$scratch/$t" "fuzz/corpus/$t" -- \
      -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=2048 >"$log" 2>&1; then
    result=ok
  else
    result="CRASHED (see $log and fuzz/artifacts/$t/)"
    failed=1
  fi
  took=$(( $(date +%s) - start ))
  runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
  printf '%-20s %8s %12s  %s\n' "$t" "$took" "${runs:-?}" "$result"
done
exit "$failed"
