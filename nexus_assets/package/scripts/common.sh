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
  # the manifest, provenance, SBOMs and public key, and the scripts: a release kept here can
  # be audited, verified and rolled back to without its package
  if [ -d "$package/artifacts" ]; then
    rm -rf "$dest/artifacts"
    cp -r "$package/artifacts" "$dest/artifacts"
  fi
  rm -rf "$dest/scripts"
  cp -r "$package/scripts" "$dest/scripts"
  touch "$dest"
  printf '%s\n' "$dest"
}

# Every image's signed provenance: the signature (ed25519 over DSSE), the subject digest against
# the manifest, the SBOM and provenance checksums; KEYID (optional) pins the signing key.
verify_provenance() {
  local dir="$1" keyid="${2:-}"
  [ -f "$dir/artifacts/artifacts_manifest.json" ] || die "$dir has no artifacts/artifacts_manifest.json: no provenance to verify"
  [ -f "$dir/scripts/verify_provenance.py" ] || die "$dir/scripts/verify_provenance.py is missing"
  python3 -c 'import cryptography' 2>/dev/null \
    || die "python3 with cryptography is needed to verify provenance (Debian: apt-get install python3-cryptography)"
  python3 "$dir/scripts/verify_provenance.py" "$dir/artifacts" ${keyid:+--expect-keyid "$keyid"} \
    || die "$dir: the signed provenance does not verify; nothing was started"
}

# Wait until every container of a release runs and, where it has a health check, is healthy;
# polled every second for at most TIMEOUT seconds.
wait_healthy() {
  local dir="$1" timeout="$2" deadline id line waiting
  deadline=$((SECONDS + timeout))
  while :; do
    waiting=()
    for id in $(compose_release "$dir" ps -q); do
      line="$(docker inspect -f '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$id")"
      case "$line" in
        *" running healthy"|*" running none") ;;
        *) waiting+=("${line#/}") ;;
      esac
    done
    [ "${#waiting[@]}" -eq 0 ] && return 0
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "not healthy after ${timeout}s: ${waiting[*]}"
      return 1
    fi
    sleep 1
  done
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
