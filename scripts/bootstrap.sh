#!/usr/bin/env bash
# Installs and starts everything nexus-assets needs on a Debian 12 machine, idempotently:
# Debian packages, the Docker engine, a build network with local npm and PyPI caches, base
# images (the real one where it can be had, else a substitute from Debian packages), a local
# registry with htpasswd auth, and the project's virtual environment in .venv.
# Each part is skipped when it is already in place, so running this twice is cheap.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${NEXUS_STATE_DIR:-/var/lib/nexus-assets}"
BASE_MAP="${NEXUS_BASE_IMAGE_MAP:-$ROOT/nexus_assets/target/base_images.toml}"
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
pkgs=(docker-registry docker-compose debootstrap apache2-utils openssh-server curl git python3-venv shellcheck
      poppler-utils nodejs)
# An engine that already answers (a GitHub runner's Docker CE) is used as it is: Debian's
# docker.io would conflict with its containerd.
"$DOCKER" info >/dev/null 2>&1 || pkgs+=(docker.io)
DEBIAN_MIRROR="${NEXUS_DEBIAN_MIRROR:-}"
# shellcheck source=/dev/null
if [ "$(. /etc/os-release && echo "${ID:-debian}")" = ubuntu ]; then
  # Ubuntu (ubuntu-latest runners): no chromium deb (a snap; only tests/test_ui.py, tests/ui and
  # benchmarks/ui_benchmark.py need it: the browser tests skip without /usr/bin/chromium), and
  # debootstrap needs Debian's keyring and mirror to make the bookworm root filesystem.
  pkgs+=(debian-archive-keyring); DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
else
  pkgs+=(chromium)
fi
for pkg in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
command -v npm >/dev/null || need+=(npm)  # NodeSource's nodejs ships its own npm
if [ "${#need[@]}" -gt 0 ]; then
  say "installing Debian packages: ${need[*]}"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi

# --- Docker engine ---------------------------------------------------------------
if ! "$DOCKER" info >/dev/null 2>&1; then
  say "starting dockerd"
  setsid nohup dockerd >"$STATE/dockerd.log" 2>&1 &
  for _ in $(seq 1 60); do "$DOCKER" info >/dev/null 2>&1 && break; sleep 1; done
  "$DOCKER" info >/dev/null 2>&1 || die "dockerd did not start; see $STATE/dockerd.log"
fi

# --- Build network and local package caches ---------------------------------------------
# Builds run on a network of their own (images/build.py uses it when it exists), whose gateway
# is a stable address on this host: there npm (verdaccio) and PyPI (proxpi) caches listen, so
# that many services sharing dependencies download each package once. The substitutes point
# npm and pip at them (below); a real base image goes to the registries directly.
# BuildKit's RUN steps (the image step builds through BuildKit) use the engine's default bridge,
# docker0, and reach the caches at this gateway through the host: keep docker0 (no --bridge=none).
read_map() {  # prints KEY=VALUE lines (shell-quoted) for the map's settings, ---, then "alias target" lines
  python3 - "$BASE_MAP" <<'PY'
import shlex, sys, tomllib
with open(sys.argv[1], "rb") as fh:
    m = tomllib.load(fh)
cache = m.get("package_cache", {})
settings = {
    "BASE_NAME": m["base"]["name"], "BASE_PKGS": ",".join(m["base"]["packages"]),
    "NPM_MAJOR": str(m["base"].get("npm", "")), "CACHE_NETWORK": cache.get("network", ""),
    "CACHE_SUBNET": cache.get("subnet", ""), "CACHE_GW": cache.get("gateway", ""),
    "NPM_PORT": str(cache.get("npm_port", 4873)), "PYPI_PORT": str(cache.get("pypi_port", 5001)),
}
for key, value in settings.items():
    print(f"{key}={shlex.quote(value)}")
infra = m.get("infrastructure", {})
settings = {"INFRA_BASE": infra.get("base", ""), "INFRA_PKGS": ",".join(infra.get("packages", []))}
for key, value in settings.items():
    print(f"{key}={shlex.quote(value)}")
print("---")
for alias, target in m.get("substitutes", {}).items():
    print(alias, target)
print("---")
for alias, kind in infra.get("images", {}).items():
    print(alias, kind)
PY
}
MAP_TEXT="$(read_map)" || die "cannot read the base-image map $BASE_MAP"
section() { printf '%s\n' "$MAP_TEXT" | awk -v n="$1" '/^---$/ {i++; next} i == n'; }
eval "$(section 0)"
mapfile -t ALIASES < <(section 1)
mapfile -t INFRA < <(section 2)
CACHE_MODE="${NEXUS_PACKAGE_CACHE_MODE:-cached}"   # cached | passthrough (benchmarks) | off
CACHE_DIR="$STATE/package-cache"
mkdir -p "$CACHE_DIR"

if [ -n "$CACHE_NETWORK" ] && ! "$DOCKER" network inspect "$CACHE_NETWORK" >/dev/null 2>&1; then
  say "creating the build network $CACHE_NETWORK ($CACHE_SUBNET)"
  "$DOCKER" network create --driver bridge --subnet "$CACHE_SUBNET" --gateway "$CACHE_GW" \
    --label io.nexus-assets.build-network=1 "$CACHE_NETWORK" >/dev/null
fi

npm_url="http://$CACHE_GW:$NPM_PORT/"
pypi_url="http://$CACHE_GW:$PYPI_PORT/index/"
answering() { curl -s -o /dev/null -m 3 -f "$1"; }
stop_pid() { if [ -f "$1" ]; then kill "$(cat "$1")" 2>/dev/null || true; rm -f "$1"; sleep 1; fi; }
if [ "$CACHE_MODE" != off ] && [ -n "$CACHE_NETWORK" ]; then
  command -v node >/dev/null || die "node is needed for the npm cache (verdaccio): apt-get install nodejs"
  # verdaccio 6.8 (6.10 wants node 22) with node-fetch held at 2.7.0: newer ones do not install.
  if [ ! -f "$CACHE_DIR/verdaccio/.nexus-6.8.0" ]; then
    say "installing verdaccio (npm cache) in $CACHE_DIR/verdaccio"
    mkdir -p "$CACHE_DIR/verdaccio"
    printf '%s\n' '{"name": "nexus-package-cache", "private": true, "dependencies": {"verdaccio": "6.8.0"},' \
      ' "overrides": {"node-fetch": "2.7.0"}}' >"$CACHE_DIR/verdaccio/package.json"
    (cd "$CACHE_DIR/verdaccio" && npm install --omit=dev --no-audit --no-fund >install.log 2>&1) \
      || die "npm install verdaccio failed; see $CACHE_DIR/verdaccio/install.log"
    touch "$CACHE_DIR/verdaccio/.nexus-6.8.0"
  fi
  if [ ! -f "$CACHE_DIR/proxpi/.nexus-1.3.1" ]; then
    say "installing proxpi (PyPI cache) in $CACHE_DIR/proxpi"
    python3 -m venv "$CACHE_DIR/proxpi"
    "$CACHE_DIR/proxpi/bin/pip" install -q proxpi==1.3.1 gunicorn >"$STATE/proxpi-pip.log" 2>&1 \
      || die "pip install proxpi failed; see $STATE/proxpi-pip.log"
    touch "$CACHE_DIR/proxpi/.nexus-1.3.1"
  fi
  if [ "$(cat "$CACHE_DIR/mode" 2>/dev/null)" != "$CACHE_MODE" ] || ! answering "${npm_url}-/ping" \
     || ! answering "http://$CACHE_GW:$PYPI_PORT/health"; then
    stop_pid "$CACHE_DIR/verdaccio.pid"; stop_pid "$CACHE_DIR/proxpi.pid"
    # passthrough keeps nothing (tarballs, files and indexes fetched upstream every time): it
    # measures what the cache saves, on the same path.
    if [ "$CACHE_MODE" = passthrough ]; then
      storage="$CACHE_DIR/npm-passthrough"; rm -rf "$storage"; keep=false; maxage=0s
      ttl=0; files_timeout=0; files="$CACHE_DIR/pypi-passthrough"; rm -rf "$files"
    else
      storage="$CACHE_DIR/npm-storage"; keep=true; maxage=30m; ttl=1800; files_timeout=120
      files="$CACHE_DIR/pypi-files"
    fi
    mkdir -p "$storage" "$files"
    cat >"$CACHE_DIR/verdaccio.yaml" <<EOF
storage: $storage
listen: $CACHE_GW:$NPM_PORT
uplinks:
  npmjs:
    url: https://registry.npmjs.org/
    cache: $keep
    maxage: $maxage
    timeout: 60s
packages:
  '@*/*': {access: \$all, publish: \$authenticated, proxy: npmjs}
  '**': {access: \$all, publish: \$authenticated, proxy: npmjs}
log: {type: stdout, format: pretty, level: warn}
EOF
    say "starting the npm cache on $npm_url ($CACHE_MODE)"
    NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt setsid nohup node \
      "$CACHE_DIR/verdaccio/node_modules/verdaccio/bin/verdaccio" --config "$CACHE_DIR/verdaccio.yaml" \
      >"$CACHE_DIR/verdaccio.log" 2>&1 &
    echo $! >"$CACHE_DIR/verdaccio.pid"
    say "starting the PyPI cache on $pypi_url ($CACHE_MODE)"
    PROXPI_CACHE_DIR="$files" PROXPI_INDEX_TTL=$ttl PROXPI_DOWNLOAD_TIMEOUT=$files_timeout \
      PROXPI_LOGGING_LEVEL=WARNING REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt \
      setsid nohup "$CACHE_DIR/proxpi/bin/gunicorn" --bind "$CACHE_GW:$PYPI_PORT" --threads 16 --timeout 300 \
      proxpi.server:app >"$CACHE_DIR/proxpi.log" 2>&1 &
    echo $! >"$CACHE_DIR/proxpi.pid"
    for _ in $(seq 1 60); do
      answering "${npm_url}-/ping" && answering "http://$CACHE_GW:$PYPI_PORT/health" && break
      sleep 0.5
    done
    answering "${npm_url}-/ping" || die "the npm cache did not start; see $CACHE_DIR/verdaccio.log"
    answering "http://$CACHE_GW:$PYPI_PORT/health" || die "the PyPI cache did not start; see $CACHE_DIR/proxpi.log"
    echo "$CACHE_MODE" >"$CACHE_DIR/mode"
  fi
fi

# --- Base images: the real one first, a faithful substitute where it cannot be had ---------
# One root filesystem from Debian packages (debootstrap, built once and kept), imported as
# $BASE_NAME; then for each name of the map: the real image if the engine has it or can pull
# it, else a thin substitute over the base (CA bundle, package caches, busybox user tools).
pkg_key="$(printf '%s npm@%s' "$BASE_PKGS" "$NPM_MAJOR" | sha256sum | cut -c1-12)"
if [ "$("$DOCKER" image inspect -f '{{index .Config.Labels "io.nexus-assets.rootfs"}}' "$BASE_NAME" 2>/dev/null)" != "$pkg_key" ]; then
  rootfs="$STATE/rootfs-bookworm-$pkg_key"
  if [ ! -f "$rootfs/.nexus-complete" ]; then
    say "building the base root filesystem with debootstrap ($BASE_PKGS), a minute or two"
    rm -rf "$rootfs"
    debootstrap --variant=minbase --include="$BASE_PKGS" bookworm "$rootfs" ${DEBIAN_MIRROR:+"$DEBIAN_MIRROR"} >"$STATE/debootstrap.log" 2>&1 \
      || die "debootstrap failed; see $STATE/debootstrap.log"
    if [ -n "$NPM_MAJOR" ]; then  # npm from its registry, as the real node images ship it
      tmp="$(mktemp -d)"
      (cd "$tmp" && npm pack -q "npm@$NPM_MAJOR" >/dev/null 2>"$STATE/npm-pack.log") \
        || die "npm pack npm@$NPM_MAJOR failed; see $STATE/npm-pack.log"
      mkdir -p "$rootfs/usr/lib/node_modules/npm"
      tar -xzf "$tmp"/npm-*.tgz -C "$rootfs/usr/lib/node_modules/npm" --strip-components=1 --no-same-owner
      ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/bin/npm"
      ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/bin/npx"
      rm -rf "$tmp"
    fi
    # The real python images let pip install system-wide; Debian's marker forbids it (PEP 668).
    rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
    # Package caches and docs are dead weight in every service image.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
           "$rootfs"/usr/share/doc "$rootfs"/usr/share/man "$rootfs"/usr/share/locale
    touch "$rootfs/.nexus-complete"
  fi
  say "importing $BASE_NAME"
  provides="$(chroot "$rootfs" sh -c 'printf "node %s, npm %s, %s, pip %s" "$(node --version)" "$(npm --version 2>/dev/null)" "$(python3 --version)" "$(pip --version | cut -d" " -f2)"')"
  tar -C "$rootfs" --exclude=./.nexus-complete -c . | "$DOCKER" import \
    --change 'LABEL io.nexus-assets.base=debian-bookworm-debootstrap' \
    --change "LABEL io.nexus-assets.rootfs=$pkg_key" \
    --change "LABEL io.nexus-assets.provides=\"$provides\"" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    - "$BASE_NAME" >/dev/null
fi
base_id="$("$DOCKER" image inspect -f '{{.Id}}' "$BASE_NAME")"
provides="$("$DOCKER" image inspect -f '{{index .Config.Labels "io.nexus-assets.provides"}}' "$BASE_NAME")"

# What every substitute adds to the base: the host's CA bundle, the package caches, and (for
# *-alpine) busybox's user tools ahead of Debian's adduser on PATH.
ctx="$STATE/substitute-context"
rm -rf "$ctx"; mkdir -p "$ctx"
cp /etc/ssl/certs/ca-certificates.crt "$ctx/host-ca-bundle.crt"
# No NODE_EXTRA_CA_CERTS: it makes every node start build the whole root store (seconds on a
# busy machine, longer than a 3 s HEALTHCHECK that runs `node -e`), while Debian's node reads
# OpenSSL's store (SSL_CERT_FILE) on its first TLS connection only.
cp -r "$ROOT/scripts/substitute/alpine-bin" "$ctx/alpine-bin"
cache_env=""
if [ "$CACHE_MODE" != off ] && [ -n "$CACHE_NETWORK" ]; then
  cache_env="npm_config_registry=$npm_url PIP_INDEX_URL=$pypi_url PIP_TRUSTED_HOST=$CACHE_GW"
fi
ca=/etc/ssl/nexus/host-ca-bundle.crt
ctx_key="$( (cd "$ctx" && find . -type f | sort | xargs sha256sum; echo "$cache_env") | sha256sum | cut -c1-16)"

substitute_label() {  # the image's io.nexus-assets.substitutes label, "<no value>", or "absent"
  local out  # (inspect prints an empty line before it fails)
  out="$("$DOCKER" image inspect -f '{{index .Config.Labels "io.nexus-assets.substitutes"}}' "$1" 2>/dev/null)" \
    && echo "$out" || echo absent
}
declare -A REAL=()
pull_pids=()
pulls="$STATE/pulls"; rm -rf "$pulls"; mkdir -p "$pulls"
for line in "${ALIASES[@]}"; do  # every absent or substituted name: try a pull, in parallel, briefly
  alias="${line%% *}"
  label="$(substitute_label "$alias")"
  if [ "$label" != absent ] && [ "$label" != "$alias" ]; then REAL[$alias]=1; continue; fi
  log="$pulls/${alias//[:\/]/_}"
  ( timeout "${NEXUS_PULL_TIMEOUT:-20}" "$DOCKER" pull -q "$alias" >"$log" 2>&1; echo "rc=$?" >>"$log" ) &
  pull_pids+=($!)
done
for pid in "${pull_pids[@]}"; do wait "$pid" || true; done
for line in "${ALIASES[@]}"; do
  alias="${line%% *}"; target="${line#* }"; log="$pulls/${alias//[:\/]/_}"
  if [ -n "${REAL[$alias]:-}" ]; then continue; fi  # a real image the engine has: used unchanged
  if [ "$(tail -n 1 "$log")" = rc=0 ]; then say "$alias: pulled the real image"; continue; fi
  target_id="$("$DOCKER" image inspect -f '{{.Id}}' "$target")"
  key="$alias $target_id $ctx_key"
  have="$("$DOCKER" image inspect -f '{{index .Config.Labels "io.nexus-assets.substitute-key"}}' "$alias" 2>/dev/null || true)"
  [ "$have" = "$key" ] && continue
  path_env=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  alpine=""
  case "$alias" in
    *-alpine*) path_env="/usr/local/lib/nexus-alpine/bin:$path_env"
               alpine="COPY alpine-bin/ /usr/local/lib/nexus-alpine/bin/" ;;
  esac
  say "$alias: cannot be pulled ($(head -n 1 "$log" | cut -c1-90)); a substitute over $target"
  cat >"$ctx/Dockerfile" <<EOF
FROM $target
COPY host-ca-bundle.crt /etc/ssl/certs/ca-certificates.crt
COPY host-ca-bundle.crt $ca
$alpine
ENV PATH=$path_env SSL_CERT_FILE=$ca PIP_CERT=$ca REQUESTS_CA_BUNDLE=$ca $cache_env
LABEL io.nexus-assets.substitutes="$alias" io.nexus-assets.substitute-base="$target" \\
      io.nexus-assets.substitute-base-id="$target_id" io.nexus-assets.substitute-key="$key" \\
      io.nexus-assets.substitute-provides="$provides"
EOF
  "$DOCKER" build -q -t "$alias" "$ctx" >/dev/null || die "building the substitute $alias failed"
done
: "$base_id"

# --- Infrastructure images (postgres, redis) for integration tests: real first, else Debian's --
if [ -n "$INFRA_BASE" ] && [ "${#INFRA[@]}" -gt 0 ]; then
  infra_key="$(printf '%s' "$INFRA_PKGS" | sha256sum | cut -c1-12)"
  if [ "$("$DOCKER" image inspect -f '{{index .Config.Labels "io.nexus-assets.rootfs"}}' "$INFRA_BASE" 2>/dev/null)" != "$infra_key" ]; then
    rootfs="$STATE/rootfs-infra-$infra_key"
    if [ ! -f "$rootfs/.nexus-complete" ]; then
      say "building the infrastructure root filesystem with debootstrap ($INFRA_PKGS), a minute or two"
      rm -rf "$rootfs"
      debootstrap --variant=minbase --include="$INFRA_PKGS" bookworm "$rootfs" ${DEBIAN_MIRROR:+"$DEBIAN_MIRROR"} >"$STATE/debootstrap-infra.log" 2>&1 \
        || die "debootstrap failed; see $STATE/debootstrap-infra.log"
      rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc \
             "$rootfs"/usr/share/man "$rootfs"/var/lib/postgresql/15/main
      touch "$rootfs/.nexus-complete"
    fi
    say "importing $INFRA_BASE"
    tar -C "$rootfs" --exclude=./.nexus-complete -c . | "$DOCKER" import \
      --change 'LABEL io.nexus-assets.base=debian-bookworm-debootstrap' \
      --change "LABEL io.nexus-assets.rootfs=$infra_key" \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      - "$INFRA_BASE" >/dev/null
  fi
  infra_id="$("$DOCKER" image inspect -f '{{.Id}}' "$INFRA_BASE")"
  ictx="$STATE/infra-context"
  rm -rf "$ictx"; mkdir -p "$ictx"; cp "$ROOT"/scripts/substitute/infra/* "$ictx/"
  ikey="$( (cd "$ictx" && sha256sum ./*) | sha256sum | cut -c1-16)"
  for line in "${INFRA[@]}"; do
    alias="${line%% *}"; kind="${line#* }"
    label="$(substitute_label "$alias")"
    if [ "$label" != absent ] && [ "$label" != "$alias" ]; then continue; fi  # the real image
    if [ "$label" = absent ] && timeout "${NEXUS_PULL_TIMEOUT:-20}" "$DOCKER" pull -q "$alias" >/dev/null 2>&1; then
      say "$alias: pulled the real image"; continue
    fi
    key="$alias $infra_id $ikey"
    [ "$("$DOCKER" image inspect -f '{{index .Config.Labels "io.nexus-assets.substitute-key"}}' "$alias" 2>/dev/null || true)" = "$key" ] && continue
    case "$kind" in
      postgres) port=5432; provides="PostgreSQL 15 (Debian)" ;;
      redis) port=6379; provides="redis-server 7 (Debian)" ;;
      *) die "base-image map: infrastructure kind $kind of $alias is not postgres or redis" ;;
    esac
    say "$alias: cannot be pulled; a substitute over $INFRA_BASE ($provides)"
    printf '%s\n' "FROM $INFRA_BASE" "COPY $kind /usr/local/bin/docker-entrypoint" "EXPOSE $port" \
      'ENTRYPOINT ["/usr/local/bin/docker-entrypoint"]' \
      "LABEL io.nexus-assets.substitutes=\"$alias\" io.nexus-assets.substitute-base=\"$INFRA_BASE\" io.nexus-assets.substitute-base-id=\"$infra_id\" io.nexus-assets.substitute-key=\"$key\" io.nexus-assets.substitute-provides=\"$provides\"" \
      >"$ictx/Dockerfile"
    "$DOCKER" build -q -t "$alias" "$ictx" >/dev/null || die "building the substitute $alias failed"
  done
fi

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
  setsid nohup docker-registry serve "$REG_DIR/config.yml" >"$REG_DIR/registry.log" 2>&1 &
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
