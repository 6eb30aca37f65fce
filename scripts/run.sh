#!/usr/bin/env bash
# Installs what is missing (scripts/bootstrap.sh), then runs the pipeline: by default on the
# bundled sample monorepo. Extra arguments go to `nexus-agent run` (e.g. --repo PATH).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/bootstrap.sh"
exec "$ROOT/.venv/bin/nexus-agent" run "$@"
