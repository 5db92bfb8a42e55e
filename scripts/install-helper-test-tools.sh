#!/usr/bin/env bash
# Installs what the helper CLI's tests (helper/tests) need, idempotently:
#   - moto server (AWS API emulator) in .local/venv-moto
#   - docker-registry (local OCI registry), skopeo and umoci (daemonless image tools)
#   - PostgreSQL 15 binaries (normally already on the image)
#   - promtool (for ops/check.sh) in .local/bin, taken from Debian's `prometheus` package
#     without installing it, so no Prometheus service is set up or started
#   - schemathesis (the sink's OpenAPI contract test, sink/tests/openapi_contract.rs) in
#     .local/venv-schemathesis
# Every failure prints one line naming the problem and exits non-zero.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.local/venv-moto"
MOTO_SPEC='moto[server]==5.2.5'
ST_VENV="$ROOT/.local/venv-schemathesis"
ST_VERSION='4.32.5'

fail() { echo "install-helper-test-tools: $*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || fail "not root and no sudo: cannot apt-get install"
  SUDO="sudo"
fi

APT_UPDATED=0
apt_install() {
  # apt_install PKG...: install the packages that are not installed yet.
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  for p in "${missing[@]}"; do
    if [ "$APT_UPDATED" -eq 0 ] && ! apt-cache show "$p" >/dev/null 2>&1; then
      $SUDO apt-get update -qq >/dev/null || fail "apt-get update failed"
      APT_UPDATED=1
    fi
  done
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null \
    || fail "apt-get install ${missing[*]} failed"
}

# 1. Debian packages: local registry, skopeo, umoci, python venv support.
command -v python3 >/dev/null 2>&1 || apt_install python3
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || apt_install python3-venv
need=()
command -v docker-registry >/dev/null 2>&1 || need+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || need+=(skopeo)
command -v umoci >/dev/null 2>&1 || need+=(umoci)
[ "${#need[@]}" -eq 0 ] || apt_install "${need[@]}"
for b in docker-registry skopeo umoci; do
  command -v "$b" >/dev/null 2>&1 || fail "$b is still missing after apt-get install"
done

# 2. PostgreSQL 15 (initdb/pg_ctl for the check-source tests).
if [ ! -x /usr/lib/postgresql/15/bin/initdb ]; then
  apt_install postgresql-15
fi
[ -x /usr/lib/postgresql/15/bin/initdb ] || fail "/usr/lib/postgresql/15/bin/initdb missing (install postgresql-15)"
id postgres >/dev/null 2>&1 || fail "no 'postgres' system user (install postgresql-15)"

# 3. moto server in a venv.
if [ ! -x "$VENV/bin/moto_server" ] || ! "$VENV/bin/python" -c 'import moto, sys; sys.exit(0 if moto.__version__ == "5.2.5" else 1)' >/dev/null 2>&1; then
  mkdir -p "$ROOT/.local"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV" || fail "python3 -m venv $VENV failed"
  "$VENV/bin/pip" install -q --disable-pip-version-check "$MOTO_SPEC" >/dev/null \
    || fail "pip install $MOTO_SPEC into $VENV failed"
fi
[ -x "$VENV/bin/moto_server" ] || fail "$VENV/bin/moto_server missing after install"

# 4. promtool: `apt-get download` the package and unpack only the binary (`dpkg-deb -x`);
#    installing the package would add a prometheus service that the tests do not want.
PROMTOOL="$ROOT/.local/bin/promtool"
if ! "$PROMTOOL" --version >/dev/null 2>&1; then
  command -v dpkg-deb >/dev/null 2>&1 || fail "dpkg-deb not found: cannot unpack the prometheus package"
  if [ "$APT_UPDATED" -eq 0 ] && ! apt-cache show prometheus >/dev/null 2>&1; then
    $SUDO apt-get update -qq >/dev/null || fail "apt-get update failed"
    APT_UPDATED=1
  fi
  PROM_TMP=$(mktemp -d)
  trap 'rm -rf "$PROM_TMP"' EXIT
  (cd "$PROM_TMP" && apt-get download -qq prometheus) >/dev/null 2>&1 \
    || fail "apt-get download prometheus failed (is Debian's main archive in the apt sources?)"
  dpkg-deb -x "$PROM_TMP"/prometheus_*.deb "$PROM_TMP/pkg" || fail "dpkg-deb -x of the prometheus package failed"
  [ -f "$PROM_TMP/pkg/usr/bin/promtool" ] || fail "the prometheus package has no usr/bin/promtool"
  mkdir -p "$ROOT/.local/bin"
  install -m 0755 "$PROM_TMP/pkg/usr/bin/promtool" "$PROMTOOL" || fail "cannot install $PROMTOOL"
fi
"$PROMTOOL" --version >/dev/null 2>&1 || fail "$PROMTOOL does not run"

# 5. schemathesis in its own venv (its dependencies are not moto's).
if ! "$ST_VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(0 if m.version('schemathesis') == '$ST_VERSION' else 1)" >/dev/null 2>&1; then
  mkdir -p "$ROOT/.local"
  [ -x "$ST_VENV/bin/python" ] || python3 -m venv "$ST_VENV" || fail "python3 -m venv $ST_VENV failed"
  "$ST_VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$ST_VERSION" >/dev/null \
    || fail "pip install schemathesis==$ST_VERSION into $ST_VENV failed"
fi
[ -x "$ST_VENV/bin/st" ] || fail "$ST_VENV/bin/st missing after install"

echo "install-helper-test-tools: ok (moto, docker-registry, skopeo, umoci, postgresql-15, promtool, schemathesis)"
