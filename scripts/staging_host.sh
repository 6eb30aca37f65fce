#!/usr/bin/env bash
# A staging host on this machine that is a machine of its own as far as the deploy can tell:
# a network namespace with its own Docker engine (own data root, exec root, socket, bridge and
# iptables) and its own sshd (key auth only), reached over SSH at an address of a private /30
# that only this machine uses. Its engine pulls from the host's registry at the same name the
# deployment package pins (127.0.0.1:5000): a forwarder inside the namespace carries that port
# over a unix socket to the registry, so a digest that cannot be pulled fails here.
#
#   eval "$(bash scripts/staging_host.sh up)"    # prints export NAME=value lines
#   bash scripts/staging_host.sh status
#   bash scripts/staging_host.sh down            # removes everything `up` started
#
# Settings (environment): NEXUS_STAGING_NAME (default nexus-staging: the namespace's name),
# NEXUS_STAGING_NET (default 10.254.253.0: the /30; the host side takes .1, the staging host .2),
# NEXUS_STAGING_PORT (default 2222), NEXUS_STAGING_STATE (default /var/lib/nexus-staging/NAME),
# NEXUS_STAGING_REGISTRY (default 127.0.0.1:5000), NEXUS_STAGING_SEED (images copied from this
# machine's engine into the staging engine when it lacks them: the infrastructure a real host pulls
# from a hub, unreachable here; default the postgres/redis/nginx names this engine has),
# NEXUS_STAGING_PROBE_INTERVAL (default 10: the NEXUS_PROBE_INTERVAL it prints). Both commands
# are idempotent.
set -euo pipefail

NAME="${NEXUS_STAGING_NAME:-nexus-staging}"
NET="${NEXUS_STAGING_NET:-10.254.253.0}"
PORT="${NEXUS_STAGING_PORT:-2222}"
STATE="${NEXUS_STAGING_STATE:-/var/lib/nexus-staging/$NAME}"
REGISTRY="${NEXUS_STAGING_REGISTRY:-127.0.0.1:5000}"
SEED="${NEXUS_STAGING_SEED-postgres:15 postgres:15-alpine redis:7 redis:7-alpine nginx:alpine nginx:latest}"
[[ "$NAME" =~ ^[a-z0-9][a-z0-9-]{0,30}$ ]] || { echo "staging_host: NEXUS_STAGING_NAME must be lowercase letters, digits and -" >&2; exit 2; }
[[ "$NET" =~ ^([0-9]+\.[0-9]+\.[0-9]+)\.([0-9]+)$ ]] || { echo "staging_host: NEXUS_STAGING_NET must be an IPv4 address" >&2; exit 2; }
PREFIX="${BASH_REMATCH[1]}"
BASE=$(( BASH_REMATCH[2] / 4 * 4 ))
HOST_IP="$PREFIX.$((BASE + 1))"
STAGING_IP="$PREFIX.$((BASE + 2))"
REG_PORT="${REGISTRY##*:}"
TAG="$(printf '%s' "$NAME" | md5sum | cut -c1-6)"
VETH_HOST="nxs${TAG}h"   # interface names are at most 15 characters
VETH_NS="nxs${TAG}n"
SSH="$STATE/ssh"
HOST_DIR="$STATE/opt/nexus-cos"   # the host's deploy folder (NEXUS_STAGING_DIR)

log() { printf '[staging_host] %s\n' "$*" >&2; }
die() { printf '[staging_host] error: %s\n' "$*" >&2; exit 1; }
# nsenter, not `ip netns exec`: that one remounts /sys in a mount namespace of its own, which
# hides the cgroup mounts a Docker engine needs ("Devices cgroup isn't mounted")
in_ns() { nsenter --net="/var/run/netns/$NAME" "$@"; }
ns_exists() { ip netns list | awk '{print $1}' | grep -qx -- "$NAME"; }

# pid from a pidfile when that process still runs the program named (a reused pid is not ours)
live_pid() {
  local file="$1" program="$2" pid
  [ -f "$file" ] || return 1
  pid="$(cat "$file" 2>/dev/null)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$program" || return 1
  printf '%s\n' "$pid"
}

stop_pid() {  # pidfile program: TERM, wait up to 20 s, then KILL
  local pid
  pid="$(live_pid "$1" "$2")" || { rm -f "$1"; return 0; }
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; fi
  rm -f "$1"
}

need_tools() {
  local missing=()
  command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
  command -v ssh-keygen >/dev/null 2>&1 || missing+=(openssh-client)
  command -v socat >/dev/null 2>&1 || missing+=(socat)
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
  command -v ip >/dev/null 2>&1 || missing+=(iproute2)
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing ${missing[*]} (Debian packages)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2 \
      || { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2; }
  fi
}

network_up() {
  ns_exists || ip netns add "$NAME"
  if ! ip link show "$VETH_HOST" >/dev/null 2>&1; then
    ip link add "$VETH_HOST" type veth peer name "$VETH_NS"
    ip link set "$VETH_NS" netns "$NAME"
  fi
  ip addr replace "$HOST_IP/30" dev "$VETH_HOST"
  ip link set "$VETH_HOST" up
  in_ns ip addr replace "$STAGING_IP/30" dev "$VETH_NS"
  in_ns ip link set "$VETH_NS" up
  in_ns ip link set lo up
}

keys_up() {
  mkdir -p "$SSH" "$HOST_DIR" "$STATE/docker-config"
  chmod 700 "$STATE" "$SSH"
  [ -f "$SSH/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C "$NAME host key" -f "$SSH/host_ed25519"
  [ -f "$SSH/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C "nexus-agent deploy key for $NAME" -f "$SSH/id_ed25519"
  install -m 600 "$SSH/id_ed25519.pub" "$SSH/authorized_keys"
  printf '[%s]:%s %s\n' "$STAGING_IP" "$PORT" "$(cut -d' ' -f1,2 "$SSH/host_ed25519.pub")" >"$SSH/known_hosts"
}

registry_up() {
  # host side: a unix socket to the registry; namespace side: its 127.0.0.1:PORT to that socket
  if ! live_pid "$STATE/registry-host.pid" "$STATE/registry.sock" >/dev/null; then
    rm -f "$STATE/registry.sock"
    setsid socat "UNIX-LISTEN:$STATE/registry.sock,fork,mode=600" "TCP:$REGISTRY" </dev/null >>"$STATE/socat.log" 2>&1 &
    echo $! >"$STATE/registry-host.pid"
  fi
  if ! live_pid "$STATE/registry-ns.pid" "TCP-LISTEN:$REG_PORT" >/dev/null; then
    setsid nsenter --net="/var/run/netns/$NAME" socat "TCP-LISTEN:$REG_PORT,bind=127.0.0.1,reuseaddr,fork" \
      "UNIX-CONNECT:$STATE/registry.sock" </dev/null >>"$STATE/socat.log" 2>&1 &
    echo $! >"$STATE/registry-ns.pid"
  fi
}

engine_up() {
  if ! live_pid "$STATE/dockerd.pid" "$STATE/docker" >/dev/null; then
    # Its own bridge (inside the namespace, so the host's docker0 is never touched), data root,
    # exec root (its own containerd), socket and cgroup parent.
    setsid nsenter --net="/var/run/netns/$NAME" dockerd --data-root "$STATE/docker" --exec-root "$STATE/exec" \
      --pidfile "$STATE/dockerd.pid" -H "unix://$STATE/docker.sock" --bip 172.30.253.1/24 \
      --cgroup-parent "$NAME" </dev/null >>"$STATE/dockerd.log" 2>&1 &
  fi
  local _
  for _ in $(seq 1 60); do
    DOCKER_HOST="unix://$STATE/docker.sock" docker version >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  die "the staging engine did not answer on $STATE/docker.sock within 30 s; see $STATE/dockerd.log"
}

seed_images() {
  local image
  for image in $SEED; do
    docker image inspect "$image" >/dev/null 2>&1 || continue
    DOCKER_HOST="unix://$STATE/docker.sock" docker image inspect "$image" >/dev/null 2>&1 && continue
    log "seeding $image into the staging engine (no hub to pull it from here)"
    docker save "$image" | DOCKER_HOST="unix://$STATE/docker.sock" docker load >/dev/null
  done
}

sshd_up() {
  mkdir -p /run/sshd
  cat >"$STATE/sshd_config" <<EOF
ListenAddress $STAGING_IP:$PORT
HostKey $SSH/host_ed25519
AuthorizedKeysFile $SSH/authorized_keys
PidFile $STATE/sshd.pid
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
X11Forwarding no
AllowTcpForwarding no
Subsystem sftp internal-sftp
SetEnv DOCKER_HOST=unix://$STATE/docker.sock DOCKER_CONFIG=$STATE/docker-config
EOF
  if ! live_pid "$STATE/sshd.pid" "sshd" >/dev/null; then
    in_ns /usr/sbin/sshd -f "$STATE/sshd_config" -E "$STATE/sshd.log"
  fi
  local _
  for _ in $(seq 1 20); do
    if ssh -o BatchMode=yes -o UserKnownHostsFile="$SSH/known_hosts" -o StrictHostKeyChecking=yes \
        -o ConnectTimeout=3 -i "$SSH/id_ed25519" -p "$PORT" "root@$STAGING_IP" docker info >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.5
  done
  die "ssh root@$STAGING_IP:$PORT does not answer with the staging engine; see $STATE/sshd.log"
}

print_settings() {
  printf 'export NEXUS_STAGING_HOST=%s\n' "root@$STAGING_IP:$PORT"
  printf 'export NEXUS_STAGING_SSH_KEY=%s\n' "$SSH/id_ed25519"
  printf 'export NEXUS_STAGING_KNOWN_HOSTS=%s\n' "$SSH/known_hosts"
  printf 'export NEXUS_STAGING_DIR=%s\n' "$HOST_DIR"
  # This host shares this machine's cores with the pipeline: Docker starting every service's
  # health check command every 2 s (the sample's images; 47 services: 23 a second) takes more
  # than 2 cores can give and turns healthy services unhealthy. Every 10 s is enough for a
  # staging host; the deploy still polls the containers' states every second.
  printf 'export NEXUS_PROBE_INTERVAL=%s\n' "${NEXUS_STAGING_PROBE_INTERVAL:-10}"
}

up() {
  [ "$(id -u)" -eq 0 ] || die "run as root (network namespaces and a Docker engine)"
  need_tools
  mkdir -p "$STATE"
  network_up
  keys_up
  registry_up
  engine_up
  seed_images
  sshd_up
  log "staging host $NAME up: root@$STAGING_IP:$PORT, its engine pulls $REGISTRY through the namespace's own 127.0.0.1:$REG_PORT"
  print_settings
}

down() {
  stop_pid "$STATE/sshd.pid" sshd
  if live_pid "$STATE/dockerd.pid" "$STATE/docker" >/dev/null; then
    # containers first, so nothing the engine started outlives it
    DOCKER_HOST="unix://$STATE/docker.sock" docker ps -aq 2>/dev/null \
      | xargs -r env DOCKER_HOST="unix://$STATE/docker.sock" docker rm -f >/dev/null 2>&1 || true
  fi
  stop_pid "$STATE/dockerd.pid" "$STATE/docker"
  stop_pid "$STATE/registry-ns.pid" "TCP-LISTEN:$REG_PORT"
  stop_pid "$STATE/registry-host.pid" "$STATE/registry.sock"
  ip link del "$VETH_HOST" 2>/dev/null || true
  if ns_exists; then ip netns del "$NAME"; fi
  # the engine's overlay mounts and its namespaces' bind mounts go before the folder does
  if [ -d "$STATE" ]; then
    { grep -o " $STATE/[^ ]*" /proc/mounts || true; } | sort -r | while read -r mount; do umount -l "$mount" 2>/dev/null || true; done
    rm -rf "$STATE"
  fi
  find /sys/fs/cgroup -maxdepth 2 -type d -name "$NAME" -exec rmdir {} + 2>/dev/null || true
  log "staging host $NAME down"
}

status() {
  local ok=0
  local part pidfile program
  for part in "engine|dockerd.pid|$STATE/docker" "sshd|sshd.pid|sshd" "registry forward|registry-ns.pid|TCP-LISTEN:$REG_PORT"; do
    IFS='|' read -r name pidfile program <<<"$part"
    if live_pid "$STATE/$pidfile" "$program" >/dev/null; then echo "$name: running"; else echo "$name: not running"; ok=1; fi
  done
  return "$ok"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  env) print_settings ;;
  *) sed -n '2,17p' "$0" >&2; exit 2 ;;
esac
