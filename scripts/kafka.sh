#!/usr/bin/env bash
# Run a real Apache Kafka 4.x broker (KRaft, combined broker+controller) for
# local development and tests, from the jars on Maven Central. No Docker.
# See scripts/kafka/README.md, or run: scripts/kafka.sh --help
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
POM="$SCRIPT_DIR/kafka/pom.xml"

KAFKA_VERSION="${BUS_KAFKA_VERSION:-4.4.0}"
KAFKA_HOME_DIR="${BUS_KAFKA_HOME:-${HOME:-/tmp}/.cache/bus-kafka}"
LIBS_DIR="${BUS_KAFKA_LIBS:-$KAFKA_HOME_DIR/libs-$KAFKA_VERSION}"
RUN_DIR="${BUS_KAFKA_RUN_DIR:-$KAFKA_HOME_DIR/run}"
HOST="${BUS_KAFKA_HOST:-127.0.0.1}"
# single node (start / start 1)
SINGLE_PORT="${BUS_KAFKA_PORT:-9092}"
SINGLE_CONTROLLER_PORT="${BUS_KAFKA_CONTROLLER_PORT:-9093}"
# A single node started on other ports remembers them in $RUN_DIR/ports, so that status, stop and
# bootstrap find it without the variables.
if [ -z "${BUS_KAFKA_PORT:-}${BUS_KAFKA_CONTROLLER_PORT:-}" ] && [ -f "$RUN_DIR/ports" ]; then
  read -r SINGLE_PORT SINGLE_CONTROLLER_PORT <"$RUN_DIR/ports"
fi
# cluster (start N, N>1): node i listens on BASE+i-1
CLUSTER_PORT_BASE="${BUS_KAFKA_CLUSTER_PORT_BASE:-19092}"
CLUSTER_CONTROLLER_PORT_BASE="${BUS_KAFKA_CLUSTER_CONTROLLER_PORT_BASE:-19192}"
HEAP_OPTS="${BUS_KAFKA_HEAP_OPTS:--Xmx512m -Xms256m}"
JVM_OPTS="${BUS_KAFKA_JVM_OPTS:--XX:+UseG1GC -XX:MaxGCPauseMillis=20}"
START_TIMEOUT="${BUS_KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${BUS_KAFKA_STOP_TIMEOUT:-30}"
LOG_LEVEL="${BUS_KAFKA_LOG_LEVEL:-INFO}"
# optional secured listeners (single node only); off unless their port is set
SASL_PORT="${BUS_KAFKA_SASL_PORT:-}"
SASL_USERS="${BUS_KAFKA_SASL_USERS:-bus:bus-secret}"
SASL_SCRAM="${BUS_KAFKA_SASL_SCRAM:-}"
SSL_PORT="${BUS_KAFKA_SSL_PORT:-}"
SSL_KEYSTORE="${BUS_KAFKA_SSL_KEYSTORE:-}"

usage() {
  cat <<EOF
Usage: scripts/kafka.sh <command> [args]

Runs Apache Kafka $KAFKA_VERSION (KRaft, each node = broker+controller) on $HOST.

Commands:
  fetch              download the broker jars with Maven into
                     $LIBS_DIR (skipped when already there)
  start [N]          start N nodes (default 1) with FRESH data, format storage and
                     wait until every broker answers metadata requests.
                     N=1: client port $SINGLE_PORT, controller port $SINGLE_CONTROLLER_PORT
                     N>1: node i on client port $CLUSTER_PORT_BASE+i-1, controller $CLUSTER_CONTROLLER_PORT_BASE+i-1
                     Does nothing if N nodes are already running and answering.
  stop [ID]          stop all nodes (or node ID): SIGTERM, wait ${STOP_TIMEOUT}s, then SIGKILL
  stop-node ID       same as: stop ID (clean shutdown, data kept)
  kill-node ID       SIGKILL node ID (crash; data kept)
  start-node ID      start node ID again KEEPING its data, wait until it answers
  restart-node ID    stop-node ID + start-node ID
  status             show nodes, pids, ports and whether they answer (exit 1 if none runs)
  bootstrap          print the bootstrap servers of the running topology (e.g. 127.0.0.1:9092)
  logs [ID] [LINES]  tail the log of node ID (default 1)
  help, --help       this text

Environment (defaults in brackets):
  BUS_KAFKA_VERSION        Kafka version from Maven Central [$KAFKA_VERSION]
  BUS_KAFKA_HOME           cache dir [\$HOME/.cache/bus-kafka]
  BUS_KAFKA_LIBS           jar dir [\$BUS_KAFKA_HOME/libs-\$BUS_KAFKA_VERSION]
  BUS_KAFKA_RUN_DIR        configs, data, logs, pids [\$BUS_KAFKA_HOME/run]
  BUS_KAFKA_HOST           listen/advertised address [127.0.0.1]
  BUS_KAFKA_PORT           single-node client port [9092]; a node started on other ports
                           remembers them (\$BUS_KAFKA_RUN_DIR/ports) for later commands
  BUS_KAFKA_CONTROLLER_PORT  single-node controller port [9093]
  BUS_KAFKA_CLUSTER_PORT_BASE             cluster client ports from [19092]
  BUS_KAFKA_CLUSTER_CONTROLLER_PORT_BASE  cluster controller ports from [19192]
  BUS_KAFKA_HEAP_OPTS      JVM heap [-Xmx512m -Xms256m]
  BUS_KAFKA_JVM_OPTS       GC/JIT options [-XX:+UseG1GC -XX:MaxGCPauseMillis=20]
                           (-XX:+UseSerialGC -XX:TieredStopAtLevel=1 starts faster)
  BUS_KAFKA_START_TIMEOUT  seconds to wait for a broker [90]
  BUS_KAFKA_STOP_TIMEOUT   seconds before SIGKILL on stop [30]
  BUS_KAFKA_LOG_LEVEL      root log level of the broker logs [INFO]
  BUS_KAFKA_NO_KCAT        set to 1 to check readiness with the Kafka CLI instead of kcat []
  BUS_KAFKA_MVN_OPTS       extra mvn arguments for fetch (e.g. -Dmaven.repo.local=DIR) []
  BUS_KAFKA_EXTRA_PROPS    extra server.properties lines ("k=v" separated by newlines or ';')
  Secured listeners, single node only (the PLAINTEXT listener stays for the broker itself):
  BUS_KAFKA_SASL_PORT      adds a SASL_PLAINTEXT listener with SASL/PLAIN []
  BUS_KAFKA_SASL_USERS     its users, "name:password,..." [bus:bus-secret]
  BUS_KAFKA_SASL_SCRAM     set to 1 to also offer SCRAM-SHA-256 and SCRAM-SHA-512 for these
                           users (stored at format time) []
  BUS_KAFKA_SSL_PORT       adds an SSL listener (needs BUS_KAFKA_SSL_KEYSTORE) []
  BUS_KAFKA_SSL_KEYSTORE   PEM file holding the broker's unencrypted private key and certificate chain []
EOF
}

log() { echo "[kafka.sh] $*" >&2; }
die() { echo "[kafka.sh] ERROR: $*" >&2; exit 1; }

is_uint() { [[ "${1:-}" =~ ^[0-9]+$ ]]; }

maybe_apt_install() { # $1 = command, $2 = debian package
  command -v "$1" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "'$1' not found; installing Debian package $2"
    # bounded: apt-get update + install, each at most 5 minutes
    timeout 300 apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq "$2" >/dev/null 2>&1 || true
  fi
  command -v "$1" >/dev/null 2>&1
}

need_java() {
  maybe_apt_install java openjdk-17-jre-headless || die "java (17+) not found"
  local v
  v="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)"
  if is_uint "$v" && [ "$v" -lt 17 ]; then die "Kafka 4.x needs Java 17+, found $v"; fi
}

# ---------------------------------------------------------------- fetch
cmd_fetch() {
  case "$KAFKA_VERSION" in 4.*) ;; *) log "WARNING: only Kafka 4.x is supported (BUS_KAFKA_VERSION=$KAFKA_VERSION)" ;; esac
  if [ -f "$LIBS_DIR/.complete" ]; then
    log "jars for Kafka $KAFKA_VERSION already in $LIBS_DIR"
    return 0
  fi
  maybe_apt_install mvn maven || die "mvn not found (apt-get install maven)"
  mkdir -p "$(dirname "$LIBS_DIR")" "$KAFKA_HOME_DIR"
  # one fetch at a time (e.g. parallel test jobs)
  exec 8>"$KAFKA_HOME_DIR/.fetch.lock"
  flock -w 900 8 || die "timed out waiting for another fetch ($KAFKA_HOME_DIR/.fetch.lock)"
  if [ -f "$LIBS_DIR/.complete" ]; then flock -u 8; return 0; fi
  local tmp="$LIBS_DIR.tmp.$$"
  rm -rf "$tmp" "$tmp.log"
  log "fetching Kafka $KAFKA_VERSION jars from Maven Central into $LIBS_DIR"
  # shellcheck disable=SC2086
  if ! timeout 900 mvn -B -Dstyle.color=never ${BUS_KAFKA_MVN_OPTS:-} -f "$POM" -Dkafka.version="$KAFKA_VERSION" \
      dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" >"$tmp.log" 2>&1; then
    grep -E 'ERROR|BUILD' "$tmp.log" | tail -n 20 >&2 || true
    rm -rf "$tmp" "$tmp.log"
    die "mvn could not resolve org.apache.kafka:kafka_2.13:$KAFKA_VERSION (is it a released 4.x version?)"
  fi
  rm -f "$tmp.log"
  [ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ] || { rm -rf "$tmp"; die "kafka_2.13-$KAFKA_VERSION.jar missing after fetch"; }
  echo "$KAFKA_VERSION" >"$tmp/.complete"
  rm -rf "$LIBS_DIR"
  mv "$tmp" "$LIBS_DIR"
  flock -u 8
  log "fetched $(ls "$LIBS_DIR"/*.jar | wc -l) jars ($(du -sh "$LIBS_DIR" | cut -f1))"
}

# ---------------------------------------------------------------- topology
# $RUN_DIR/topology holds N of the last `start`; nodes are 1..N.
topology() { [ -f "$RUN_DIR/topology" ] && cat "$RUN_DIR/topology" || echo 0; }

client_port() { # $1 id, $2 N
  if [ "$2" -le 1 ]; then echo "$SINGLE_PORT"; else echo $((CLUSTER_PORT_BASE + $1 - 1)); fi
}
controller_port() {
  if [ "$2" -le 1 ]; then echo "$SINGLE_CONTROLLER_PORT"; else echo $((CLUSTER_CONTROLLER_PORT_BASE + $1 - 1)); fi
}
node_dir() { echo "$RUN_DIR/node-$1"; }
bootstrap_of() { # $1 N
  local n="$1" i out=""
  for ((i = 1; i <= n; i++)); do out="${out:+$out,}$HOST:$(client_port "$i" "$n")"; done
  echo "$out"
}

node_pid() { # prints pid if node $1 runs (pid file + live java process of that node)
  local f pid
  f="$(node_dir "$1")/kafka.pid"
  [ -f "$f" ] || return 1
  pid="$(cat "$f" 2>/dev/null || true)"
  is_uint "$pid" || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "kafka.Kafka $(node_dir "$1")/server.properties" || return 1
  echo "$pid"
}

have_kcat() { [ -z "${BUS_KAFKA_NO_KCAT:-}" ] && { command -v kcat >/dev/null 2>&1 || command -v kafkacat >/dev/null 2>&1; }; }
kcat_bin() { command -v kcat 2>/dev/null || command -v kafkacat; }

# does the broker at host:port answer a metadata request (listing >= $2 brokers)?
answers() { # $1 host:port, $2 expected broker count (optional)
  local out n
  if have_kcat; then
    out="$(timeout 10 "$(kcat_bin)" -L -b "$1" -m 5 2>/dev/null)" || return 1
    n="$(sed -n 's/^ *\([0-9][0-9]*\) brokers:.*/\1/p' <<<"$out" | head -1)"
    is_uint "$n" || return 1
    [ "$n" -ge "${2:-1}" ]
  else
    # fallback without kcat: TCP connect + the Kafka CLI (slower: starts a JVM)
    (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null || return 1
    out="$(timeout 30 java -Xmx128m -cp "$LIBS_DIR/*" -Dlog4j2.configurationFile="$RUN_DIR/log4j2-tools.properties" \
      org.apache.kafka.tools.BrokerApiVersionsCommand --bootstrap-server "$1" 2>/dev/null)" || return 1
    n="$(grep -c '(id: ' <<<"$out" || true)"
    [ "$n" -ge "${2:-1}" ]
  fi
}

write_log4j() {
  cat >"$RUN_DIR/log4j2.properties" <<EOF
status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = $LOG_LEVEL
rootLogger.appenderRef.out.ref = OUT
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.zk.name = org.apache.kafka.common.utils.AppInfoParser
logger.zk.level = WARN
EOF
  cat >"$RUN_DIR/log4j2-tools.properties" <<EOF
status = error
appender.err.type = Console
appender.err.name = ERR
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = %p %m%n
rootLogger.level = WARN
rootLogger.appenderRef.err.ref = ERR
EOF
}

write_server_properties() { # $1 id, $2 N
  local id="$1" n="$2" dir voters="" i rf
  dir="$(node_dir "$id")"
  for ((i = 1; i <= n; i++)); do voters="${voters:+$voters,}$i@$HOST:$(controller_port "$i" "$n")"; done
  rf=$((n < 3 ? n : 3))
  mkdir -p "$dir"
  cat >"$dir/server.properties" <<EOF
# generated by scripts/kafka.sh (node $id of $n) -- overwritten by 'start'
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=PLAINTEXT://$HOST:$(client_port "$id" "$n"),CONTROLLER://$HOST:$(controller_port "$id" "$n")$(secured_listeners "$n")
advertised.listeners=PLAINTEXT://$HOST:$(client_port "$id" "$n")$(secured_listeners "$n")
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
# test-friendly defaults
auto.create.topics.enable=true
delete.topic.enable=true
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=1
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=5
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=5
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=6000
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.check.interval.ms=60000
EOF
  secured_properties "$n" >>"$dir/server.properties"
  if [ -n "${BUS_KAFKA_EXTRA_PROPS:-}" ]; then
    printf '%s\n' "# BUS_KAFKA_EXTRA_PROPS" >>"$dir/server.properties"
    tr ';' '\n' <<<"$BUS_KAFKA_EXTRA_PROPS" | sed 's/^ *//' | grep -v '^$' >>"$dir/server.properties"
  fi
}

# ---------------------------------------------------------------- secured listeners (single node)
secured_listeners() { # $1 N; ",SASL_PLAINTEXT://..,SSL://.." for the listeners/advertised lines
  [ "$1" -le 1 ] || return 0
  [ -n "$SASL_PORT" ] && printf ',SASL_PLAINTEXT://%s:%s' "$HOST" "$SASL_PORT"
  [ -n "$SSL_PORT" ] && printf ',SSL://%s:%s' "$HOST" "$SSL_PORT"
  return 0
}

secured_properties() { # $1 N
  [ "$1" -le 1 ] || return 0
  local plain="" pair pairs
  if [ -n "$SASL_PORT" ]; then
    IFS=',' read -ra pairs <<<"$SASL_USERS"
    for pair in "${pairs[@]}"; do plain="$plain user_${pair%%:*}=\"${pair#*:}\""; done
    cat <<EOF
# SASL_PLAINTEXT listener (BUS_KAFKA_SASL_PORT): PLAIN, users from BUS_KAFKA_SASL_USERS
sasl.enabled.mechanisms=PLAIN${SASL_SCRAM:+,SCRAM-SHA-256,SCRAM-SHA-512}
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required$plain;
EOF
    if [ -n "$SASL_SCRAM" ]; then
      cat <<EOF
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
EOF
    fi
  fi
  if [ -n "$SSL_PORT" ]; then
    [ -f "$SSL_KEYSTORE" ] || die "BUS_KAFKA_SSL_PORT needs BUS_KAFKA_SSL_KEYSTORE (a PEM file with key and certificate chain)"
    cat <<EOF
# SSL listener (BUS_KAFKA_SSL_PORT)
listener.name.ssl.ssl.keystore.type=PEM
listener.name.ssl.ssl.keystore.location=$SSL_KEYSTORE
listener.name.ssl.ssl.client.auth=none
EOF
  fi
}

scram_args() { # --add-scram arguments (one per line) for the SASL users: KRaft stores them at format
  [ -n "$SASL_PORT" ] && [ -n "$SASL_SCRAM" ] && [ "$(topology)" -le 1 ] || return 0
  local pair pairs mechanism
  IFS=',' read -ra pairs <<<"$SASL_USERS"
  for pair in "${pairs[@]}"; do
    for mechanism in SCRAM-SHA-256 SCRAM-SHA-512; do
      printf '%s\n' --add-scram "$mechanism=[name=${pair%%:*},password=${pair#*:}]"
    done
  done
}

cluster_id() {
  local f="$KAFKA_HOME_DIR/cluster.id" id
  if [ ! -s "$f" ]; then
    # a Kafka Uuid: 16 random bytes, URL-safe base64 without padding, not starting with '-'
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
      [ "${id:0:1}" != "-" ] && break
    done
    mkdir -p "$KAFKA_HOME_DIR"
    echo "$id" >"$f"
  fi
  cat "$f"
}

format_node() { # $1 id
  local dir out scram=()
  dir="$(node_dir "$1")"
  mapfile -t scram < <(scram_args)
  if ! out="$(timeout 120 java -Xmx256m -cp "$LIBS_DIR/*" -Dlog4j2.configurationFile="$RUN_DIR/log4j2-tools.properties" \
      kafka.tools.StorageTool format --ignore-formatted -t "$(cluster_id)" -c "$dir/server.properties" "${scram[@]}" 2>&1)"; then
    echo "$out" >&2
    die "formatting storage of node $1 failed"
  fi
}

launch_node() { # $1 id
  local dir pid
  dir="$(node_dir "$1")"
  [ -f "$dir/data/meta.properties" ] || die "node $1 has no formatted storage; run: $0 start"
  {
    echo
    echo "===== $(date '+%F %T') starting node $1 (Kafka $KAFKA_VERSION) ====="
  } >>"$dir/kafka.log"
  # setsid: own session, so the broker survives the shell/test runner that started it
  # shellcheck disable=SC2086
  setsid java $HEAP_OPTS $JVM_OPTS -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$RUN_DIR/log4j2.properties" \
    -Dkafka.logs.dir="$dir" \
    -cp "$LIBS_DIR/*" kafka.Kafka "$dir/server.properties" \
    </dev/null >>"$dir/kafka.log" 2>&1 8>&- 9>&- &
  pid=$!
  echo "$pid" >"$dir/kafka.pid"
  log "node $1 started (pid $pid, $HOST:$(client_port "$1" "$(topology)"), log $dir/kafka.log)"
}

fail_with_log() { # $1 id, $2 message
  local dir
  dir="$(node_dir "$1")"
  echo "[kafka.sh] ERROR: $2" >&2
  echo "----- last 40 lines of $dir/kafka.log -----" >&2
  tail -n 40 "$dir/kafka.log" >&2 2>/dev/null || true
  echo "-------------------------------------------" >&2
}

wait_nodes() { # $@ ids; waits until each answers metadata, bounded by START_TIMEOUT
  local n deadline id pending expect j
  n="$(topology)"
  deadline=$((SECONDS + START_TIMEOUT))
  pending=("$@")
  while [ "${#pending[@]}" -gt 0 ]; do
    local still=()
    for id in "${pending[@]}"; do
      if ! node_pid "$id" >/dev/null; then
        fail_with_log "$id" "node $id exited during startup"
        return 1
      fi
      # in a cluster every node must see all running brokers
      expect=0
      for ((j = 1; j <= n; j++)); do node_pid "$j" >/dev/null && expect=$((expect + 1)); done
      if answers "$HOST:$(client_port "$id" "$n")" "$expect"; then
        log "node $id answers on $HOST:$(client_port "$id" "$n")"
      else
        still+=("$id")
      fi
    done
    pending=("${still[@]+"${still[@]}"}")
    [ "${#pending[@]}" -eq 0 ] && break
    if [ "$SECONDS" -ge "$deadline" ]; then
      for id in "${pending[@]}"; do
        fail_with_log "$id" "node $id did not answer metadata requests within ${START_TIMEOUT}s"
      done
      return 1
    fi
    sleep 0.5
  done
}

port_busy() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# ---------------------------------------------------------------- commands
cmd_start() {
  local n="${1:-1}" i all_ok=1 cur
  is_uint "$n" && [ "$n" -ge 1 ] && [ "$n" -le 9 ] || die "start: N must be 1..9, got '$n'"
  mkdir -p "$RUN_DIR"
  cur="$(topology)"
  if [ "$cur" = "$n" ]; then
    for ((i = 1; i <= n; i++)); do
      node_pid "$i" >/dev/null && answers "$HOST:$(client_port "$i" "$n")" "$n" || { all_ok=0; break; }
    done
    if [ "$all_ok" = 1 ]; then
      log "already running: $n node(s), bootstrap $(bootstrap_of "$n")"
      bootstrap_of "$n"
      return 0
    fi
  fi
  # anything else of ours still running is stopped first
  cmd_stop_all quiet
  cmd_fetch
  need_java
  have_kcat || { [ -z "${BUS_KAFKA_NO_KCAT:-}" ] && maybe_apt_install kcat kcat; } || log "kcat not available; readiness check falls back to the Kafka CLI (slower)"
  for ((i = 1; i <= n; i++)); do
    for p in "$(client_port "$i" "$n")" "$(controller_port "$i" "$n")"; do
      port_busy "$p" && die "port $HOST:$p is already in use by another process (set BUS_KAFKA_*PORT*)"
    done
  done
  echo "$n" >"$RUN_DIR/topology"
  if [ "$n" = 1 ]; then echo "$SINGLE_PORT $SINGLE_CONTROLLER_PORT" >"$RUN_DIR/ports"; else rm -f "$RUN_DIR/ports"; fi
  write_log4j
  # fresh data every start
  local pids=()
  for ((i = 1; i <= n; i++)); do
    rm -rf "$(node_dir "$i")/data" "$(node_dir "$i")/kafka.log" "$(node_dir "$i")/kafka.pid"
    write_server_properties "$i" "$n"
    format_node "$i" & pids+=($!)
  done
  local rc=0
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  [ "$rc" = 0 ] || die "formatting storage failed"
  for ((i = 1; i <= n; i++)); do launch_node "$i"; done
  local ids=()
  for ((i = 1; i <= n; i++)); do ids+=("$i"); done
  if ! wait_nodes "${ids[@]}"; then
    cmd_stop_all quiet
    die "Kafka did not start (see above)"
  fi
  log "Kafka $KAFKA_VERSION ready: $n node(s), bootstrap $(bootstrap_of "$n")"
  bootstrap_of "$n"
}

stop_pids() { # $@ "id:pid" pairs; SIGTERM all, wait, SIGKILL leftovers
  local pair id pid deadline alive
  for pair in "$@"; do kill -TERM "${pair#*:}" 2>/dev/null || true; done
  deadline=$((SECONDS + STOP_TIMEOUT))
  while :; do
    alive=0
    for pair in "$@"; do kill -0 "${pair#*:}" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    if [ "$SECONDS" -ge "$deadline" ]; then
      for pair in "$@"; do
        id="${pair%%:*}" pid="${pair#*:}"
        if kill -0 "$pid" 2>/dev/null; then
          log "node $id (pid $pid) did not stop within ${STOP_TIMEOUT}s; SIGKILL"
          kill -KILL "$pid" 2>/dev/null || true
        fi
      done
      sleep 0.5
      break
    fi
    sleep 0.2
  done
  for pair in "$@"; do
    id="${pair%%:*}"
    rm -f "$(node_dir "$id")/kafka.pid"
    log "node $id stopped"
  done
}

cmd_stop_all() { # $1=quiet: no message when nothing runs
  local pairs=() d id pid
  for d in "$RUN_DIR"/node-*; do
    [ -d "$d" ] || continue
    id="${d##*/node-}"
    if pid="$(node_pid "$id")"; then pairs+=("$id:$pid"); else rm -f "$d/kafka.pid"; fi
  done
  if [ "${#pairs[@]}" -eq 0 ]; then
    [ "${1:-}" = quiet ] || log "no Kafka node running"
    return 0
  fi
  stop_pids "${pairs[@]}"
}

cmd_stop() {
  if [ -z "${1:-}" ]; then cmd_stop_all; return; fi
  is_uint "$1" || die "stop: node id must be a number"
  local pid
  if pid="$(node_pid "$1")"; then stop_pids "$1:$pid"; else rm -f "$(node_dir "$1")/kafka.pid"; log "node $1 not running"; fi
}

cmd_kill_node() {
  is_uint "${1:-}" || die "kill-node: node id required"
  local pid
  if pid="$(node_pid "$1")"; then
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    rm -f "$(node_dir "$1")/kafka.pid"
    log "node $1 killed (SIGKILL, pid $pid)"
  else
    log "node $1 not running"
  fi
}

cmd_start_node() {
  is_uint "${1:-}" || die "start-node: node id required"
  local id="$1" n
  n="$(topology)"
  [ "$id" -ge 1 ] && [ "$id" -le "$n" ] || die "start-node: node $id is not part of the last 'start' ($n node(s))"
  [ -f "$LIBS_DIR/.complete" ] || die "jars missing; run: $0 fetch"
  if node_pid "$id" >/dev/null; then
    log "node $id already running"
  else
    local p
    for p in "$(client_port "$id" "$n")" "$(controller_port "$id" "$n")"; do
      port_busy "$p" && die "port $HOST:$p is already in use"
    done
    launch_node "$id"
  fi
  wait_nodes "$id" || { cmd_stop "$id"; die "node $id did not come back"; }
}

cmd_status() {
  local n i pid any=0 st
  n="$(topology)"
  echo "Kafka $KAFKA_VERSION  libs: $LIBS_DIR $([ -f "$LIBS_DIR/.complete" ] && echo '(fetched)' || echo '(not fetched)')"
  echo "run dir: $RUN_DIR  topology: $n node(s)"
  for ((i = 1; i <= n; i++)); do
    if pid="$(node_pid "$i")"; then
      any=1
      if answers "$HOST:$(client_port "$i" "$n")" 1; then st="answering"; else st="NOT answering"; fi
      echo "node $i: running pid $pid  client $HOST:$(client_port "$i" "$n")  controller $HOST:$(controller_port "$i" "$n")  $st"
    else
      echo "node $i: stopped           client $HOST:$(client_port "$i" "$n")  controller $HOST:$(controller_port "$i" "$n")"
    fi
  done
  [ "$n" -gt 0 ] && echo "bootstrap: $(bootstrap_of "$n")"
  [ "$any" = 1 ]
}

cmd_bootstrap() {
  local n
  n="$(topology)"
  [ "$n" -gt 0 ] || n=1
  bootstrap_of "$n"
}

cmd_logs() {
  local id="${1:-1}" lines="${2:-100}"
  tail -n "$lines" "$(node_dir "$id")/kafka.log"
}

run_lock() { # serialize commands that change the nodes (parallel test jobs)
  mkdir -p "$RUN_DIR"
  exec 9>"$RUN_DIR/.lock"
  flock -w $((START_TIMEOUT + 3 * STOP_TIMEOUT + 300)) 9 || die "timed out waiting for another kafka.sh ($RUN_DIR/.lock)"
}

main() {
  local cmd="${1:-help}"
  shift || true
  case "$cmd" in
    start | stop | stop-node | kill-node | start-node | restart-node) run_lock ;;
  esac
  case "$cmd" in
    fetch) cmd_fetch ;;
    start) cmd_start "${1:-1}" ;;
    stop) cmd_stop "${1:-}" ;;
    stop-node) is_uint "${1:-}" || die "stop-node: node id required"; cmd_stop "$1" ;;
    kill-node) cmd_kill_node "${1:-}" ;;
    start-node) need_java; cmd_start_node "${1:-}" ;;
    restart-node) is_uint "${1:-}" || die "restart-node: node id required"; cmd_stop "$1"; need_java; cmd_start_node "$1" ;;
    status) cmd_status ;;
    bootstrap) cmd_bootstrap ;;
    logs) cmd_logs "${1:-1}" "${2:-100}" ;;
    help | -h | --help) usage ;;
    *) usage >&2; die "unknown command '$cmd'" ;;
  esac
}

main "$@"
