"""``povhub worker``: every stage (reconcile, alerts, the ClickHouse loaders, webhooks) and the HTTP endpoint.

The worker owns the ClickHouse client. With an embedded ``chdb://`` folder no other process may
open it, so reports are served from here (``GET /report``) and ``povhub report`` asks the worker.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from collections.abc import Callable
from functools import partial
from typing import Any

from aiohttp import web
from clickhouse_connect.driver.client import Client
from kafka.consumer.fetcher import ConsumerRecord
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from povhub.alerting import alerts_runner, check_alerting, webhook_runners
from povhub.app_id_check import check_app_id
from povhub import worker_address
from povhub.kafka_admin import ensure_topics
from povhub.settings import Settings, SettingsError
from povhub.wiring import codec_from, reachable_kafka, require_bootstrap
from povhub.worker_address import WorkerAddress
from povhub.web.access import serve_query
from schemas.codec import Codec, DecodeError
from schemas.topics import ALERT, DEAD_LETTER, HOUSEHOLD_STATE, SOURCE_FAMILIES
from sinks.alerts import ALERTS as ALERTS_TABLE
from sinks.areas import load_areas
from sinks.clickhouse import SHARED_CLIENT_LOCK, connect, parse_dsn
from sinks.events import events_mapping
from sinks.household_state import HOUSEHOLD_STATE as STATE_TABLE
from sinks.avro_batch import AvroInput
from sinks.table_mapping import TableMapping
from sinks.loader import LoaderRunner, loader_config
from sinks.migrate import migrate
from sinks.unclean_stop import start_writing
from sinks.report import level_summary
from sinks.dimension_selection import selection
from sinks.tpmap_figures import tpmap_common_report, tpmap_report
from streams.dead_letters import DeadLetterProducer
from pipeline.liveness import Progress, health
from streams.person_index import PendingLimits, raw_message
from streams.reconcile import ReconcileConfig, ReconcileFold, reconcile_stage
from pipeline.runner import ProcessorRunner
from schemas.vocabulary import AREA_LEVELS
from streams.stage_thread import StageThreads
from streams.state_rules import DEFAULT_RULES_FILE, RulesError, StateRules, load_rules

log = logging.getLogger(__name__)


def prepare_clickhouse(dsn: str, cluster: str | None = None) -> Client:
    client = connect(dsn)
    migrate(client, cluster=cluster)
    load_areas(client)
    return client


def state_rules(s: Settings) -> StateRules:
    try:
        return load_rules(s.reconcile.state_rules_file or DEFAULT_RULES_FILE)
    except RulesError as e:
        raise SettingsError(f"bad setting POVHUB_STATE_RULES_FILE: {e}") from None


def web_app(client: Client | None, progresses: list[Progress] | None = None) -> web.Application:
    """The worker's HTTP endpoint: province/district/... reports, Prometheus metrics, health.

    ``/health`` is readiness: 200 while every processor is running or idle with nothing to read,
    503 while any is starting, recovering or stalled; the body gives each one's state and reason.
    """

    async def report(request: web.Request) -> web.Response:
        if client is None:
            return elsewhere()
        level = request.query.get("level", "province")
        if level not in AREA_LEVELS:
            return web.json_response({"error": f"level must be one of {', '.join(AREA_LEVELS)}"}, status=400)
        fmt = request.query.get("format")
        if fmt in ("tpmap", "tpmap-common"):  # TPMAP's figures for a dimension selection, as TPMAP's CSV
            try:
                text = await asyncio.to_thread(locked_tpmap, client, level, request.query.get("code"),
                                               request.query.get("dimensions"), fmt == "tpmap-common")
            except ValueError as e:
                return web.json_response({"error": str(e)}, status=400)
            return web.Response(text=text, content_type="text/csv", charset="utf-8")
        rows = await asyncio.to_thread(locked_summary, client, level, request.query.get("code"))
        return web.json_response(rows, dumps=lambda v: json.dumps(v, ensure_ascii=False, default=str))

    async def query(request: web.Request) -> web.Response:
        # the web page's named queries (povhub.web.access) while this worker owns the chdb folder
        if client is None:
            return elsewhere()
        try:
            arguments = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            arguments = None
        if not isinstance(arguments, dict):
            return web.json_response({"error": "body must be a JSON object of arguments"}, status=400)
        status, body = await asyncio.to_thread(serve_query, client, request.match_info["name"], arguments)
        return web.json_response(body, status=status, dumps=lambda v: json.dumps(v, ensure_ascii=False, default=str))

    def elsewhere() -> web.Response:
        return web.json_response({"error": "this worker runs POVHUB_WORKER_ROLE=streams: the figures are served by "
                                           "the worker that runs the loaders"}, status=404)

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    async def health_(request: web.Request) -> web.Response:
        ready, body = health(progresses or [])
        return web.json_response(body, status=200 if ready else 503)

    app = web.Application()
    app.add_routes([web.get("/report", report), web.get("/metrics", metrics), web.get("/health", health_),
                    web.post("/query/{name}", query)])
    return app


def locked_tpmap(client: Client, level: str, code: str | None, dimensions: str | None, common: bool) -> str:
    with SHARED_CLIENT_LOCK:
        if common:
            selection(dimensions)  # a bad selection is an error here too
            return tpmap_common_report(client, level, code)
        return tpmap_report(client, level, code, dimensions)


def locked_summary(client: Client, level: str, code: str | None) -> list[dict[str, Any]]:
    with SHARED_CLIENT_LOCK:
        return level_summary(client, level, code)


def loader_runners(s: Settings, open_client: Callable[[], Client], codec: Codec,
                   dlq: DeadLetterProducer) -> list[LoaderRunner]:
    """household_state from the state topic, alert steps into `alerts`; the raw source events into
    `events`. Each loader inserts with a client of its own (``open_client()``, kept for the
    worker's life): their inserts run in parallel, not in turns (sinks/clickhouse.py)."""

    def dead_letter(record: ConsumerRecord, error: Exception) -> None:
        reason = "undecodable" if isinstance(error, DecodeError) else "unloadable"
        dlq.send("loader", reason, raw_message(record), repr(error))

    loads = [(HOUSEHOLD_STATE, STATE_TABLE), (ALERT, ALERTS_TABLE)]
    loads += [(fam, events_mapping(fam)) for fam in SOURCE_FAMILIES]
    return [LoaderRunner(loader_config(require_bootstrap(s), s.app_id, worker_id(s), s.kafka.topics.name(fam),
                                       batch_size=s.loader.batch_size, batch_seconds=s.loader.batch_seconds,
                                       session_timeout_s=s.kafka.session_timeout_s,
                                       live=mapping.counted_on_insert),
                         open_client(), mapping, partial(codec.decode, fam=fam.name), dead_letter, dlq.flush,
                         avro=avro_input(mapping, fam.name, codec))
            for fam, mapping in loads]


def avro_input(mapping: TableMapping, fam: str, codec: Codec) -> AvroInput | None:
    """Where ``mapping``'s batches go for ClickHouse to decode (sinks/avro_batch.py), if anywhere. Not
    with a schema registry: the newest schema's id is the registry's, and asking it means
    registering the schema, which a loader must not need rights for; the batches are decoded here."""
    if mapping.avro_input is None or codec.registry is not None:
        return None
    return AvroInput(mapping.avro_input, *codec.newest(fam))


def worker_id(s: Settings) -> str:
    return s.hub.worker_id or f"{socket.gethostname()}-{s.worker.web_port}"


def reconcile_runner(s: Settings, codec: Codec | None = None) -> ProcessorRunner:
    cfg = ReconcileConfig(
        partitions=s.kafka.partitions, rules=state_rules(s), expiry_interval_s=s.reconcile.pending_check_s,
        limits=PendingLimits(ttl_ms=int(s.reconcile.pending_ttl_s * 1000), max_per_person=s.reconcile.pending_max_per_person,
                             max_total=s.reconcile.pending_max_total))
    stage = reconcile_stage(s.app_id, require_bootstrap(s), worker_id(s), s.kafka.topics, cfg,
                            session_timeout_s=s.kafka.session_timeout_s, replication_factor=s.kafka.replication_factor)
    return ProcessorRunner(stage, ReconcileFold(s.kafka.topics, codec or codec_from(s), cfg))


# POVHUB_WORKER_ROLE: which stages this worker runs. One process holds one Python interpreter (the
# GIL): with every stage in it, the reconcile stage, the alerts stage and the loaders' decoding take
# turns on one core (bench/pipeline.py). "streams" and "loaders" split them into two processes
# that share nothing but Kafka: the loaders are consumer groups of their own, committing after
# ClickHouse, so a split changes no guarantee. The loaders' process owns ClickHouse (an embedded
# chdb folder admits one process) and serves the reports.
ROLES = {"all": {"streams", "loaders"}, "streams": {"streams"}, "loaders": {"loaders"}}


def run_worker(s: Settings) -> int:
    state_rules(s)  # a bad rules file stops start-up before anything else happens
    check_alerting(s)  # so do a bad alert rules or webhooks file
    ensure_topics(reachable_kafka(s), s.kafka.topics, s.kafka.partitions, s.kafka.replication_factor)
    runs = ROLES[s.worker.role]
    client = prepare_clickhouse(s.clickhouse_dsn, s.clickhouse.cluster) if "loaders" in runs else None
    codec = codec_from(s)
    dlq = DeadLetterProducer(require_bootstrap(s), codec, s.kafka.topics.name(DEAD_LETTER), s.worker.block_s)
    stages: list[Any] = []
    if "streams" in runs:
        stages += [reconcile_runner(s, codec), alerts_runner(s, codec, worker_id(s)),
                   *webhook_runners(s, codec, worker_id(s), dlq)]
    loaders = loader_runners(s, partial(connect, s.clickhouse_dsn), codec, dlq) if client is not None else []
    stages += loaders
    # another deployment's state under this app id is said (or refused) before any stage restores it
    check_app_id(s, require_bootstrap(s), [stage.cfg for stage in stages], s.worker.bounds)
    # SIGTERM and SIGINT end run_app; leaving the block stops the stages, which leave their groups
    bounds = s.worker.bounds
    dsn = parse_dsn(s.clickhouse_dsn)
    writing = start_writing(client, dsn)  # before any loader inserts
    with StageThreads(stages, bounds) as threads:
        # report, dlq and the web page beside this worker find it here (povhub/worker_address.py);
        # a streams worker has no figures: the loaders worker beside it records its own address
        address = None if client is None else WorkerAddress(
            os.getpid(), s.worker.web_host, s.worker.web_port, require_bootstrap(s), str(dsn))
        if address is not None:
            worker_address.record(s.hub.data_dir, address)
        try:
            web.run_app(web_app(client, threads.progresses), host=s.worker.web_host, port=s.worker.web_port, print=None)
        finally:
            if address is not None:
                worker_address.forget(s.hub.data_dir, address.pid)
    if threads.all_stopped:
        writing.stopped_cleanly()
        # every stage stopped, so no insert is under way (while one may be, no client is closed under
        # it); the reports' client stays with the process, which ends here and takes chdb with it
        for loader in loaders:
            loader.client.close()
    return 0
