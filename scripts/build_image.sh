#!/usr/bin/env bash
# Builds the code location image (Dockerfile) offline: wheels for the project and its pinned
# dependencies are made on the host first, then the image installs them with --no-index.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TAG="${1:-nexus-assets:dev}"
cd "$ROOT"
rm -rf build/wheelhouse
"$ROOT/.venv/bin/pip" wheel -q -w build/wheelhouse . >/dev/null 2>&1 || "$ROOT/.venv/bin/pip" wheel -w build/wheelhouse .
BASE="$("$ROOT/.venv/bin/python" -c 'from nexus_assets.core.baseimages import load_base_image_map; print(load_base_image_map().base)')"
DOCKER_BUILDKIT=0 /usr/bin/docker build -q --build-arg "BASE=$BASE" -t "$TAG" . >/dev/null
echo "$TAG"
