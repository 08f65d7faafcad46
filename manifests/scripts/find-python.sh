#!/usr/bin/env bash
# Print the path of a CPython X.Y interpreter (pyenv's newest X.Y.*, else pythonX.Y on PATH):
# the device tests and benchmarks run the base install on every Python it supports.
# Usage: find-python.sh 3.10
set -euo pipefail
version="${1:?usage: find-python.sh X.Y}"
root="$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-${HOME}/.pyenv}")"
newest=""
for candidate in "${root}/versions/${version}".*/bin/"python${version}"; do
  [[ -x "${candidate}" ]] || continue
  if [[ -z "${newest}" ]] || [[ "$(printf '%s\n%s\n' "${newest}" "${candidate}" | sort -V | tail -n 1)" == "${candidate}" ]]; then
    newest="${candidate}"
  fi
done
if [[ -n "${newest}" ]]; then
  echo "${newest}"
elif command -v "python${version}" >/dev/null 2>&1; then
  command -v "python${version}"
else
  echo "find-python.sh: no Python ${version} (install it with pyenv, or put python${version} on PATH)" >&2
  exit 1
fi
