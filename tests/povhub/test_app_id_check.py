"""The start-up judgement of povhub/app_id_check.py: another deployment's state under this app id
is one warning line; a deployment that ran under the old fixed id ``povhub`` is refused with both
choices named. Pure: what Kafka holds is given (the real-Kafka test is test_app_id_kafka.py)."""

from __future__ import annotations

import pytest

from povhub.app_id_check import Found, Group, judge
from streams.reconcile import STORES

RECONCILE = Group("staging-reconcile", ("staging.tpmap.household.v1",),
                  tuple(f"staging-reconcile-{s}-changelog" for s in STORES), 4)
ALERTS = Group("staging-alerts", ("staging.household.state.v1",), ("staging-alerts-alert-state-changelog",), 4)
LOADER = Group("staging-clickhouse-load-x", ("staging.alert.v1",), (), 0)


@pytest.mark.parametrize("explicit", [True, False])
def test_own_committed_offsets_say_the_state_is_this_deployments(explicit):
    assert judge("staging", explicit, "staging.", {RECONCILE: Found(500, True, True), LOADER: Found(0, True, True)}) is None


def test_a_fresh_deployment_is_quiet():
    assert judge("staging", True, "staging.", {RECONCILE: Found(0, False, False), LOADER: Found(0, False, False)}) is None


@pytest.mark.parametrize("explicit", [True, False])
def test_a_changelog_without_own_offsets_is_one_warning_line(explicit):
    found = {RECONCILE: Found(300, False, False), ALERTS: Found(20, False, False), LOADER: Found(0, False, False)}
    refuse, line = judge("staging", explicit, "other.", found)
    assert not refuse and "\n" not in line
    assert line.startswith("staging-reconcile, staging-alerts: the changelogs hold state (320 offsets)")
    for said in ("POVHUB_APP_ID=staging", "(other.*)", "duplicates", "offsets.retention.minutes"):
        assert said in line


def test_a_derived_id_over_the_old_povhub_groups_offsets_is_refused():
    found = {RECONCILE: Found(0, False, True), LOADER: Found(0, False, True), ALERTS: Found(0, False, False)}
    refuse, line = judge("staging", False, "staging.", found)
    assert refuse and "\n" not in line and line.startswith("bad setting POVHUB_APP_ID:")
    assert "povhub-reconcile, povhub-clickhouse-load-x (app id 'povhub')" in line and "POVHUB_APP_ID=povhub" in line and "POVHUB_APP_ID=staging" in line


def test_an_explicit_id_is_never_refused():
    # set by the operator: the old group's offsets on these topics are theirs to keep or leave
    assert judge("staging", True, "staging.", {RECONCILE: Found(0, False, True)}) is None
