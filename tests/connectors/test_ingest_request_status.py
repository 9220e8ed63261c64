"""GET /v1/updates/{request_id}: an authority learns what became of each request (issue 17).

In-process, no broker: the API's record of its answers, and a stand-in for what Kafka says
downstream (povhub/ingest_outcomes.py reads that from the dead letters and the reconcile group's
offsets; tests/connectors/test_ingest_request_status_kafka.py runs it on a broker with a worker).
"""

from __future__ import annotations

import pytest

from connectors.localgov.api import overall
from connectors.localgov.api_keys import KeyStore
from connectors.localgov.request_log import Outcome, Sent
from tests.support.ingest_app import ingest_client
from tests.support.ingest_updates import update

AREAS = ["500101", "500102"]


def test_an_accepted_request_is_accepted_until_something_is_known(tmp_path):
    with ingest_client(tmp_path, AREAS) as (client, key, _):
        posted = client.post("/v1/updates", json=update("s-1"), headers={"X-API-Key": key})
        assert posted.status_code == 202
        got = client.get(f"/v1/updates/{posted.json()['request_id']}", headers={"X-API-Key": key})
    assert got.status_code == 200
    body = got.json()
    assert body["status"] == "accepted"
    assert [(u["event_id"], u["status"]) for u in body["updates"]] == [(posted.json()["event_ids"][0], "accepted")]


def test_a_request_refused_by_the_api_says_why(tmp_path):
    with ingest_client(tmp_path, AREAS) as (client, key, _):
        posted = client.post("/v1/updates", json=update("s-2", subdistrict="500103"), headers={"X-API-Key": key})
        assert posted.status_code == 403
        got = client.get(f"/v1/updates/{posted.headers['X-Request-ID']}", headers={"X-API-Key": key}).json()
    assert (got["status"], got["reason"], got["updates"]) == ("refused", "outside-area", [])
    assert "outside the areas of 6500101" in got["detail"]


def test_what_kafka_says_downstream_is_told_per_update(tmp_path):
    seen: list[list[Sent]] = []

    def downstream(events: list[Sent]) -> dict[str, Outcome]:
        seen.append(events)
        first, second, _third = events
        return {first.event_id: Outcome("applied"),
                second.event_id: Outcome("refused", "outside-area", "household 10010000042 is in 100101")}

    with ingest_client(tmp_path, AREAS, outcomes=downstream) as (client, key, _):
        batch = {"updates": [update(f"b-{i}") for i in range(3)]}
        posted = client.post("/v1/updates:batch", json=batch, headers={"X-API-Key": key}).json()
        got = client.get(f"/v1/updates/{posted['request_id']}", headers={"X-API-Key": key}).json()
    assert [e.event_id for e in seen[0]] == posted["event_ids"] and [e.offset for e in seen[0]] == [0, 1, 2]
    assert [u["status"] for u in got["updates"]] == ["applied", "refused", "accepted"]
    assert got["updates"][1]["reason"] == "outside-area" and got["status"] == "accepted"


def test_unknown_requests_and_other_authorities_requests_are_404(tmp_path):
    with ingest_client(tmp_path, AREAS) as (client, key, _):
        posted = client.post("/v1/updates", json=update("s-3"), headers={"X-API-Key": key}).json()
        assert client.get("/v1/updates/nope", headers={"X-API-Key": key}).status_code == 404
        assert client.get(f"/v1/updates/{posted['request_id']}").status_code == 401
        # another authority serving the same areas: the key file is re-read when it changes
        _, other = KeyStore(tmp_path / "keys.json").add("6500202", "SAO", AREAS)
        got = client.get(f"/v1/updates/{posted['request_id']}", headers={"X-API-Key": other})
        assert got.status_code == 404 and got.json()["reason"] == "unknown-request"


def test_downstream_unreadable_is_503_not_500(tmp_path):
    def broken(events: list[Sent]) -> dict[str, Outcome]:
        raise ConnectionError("Kafka is down")

    with ingest_client(tmp_path, AREAS, outcomes=broken) as (client, key, _):
        posted = client.post("/v1/updates", json=update("s-4"), headers={"X-API-Key": key}).json()
        got = client.get(f"/v1/updates/{posted['request_id']}", headers={"X-API-Key": key})
    assert got.status_code == 503 and got.headers["Retry-After"]


@pytest.mark.parametrize(("statuses", "expected"), [
    (["applied", "applied"], "applied"), (["applied", "accepted"], "accepted"), (["refused"], "refused"),
    (["refused", "applied"], "partly-refused"), (["refused", "accepted"], "accepted"),
])
def test_a_requests_status_from_its_updates(statuses, expected):
    assert overall(statuses) == expected


def test_the_openapi_document_describes_the_status_endpoint(tmp_path):
    with ingest_client(tmp_path, AREAS) as (client, _, _):
        doc = client.get("/openapi.json").json()
    get = doc["paths"]["/v1/updates/{request_id}"]["get"]
    assert {"200", "401", "404", "503"} <= set(get["responses"])
    outcome = doc["components"]["schemas"]["UpdateOutcome"]["properties"]["status"]
    assert outcome["enum"] == ["accepted", "applied", "refused"] and "dead letter" in outcome["description"]
