#!/usr/bin/env bash
# A local Redis Cluster of 3 masters (no replicas) made of plain redis-server processes on loopback
# ports, for the @bus/redis-stream tests. No Docker. Idempotent, every wait bounded.
# Run: scripts/redis-cluster.sh --help
set -euo pipefail

HOST="${BUS_REDIS_CLUSTER_HOST:-127.0.0.1}"
PORT_BASE="${BUS_REDIS_CLUSTER_PORT_BASE:-7001}"
NODES="${BUS_REDIS_CLUSTER_NODES:-3}"
REPLICAS="${BUS_REDIS_CLUSTER_REPLICAS:-0}"
NODE_TIMEOUT="${BUS_REDIS_CLUSTER_NODE_TIMEOUT:-5000}"
BUS_OFFSET="${BUS_REDIS_CLUSTER_BUS_OFFSET:-10000}"
RUN_DIR="${BUS_REDIS_CLUSTER_DIR:-${TMPDIR:-/tmp}/bus-redis-cluster}"
START_TIMEOUT="${BUS_REDIS_CLUSTER_START_TIMEOUT:-30}"
STOP_TIMEOUT="${BUS_REDIS_CLUSTER_STOP_TIMEOUT:-10}"

usage() {
  cat <<EOF
Usage: scripts/redis-cluster.sh <command>

Runs a Redis Cluster of $NODES masters with $REPLICAS replica(s) each on $HOST:$PORT_BASE.. (no persistence),
data and logs in $RUN_DIR.

Commands:
  start     start the nodes, create the cluster and wait until every node reports
            cluster_state:ok. Does nothing when the cluster already runs and is healthy;
            a half-started or broken cluster is stopped and created again, empty.
  stop      stop every node (SHUTDOWN NOSAVE, then SIGKILL after ${STOP_TIMEOUT}s) and delete $RUN_DIR
  restart   stop + start
  status    print each node's state; exit 0 only when the cluster is healthy
  nodes     print the nodes as host:port, comma-separated (for BUS_REDIS_CLUSTER_NODES-style config)
  kill9 <port>   SIGKILL one node (fault tests)
  revive <port>  start a killed node again (it rejoins with its nodes.conf, as a replica after a failover)
  help      this text

Environment (defaults in brackets):
  BUS_REDIS_CLUSTER_HOST           listen address [127.0.0.1]
  BUS_REDIS_CLUSTER_PORT_BASE      port of the first node; node i listens on base+i-1 [7001]
  BUS_REDIS_CLUSTER_NODES          number of masters (>= 3) [3]
  BUS_REDIS_CLUSTER_REPLICAS       replicas per master; nodes listen on base .. base+masters*(1+replicas)-1 [0]
  BUS_REDIS_CLUSTER_BUS_OFFSET     a node's cluster bus port is its port + this [10000]
  BUS_REDIS_CLUSTER_NODE_TIMEOUT   cluster-node-timeout in ms (a dead master fails over after about this) [5000]
  BUS_REDIS_CLUSTER_DIR            data, configs, logs, pid files [\$TMPDIR/bus-redis-cluster]
  BUS_REDIS_CLUSTER_START_TIMEOUT  seconds to wait for the cluster to become healthy [30]
  BUS_REDIS_CLUSTER_STOP_TIMEOUT   seconds to wait for a node to exit before SIGKILL [10]
EOF
}

log() { echo "[redis-cluster.sh] $*" >&2; }
die() { echo "[redis-cluster.sh] ERROR: $*" >&2; exit 1; }

command -v redis-server >/dev/null 2>&1 || die "redis-server not found (apt-get install redis-server)"
command -v redis-cli >/dev/null 2>&1 || die "redis-cli not found (apt-get install redis-tools)"
[[ "$NODES" =~ ^[0-9]+$ ]] && [ "$NODES" -ge 3 ] || die "BUS_REDIS_CLUSTER_NODES must be an integer >= 3, got '$NODES'"

[[ "$REPLICAS" =~ ^[0-9]+$ ]] || die "BUS_REDIS_CLUSTER_REPLICAS must be an integer >= 0, got '$REPLICAS'"
TOTAL=$((NODES * (1 + REPLICAS)))
ports() { local i; for ((i = 0; i < TOTAL; i++)); do echo $((PORT_BASE + i)); done; }
cli() { local port=$1; shift; timeout 5 redis-cli -h "$HOST" -p "$port" "$@" 2>/dev/null; }
answers() { [ "$(cli "$1" PING)" = "PONG" ]; }
node_ok() { cli "$1" CLUSTER INFO | tr -d '\r' | grep -q '^cluster_state:ok$'; }
known_nodes() { cli "$1" CLUSTER INFO | tr -d '\r' | sed -n 's/^cluster_known_nodes://p'; }

healthy() {
  local port
  for port in $(ports); do
    answers "$port" && node_ok "$port" || return 1
    [ "$(known_nodes "$port")" = "$TOTAL" ] || return 1
  done
}

pid_of() { # pid of our node on $1, empty when it does not run
  local file="$RUN_DIR/$1/redis.pid" pid
  [ -f "$file" ] || return 0
  pid=$(cat "$file" 2>/dev/null || true)
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
}

stop_node() {
  local port=$1 pid waited=0
  pid=$(pid_of "$port")
  if [ -z "$pid" ]; then
    # Not started by us (or the pid file is gone): only stop it if it is a cluster node of our dir.
    if answers "$port" && [ "$(cli "$port" CONFIG GET dir | tail -1)" = "$RUN_DIR/$port" ]; then
      cli "$port" SHUTDOWN NOSAVE >/dev/null || true
    fi
    return 0
  fi
  cli "$port" SHUTDOWN NOSAVE >/dev/null || kill "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$waited" -ge $((STOP_TIMEOUT * 10)) ]; then
      log "node $port (pid $pid) did not exit in ${STOP_TIMEOUT}s; SIGKILL"
      kill -9 "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
}

stop() {
  local port
  for port in $(ports); do stop_node "$port"; done
  rm -rf "$RUN_DIR"
  log "stopped"
}

start_node() {
  local port=$1 dir="$RUN_DIR/$1"
  mkdir -p "$dir"
  if answers "$port"; then die "port $port is taken by another process (not our cluster node)"; fi
  redis-server --port "$port" --bind "$HOST" --protected-mode no \
    --cluster-enabled yes --cluster-config-file "$dir/nodes.conf" --cluster-node-timeout "$NODE_TIMEOUT" --cluster-port $((port + BUS_OFFSET)) \
    --dir "$dir" --save "" --appendonly no \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" >/dev/null
}

wait_until() { # $1 = seconds, rest = command
  local seconds=$1 tries=0
  shift
  until "$@"; do
    tries=$((tries + 1))
    [ "$tries" -lt $((seconds * 10)) ] || return 1
    sleep 0.1
  done
}

all_answer() { local port; for port in $(ports); do answers "$port" || return 1; done; }

start() {
  if healthy; then
    log "already running and healthy: $(nodes)"
    return 0
  fi
  local port any=0
  for port in $(ports); do [ -n "$(pid_of "$port")" ] && any=1; done
  if [ "$any" = 1 ]; then
    log "found a partial or unhealthy cluster; recreating it"
    stop
  elif [ -d "$RUN_DIR" ]; then
    # Files of a cluster whose processes are gone (killed, machine restarted): a node started on its old
    # nodes.conf knows the old cluster, and `redis-cli --cluster create` refuses it ("is not empty").
    log "removing the files of a cluster that no longer runs ($RUN_DIR)"
    stop
  fi
  mkdir -p "$RUN_DIR"
  # A start that fails half-way leaves nothing running behind it.
  trap 'log "start failed; stopping the nodes started so far"; stop' EXIT
  for port in $(ports); do start_node "$port"; done
  wait_until "$START_TIMEOUT" all_answer || die "nodes did not answer within ${START_TIMEOUT}s (logs in $RUN_DIR/*/redis.log)"
  local addresses=()
  for port in $(ports); do addresses+=("$HOST:$port"); done
  timeout "$START_TIMEOUT" redis-cli --cluster create "${addresses[@]}" --cluster-replicas "$REPLICAS" --cluster-yes >"$RUN_DIR/create.log" 2>&1 ||
    die "redis-cli --cluster create failed: $(tail -5 "$RUN_DIR/create.log")"
  wait_until "$START_TIMEOUT" healthy || die "cluster not healthy within ${START_TIMEOUT}s (see $RUN_DIR)"
  trap - EXIT
  log "cluster ready: $(nodes)"
}

status() {
  local port rc=0
  for port in $(ports); do
    if answers "$port"; then
      echo "$HOST:$port pid=$(pid_of "$port") $(cli "$port" CLUSTER INFO | tr -d '\r' | grep -E '^cluster_(state|known_nodes|slots_assigned):' | tr '\n' ' ')"
    else
      echo "$HOST:$port down"
      rc=1
    fi
  done
  healthy || rc=1
  return $rc
}

nodes() {
  local out=() port
  for port in $(ports); do out+=("$HOST:$port"); done
  (IFS=,; echo "${out[*]}")
}

case "${1:-help}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) status ;;
  nodes) nodes ;;
  kill9) pid=$(pid_of "${2:?port}"); [ -n "$pid" ] && kill -9 "$pid" ;;
  revive) start_node "${2:?port}" ;;
  help | --help | -h) usage ;;
  *) usage; exit 2 ;;
esac
