#!/usr/bin/env bash
# A private Docker engine for the test suite: Debian's docker.io, dockerd with the vfs storage
# driver, no iptables, no bridge (containers use host networking), its own data-root, exec-root,
# pidfile and unix socket. Images are built locally (scripts/images/build-images.sh) because no
# image registry is reachable; the Vault image from the OpenBao binary that
# `scripts/test-services.sh up vault` caches (or PRISM_BAO_BIN).
#
#   scripts/services/docker.sh up|down|status|env|clean
#
# State:  ${PRISM_SERVICES_DIR:-<repo>/.prism-test/services}/docker  (data-root, log, pidfile, socket)
# Cache:  ${PRISM_CACHE_DIR:-$HOME/.cache/prism}/images              (rootfs tarballs)
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SERVICES_DIR="${PRISM_SERVICES_DIR:-$REPO/.prism-test/services}"
mkdir -p "$SERVICES_DIR"
SERVICES_DIR="$(cd "$SERVICES_DIR" && pwd)"
STATE="$SERVICES_DIR/docker"
DATA_ROOT="$STATE/data"
PIDFILE="$STATE/dockerd.pid"
LOG="$STATE/dockerd.log"
START_TIMEOUT="${PRISM_DOCKER_START_TIMEOUT:-60}"
# Optional: a size (e.g. 8g) puts the data-root on a tmpfs. vfs copies the whole image for every
# container, which is several times faster in memory than on a slow disk; the images are then
# re-imported from the rootfs cache after each down/reboot.
TMPFS_SIZE="${PRISM_DOCKER_TMPFS_SIZE:-}"
STOP_TIMEOUT="${PRISM_DOCKER_STOP_TIMEOUT:-30}"

# The exec-root holds containerd's sockets; unix socket paths are limited to 108 bytes, so it
# lives under /run (or /tmp) with a short name derived from the state dir (stable, unique).
STATE_ID="$(printf '%s' "$STATE" | sha256sum | cut -c1-10)"
if [[ -d /run && -w /run ]]; then RUN_BASE=/run; else RUN_BASE=/tmp; fi
EXEC_ROOT="$RUN_BASE/prism-docker-$STATE_ID"
SOCK="$STATE/docker.sock"
if (( ${#SOCK} > 100 )); then SOCK="$RUN_BASE/prism-dkr-$STATE_ID.sock"; fi
DOCKER_HOST_URL="unix://$SOCK"

# Debian's docker CLI matches the daemon; another docker CLI may come first on PATH.
if [[ -x /usr/bin/docker ]]; then DOCKER_BIN=/usr/bin/docker; else DOCKER_BIN=docker; fi

IMAGE_REDIS="prism-local/redis:7"
IMAGE_NATS="prism-local/nats:2"
IMAGE_POSTGRES="prism-local/postgres:15"
IMAGE_VAULT="prism-local/vault:2"

trap 'printf "[docker] ERROR: %s failed (line %s, exit %s)\n" "$BASH_COMMAND" "$LINENO" "$?" >&2' ERR
log() { printf '[docker] %s\n' "$*" >&2; }
die() { printf '[docker] ERROR: %s\n' "$*" >&2; exit 1; }
dk() { "$DOCKER_BIN" -H "$DOCKER_HOST_URL" "$@"; }

ensure_packages() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  [[ -x /usr/bin/docker ]] || [[ " ${missing[*]-} " == *" docker.io "* ]] || missing+=(docker.io)
  command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
  (( ${#missing[@]} == 0 )) && return 0
  (( EUID == 0 )) || die "need root to install ${missing[*]} (apt-get)"
  log "installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  DOCKER_BIN=/usr/bin/docker
}

# pid of our dockerd, if the pidfile names a live dockerd using our data-root.
dockerd_pid() {
  [[ -f "$PIDFILE" ]] || return 1
  local pid
  pid="$(cat "$PIDFILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "--data-root=$DATA_ROOT" || return 1
  printf '%s\n' "$pid"
}

answers() { dk version --format '{{.Server.Version}}' >/dev/null 2>&1; }

# All processes that belong to this engine: dockerd, the containerd it spawned and the shims,
# recognised by our data-root / exec-root in their command line.
our_pids() {
  local p cmd
  for p in /proc/[0-9]*; do
    p="${p#/proc/}"
    [[ "$p" == "$$" || "$p" == "$BASHPID" ]] && continue
    cmd="$(tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline")" || continue
    case "$cmd" in
      *"$DATA_ROOT"* | *"$EXEC_ROOT"*) printf '%s\n' "$p" ;;
    esac
  done
}

# Processes running inside our containers (children of our shims).
container_pids() {
  local shim
  for shim in $(our_pids); do
    [[ "$(cat "/proc/$shim/comm" 2>/dev/null)" == containerd-shim* ]] || continue
    cat /proc/"$shim"/task/*/children 2>/dev/null | tr ' ' '\n' | grep . || true
  done
}

kill_and_wait() { # signal timeout pids...
  local sig="$1" timeout="$2" p alive deadline
  shift 2
  (( $# == 0 )) && return 0
  kill "-$sig" "$@" 2>/dev/null || true
  deadline=$(( SECONDS + timeout ))
  while (( SECONDS < deadline )); do
    alive=0
    for p in "$@"; do [[ -d "/proc/$p" ]] && [[ "$(cut -d' ' -f3 "/proc/$p/stat" 2>/dev/null)" != Z ]] && alive=1; done
    (( alive )) || return 0
    sleep 0.2
  done
  return 1
}

unmount_ours() {
  local m
  # deepest first
  awk -v a="$DATA_ROOT" -v b="$EXEC_ROOT" '
    { p = $2 } p == a || p == b || index(p, a "/") == 1 || index(p, b "/") == 1 { print p }' /proc/mounts |
    sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
}

stop_engine() {
  local pid pids
  if pid="$(dockerd_pid)"; then
    log "stopping dockerd (pid $pid)"
    if ! kill_and_wait TERM "$STOP_TIMEOUT" "$pid"; then
      log "dockerd did not stop within ${STOP_TIMEOUT}s, killing it"
      kill_and_wait KILL 5 "$pid" || true
    fi
  fi
  # The containerd spawned by dockerd, its shims and container processes must not outlive it.
  pids="$(container_pids; our_pids)"
  if [[ -n "$pids" ]]; then
    log "stopping leftover processes: ${pids//$'\n'/ }"
    # shellcheck disable=SC2086
    kill_and_wait TERM 10 $pids || kill_and_wait KILL 5 $pids || true
  fi
  pids="$(our_pids)"
  [[ -z "$pids" ]] || die "processes still running after down: ${pids//$'\n'/ }"
  unmount_ours
  rm -f "$PIDFILE" "$SOCK"
  rm -rf "$EXEC_ROOT"
}

start_engine() {
  mkdir -p "$STATE" "$DATA_ROOT"
  # Anything left from an engine that crashed or no longer answers.
  if [[ -n "$(our_pids)" ]]; then
    log "found a stale engine for $STATE, stopping it first"
    stop_engine
  fi
  rm -f "$SOCK" "$PIDFILE"
  if [[ -n "$TMPFS_SIZE" ]] && ! mountpoint -q "$DATA_ROOT"; then
    log "mounting a tmpfs of $TMPFS_SIZE on $DATA_ROOT"
    mount -t tmpfs -o "size=$TMPFS_SIZE,mode=0710" prism-docker "$DATA_ROOT"
  fi
  log "starting dockerd (log: $LOG)"
  printf '\n==== %s starting dockerd\n' "$(date -Is)" >>"$LOG"
  # A subshell that closes every inherited descriptor above 2 (callers' pipes, our lock) and
  # starts dockerd in a new session, so the engine outlives the calling shell and holds nothing.
  (
    for fd in /proc/self/fd/*; do
      fd="${fd##*/}"
      if (( fd > 2 )); then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    exec setsid dockerd \
      --storage-driver=vfs \
      --iptables=false --ip6tables=false --ip-masq=false \
      --bridge=none \
      --data-root="$DATA_ROOT" \
      --exec-root="$EXEC_ROOT" \
      --pidfile="$PIDFILE" \
      -H "$DOCKER_HOST_URL" \
      </dev/null >>"$LOG" 2>&1
  ) &
  local spawned=$! t0=$SECONDS deadline=$(( SECONDS + START_TIMEOUT ))
  while (( SECONDS < deadline )); do
    if answers; then
      log "dockerd ready: $DOCKER_HOST_URL (server $(dk version --format '{{.Server.Version}}'), $(( SECONDS - t0 ))s)"
      return 0
    fi
    if ! kill -0 "$spawned" 2>/dev/null; then
      fail_start "dockerd exited during startup"
    fi
    sleep 0.3
  done
  fail_start "dockerd did not answer on $DOCKER_HOST_URL within ${START_TIMEOUT}s"
}

fail_start() {
  printf '[docker] ERROR: %s\n[docker] last lines of %s:\n' "$1" "$LOG" >&2
  tail -n 30 "$LOG" | sed 's/^/    /' >&2 || true
  stop_engine || true
  exit 1
}

# The OpenBao binary for the Vault image: PRISM_BAO_BIN, else where test-services.sh caches it
# (its `env` names it, so the version is pinned in one place). Empty when neither is set.
bao_bin() {
  if [[ -n "${PRISM_BAO_BIN:-}" ]]; then
    printf '%s\n' "$PRISM_BAO_BIN"
    return
  fi
  PRISM_SKIP_DOCKER=1 bash "$REPO/scripts/test-services.sh" env 2>/dev/null | sed -n 's/^export PRISM_TEST_BAO_BIN=//p'
}

cmd_up() {
  ensure_packages
  if dockerd_pid >/dev/null && answers; then
    log "dockerd already running (pid $(dockerd_pid)) on $DOCKER_HOST_URL"
  else
    start_engine
  fi
  DOCKER_HOST="$DOCKER_HOST_URL" DOCKER_BIN="$DOCKER_BIN" \
    PRISM_IMAGE_REDIS="$IMAGE_REDIS" PRISM_IMAGE_NATS="$IMAGE_NATS" PRISM_IMAGE_POSTGRES="$IMAGE_POSTGRES" \
    PRISM_IMAGE_VAULT="$IMAGE_VAULT" PRISM_BAO_BIN="$(bao_bin)" \
    "$REPO/scripts/images/build-images.sh"
}

cmd_down() {
  if dockerd_pid >/dev/null && answers; then
    local ids
    ids="$(dk ps -aq --filter label=prism.test)"
    if [[ -n "$ids" ]]; then
      log "removing prism.test containers: ${ids//$'\n'/ }"
      # shellcheck disable=SC2086
      dk rm -f $ids >/dev/null
    fi
  fi
  stop_engine
  log "down"
}

cmd_status() {
  local pid
  if pid="$(dockerd_pid)"; then
    if answers; then
      echo "docker: running (pid $pid, server $(dk version --format '{{.Server.Version}}'), $DOCKER_HOST_URL)"
      echo "docker: containers: $(dk ps -q | wc -l) running, $(dk ps -aq --filter label=prism.test | wc -l) labelled prism.test"
      local img
      for img in "$IMAGE_REDIS" "$IMAGE_NATS" "$IMAGE_POSTGRES" "$IMAGE_VAULT"; do
        if dk image inspect "$img" >/dev/null 2>&1; then echo "docker: image $img present"; else echo "docker: image $img MISSING"; fi
      done
      return 0
    fi
    echo "docker: not answering (pid $pid, $DOCKER_HOST_URL; log $LOG)"
    return 1
  fi
  local left
  left="$(our_pids)"
  if [[ -n "$left" ]]; then
    echo "docker: stopped, but processes of this engine are left (${left//$'\n'/ }); run down"
  else
    echo "docker: stopped (state $STATE)"
  fi
  return 3
}

cmd_env() {
  echo "export DOCKER_HOST=$DOCKER_HOST_URL"
  echo "export PRISM_TEST_IMAGE_REDIS=$IMAGE_REDIS"
  echo "export PRISM_TEST_IMAGE_NATS=$IMAGE_NATS"
  echo "export PRISM_TEST_IMAGE_POSTGRES=$IMAGE_POSTGRES"
  echo "export PRISM_TEST_IMAGE_VAULT=$IMAGE_VAULT"
}

# Stop and delete the engine's data-root (images included). The rootfs cache is kept.
cmd_clean() {
  cmd_down
  log "removing $DATA_ROOT"
  rm -rf "$DATA_ROOT"
}

# One up/down at a time per state dir.
lock() { mkdir -p "$STATE"; exec 9>"$STATE/.lock"; flock 9; }

case "${1:-}" in
  up) lock; cmd_up ;;
  down) lock; cmd_down ;;
  status) cmd_status || exit $? ;;
  env) cmd_env ;;
  clean) lock; cmd_clean ;;
  *) echo "usage: $0 up|down|status|env|clean" >&2; exit 2 ;;
esac
