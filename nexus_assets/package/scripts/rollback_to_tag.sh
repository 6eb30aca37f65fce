#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Rolls the host back to a release deployed before, by its tag.
#
#   bash scripts/rollback_to_tag.sh TAG [--host-dir DIR] [--package PATH.tar.gz]
#
# TAG is a verified release tag such as verified_release_v1.0.0. Its compose file is taken
# from DIR/releases/TAG/ (every release remote_deploy_runner.sh installed stays there), or from
# a previous deployment package given with --package (its checksums are verified and its
# RELEASE must name TAG). The stack is brought up from that release's images, pinned by
# digest, and DIR/current points at it. Run scripts/post_deploy_audit.sh afterwards.
set -euo pipefail

PACKAGE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=common.sh
. "$PACKAGE_DIR/scripts/common.sh"

TAG=""
FROM_PACKAGE=""
while [ "$#" -gt 0 ]; do
  case "$1" in
    --host-dir) HOST_DIR="${2:?--host-dir needs a directory}"; shift 2 ;;
    --package) FROM_PACKAGE="${2:?--package needs a .tar.gz}"; shift 2 ;;
    -h|--help) sed -n '3,11p' "$0"; exit 0 ;;
    -*) die "unknown argument: $1 (see --help)" 2 ;;
    *) [ -z "$TAG" ] || die "one tag only (see --help)" 2; TAG="$1"; shift ;;
  esac
done
[ -n "$TAG" ] || die "which tag? e.g. rollback_to_tag.sh verified_release_v1.0.0" 2
[[ "$TAG" =~ ^[A-Za-z0-9._-]+$ ]] || die "not a release tag: $TAG" 2
[ -f "$HOST_DIR/.env" ] || die "no $HOST_DIR/.env: deploy once with scripts/remote_deploy_runner.sh" 2

DEST="$HOST_DIR/releases/$TAG"
if [ -n "$FROM_PACKAGE" ]; then
  [ -f "$FROM_PACKAGE" ] || die "no package at $FROM_PACKAGE" 2
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  tar -xzf "$FROM_PACKAGE" -C "$work" --no-same-owner
  unpacked="$(find "$work" -mindepth 2 -maxdepth 2 -name RELEASE -printf '%h\n' | head -n 1)"
  [ -n "$unpacked" ] || die "$FROM_PACKAGE is not a deployment package (no RELEASE file)" 2
  verify_checksums "$unpacked"
  [ "$(release_tag "$unpacked")" = "$TAG" ] || die "$FROM_PACKAGE holds $(release_tag "$unpacked"), not $TAG" 2
  DEST="$(install_release "$unpacked" "$TAG")"
fi
if [ ! -f "$DEST/$COMPOSE_FILE_NAME" ]; then
  known="$(find "$HOST_DIR/releases" -mindepth 1 -maxdepth 1 -type d -printf '%f ' 2>/dev/null || true)"
  die "release $TAG was never deployed here (known: ${known:-none}); pass --package with its deployment package" 2
fi

say "rolling back to $TAG"
# The host keeps the images of the releases it keeps: the registry is asked only for one it lacks.
while IFS=$'\t' read -r _ image; do
  if [ -n "$image" ] && ! docker image inspect "$image" >/dev/null 2>&1; then
    compose_release "$DEST" pull
    break
  fi
done <"$DEST/deployment/images.txt"
remove_strays
compose_release "$DEST" up -d --remove-orphans
switch_to "$TAG" rollback
wait_healthy "$DEST" "${NEXUS_HEALTH_TIMEOUT:-30}" || die "$TAG started again but is not healthy"
say "now running $TAG; run scripts/post_deploy_audit.sh --host-dir $HOST_DIR"
