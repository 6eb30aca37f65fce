#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Audits the release running on this host: every service of the current release has a
# running container, healthy where it has a healthcheck, and runs the image the package
# pinned (same registry digest).
#
#   bash scripts/post_deploy_audit.sh [--host-dir DIR] [--wait SECONDS]
#
# Writes DIR/audit/post_deploy_audit_<time>.txt and exits 1 when a service fails the audit.
set -euo pipefail

PACKAGE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=common.sh
. "$PACKAGE_DIR/scripts/common.sh"

WAIT=120
while [ "$#" -gt 0 ]; do
  case "$1" in
    --host-dir) HOST_DIR="${2:?--host-dir needs a directory}"; shift 2 ;;
    --wait) WAIT="${2:?--wait needs seconds}"; shift 2 ;;
    -h|--help) sed -n '3,9p' "$0"; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" 2 ;;
  esac
done
[[ "$WAIT" =~ ^[0-9]+$ ]] || die "--wait takes whole seconds" 2

CURRENT="$HOST_DIR/current"
[ -d "$CURRENT" ] || die "no release deployed under $HOST_DIR (run scripts/remote_deploy_runner.sh first)" 2
TAG="$(release_tag "$CURRENT")"

mkdir -p "$HOST_DIR/audit"
REPORT="$HOST_DIR/audit/post_deploy_audit_$(date -u +%Y%m%dT%H%M%SZ).txt"
failures=0
# One deadline for the whole audit (not one per service: 47 services each waited for in turn
# made a slow stack take many times --wait), and the project's containers found by their compose
# labels with one `docker ps`, not one docker-compose start per service.
DEADLINE=$((SECONDS + WAIT))
check_service() {  # service, pinned image reference (empty for infrastructure)
  local service="$1" pinned="$2" cid state health image digests
  cid="$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" \
    --filter "label=com.docker.compose.service=$service" | head -n 1)"
  if [ -z "$cid" ]; then
    printf 'FAIL %s: no container\n' "$service" >>"$REPORT"
    return 1
  fi
  while :; do
    read -r state health < <(docker inspect -f \
      '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$cid")
    [ "$health" != "starting" ] || [ "$SECONDS" -ge "$DEADLINE" ] || { sleep 1; continue; }
    break
  done
  if [ "$state" != "running" ] || { [ "$health" != "healthy" ] && [ "$health" != "none" ]; }; then
    printf 'FAIL %s: %s, health %s\n' "$service" "$state" "$health" >>"$REPORT"
    return 1
  fi
  if [ -n "$pinned" ]; then
    image="$(docker inspect -f '{{.Image}}' "$cid")"
    digests="$(docker image inspect -f '{{join .RepoDigests " "}}' "$image")"
    case " $digests " in
      *" $pinned "*) ;;
      *) printf 'FAIL %s: runs %s, not the pinned %s\n' "$service" "$image" "$pinned" >>"$REPORT"; return 1 ;;
    esac
  fi
  printf 'ok   %s: %s, health %s%s\n' "$service" "$state" "$health" "${pinned:+, $pinned}" >>"$REPORT"
}

printf 'post-deploy audit of %s on %s at %s\n' "$TAG" "$(hostname)" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$REPORT"
declare -A pinned_by_service=()
while IFS=$'\t' read -r service image; do
  [ -n "$service" ] && pinned_by_service["$service"]="$image"
done <"$CURRENT/deployment/images.txt"
while IFS= read -r service; do
  check_service "$service" "${pinned_by_service[$service]:-}" || failures=$((failures + 1))
done < <(compose_release "$CURRENT" config --services)

cat "$REPORT"
if [ "$failures" -gt 0 ]; then
  die "$failures service(s) failed the audit of $TAG; see $REPORT"
fi
say "$TAG passed the audit; report $REPORT"
