"""stable_id is uuid5 over the parts joined by \\x1f, computed here with the uuid module."""

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.ids import POVHUB_NAMESPACE, stable_id

parts = st.lists(st.one_of(st.text(), st.integers(), st.none()), min_size=1, max_size=5)


@given(parts)
def test_stable_id_is_uuid5_of_the_joined_parts(values: list[object]) -> None:
    try:
        expected = str(uuid.uuid5(POVHUB_NAMESPACE, "\x1f".join(str(v) for v in values)))
    except UnicodeEncodeError:  # a lone surrogate: neither can encode it
        with pytest.raises(UnicodeEncodeError):
            stable_id(*values)
        return
    assert stable_id(*values) == expected


def test_a_known_id_keeps_its_value() -> None:
    # the value every earlier version gave (ids of events already on Kafka must not change)
    assert stable_id("tpmap", 2567, "30010000029", "LEFT_TARGET_LIST") == str(
        uuid.uuid5(POVHUB_NAMESPACE, "tpmap\x1f2567\x1f30010000029\x1fLEFT_TARGET_LIST"))
