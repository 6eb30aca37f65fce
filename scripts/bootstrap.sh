#!/usr/bin/env bash
# Installs and starts everything nexus-assets needs on a Debian 12 machine, idempotently:
# Debian packages, the Docker engine, offline base images (debootstrap, no hub), a local
# registry with htpasswd auth, and the project's virtual environment in .venv.
# Each part is skipped when it is already in place, so running this twice is cheap.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${NEXUS_STATE_DIR:-/var/lib/nexus-assets}"
BASE_MAP="${NEXUS_BASE_IMAGE_MAP:-$ROOT/nexus_assets/core/base_images.toml}"
REGISTRY_ADDR="${NEXUS_REGISTRY_ADDR:-127.0.0.1:5000}"
DOCKER=/usr/bin/docker   # Debian's client: another one on PATH may insist on BuildKit
export DOCKER_BUILDKIT=0

say() { printf '[bootstrap] %s\n' "$*"; }
die() { printf '[bootstrap] error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root: it installs Debian packages and starts dockerd"
mkdir -p "$STATE"

# --- Debian packages -------------------------------------------------------------
need=()
# shellcheck lints the deployment package's scripts; poppler-utils (pdftoppm) renders the
# compliance PDF's pages in the tests.
for pkg in docker.io docker-registry docker-compose debootstrap apache2-utils openssh-server curl \
           git chromium python3-venv shellcheck poppler-utils; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
  say "installing Debian packages: ${need[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi

# --- Docker engine ---------------------------------------------------------------
if ! "$DOCKER" info >/dev/null 2>&1; then
  say "starting dockerd"
  nohup dockerd >"$STATE/dockerd.log" 2>&1 &
  for _ in $(seq 1 60); do "$DOCKER" info >/dev/null 2>&1 && break; sleep 1; done
  "$DOCKER" info >/dev/null 2>&1 || die "dockerd did not start; see $STATE/dockerd.log"
fi

# --- Base images from Debian packages ------------------------------------------------
read_map() {  # prints: base name, packages (comma list), then "alias target" lines
  python3 - "$BASE_MAP" <<'PY'
import sys, tomllib
with open(sys.argv[1], "rb") as fh:
    m = tomllib.load(fh)
print(m["base"]["name"])
print(",".join(m["base"]["packages"]))
for alias, target in m.get("substitutes", {}).items():
    print(alias, target)
PY
}
mapfile -t MAP < <(read_map) || die "cannot read the base-image map $BASE_MAP"
BASE_NAME="${MAP[0]}"
BASE_PKGS="${MAP[1]}"
if ! "$DOCKER" image inspect "$BASE_NAME" >/dev/null 2>&1; then
  rootfs="$STATE/rootfs-bookworm"
  if [ ! -f "$rootfs/.nexus-complete" ]; then
    say "building base root filesystem with debootstrap ($BASE_PKGS), about a minute"
    rm -rf "$rootfs"
    debootstrap --variant=minbase --include="$BASE_PKGS" bookworm "$rootfs" >"$STATE/debootstrap.log" 2>&1 \
      || die "debootstrap failed; see $STATE/debootstrap.log"
    # Package caches and docs are dead weight in every service image.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
           "$rootfs"/usr/share/doc "$rootfs"/usr/share/man "$rootfs"/usr/share/locale
    touch "$rootfs/.nexus-complete"
  fi
  say "importing $BASE_NAME"
  tar -C "$rootfs" --exclude=./.nexus-complete -c . | "$DOCKER" import \
    --change 'LABEL io.nexus-assets.base=debian-bookworm-debootstrap' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    - "$BASE_NAME" >/dev/null
fi
base_id="$("$DOCKER" image inspect -f '{{.Id}}' "$BASE_NAME")"
for line in "${MAP[@]:2}"; do
  alias="${line%% *}"; target="${line#* }"
  have="$("$DOCKER" image inspect -f '{{index .Config.Labels "io.nexus-assets.substitutes"}} {{index .Config.Labels "io.nexus-assets.substitute-base-id"}}' "$alias" 2>/dev/null || true)"
  target_id="$("$DOCKER" image inspect -f '{{.Id}}' "$target")"
  [ "$have" = "$alias $target_id" ] && continue
  say "base-image map: $alias -> $target"
  printf 'FROM %s\nLABEL io.nexus-assets.substitutes="%s" io.nexus-assets.substitute-base="%s" io.nexus-assets.substitute-base-id="%s"\n' \
    "$target" "$alias" "$target" "$target_id" | "$DOCKER" build -q -t "$alias" - >/dev/null
done
: "$base_id"

# --- Local registry with htpasswd auth -----------------------------------------------
REG_DIR="$STATE/registry"
mkdir -p "$REG_DIR/data"
if [ ! -f "$REG_DIR/credentials.env" ]; then
  pass="$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
  htpasswd -Bbc "$REG_DIR/htpasswd" nexus "$pass" >/dev/null 2>&1
  umask 077
  printf 'REGISTRY_USERNAME=nexus\nREGISTRY_PASSWORD=%s\n' "$pass" >"$REG_DIR/credentials.env"
  umask 022
fi
cat >"$REG_DIR/config.yml" <<EOF
version: 0.1
storage:
  filesystem:
    rootdirectory: $REG_DIR/data
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
auth:
  htpasswd:
    realm: nexus-registry
    path: $REG_DIR/htpasswd
EOF
if ! curl -s -o /dev/null "http://$REGISTRY_ADDR/v2/"; then
  say "starting the registry on $REGISTRY_ADDR"
  nohup docker-registry serve "$REG_DIR/config.yml" >"$REG_DIR/registry.log" 2>&1 &
  for _ in $(seq 1 30); do curl -s -o /dev/null "http://$REGISTRY_ADDR/v2/" && break; sleep 0.5; done
  curl -s -o /dev/null "http://$REGISTRY_ADDR/v2/" || die "the registry did not start; see $REG_DIR/registry.log"
fi

# --- Python environment -------------------------------------------------------------
VENV="$ROOT/.venv"
stamp="$(cat "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)"
if [ ! -f "$VENV/.nexus-$stamp" ]; then
  say "installing the Python environment in $VENV"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip >/dev/null 2>&1
  "$VENV/bin/pip" install -q -e "$ROOT[dev]" >"$STATE/pip.log" 2>&1 || die "pip install failed; see $STATE/pip.log"
  rm -f "$VENV"/.nexus-*
  touch "$VENV/.nexus-$stamp"
fi
say "ready: engine $("$DOCKER" version -f '{{.Server.Version}}'), base $BASE_NAME, registry $REGISTRY_ADDR, venv $VENV"
