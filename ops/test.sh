#!/usr/bin/env bash
# The test command: the whole suite against a real single-node Apache Kafka broker (KRaft), whose
# jars ops/kafka/broker.sh fetches with Maven and caches. POVHUB_TEST_BROKER=embedded runs the
# same suite against the embedded Tansu broker instead (as plain `pytest` does). Extra arguments
# go to pytest. `ops/test.sh --fast` runs the tests that need no broker and are not slow (no broker
# is started: a test that uses one is marked `kafka` by its fixture, tests/conftest.py).
set -euo pipefail
cd "$(dirname "$0")/.."

# Keep compiled modules between runs, outside the tree: with PYTHONDONTWRITEBYTECODE set (as in this
# machine's environment) every run, every xdist process and every `python3 -m povhub` a test starts
# compiled every module again, and pytest rewrote every test module's asserts again (half of collection)
unset PYTHONDONTWRITEBYTECODE
export PYTHONPYCACHEPREFIX="${PYTHONPYCACHEPREFIX:-${XDG_CACHE_HOME:-$HOME/.cache}/povhub/pycache}"

fast=0
if [ "${1:-}" = --fast ]; then
    fast=1
    shift
fi

if [ "$fast" = 1 ]; then
    unset KAFKA_BOOTSTRAP_SERVERS
    echo "fast tier: no broker, -m 'not kafka and not slow'"
    # two processes: the machine has two cores, and most of these tests wait on subprocesses or chdb
    set -- -m "not kafka and not slow" -n "${POVHUB_TEST_PROCESSES:-2}" "$@"
elif [ "${POVHUB_TEST_BROKER:-kafka}" = kafka ]; then
    # A fresh broker per run: no topics or consumer groups left over from an earlier run.
    export POVHUB_KAFKA_DATA="${POVHUB_KAFKA_DATA:-$(mktemp -d /tmp/povhub-kafka.XXXXXX)}"
    export KAFKA_PORT="${KAFKA_PORT:-19092}"
    trap 'ops/kafka/broker.sh stop >/dev/null 2>&1 || true' EXIT
    KAFKA_BOOTSTRAP_SERVERS="$(ops/kafka/broker.sh start)"
    export KAFKA_BOOTSTRAP_SERVERS
    echo "test broker: Apache Kafka $(sed -n 's:.*<kafka\.version>\([^<]*\)</kafka\.version>.*:\1:p' ops/kafka/pom.xml | head -n1) on $KAFKA_BOOTSTRAP_SERVERS"
else
    unset KAFKA_BOOTSTRAP_SERVERS
    echo "test broker: embedded Tansu"
fi

set +e
python3 -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "ops/test.sh: pytest collected no tests: failing on purpose" >&2
    exit 1
fi
exit "$rc"
