#!/usr/bin/env bash
# The workflow's set-up step (also runs by hand on a Debian 12 or Ubuntu machine): installs what
# is missing with scripts/bootstrap.sh, as root (a GitHub runner's user has passwordless sudo).
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then exec sudo --preserve-env env "PATH=$PATH" bash "$0" "$@"; fi
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
started=$SECONDS
bash "$ROOT/scripts/bootstrap.sh"
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  # shellcheck source=/dev/null
  os="$(. /etc/os-release && echo "${PRETTY_NAME:-$ID}")"
  printf '### Set-up\n\n%s, engine %s, Python %s: ready in %s s.\n\n' "$os" \
    "$(docker version -f '{{.Server.Version}}')" "$("$ROOT/.venv/bin/python" -c 'import platform; print(platform.python_version())')" \
    "$((SECONDS - started))" >>"$GITHUB_STEP_SUMMARY"
fi
