#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Deploys the release in this package on this host with docker-compose.
#
#   cp deployment/.env.template .env && edit .env      # once, in the unpacked package
#   bash scripts/remote_deploy_runner.sh [--host-dir DIR] [--env-file FILE] [--no-pull]
#        [--health-timeout SECONDS] [--probe-interval SECONDS] [--expect-keyid HEX]
#
# Verifies every file against SHA256SUMS and every image's signed provenance (python3 with
# cryptography; --expect-keyid pins the signing key), checks that .env sets every key of the
# template (names only are printed, never values), installs the release under
# DIR/releases/<tag>/ (default /opt/nexus-cos, or NEXUS_HOST_DIR), pulls the images pinned by
# digest, starts the stack, points DIR/current at it and waits until every container is
# healthy (NEXUS_HEALTH_TIMEOUT, default 30 s, polled every second; exit 1 naming the ones
# that are not). --probe-interval (NEXUS_PROBE_INTERVAL) sets how often Docker runs each
# container's own health check on this host (default 0: as the images say); it is kept with the
# release, so a rollback to it runs it the same way. Run scripts/post_deploy_audit.sh afterwards.
set -euo pipefail

PACKAGE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=common.sh
. "$PACKAGE_DIR/scripts/common.sh"

ENV_FILE="$PACKAGE_DIR/.env"
PULL=1
HEALTH_TIMEOUT="${NEXUS_HEALTH_TIMEOUT:-30}"
PROBE_INTERVAL="${NEXUS_PROBE_INTERVAL:-0}"
KEYID=""
while [ "$#" -gt 0 ]; do
  case "$1" in
    --host-dir) HOST_DIR="${2:?--host-dir needs a directory}"; shift 2 ;;
    --env-file) ENV_FILE="${2:?--env-file needs a file}"; shift 2 ;;
    --no-pull) PULL=0; shift ;;
    --health-timeout) HEALTH_TIMEOUT="${2:?--health-timeout needs seconds}"; shift 2 ;;
    --probe-interval) PROBE_INTERVAL="${2:?--probe-interval needs seconds}"; shift 2 ;;
    --expect-keyid) KEYID="${2:?--expect-keyid needs a hex key id}"; shift 2 ;;
    -h|--help) sed -n '3,18p' "$0"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" 2 ;;
  esac
done

[[ "$HEALTH_TIMEOUT" =~ ^[0-9]+$ ]] || die "--health-timeout takes whole seconds" 2
[[ "$PROBE_INTERVAL" =~ ^[0-9]+$ ]] || die "--probe-interval takes whole seconds" 2

verify_checksums "$PACKAGE_DIR"
TAG="$(release_tag "$PACKAGE_DIR")"

[ -f "$ENV_FILE" ] || die "no $ENV_FILE: copy deployment/.env.template to .env and fill it in" 2
missing=()
while IFS= read -r line; do
  key="${line%%=*}"
  case "$key" in ''|'#'*) continue ;; esac
  grep -Eq "^(export +)?${key}=.+" "$ENV_FILE" || missing+=("$key")
done <"$PACKAGE_DIR/deployment/.env.template"
[ "${#missing[@]}" -eq 0 ] || die "$ENV_FILE does not set: ${missing[*]}" 2

verify_provenance "$PACKAGE_DIR" "$KEYID"
say "checksums and signed provenance verified"

mkdir -p "$HOST_DIR"
install -m 600 "$ENV_FILE" "$HOST_DIR/.env"
DEST="$(install_release "$PACKAGE_DIR" "$TAG")"
write_probe_interval "$DEST" "$PROBE_INTERVAL"
note=""
[ "$PROBE_INTERVAL" -eq 0 ] || note=" (health checks every ${PROBE_INTERVAL}s on this host)"
say "release $TAG installed in $DEST$note"

if [ "$PULL" -eq 1 ]; then
  say "pulling the images pinned by digest"
  compose_release "$DEST" pull
fi
remove_strays
compose_release "$DEST" up -d --remove-orphans
switch_to "$TAG" deploy
say "waiting up to ${HEALTH_TIMEOUT}s for every container to be healthy"
wait_healthy "$DEST" "$HEALTH_TIMEOUT" || die "$TAG started but is not healthy; roll back with scripts/rollback_to_tag.sh"
say "deployed $TAG; now run scripts/post_deploy_audit.sh --host-dir $HOST_DIR"
