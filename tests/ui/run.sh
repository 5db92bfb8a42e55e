#!/usr/bin/env bash
# Browser tests of the operator UI (ui/) against the real local stack.
#
#   bash tests/ui/run.sh
#
# Idempotent: installs Debian chromium and the pinned node packages when missing, builds the
# sink (cargo's default target dir, so it reuses the main test command's build), ensures
# `scripts/stack up`, starts a private sink (free port, fresh admin token, its own consumers
# topic, TUMBLEWEED_UI_DIR=ui), runs `node --test tests/ui/`, stops that sink by PID.
# Screenshots and the sink's log go to tests/artifacts/ui/ (git-ignored).
# Exit status: that of the tests; a setup failure ends with one line starting "ui-tests: error:".
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE="$ROOT/tests/ui"
ARTIFACTS="$ROOT/tests/artifacts/ui"
CHROMIUM=${TW_UI_CHROMIUM:-/usr/bin/chromium}

die() {
  echo "ui-tests: error: $*" >&2
  exit 1
}
say() { echo "ui-tests: $*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi
}

# --- tools -------------------------------------------------------------------------------------
command -v node >/dev/null || die "node is not installed (node >= 20 is needed)"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "node $(node --version) is too old: node >= 20 is needed (node --test, playwright-core)"
command -v npm >/dev/null || die "npm is not installed"
command -v psql >/dev/null || die "psql is not installed (the tests create their database with it)"

if [ ! -x "$CHROMIUM" ]; then
  say "installing Debian chromium"
  { as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >"${TMPDIR:-/tmp}/tw-ui-apt.log" 2>&1 ||
    die "could not install chromium with apt-get (root or passwordless sudo needed); see ${TMPDIR:-/tmp}/tw-ui-apt.log"
  [ -x "$CHROMIUM" ] || die "chromium was installed but $CHROMIUM does not exist"
fi

# node_modules is (re)installed when missing or older than the lockfile.
if [ ! -f "$HERE/node_modules/playwright-core/package.json" ] ||
  [ "$HERE/package-lock.json" -nt "$HERE/node_modules/.package-lock.json" ]; then
  say "installing node packages (npm ci)"
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error >&2) ||
    die "npm ci failed in tests/ui (is the npm registry reachable?)"
fi

# --- sink and stack ----------------------------------------------------------------------------
say "building the sink"
(cd "$ROOT" && cargo build -q -p tumbleweed-sink) || die "cargo build -p tumbleweed-sink failed"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
SINK="$TARGET_DIR/debug/tumbleweed-sink"
[ -x "$SINK" ] || die "the sink binary is not at $SINK"

say "starting the local stack (scripts/stack up)"
STACK_ENV=$("$ROOT/scripts/stack" up) || die "scripts/stack up failed"
while IFS='=' read -r key value; do
  case "$key" in TW_*) export "$key=$value" ;; esac
done <<<"$STACK_ENV"
: "${TW_KAFKA_BOOTSTRAP:?}" "${TW_CONNECT_URL:?}" "${TW_PG_HOST:?}" "${TW_PG_PORT:?}"

mkdir -p "$ARTIFACTS"
PORT=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
RUN_ID=$(node -p 'require("crypto").randomBytes(6).toString("hex")')
ADMIN_TOKEN="ui-admin-$(node -p 'require("crypto").randomBytes(18).toString("base64url")')"
SINK_LOG="$ARTIFACTS/sink.log"

SINK_PID=""
stop_sink() {
  if [ -n "$SINK_PID" ] && kill -0 "$SINK_PID" 2>/dev/null; then
    kill "$SINK_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SINK_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SINK_PID" 2>/dev/null || true
  fi
}
trap stop_sink EXIT
trap 'exit 130' INT TERM

say "starting the sink on 127.0.0.1:$PORT (consumers topic _tw_ui_$RUN_ID)"
(
  cd "$ROOT"
  exec env TUMBLEWEED_ADMIN_TOKEN="$ADMIN_TOKEN" TUMBLEWEED_UI_DIR=ui RUST_LOG="${RUST_LOG:-info}" \
    "$SINK" --listen "127.0.0.1:$PORT" --kafka-bootstrap "$TW_KAFKA_BOOTSTRAP" \
    --connect-url "$TW_CONNECT_URL" --consumers-topic "_tw_ui_$RUN_ID" --sources-topic "_tw_ui_sources_$RUN_ID" \
    --cursors-topic "_tw_ui_cursors_$RUN_ID" --tickets-topic "_tw_ui_tickets_$RUN_ID" \
    --stats-topic "_tw_ui_stats_$RUN_ID" --stats-interval-secs 1 --stats-window-secs 120
) >"$SINK_LOG" 2>&1 &
SINK_PID=$!

ready=""
for _ in $(seq 150); do
  kill -0 "$SINK_PID" 2>/dev/null || { tail -n 20 "$SINK_LOG" >&2; die "the sink exited during startup (log: $SINK_LOG)"; }
  if curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; then ready=1; break; fi
  sleep 0.2
done
[ -n "$ready" ] || { tail -n 20 "$SINK_LOG" >&2; die "the sink did not become healthy in 30 s (log: $SINK_LOG)"; }

# --- tests -------------------------------------------------------------------------------------
say "running node --test tests/ui/"
status=0
(cd "$ROOT" && TW_UI_BASE_URL="http://127.0.0.1:$PORT" TW_UI_ADMIN_TOKEN="$ADMIN_TOKEN" \
  TW_UI_ARTIFACTS="$ARTIFACTS" TW_UI_CHROMIUM="$CHROMIUM" \
  node --test tests/ui/) || status=$?
if [ "$status" -ne 0 ]; then
  say "FAILED (exit $status); screenshots and the sink log are in tests/artifacts/ui/"
else
  say "passed; screenshots in tests/artifacts/ui/"
fi
exit "$status"
