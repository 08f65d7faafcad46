#!/usr/bin/env bash
# Create .venv-tools/ with the pinned offline checkers (hadolint, shellcheck,
# kubernetes-validate, checkov) from manifests/tools/requirements.txt, every dependency pinned by
# manifests/tools/requirements.lock (regenerate with: .venv/bin/uv pip compile --python
# .venv-tools/bin/python manifests/tools/requirements.txt -o manifests/tools/requirements.lock).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TOOLS="${ROOT}/.venv-tools"
REQS="${ROOT}/manifests/tools/requirements.txt"
LOCK="${ROOT}/manifests/tools/requirements.lock"
PYTHON="${PYTHON:-python3}"
STAMP="${TOOLS}/.installed-$(cat "${REQS}" "${LOCK}" | sha256sum | cut -c1-16)"

if [[ -e "${STAMP}" ]]; then
  exit 0
fi
UV="${ROOT}/.venv/bin/uv"   # installed by `make install`; plain pip works too, only slower
if [[ -x "${UV}" ]]; then
  [[ -x "${TOOLS}/bin/python" ]] || "${UV}" venv --quiet --python "${PYTHON}" "${TOOLS}"
  "${UV}" pip install --quiet --python "${TOOLS}/bin/python" -c "${LOCK}" -r "${REQS}"
else
  [[ -x "${TOOLS}/bin/python" ]] || "${PYTHON}" -m venv "${TOOLS}"
  "${TOOLS}/bin/python" -m pip install --quiet --disable-pip-version-check -c "${LOCK}" \
    -r "${REQS}"
fi
rm -f "${TOOLS}"/.installed-*
touch "${STAMP}"
echo "tools installed in ${TOOLS}"
