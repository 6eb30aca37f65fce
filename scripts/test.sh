#!/usr/bin/env bash
# Installs what is missing (scripts/bootstrap.sh), then runs the test suite against the real
# Docker engine, registry and git. Extra arguments go to pytest (e.g. -m "not docker").
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
"$ROOT/.venv/bin/ruff" check --quiet "$ROOT"
exec "$ROOT/.venv/bin/python" -m pytest "$@"
