#!/usr/bin/env bash
# Checks the alert rules and the dashboard in ops/ (scripts/test runs it; no network, no stack):
#   1. `promtool check rules` on ops/prometheus/tumbleweed.rules.yml;
#   2. `promtool test rules` on its unit tests, ops/prometheus/tumbleweed.rules.test.yml;
#   3. ops/check_refs.py: the Grafana dashboard is valid JSON on the ${DS_PROMETHEUS} input;
#      every metric and label the rules and the dashboard use is one the sink exposes
#      (sink/src); every alert has summary, description and a runbook_url whose anchor is a
#      heading of ops/RUNBOOK.md;
#   4. `promtool check rules` on the dashboard's queries, so each one is valid PromQL.
# promtool: $PROMTOOL, else .local/bin/promtool (scripts/install-helper-test-tools.sh puts it
# there), else the one on PATH. Prints one line naming the problem and exits 1 on failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RULES="$ROOT/ops/prometheus/tumbleweed.rules.yml"
TESTS="$ROOT/ops/prometheus/tumbleweed.rules.test.yml"

fail() { echo "ops/check: $*" >&2; exit 1; }
# show OUTPUT: promtool's own report, indented, before the one-line verdict.
show() { sed 's/^/    /' <<<"$1" >&2; }

PROMTOOL="${PROMTOOL:-}"
if [ -z "$PROMTOOL" ]; then
  if [ -x "$ROOT/.local/bin/promtool" ]; then
    PROMTOOL="$ROOT/.local/bin/promtool"
  else
    PROMTOOL="$(command -v promtool || true)"
  fi
fi
[ -n "$PROMTOOL" ] && "$PROMTOOL" --version >/dev/null 2>&1 \
  || fail "promtool not found (run scripts/install-helper-test-tools.sh, or set PROMTOOL)"
command -v python3 >/dev/null 2>&1 || fail "python3 not found"

# 1. Syntax and semantics of the rules.
if ! out=$("$PROMTOOL" check rules "$RULES" 2>&1); then
  show "$out"
  fail "promtool check rules: ${RULES#"$ROOT"/} is invalid (see above)"
fi
count=$(sed -n 's/.*SUCCESS: \([0-9][0-9]*\) rules found.*/\1/p' <<<"$out")
[ -n "$count" ] || { show "$out"; fail "promtool check rules printed no rule count"; }
echo "$out"

# 2. Unit tests (run from the tests' directory: rule_files are relative to it).
if ! out=$(cd "$(dirname "$TESTS")" && "$PROMTOOL" test rules "$(basename "$TESTS")" 2>&1); then
  show "$out"
  fail "promtool test rules: a unit test of the alert rules failed (see above)"
fi
echo "$out"

# 3. Dashboard, metric and label names, runbook anchors.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 "$ROOT/ops/check_refs.py" "$ROOT" "$tmp/dashboard.rules.json" "$count" || exit 1
echo "dashboard, metric/label names and runbook anchors: ok"

# 4. Every dashboard query parses as PromQL.
if ! out=$("$PROMTOOL" check rules "$tmp/dashboard.rules.json" 2>&1); then
  show "$out"
  fail "a query of ops/grafana/tumbleweed.json is not valid PromQL (see above)"
fi
echo "dashboard queries: $(sed -n 's/.*SUCCESS: \([0-9]*\) rules found.*/\1/p' <<<"$out") parse as PromQL"
echo "ops/check: ok"
