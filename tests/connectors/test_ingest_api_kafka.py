"""The อปท. ingest API as a client meets it: `povhub ingest-api` under uvicorn on loopback, a real broker.

The matrix of issue 3 (no key, wrong area, malformed, valid, retried with the same Idempotency-Key,
Kafka down), then the topics: every accepted event id is there exactly once, every refusal with data
is in the DLQ, and no clear citizen ID is anywhere.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from schemas.codec import Codec
from schemas.topics import DEAD_LETTER, LOCALGOV_UPDATE, Topics
from tests.conftest import free_port
from tests.support.ingest_server import add_key, ingest_api, post
from tests.support.ingest_updates import NO_STATUS_ID, THAI_ID, update
from tests.support.kafka_read import read_topic

pytestmark = pytest.mark.kafka


@contextmanager
def tcp_proxy(port: int, target: str) -> Iterator[None]:
    """Forward 127.0.0.1:`port` to `target` (host:port) while the block runs: a broker that comes back."""
    host, target_port = target.rsplit(":", 1)
    loop = asyncio.new_event_loop()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(host, int(target_port))
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    server = loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", port))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        server.close()


def test_status_matrix_and_what_reaches_kafka(hub_env):
    key = add_key(hub_env, "6500101", "5001")
    accepted: list[str] = []
    refused: dict[str, str] = {}  # request id -> reason, expected in the DLQ

    with ingest_api(hub_env) as url:
        assert post(url, "/v1/updates", update("a-1"), key=None).status_code == 401
        assert post(url, "/v1/updates", update("a-1"), key=key[:-1] + "x").status_code == 401
        no_key_bad_json = httpx.post(f"{url}/v1/updates", content=b"{not json", timeout=10)
        assert no_key_bad_json.status_code == 401

        outside = post(url, "/v1/updates", update("a-2", province="10", district="1001", subdistrict="100101"), key)
        assert outside.status_code == 403 and outside.json()["reason"] == "outside-area"
        refused[outside.json()["request_id"]] = "outside-area"

        bad_id = THAI_ID[:-1] + str((int(THAI_ID[-1]) + 1) % 10)
        malformed = post(url, "/v1/updates", update("a-3", citizen_id=bad_id, district="5101",
                                                    assistance={"kind": "GOLD", "amount_baht": -5}), key)
        assert malformed.status_code == 422
        locs = {tuple(e["loc"][-2:]) for e in malformed.json()["errors"]}
        assert {("ASSISTANCE", "citizen_id"), ("ASSISTANCE", "district"), ("assistance", "kind"),
                ("assistance", "amount_baht")} <= locs
        assert bad_id not in malformed.text
        refused[malformed.json()["request_id"]] = "invalid-request"

        first = post(url, "/v1/updates", update("a-4"), key, idempotency_key="retry-1")
        assert first.status_code == 202, first.text
        [event_id] = first.json()["event_ids"]
        accepted.append(event_id)
        again = post(url, "/v1/updates", update("a-4"), key, idempotency_key="retry-1")
        assert again.status_code == 202 and again.json()["event_ids"] == [event_id] and again.json()["replayed"]
        reused = post(url, "/v1/updates", update("a-5"), key, idempotency_key="retry-1")
        assert reused.status_code == 422 and reused.json()["reason"] == "idempotency-key-reused"
        refused[reused.json()["request_id"]] = "idempotency-key-reused"

        batch = [update("v-1", kind="HOME_VISIT", assistance=None, citizen_id=None,
                        visit={"findings": ["BEDRIDDEN", "NO_CAREGIVER"], "note": "อยู่ลำพัง", "visitor_role": "อสม."}),
                 update("r-1", kind="REFERRAL", assistance=None, referral={"to_agency": "พมจ.", "reason": "LTC"}),
                 update("al-1", kind="ALLOWANCE", assistance=None, house_code=None, citizen_id=NO_STATUS_ID,
                        allowance={"allowance_type": "ELDERLY", "status": "ENROLLED", "monthly_amount_baht": 600})]
        many = post(url, "/v1/updates:batch", {"updates": batch}, key)
        assert many.status_code == 202, many.text
        assert len(set(many.json()["event_ids"])) == 3
        accepted += many.json()["event_ids"]
        # A blind retry without Idempotency-Key publishes again, but with the same ids: downstream drops them.
        assert post(url, "/v1/updates:batch", {"updates": batch}, key).json()["event_ids"] == many.json()["event_ids"]

        assert httpx.get(f"{url}/health", timeout=10).json() == {"kafka": "up"}
        assert 'povhub_ingest_requests_total{endpoint="/v1/updates",status="202"}' in \
            httpx.get(f"{url}/metrics", timeout=10).text
        assert "/v1/updates:batch" in httpx.get(f"{url}/openapi.json", timeout=10).json()["paths"]

    with ingest_api(hub_env, KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}") as down:
        unavailable = post(down, "/v1/updates", update("a-6"), key, idempotency_key="down-1")
        assert unavailable.status_code == 503 and int(unavailable.headers["Retry-After"]) > 0
        assert httpx.get(f"{down}/health", timeout=10).status_code == 503

    bootstrap = hub_env["KAFKA_BOOTSTRAP_SERVERS"]
    topics = Topics(hub_env["POVHUB_TOPIC_PREFIX"])
    codec = Codec()
    events = [codec.decode(m.value, LOCALGOV_UPDATE.name)
              for m in read_topic(bootstrap, topics.name(LOCALGOV_UPDATE), len(accepted) + 3)]
    counts = Counter(e["event_id"] for e in events)
    assert set(counts) == set(accepted)
    assert counts[event_id] == 1  # the Idempotency-Key retry published nothing
    person_only = next(e for e in events if e["kind"] == "ALLOWANCE")
    assert person_only["household_key"] is None and person_only["id_flag"] == "NO_THAI_STATUS"
    assert {e["source"] for e in events} == {"localgov:6500101"} and {e["org_type"] for e in events} == {"SAO"}

    letters = [codec.decode(m.value, DEAD_LETTER.name)
               for m in read_topic(bootstrap, topics.name(DEAD_LETTER), len(refused))]
    assert {d["request_id"]: d["reason"] for d in letters} == refused

    clear = [THAI_ID.encode(), NO_STATUS_ID.encode(), bad_id.encode()]
    log = (Path(hub_env["POVHUB_DATA_DIR"]) / "ingest-api.log").read_bytes()
    assert b"refused: 422 invalid-request" in log and not any(cid in log for cid in clear)
    for topic in topics.all():
        for message in read_topic(bootstrap, topic, settle_s=1.0):
            assert not any(cid in (message.value or b"") or cid in (message.key or b"") for cid in clear), topic


def test_rate_limit_per_key_answers_429_with_retry_after(hub_env):
    busy, other = add_key(hub_env, "6500101", "50"), add_key(hub_env, "6500102", "50")
    with ingest_api(hub_env, POVHUB_INGEST_RATE_PER_S="0.2", POVHUB_INGEST_BURST="2") as url:
        statuses = [post(url, "/v1/updates", update(f"rl-{i}"), busy).status_code for i in range(3)]
        assert statuses == [202, 202, 429]
        limited = post(url, "/v1/updates", update("rl-3"), busy)
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
        assert post(url, "/v1/updates", update("rl-4"), other).status_code == 202


def test_api_started_while_kafka_is_down_serves_once_it_is_back(hub_env):
    key = add_key(hub_env, "6500101", "500101")
    port = free_port()
    with ingest_api(hub_env, KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{port}") as url:
        assert post(url, "/v1/updates", update("b-1"), key).status_code == 503
        with tcp_proxy(port, hub_env["KAFKA_BOOTSTRAP_SERVERS"].split(",")[0]):
            deadline = time.monotonic() + 60
            while (status := post(url, "/v1/updates", update("b-1"), key).status_code) == 503:
                assert time.monotonic() < deadline, "still 503 a minute after Kafka came back"
                time.sleep(1)
            assert status == 202
