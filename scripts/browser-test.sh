#!/usr/bin/env bash
# Real-browser tests of the approval page (tests/browser/approve.test.mjs) and the
# status page (tests/browser/status.test.mjs, phone and desktop; every *.test.mjs runs):
# Debian's chromium driven by playwright-core against a `shipgate dev` sandbox.
#
#   scripts/browser-test.sh            # skips (exit 0) if chromium can't be had
#   SHIPGATE_REQUIRE_BROWSER=1 scripts/browser-test.sh   # ... fails instead
#
# Needs target/debug/shipgate (cargo build -p shipgate) and ./.venv (make setup);
# builds nothing. Installs chromium with apt-get when run as root, and the npm
# packages of tests/browser with `npm ci` when they are missing or stale.
# Screenshots: target/browser/*.png.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BROWSER_DIR=tests/browser
CHROMIUM="${SHIPGATE_CHROMIUM:-/usr/bin/chromium}"
SHIPGATE_BIN="${SHIPGATE_BIN:-target/debug/shipgate}"
LOG="$(mktemp -t shipgate-browser-setup.XXXXXX)"
trap 'rm -f "$LOG"' EXIT

unavailable() { # $1: what is missing
  if [ "${SHIPGATE_REQUIRE_BROWSER:-0}" = 1 ]; then
    echo "browser test: $1 (SHIPGATE_REQUIRE_BROWSER=1)" >&2
    exit 1
  fi
  echo "skipped: $1"
  exit 0
}

# 1. chromium (Debian's; playwright never downloads a browser here)
if [ ! -x "$CHROMIUM" ] && [ "$CHROMIUM" = /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing chromium with apt-get..." >&2
  if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >"$LOG" 2>&1; then
    tail -n 20 "$LOG" >&2
  fi
fi
[ -x "$CHROMIUM" ] || unavailable "chromium not available"

# 2. node >= 20 (playwright-core's minimum) and npm
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  unavailable "node/npm not available"
fi
NODE_MAJOR="$(node -p 'process.versions.node.split(".")[0]')"
[ "$NODE_MAJOR" -ge 20 ] || unavailable "node $(node --version) is too old (need >= 20)"

# 3. the sandbox binary and its moto venv
if [ ! -x "$SHIPGATE_BIN" ]; then
  echo "browser test: $SHIPGATE_BIN not found; build it first: cargo build -p shipgate" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "browser test: ./.venv missing (the sandbox runs moto from it); run: make setup" >&2
  exit 1
fi

# 4. npm packages (pinned by package-lock.json)
if [ ! -d "$BROWSER_DIR/node_modules" ] || [ "$BROWSER_DIR/package-lock.json" -nt "$BROWSER_DIR/node_modules" ]; then
  if ! (cd "$BROWSER_DIR" && npm ci --no-audit --no-fund --loglevel=error) >"$LOG" 2>&1; then
    cat "$LOG" >&2
    echo "browser test: npm ci failed in $BROWSER_DIR" >&2
    exit 1
  fi
  touch "$BROWSER_DIR/node_modules"
fi

# 5. the test (files listed explicitly: newer node treats --test arguments as globs)
export SHIPGATE_BIN SHIPGATE_CHROMIUM="$CHROMIUM"
exec node --test "$BROWSER_DIR"/*.test.mjs
