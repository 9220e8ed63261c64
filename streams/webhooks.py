"""Alert notifications: every alert event POSTed to the webhooks subscribed to its level and area.

Targets come from a JSON file (``POVHUB_WEBHOOKS_FILE``)::

    {"version": 1, "targets": [
      {"id": "line-chiang-mai", "url": "https://bridge.example/povhub",
       "levels": ["district", "province"],      # optional: default every level
       "areas": ["50"],                          # optional: area-code prefixes; default everywhere
       "actions": ["RAISED", "ESCALATED"],       # optional: default every action
       "secret_env": "POVHUB_WEBHOOK_SECRET",    # optional: the variable holding the HMAC key
       "timeout_s": 10, "attempts": 5, "backoff_s": 1.0}]}  # optional

An alert matches a target when its level and action are listed and its area code (village, else
sub-district) starts with one of the prefixes. The body is the alert event as JSON (times in epoch
milliseconds); headers ``X-Povhub-Event-Id`` (receivers deduplicate on it: a retry after a lost
answer, or a worker restart, can deliver an event again), ``X-Povhub-Timestamp`` (Unix seconds)
and ``X-Povhub-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>``.

A 5xx, a 429, a time-out or a connection error is retried with exponential backoff; after the last
attempt (or at once on another 4xx) the event goes to ``povhub.dlq.v1`` with reason
``webhook-failed``. The notifier is its own consumer group on the alert topic, apart from the
alerts stage, so a slow receiver never holds up alert evaluation; it commits a batch's offsets once
every event was delivered or dead-lettered. An event the worker meets again (a rebalance or a
rewind re-reads the topic) is not posted again; after a restart it may be, so delivery is at least
once and receivers deduplicate on the event id.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from kafka.consumer.fetcher import ConsumerRecord

from pipeline.clients import SESSION_TIMEOUT_S
from schemas.codec import Codec, DecodeError
from schemas.metrics import WEBHOOK_DELIVERIES, WEBHOOK_REQUESTS
from schemas.topics import ALERT, Topics
from streams.alert_lifecycle import plain
from schemas.vocabulary import SJP_LEVELS
from streams.alert_rules import AlertRulesError
from streams.dead_letters import DeadLetterProducer
from streams.person_index import RawMessage, raw_message
from pipeline.liveness import Progress
from pipeline.commit_after import GroupConfig, commit_after
from streams.state_rules import read_json_file

log = logging.getLogger(__name__)
STAGE = "webhooks"
REASON = "webhook-failed"
ACTIONS = ("RAISED", "ESCALATED", "ACKNOWLEDGED", "RESOLVED")
DEFAULT_SECRET_ENV = "POVHUB_WEBHOOK_SECRET"
MIN_SECRET = 16
MAX_BACKOFF_S = 60.0
CONCURRENCY = 8  # requests in flight per target
REMEMBERED = 200_000  # (target, event id) pairs a dispatcher remembers having handled
TARGET_KEYS = {"id", "url", "levels", "areas", "actions", "secret_env", "timeout_s", "attempts", "backoff_s"}
SIGNATURE_HEADER, TIMESTAMP_HEADER, EVENT_ID_HEADER = "X-Povhub-Signature", "X-Povhub-Timestamp", "X-Povhub-Event-Id"


class WebhookError(AlertRulesError):
    pass


@dataclass(frozen=True)
class Target:
    id: str
    url: str
    secret: bytes
    levels: frozenset[str] = frozenset(SJP_LEVELS)
    areas: tuple[str, ...] = ()
    actions: frozenset[str] = frozenset(ACTIONS)
    timeout_s: float = 10.0
    attempts: int = 5
    backoff_s: float = 1.0

    def matches(self, event: Mapping[str, Any]) -> bool:
        area = event.get("village") or event.get("subdistrict") or event.get("district") or event.get("province") or ""
        return (event["level"] in self.levels and event["action"] in self.actions
                and (not self.areas or any(area.startswith(a) for a in self.areas)))

    def backoff(self, attempt: int) -> float:
        """Pause after the ``attempt``-th failed try (1-based)."""
        return min(self.backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_S)


def _number(spec: Mapping[str, Any], key: str, default: float, where: str, whole: bool = False) -> Any:
    value = spec.get(key, default)
    bad = isinstance(value, bool) or not isinstance(value, int if whole else (int, float)) or value <= 0
    if bad:
        raise WebhookError(f"{where}, field {key!r}: needs a {'whole ' if whole else ''}number above 0, got {value!r}")
    return value


def _names(spec: Mapping[str, Any], key: str, allowed: tuple[str, ...], where: str) -> frozenset[str]:
    value = spec.get(key, list(allowed))
    if not isinstance(value, list) or not value or any(v not in allowed for v in value):
        raise WebhookError(f"{where}, field {key!r}: needs a non-empty list of {', '.join(allowed)}, got {value!r}")
    return frozenset(value)


def parse_target(spec: Any, env: Mapping[str, str]) -> Target:
    if not isinstance(spec, Mapping):
        raise WebhookError(f"webhooks: every target must be an object, got {spec!r}")
    tid = spec.get("id")
    where = f"webhook target {tid!r}"
    if not isinstance(tid, str) or not re.match(r"^[A-Za-z0-9._-]{1,64}$", tid):
        raise WebhookError(f"{where}, field 'id': needs letters, digits, '.', '_' or '-' (at most 64)")
    unknown = sorted(k for k in spec if k not in TARGET_KEYS and not k.startswith("_"))
    if unknown:
        raise WebhookError(f"{where}, field {unknown[0]!r}: unknown; a target has {', '.join(sorted(TARGET_KEYS))}")
    url = spec.get("url")
    if not isinstance(url, str) or not re.match(r"^https?://[^/\s]+", url):
        raise WebhookError(f"{where}, field 'url': needs an http(s):// URL, got {url!r}")
    areas = spec.get("areas", [])
    if not isinstance(areas, list) or any(not isinstance(a, str) or not a.isdigit() for a in areas):
        raise WebhookError(f"{where}, field 'areas': needs a list of area-code prefixes (digits), got {areas!r}")
    secret_env = spec.get("secret_env", DEFAULT_SECRET_ENV)
    if not isinstance(secret_env, str) or not secret_env:
        raise WebhookError(f"{where}, field 'secret_env': needs the name of an environment variable")
    secret = env.get(secret_env, "")
    if len(secret) < MIN_SECRET:
        raise WebhookError(f"{where}, field 'secret_env': environment variable {secret_env} must hold the HMAC "
                           f"key, at least {MIN_SECRET} characters ({'too short' if secret else 'not set'})")
    return Target(id=tid, url=url, secret=secret.encode(), levels=_names(spec, "levels", SJP_LEVELS, where),
                  areas=tuple(areas), actions=_names(spec, "actions", ACTIONS, where),
                  timeout_s=float(_number(spec, "timeout_s", 10.0, where)),
                  attempts=int(_number(spec, "attempts", 5, where, whole=True)),
                  backoff_s=float(_number(spec, "backoff_s", 1.0, where)))


def parse_targets(doc: Any, env: Mapping[str, str]) -> tuple[Target, ...]:
    if not isinstance(doc, Mapping) or not isinstance(doc.get("targets"), list):
        raise WebhookError("webhooks: the file must hold {\"version\": 1, \"targets\": [...]}")
    targets = tuple(parse_target(t, env) for t in doc["targets"])
    ids = [t.id for t in targets]
    dup = next((i for i in ids if ids.count(i) > 1), None)
    if dup is not None:
        raise WebhookError(f"webhook target {dup!r}, field 'id': used by two targets")
    return targets


def load_targets(path: Path, env: Mapping[str, str] | None = None) -> tuple[Target, ...]:
    return parse_targets(read_json_file(path, "webhooks", WebhookError), os.environ if env is None else env)


# ------------------------------------------------------------------------------ delivery

def body_of(event: Mapping[str, Any]) -> bytes:
    return json.dumps(plain(event), ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """What a receiver recomputes to check the ``X-Povhub-Signature`` header."""
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


DeadLetter = Callable[[Target, Mapping[str, Any], str, Any], Awaitable[None]]  # target, event, detail, origin


class Dispatcher:
    """Delivers alert events to the matching targets; what cannot be delivered goes to ``dead_letter``."""

    def __init__(self, targets: tuple[Target, ...], session: aiohttp.ClientSession, dead_letter: DeadLetter,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, clock: Callable[[], float] = time.time):
        self.targets, self.session, self.dead_letter, self.sleep, self.clock = targets, session, dead_letter, sleep, clock
        self._slots = {t.id: asyncio.Semaphore(CONCURRENCY) for t in targets}
        # (target, event id) handled by this process, newest last: an event fetched again after a
        # rebalance or a rewind is not posted again (a restart forgets; receivers deduplicate).
        self._handled: OrderedDict[tuple[str, str], None] = OrderedDict()

    async def dispatch(self, event: Mapping[str, Any], origin: Any = None) -> None:
        """Deliver to every matching target; ``origin`` (the Kafka message) goes to ``dead_letter``."""
        await asyncio.gather(*(self.deliver(t, event, origin) for t in self.targets if t.matches(event)))

    async def _post(self, target: Target, event_id: str, body: bytes) -> tuple[str, str]:
        """One attempt: (outcome, detail)."""
        stamp = str(int(self.clock()))
        headers = {"Content-Type": "application/json; charset=utf-8", EVENT_ID_HEADER: event_id,
                   TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: signature(target.secret, stamp, body)}
        try:
            async with self.session.post(target.url, data=body, headers=headers,
                                         timeout=aiohttp.ClientTimeout(total=target.timeout_s)) as resp:
                await resp.read()
                status = resp.status
        except TimeoutError:
            return "timeout", f"no answer within {target.timeout_s:g} s"
        except aiohttp.ClientError as e:
            return "connection_error", repr(e)
        if 200 <= status < 300:
            return "ok", str(status)
        if status >= 500 or status == 429:
            return "server_error", f"HTTP {status}"
        return "client_error", f"HTTP {status}"

    def _first_time(self, target: Target, event_id: str) -> bool:
        key = (target.id, event_id)
        if key in self._handled:
            self._handled.move_to_end(key)
            return False
        self._handled[key] = None
        if len(self._handled) > REMEMBERED:
            self._handled.popitem(last=False)
        return True

    async def deliver(self, target: Target, event: Mapping[str, Any], origin: Any = None) -> bool:
        if not self._first_time(target, event["event_id"]):
            WEBHOOK_DELIVERIES.labels(target.id, "repeat_skipped").inc()
            return True
        body = body_of(event)
        detail = ""
        async with self._slots[target.id]:
            for attempt in range(1, target.attempts + 1):
                outcome, detail = await self._post(target, event["event_id"], body)
                WEBHOOK_REQUESTS.labels(target.id, outcome).inc()
                if outcome == "ok":
                    WEBHOOK_DELIVERIES.labels(target.id, "delivered").inc()
                    return True
                if outcome == "client_error":
                    break
                if attempt < target.attempts:
                    await self.sleep(target.backoff(attempt))
        log.warning("webhook %s: alert event %s not delivered after %d attempt(s): %s", target.id,
                    event["event_id"], attempt, detail)
        WEBHOOK_DELIVERIES.labels(target.id, "dead_letter").inc()
        await self.dead_letter(target, event, f"webhook {target.id} ({target.url}): {detail} after {attempt} "
                                              f"attempt(s)", origin)
        return False


def webhook_config(bootstrap_servers: str, app_id: str, worker_id: str, topics: Topics, batch_size: int = 200,
                   batch_seconds: float = 0.5, session_timeout_s: float = SESSION_TIMEOUT_S) -> GroupConfig:
    """The consumer group that posts the alert topic to the webhooks."""
    return GroupConfig(bootstrap_servers, f"{app_id}-alert-webhooks", worker_id, (topics.name(ALERT),), batch_size,
                       batch_seconds, session_timeout_s)


class WebhookRunner:
    """Its own consumer group on the alert topic (read_committed: alerts of aborted transactions are
    never posted); a batch's offsets are committed once every event was delivered or dead-lettered."""

    def __init__(self, cfg: GroupConfig, codec: Codec, targets: tuple[Target, ...],
                 dlq: DeadLetterProducer) -> None:
        self.cfg, self.codec, self.targets, self.dlq = cfg, codec, targets, dlq
        self.progress = Progress(cfg.group, cfg.bounds)

    async def _to_dlq(self, target: Target, event: Mapping[str, Any], detail: str, raw: RawMessage) -> None:
        self.dlq.send(STAGE, REASON, raw, detail, record_id=f"{target.id}@{raw.topic}:{raw.partition}:{raw.offset}")

    def run(self, stop: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)  # this thread's own loop: the dispatcher's semaphores and HTTP session live on it
        session = loop.run_until_complete(_session())
        dispatcher = Dispatcher(self.targets, session, self._to_dlq)

        def deliver(batch: list[ConsumerRecord]) -> None:
            jobs = []
            for r in batch:
                raw = raw_message(r)
                try:
                    record = self.codec.decode(r.value, ALERT.name)
                except DecodeError as exc:
                    self.dlq.send(STAGE, "undecodable", raw, str(exc))
                    continue
                jobs.append(dispatcher.dispatch(record, raw))
            loop.run_until_complete(asyncio.gather(*jobs))
            self.dlq.flush()

        try:
            commit_after(self.cfg, deliver, stop, self.progress)
        finally:
            loop.run_until_complete(session.close())
            loop.close()


async def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession()
