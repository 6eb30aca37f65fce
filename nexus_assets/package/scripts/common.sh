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

PROBE_FILE_NAME="probe-interval.yml"

# compose for one deployed release: compose_release DIR ARGS... (with the host's probe
# interval for that release, when the runner was given one: see write_probe_interval)
compose_release() {
  local dir="$1"
  shift
  if [ -f "$dir/$PROBE_FILE_NAME" ]; then
    compose -p "$PROJECT" -f "$dir/$COMPOSE_FILE_NAME" -f "$dir/$PROBE_FILE_NAME" --env-file "$HOST_DIR/.env" "$@"
  else
    compose -p "$PROJECT" -f "$dir/$COMPOSE_FILE_NAME" --env-file "$HOST_DIR/.env" "$@"
  fi
}

# How often Docker runs each container's own health check on this host: SECONDS (0: as the
# images and the compose file say). Docker runs the check command inside the container every
# interval; 47 services checked every 2 s are 23 command starts a second, more than a 2-core
# host can run beside them. Written next to the release's compose file as a compose override
# that sets only healthcheck.interval (the engine keeps the image's test, timeout and retries).
write_probe_interval() {
  local dir="$1" seconds="$2" service
  rm -f "$dir/$PROBE_FILE_NAME"
  [ "$seconds" -gt 0 ] || return 0
  {
    printf '# written by remote_deploy_runner.sh --probe-interval %s: health checks every %ss on this host\n' "$seconds" "$seconds"
    printf 'services:\n'
    compose -p "$PROJECT" -f "$dir/$COMPOSE_FILE_NAME" --env-file "$HOST_DIR/.env" config --services \
      | while IFS= read -r service; do printf '  %s:\n    healthcheck:\n      interval: %ss\n' "$service" "$seconds"; done
  } >"$dir/$PROBE_FILE_NAME.tmp"
  mv "$dir/$PROBE_FILE_NAME.tmp" "$dir/$PROBE_FILE_NAME"
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

# Containers labelled as this project's that compose did not make (no config-hash label): one
# replaced by hand keeps the name compose wants, and `up` would stop on the name conflict. Removed
# before `up`, saying which.
remove_strays() {
  local ids id name made
  ids="$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT")"
  [ -n "$ids" ] || return 0
  # shellcheck disable=SC2086 # one id per word
  docker inspect -f '{{.Id}} {{.Name}} {{if index .Config.Labels "com.docker.compose.config-hash"}}compose{{else}}stray{{end}}' $ids \
    | while read -r id name made; do
        [ "$made" = compose ] && continue
        say "removing ${name#/}: not started by compose (replaced by hand?)"
        docker rm -f "$id" >/dev/null
      done
}

# Wait until every service of a release has a running container that, where it has a health
# check, is healthy; polled every second for at most TIMEOUT seconds counted from the call (made
# once compose has started the last container). One `docker ps` and one `docker inspect` a poll
# (not one docker-compose start and one inspect per container: 47 services made a poll take
# longer than the second it waits). A service with no container is waited for, not passed.
wait_healthy() {
  local dir="$1" timeout="$2" deadline services service name state health ids
  local -a waiting
  local -A seen
  services=" $(compose_release "$dir" config --services | tr '\n' ' ')"
  deadline=$((SECONDS + timeout))
  while :; do
    waiting=()
    seen=()
    ids="$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT")"
    if [ -n "$ids" ]; then
      # shellcheck disable=SC2086 # one id per word
      while read -r service name state health; do
        case "$services " in *" $service "*) ;; *) continue ;; esac
        seen[$service]=1
        case "$state $health" in
          "running healthy"|"running none") ;;
          *) waiting+=("${name#/} $state $health") ;;
        esac
      done < <(docker inspect -f '{{index .Config.Labels "com.docker.compose.service"}} {{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' $ids 2>/dev/null)
    fi
    for service in $services; do
      [ -n "${seen[$service]:-}" ] || waiting+=("$service: no container")
    done
    [ "${#waiting[@]}" -eq 0 ] && return 0
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "not healthy after ${timeout}s (${#waiting[@]}): ${waiting[*]}"
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
