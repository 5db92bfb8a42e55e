#!/usr/bin/env bash
# Kafka cluster ids of the local stack (scripts/stack).
#
# A cluster id is 16 random bytes in base64url, so one id in 64 starts with "-". Kafka's
# StorageTool parses its arguments with argparse4j, which reads "--cluster-id -xyz..." as an
# option without a value: `scripts/stack up` failed that way on a fresh machine (CI,
# 2026-12-06). Kafka's own generator (`kafka-storage random-uuid`) never hands out such an id.
# This checks both halves with the real parts:
#   1. every id the stack generates is 22 base64url characters and never starts with "-";
#   2. an id that does start with "-" (one an earlier version may have stored) still formats a
#      log dir with Kafka's real StorageTool, and the log dir records exactly that id.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# The real Kafka jars, installed by the stack's own installer (a no-op when present).
"$ROOT/scripts/stack" install >/dev/null
REAL_LIB="${TW_HOME:-$ROOT/.local}/kafka/lib"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export TW_HOME="$scratch/home"
# Sourcing defines the stack's functions without running a command.
# shellcheck source=../../scripts/stack
source "$ROOT/scripts/stack"
KAFKA_LIB=$REAL_LIB
mkdir -p "$TW_HOME" "$LOGS" "$RUN" "$KAFKA_HOME"

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# 1. Generated ids: 1,000 draws; before the fix about 16 of them started with "-".
n=1000
for ((i = 0; i < n; i++)); do
  rm -f "$KAFKA_HOME/single/cluster.id"
  id=$(cluster_id single)
  [[ $id =~ ^[A-Za-z0-9_-]{22}$ ]] || fail "generated cluster id '$id' is not 22 base64url characters"
  [[ $id != -* ]] || fail "generated cluster id '$id' starts with '-' (draw $i of $n); kafka-storage cannot take it"
done
echo "ok: $n generated cluster ids, none starts with '-'"

# 2. A stored id that starts with "-" formats the log dir (the id from the failed CI run).
stored="-yrMZ2-T8YpnNJEh658xAA"
mkdir -p "$KAFKA_HOME/single"
printf '%s' "$stored" >"$KAFKA_HOME/single/cluster.id"
(format_nodes single) || fail "formatting a log dir with cluster id '$stored' failed: $(tail -5 "$LOGS/format-kafka-1.log")"
meta="$KAFKA_HOME/single/kafka-1/data/meta.properties"
[ -f "$meta" ] || fail "no $meta after formatting"
got=$(sed -n 's/^cluster.id=//p' "$meta")
[ "$got" = "$stored" ] || fail "the log dir records cluster id '$got', not '$stored'"
echo "ok: a stored cluster id starting with '-' formats the log dir ($meta records $got)"
