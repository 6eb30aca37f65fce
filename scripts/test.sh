#!/usr/bin/env bash
# Installs what is missing (scripts/bootstrap.sh), lints (ruff), type-checks (mypy), then runs the
# test suite against the real Docker engine, registry and git. Extra arguments go to pytest
# (e.g. -m "not docker").
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/bootstrap.sh"
# The registry's credentials, from the environment only; bootstrap.sh writes those of the local
# registry to a root-only file, exported here unless the caller set their own.
CREDENTIALS="${NEXUS_STATE_DIR:-/var/lib/nexus-assets}/registry/credentials.env"
if [ -z "${REGISTRY_USERNAME:-}${DOCKER_REGISTRY_TOKEN:-}" ] && [ -r "$CREDENTIALS" ]; then
  set -a; . "$CREDENTIALS"; set +a
fi
cd "$ROOT"
"$ROOT/.venv/bin/ruff" check --quiet "$ROOT"
"$ROOT/.venv/bin/mypy" --config-file "$ROOT/pyproject.toml"   # files and strictness: [tool.mypy]
exec "$ROOT/.venv/bin/python" -m pytest "$@"
