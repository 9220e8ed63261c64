"""The start-up judgement of povhub/app_id_check.py: another deployment's state under this app id
is one warning line; a deployment that ran under the old fixed id ``povhub`` is refused with both
choices named. Pure: what Kafka holds is given (the real-Kafka test is test_app_id_kafka.py)."""

from __future__ import annotations

import pytest

from povhub.app_id_check import Found, Group, judge
from streams.reconcile import STORES

RECONCILE = Group("staging-reconcile", ("staging.tpmap.household.v1",),
                  tuple(f"staging-reconcile-{s}-changelog" for s in STORES), 4)


@pytest.mark.parametrize("explicit", [True, False])
def test_own_committed_offsets_say_the_state_is_this_deployments(explicit):
    assert judge(RECONCILE, "staging", explicit, "staging.", Found(500, True, True)) is None


def test_a_fresh_deployment_is_quiet():
    assert judge(RECONCILE, "staging", True, "staging.", Found(0, False, False)) is None


@pytest.mark.parametrize("explicit", [True, False])
def test_a_changelog_without_own_offsets_is_one_warning_line(explicit):
    refuse, line = judge(RECONCILE, "staging", explicit, "other.", Found(300, False, False))
    assert not refuse and "\n" not in line
    assert line.startswith("staging-reconcile: its changelogs hold 300 records")
    for said in ("POVHUB_APP_ID=staging", "(other.*)", "duplicates", "offsets.retention.minutes"):
        assert said in line


def test_a_derived_id_over_the_old_povhub_groups_offsets_is_refused():
    refuse, line = judge(RECONCILE, "staging", False, "staging.", Found(0, False, True))
    assert refuse and "\n" not in line and line.startswith("bad setting POVHUB_APP_ID:")
    assert "povhub-reconcile" in line and "POVHUB_APP_ID=povhub" in line and "POVHUB_APP_ID=staging" in line


def test_an_explicit_id_is_never_refused():
    # set by the operator: the old group's offsets on these topics are theirs to keep or leave
    assert judge(RECONCILE, "staging", True, "staging.", Found(0, False, True)) is None
