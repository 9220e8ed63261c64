"""Slows password guessing: after `limit` failed logins within `window_s` from one address or for
one user name, further attempts are refused until the oldest failure leaves the window."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque


class LoginGuard:
    def __init__(self, limit: int = 5, window_s: float = 300.0, clock=time.monotonic) -> None:
        self.limit, self.window_s, self._clock = limit, window_s, clock
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures[key]
        while failures and failures[0] <= now - self.window_s:
            failures.popleft()
        if not failures:
            del self._failures[key]  # a forgotten key costs no memory
            return deque()
        return failures

    def blocked(self, address: str, username: str) -> bool:
        now = self._clock()
        with self._lock:
            return any(len(self._recent(k, now)) >= self.limit for k in (f"a:{address}", f"u:{username}"))

    def failed(self, address: str, username: str) -> None:
        now = self._clock()
        with self._lock:
            for key in (f"a:{address}", f"u:{username}"):
                self._failures[key].append(now)
