"""อปท. updates at the edge: validation, the Avro event they become, and the API's small parts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal, get_args, get_origin

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from connectors.citizen_id import check_digit
from connectors.localgov.api import masked
from connectors.localgov.events import DETAIL_FIELD, Authority, kafka_key, update_event
from connectors.localgov.idempotency import Accepted, IdempotencyStore
from connectors.localgov.rate_limit import RateLimiter
from connectors.localgov.updates import (
    Allowance,
    Assistance,
    HomeVisit,
    LocalGovUpdate,
    Referral,
    UpdateBase,
    UpdateBatch,
)
from connectors.pseudonym import Pseudonymiser
from schemas.catalog import load_catalog
from schemas.codec import Codec
from schemas.topics import LOCALGOV_UPDATE

UPDATE = TypeAdapter(LocalGovUpdate)
AUTHORITY = Authority("6500101", "SAO", ("5001",))
PSEUDONYMS = Pseudonymiser("unit-test-secret-0123456789")
CID = "110170020345" + str(check_digit("110170020345"))


def body(**changes: object) -> dict:
    b = {"kind": "ASSISTANCE", "record_id": "aid-1", "occurred_at": "2024-11-20T10:00:00+07:00",
         "house_code": "50010000123", "citizen_id": CID, "province": "50", "district": "5001",
         "subdistrict": "500101", "assistance": {"kind": "CASH", "amount_baht": 3000}}
    return {k: v for k, v in {**b, **changes}.items() if v is not None}


def errors(raw: dict) -> dict[str, str]:
    with pytest.raises(ValidationError) as e:
        UPDATE.validate_python(raw)
    return {".".join(map(str, err["loc"])): err["msg"] for err in e.value.errors(include_input=False)}


def test_a_valid_update_becomes_a_pseudonymised_event_that_fits_the_schema():
    event = update_event(UPDATE.validate_python(body()), AUTHORITY, PSEUDONYMS, ingest_time=1)
    assert event["person_id"] == PSEUDONYMS.person_id(CID) and CID not in str(event)
    assert event["source"] == "localgov:6500101" and event["org_type"] == "SAO"
    assert event["event_time"] == int(datetime(2024, 11, 20, 3, tzinfo=UTC).timestamp() * 1000)
    assert event["assistance"] == {"kind": "CASH", "amount_baht": 3000.0, "programme": None}
    assert Codec().decode(Codec().encode(LOCALGOV_UPDATE.name, event), LOCALGOV_UPDATE.name)["event_id"] == \
        event["event_id"]


def test_an_event_carries_the_areas_of_its_key_which_do_not_change_its_id():
    event = update_event(UPDATE.validate_python(body()), AUTHORITY, PSEUDONYMS, ingest_time=1)
    wider = update_event(UPDATE.validate_python(body()), Authority("6500101", "SAO", ("50", "51")), PSEUDONYMS, 1)
    assert event["authority_areas"] == ["5001"] and wider["authority_areas"] == ["50", "51"]
    assert event["event_id"] == wider["event_id"]


def test_event_ids_derive_from_content_not_from_arrival():
    same = [update_event(UPDATE.validate_python(body(occurred_at=t)), AUTHORITY, PSEUDONYMS, ingest_time=n)
            for n, t in enumerate(["2024-11-20T10:00:00+07:00", "2024-11-20T03:00:00Z"])]
    assert same[0]["event_id"] == same[1]["event_id"]
    changed = update_event(UPDATE.validate_python(body(assistance={"kind": "CASH", "amount_baht": 3001})),
                           AUTHORITY, PSEUDONYMS, ingest_time=0)
    other_org = update_event(UPDATE.validate_python(body()), Authority("6500102", "SAO", ("5001",)), PSEUDONYMS, ingest_time=0)
    assert len({same[0]["event_id"], changed["event_id"], other_org["event_id"]}) == 3


def test_ids_starting_with_0_or_9_are_accepted_and_flagged():
    for first, flag in (("0", "NO_THAI_STATUS"), ("9", "SPECIAL_9")):
        cid = first + "12345678901"
        event = update_event(UPDATE.validate_python(body(citizen_id=cid + str(check_digit(cid)))), AUTHORITY,
                             PSEUDONYMS, ingest_time=0)
        assert event["id_flag"] == flag


def test_a_person_only_update_is_keyed_by_the_person():
    allowance = {"allowance_type": "DISABILITY", "status": "STOPPED"}
    event = update_event(UPDATE.validate_python(body(kind="ALLOWANCE", house_code=None, assistance=None,
                                                     allowance=allowance)), AUTHORITY, PSEUDONYMS, ingest_time=0)
    assert event["household_key"] is None and kafka_key(event) == event["person_id"]


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"citizen_id": CID[:-1] + str((int(CID[-1]) + 1) % 10)}, "ASSISTANCE.citizen_id", "check digit"),
    ({"citizen_id": "12345"}, "ASSISTANCE.citizen_id", "13 digits"),
    ({"province": "99"}, "ASSISTANCE.province", "not a DOPA province"),
    ({"district": "5101"}, "ASSISTANCE.district", "belongs to province 51"),
    ({"subdistrict": "500201"}, "ASSISTANCE.subdistrict", "not a DOPA sub-district"),
    ({"village": "50010299"}, "ASSISTANCE.village", "starting with its sub-district"),
    ({"house_code": "5001"}, "ASSISTANCE.house_code", "pattern"),
    ({"occurred_at": "2024-11-20T10:00:00"}, "ASSISTANCE.occurred_at", "timezone"),
    ({"occurred_at": "2567-11-20T10:00:00+07:00"}, "ASSISTANCE.occurred_at", "future"),
    ({"assistance": {"kind": "GOLD"}}, "ASSISTANCE.assistance.kind", "CASH"),
    ({"assistance": {"kind": "CASH", "amount_baht": float("nan")}}, "ASSISTANCE.assistance.amount_baht", "finite"),
    ({"house_code": None, "citizen_id": None}, "ASSISTANCE", "names a household"),
    ({"kind": "ALLOWANCE", "assistance": None, "citizen_id": None,
      "allowance": {"allowance_type": "HIV", "status": "ENROLLED"}}, "ALLOWANCE", "citizen_id is required"),
    ({"kind": "FOOD"}, "", "does not match any of the expected tags"),
    ({"extra": 1}, "ASSISTANCE.extra", "Extra inputs"),
])
def test_invalid_fields_are_named(changes, field, message):
    found = errors(body(**changes))
    key = field if field else next(iter(found))
    assert key in found and message in found[key], found
    assert CID not in str(found)


def test_a_batch_is_bounded():
    with pytest.raises(ValidationError):
        UpdateBatch.model_validate({"updates": []})
    with pytest.raises(ValidationError):
        UpdateBatch.model_validate({"updates": [body()] * 501})


def _avro_record(name: str) -> dict:
    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "record" and node.get("name") == name:
                return node
            children = [node.get("type"), node.get("items")] + node.get("fields", [])
        elif isinstance(node, list):
            children = node
        else:
            return None
        return next((r for c in children if (r := walk(c)) is not None), None)
    return walk(load_catalog().latest(LOCALGOV_UPDATE.name).raw)


def _symbols(annotation: object) -> set[str] | None:
    """The Literal values inside an annotation (through Optional, list and Annotated), if any."""
    if get_origin(annotation) is Literal:
        return set(get_args(annotation))
    for arg in get_args(annotation):
        if (found := _symbols(arg)) is not None:
            return found
    return None


def _avro_symbols(avro_type: object) -> set[str] | None:
    if isinstance(avro_type, list):
        return next((s for t in avro_type if (s := _avro_symbols(t)) is not None), None)
    if isinstance(avro_type, dict):
        if avro_type["type"] == "enum":
            return set(avro_type["symbols"])
        if avro_type["type"] == "array":
            return _avro_symbols(avro_type["items"])
    return None


@pytest.mark.parametrize("model", [Assistance, HomeVisit, Referral, Allowance], ids=lambda m: m.__name__)
def test_detail_models_agree_with_the_avro_schema_field_by_field(model: type[BaseModel]):
    record = _avro_record(model.__name__)
    assert [f["name"] for f in record["fields"]] == list(model.model_fields)
    for f in record["fields"]:
        assert _symbols(model.model_fields[f["name"]].annotation) == _avro_symbols(f["type"]), f["name"]


def test_update_envelope_and_kinds_agree_with_the_avro_schema():
    schema = load_catalog().latest(LOCALGOV_UPDATE.name).raw
    fields = {f["name"]: f for f in schema["fields"]}
    kinds = {m.model_fields["kind"].annotation.__args__[0]: m for m in UpdateBase.__subclasses__()}
    assert set(kinds) == set(fields["kind"]["type"]["symbols"]) == set(DETAIL_FIELD)
    for kind, model in kinds.items():
        detail = DETAIL_FIELD[kind]
        assert detail in fields and model.model_fields[detail].annotation.__name__ == \
            _avro_record(model.model_fields[detail].annotation.__name__)["name"]
    for name in ("province", "district", "subdistrict", "village"):
        assert name in fields and name in UpdateBase.model_fields


def test_masking_keeps_only_the_last_digit_of_citizen_ids():
    raw = f'{{"citizen_id": "{CID}", "other": "1-1017-00203-45-0", "house_code": "50010000123"}}'.encode()
    out = masked(raw).decode()
    assert CID not in out and "1-1017" not in out and "50010000123" in out
    assert out.count("*" * 12) == 2


def test_rate_limiter_refills_at_its_rate_and_keeps_keys_apart():
    now = [0.0]
    limiter = RateLimiter(rate_per_s=2, burst=3, clock=lambda: now[0])
    assert [limiter.take("a") for _ in range(3)] == [0, 0, 0]
    assert limiter.take("a") == pytest.approx(0.5)
    assert limiter.take("b") == 0
    now[0] += 0.5
    assert limiter.take("a") == 0 and limiter.take("a") > 0
    now[0] += 100
    assert [limiter.take("a") for _ in range(4)][-1] > 0  # the bucket never holds more than the burst


def test_idempotency_store_remembers_accepted_requests_until_they_expire(tmp_path):
    store = IdempotencyStore(tmp_path / "idem.sqlite3", ttl_s=3600)
    assert store.get("6500101", "k1") is None
    store.put("6500101", "k1", Accepted("req-1", ["e1", "e2"]))
    assert store.get("6500101", "k1") == Accepted("req-1", ["e1", "e2"])
    assert store.get("6500102", "k1") is None  # scoped per authority
    store.close()
    reopened = IdempotencyStore(tmp_path / "idem.sqlite3", ttl_s=0)
    assert reopened.get("6500101", "k1") is None
    reopened.close()
    assert IdempotencyStore(tmp_path / "idem.sqlite3").get("6500101", "k1") == Accepted("req-1", ["e1", "e2"])


def test_occurred_at_slightly_ahead_is_accepted():
    soon = (datetime.now(UTC) + timedelta(minutes=2)).isoformat()
    assert UPDATE.validate_python(body(occurred_at=soon)).occurred_at.tzinfo is not None
