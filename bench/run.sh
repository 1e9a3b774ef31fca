#!/usr/bin/env bash
# shipgate performance evidence (issue 9): `make bench` runs this.
#
# 1. release build of the seven function binaries (timed), of bench/hello (the bare lambda_runtime
#    reference, in its own cargo invocation so its dependency features are its own), debug build
#    of `shipgate` (the sandbox)
# 2. criterion micro-benchmarks in shared/benches (signature + push decoding, one transition, tokens)
# 3. bench/bench.py: Lambda Runtime API emulator + local AWS (moto via `shipgate dev`): Init
#    Duration, per-invocation latency, peak RSS, AWS calls and DynamoDB units per execution, the
#    boto3 peer of the webhook under awslambdaric; one table, JSON in target/bench/results.json
#
# Environment: BENCH_N (invocations per payload, default 200), BENCH_COLD (cold starts per
# function, default 10), BENCH_MEASUREMENT_SECONDS (criterion, default 3), CARGO, BENCH_PHASES
# (comma list of count, latency, init, breakdown, peer, criterion; default all: e.g.
# BENCH_PHASES=init runs only the interleaved cold starts and skips the criterion builds).
# Nothing here runs in `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO=${CARGO:-cargo}
OUT=target/bench
mkdir -p "$OUT"
FUNCTIONS=(webhook codecommit build-events deploy-events approvals control sweeper)

step() { printf '\n== %s\n' "$*" >&2; }

step "python tools: ./.venv (moto, via make setup) and bench/.venv (awslambdaric + boto3 for the peer)"
if [ ! -f .venv/.installed ]; then make setup; fi
if [ ! -f bench/.venv/.installed ] || [ bench/requirements.txt -nt bench/.venv/.installed ]; then
    test -x bench/.venv/bin/python || python3 -m venv bench/.venv
    bench/.venv/bin/python -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
    touch bench/.venv/.installed
fi

step "release build of the function binaries"
pkgs=()
for f in "${FUNCTIONS[@]}"; do pkgs+=(-p "$f"); done
start=$(date +%s.%N)
nice "$CARGO" build --release "${pkgs[@]}"
end=$(date +%s.%N)
build_seconds=$(python3 -c "print(round($end - $start, 1))")
echo "release build: ${build_seconds} s (incremental: a no-op build is a few seconds)" >&2

step "release build of bench-hello (the bare lambda_runtime reference; same release profile)"
nice "$CARGO" build --release -p bench-hello

step "debug build of shipgate (the sandbox)"
"$CARGO" build -p shipgate

export CRITERION_HOME="$PWD/target/criterion"
phases=${BENCH_PHASES:-all}
if [ "$phases" = all ] || [[ ",$phases," == *,criterion,* ]]; then
    step "criterion micro-benchmarks"
    secs=${BENCH_MEASUREMENT_SECONDS:-3}
    for b in github_push transition token; do
        "$CARGO" bench -p shared --bench "$b" -- --noplot --warm-up-time 1 --measurement-time "$secs"
    done
else
    step "criterion micro-benchmarks skipped (BENCH_PHASES=$phases)"
fi

step "Lambda emulator benchmarks (takes a few minutes)"
exec .venv/bin/python bench/bench.py --out "$OUT/results.json" --build-seconds "$build_seconds" --phases "$phases"
