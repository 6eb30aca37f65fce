#!/usr/bin/env bash
# shellcheck shell=bash
# Shared by the deployment scripts of a Nexus COS deployment package (sourced, not run).
# The host directory holds one folder per deployed release (releases/<tag>/), a `current`
# link to the release that runs, the host's .env (mode 600) and deployments.log.

PROJECT="${NEXUS_COMPOSE_PROJECT:-nexus-cos}"
HOST_DIR="${NEXUS_HOST_DIR:-/opt/nexus-cos}"
COMPOSE_FILE_NAME="docker-compose.full.yml"

say() { printf '[%s] %s\n' "$(basename "$0" .sh)" "$*"; }
die() { printf '[%s] error: %s\n' "$(basename "$0" .sh)" "$*" >&2; exit "${2:-1}"; }

# docker-compose (v1) or the docker CLI's compose plugin, whichever the host has.
compose() {
  if command -v docker-compose >/dev/null 2>&1; then
    docker-compose "$@"
  elif docker compose version >/dev/null 2>&1; then
    docker compose "$@"
  else
    die "neither docker-compose nor 'docker compose' is installed on this host"
  fi
}

# compose for one deployed release: compose_release DIR ARGS...
compose_release() {
  local dir="$1"
  shift
  compose -p "$PROJECT" -f "$dir/$COMPOSE_FILE_NAME" --env-file "$HOST_DIR/.env" "$@"
}

# The release tag a package or release folder names in its RELEASE file.
release_tag() {
  local tag
  tag="$(sed -n 's/^RELEASE_TAG=//p' "$1/RELEASE" 2>/dev/null | head -n 1)"
  [[ "$tag" =~ ^[A-Za-z0-9._-]+$ ]] || die "$1/RELEASE names no valid RELEASE_TAG"
  printf '%s\n' "$tag"
}

# Every file of a package or release folder matches its SHA256SUMS.
verify_checksums() {
  local dir="$1"
  [ -f "$dir/SHA256SUMS" ] || die "$dir/SHA256SUMS is missing: not a deployment package"
  (cd "$dir" && sha256sum --check --quiet --strict SHA256SUMS) \
    || die "$dir: a file does not match SHA256SUMS; the package is damaged or was changed"
}

# Install a verified package folder as releases/<tag>/ under the host directory.
install_release() {
  local package="$1" tag="$2" dest
  dest="$HOST_DIR/releases/$tag"
  mkdir -p "$dest"
  cp "$package/$COMPOSE_FILE_NAME" "$package/RELEASE" "$package/SHA256SUMS" "$dest/"
  mkdir -p "$dest/deployment"
  cp "$package/deployment/images.txt" "$package/deployment/.env.template" "$dest/deployment/"
  if [ -f "$package/artifacts/artifacts_manifest.json" ]; then
    mkdir -p "$dest/artifacts"
    cp "$package/artifacts/artifacts_manifest.json" "$dest/artifacts/"
  fi
  printf '%s\n' "$dest"
}

# Point `current` at a release and log the switch.
switch_to() {
  local tag="$1" action="$2" previous=""
  if [ -L "$HOST_DIR/current" ]; then
    previous="$(basename "$(readlink "$HOST_DIR/current")")"
  fi
  ln -sfn "releases/$tag" "$HOST_DIR/current"
  printf '%s %s %s (previous: %s)\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$action" "$tag" "${previous:-none}" \
    >>"$HOST_DIR/deployments.log"
}
