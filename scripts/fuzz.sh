#!/usr/bin/env bash
# Fuzzes the hub's parsers with cargo fuzz (libFuzzer): builds every target in fuzz/ once,
# then runs each for a bounded time on a copy of its seed corpus (fuzz/corpus/<target>),
# so the repo stays clean. Fails on the first crash (panic, failed assertion, overflow,
# hang past -timeout, memory past -rss_limit_mb) and prints the artifact and the command
# that reproduces it.
#
#   scripts/fuzz.sh                    # every target, FUZZ_SECONDS (default 30) each
#   scripts/fuzz.sh sse config         # only these targets
#   FUZZ_SECONDS=600 scripts/fuzz.sh   # longer, locally
#
# The machine has stable Rust only: RUSTC_BOOTSTRAP=1 lets cargo fuzz pass its nightly
# flags (-Zsanitizer=address and the coverage instrumentation) to the stable compiler.
# Targets are built with AddressSanitizer, debug assertions and overflow checks (cargo
# fuzz's defaults), 16 codegen units (a much faster build on 2 cores).
# Knobs: FUZZ_SECONDS, FUZZ_PROFILE (release | dev), FUZZ_RSS_MB (2048), FUZZ_TIMEOUT (10 s per input),
# FUZZ_KEEP_WORK=1 (keep the temp dir with the grown corpus).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf '[fuzz.sh] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

SECONDS_PER_TARGET="${FUZZ_SECONDS:-30}"
RSS_MB="${FUZZ_RSS_MB:-2048}"
TIMEOUT="${FUZZ_TIMEOUT:-10}"
export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

command -v cargo >/dev/null || die "cargo not found (install Rust with rustup)"
if ! cargo fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz (cargo install cargo-fuzz --locked)"
  cargo install cargo-fuzz --locked
fi
cargo fuzz --version

started=$SECONDS
# FUZZ_PROFILE=dev: unoptimized, no sanitizer (overflow checks and debug assertions stay on;
# memory errors need unsafe code, which the parsers do not have): builds in a fraction of
# the time, runs fewer inputs per second. Default: release with AddressSanitizer.
case "${FUZZ_PROFILE:-release}" in
  dev) build_args=(--dev --sanitizer none); profile_dir=debug ;;
  release) build_args=(--codegen-units 16); profile_dir=release ;;
  *) die "FUZZ_PROFILE must be dev or release" ;;
esac
log "building the fuzz targets (${FUZZ_PROFILE:-release})"
cargo fuzz build "${build_args[@]}"
log "built in $((SECONDS - started)) s"

BIN_DIR="$ROOT/fuzz/target/x86_64-unknown-linux-gnu/$profile_dir"
if (($#)); then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi
((${#targets[@]})) || die "no fuzz targets in fuzz/"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/mcp-hub-fuzz.XXXXXX")"
failed=()
summary=()
for t in "${targets[@]}"; do
  bin="$BIN_DIR/$t"
  [[ -x "$bin" ]] || die "$bin not built"
  mkdir -p "$WORK/corpus/$t" "$WORK/artifacts/$t"
  if [[ -d "fuzz/corpus/$t" ]]; then
    cp -R "fuzz/corpus/$t/." "$WORK/corpus/$t/"
  fi
  out="$WORK/$t.log"
  log "running $t for ${SECONDS_PER_TARGET} s (log $out)"
  t0=$SECONDS
  set +e
  "$bin" "$WORK/corpus/$t" \
    -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb="$RSS_MB" -timeout="$TIMEOUT" \
    -artifact_prefix="$WORK/artifacts/$t/" -print_final_stats=1 >"$out" 2>&1
  rc=$?
  set -e
  took=$((SECONDS - t0))
  stat() { sed -n "s/^stat::$1: *//p" "$out" | tail -n 1; }
  runs="$(stat number_of_executed_units)"
  rate="$(stat average_exec_per_sec)"
  cov="$(grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$out" | tail -n 1)"
  line="$t: ${runs:-?} runs in ${took} s (${rate:-?}/s), ${cov:-no coverage line}"
  if ((rc != 0)); then
    line+=", CRASH (exit $rc)"
    failed+=("$t")
    echo "---- last 40 lines of $out ----"
    tail -n 40 "$out"
    for a in "$WORK/artifacts/$t"/*; do
      [[ -e "$a" ]] || continue
      echo "crash artifact: $a"
      echo "reproduce:      RUSTC_BOOTSTRAP=1 cargo fuzz run $t $a"
    done
  fi
  summary+=("$line")
  echo "fuzz $line"
done

echo
echo "fuzz summary (${SECONDS_PER_TARGET} s per target):"
printf '  %s\n' "${summary[@]}"
if ((${#failed[@]})); then
  log "crashes in: ${failed[*]} (work dir kept: $WORK)"
  exit 1
fi
if [[ "${FUZZ_KEEP_WORK:-}" == "1" ]]; then
  log "work dir kept: $WORK"
else
  rm -rf "$WORK"
fi
echo "fuzz: ${#targets[@]} passed, 0 failed"
