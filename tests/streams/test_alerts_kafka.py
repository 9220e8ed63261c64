"""The alerts agent against a real broker: kill -9 and restart raise nothing twice, a moved clock
escalates one level per SLA, a crash between sending and writing the table re-sends nothing, and a
webhook receiver on loopback gets every alert signed and once."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from kafka import KafkaProducer

from povhub.worker_client import WorkerProcess
from schemas.codec import Codec
from schemas.topics import ALERT, HOUSEHOLD_STATE, Topics
from streams.alert_lifecycle import new_entry, step
from streams.alert_rules import load_alert_rules
from streams.webhooks import EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER
from tests.support.alert_households import DAY, calm_state
from tests.support.kafka_read import read_topic
from tests.support.hooked_worker import HOOKED_WORKER
from tests.support.worker_runs import killed_mid_stream, wait_until

pytestmark = pytest.mark.kafka
RULES = load_alert_rules()
SECRET = "webhook-secret-for-kafka-tests-42"


def state_versions(households: int) -> list[dict]:
    """Per household: raise, clear, raise two rules (a new episode); some only a slow-SLA rule.
    Ordered by version, so any prefix keeps each household's versions in order."""
    out = []
    for v in (1, 2, 3):
        for h in range(households):
            house = f"5001{h:07d}"
            if h % 4 == 0:
                flags = {"income_below_threshold": True, "has_welfare_card": False}
            else:
                flags = [{"child_out_of_school": True}, {},
                         {"child_out_of_school": True, "insecure_housing": True, "has_elderly": True}][v - 1]
            out.append(calm_state(household=house, version=v, **flags))
    return out


def expected_raised(states: list[dict]) -> set[str]:
    entries: dict[str, dict] = {}
    raised = set()
    for s in states:
        out = step(entries.get(s["household_key"]) or new_entry(s["household_key"], 0), RULES, time_ms(), s)
        entries[s["household_key"]] = out.entry
        raised |= {e["alert_id"] for e in out.events if e["action"] == "RAISED"}
    return raised


def time_ms() -> int:
    return int(time.time() * 1000)


def produce_states(bootstrap: str, topics: Topics, states: list[dict]) -> None:
    codec = Codec(topics=topics)
    producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), acks="all", linger_ms=5)
    for s in states:
        producer.send(topics.name(HOUSEHOLD_STATE), key=s["household_key"].encode(),
                      value=codec.encode(HOUSEHOLD_STATE.name, s))
    producer.flush(60)
    producer.close()


def alerts_on_topic(bootstrap: str, topics: Topics, settle_s: float = 2.0, committed_only: bool = True) -> list[dict]:
    codec = Codec(topics=topics)
    return [codec.decode(m.value, ALERT.name)
            for m in read_topic(bootstrap, topics.name(ALERT), settle_s=settle_s, committed_only=committed_only)]


def raised_ids(events: list[dict]) -> set[str]:
    return {e["alert_id"] for e in events if e["action"] == "RAISED"}


def assert_each_event_once(events: list[dict]) -> None:
    twice = [i for i, n in Counter(e["event_id"] for e in events).items() if n > 1]
    assert not twice, f"{len(twice)} alert events on the topic more than once, e.g. {twice[:3]}"
    raised = Counter(e["alert_id"] for e in events if e["action"] == "RAISED")
    assert set(raised.values()) <= {1}


def wait_for_alerts(bootstrap, topics, predicate, timeout_s, worker, what) -> list[dict]:
    got: list[dict] = []

    def done() -> bool:
        nonlocal got
        got = alerts_on_topic(bootstrap, topics)
        return predicate(got)

    try:
        wait_until(done, timeout_s, what, worker)
    except AssertionError as e:
        seen = Counter((a["action"], a["level"]) for a in got)
        raise AssertionError(f"{e}\nlast seen on the alert topic: {len(got)} events, {sorted(seen.items())}") from None
    return got


def escalations(events: list[dict]) -> Counter:
    return Counter((e["alert_id"], e["level"]) for e in events if e["action"] == "ESCALATED")


def test_kill_9_and_restart_raise_no_alert_twice_and_a_moved_clock_escalates_one_level_at_a_time(hub_env, tmp_path):
    topics, bootstrap = Topics(hub_env["POVHUB_TOPIC_PREFIX"]), hub_env["KAFKA_BOOTSTRAP_SERVERS"]
    offset = tmp_path / "clock-offset"
    env = {**hub_env, "POVHUB_CLOCK_OFFSET_FILE": str(offset), "POVHUB_ALERT_CHECK_S": "1"}
    states = state_versions(160)
    want = expected_raised(states)
    worker = killed_mid_stream(env, tmp_path / "worker.log",
                               lambda: produce_states(bootstrap, topics, states[: len(states) // 2]),
                               lambda: produce_states(bootstrap, topics, states[len(states) // 2:]),
                               "povhub_alerts_total", settle_s=0.3, command=HOOKED_WORKER)
    try:
        got = wait_for_alerts(bootstrap, topics, lambda a: raised_ids(a) == want, 180, worker, "every alert raised")
        time.sleep(2)
        got = alerts_on_topic(bootstrap, topics)
        assert raised_ids(got) == want
        assert_each_event_once(got)

        # open now: the slow rule (14-day SLA) on every 4th household, two 7-day rules on the others
        slow = {e["alert_id"] for e in got if e["action"] == "RAISED" and e["rule_id"] == "low-income-no-welfare-card"}
        fast = {e["alert_id"] for e in got if e["action"] == "RAISED"} - slow
        fast -= {e["alert_id"] for e in got if e["action"] == "RESOLVED"}
        assert len(slow) == 40 and len(fast) == 240
        # (days on the clock, level each alert must have reached): one level per evaluation past the SLA
        plan = [(8, {a: "district" for a in fast}),
                (16, {**{a: "province" for a in fast}, **{a: "district" for a in slow}}),
                (24, {**{a: "national" for a in fast}, **{a: "district" for a in slow}}),
                (100, {**{a: "national" for a in fast}, **{a: "province" for a in slow}})]
        for days, reached in plan:
            offset.write_text(str(days * DAY / 1000))
            want_count = sum(1 + ["district", "province", "national"].index(level) for level in reached.values())
            got = wait_for_alerts(bootstrap, topics, lambda a, n=want_count: sum(escalations(a).values()) >= n,
                                  120, worker, f"escalations at day {days}")
            time.sleep(3)  # a few more timer runs: nothing more may escalate
            got = alerts_on_topic(bootstrap, topics)
            esc = escalations(got)
            assert set(esc.values()) == {1}, "each level once per alert"
            top = {}
            for e in got:
                if e["action"] == "ESCALATED":
                    top[e["alert_id"]] = max(top.get(e["alert_id"], "district"), e["level"],
                                             key=["district", "province", "national"].index)
            assert top == reached, f"day {days}"
        assert_each_event_once(got)
    finally:
        worker.kill()


CRASH_BEFORE_COMMIT = """
import os, sys
from pipeline.bounded_producer import BoundedProducer as KafkaProducer  # the stages' producer
commit = KafkaProducer.commit_transaction
send = KafkaProducer.send
def noting_alerts(self, topic, *args, **kwargs):
    if topic.endswith(".alert.v1"):
        self.sent_alerts = True
    return send(self, topic, *args, **kwargs)
def crash_before_commit(self):
    if getattr(self, "sent_alerts", False):
        self.flush()
        os._exit(137)  # as kill -9 would: the transaction's alerts are on the broker, not committed
    return commit(self)
KafkaProducer.send = noting_alerts
KafkaProducer.commit_transaction = crash_before_commit
from povhub.cli import main
sys.exit(main(["worker"]))
"""


class CrashingWorker(WorkerProcess):
    def start(self) -> CrashingWorker:
        with self.log_file.open("ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-c", CRASH_BEFORE_COMMIT], env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        return self


class Receiver(BaseHTTPRequestHandler):
    """Fails the first two tries of every event with 500, then accepts it."""

    tries: ClassVar[Counter] = Counter()
    accepted: ClassVar[list] = []
    bad: ClassVar[list] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        stamp = self.headers[TIMESTAMP_HEADER]
        signed = "sha256=" + hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signed, self.headers[SIGNATURE_HEADER]):
            Receiver.bad.append(body)
            self.send_response(401)
        else:
            event_id = self.headers[EVENT_ID_HEADER]
            Receiver.tries[event_id] += 1
            if Receiver.tries[event_id] <= 2:
                self.send_response(500)
            else:
                Receiver.accepted.append(json.loads(body))
                self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_a_crash_between_sending_and_the_commit_sends_nothing_twice_and_webhooks_get_each_alert_once(
        hub_env, tmp_path):
    topics, bootstrap = Topics(hub_env["POVHUB_TOPIC_PREFIX"]), hub_env["KAFKA_BOOTSTRAP_SERVERS"]
    states = state_versions(40)
    want = expected_raised(states)
    produce_states(bootstrap, topics, states)
    crashing = CrashingWorker(hub_env, tmp_path / "crash.log").start()
    try:
        crashing.proc.wait(120)
    except subprocess.TimeoutExpired:
        crashing.kill()
        raise AssertionError(f"the worker did not crash:\n{crashing.log_tail()}")
    assert crashing.proc.returncode == 137, crashing.log_tail()
    assert alerts_on_topic(bootstrap, topics, committed_only=False), "the crashed worker had sent alerts"
    assert alerts_on_topic(bootstrap, topics) == [], "alerts of an uncommitted transaction are invisible"

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hooks = tmp_path / "webhooks.json"
    hooks.write_text(json.dumps({"version": 1, "targets": [{
        "id": "loopback", "url": f"http://127.0.0.1:{server.server_address[1]}/hook", "areas": ["5001"],
        "attempts": 4, "backoff_s": 0.05}]}))
    env = {**hub_env, "POVHUB_WEBHOOKS_FILE": str(hooks), "POVHUB_WEBHOOK_SECRET": SECRET}
    worker = WorkerProcess(env, tmp_path / "worker.log").start()
    try:
        got = wait_for_alerts(bootstrap, topics, lambda a: raised_ids(a) == want, 180, worker, "every alert raised")
        time.sleep(2)
        got = alerts_on_topic(bootstrap, topics)
        assert_each_event_once(got)
        assert raised_ids(got) == want
        wait_until(lambda: len(Receiver.accepted) >= len(got), 60, "webhook deliveries", worker)
        time.sleep(1)
    finally:
        worker.kill()
        server.shutdown()
    assert Receiver.bad == []
    assert Counter(a["event_id"] for a in Receiver.accepted) == Counter({e["event_id"]: 1 for e in got})
    assert set(Receiver.tries.values()) == {3}
