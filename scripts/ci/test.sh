#!/usr/bin/env bash
# The workflow's test step: the README's `bash scripts/test.sh` (ruff, mypy, pytest), as root.
# NEXUS_CI_PYTEST_ARGS chooses the tests (default: the fast ones, -m "not docker"; the engine
# tests need the runner's whole engine for a long time: give "tests" to run them all).
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then exec sudo --preserve-env env "PATH=$PATH" bash "$0" "$@"; fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
read -r -a args <<<"${NEXUS_CI_PYTEST_ARGS:-}"
[ "${#args[@]}" -gt 0 ] || args=(-m "not docker")
status=0
bash "$ROOT/scripts/test.sh" -q "${args[@]}" || status=$?
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  printf '### Tests\n\n%s: %s\n\n' "\`scripts/test.sh ${args[*]}\`" \
    "$([ "$status" -eq 0 ] && echo passed || echo "FAILED (exit $status)")" >>"$GITHUB_STEP_SUMMARY"
fi
exit "$status"
