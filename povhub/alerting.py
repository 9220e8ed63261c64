"""Wires the crisis alerts into the worker: rules, webhook targets and clock from the settings."""

from __future__ import annotations

import time

import faust

from povhub.settings import Settings, SettingsError
from povhub.wiring import require_bootstrap
from schemas.codec import Codec
from streams.alert_rules import (
    DEFAULT_ALERT_RULES_FILE,
    AlertRules,
    AlertRulesError,
    load_alert_rules,
)
from streams.alerts import AlertConfig, Clock, offset_clock, register_alerts
from streams.webhooks import Target, WebhookError, load_targets, register_webhooks


def alert_rules(s: Settings) -> AlertRules:
    try:
        return load_alert_rules(s.alert_rules_file or DEFAULT_ALERT_RULES_FILE)
    except AlertRulesError as e:
        raise SettingsError(f"bad setting POVHUB_ALERT_RULES_FILE: {e}") from None


def webhook_targets(s: Settings) -> tuple[Target, ...]:
    if s.webhooks_file is None:
        return ()
    try:
        return load_targets(s.webhooks_file)
    except WebhookError as e:
        raise SettingsError(f"bad setting POVHUB_WEBHOOKS_FILE: {e}") from None


def check_alerting(s: Settings) -> None:
    """Refuse a bad rules or webhooks file before the worker starts anything."""
    alert_rules(s)
    webhook_targets(s)


def alert_clock(s: Settings) -> Clock:
    return offset_clock(s.clock_offset_file) if s.clock_offset_file else time.time


def register_alerting(app: faust.App, s: Settings, codec: Codec) -> None:
    register_alerts(app, s.topics, codec, AlertConfig(
        partitions=s.partitions, rules=alert_rules(s), bootstrap_servers=require_bootstrap(s),
        check_interval_s=s.alert_check_s, clock=alert_clock(s)))
    targets = webhook_targets(s)
    if targets:
        register_webhooks(app, s.topics, codec, targets, s.partitions)
