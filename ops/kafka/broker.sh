#!/usr/bin/env bash
# Single-node Apache Kafka broker (KRaft, combined broker+controller) on loopback, for CI and tests.
# The broker jars come from Maven Central (ops/kafka/pom.xml); no Kafka tarball is needed.
#
# One node of a cluster too (ops/kafka/cluster.sh sets KAFKA_NODE_ID, KAFKA_QUORUM_VOTERS,
# KAFKA_CLUSTER_ID and KAFKA_REPLICATION for each of its nodes).
#
# usage: ops/kafka/broker.sh fetch|start|stop|kill|status|restart|reset|env
#
#   fetch    resolve the broker jars into the cache (idempotent; instant when cached)
#   start    fetch if needed, write server.properties, format storage once, start in the
#            background, wait until the broker answers, print the bootstrap address (stdout)
#   stop     graceful stop (SIGTERM), SIGKILL after KAFKA_STOP_TIMEOUT s; idempotent
#   kill     kill -9 at once (a crash, for failover tests); idempotent
#   status   exit 0 = running and answering, 1 = process up but not answering, 3 = stopped
#   restart  stop + start (data kept)
#   reset    stop + delete this port's data dir (topics, offsets, logs)
#   env      print `export KAFKA_BOOTSTRAP_SERVERS=...` (eval "$(ops/kafka/broker.sh env)")
#
# environment:
#   KAFKA_PORT               client port                        (default 19092)
#   KAFKA_CONTROLLER_PORT    KRaft controller port              (default KAFKA_PORT+1)
#   KAFKA_VERSION            broker version                     (default: <kafka.version> in pom.xml)
#   POVHUB_KAFKA_CACHE       jar cache root                     (default ~/.cache/povhub/kafka)
#   POVHUB_KAFKA_DATA        data/log/pid dir                   (default <cache>/run-<port>)
#   KAFKA_HEAP_OPTS          JVM heap                           (default -Xms256m -Xmx512m)
#   KAFKA_OPTS               extra JVM options
#   KAFKA_START_TIMEOUT      seconds to wait for the broker     (default 90)
#   KAFKA_STOP_TIMEOUT       seconds before SIGKILL             (default 30)
#   KAFKA_EXTRA_PROPERTIES   extra server.properties lines, newline separated (appended last)
#   KAFKA_NODE_ID            KRaft node id                      (default 1)
#   KAFKA_QUORUM_VOTERS      controller.quorum.voters           (default: this node alone)
#   KAFKA_CLUSTER_ID         cluster id to format storage with  (default: a new random one)
#   KAFKA_REPLICATION        replication of topics and internal topics; min.insync.replicas is
#                            2 when it is 2 or more             (default 1)
#   JAVA                     java binary                        (default: $JAVA_HOME/bin/java or java)
#   MVN                      maven binary                       (default mvn)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
POM="$HERE/pom.xml"

die() { echo "broker.sh: $*" >&2; exit 1; }
log() { echo "broker.sh: $*" >&2; }

pom_version() {
    sed -n 's:.*<kafka\.version>\([^<]*\)</kafka\.version>.*:\1:p' "$POM" | head -n1
}

KAFKA_VERSION="${KAFKA_VERSION:-$(pom_version)}"
[ -n "$KAFKA_VERSION" ] || die "cannot read <kafka.version> from $POM"
PORT="${KAFKA_PORT:-19092}"
CPORT="${KAFKA_CONTROLLER_PORT:-$((PORT + 1))}"
HOST=127.0.0.1
BOOTSTRAP="$HOST:$PORT"
CACHE="${POVHUB_KAFKA_CACHE:-$HOME/.cache/povhub/kafka}"
VDIR="$CACHE/$KAFKA_VERSION"
LIBS="$VDIR/libs"
DATA="${POVHUB_KAFKA_DATA:-$CACHE/run-$PORT}"
PROPS="$DATA/server.properties"
LOG4J="$DATA/log4j2.properties"
PIDFILE="$DATA/broker.pid"
OUTLOG="$DATA/broker.out"        # JVM stdout/stderr (GC, crashes)
LOGDIR="$DATA/logs"              # log4j: server.log
KRAFT="$DATA/kraft-logs"         # log.dirs + KRaft metadata log
START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
NODE_ID="${KAFKA_NODE_ID:-1}"
VOTERS="${KAFKA_QUORUM_VOTERS:-$NODE_ID@$HOST:$CPORT}"
RF="${KAFKA_REPLICATION:-1}"
if [ "$RF" -ge 2 ]; then MIN_ISR=2; else MIN_ISR=1; fi

if [ -n "${JAVA:-}" ]; then :
elif [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then JAVA="$JAVA_HOME/bin/java"
else JAVA=java; fi
MVN="${MVN:-mvn}"

# ---------------------------------------------------------------------------------------------
# fetch

fetch() {
    if [ -f "$VDIR/.complete" ]; then
        return 0
    fi
    command -v "$MVN" >/dev/null || die "maven ($MVN) not found"
    mkdir -p "$CACHE"
    # One fetch per version at a time (parallel CI jobs sharing a cache).
    exec 8>"$CACHE/.fetch-$KAFKA_VERSION.lock"
    if command -v flock >/dev/null; then flock 8; fi
    if [ -f "$VDIR/.complete" ]; then exec 8>&-; return 0; fi
    log "fetching Apache Kafka $KAFKA_VERSION jars from Maven Central into $LIBS"
    local tmp="$VDIR.tmp.$$"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    if ! "$MVN" -q -B -f "$POM" dependency:copy-dependencies \
            -Dkafka.version="$KAFKA_VERSION" -Dkafka.libs.dir="$tmp/libs" >"$tmp/mvn.log" 2>&1; then
        cat "$tmp/mvn.log" >&2
        rm -rf "$tmp"
        exec 8>&-
        die "maven could not resolve org.apache.kafka:kafka_2.13:$KAFKA_VERSION"
    fi
    ls "$tmp/libs"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null 2>&1 || { rm -rf "$tmp"; exec 8>&-; die "kafka jar missing after fetch"; }
    rm -f "$tmp/mvn.log"
    rm -rf "$VDIR"
    mv "$tmp" "$VDIR"
    echo "$KAFKA_VERSION" >"$VDIR/.complete"
    exec 8>&-
    log "fetched $(ls "$LIBS" | wc -l) jars ($(du -sh "$LIBS" | cut -f1))"
}

# ---------------------------------------------------------------------------------------------
# process helpers

read_pid() {
    [ -f "$PIDFILE" ] && tr -dc '0-9' <"$PIDFILE" || true
}

# true if $1 is a live process that is *our* broker (guards against recycled pids)
is_our_broker() {
    local pid="$1"
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    [ -r "/proc/$pid/cmdline" ] || return 0   # no procfs: trust kill -0
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "kafka.Kafka $PROPS" 
}

running_pid() {
    local pid
    pid="$(read_pid)"
    if is_our_broker "$pid"; then echo "$pid"; fi
}

port_busy() {
    (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null
}

# Ask the broker for cluster metadata (kafka-python admin). Exit 0 once it answers with a broker,
# 1 on timeout, 2 if the given pid died meanwhile.
wait_ready() {
    local pid="$1" timeout="$2"
    if python3 -c 'import kafka' 2>/dev/null; then
        python3 - "$BOOTSTRAP" "$pid" "$timeout" <<'PY'
import logging, os, sys, time
logging.disable(logging.CRITICAL)          # kafka-python logs every refused connection
from kafka import KafkaAdminClient
from kafka.errors import KafkaConfigurationError
bootstrap, pid, timeout = sys.argv[1], int(sys.argv[2] or 0), float(sys.argv[3])
deadline = time.monotonic() + timeout
last = None
while True:
    if pid:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            sys.exit(2)
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000,
                                 bootstrap_timeout_ms=3000, reconnect_backoff_max_ms=500,
                                 client_id="povhub-broker-sh")
        try:
            admin.list_topics()
            if admin.describe_cluster().get("brokers"):
                sys.exit(0)
            last = "no broker in cluster metadata yet"
        finally:
            admin.close()
    except (SystemExit, KafkaConfigurationError):
        raise
    except Exception as exc:
        last = repr(exc)
    if time.monotonic() > deadline:
        print(f"broker.sh: last readiness error: {last}", file=sys.stderr)
        sys.exit(1)
    time.sleep(0.5)
PY
    else
        # fallback without kafka-python: TCP port open and the broker says it started
        local end=$((SECONDS + ${timeout%.*}))
        while :; do
            if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then return 2; fi
            if port_busy "$PORT" && grep -qs "Kafka Server started" "$LOGDIR/server.log"; then return 0; fi
            [ "$SECONDS" -lt "$end" ] || return 1
            sleep 0.5
        done
    fi
}

# ---------------------------------------------------------------------------------------------
# config

write_config() {
    mkdir -p "$DATA" "$LOGDIR" "$KRAFT"
    cat >"$PROPS" <<EOF
# generated by ops/kafka/broker.sh -- edits are overwritten on every start
# KRaft test broker: one process is both broker and controller (a cluster: one such node each)
process.roles=broker,controller
node.id=$NODE_ID
controller.quorum.voters=$VOTERS
listeners=PLAINTEXT://$HOST:$PORT,CONTROLLER://$HOST:$CPORT
advertised.listeners=PLAINTEXT://$HOST:$PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs=$KRAFT

# topics: the project creates its topics explicitly (co-partitioned, 12 partitions), the
# processors their changelogs through the admin API. A typo must fail, not create a topic.
auto.create.topics.enable=false
delete.topic.enable=true
num.partitions=12
default.replication.factor=$RF
min.insync.replicas=$MIN_ISR

# internal topics: RF 1 on one node, and fewer partitions than the default 50 (faster first join)
offsets.topic.replication.factor=$RF
offsets.topic.num.partitions=12
transaction.state.log.replication.factor=$RF
transaction.state.log.min.isr=$MIN_ISR
transaction.state.log.num.partitions=12
share.coordinator.state.topic.replication.factor=$RF
share.coordinator.state.topic.min.isr=$MIN_ISR

# tests start consumers constantly: no 3 s wait before the first rebalance
group.initial.rebalance.delay.ms=0

# 2-core shared machine
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
background.threads=4
log.cleaner.threads=1
EOF
    if [ -n "${KAFKA_EXTRA_PROPERTIES:-}" ]; then
        printf '\n# KAFKA_EXTRA_PROPERTIES\n%s\n' "$KAFKA_EXTRA_PROPERTIES" >>"$PROPS"
    fi
    cat >"$LOG4J" <<'EOF'
# generated by ops/kafka/broker.sh
status = warn
appender.server.type = RollingFile
appender.server.name = server
appender.server.fileName = ${sys:kafka.logs.dir}/server.log
appender.server.filePattern = ${sys:kafka.logs.dir}/server.log.%i
appender.server.layout.type = PatternLayout
appender.server.layout.pattern = [%d] %p %m (%c)%n
appender.server.policies.type = Policies
appender.server.policies.size.type = SizeBasedTriggeringPolicy
appender.server.policies.size.size = 20MB
appender.server.strategy.type = DefaultRolloverStrategy
appender.server.strategy.max = 3
rootLogger.level = info
rootLogger.appenderRef.server.ref = server
logger.kafka.name = kafka
logger.kafka.level = info
logger.apache.name = org.apache.kafka
logger.apache.level = info
# per-request noise
logger.request.name = kafka.request.logger
logger.request.level = warn
logger.authorizer.name = kafka.authorizer.logger
logger.authorizer.level = warn
EOF
}

java_args() {
    # sets the JAVA_ARGS array (an array: the class path wildcard must reach java unexpanded)
    local heap extra
    read -r -a heap <<<"$HEAP_OPTS"
    read -r -a extra <<<"${KAFKA_OPTS:-}"
    JAVA_ARGS=("$JAVA" "${heap[@]}" -XX:+UseSerialGC -XX:MaxMetaspaceSize=256m
        -Djava.awt.headless=true -Dlog4j2.configurationFile="$LOG4J" -Dlog4j2.disable.jmx=true
        -Dkafka.logs.dir="$LOGDIR" ${extra[@]+"${extra[@]}"} -cp "$LIBS/*")
}

format_storage() {
    local stamp="$DATA/formatted-version"
    if [ -f "$KRAFT/meta.properties" ]; then
        if [ -f "$stamp" ] && [ "$(cat "$stamp")" != "$KAFKA_VERSION" ]; then
            log "data in $DATA was formatted by Kafka $(cat "$stamp"), now $KAFKA_VERSION: wiping it"
            rm -rf "$KRAFT"
            mkdir -p "$KRAFT"
        else
            return 0
        fi
    fi
    local cluster_id
    # Like Kafka's Uuid.randomUuid: an id starting with "-" would be read as an option by the tool.
    cluster_id="${KAFKA_CLUSTER_ID:-}"
    [ -n "$cluster_id" ] || cluster_id="$(python3 -c 'import base64,uuid
while (i := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")).startswith("-"): pass
print(i)')"
    log "formatting $KRAFT (cluster id $cluster_id)"
    java_args
    if ! "${JAVA_ARGS[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$PROPS" \
            >"$DATA/format.log" 2>&1; then
        cat "$DATA/format.log" >&2
        die "kafka-storage format failed"
    fi
    echo "$KAFKA_VERSION" >"$stamp"
}

# ---------------------------------------------------------------------------------------------
# commands

start() {
    local pid rc
    pid="$(running_pid)"
    if [ -n "$pid" ]; then
        if wait_ready "$pid" "$START_TIMEOUT"; then
            echo "$BOOTSTRAP"
            return 0
        fi
        die "broker pid $pid is running but does not answer on $BOOTSTRAP (see $LOGDIR/server.log)"
    fi
    rm -f "$PIDFILE"
    if port_busy "$PORT"; then die "port $PORT is in use by another process"; fi
    if port_busy "$CPORT"; then die "controller port $CPORT is in use by another process"; fi

    fetch
    command -v "$JAVA" >/dev/null || die "java ($JAVA) not found"
    write_config
    format_storage

    log "starting Kafka $KAFKA_VERSION on $BOOTSTRAP (controller $HOST:$CPORT, data $DATA)"
    echo "=== $(date -u +%FT%TZ) start Kafka $KAFKA_VERSION" >>"$OUTLOG"
    # Detach completely: own session, no terminal, stdin closed, output to file.
    java_args
    setsid nohup "${JAVA_ARGS[@]}" kafka.Kafka "$PROPS" </dev/null >>"$OUTLOG" 2>&1 &
    pid=$!
    echo "$pid" >"$PIDFILE"

    rc=0
    wait_ready "$pid" "$START_TIMEOUT" || rc=$?
    case "$rc" in
        0) echo "$BOOTSTRAP" ;;
        2)  rm -f "$PIDFILE"
            tail -n 40 "$OUTLOG" "$LOGDIR/server.log" >&2 2>/dev/null || true
            die "broker exited during startup (logs: $OUTLOG, $LOGDIR/server.log)" ;;
        *)  tail -n 40 "$LOGDIR/server.log" >&2 2>/dev/null || true
            stop >/dev/null 2>&1 || true
            die "broker did not answer on $BOOTSTRAP within ${START_TIMEOUT}s" ;;
    esac
}

stop() {
    local pid
    pid="$(running_pid)"
    if [ -z "$pid" ]; then
        rm -f "$PIDFILE"
        log "not running ($BOOTSTRAP)"
        return 0
    fi
    log "stopping broker pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
    local end=$((SECONDS + STOP_TIMEOUT))
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$end" ]; do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
        log "still alive after ${STOP_TIMEOUT}s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    rm -f "$PIDFILE"
    log "stopped"
}

kill_now() {
    local pid
    pid="$(running_pid)"
    if [ -n "$pid" ]; then
        kill -KILL "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
        log "killed broker pid $pid (kill -9)"
    fi
    rm -f "$PIDFILE"
}

status() {
    local pid
    pid="$(running_pid)"
    if [ -z "$pid" ]; then
        echo "stopped (Kafka $KAFKA_VERSION, $BOOTSTRAP, data $DATA)"
        return 3
    fi
    if wait_ready "$pid" 5; then
        echo "running pid=$pid bootstrap=$BOOTSTRAP version=$KAFKA_VERSION data=$DATA"
        return 0
    fi
    echo "not answering pid=$pid bootstrap=$BOOTSTRAP version=$KAFKA_VERSION data=$DATA"
    return 1
}

reset() {
    stop
    case "$DATA" in
        ""|"/"|"$HOME") die "refusing to delete '$DATA'" ;;
    esac
    rm -rf "$DATA"
    log "deleted $DATA"
}

cmd="${1:-}"
case "$cmd" in
    fetch)   fetch; echo "$LIBS" ;;
    start)   start ;;
    stop)    stop ;;
    kill)    kill_now ;;
    status)  status ;;
    restart) stop; start ;;
    reset)   reset ;;
    env)     echo "export KAFKA_BOOTSTRAP_SERVERS=$BOOTSTRAP" ;;
    *)       sed -n '2,38p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
