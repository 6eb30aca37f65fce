#!/usr/bin/env bash
# Dagster in containers: `up` starts PostgreSQL, the gRPC code server, the webserver and the
# daemon (deploy/dagster/docker-compose.yml) with the DockerRunLauncher, waits until the
# webserver answers and prints its URL; `down` removes every container it started (the run
# containers too) and the network. The data directory (PostgreSQL's files, the Dagster home,
# the working copy) stays: `up` again finds the same runs.
#
# Settings (environment; defaults in brackets):
#   NEXUS_STACK_PORT [3000]           webserver, on 127.0.0.1
#   NEXUS_STACK_GRPC_PORT [4000]      code server, on 127.0.0.1
#   NEXUS_EVIDENCE_PORT [3001]        evidence file server (reports/, artifacts/, releases/), on 127.0.0.1
#   NEXUS_EVIDENCE_URL [http://127.0.0.1:$NEXUS_EVIDENCE_PORT]  its base URL in the UI's links
#   DAGSTER_PG_PORT [5432]            PostgreSQL, on 127.0.0.1
#   NEXUS_STACK_DATA [/var/lib/nexus-assets/stack]  the shared working volume, mounted at the same path
#   NEXUS_STACK_PROJECT [nexus-stack] compose project name and the run containers' label
#   NEXUS_STACK_IMAGE [nexus-assets:dev]  the code-location image (built by scripts/build_image.sh when missing)
#   NEXUS_STACK_POSTGRES_IMAGE [postgres:15]
#   NEXUS_STACK_TIMEOUT [300]         seconds `up` waits for the webserver
#   NEXUS_REPO, REGISTRY, VERSION, REGISTRY_USERNAME, REGISTRY_PASSWORD: passed to the code server
#   and every run, as for nexus-agent (NEXUS_WORKDIR is $NEXUS_STACK_DATA/work).
#   DAGSTER_PG_PASSWORD: made up once and kept in $NEXUS_STACK_DATA/.pg-password when unset.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
COMPOSE_DIR="$ROOT/deploy/dagster"

export NEXUS_STACK_PORT="${NEXUS_STACK_PORT:-3000}"
export NEXUS_STACK_GRPC_PORT="${NEXUS_STACK_GRPC_PORT:-4000}"
export NEXUS_EVIDENCE_PORT="${NEXUS_EVIDENCE_PORT:-3001}"
export NEXUS_EVIDENCE_URL="${NEXUS_EVIDENCE_URL:-http://127.0.0.1:$NEXUS_EVIDENCE_PORT}"
export DAGSTER_PG_PORT="${DAGSTER_PG_PORT:-5432}"
export NEXUS_STACK_DATA="${NEXUS_STACK_DATA:-/var/lib/nexus-assets/stack}"
export NEXUS_STACK_PROJECT="${NEXUS_STACK_PROJECT:-nexus-stack}"
export NEXUS_STACK_IMAGE="${NEXUS_STACK_IMAGE:-nexus-assets:dev}"
export NEXUS_STACK_POSTGRES_IMAGE="${NEXUS_STACK_POSTGRES_IMAGE:-postgres:15}"
TIMEOUT="${NEXUS_STACK_TIMEOUT:-300}"
ENV_FILE="$NEXUS_STACK_DATA/stack.env"

die() { echo "dagster_stack: $*" >&2; exit 1; }

compose() {
  command -v docker-compose >/dev/null || die "docker-compose not found (Debian's docker-compose package; scripts/bootstrap.sh installs it)"
  docker-compose --project-name "$NEXUS_STACK_PROJECT" --project-directory "$COMPOSE_DIR" \
    --env-file "$ENV_FILE" -f "$COMPOSE_DIR/docker-compose.yml" "$@"
}

port_free() {  # nothing listens on 127.0.0.1:$1
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# The settings file both compose (interpolation) and the containers (env_file) read; it holds the
# registry and database passwords, so only root (the engine's client) reads it.
write_env_file() {
  local pw_file="$NEXUS_STACK_DATA/.pg-password" gid
  gid="$(stat -c %g /var/run/docker.sock 2>/dev/null)" || die "no Docker socket at /var/run/docker.sock"
  if [ -z "${DAGSTER_PG_PASSWORD:-}" ]; then
    [ -s "$pw_file" ] || (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$pw_file")
    DAGSTER_PG_PASSWORD="$(cat "$pw_file")"
  fi
  (umask 077; cat >"$ENV_FILE" <<EOF
NEXUS_STACK_PORT=$NEXUS_STACK_PORT
NEXUS_STACK_GRPC_PORT=$NEXUS_STACK_GRPC_PORT
NEXUS_EVIDENCE_PORT=$NEXUS_EVIDENCE_PORT
NEXUS_EVIDENCE_URL=$NEXUS_EVIDENCE_URL
NEXUS_STACK_DATA=$NEXUS_STACK_DATA
NEXUS_STACK_PROJECT=$NEXUS_STACK_PROJECT
NEXUS_STACK_IMAGE=$NEXUS_STACK_IMAGE
NEXUS_STACK_POSTGRES_IMAGE=$NEXUS_STACK_POSTGRES_IMAGE
NEXUS_STACK_DOCKER_GID=$gid
DAGSTER_HOME=$NEXUS_STACK_DATA/dagster-home
DAGSTER_PG_HOST=127.0.0.1
DAGSTER_PG_PORT=$DAGSTER_PG_PORT
DAGSTER_PG_USER=dagster
DAGSTER_PG_DB=dagster
DAGSTER_PG_PASSWORD=$DAGSTER_PG_PASSWORD
NEXUS_REPO=${NEXUS_REPO:-}
NEXUS_WORKDIR=$NEXUS_STACK_DATA/work
REGISTRY=${REGISTRY:-}
VERSION=${VERSION:-}
REGISTRY_USERNAME=${REGISTRY_USERNAME:-}
REGISTRY_PASSWORD=${REGISTRY_PASSWORD:-}
EOF
  )
  export NEXUS_STACK_DOCKER_GID="$gid"
}

crash_looping() {  # a service restarted three times already: waiting longer will not help
  local ids
  ids="$(docker ps -aq --filter "label=com.docker.compose.project=$NEXUS_STACK_PROJECT")"
  [ -n "$ids" ] && docker inspect -f '{{.RestartCount}}' $ids | awk '$1 >= 3 {found=1} END {exit !found}'
}

up() {
  local name port url deadline
  for name in NEXUS_STACK_PORT NEXUS_STACK_GRPC_PORT NEXUS_EVIDENCE_PORT DAGSTER_PG_PORT; do
    port="${!name}"
    [[ "$port" =~ ^[0-9]+$ ]] || die "$name=$port is not a port number"
    port_free "$port" || die "$name: 127.0.0.1:$port is in use (set $name to a free port, or run: $0 down)"
  done
  if ! docker image inspect "$NEXUS_STACK_IMAGE" >/dev/null 2>&1; then
    echo "dagster_stack: building $NEXUS_STACK_IMAGE (scripts/build_image.sh)"
    bash "$ROOT/scripts/build_image.sh" "$NEXUS_STACK_IMAGE" >/dev/null
  fi
  docker image inspect "$NEXUS_STACK_POSTGRES_IMAGE" >/dev/null 2>&1 \
    || die "$NEXUS_STACK_POSTGRES_IMAGE is not in the engine (scripts/bootstrap.sh provides postgres:15)"
  mkdir -p "$NEXUS_STACK_DATA/dagster-home" "$NEXUS_STACK_DATA/work" "$NEXUS_STACK_DATA/postgres"
  write_env_file
  # The containers run as 10001 (the image's user): the Dagster home and the working copy are theirs.
  if [ "$(id -u)" = 0 ]; then chown 10001 "$NEXUS_STACK_DATA" "$NEXUS_STACK_DATA/dagster-home" "$NEXUS_STACK_DATA/work"
  else chmod 0777 "$NEXUS_STACK_DATA" "$NEXUS_STACK_DATA/dagster-home" "$NEXUS_STACK_DATA/work"; fi
  envsubst '${NEXUS_STACK_DATA} ${NEXUS_STACK_DOCKER_GID} ${NEXUS_STACK_PROJECT}' \
    <"$COMPOSE_DIR/dagster.yaml" >"$NEXUS_STACK_DATA/dagster-home/dagster.yaml"
  compose up -d --remove-orphans >/dev/null 2>"$NEXUS_STACK_DATA/compose-up.log" \
    || { cat "$NEXUS_STACK_DATA/compose-up.log" >&2; die "docker-compose up failed"; }
  url="http://127.0.0.1:$NEXUS_STACK_PORT"
  deadline=$((SECONDS + TIMEOUT))
  until curl -fsS -o /dev/null --max-time 5 "$url/server_info" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ] || crash_looping; then
      compose ps >&2 || true
      compose logs --tail 30 >&2 || true
      die "the webserver did not answer at $url (waited up to ${TIMEOUT}s; logs above; $0 down removes the stack)"
    fi
    sleep 2
  done
  echo "Dagster webserver: $url"
  echo "Evidence server: $NEXUS_EVIDENCE_URL (WORKDIR $NEXUS_STACK_DATA/work: reports/, artifacts/, releases/)"
}

down() {
  local ids
  [ -f "$ENV_FILE" ] || { mkdir -p "$NEXUS_STACK_DATA"; write_env_file; }
  # The run containers the launcher started for this stack (compose does not know them).
  ids="$(docker ps -aq --filter "label=io.nexus-assets.stack=$NEXUS_STACK_PROJECT")"
  [ -z "$ids" ] || docker rm -f $ids >/dev/null
  compose down --remove-orphans --timeout 20 2>&1 | grep -v '^Network .* not found' >&2 || true
  if [ -n "$(docker ps -aq --filter "label=com.docker.compose.project=$NEXUS_STACK_PROJECT")" ]; then
    die "containers of $NEXUS_STACK_PROJECT are still there"
  fi
  echo "dagster_stack: $NEXUS_STACK_PROJECT removed (data kept in $NEXUS_STACK_DATA)"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
