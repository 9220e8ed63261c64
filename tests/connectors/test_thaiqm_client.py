"""The Thai QM HTTP client against the loopback server: paging over ties, retries, 429, rate limit."""

from __future__ import annotations

import time
from email.utils import formatdate

import pytest

from connectors.thaiqm.client import RateLimiter, ThaiQmApiError, ThaiQmClient, ThaiQmUnavailable, retry_after_seconds
from tests.support.thaiqm_server import TOKEN, ThaiQmServer, make_dataset


class Sleeps(list):
    """Records the waits the client asks for instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def client(server: ThaiQmServer, sleeps: Sleeps, **kw) -> ThaiQmClient:
    return ThaiQmClient(server.url, TOKEN, rate_limit=1000, sleep=sleeps, **{"timeout_s": 2.0, **kw})


def read_all(c: ThaiQmClient, feed: str, limit: int) -> list[str]:
    key = "case_id" if feed == "households" else "problem_id"
    position, ids = None, []
    while True:
        page = c.page(feed, position, limit)
        ids += [item[key] for item in page.items]
        position = page.next or position
        if not page.has_more:
            return ids


@pytest.mark.parametrize("limit", [1, 3, 4, 5, 1000])
def test_pages_split_equal_timestamps_without_skipping_or_repeating(limit):
    data = make_dataset(households=20, tie=4)
    with ThaiQmServer(data) as server:
        for feed, key in (("households", "case_id"), ("problems", "problem_id")):
            expected = [r[key] for r in sorted(data[feed], key=lambda r: (r["updated_at"], r[key]))]
            assert read_all(client(server, Sleeps()), feed, limit) == expected


def test_a_500_is_retried_with_growing_backoff_not_skipped():
    with ThaiQmServer(make_dataset(households=8)) as server:
        sleeps = Sleeps()
        c = client(server, sleeps, backoff_s=1.0)
        first = c.page("problems", None, 5)
        server.fail_next(3, status=503)
        second = c.page("problems", first.next, 5)
        assert [r.status for r in server.requests] == [200, 503, 503, 503, 200]
        assert len({tuple(sorted(r.query.items())) for r in server.requests[1:]}) == 1  # the same page asked again
        assert second.items[0]["problem_id"] > first.items[-1]["problem_id"]
        assert 0.5 <= sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0 and 2.0 <= sleeps[2] <= 4.0


def test_a_timeout_is_retried():
    with ThaiQmServer(make_dataset(households=8)) as server:
        server.stall_next(1, seconds=1.0)
        page = client(server, Sleeps(), timeout_s=0.3).page("households", None, 5)
        assert len(page.items) == 5 and len(server.requests) == 2


def test_a_429_waits_for_retry_after_without_using_up_attempts():
    with ThaiQmServer(make_dataset(households=8)) as server:
        sleeps = Sleeps()
        server.throttle_next(3, retry_after=7)
        page = client(server, sleeps, max_attempts=1).page("households", None, 5)
        assert len(page.items) == 5
        assert sleeps == [7.0, 7.0, 7.0]


def test_a_dead_server_fails_the_call_after_the_attempts():
    with ThaiQmServer(make_dataset(households=2)) as server:
        url = server.url
    c = ThaiQmClient(url, TOKEN, rate_limit=1000, max_attempts=4, sleep=Sleeps())
    with pytest.raises(ThaiQmUnavailable, match="after 4 attempts"):
        c.page("households", None, 5)


def test_a_bad_token_is_not_retried():
    with ThaiQmServer(make_dataset(households=2)) as server:
        with pytest.raises(ThaiQmApiError, match="401"):
            ThaiQmClient(server.url, "wrong", sleep=Sleeps()).page("households", None, 5)
        assert len(server.requests) == 1


def test_the_rate_limit_spaces_requests_evenly():
    now = [100.0]
    sleeps = Sleeps()

    def sleep(s: float) -> None:
        sleeps(s)
        now[0] += s

    limiter = RateLimiter(4.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        limiter.wait()
    assert sleeps == [0.25] * 4


def test_retry_after_accepts_seconds_and_http_dates():
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(None) == 1.0 and retry_after_seconds("soon") == 1.0
    assert 8 <= retry_after_seconds(formatdate(time.time() + 10, usegmt=True)) <= 10
