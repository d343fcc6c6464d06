#!/usr/bin/env bash
# Starts (or stops) every service the test suite talks to, idempotently, and says what it did:
#   Redis 7, a 3-master Redis Cluster (scripts/redis-cluster.sh), Apache Kafka 4.x in KRaft mode
#   (scripts/kafka.sh), PostgreSQL on 127.0.0.1:5432 (trust auth, database `test`) for
#   @bus/outbox-postgres, and the Debian tools the tests use (kcat, promtool, redis-server, chromium, …) when missing.
#
#   bash scripts/services.sh up [redis] [postgres] [cluster] [kafka]     start what is not running (default: all)
#   bash scripts/services.sh down [redis] [postgres] [cluster] [kafka]   stop what these scripts started
#
# Which brokers the tests use, written to $BUS_SERVICES_ENV (read by vitest.config.ts):
#   REDIS_URL      use the Redis that answers there (checked with PING). Unset: the Redis answering on
#                  127.0.0.1:$BUS_REDIS_PORT [6379]; if none answers there, a redis-server of ours on that
#                  port, or on a free port when another program holds it.
#   KAFKA_BROKERS  use the Kafka that answers there (checked with a metadata request). Unset: the Kafka
#                  of scripts/kafka.sh, started on 127.0.0.1:$BUS_KAFKA_PORT [9092] (controller
#                  $BUS_KAFKA_CONTROLLER_PORT [9093]), or on free ports when another program holds them.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
ENV_FILE="${BUS_SERVICES_ENV:-$root/.cache/services.env}"
STATE_DIR="${BUS_SERVICES_DIR:-$root/.cache/services}"
HOST=127.0.0.1

say() { echo "services: $*" >&2; }
die() { echo "services: ERROR: $*" >&2; exit 1; }

need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v redis-cli >/dev/null || need_apt+=(redis-tools)
command -v kcat >/dev/null || need_apt+=(kcat)
command -v promtool >/dev/null || need_apt+=(prometheus)
command -v php >/dev/null || need_apt+=(php-cli)
command -v java >/dev/null || need_apt+=(default-jre-headless)
command -v mvn >/dev/null || need_apt+=(maven)
# The board's browser tests (packages/board) drive Debian's chromium with playwright-core.
command -v chromium >/dev/null || need_apt+=(chromium fonts-liberation)
command -v pg_ctlcluster >/dev/null || need_apt+=(postgresql)

install_tools() {
  [ ${#need_apt[@]} -eq 0 ] && return
  say "installing ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  # policy-rc.d keeps package scripts from starting daemons (prometheus would take :9090).
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >&2
  rm -f /usr/sbin/policy-rc.d
  pkill -x prometheus 2>/dev/null || true
}

port_busy() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }
free_port() {
  node -e "const s = require('net').createServer().listen(0, '$HOST', () => { console.log(s.address().port); s.close(); })"
}
# Prints the port when $1 is free, else a free one; says which (for the messages).
pick_port() { # $1 wanted port, $2 what
  if port_busy "$1"; then
    local p
    p="$(free_port)"
    say "$HOST:$1 ($2) is held by another program; using free port $p"
    echo "$p"
  else
    echo "$1"
  fi
}

# PostgreSQL for the outbox tests: nothing to do when one answers on 5432 (machines that start it);
# otherwise start the newest installed cluster (creating it if needed) with trust auth on loopback.
postgres_up() {
  if pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then return; fi
  local version
  version="$(ls /usr/lib/postgresql | sort -n | tail -1)"
  pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$version main" || pg_createcluster "$version" main >&2
  local hba="/etc/postgresql/$version/main/pg_hba.conf"
  grep -q '^host all all 127.0.0.1/32 trust' "$hba" || sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  echo "services: postgres: starting PostgreSQL $version on 127.0.0.1:5432" >&2
  pg_ctlcluster "$version" main start
  for _ in $(seq 1 100); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 0.1; done
  psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1 ||
    psql -h 127.0.0.1 -U postgres -c 'CREATE DATABASE test' >/dev/null
}

postgres_down() { :; } # a PostgreSQL is a machine service: never stopped here

set_env() { # $1 name, $2 value: kept in $ENV_FILE for the tests
  mkdir -p "$(dirname "$ENV_FILE")"
  touch "$ENV_FILE"
  grep -v "^$1=" "$ENV_FILE" >"$ENV_FILE.tmp" || true
  echo "$1=$2" >>"$ENV_FILE.tmp"
  mv "$ENV_FILE.tmp" "$ENV_FILE"
}

redis_answers() { [ "$(timeout 5 redis-cli -u "$1" ping 2>/dev/null)" = PONG ]; }

redis_up() {
  if [ -n "${REDIS_URL:-}" ]; then
    redis_answers "$REDIS_URL" || die "REDIS_URL=$REDIS_URL does not answer PING; start that Redis, or unset REDIS_URL"
    say "redis: using REDIS_URL=$REDIS_URL (answers PING)"
    set_env REDIS_URL "$REDIS_URL"
    return
  fi
  local wanted="${BUS_REDIS_PORT:-6379}" port pidfile="$STATE_DIR/redis.pid" url
  # ours from an earlier run?
  if [ -f "$STATE_DIR/redis.url" ] && redis_answers "$(cat "$STATE_DIR/redis.url")"; then
    url="$(cat "$STATE_DIR/redis.url")"
    say "redis: $url already running (started by this script, pid $(cat "$pidfile" 2>/dev/null || echo '?'))"
    set_env REDIS_URL "$url"
    return
  fi
  if redis_answers "redis://$HOST:$wanted"; then
    say "redis: using the Redis already answering on $HOST:$wanted (set REDIS_URL to use another)"
    set_env REDIS_URL "redis://$HOST:$wanted"
    return
  fi
  port="$(pick_port "$wanted" "wanted for Redis")"
  mkdir -p "$STATE_DIR/redis"
  redis-server --daemonize yes --bind "$HOST" --port "$port" --save "" --appendonly no \
    --dir "$STATE_DIR/redis" --logfile "$STATE_DIR/redis/redis.log" --pidfile "$pidfile"
  url="redis://$HOST:$port"
  for _ in $(seq 1 50); do
    if redis_answers "$url"; then
      echo "$url" >"$STATE_DIR/redis.url"
      say "redis: started redis-server on $HOST:$port (pid $(cat "$pidfile" 2>/dev/null || echo '?'), log $STATE_DIR/redis/redis.log)"
      set_env REDIS_URL "$url"
      return
    fi
    sleep 0.1
  done
  die "the redis-server started on $HOST:$port did not answer (log $STATE_DIR/redis/redis.log)"
}

redis_down() {
  local pidfile="$STATE_DIR/redis.pid" pid
  [ -f "$pidfile" ] || return 0
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    say "redis: stopped the redis-server of this script (pid $pid)"
  fi
  rm -f "$pidfile" "$STATE_DIR/redis.url"
}

kafka_answers() { timeout 15 kcat -L -b "$1" -m 5 2>/dev/null | grep -q ' brokers:'; }

kafka_up() {
  if [ -n "${KAFKA_BROKERS:-}" ]; then
    kafka_answers "$KAFKA_BROKERS" || die "KAFKA_BROKERS=$KAFKA_BROKERS does not answer a Kafka metadata request; start that Kafka, or unset KAFKA_BROKERS"
    say "kafka: using KAFKA_BROKERS=$KAFKA_BROKERS (answers metadata requests)"
    set_env KAFKA_BROKERS "$KAFKA_BROKERS"
    return
  fi
  local status bootstrap
  status="$(bash "$here/kafka.sh" status 2>/dev/null)" || true
  if grep -qE ':[0-9]+  answering$' <<<"$status"; then
    bootstrap="$(sed -n 's/^bootstrap: //p' <<<"$status")"
    say "kafka: $bootstrap already running (started by scripts/kafka.sh earlier)"
    set_env KAFKA_BROKERS "$bootstrap"
    return
  fi
  if grep -q ': running pid' <<<"$status"; then
    # Ours runs but does not answer (yet): kafka.sh start waits for it, or starts it again on its ports.
    bootstrap="$(bash "$here/kafka.sh" start)" || die "Kafka did not start (see above)"
    say "kafka: scripts/kafka.sh's Kafka on $bootstrap answers"
    set_env KAFKA_BROKERS "$bootstrap"
    return
  fi
  BUS_KAFKA_PORT="$(pick_port "${BUS_KAFKA_PORT:-9092}" 'wanted for Kafka')"
  BUS_KAFKA_CONTROLLER_PORT="$(pick_port "${BUS_KAFKA_CONTROLLER_PORT:-9093}" 'wanted for the Kafka controller')"
  export BUS_KAFKA_PORT BUS_KAFKA_CONTROLLER_PORT
  bootstrap="$(bash "$here/kafka.sh" start)" || die "Kafka did not start (see above)"
  say "kafka: started Kafka (scripts/kafka.sh) on $bootstrap, controller on $HOST:$BUS_KAFKA_CONTROLLER_PORT"
  set_env KAFKA_BROKERS "$bootstrap"
}

cluster_up() {
  [ -f "$here/redis-cluster.sh" ] || return 0
  bash "$here/redis-cluster.sh" start >&2
  say "redis cluster: $(bash "$here/redis-cluster.sh" nodes)"
}

cmd="${1:-up}"
shift || true
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(redis postgres cluster kafka)
for part in "${parts[@]}"; do
  case "$part" in redis | postgres | cluster | kafka) ;; *) die "unknown service '$part' (redis, postgres, cluster, kafka)" ;; esac
done

case "$cmd" in
  up)
    install_tools
    for part in "${parts[@]}"; do "${part}_up"; done
    say "ready; the tests read $ENV_FILE: $(tr '\n' ' ' <"$ENV_FILE")"
    ;;
  down)
    for part in "${parts[@]}"; do
      case "$part" in
        redis) redis_down ;;
        cluster) if [ -f "$here/redis-cluster.sh" ]; then bash "$here/redis-cluster.sh" stop >&2 || true; fi ;;
        kafka) bash "$here/kafka.sh" stop >&2 || true ;;
      esac
    done
    if [ ${#parts[@]} -eq 4 ]; then rm -f "$ENV_FILE"; fi
    ;;
  *)
    echo "usage: $0 up|down [redis] [postgres] [cluster] [kafka]" >&2
    exit 2
    ;;
esac
