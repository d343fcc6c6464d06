#!/usr/bin/env bash
# Starts (or stops) every service the test suite talks to, idempotently:
#   Redis 7 on 127.0.0.1:6379, a 3-master Redis Cluster (scripts/redis-cluster.sh),
#   Apache Kafka 4.x in KRaft mode on 127.0.0.1:9092 (scripts/kafka.sh),
#   PostgreSQL on 127.0.0.1:5432 (trust auth on loopback, database `test`) for @bus/outbox-postgres,
# and installs the Debian tools the tests use (kcat, prometheus/promtool, redis-server, chromium) when missing.
#
#   bash scripts/services.sh up     start what is not running
#   bash scripts/services.sh down   stop what these scripts started (never the shared Redis on 6379)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

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
  echo "services: installing ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  # policy-rc.d keeps package scripts from starting daemons (prometheus would take :9090).
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >&2
  rm -f /usr/sbin/policy-rc.d
  pkill -x prometheus 2>/dev/null || true
}

redis_up() {
  if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then return; fi
  echo "services: starting redis-server on 127.0.0.1:6379" >&2
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  for _ in $(seq 1 50); do redis-cli -p 6379 ping >/dev/null 2>&1 && return; sleep 0.1; done
  echo "services: redis did not answer on 6379" >&2
  exit 1
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
  echo "services: starting PostgreSQL $version on 127.0.0.1:5432" >&2
  pg_ctlcluster "$version" main start
  for _ in $(seq 1 100); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 0.1; done
  psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1 ||
    psql -h 127.0.0.1 -U postgres -c 'CREATE DATABASE test' >/dev/null
}

case "${1:-up}" in
  up)
    install_tools
    redis_up
    postgres_up
    if [ -f "$here/redis-cluster.sh" ]; then bash "$here/redis-cluster.sh" start >&2; fi
    bash "$here/kafka.sh" start >/dev/null
    echo "services: redis 127.0.0.1:6379, postgres 127.0.0.1:5432, kafka 127.0.0.1:9092 ready" >&2
    ;;
  down)
    if [ -f "$here/redis-cluster.sh" ]; then bash "$here/redis-cluster.sh" stop >&2 || true; fi
    bash "$here/kafka.sh" stop >&2 || true
    ;;
  *)
    echo "usage: $0 up|down" >&2
    exit 2
    ;;
esac
