#!/usr/bin/env bash
# A 3-node Apache Kafka cluster (KRaft; each node both broker and controller) on loopback, for
# failover tests and for anyone who wants to try one: replication 3, min.insync.replicas 2, the
# transaction state log and the offsets topic replicated 3 with min ISR 2. Each node is an
# ops/kafka/broker.sh broker with its own ports, data dir and a small heap.
#
# usage: ops/kafka/cluster.sh start|stop|status|env|reset
#        ops/kafka/cluster.sh kill N|stop-node N|start-node N|restart N     (N = 1, 2 or 3)
#
#   start       start the three nodes (in parallel: a controller quorum needs two of them) and
#               print the bootstrap address of all three (stdout)
#   stop        stop every node (SIGTERM); idempotent
#   kill N      kill -9 node N (a crash)            stop-node N   graceful stop of node N
#   start-node N / restart N                        start node N again (data kept) / stop + start
#   status      one line per node; exit 0 when all three answer
#   env         print `export KAFKA_BOOTSTRAP_SERVERS=...`
#   reset       stop and delete the cluster's data
#
# environment:
#   KAFKA_CLUSTER_PORT   first port (default 29092): node N listens on PORT+2(N-1), its
#                        controller on PORT+2(N-1)+1, so the cluster takes PORT..PORT+5
#   POVHUB_KAFKA_DATA    data root (default <cache>/cluster-<port>), node N in node-N/
#   KAFKA_HEAP_OPTS      per node (default -Xms64m -Xmx320m)
#   others as in broker.sh (KAFKA_START_TIMEOUT, KAFKA_EXTRA_PROPERTIES, ...)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BROKER="$HERE/broker.sh"
NODES=3
HOST=127.0.0.1
BASE="${KAFKA_CLUSTER_PORT:-29092}"
ROOT="${POVHUB_KAFKA_DATA:-${POVHUB_KAFKA_CACHE:-$HOME/.cache/povhub/kafka}/cluster-$BASE}"
export KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms64m -Xmx320m}"

die() { echo "cluster.sh: $*" >&2; exit 1; }

port() { echo $((BASE + 2 * ($1 - 1))); }

voters() {
    local n out=""
    for n in $(seq 1 $NODES); do out="$out${out:+,}$n@$HOST:$(($(port "$n") + 1))"; done
    echo "$out"
}

bootstrap() {
    local n out=""
    for n in $(seq 1 $NODES); do out="$out${out:+,}$HOST:$(port "$n")"; done
    echo "$out"
}

cluster_id() {
    # one id for every node, kept with the data so a restarted node joins the same cluster
    mkdir -p "$ROOT"
    if [ ! -s "$ROOT/cluster-id" ]; then
        python3 -c 'import base64,uuid
while (i := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")).startswith("-"): pass
print(i)' >"$ROOT/cluster-id"
    fi
    cat "$ROOT/cluster-id"
}

node() {  # node N COMMAND: run broker.sh COMMAND for node N
    local n="$1" cmd="$2"
    case "$n" in 1|2|3) ;; *) die "node must be 1, 2 or 3, got '$n'" ;; esac
    KAFKA_PORT="$(port "$n")" KAFKA_CONTROLLER_PORT="$(($(port "$n") + 1))" KAFKA_NODE_ID="$n" \
        KAFKA_QUORUM_VOTERS="$(voters)" KAFKA_CLUSTER_ID="$(cluster_id)" KAFKA_REPLICATION=3 \
        POVHUB_KAFKA_DATA="$ROOT/node-$n" "$BROKER" "$cmd"
}

start() {
    "$BROKER" fetch >/dev/null
    cluster_id >/dev/null  # before the nodes start in parallel: each must read the same one
    local n pids=() rc=0
    for n in $(seq 1 $NODES); do
        node "$n" start >/dev/null &
        pids+=($!)
    done
    for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
    [ "$rc" -eq 0 ] || die "a node did not start (logs in $ROOT/node-*/logs/server.log)"
    bootstrap
}

each() {
    local n rc=0
    for n in $(seq 1 $NODES); do node "$n" "$1" || rc=$?; done
    return "$rc"
}

cmd="${1:-}"
case "$cmd" in
    start)      start ;;
    stop)       each stop ;;
    status)     each status ;;
    reset)      each stop; rm -rf "$ROOT"; echo "cluster.sh: deleted $ROOT" >&2 ;;
    env)        echo "export KAFKA_BOOTSTRAP_SERVERS=$(bootstrap)" ;;
    kill)       node "${2:-}" kill ;;
    stop-node)  node "${2:-}" stop ;;
    start-node) node "${2:-}" start >/dev/null ;;
    restart)    node "${2:-}" stop; node "${2:-}" start >/dev/null ;;
    *)          sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
