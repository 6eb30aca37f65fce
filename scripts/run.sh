#!/usr/bin/env bash
# Installs what is missing (scripts/bootstrap.sh), then runs the pipeline: by default on the
# bundled sample monorepo. Extra arguments go to `nexus-agent run` (e.g. --repo PATH).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/bootstrap.sh"
# The registry's credentials, from the environment only; bootstrap.sh writes those of the local
# registry to a root-only file, exported here unless the caller set their own.
CREDENTIALS="${NEXUS_STATE_DIR:-/var/lib/nexus-assets}/registry/credentials.env"
if [ -z "${REGISTRY_USERNAME:-}${DOCKER_REGISTRY_TOKEN:-}" ] && [ -r "$CREDENTIALS" ]; then
  set -a; . "$CREDENTIALS"; set +a
fi
exec "$ROOT/.venv/bin/nexus-agent" run "$@"
