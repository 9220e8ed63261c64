"""Wires the crisis alerts into the worker: rules, webhook targets and clock from the settings."""

from __future__ import annotations

import time

from povhub.settings import Settings, SettingsError
from povhub.wiring import require_bootstrap
from schemas.codec import Codec
from streams.alert_rules import (
    DEFAULT_ALERT_RULES_FILE,
    AlertRules,
    AlertRulesError,
    load_alert_rules,
)
from streams.alerts import AlertConfig, AlertFold, Clock, alerts_stage
from streams.dead_letters import DeadLetterProducer
from pipeline.runner import ProcessorRunner
from streams.webhooks import (
    Target,
    WebhookError,
    WebhookRunner,
    load_targets,
    webhook_config,
)


def alert_rules(s: Settings) -> AlertRules:
    try:
        return load_alert_rules(s.alerts.rules_file or DEFAULT_ALERT_RULES_FILE)
    except AlertRulesError as e:
        raise SettingsError(f"bad setting POVHUB_ALERT_RULES_FILE: {e}") from None


def webhook_targets(s: Settings) -> tuple[Target, ...]:
    if s.alerts.webhooks_file is None:
        return ()
    try:
        return load_targets(s.alerts.webhooks_file)
    except WebhookError as e:
        raise SettingsError(f"bad setting POVHUB_WEBHOOKS_FILE: {e}") from None


def check_alerting(s: Settings) -> None:
    """Refuse a bad rules or webhooks file before the worker starts anything."""
    alert_rules(s)
    webhook_targets(s)


def alerts_runner(s: Settings, codec: Codec, worker_id: str, clock: Clock = time.time) -> ProcessorRunner:
    """The alerts processor; `clock` is when time-based rules and SLAs are judged (a test moves it)."""
    cfg = AlertConfig(partitions=s.kafka.partitions, rules=alert_rules(s), check_interval_s=s.alerts.check_s)
    stage = alerts_stage(s.app_id, require_bootstrap(s), worker_id, s.kafka.topics, cfg,
                         session_timeout_s=s.kafka.session_timeout_s, replication_factor=s.kafka.replication_factor)
    return ProcessorRunner(stage, AlertFold(s.kafka.topics, codec, cfg.rules), clock=clock)


def webhook_runners(s: Settings, codec: Codec, worker_id: str, dlq: DeadLetterProducer) -> list[WebhookRunner]:
    targets = webhook_targets(s)
    if not targets:
        return []
    cfg = webhook_config(require_bootstrap(s), s.app_id, worker_id, s.kafka.topics, session_timeout_s=s.kafka.session_timeout_s)
    return [WebhookRunner(cfg, codec, targets, dlq)]
