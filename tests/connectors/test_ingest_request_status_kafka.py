"""GET /v1/updates/{request_id} on a real broker with a worker (issue 17): an update the reconcile
stage refuses (a household outside the authority's areas) is reported refused with the dead
letter's reason; one inside them is reported applied."""

from __future__ import annotations

import csv
import time

import httpx
import pytest

from povhub.demo import SAMPLE
from povhub.worker_client import WorkerProcess
from tests.support.ingest_server import add_key, ingest_api, post, run_povhub
from tests.support.ingest_updates import update

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


def _a_household(province: str) -> dict[str, str]:
    with SAMPLE.open(encoding="utf-8") as f:
        row = next(r for r in csv.DictReader(f) if r["province_code"] == province)
    return {"house_code": row["house_code"], "province": row["province_code"], "district": row["district_code"],
            "subdistrict": row["subdistrict_code"]}


def test_an_authority_learns_which_update_was_applied_and_which_refused(hub_env, tmp_path):
    run_povhub(hub_env, "connect", "tpmap", "--quiet", str(SAMPLE))
    worker = WorkerProcess(hub_env, tmp_path / "worker.log").start()
    try:
        worker.wait_for(lambda rows: sum(r["households"] or 0 for r in rows) == 300, timeout=180,
                        what="the sample's households in ClickHouse")
        ours, bangkok = _a_household("50"), _a_household("10")
        key = add_key(hub_env, "6500101", ours["subdistrict"])
        with ingest_api(hub_env) as url:
            inside = post(url, "/v1/updates", update("in-1", citizen_id=None, **ours), key)
            # Bangkok's house code, the authority's own area written on the update: the API cannot tell
            outside = post(url, "/v1/updates", update("out-1", citizen_id=None, **{**ours, "house_code":
                                                                                      bangkok["house_code"]}), key)
            assert (inside.status_code, outside.status_code) == (202, 202), inside.text + outside.text
            answers = {}
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                answers = {name: httpx.get(f"{url}/v1/updates/{r.json()['request_id']}", headers={"X-API-Key": key},
                                           timeout=30).json() for name, r in (("in", inside), ("out", outside))}
                if all(a.get("status") not in (None, "accepted") for a in answers.values()):
                    break
                time.sleep(1)
    finally:
        worker.stop()
    assert answers["in"]["status"] == "applied", answers
    assert answers["out"]["status"] == "refused", answers
    [refused] = answers["out"]["updates"]
    assert refused["reason"] == "outside-area" and bangkok["subdistrict"] in refused["detail"]
