"""Alert webhooks against receivers on loopback: signed payloads, retries with backoff, dead letters."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections import Counter

import aiohttp
import pytest
from aiohttp import web

from streams.alert_lifecycle import new_entry, step
from streams.alert_rules import load_alert_rules
from streams.webhooks import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Dispatcher,
    Target,
    WebhookError,
    load_targets,
    parse_targets,
    signature,
)
from tests.support.alert_households import NOW, calm_state

SECRET = "webhook-secret-for-tests-0123456789"
RULES = load_alert_rules()


def alert_events(n: int = 3) -> list[dict]:
    events = []
    for h in range(n):
        entry = new_entry(f"5001{h:07d}", 0)
        events += step(entry, RULES, NOW, calm_state(household=f"5001{h:07d}", child_out_of_school=True)).events
    return events


class Receiver:
    """A webhook receiver: ``fail_first`` answers 500 that many times per event, then 200."""

    def __init__(self, fail_first: int = 0, status: int = 500, delay_first_s: float = 0.0) -> None:
        self.fail_first, self.status, self.delay_first_s = fail_first, status, delay_first_s
        self.tries: Counter[str] = Counter()
        self.accepted: list[dict] = []
        self.bad_signatures = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        stamp = request.headers[TIMESTAMP_HEADER]
        expected = "sha256=" + hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers[SIGNATURE_HEADER]):
            self.bad_signatures += 1
            return web.Response(status=401)
        event_id = request.headers[EVENT_ID_HEADER]
        self.tries[event_id] += 1
        if self.tries[event_id] == 1 and self.delay_first_s:
            await asyncio.sleep(self.delay_first_s)
        if self.tries[event_id] <= self.fail_first:
            return web.Response(status=self.status)
        payload = json.loads(body)
        assert payload["event_id"] == event_id
        self.accepted.append(payload)
        return web.Response(status=204)


async def serve(receiver: Receiver):
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}/hook"


def deliver_all(receiver: Receiver, events: list[dict], **target_fields):
    """Run a dispatcher against the receiver; return (dead letters, pauses slept)."""
    dead, pauses = [], []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)

    async def dead_letter(target, event, detail, origin) -> None:
        dead.append((target.id, event["event_id"], detail, origin))

    async def scenario() -> None:
        runner, url = await serve(receiver)
        try:
            fields = {"id": "bridge", "url": url, "secret": SECRET.encode(), "attempts": 4, "backoff_s": 0.5,
                      "timeout_s": 2.0, **target_fields}
            async with aiohttp.ClientSession() as session:
                dispatcher = Dispatcher((Target(**fields),), session, dead_letter, sleep=sleep)
                await asyncio.gather(*(dispatcher.dispatch(e, origin=i) for i, e in enumerate(events)))
        finally:
            await runner.cleanup()

    asyncio.run(scenario())
    return dead, pauses


def test_a_receiver_gets_signed_payloads_of_every_alert():
    receiver, events = Receiver(), alert_events(3)
    dead, pauses = deliver_all(receiver, events)
    assert dead == [] and pauses == [] and receiver.bad_signatures == 0
    assert sorted(p["event_id"] for p in receiver.accepted) == sorted(e["event_id"] for e in events)
    got = next(p for p in receiver.accepted if p["event_id"] == events[0]["event_id"])
    assert got["alert_id"] == events[0]["alert_id"] and got["title_th"] == events[0]["title_th"]
    assert got["event_time"] == NOW and got["level"] == "subdistrict"


def test_a_receiver_that_fails_twice_then_succeeds_gets_each_alert_exactly_once():
    receiver, events = Receiver(fail_first=2), alert_events(4)
    dead, pauses = deliver_all(receiver, events)
    assert dead == []
    assert Counter(p["event_id"] for p in receiver.accepted) == Counter({e["event_id"]: 1 for e in events})
    assert set(receiver.tries.values()) == {3}
    assert sorted(pauses) == sorted([0.5, 1.0] * 4), "exponential backoff between the tries"


def test_a_time_out_is_retried():
    receiver, events = Receiver(delay_first_s=1.5), alert_events(1)
    dead, pauses = deliver_all(receiver, events, timeout_s=0.5)
    assert dead == [] and pauses == [0.5]
    assert receiver.tries[events[0]["event_id"]] == 2


def test_a_receiver_that_always_fails_gets_the_event_dead_lettered_after_the_last_retry():
    receiver, events = Receiver(fail_first=99, status=503), alert_events(2)
    dead, pauses = deliver_all(receiver, events, attempts=3)
    assert receiver.accepted == [] and set(receiver.tries.values()) == {3}
    assert sorted((t, e) for t, e, _, _ in dead) == sorted(("bridge", e["event_id"]) for e in events)
    assert all("HTTP 503 after 3 attempt(s)" in d for _, _, d, _ in dead)
    assert sorted(o for *_, o in dead) == [0, 1], "the origin (Kafka message) goes with the dead letter"
    assert sorted(pauses) == [0.5, 0.5, 1.0, 1.0]


def test_a_client_error_is_not_retried():
    receiver, events = Receiver(fail_first=99, status=400), alert_events(1)
    dead, pauses = deliver_all(receiver, events)
    assert pauses == [] and receiver.tries[events[0]["event_id"]] == 1
    assert len(dead) == 1 and "HTTP 400 after 1 attempt(s)" in dead[0][2]


def test_an_unreachable_receiver_is_retried_then_dead_lettered():
    dead, pauses = [], []

    async def scenario() -> None:
        async def dead_letter(target, event, detail, origin) -> None:
            dead.append(detail)

        async def sleep(s: float) -> None:
            pauses.append(s)

        target = Target(id="gone", url="http://127.0.0.1:9/hook", secret=SECRET.encode(), attempts=2, backoff_s=0.1)
        async with aiohttp.ClientSession() as session:
            await Dispatcher((target,), session, dead_letter, sleep=sleep).dispatch(alert_events(1)[0])

    asyncio.run(scenario())
    assert pauses == [0.1] and len(dead) == 1 and "after 2 attempt(s)" in dead[0]


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body():
    body = b'{"a":1}'
    assert signature(b"k" * 16, "1700000000", body) == "sha256=" + hmac.new(
        b"k" * 16, b"1700000000." + body, hashlib.sha256).hexdigest()


# ------------------------------------------------------------------------------ targets

ENV = {"POVHUB_WEBHOOK_SECRET": SECRET, "LINE_SECRET": SECRET[::-1]}


def test_targets_match_by_level_area_prefix_and_action():
    [line, email, everyone] = parse_targets({"version": 1, "targets": [
        {"id": "line-cm", "url": "https://line.example/hook", "levels": ["district", "province"], "areas": ["50"],
         "secret_env": "LINE_SECRET"},
        {"id": "email-5001", "url": "http://mail.example/x", "areas": ["500102", "5001"],
         "actions": ["RAISED", "ESCALATED"]},
        {"id": "all", "url": "http://all.example/x"}]}, ENV)
    assert line.secret == SECRET[::-1].encode() and everyone.areas == ()
    event = {"level": "district", "action": "RAISED", "province": "50", "district": "5001", "subdistrict": "500101",
             "village": "50010103"}
    assert line.matches(event) and email.matches(event) and everyone.matches(event)
    assert not line.matches({**event, "level": "subdistrict"})
    assert not email.matches({**event, "action": "RESOLVED"})
    elsewhere = {**event, "province": "10", "district": "1001", "subdistrict": "100101", "village": None}
    assert not line.matches(elsewhere) and not email.matches(elsewhere) and everyone.matches(elsewhere)


@pytest.mark.parametrize(("target", "env", "field"), [
    ({"id": "x", "url": "ftp://x"}, ENV, "url"),
    ({"id": "x", "url": "http://x", "levels": ["village"]}, ENV, "levels"),
    ({"id": "x", "url": "http://x", "areas": ["5o"]}, ENV, "areas"),
    ({"id": "x", "url": "http://x", "attempts": 0}, ENV, "attempts"),
    ({"id": "x", "url": "http://x", "timeout": 3}, ENV, "timeout"),
    ({"id": "x", "url": "http://x"}, {}, "secret_env"),
    ({"id": "x", "url": "http://x", "secret_env": "SHORT"}, {"SHORT": "abc"}, "secret_env"),
])
def test_a_bad_target_is_refused_naming_the_target_and_the_field(target, env, field):
    with pytest.raises(WebhookError) as e:
        parse_targets({"version": 1, "targets": [target]}, env)
    assert "webhook target 'x'" in str(e.value) and f"field '{field}'" in str(e.value), str(e.value)
    assert SECRET not in str(e.value) and "abc" not in str(e.value)


def test_targets_load_from_a_file(tmp_path):
    path = tmp_path / "webhooks.json"
    path.write_text(json.dumps({"version": 1, "targets": [{"id": "a", "url": "http://127.0.0.1:1/h"}]}))
    assert [t.id for t in load_targets(path, ENV)] == ["a"]
    path.write_text("[")
    with pytest.raises(WebhookError, match="cannot read webhooks"):
        load_targets(path, ENV)


def test_an_event_met_again_is_not_posted_again():
    receiver, events = Receiver(), alert_events(2)
    dead, _ = deliver_all(receiver, events + events + [dict(events[0])])
    assert dead == [] and sorted(receiver.tries.values()) == [1, 1]
