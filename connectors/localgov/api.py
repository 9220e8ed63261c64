"""The อปท. ingest API: authenticate, rate-limit, validate, pseudonymise, publish, and answer 202 only
once Kafka has acknowledged every event (acks=all).

Each refusal has its own status (401, 403, 409, 413, 422, 429, 503); refused data (403, 422) also goes
to the dead-letter topic with the request id, after the answer is sent, so a DLQ failure never
turns a 4xx into a 5xx. Kafka calls block, so they run in worker threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, HTTPException, Request, Response, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from connectors.localgov.api_keys import ApiKey, KeyStore
from connectors.localgov.body_limit import BodyLimit
from connectors.localgov.events import kafka_key, update_event
from connectors.localgov.idempotency import Accepted, IdempotencyStore
from connectors.localgov.kafka_link import KafkaLink, KafkaUnavailable
from connectors.localgov.rate_limit import RateLimiter
from connectors.localgov.request_log import Outcome, RequestLog, RequestRecord, Sent
from connectors.localgov.updates import AnyUpdate, LocalGovUpdate, UpdateBatch
from connectors.pseudonym import Pseudonymiser
from schemas.dead_letter import dead_letter
from schemas.ids import now_ms
from schemas.metrics import INGEST_REQUESTS
from schemas.topics import LOCALGOV_UPDATE

log = logging.getLogger(__name__)

STAGE = "connector:localgov"
KAFKA_RETRY_AFTER_S = 5
# A citizen ID as people type it (13 digits, maybe with dashes or spaces): masked in dead letters.
_CITIZEN_ID = re.compile(r"(?<!\d)(?:\d[- ]?){12}\d(?!\d)")


@dataclass
class IngestContext:
    keys: KeyStore
    link: KafkaLink
    pseudonyms: Pseudonymiser
    limiter: RateLimiter
    idempotency: IdempotencyStore
    ack_timeout_s: float
    max_body_bytes: int
    in_flight: set[tuple[str, str]] = field(default_factory=set)  # (org code, Idempotency-Key) being served
    requests: RequestLog | None = None  # what each request was answered, for GET /v1/updates/{request_id}
    # what became of accepted events downstream, by event id (povhub/ingest_outcomes.py); None: not known here
    outcomes: Callable[[list[Sent]], dict[str, Outcome]] | None = None


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    detail: str
    reason: str
    request_id: str
    errors: list[FieldError] | None = None


class AcceptedUpdates(BaseModel):
    request_id: str
    event_ids: list[str]
    replayed: bool = False  # true: an earlier request with this Idempotency-Key was accepted; nothing re-sent


class UpdateOutcome(BaseModel):
    event_id: str
    status: Literal["accepted", "applied", "refused"] = Field(
        description="accepted: on Kafka, not yet taken by the reconcile stage; applied: taken into the household's "
                    "state; refused: not applied, see reason and detail (the dead letter's)")
    reason: str | None = None
    detail: str | None = None


class RequestOutcome(BaseModel):
    request_id: str
    status: Literal["refused", "accepted", "applied", "partly-refused"] = Field(
        description="refused: by the API (reason, detail) or every update downstream; accepted: some update not "
                    "yet taken; applied: every update applied; partly-refused: some applied, some refused")
    reason: str | None = None
    detail: str | None = None
    updates: list[UpdateOutcome] = Field(default_factory=list)


class Refusal(Exception):
    def __init__(self, status: int, reason: str, detail: str, *, headers: dict[str, str] | None = None,
                 errors: list[FieldError] | None = None, original: bytes | None = None) -> None:
        super().__init__(detail)
        self.status, self.reason, self.detail = status, reason, detail
        self.headers, self.errors = headers, errors
        self.original = original  # the refused body: set = the refusal is dead-lettered


REFUSALS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "no valid X-API-Key"},
    404: {"model": Problem, "description": "GET: no request with this id from this key's authority (kept 30 days)"},
    403: {"model": Problem, "description": "an update's area is outside the areas of the key's local authority"},
    409: {"model": Problem, "description": "a request with this Idempotency-Key is still being served; retry"},
    413: {"model": Problem, "description": "the body is over the size limit (POVHUB_INGEST_MAX_BODY_BYTES): split the batch"},
    422: {"model": Problem, "description": "invalid fields (see errors), or an Idempotency-Key reused for another body"},
    429: {"model": Problem, "description": "rate limit of this key exceeded; retry after Retry-After seconds"},
    503: {"model": Problem, "description": "Kafka did not acknowledge: nothing is accepted; retry after Retry-After seconds"},
}


IdempotencyKey = Annotated[str | None, Header(
    alias="Idempotency-Key", min_length=1, max_length=255,
    description="a unique string per logical request: a retry with the same key and body gets the first answer "
                "and publishes nothing")]


def masked(body: bytes) -> bytes:
    return _CITIZEN_ID.sub(lambda m: "*" * 12 + m.group()[-1], body.decode("utf-8", "replace")).encode()


def _original(body: bytes) -> dict[str, Any]:
    """The refused body as dead_letter() takes it: JSON when it parses, else the bytes; IDs masked."""
    safe = masked(body)
    try:
        parsed = json.loads(safe)
        # A lone surrogate ("\ud800") parses but cannot be written as UTF-8: such a body stays bytes.
        json.dumps(parsed, ensure_ascii=False).encode()
        return {"original": parsed}
    except (ValueError, RecursionError):  # UnicodeEncodeError included; RecursionError: nested too deeply
        return {"original_value": safe}


def printable(text: str) -> str:
    """`text` safe to log and to answer with: a lone surrogate from the body becomes its escape."""
    return text.encode("utf-8", "backslashreplace").decode()


def overall(statuses: list[str]) -> str:
    """A request's status from its updates' (see RequestOutcome.status)."""
    if "accepted" in statuses:
        return "accepted"
    if all(st == "refused" for st in statuses):
        return "refused"
    return "partly-refused" if "refused" in statuses else "applied"


def create_app(ctx: IngestContext) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Not awaited: the API serves (with 503s) while the first connection attempt runs.
        connecting = asyncio.get_running_loop().run_in_executor(None, ctx.link.try_connect)
        yield
        await connecting
        await run_in_threadpool(ctx.link.close)
        ctx.idempotency.close()
        if ctx.requests is not None:
            ctx.requests.close()

    app = FastAPI(
        title="Povhub local-authority (อปท.) ingest API", version="1", lifespan=lifespan,
        description="Local authorities (อบจ., เทศบาล, อบต.) send assistance given, Knock Knock home visits, "
                    "referrals and allowance enrolments. 202 means Kafka has the events (acks=all). Citizen IDs "
                    "are pseudonymised on arrival. Send an Idempotency-Key header to make retries safe.")
    api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False,
                                  description="the key printed by `povhub ingest-api keys add`")
    paths = {"/v1/updates", "/v1/updates:batch", "/health", "/metrics", "/docs", "/openapi.json"}

    async def too_large(request: Request) -> Response:
        return refused(request, Refusal(413, "body-too-large", f"the body is over {ctx.max_body_bytes} bytes: "
                                        "send fewer updates per batch"))

    # Added before the request-id middleware, so it runs inside it: a 413 has its request id and is counted.
    app.add_middleware(BodyLimit, limit=ctx.max_body_bytes, refuse=too_large)

    @app.middleware("http")
    async def request_id(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        request.state.request_id = uuid.uuid4().hex
        response = await call_next(request)
        response.headers["X-Request-ID"] = request.state.request_id
        endpoint = request.url.path if request.url.path in paths else (
            "/v1/updates/{request_id}" if request.url.path.startswith("/v1/updates/") else "other")
        INGEST_REQUESTS.labels(endpoint, str(response.status_code)).inc()
        return response

    def refused(request: Request, r: Refusal) -> JSONResponse:
        rid = request.state.request_id
        key: ApiKey | None = getattr(request.state, "api_key", None)
        log.warning("request %s from %s refused: %s %s: %s", rid, key.org_code if key else "unknown key",
                    r.status, r.reason, r.detail)
        background = None
        if r.original is not None and key is not None:
            record = dead_letter(source=key.authority.source, stage=STAGE, reason=r.reason, detail=r.detail,
                                 source_record_id=rid, request_id=rid, **_original(r.original))
            background = BackgroundTask(ctx.link.dead_letter, record)
        if r.original is not None and key is not None and ctx.requests is not None:
            ctx.requests.put(RequestRecord(rid, key.org_code, refused=True, reason=r.reason, detail=r.detail))
        problem = Problem(detail=r.detail, reason=r.reason, request_id=rid, errors=r.errors)
        return JSONResponse(problem.model_dump(exclude_none=True), status_code=r.status, headers=r.headers,
                            background=background)

    def admit(request: Request, presented: str | None) -> ApiKey:
        key = ctx.keys.authenticate(presented)
        if key is None:
            raise Refusal(401, "unauthenticated", "a valid X-API-Key header is required",
                          headers={"WWW-Authenticate": "ApiKey"})
        request.state.api_key = key
        wait_s = ctx.limiter.take(key.key_id)
        if wait_s:
            raise Refusal(429, "rate-limited", f"more than {ctx.limiter.rate_per_s:g} requests/s on average "
                          f"(bursts of {ctx.limiter.burst})", headers={"Retry-After": str(math.ceil(wait_s))})
        return key

    # Defaults, not Annotated aliases: annotations are strings here (PEP 563), resolved in module
    # globals, where these closures do not exist.
    async def admitted(request: Request, presented: str | None = Security(api_key_header)) -> ApiKey:
        return admit(request, presented)

    @app.exception_handler(Refusal)
    async def on_refusal(request: Request, r: Refusal) -> JSONResponse:
        return refused(request, r)

    async def invalid(request: Request, errors: list[FieldError]) -> JSONResponse:
        # FastAPI parses JSON before running dependencies: authenticate here so a stranger gets 401, not 422.
        if getattr(request.state, "api_key", None) is None:
            try:
                admit(request, request.headers.get("X-API-Key"))
            except Refusal as r:
                return refused(request, r)
        detail = "; ".join(f"{'.'.join(map(str, e.loc))}: {e.msg}" for e in errors[:5])
        # The bytes as sent (FastAPI has read them already), not the parsed body written out again.
        return refused(request, Refusal(422, "invalid-request", f"{len(errors)} invalid field(s): {detail}",
                                        errors=errors, original=await request.body()))

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # No "input" or "ctx": they would echo a citizen ID back and into the dead letter's detail.
        return await invalid(request, [
            FieldError(loc=[printable(p) if isinstance(p, str) else p for p in e["loc"]],
                       msg=printable(e["msg"].removeprefix("Value error, ")), type=e["type"])
            for e in exc.errors()])

    @app.exception_handler(400)
    async def on_unreadable(request: Request, exc: HTTPException) -> JSONResponse:
        # FastAPI's one 400: a body json.loads gives up on (not UTF-8, nested too deeply), as invalid as
        # malformed JSON (422).
        return await invalid(request, [FieldError(loc=["body"], msg="the body cannot be read as JSON: it is not "
                                                  "UTF-8, or nested too deeply", type="json_invalid")])

    async def publish(request: Request, key: ApiKey, events: list[dict[str, Any]]) -> None:
        try:
            landed = await run_in_threadpool(ctx.link.publish_all, LOCALGOV_UPDATE,
                                             [(kafka_key(e), e) for e in events], ctx.ack_timeout_s)
            if ctx.requests is not None:
                sent = [Sent(e["event_id"], p, o) for e, (p, o) in zip(events, landed, strict=True)]
                record = RequestRecord(request.state.request_id, key.org_code, refused=False, events=sent)
                await run_in_threadpool(ctx.requests.put, record)
        except KafkaUnavailable as e:
            log.error("Kafka unavailable: %s", e)
            raise Refusal(503, "kafka-unavailable", "Kafka did not acknowledge the updates, so none is accepted; "
                          "retry the same request later", headers={"Retry-After": str(KAFKA_RETRY_AFTER_S)}) from e

    async def accept(request: Request, key: ApiKey, updates: list[AnyUpdate],
                     idempotency_key: str | None) -> AcceptedUpdates:
        outside = [i for i, u in enumerate(updates) if not key.serves(u.subdistrict)]
        if outside:
            raise Refusal(403, "outside-area", f"updates {outside[:10]} are in sub-districts outside the areas of "
                          f"{key.org_code} ({', '.join(key.areas)})", original=await request.body())
        ingest_time = now_ms()
        events = [update_event(u, key.authority, ctx.pseudonyms, ingest_time) for u in updates]
        ids = [e["event_id"] for e in events]
        rid = request.state.request_id
        if idempotency_key is None:
            await publish(request, key, events)
            return AcceptedUpdates(request_id=rid, event_ids=ids)
        slot = (key.org_code, idempotency_key)
        if slot in ctx.in_flight:
            raise Refusal(409, "idempotency-key-in-flight", "a request with this Idempotency-Key is being served",
                          headers={"Retry-After": "1"})
        ctx.in_flight.add(slot)
        try:
            earlier = await run_in_threadpool(ctx.idempotency.get, *slot)
            if earlier is not None:
                if earlier.event_ids != ids:
                    raise Refusal(422, "idempotency-key-reused", f"Idempotency-Key was used for request "
                                  f"{earlier.request_id} with a different body", original=await request.body())
                return AcceptedUpdates(request_id=earlier.request_id, event_ids=ids, replayed=True)
            await publish(request, key, events)
            await run_in_threadpool(ctx.idempotency.put, *slot, Accepted(rid, ids))
            return AcceptedUpdates(request_id=rid, event_ids=ids)
        finally:
            ctx.in_flight.discard(slot)

    @app.post("/v1/updates", status_code=202, response_model=AcceptedUpdates, responses=REFUSALS,
              summary="one update", tags=["updates"])
    async def post_update(update: LocalGovUpdate, request: Request, key: ApiKey = Depends(admitted),  # noqa: B008
                          idempotency_key: IdempotencyKey = None) -> AcceptedUpdates:
        return await accept(request, key, [update], idempotency_key)

    @app.post("/v1/updates:batch", status_code=202, response_model=AcceptedUpdates, responses=REFUSALS,
              summary="up to 500 updates, all or none", tags=["updates"])
    async def post_batch(batch: UpdateBatch, request: Request, key: ApiKey = Depends(admitted),  # noqa: B008
                         idempotency_key: IdempotencyKey = None) -> AcceptedUpdates:
        return await accept(request, key, batch.updates, idempotency_key)

    @app.get("/v1/updates/{request_id}", response_model=RequestOutcome, responses=REFUSALS, tags=["updates"],
             summary="what became of a request: refused, accepted, applied (per update)")
    async def get_outcome(request_id: str, request: Request,
                          key: ApiKey = Depends(admitted)) -> RequestOutcome:  # noqa: B008
        record = None if ctx.requests is None else await run_in_threadpool(ctx.requests.get, request_id)
        if record is None or record.org_code != key.org_code:  # another authority's request is not shown
            raise Refusal(404, "unknown-request", f"no request {printable(request_id)[:64]} from {key.org_code} "
                          "in the last 30 days")
        if record.refused:
            return RequestOutcome(request_id=request_id, status="refused", reason=record.reason, detail=record.detail)
        try:
            known = {} if ctx.outcomes is None else await run_in_threadpool(ctx.outcomes, record.events)
        except Exception as e:  # Kafka down, the DLQ unreadable: not the caller's fault, and it passes
            log.warning("outcomes of request %s unknown: %s", request_id, e)
            raise Refusal(503, "outcomes-unavailable", "what became of the updates cannot be read right now; retry",
                          headers={"Retry-After": str(KAFKA_RETRY_AFTER_S)}) from e
        updates = [UpdateOutcome(event_id=e.event_id, **vars(known.get(e.event_id, Outcome("accepted"))))
                   for e in record.events]
        return RequestOutcome(request_id=request_id, status=overall([u.status for u in updates]), updates=updates)

    @app.get("/health", tags=["operations"], responses={503: {"description": "Kafka unavailable"}})
    async def health() -> JSONResponse:
        # Also (re)connects: a readiness probe must not wait for traffic that only comes once it is ready.
        await run_in_threadpool(ctx.link.try_connect)
        up = ctx.link.healthy
        return JSONResponse({"kafka": "up" if up else "unavailable"}, status_code=200 if up else 503)

    @app.get("/metrics", tags=["operations"], include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
