"""HTTP client for the Thai QM change feed (``openapi.yaml``): one page per call, retried until it arrives.

A page is never skipped: 5xx answers, timeouts, broken connections and unreadable bodies are
retried with capped exponential backoff and jitter, and when the attempts run out the call raises
(the caller's cursor has not moved, so the next run asks for the same page). A 429 waits for its
``Retry-After`` and does not use up an attempt. A client-side limit keeps requests per second
under what the source allows, so the 429s should not happen at all.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from connectors.thaiqm.records import Feed
from schemas.metrics import SOURCE_REQUESTS

log = logging.getLogger(__name__)
SOURCE = "thaiqm"


class ThaiQmApiError(RuntimeError):
    """The API refused the request (4xx other than 429) or broke its contract: retrying will not help."""


class ThaiQmUnavailable(RuntimeError):
    """The API did not deliver the page within the allowed attempts."""


@dataclass(frozen=True)
class Position:
    """A keyset position: the ``(updated_at, id)`` of the last record read, as the server wrote them."""

    updated_since: str
    after_id: str


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next: Position | None
    has_more: bool
    request: str  # "GET /v1/problems?updated_since=…", for dead letters and logs


class RateLimiter:
    """At most `rate` calls per second, evenly spaced (no bursts: the source sees a steady client)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0:
            raise ValueError("the rate limit must be positive")
        self.interval = 1.0 / rate
        self._clock, self._sleep = clock, sleep
        self._next_at = 0.0

    def wait(self) -> None:
        now = self._clock()
        if now < self._next_at:
            self._sleep(self._next_at - now)
        self._next_at = max(now, self._next_at) + self.interval


def retry_after_seconds(value: str | None, default: float = 1.0) -> float:
    """The wait a 429 asks for: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return default
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return default


class ThaiQmClient:
    def __init__(self, base_url: str, token: str | None, *, timeout_s: float = 30.0, rate_limit: float = 5.0,
                 max_attempts: int = 8, backoff_s: float = 0.5, backoff_cap_s: float = 60.0,
                 max_retry_after_s: float = 600.0, sleep: Callable[[float], None] = time.sleep) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.backoff_s, self.backoff_cap_s = backoff_s, backoff_cap_s
        self.max_retry_after_s = max_retry_after_s
        self._sleep = sleep
        self._limiter = RateLimiter(rate_limit, sleep=sleep)
        self._session = requests.Session()
        self._session.headers["Accept"] = "application/json"
        if token:
            self._session.headers["Authorization"] = f"Bearer {token}"

    def page(self, feed: Feed, position: Position | None, limit: int) -> Page:
        """The page of `feed` after `position` (from the beginning when None)."""
        params: dict[str, str | int] = {"limit": limit}
        if position is not None:
            params.update(updated_since=position.updated_since, after_id=position.after_id)
        url = f"{self.base_url}/v1/{feed}"
        failures = 0
        while True:
            self._limiter.wait()
            outcome, problem = self._attempt(url, params)
            if isinstance(problem, Page):
                return problem
            SOURCE_REQUESTS.labels(SOURCE, outcome).inc()
            if outcome == "rate_limited":
                continue
            failures += 1
            if failures >= self.max_attempts:
                raise ThaiQmUnavailable(f"GET {url}: no page after {failures} attempts; last: {problem}")
            delay = min(self.backoff_cap_s, self.backoff_s * 2 ** (failures - 1)) * random.uniform(0.5, 1.0)
            log.warning("GET %s failed (%s: %s); retry %d in %.2fs", url, outcome, problem, failures, delay)
            self._sleep(delay)

    def _attempt(self, url: str, params: dict[str, str | int]) -> tuple[str, Page | str]:
        """One request: ("ok", page) or (outcome, what went wrong) for a retryable failure."""
        try:
            resp = self._session.get(url, params=params, timeout=self.timeout_s)
        except requests.Timeout as e:
            return "timeout", repr(e)
        except requests.ConnectionError as e:
            return "connection_error", repr(e)
        if resp.status_code == 429:
            wait = min(self.max_retry_after_s, retry_after_seconds(resp.headers.get("Retry-After")))
            log.warning("GET %s: 429, waiting %.1fs as Retry-After asks", url, wait)
            self._sleep(wait)
            return "rate_limited", "429"
        if resp.status_code >= 500:
            return "server_error", f"HTTP {resp.status_code}"
        if resp.status_code != 200:
            SOURCE_REQUESTS.labels(SOURCE, "client_error").inc()
            raise ThaiQmApiError(f"GET {url}: HTTP {resp.status_code}: {resp.text[:300]}")
        try:
            page = self._parse(resp)
        except (ValueError, KeyError, TypeError) as e:  # a truncated or garbled body: ask again
            return "bad_response", repr(e)
        SOURCE_REQUESTS.labels(SOURCE, "ok").inc()
        return "ok", page

    @staticmethod
    def _parse(resp: requests.Response) -> Page:
        body = resp.json()
        items = body["items"]
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise TypeError("items is not a list of objects")
        nxt = body["next"]
        position = None if nxt is None else Position(str(nxt["updated_since"]), str(nxt["after_id"]))
        has_more = bool(body["has_more"])
        if has_more and position is None:
            raise ValueError("has_more without a next position")
        parts = urlsplit(resp.url)
        return Page(items, position, has_more, f"GET {parts.path}?{parts.query}")
