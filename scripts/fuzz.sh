#!/usr/bin/env bash
# Run every fuzz target for a time budget each: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
# Uses cargo-fuzz (installed on first use) with libFuzzer and no sanitizer, so it runs on the
# stable toolchain (the code under test is safe Rust; libFuzzer still finds panics, overflows in
# debug assertions, infinite loops and OOMs). Seeds: fuzz/corpus/<target> (from events/); the
# growing corpus lives in target/fuzz-corpus/<target>; crashes in fuzz/artifacts/<target>.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET="${1:-60}"
shift || true
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
  TARGETS=(webhook_push approval_token codebuild_event ecs_event codecommit_event pipeline_definition glob)
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz..." >&2
  cargo install cargo-fuzz --locked --quiet
fi
# cargo-fuzz passes a few unstable flags; this lets the stable compiler accept them
export RUSTC_BOOTSTRAP=1
for t in "${TARGETS[@]}"; do
  mkdir -p "target/fuzz-corpus/$t"
  echo "== fuzzing $t for ${SECONDS_PER_TARGET}s"
  log="target/fuzz-$t.log"
  status=0
  cargo fuzz run --sanitizer none --release --debug-assertions "$t" "target/fuzz-corpus/$t" "fuzz/corpus/$t" -- \
    -max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 >"$log" 2>&1 || status=$?
  grep -E "^(#[0-9]+.*DONE|Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss_mb)" "$log" || true
  if [ "$status" -ne 0 ] || [ -n "$(ls -A "fuzz/artifacts/$t" 2>/dev/null)" ]; then
    tail -n 40 "$log" >&2
    echo "fuzz target $t failed (exit $status); log: $log; crashes: fuzz/artifacts/$t" >&2
    exit 1
  fi
done
echo "fuzzing done: no crash in ${#TARGETS[@]} target(s), ${SECONDS_PER_TARGET}s each"
