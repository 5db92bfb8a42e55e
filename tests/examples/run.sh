#!/usr/bin/env bash
# The kill-and-resume test of the client examples (examples/clients/: Node.js, Python, Go, Rust,
# browser) against the real local stack.
#
#   bash tests/examples/run.sh [EXAMPLE…]      # default: node python go rust browser
#
# Idempotent installs, each skipped when already done: `npm ci` in examples/clients/node, a
# Python venv in examples/clients/python/.venv (git-ignored) with the hash-pinned requirements,
# `go build` of examples/clients/go (into the cargo target dir), `cargo build` of the sink, the
# Rust example and the driver (tests/client_examples.rs); for the browser: Debian chromium and
# playwright-core from tests/ui (as tests/ui/run.sh installs them). Then `scripts/stack up`
# (returns at once when the stack runs) and the driver, which starts a private sink (free port,
# its own registry topics), one source with a table per example, and for each example: starts
# it, writes 3,000 changes, kills it mid-stream, restarts it and checks OUTPUT by primary key;
# then deletes OUTPUT, starts it again and checks that it resumes from its last ack.
# It prints one line per example, then "N passed, M failed":
#   example=NAME committed=N delivered=N lost=0 duplicated=0 out_of_order=0 unexpected=0 …
# In CI (scripts/test) the stack is the one `scripts/stack up` started in the same checkout;
# by hand against a stack started elsewhere, point TW_HOME (and the TW_*_PORT variables) at it.
# Outputs and the examples' logs go to tests/artifacts/examples/ (git-ignored).
# Exit status: that of the driver (0 all passed, 1 a loss/duplicate/reorder, 2 could not run);
# a setup failure ends with one line starting "examples-tests: error:".
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
EX="$ROOT/examples/clients"
ARTIFACTS="$ROOT/tests/artifacts/examples"
CHROMIUM=${TW_UI_CHROMIUM:-/usr/bin/chromium}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
EXAMPLES=("$@")
[ "${#EXAMPLES[@]}" -gt 0 ] || EXAMPLES=(node python go rust browser)

die() {
  echo "examples-tests: error: $*" >&2
  exit 1
}
say() { echo "examples-tests: $*" >&2; }
wants() { printf '%s\n' "${EXAMPLES[@]}" | grep -qx "$1"; }
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi
}

declare -a TIMINGS=()
timed() {
  local name=$1 t0=$SECONDS
  shift
  "$@"
  TIMINGS+=("$(printf '%-24s %4ss' "$name" $((SECONDS - t0)))")
}
print_timings() {
  [ "${#TIMINGS[@]}" -gt 0 ] || return 0
  say "timings:"
  printf '    %s\n' "${TIMINGS[@]}" >&2
}
trap print_timings EXIT
mkdir -p "$ARTIFACTS" "$TARGET_DIR/examples"

# --- installs and builds -----------------------------------------------------------------------
install_node() {
  command -v node >/dev/null || die "node is not installed (node >= 20 is needed)"
  [ "$(node -p 'process.versions.node.split(".")[0]')" -ge 20 ] || die "node $(node --version) is too old: node >= 20 is needed"
  if [ ! -f "$EX/node/node_modules/eventsource/package.json" ] ||
    [ "$EX/node/package-lock.json" -nt "$EX/node/node_modules/.package-lock.json" ]; then
    say "installing the node example's packages (npm ci)"
    (cd "$EX/node" && npm ci --no-audit --no-fund --loglevel=error >&2) || die "npm ci failed in examples/clients/node"
  fi
}

VENV="$EX/python/.venv"
install_python() {
  command -v python3 >/dev/null || die "python3 is not installed"
  # The venv is rebuilt when requirements.txt changed since it was made.
  if [ ! -x "$VENV/bin/python" ] || [ "$EX/python/requirements.txt" -nt "$VENV/.installed" ]; then
    say "creating the python example's venv (pip install --require-hashes)"
    rm -rf "$VENV"
    python3 -m venv "$VENV" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --require-hashes \
      -r "$EX/python/requirements.txt" >&2 || die "pip install failed in examples/clients/python"
    touch "$VENV/.installed"
  fi
}

build_go() {
  command -v go >/dev/null || die "go is not installed (the go example needs go >= 1.26)"
  say "building the go example"
  (cd "$EX/go" && GOFLAGS=-mod=readonly go build -o "$TARGET_DIR/examples/go-consumer" .) >&2 ||
    die "go build failed in examples/clients/go"
}

install_browser() {
  command -v node >/dev/null || die "node is not installed (the browser runner needs node >= 20)"
  if [ ! -x "$CHROMIUM" ]; then
    say "installing Debian chromium"
    { as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >"${TMPDIR:-/tmp}/tw-examples-apt.log" 2>&1 ||
      die "could not install chromium with apt-get; see ${TMPDIR:-/tmp}/tw-examples-apt.log"
  fi
  local ui="$ROOT/tests/ui"
  if [ ! -f "$ui/node_modules/playwright-core/package.json" ] ||
    [ "$ui/package-lock.json" -nt "$ui/node_modules/.package-lock.json" ]; then
    say "installing playwright-core (npm ci in tests/ui)"
    (cd "$ui" && npm ci --no-audit --no-fund --loglevel=error >&2) || die "npm ci failed in tests/ui"
  fi
}

build_rust() {
  command -v cargo >/dev/null || die "cargo is not installed"
  say "building the sink, the rust example and the driver"
  # The same package set as scripts/chaos plus the example: one feature resolution, shared builds.
  (cd "$ROOT" && cargo build --quiet -p tumbleweed-sink -p tumbleweed-tests -p tumbleweed-client-example \
    --bin tumbleweed-sink --bin client-examples --bin tumbleweed-client-example) || die "cargo build failed"
}

wants node && timed "install node" install_node
wants python && timed "install python" install_python
wants go && timed "build go" build_go
wants browser && timed "install browser" install_browser
timed "build rust" build_rust

# --- the stack and the test --------------------------------------------------------------------
say "the local stack (scripts/stack up)"
STACK_ENV=$("$ROOT/scripts/stack" up) || die "scripts/stack up failed"
while IFS='=' read -r key value; do
  case "$key" in TW_*) export "$key=$value" ;; esac
done <<<"$STACK_ENV"

declare -a ARGS=()
for name in "${EXAMPLES[@]}"; do
  case "$name" in
    node) ARGS+=(--example "node=node $EX/node/consumer.mjs") ;;
    python) ARGS+=(--example "python=$VENV/bin/python $EX/python/consumer.py") ;;
    go) ARGS+=(--example "go=$TARGET_DIR/examples/go-consumer") ;;
    rust) ARGS+=(--example "rust=$TARGET_DIR/debug/tumbleweed-client-example") ;;
    browser) ARGS+=(--example "browser=node $ROOT/tests/examples/browser-runner.mjs") ;;
    *) die "unknown example $name (node, python, go, rust, browser)" ;;
  esac
done

say "running the examples: ${EXAMPLES[*]}"
status=0
t0=$SECONDS
TW_UI_CHROMIUM="$CHROMIUM" "$TARGET_DIR/debug/client-examples" --sink-bin "$TARGET_DIR/debug/tumbleweed-sink" \
  --work-dir "$ARTIFACTS" "${ARGS[@]}" || status=$?
TIMINGS+=("$(printf '%-24s %4ss' "kill + resume test" $((SECONDS - t0)))")
[ "$status" -eq 0 ] || say "FAILED (exit $status); outputs and logs are in tests/artifacts/examples/"
exit "$status"
