#!/usr/bin/env bash
# Offline checks of the Terraform in infra/ and modules/ (no provider download needed):
#   1. syntax + format: every .tf/.tfvars file through HashiCorp's HCL parser and
#      formatter (npm @cdktf/hcl2json, @cdktf/hcl-tools; pinned in package-lock.json);
#   2. README Inputs/Outputs tables up to date (node tests/terraform/docs.mjs rewrites them);
#   2b. every aws_* resource and data source against the AWS provider's schema (npm
#      @cdktf/provider-aws, pinned: generated from hashicorp/aws 5.99.1): unknown
#      arguments, missing required ones, blocks written as attributes and the reverse
#      (tests/terraform/schema-check.mjs, with its own mutation self-test);
#   3. checkov (pinned, PyPI) over infra/ with infra/terraform.tfvars.example: zero
#      failed checks, skips only inline with a written reason.
# The reference checks (undeclared variables, module inputs/outputs) are the Rust
# crate tests/terraform-check, run by `cargo test --workspace`.
#
# Idempotent: installs into tests/terraform/node_modules and .local/venv-checkov only
# when they are missing or out of date. Exit status is non-zero if anything fails.
set -euo pipefail

CHECKOV_VERSION="3.3.30"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "${here}/../.." && pwd)"
venv="${root}/.local/venv-checkov"
logdir="${root}/.local/terraform-check"
mkdir -p "${logdir}"

die() {
  echo "terraform-check: $*" >&2
  exit 2
}

need() {
  command -v "$1" > /dev/null 2>&1 || die "install problem: '$1' not found on PATH ($2)"
}

# --- install -----------------------------------------------------------------

need node "Node.js 20+ runs the HCL parser and formatter"
need npm "npm installs the pinned HCL tools"
need python3 "Python 3.9+ runs checkov"

# node_modules is current when the stamp left by the last install matches the
# committed lock file.
stamp="${here}/node_modules/.tumbleweed-installed-lock.json"
if ! cmp -s "${here}/package-lock.json" "${stamp}" 2> /dev/null \
  || [ ! -d "${here}/node_modules/@cdktf/hcl2json" ] || [ ! -d "${here}/node_modules/@cdktf/hcl-tools" ] \
  || [ ! -d "${here}/node_modules/@cdktf/provider-aws" ]; then
  echo "terraform-check: installing the HCL tools (npm ci) ..."
  if ! (cd "${here}" && npm ci --no-audit --no-fund --loglevel=error > "${logdir}/npm-ci.log" 2>&1); then
    die "install problem: 'npm ci' in tests/terraform failed; see .local/terraform-check/npm-ci.log"
  fi
  cp "${here}/package-lock.json" "${stamp}"
fi

if [ ! -x "${venv}/bin/checkov" ] \
  || [ "$("${venv}/bin/checkov" --version 2> /dev/null || true)" != "${CHECKOV_VERSION}" ]; then
  echo "terraform-check: installing checkov ${CHECKOV_VERSION} into .local/venv-checkov ..."
  if [ ! -x "${venv}/bin/python" ]; then
    python3 -m venv "${venv}" > "${logdir}/venv.log" 2>&1 \
      || die "install problem: 'python3 -m venv' failed (is python3-venv installed?); see .local/terraform-check/venv.log"
  fi
  if ! "${venv}/bin/python" -m pip install --quiet --disable-pip-version-check "checkov==${CHECKOV_VERSION}" \
    > "${logdir}/pip.log" 2>&1; then
    die "install problem: 'pip install checkov==${CHECKOV_VERSION}' failed; see .local/terraform-check/pip.log"
  fi
fi

# --- checks ------------------------------------------------------------------

status=0
hcl_result="passed"
docs_result="passed"
checkov_result="passed"
schema_result="passed"

echo "== HCL syntax and format (HashiCorp parser and formatter)"
if ! node "${here}/hcl-check.mjs" "${root}"; then
  hcl_result="FAILED"
  status=1
fi

echo "== README inputs/outputs tables match variables.tf / outputs.tf"
if ! node "${here}/docs.mjs" --check; then
  docs_result="FAILED"
  status=1
fi

echo "== AWS provider schema (unknown/missing arguments, block vs attribute)"
if ! node "${here}/schema-check.mjs" --self-test > "${logdir}/schema-self-test.log" 2>&1; then
  cat "${logdir}/schema-self-test.log"
  schema_result="FAILED (self-test)"
  status=1
elif ! node "${here}/schema-check.mjs" "${root}"; then
  schema_result="FAILED"
  status=1
fi

echo "== checkov ${CHECKOV_VERSION} over infra/ (var file infra/terraform.tfvars.example)"
checkov_json="${logdir}/checkov.json"
set +e
(cd "${root}" && "${venv}/bin/checkov" \
  --directory infra \
  --var-file infra/terraform.tfvars.example \
  --framework terraform \
  --skip-download \
  --download-external-modules false \
  --quiet --compact \
  --output cli --output json --output-file-path "console,${checkov_json}")
checkov_rc=$?
set -e
summary="$(python3 - "${checkov_json}" << 'PY'
import json, sys
try:
    data = json.load(open(sys.argv[1]))
except Exception as e:  # noqa: BLE001
    print(f"unreadable ({e})")
    sys.exit(0)
reports = data if isinstance(data, list) else [data]
p = f = s = 0
for r in reports:
    sm = r.get("summary", {})
    p += sm.get("passed", 0); f += sm.get("failed", 0); s += sm.get("skipped", 0)
print(f"{p} passed, {f} failed, {s} skipped")
PY
)"
echo "checkov: ${summary}"
if [ "${checkov_rc}" -ne 0 ]; then
  checkov_result="FAILED"
  status=1
fi

echo
echo "== summary"
echo "  hcl syntax/format: ${hcl_result}"
echo "  README tables:     ${docs_result}"
echo "  provider schema:   ${schema_result}"
echo "  checkov:           ${checkov_result} (${summary})"
if [ "${status}" -eq 0 ]; then
  echo "terraform-check: all passed"
else
  echo "terraform-check: FAILED"
fi
exit "${status}"
