#!/usr/bin/env bash
# The receiver's CPU cost per webhook, against a floor program (perf/floor: hex-decode,
# HMAC-SHA256 verify, typed parse of two fields) and Katalo's documented Node consumer,
# in one run on one machine; plus cold start, binary sizes and hardware SHA-256 use.
# Prints a markdown report on stdout; progress goes to stderr. See docs/benchmarks.md.
#
# Usage: scripts/perf.sh [--baseline REV]
#   --baseline REV  also measure the project at git revision REV ("before" columns): a
#                   temporary worktree of REV gets this checkout's perf/receiver-loop and
#                   builds it, and the function binaries, in its own target directory.
# Environment:
#   PERF_N=10000        webhooks per pass (scripts/perf/bodies.py, seeded)
#   PERF_ROUNDS=3       wall-clock rounds (each program: warm-up + 5 timed passes per round)
#   PERF_COLD_RUNS=20   cold starts per binary (scripts/perf/coldstart.py)
#   PERF_SKIP_BUILD=1   reuse the binaries already built
#   PERF_SKIP_ARM=1     skip the aarch64 build (cargo lambda build --arm64: minutes)
#   CARGO_TARGET_DIR    as for cargo (default ./target); work files go to $CARGO_TARGET_DIR/perf
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

BASELINE=
while [ $# -gt 0 ]; do
  case $1 in
    --baseline) BASELINE=${2:?--baseline needs a git revision}; shift 2 ;;
    -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

N=${PERF_N:-10000}
ROUNDS=${PERF_ROUNDS:-3}
COLD_RUNS=${PERF_COLD_RUNS:-20}
SKIP_BUILD=${PERF_SKIP_BUILD:-0}
SKIP_ARM=${PERF_SKIP_ARM:-0}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=$TARGET/perf
NODE=${NODE:-node}
SECRET=whsec_perf_benchmark_0001
mkdir -p "$WORK"
log() { echo "[perf] $*" >&2; }
fail() { echo "[perf] error: $*" >&2; exit 1; }

# ------------------------------------------------------------------ build
# The functions are built alone, with the features they are deployed with; the benchmark
# programs in a second step (the receiver loop turns on genhook's `dev` feature). The
# release profile strips symbols; perf/*/Cargo.toml keep theirs for callgrind (a
# per-package override, which changes no code generation).
FUNCTIONS=(receiver worker links)
build_x86() { # build_x86 DIR TARGET_DIR [--locked]
  (cd "$1" && CARGO_TARGET_DIR=$2 cargo build --release -q ${3:-} -p genhook-receiver -p genhook-worker -p genhook-links &&
    CARGO_TARGET_DIR=$2 cargo build --release -q ${3:-} -p perf-receiver-loop)
}
# perf/hello (a lambda_runtime hello world, the cold-start anchor): its package and binary.
HELLO_PKG= HELLO_BIN=
if [ -f perf/hello/Cargo.toml ]; then
  read -r HELLO_PKG HELLO_BIN < <(python3 -c 'import tomllib, sys
t = tomllib.load(open(sys.argv[1], "rb")); pkg = t["package"]["name"]
print(pkg, (t.get("bin") or [{"name": pkg}])[0]["name"])' perf/hello/Cargo.toml)
fi
if [ "$SKIP_BUILD" != 1 ]; then
  log "building the functions and the benchmark programs (release profile)"
  build_x86 "$ROOT" "$TARGET" --locked
  cargo build --release -q --locked -p perf-floor ${HELLO_PKG:+-p "$HELLO_PKG"}
fi
FLOOR=$TARGET/release/perf-floor
LOOP=$TARGET/release/perf-receiver-loop
HELLO=${HELLO_BIN:+$TARGET/release/$HELLO_BIN}
for b in "$FLOOR" "$LOOP" "${FUNCTIONS[@]/#/$TARGET/release/}"; do [ -x "$b" ] || fail "missing $b (build without PERF_SKIP_BUILD)"; done

# The baseline: REV's own library and functions, this checkout's receiver loop.
B_TARGET=$WORK/baseline-target
if [ -n "$BASELINE" ]; then
  B_REV=$(git rev-parse --short "$BASELINE^{commit}") || fail "no git revision $BASELINE"
  if [ "$SKIP_BUILD" != 1 ]; then
    B_SRC=$WORK/baseline-src
    git worktree remove --force "$B_SRC" 2>/dev/null || rm -rf "$B_SRC"
    git worktree prune
    git worktree add -q --detach "$B_SRC" "$B_REV"
    trap 'git -C "$ROOT" worktree remove --force "$B_SRC" 2>/dev/null || true' EXIT
    mkdir -p "$B_SRC/perf" && rm -rf "$B_SRC/perf/receiver-loop" && cp -r perf/receiver-loop "$B_SRC/perf/"
    # The loop becomes a workspace member there, keeping its symbols like here.
    python3 - "$B_SRC/Cargo.toml" <<'PY'
import re, sys
path = sys.argv[1]
text = open(path).read()
if "perf/receiver-loop" in text:  # REV has it already
    sys.exit(0)
text = re.sub(r"(?m)^members = \[", 'members = ["perf/receiver-loop", ', text, count=1)
text += "\n[profile.release.package.perf-receiver-loop]\nstrip = false\n"
open(path, "w").write(text)
PY
    log "building the baseline $BASELINE ($B_REV) in its own target directory (a full build: minutes)"
    # Not --locked: the lock file gains the loop's entry, and nothing else changes.
    build_x86 "$B_SRC" "$B_TARGET"
  fi
  B_LOOP=$B_TARGET/release/perf-receiver-loop
  [ -x "$B_LOOP" ] || fail "missing $B_LOOP (build without PERF_SKIP_BUILD)"
fi

# ------------------------------------------------------------------ aarch64 build
CARGO_LAMBDA=${CARGO_LAMBDA:-$ROOT/.tools/venv/bin/cargo-lambda}
ARM_DIR=$TARGET/lambda
ARM_NOTE=
if [ "$SKIP_ARM" = 1 ]; then
  ARM_NOTE="skipped (PERF_SKIP_ARM=1)"
elif ! rustup target list --installed 2>/dev/null | grep -q aarch64-unknown-linux-gnu; then
  ARM_NOTE="skipped: rustup target aarch64-unknown-linux-gnu is not installed"
elif [ ! -x "$CARGO_LAMBDA" ]; then
  ARM_NOTE="skipped: no cargo-lambda at .tools/venv/bin (source scripts/emulators.sh && emulators_install)"
elif [ "$SKIP_BUILD" != 1 ]; then
  # cargo-lambda brings zig (its linker) in the same virtualenv.
  arm_build() { # arm_build DIR TARGET_DIR LOG CARGO_ARGS...
    local dir=$1 target=$2 out=$3; shift 3
    (cd "$dir" && PATH=$(dirname "$CARGO_LAMBDA"):$PATH CARGO_TARGET_DIR=$target \
      "$CARGO_LAMBDA" lambda build --release --arm64 "$@") >"$out" 2>&1
  }
  log "building the aarch64 functions (cargo lambda build --release --arm64: several minutes)"
  if ! arm_build "$ROOT" "$TARGET" "$WORK/arm64-build.log" --locked -p genhook-receiver -p genhook-worker -p genhook-links; then
    ARM_NOTE="skipped: cargo lambda build --arm64 failed (see $WORK/arm64-build.log)"
  fi
  # The floor alone (its own features, as in the x86_64 build), for the SHA-256 probe.
  arm_build "$ROOT" "$TARGET" "$WORK/arm64-floor-build.log" --locked -p perf-floor --bin perf-floor ||
    log "aarch64 floor build failed (see $WORK/arm64-floor-build.log)"
  if [ -n "$BASELINE" ] && [ -z "$ARM_NOTE" ]; then
    log "building the baseline's aarch64 functions"
    arm_build "$B_SRC" "$B_TARGET" "$WORK/arm64-baseline-build.log" -p genhook-receiver -p genhook-worker -p genhook-links ||
      log "baseline aarch64 build failed (see $WORK/arm64-baseline-build.log)"
  fi
fi
if [ -z "$ARM_NOTE" ] && [ ! -f "$ARM_DIR/receiver/bootstrap" ]; then
  ARM_NOTE="skipped: no aarch64 binaries in $ARM_DIR (build without PERF_SKIP_BUILD)"
fi

# ------------------------------------------------------------------ bodies
BODIES=$WORK/bodies.txt
BODIES_NOTE=$(python3 scripts/perf/bodies.py "$N" "$BODIES" "$SECRET" 2>&1)
log "bodies: $BODIES_NOTE"

# ------------------------------------------------------------------ callgrind
# Instructions from entering counted_region to exit, over the N deliveries: exact and
# repeatable whatever the machine's load. valgrind hides SHA-NI, so sha2 runs its
# portable SHA-256 here.
declare -A CG
callgrind() { # callgrind NAME BINARY: fills CG[NAME] with cgsum.py's JSON
  local out=$WORK/callgrind.$1.out
  log "callgrind: $1"
  valgrind --tool=callgrind --callgrind-out-file="$out" --zero-before='*counted_region*' \
    "$2" "$BODIES" "$SECRET" count >/dev/null 2>"$out.log" || { cat "$out.log" >&2; fail "callgrind $1"; }
  CG[$1]=$(python3 scripts/perf/cgsum.py "$out" "$N")
}
if command -v valgrind >/dev/null; then
  callgrind floor "$FLOOR"
  callgrind receiver "$LOOP"
  [ -n "$BASELINE" ] && callgrind before "$B_LOOP"
  CG_NOTE=
else
  CG_NOTE="valgrind is not installed: no instruction counts (apt-get install valgrind)"
  log "$CG_NOTE"
fi
nosha() { # nosha NAME -> instructions outside SHA-256 compression
  awk -v a="$(cg "$1" instructions)" -v b="$(cg "$1" sha256)" 'BEGIN { if (a ~ /^[0-9]+$/) print a - b; else print "–" }'
}
cg() { # cg NAME FIELD -> the figure, or "–"
  [ -n "${CG[$1]:-}" ] || { echo "–"; return; }
  python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "${CG[$1]}" "$2"
}

# ------------------------------------------------------------------ wall clock
# In-process ns/webhook, same bodies; the programs take turns in each round, so a
# change in the machine's load hits all of them alike.
WALL=$WORK/wall.txt
: >"$WALL"
NODE_OK=1
command -v "$NODE" >/dev/null || { NODE_OK=0; log "no node: the Node column is empty"; }
for r in $(seq "$ROUNDS"); do
  log "wall clock: round $r of $ROUNDS"
  [ "$NODE_OK" = 1 ] && "$NODE" scripts/perf/node_consumer.js "$BODIES" "$SECRET" 2>>"$WALL"
  "$FLOOR" "$BODIES" "$SECRET" wall 2>>"$WALL"
  [ -n "$BASELINE" ] && "$B_LOOP" "$BODIES" "$SECRET" wall 2>&1 | sed 's/^receiver /before /' >>"$WALL"
  "$LOOP" "$BODIES" "$SECRET" wall 2>>"$WALL"
done
wall() { # wall NAME -> "min median" in ns over every timed pass of every round
  grep "^$1 wall_ns" "$WALL" | cut -d' ' -f3- | tr ' ' '\n' | sort -g |
    awk '{ v[NR] = $1 } END { if (NR == 0) { print "- -"; exit }
      m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.0f %.0f\n", v[1], m }'
}
declare -A WMIN WMED
for p in node floor before receiver; do read -r "WMIN[$p]" "WMED[$p]" <<<"$(wall $p)"; done

# ------------------------------------------------------------------ cold start
# scripts/perf/coldstart.py: a fake Lambda Runtime API; its last stdout line is a JSON
# summary. The functions get what their configuration needs, with every AWS endpoint a
# closed loopback port (the invocations then answer errors quickly: init is the point).
COLDSTART=scripts/perf/coldstart.py
declare -A COLD
if [ -f "$COLDSTART" ]; then
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  AWS_ENV=(--env AWS_REGION=us-east-1 --env AWS_ACCESS_KEY_ID=AKIAPERFTEST --env AWS_SECRET_ACCESS_KEY=perf-test-secret
    --env AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$PORT --env AWS_ENDPOINT_URL_SQS=http://127.0.0.1:$PORT
    --env AWS_MAX_ATTEMPTS=1 --env AWS_LAMBDA_LOG_FORMAT=JSON --env GENHOOK_TABLE=genhook-dedupe
    # Init alone: the connection warm-up (on by default in Lambda) would wait for these
    # closed ports; scripts/perf-coldstart.sh times it against the emulators.
    --env GENHOOK_WARMUP_TIMEOUT_MS=0
    --env GENHOOK_INBOX_QUEUE_URL=http://127.0.0.1:$PORT/000000000000/genhook-inbox)
  RECEIVER_ENV=("${AWS_ENV[@]}" --env KATALO_WEBHOOK_SECRET=whsec_fixture_secret_0001
    --event functions/receiver/fixtures/http-api-katalo-completed.json)
  WORKER_ENV=("${AWS_ENV[@]}" --env KATALO_API_KEY=kat_perf_test
    --env GENHOOK_OUTBOX_QUEUE_URL=http://127.0.0.1:$PORT/000000000000/genhook-outbox
    --event functions/worker/fixtures/sqs-inbox-batch.json)
  LINKS_ENV=("${AWS_ENV[@]}" --env KATALO_API_KEY=kat_perf_test --env GENHOOK_LINK_SECRET=perf-link-secret
    --event functions/links/fixtures/http-api-link.json)
  cold() { # cold KEY BINARY ARGS...
    local key=$1 bin=$2; shift 2
    log "cold start: $key ($COLD_RUNS runs)"
    COLD[$key]=$(python3 "$COLDSTART" --bin "$bin" --runs "$COLD_RUNS" "$@" 2>>"$WORK/coldstart.log" | tail -1) ||
      { log "cold start of $key failed (see $WORK/coldstart.log)"; COLD[$key]=; }
  }
  if [ -n "$HELLO" ]; then cold hello "$HELLO" --event functions/receiver/fixtures/http-api-katalo-completed.json; fi
  cold receiver "$TARGET/release/receiver" "${RECEIVER_ENV[@]}"
  cold worker "$TARGET/release/worker" "${WORKER_ENV[@]}"
  cold links "$TARGET/release/links" "${LINKS_ENV[@]}"
  if [ -n "$BASELINE" ]; then
    cold "receiver (before)" "$B_TARGET/release/receiver" "${RECEIVER_ENV[@]}"
    cold "worker (before)" "$B_TARGET/release/worker" "${WORKER_ENV[@]}"
    cold "links (before)" "$B_TARGET/release/links" "${LINKS_ENV[@]}"
  fi
  COLD_NOTE=
else
  COLD_NOTE="skipped: $COLDSTART is not in this checkout yet"
  log "cold start $COLD_NOTE"
fi
coldf() { # coldf KEY FIELD
  [ -n "${COLD[$1]:-}" ] || { echo "–"; return; }
  python3 -c 'import json,sys; v=json.loads(sys.argv[1]).get(sys.argv[2]); print("–" if v is None else (f"{v:.1f}" if isinstance(v, float) else v))' \
    "${COLD[$1]}" "$2"
}

# ------------------------------------------------------------------ objdump
# Hardware SHA-256: SHA-NI on x86_64 (sha256rnds2), the ARMv8 SHA-256 extension on
# aarch64 (sha256h). The count only shows the code is there (sha2 picks it at run time).
OBJDUMP_ARM=
for o in aarch64-linux-gnu-objdump llvm-objdump; do
  command -v "$o" >/dev/null && { OBJDUMP_ARM=$o; break; }
done
insn_count() { # insn_count OBJDUMP BINARY MNEMONIC
  [ -f "$2" ] || { echo "–"; return; }
  # LLVM decodes the ARMv8 SHA-256 instructions only when told the extension exists.
  local flags=()
  [ "$1" = llvm-objdump ] && [ "$3" = sha256h ] && flags=(--mattr=+crypto,+sha2)
  "$1" -d "${flags[@]}" "$2" 2>/dev/null | awk -v m="$3" '{ for (i = 1; i <= NF; i++) if ($i == m) { c++; break } } END { print c + 0 }'
}

# The floor on aarch64 under qemu-aarch64 (Debian's qemu-user, with libc6-arm64-cross for
# its loader) as a Graviton2 core (neoverse-n1): whether the CPU reports the SHA-256
# instructions sha2 detects at run time, and the time per webhook (emulated, so only the
# presence of the path counts, not the speed).
PROBE=()
ARM_FLOOR=$ARM_DIR/perf-floor/bootstrap
if [ -z "$ARM_NOTE" ] && [ -x "$ARM_FLOOR" ] && command -v qemu-aarch64 >/dev/null && [ -d /usr/aarch64-linux-gnu ]; then
  for cpu in neoverse-n1 max; do
    PROBE+=("$cpu: $(qemu-aarch64 -L /usr/aarch64-linux-gnu -cpu "$cpu" "$ARM_FLOOR" "$BODIES" "$SECRET" probe 2>&1 | tail -1)")
  done
fi

# ------------------------------------------------------------------ report
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > 0) printf "%.2f", a / b; else print "–" }'; }
us() { awk -v a="$1" 'BEGIN { if (a ~ /^[0-9.]+$/) printf "%.2f", a / 1000; else print "–" }'; }
kilo() { awk -v a="$1" 'BEGIN { if (a ~ /^[0-9.]+$/) printf "%.1fk", a / 1000; else print "–" }'; }
thousands() { sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$1"; }
bytes() { if [ -f "$1" ]; then thousands "$(stat -c %s "$1")"; else echo "–"; fi; }
version() { awk -v n="$1" '$0 == "name = \"" n "\"" { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock; }
row() { # row LABEL FLOOR NODE BEFORE AFTER (the BEFORE cell only with --baseline)
  if [ -n "$BASELINE" ]; then echo "| $1 | $2 | $3 | $4 | $5 |"; else echo "| $1 | $2 | $3 | $5 |"; fi
}
PROFILE=$(python3 -c 'import json, tomllib; p = tomllib.load(open("Cargo.toml", "rb"))["profile"]["release"]
out = ", ".join(f"{k} = {json.dumps(v)}" for k, v in p.items() if k != "package")
o3 = ", ".join(sorted(k for k, v in p.get("package", {}).items() if v.get("opt-level") == 3))
print(out + (f"; opt-level = 3 for {o3}" if o3 else ""))')
FI=$(cg floor instructions) RI=$(cg receiver instructions) BI=$(cg before instructions)

cat <<EOF
# Receiver CPU per webhook ($(date -u +%Y-%m-%d))

- Checkout: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- 2>/dev/null || echo " (with uncommitted changes)")$([ -n "$BASELINE" ] && echo "; before = \`$BASELINE\` ($B_REV)")
- Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) cores, $(uname -m)
- $(rustc -V); node $([ "$NODE_OK" = 1 ] && "$NODE" --version || echo "–")
- Crates: hmac $(version hmac), sha2 $(version sha2), serde_json $(version serde_json), hex $(version hex)
- Profile (release): $PROFILE
- Bodies: $BODIES_NOTE (scripts/perf/bodies.py)

| per webhook | floor | Node consumer | $([ -n "$BASELINE" ] && echo "genhook receiver (before) | ")genhook receiver |
|---|---:|---:|$([ -n "$BASELINE" ] && echo "---:|")---:|
EOF
row "wall time, min / median (µs)" "$(us "${WMIN[floor]}") / $(us "${WMED[floor]}")" \
  "$(us "${WMIN[node]}") / $(us "${WMED[node]}")" "$(us "${WMIN[before]}") / $(us "${WMED[before]}")" \
  "$(us "${WMIN[receiver]}") / $(us "${WMED[receiver]}")"
row "instructions (callgrind)" "$(thousands "$FI")" "–" "$(thousands "$BI")" "$(thousands "$RI")"
row "ratio to floor, instructions" "1.00" "–" "$(ratio "$BI" "$FI")" "$(ratio "$RI" "$FI")"
row "ratio to floor, wall (median)" "1.00" "$(ratio "${WMED[node]}" "${WMED[floor]}")" \
  "$(ratio "${WMED[before]}" "${WMED[floor]}")" "$(ratio "${WMED[receiver]}" "${WMED[floor]}")"
row "speedup vs Node (median)" "$(ratio "${WMED[node]}" "${WMED[floor]}")×" "1.00×" \
  "$(ratio "${WMED[node]}" "${WMED[before]}")×" "$(ratio "${WMED[node]}" "${WMED[receiver]}")×"
row "allocations (malloc calls)" "$(cg floor mallocs)" "–" "$(cg before mallocs)" "$(cg receiver mallocs)"
row "reallocs" "$(cg floor reallocs)" "–" "$(cg before reallocs)" "$(cg receiver reallocs)"
row "of which SHA-256 compression" "$(kilo "$(cg floor sha256)")" "–" "$(kilo "$(cg before sha256)")" \
  "$(kilo "$(cg receiver sha256)")"
row "ratio to floor, instructions outside SHA-256" "1.00" "–" "$(ratio "$(nosha before)" "$(nosha floor)")" \
  "$(ratio "$(nosha receiver)" "$(nosha floor)")"
cat <<EOF

- Wall time: $ROUNDS interleaved rounds, each a warm-up and 5 timed passes over the $N
  webhooks in one process: min and median of the $((ROUNDS * 5)) passes. Native code, so sha2
  uses SHA-NI where the CPU has it (Node's OpenSSL too). Compare within one run only.
- Instructions, allocations: callgrind over one pass (\`--zero-before=counted_region\`),
  divided by $N. Exact and repeatable under load. Under valgrind sha2 takes its portable
  SHA-256 path (valgrind hides SHA-NI).${CG_NOTE:+
- $CG_NOTE}
- The receiver: \`Receiver::handle\` on the in-memory store and queue, a fresh receiver per
  pass, so every delivery is new (verify, parse, claim, inbox message, mark; 200).

## Cold start ($COLD_RUNS runs each, fake Runtime API on loopback)

EOF
if [ -n "$COLD_NOTE" ]; then
  echo "$COLD_NOTE"
else
  echo "| binary | init ms (median / min) | peak RSS at ready (MB, median) | 1st invocation ms | 2nd invocation ms |"
  echo "|---|---:|---:|---:|---:|"
  for k in hello receiver "receiver (before)" worker "worker (before)" links "links (before)"; do
    [ -n "${COLD[$k]+set}" ] || continue
    echo "| $k | $(coldf "$k" init_ms_median) / $(coldf "$k" init_ms_min) | $(coldf "$k" hwm_mb_median) | $(coldf "$k" first_invoke_ms) | $(coldf "$k" second_invoke_ms) |"
  done
  echo
  echo "Every AWS endpoint is a closed loopback port, so the invocations answer errors; init is the point."
fi
cat <<EOF

## Binaries (release profile, stripped)

| binary |$([ -n "$BASELINE" ] && echo " x86_64 bytes (before) |") x86_64 bytes | SHA-NI \`sha256rnds2\` (x86_64) |$([ -n "$BASELINE" ] && echo " aarch64 bytes (before) | ARMv8 \`sha256h\` (before) |") aarch64 bytes | ARMv8 \`sha256h\` (aarch64) |
|---|$([ -n "$BASELINE" ] && echo "---:|---:|---:|")---:|---:|---:|---:|
EOF
for f in "${FUNCTIONS[@]}"; do
  x86=$TARGET/release/$f arm=$ARM_DIR/$f/bootstrap
  b_arm=$B_TARGET/lambda/$f/bootstrap
  arm_bytes="–" arm_sha="–" b_arm_bytes="–" b_arm_sha="–"
  if [ -z "$ARM_NOTE" ]; then
    arm_bytes=$(bytes "$arm") b_arm_bytes=$(bytes "$b_arm")
    [ -n "$OBJDUMP_ARM" ] && arm_sha=$(insn_count "$OBJDUMP_ARM" "$arm" sha256h) b_arm_sha=$(insn_count "$OBJDUMP_ARM" "$b_arm" sha256h)
  fi
  echo "| $f |$([ -n "$BASELINE" ] && echo " $(bytes "$B_TARGET/release/$f") |") $(bytes "$x86") | $(insn_count objdump "$x86" sha256rnds2) |$([ -n "$BASELINE" ] && echo " $b_arm_bytes | $b_arm_sha |") $arm_bytes | $arm_sha |"
done
[ -n "$HELLO" ] && echo "| hello world ($HELLO_PKG) |$([ -n "$BASELINE" ] && echo " – |") $(bytes "$HELLO") | – |$([ -n "$BASELINE" ] && echo " – | – |") – | – |"
echo
[ -n "$ARM_NOTE" ] && echo "- aarch64: $ARM_NOTE."
[ -z "$ARM_NOTE" ] && [ -z "$OBJDUMP_ARM" ] &&
  echo "- aarch64 instruction count skipped: no aarch64 objdump (apt-get install binutils-aarch64-linux-gnu)."
echo "- aarch64 binaries: \`cargo lambda build --release --arm64\`, as deployed."
if [ ${#PROBE[@]} -gt 0 ]; then
  echo "- The aarch64 floor under qemu-aarch64 (\`perf-floor ... probe\`; emulated, so the time only shows it runs):"
  for p in "${PROBE[@]}"; do echo "  - $p"; done
elif [ -z "$ARM_NOTE" ]; then
  echo "- aarch64 probe skipped: needs qemu-aarch64 and /usr/aarch64-linux-gnu (apt-get install qemu-user libc6-arm64-cross)."
fi
log "done"
