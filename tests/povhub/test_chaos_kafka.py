"""Chaos on real Apache Kafka: workers killed with kill -9 at random moments, a broker restart and a
30 s ClickHouse outage, workers frozen past their session, while three sources stream in
(person-only events included). The final
ClickHouse state must equal a reference fold of the published events: nothing lost, nothing doubled,
no (household, version) with two contents. The negative control (a stage that commits its offsets
before its outputs) must fail the same checks.

Needs the broker ops/test.sh starts (it restarts it): skipped on the embedded broker, which keeps
nothing across a restart and shows records of aborted transactions to read_committed readers.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kafka import KafkaAdminClient

from povhub.worker_client import WorkerProcess
from schemas.topics import Topics
from tests.conftest import TEST_SESSION_TIMEOUT_S, free_port
from bench.household_events import household_events
from bench.proc_stats import stat_fields
from tests.support.chaos_checks import Figures, Publisher, compare, wait_caught_up
from tests.support.hooked_worker import HOOKED_WORKER

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.kafka, pytest.mark.slow, pytest.mark.skipif(
    not os.environ.get("POVHUB_KAFKA_DATA"), reason="restarts the Apache Kafka broker that ops/test.sh starts")]
# The stores under test: on disk with local checkpoints (the memory store has no checkpoint to get wrong).
ON_DISK = {"POVHUB_STATE_STORE": "rocksdb"}


def restart_broker() -> None:
    subprocess.run([str(ROOT / "ops/kafka/broker.sh"), "restart"], check=True, capture_output=True, timeout=180)


def run_chaos(env: dict[str, str], tmp_path: Path, *, kills: int, households: int, rate: float, seed: int,
              command: list[str] | None = None, broker_restart_at: int | None = None,
              outage_at: int | None = None, life_s: tuple[float, float] = (3.0, 7.0),
              kill_after_a_commit: bool = False) -> Figures:
    """``command`` runs the workers that are killed; a plain hooked worker then catches up.
    ``kill_after_a_commit``: each worker is killed as soon as reconcile's committed offsets move
    (while the publisher sends), not after a random life: what the negative control needs, whose
    outputs wait in the producer's buffer after its commit (under load a random life could end
    before a slow-starting worker committed anything: once in a loaded run it lost nothing)."""
    topics, bootstrap = Topics(env["POVHUB_TOPIC_PREFIX"]), env["KAFKA_BOOTSTRAP_SERVERS"]
    rng = random.Random(seed)
    events = household_events(households, seed=seed)
    rng.shuffle(events)  # the three sources interleaved; person-only events often before their membership
    off = tmp_path / "clickhouse-off"
    env = {**env, "POVHUB_CLICKHOUSE_OFF_FILE": str(off), "POVHUB_WORKER_ID": "chaos-worker"}
    publisher = Publisher(bootstrap, topics, events, rate)
    publisher.start()
    log = tmp_path / "workers.log"
    for cycle in range(kills):
        worker = WorkerProcess(env, log, command or HOOKED_WORKER).start()
        if kill_after_a_commit and publisher.is_alive():
            wait_for_a_commit(bootstrap, f"{env['POVHUB_APP_ID']}-reconcile", publisher)
        else:
            time.sleep(rng.uniform(*life_s))  # starting, joining, restoring, working: killed at any of these
        if cycle == broker_restart_at:
            restart_broker()
            time.sleep(rng.uniform(2.0, 5.0))
        if cycle == outage_at:
            off.touch()
            time.sleep(30)
            off.unlink()
            time.sleep(rng.uniform(0.5, 3.0))
        worker.kill()
    # the outage must have reached the loaders (each inserts with a client of its own)
    assert outage_at is None or "switched off by" in log.read_text(errors="replace"), "no insert failed in the outage"
    publisher.join(900)
    assert not publisher.is_alive() and publisher.error is None, publisher.error
    # The worker that catches up is never one of the crashing or unsafe commands: a crash worker drawn
    # to die after a few transactions could die again before the backlog is done (it did in CI).
    worker = WorkerProcess(env, log, HOOKED_WORKER).start()
    try:
        wait_caught_up(bootstrap, env, topics, worker)
    finally:
        worker.stop()
        worker.kill()
    return compare(bootstrap, topics, events, [Path(env["CLICKHOUSE_URL"].removeprefix("chdb://"))],
                   Figures(kills, len(events), households))


def wait_for_a_commit(bootstrap: str, group: str, publisher: Publisher, limit_s: float = 60.0) -> None:
    def committed() -> int:
        offsets = admin.list_group_offsets({group: None}).get(group, {})
        return sum(max(m.offset, 0) for m in offsets.values())

    admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","))
    try:
        before, deadline = committed(), time.monotonic() + limit_s
        while committed() == before and publisher.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        admin.close()


def show(capsys: pytest.CaptureFixture, what: str, figures: Figures) -> None:
    with capsys.disabled():
        print(f"\nchaos, {what}: {figures}")


def test_kill_9_twenty_times_a_broker_restart_and_a_clickhouse_outage_lose_and_double_nothing(
        hub_env, tmp_path, capsys):
    figures = run_chaos({**hub_env, **ON_DISK}, tmp_path, kills=20, households=500, rate=40, seed=11, broker_restart_at=8,
                        outage_at=13)
    show(capsys, "20 kill -9, a broker restart, a 30 s ClickHouse outage", figures)
    assert figures.exact, figures.report()


def test_kill_9_at_both_edges_of_the_local_checkpoint_loses_and_doubles_nothing(hub_env, tmp_path, capsys):
    """Killed between Kafka's commit and the local write (the store restarts one transaction behind
    Kafka and must catch up from its checkpoint), and just after it (level with Kafka: nothing may be
    applied twice), alternately, besides kills at random moments."""
    figures = run_chaos({**hub_env, **ON_DISK}, tmp_path, kills=10, households=300, rate=40, seed=14,
                        command=[sys.executable, str(ROOT / "tests/support/checkpoint_crash_worker.py")], life_s=(8.0, 14.0))
    show(capsys, "kill -9 before and after the local checkpoint write", figures)
    log = (tmp_path / "workers.log").read_text(errors="replace")
    assert "kill -9 before the local write" in log and "kill -9 after the local write" in log, \
        f"the crash worker never reached a checkpoint edge:\n{log[-3000:]}"
    assert figures.exact, figures.report()


def test_negative_control_offsets_committed_before_outputs_is_caught(hub_env, tmp_path, capsys):
    figures = run_chaos(hub_env, tmp_path, kills=8, households=150, rate=40, seed=12, kill_after_a_commit=True,
                        command=[sys.executable, str(ROOT / "tests/support/unsafe_worker.py")])
    show(capsys, "negative control (offsets committed before outputs)", figures)
    assert not figures.exact, f"the checks missed the unsafe stage: {figures}"


def two_worker_envs(hub_env: dict[str, str], tmp_path: Path) -> list[dict[str, str]]:
    """Two workers of one deployment on this machine: each its own ClickHouse, web port and folder."""
    return [{**hub_env, **ON_DISK, "POVHUB_WORKER_ID": f"w{n}", "CLICKHOUSE_URL": f"chdb://{tmp_path / f'ch{n}'}",
             **({"POVHUB_WEB_PORT": str(free_port()), "POVHUB_DATA_DIR": str(tmp_path / f"data{n}")} if n else {})}
            for n in range(2)]


def wait_stopped(worker: WorkerProcess, timeout_s: float) -> None:
    """Until ``worker`` has stopped itself (SIGSTOP: state T in /proc)."""
    deadline = time.monotonic() + timeout_s
    while (stat_fields(worker.proc.pid) or ["gone"])[0] != "T":
        assert worker.alive() and time.monotonic() < deadline, worker.log_tail()
        time.sleep(0.05)


def warnings_of(workers: list[WorkerProcess]) -> list[str]:
    """The workers' warning and error lines: what a failure in CI leaves to read."""
    return [f"{w.log_file.name}: {line}" for w in workers
            for line in w.log_file.read_text(errors="replace").splitlines() if " WARNING " in line or " ERROR " in line]


def test_two_workers_one_killed_mid_stream_and_restarted_lose_and_double_nothing(hub_env, tmp_path, capsys):
    """The survivor takes the killed worker's partitions over; its supervisor restarts it later. Each
    worker has its own embedded ClickHouse, which the kill may have cut half way through an insert
    whose retry goes to the survivor's: the restarted worker recounts its folder's live figures
    (sinks/unclean_stop.py), so every folder's figures equal its FINAL count."""
    topics, bootstrap = Topics(hub_env["POVHUB_TOPIC_PREFIX"]), hub_env["KAFKA_BOOTSTRAP_SERVERS"]
    events = household_events(300, seed=13)
    random.Random(13).shuffle(events)
    envs = two_worker_envs(hub_env, tmp_path)
    publisher = Publisher(bootstrap, topics, events, rate=100)
    workers = [WorkerProcess(env, tmp_path / f"w{n}.log").start() for n, env in enumerate(envs)]
    try:
        publisher.start()
        time.sleep(8)  # both joined and working
        workers[1].kill()
        time.sleep(TEST_SESSION_TIMEOUT_S + 4)  # the survivor has taken its partitions over
        workers.append(WorkerProcess(envs[1], tmp_path / "w1-restarted.log").start())
        workers[2].wait_for(lambda answer: answer[0] == 200, 180, "the restarted worker ready", fetch=workers[2].health)
        publisher.join(600)
        assert publisher.error is None, publisher.error
        wait_caught_up(bootstrap, envs[0], topics, workers[0])
        assert workers[2].alive(), workers[2].log_tail()
        assert "not closed cleanly" in workers[2].log_file.read_text()  # the kill left its mark: recounted
    finally:
        for w in workers[::2]:
            w.stop()
        for w in workers:
            w.kill()
    figures = compare(bootstrap, topics, events, [tmp_path / "ch0", tmp_path / "ch1"], Figures(1, len(events), 300))
    show(capsys, "two workers, one killed mid-stream and restarted", figures)
    assert figures.exact, "\n".join([figures.report(), *warnings_of(workers)[-20:]])


def test_two_workers_each_paused_past_its_session_lose_and_double_nothing(hub_env, tmp_path, capsys):
    """A worker frozen longer than its session (a VM stall, swapping, SIGSTOP) is dropped from its
    group; the other takes its partitions over. Resumed, it still has a batch in hand, and
    kafka-python's heartbeat soon tells it that it was dropped, resetting its generation: offsets
    sent then name none, and Kafka takes those unchecked (pipeline/runner.py ``_membership``). Before
    the runner refused them, this run published (household, version) pairs with two contents.

    The first pause is the narrowest: w1 stops itself right after a transaction's offsets were sent,
    its records perhaps still in its producer's buffer; resumed, it commits that transaction (Kafka
    checks the group at the offsets, not at the commit). Its successor must wait for it before
    restoring the state (pipeline/fetcher.py): restored first, the state lacked that transaction's
    writes while the offsets then read counted them (in CI, two households lost an event)."""
    topics, bootstrap = Topics(hub_env["POVHUB_TOPIC_PREFIX"]), hub_env["KAFKA_BOOTSTRAP_SERVERS"]
    rng = random.Random(14)
    events = household_events(700, seed=14)
    rng.shuffle(events)
    envs = two_worker_envs(hub_env, tmp_path)
    envs[1]["POVHUB_FREEZE_AFTER_OFFSETS"] = "10"
    publisher = Publisher(bootstrap, topics, events, rate=100)
    workers = [WorkerProcess(env, tmp_path / f"w{n}.log", command=HOOKED_WORKER).start()
               for n, env in enumerate(envs)]
    pauses = 0
    try:
        for w in workers:
            w.wait_for(lambda answer: answer[0] == 200, 180, "the worker ready", fetch=w.health)
        publisher.start()
        while publisher.is_alive():
            frozen = workers[(pauses + 1) % 2]
            if pauses:
                time.sleep(rng.uniform(1, 3))
                os.killpg(frozen.proc.pid, signal.SIGSTOP)
            else:
                wait_stopped(frozen, 60)
            pauses += 1
            time.sleep(TEST_SESSION_TIMEOUT_S + rng.uniform(1, 3))  # dropped from its group meanwhile
            os.killpg(frozen.proc.pid, signal.SIGCONT)
        assert publisher.error is None, publisher.error
        assert pauses >= 2, "the stream ended before a pause from outside"
        wait_caught_up(bootstrap, envs[0], topics, workers[0])
        assert all(w.alive() for w in workers), [w.log_tail() for w in workers]
    finally:
        for w in workers:
            if w.alive():
                os.killpg(w.proc.pid, signal.SIGCONT)
            w.stop()
            w.kill()
    figures = compare(bootstrap, topics, events, [tmp_path / "ch0", tmp_path / "ch1"],
                      Figures(0, len(events), 700))
    show(capsys, f"two workers, {pauses} pauses past the session", figures)
    assert figures.exact, "\n".join([figures.report(), *warnings_of(workers)[-20:]])
