"""Rows of `household_state` from `povhub.household.state.v1` records (as fastavro decodes them).

Every field of the record is a column (migrations 0002 and 0005). The codec decodes into the
newest schema, so a record from an older writer still has every field (the Avro defaults).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from schemas.vocabulary import DIMENSION_CODES
from sinks.area_codes import check_nested
from sinks.table_mapping import ENVELOPE, Row, TableMapping, envelope_values

# Must match the Enum8 of failed_dimensions in migrations/0002_household_state.sql (and of
# open_problem_list.dimension in 0005). Codes are sent instead of names because
# clickhouse-connect silently stores an unknown name as an invalid code; a lookup here rejects
# it (KeyError -> bad record) instead.
# Must match the Enum8 of `stage` in migrations/0005_household_state_columns.sql
STAGE_CODES = {"SURVIVE": 1, "SUFFICIENT": 2, "SUSTAINABLE": 3}

# Fields copied as decoded, in record order after `failed_dimensions` (the other fields need a
# conversion and are listed in state_row); fields of later schema versions at the end
_PLAIN = (
    "income_per_person_baht",
    "welfare_card_holders",
    "elderly_members",
    "disabled_members",
    "bedridden_members",
    "school_age_members",
    "has_elderly",
    "has_disabled",
    "has_bedridden",
    "child_out_of_school",
    "insecure_housing",
    "income_below_threshold",
    "no_income",
    "no_caregiver",
    "has_welfare_card",
    "target_list_time",
    "thaiqm_case_id",
    "open_problems",
    "closed_problems",
    "last_visit_time",
    "visits",
    "last_visit_findings",
    "last_assistance_time",
    "assistance_counts",
    "assistance_baht",
    "referrals",
    "elderly_allowances",
    "disability_allowances",
    "allowance_monthly_baht",
    "clean_data_years",
    "stage_rule",
    "welfare_registered_members",
    "chronic_illness_members",
)

COLUMNS = ENVELOPE + (
    "version",
    "data_year",
    "on_target_list",
    "members",
    "target_poor_persons",
    "failed_indicators",
    "failed_dimensions",
    *_PLAIN,
    "open_problems_by_dimension",
    "open_problem_list",
    "stage",
)


def state_row(record: Mapping[str, Any]) -> Row:
    check_nested(record)
    return (
        *envelope_values(record),
        record["version"],
        record["data_year"],
        record["on_target_list"],
        record["members"],
        record["target_poor_persons"],
        record["failed_indicators"],
        [DIMENSION_CODES[name] for name in record["failed_dimensions"]],
        *(record[name] for name in _PLAIN),
        _by_dimension(record["open_problems_by_dimension"]),
        [_open_problem(p) for p in record["open_problem_list"]],
        STAGE_CODES[record["stage"]],
    )


def _by_dimension(counts: Mapping[str, int]) -> Mapping[str, int]:
    # The keys are looked up by name in open_problem_dimension_mask (0005): a key that is not a
    # dimension would drop out of the TPMAP-Thai QM comparison silently, so it is refused here
    unknown = set(counts) - DIMENSION_CODES.keys()
    if unknown:
        raise KeyError(f"open_problems_by_dimension has keys that are not dimensions: {sorted(unknown)}")
    return counts


def _open_problem(problem: Mapping[str, Any]) -> tuple[Any, ...]:
    # Positional, in the order of the Tuple in 0005; the dimension as its Enum8 code
    dimension = problem["dimension"]
    return (
        problem["problem_id"],
        None if dimension is None else DIMENSION_CODES[dimension],
        problem["problem_code"],
        problem["status"],
        problem["reported_at"],
        problem["status_since"],
    )


HOUSEHOLD_STATE = TableMapping(table="household_state", columns=COLUMNS, row=state_row, counted_on_insert=True,
                               avro_input="household_state_avro")
