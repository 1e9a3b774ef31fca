#!/usr/bin/env bash
# Benchmark (not a test): the latency a passing test verification adds over the sandbox —
# from the VERIFYING_TEST history entry (ECS "completed" received) to AWAITING_APPROVAL (check
# passed, approval round opened), for N pushes against `shipgate dev` with the local
# hello-service. The goal of issue 18: at most one check interval (the demo pipeline's is 1 s).
#
#   bench/verify-latency.sh [N]      # needs target/debug/shipgate and ./.venv
set -euo pipefail
N="${1:-5}"
PORT="${PORT:-9447}"
DIR="$(mktemp -d -t shipgate-verify-bench.XXXXXX)"
BIN="${SHIPGATE_BIN:-target/debug/shipgate}"
"$BIN" dev --port "$PORT" --build-seconds 1 --deploy-seconds 1 --state-dir "$DIR/.shipgate" >"$DIR/dev.log" 2>&1 &
DEV=$!
trap 'kill $DEV 2>/dev/null; wait $DEV 2>/dev/null; rm -rf "$DIR"' EXIT
for _ in $(seq 1 100); do [ -f "$DIR/.shipgate/dev.env" ] && break; sleep 0.2; done
set -a; . "$DIR/.shipgate/dev.env"; set +a
for i in $(seq 1 "$N"); do
  id=$("$BIN" dev push --message "bench $i" | awk '/^execution/{print $2}')
  for _ in $(seq 1 100); do
    st=$("$BIN" show "$id" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["execution"]["status"])')
    [ "$st" = AWAITING_APPROVAL ] && break; sleep 0.2
  done
  "$BIN" show "$id" --json | python3 -c '
import json, sys
from datetime import datetime
e = json.load(sys.stdin)["execution"]
at = {h["to"]: h["at"] for h in e["history"] if h.get("from") != h["to"]}
t = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))
ms = (t(at["AWAITING_APPROVAL"]) - t(at["VERIFYING_TEST"])).total_seconds() * 1000
print("%s: verification added %.1f ms" % (e["id"], ms))'
done
