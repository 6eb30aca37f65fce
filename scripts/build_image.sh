#!/usr/bin/env bash
# Builds the code location image (Dockerfile, FROM python:3.11-slim) with its Python packages
# offline: wheels for the project and its pinned dependencies are made on the host first, then
# the image installs them with --no-index. The one networked step is Debian's git (apt-get).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TAG="${1:-nexus-assets:dev}"
cd "$ROOT"
rm -rf build/wheelhouse
"$ROOT/.venv/bin/pip" wheel -q -w build/wheelhouse . >/dev/null 2>&1 || "$ROOT/.venv/bin/pip" wheel -w build/wheelhouse .
DOCKER_BUILDKIT=0 /usr/bin/docker build -q -t "$TAG" . >/dev/null
echo "$TAG"
