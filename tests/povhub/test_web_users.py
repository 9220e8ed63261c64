"""Officers' logins and the login limit, without a browser or ClickHouse."""

import json

import pytest

from povhub.web.login_guard import LoginGuard
from povhub.web.users import Officer, UserStore, UserStoreError

PASSWORD = "correct horse 16"


@pytest.fixture
def store(tmp_path):
    return UserStore(tmp_path / "users.json")


def test_password_is_stored_as_argon2_and_checked(store):
    store.add("province50", "province", "50", PASSWORD)
    raw = store.path.read_text()
    assert PASSWORD not in raw and "$argon2id$" in raw
    assert store.authenticate("province50", PASSWORD).area == "50"
    assert store.path.stat().st_mode & 0o777 == 0o600


def test_wrong_password_and_unknown_user_look_the_same(store):
    store.add("province50", "province", "50", PASSWORD)
    assert store.authenticate("province50", "not the password") is None
    assert store.authenticate("nobody", PASSWORD) is None


@pytest.mark.parametrize(("level", "area", "message"), [
    ("province", "5", "2-digit"),
    ("province", "99", "not a known"),
    ("district", "50", "4-digit"),
    ("subdistrict", "५०0101", "6-digit"),  # Devanagari digits are digits to str.isdigit
    ("national", "50", "no --area"),
    ("village", "50010101", "level must be"),
])
def test_bad_scopes_are_refused_with_one_line(store, level, area, message):
    with pytest.raises(UserStoreError, match=message):
        store.add("someone", level, area, PASSWORD)


def test_municipal_tambons_are_areas_too(store):
    assert store.add("tambon500151", "subdistrict", "500151", PASSWORD).area == "500151"


def test_short_password_duplicate_and_unknown_removal_are_refused(store):
    with pytest.raises(UserStoreError, match="at least"):
        store.add("short", "national", None, "12345")
    store.add("national01", "national", None, PASSWORD)
    with pytest.raises(UserStoreError, match="exists"):
        store.add("national01", "national", None, PASSWORD)
    with pytest.raises(UserStoreError, match="no user"):
        store.remove("ghost")


def test_a_running_server_sees_removals(store):
    store.add("district5001", "district", "5001", PASSWORD)
    other = UserStore(store.path)  # the server's own store object
    assert other.get("district5001") is not None
    store.remove("district5001")
    assert other.get("district5001") is None
    assert json.loads(store.path.read_text()) == {"users": []}


@pytest.mark.parametrize(("area", "code", "sees"), [
    ("", "TH", True), ("", "10", True), ("50", "TH", False), ("50", "50", True), ("50", "5001", True),
    ("50", "10", False), ("50", "5", False), ("5001", "500101", True), ("5001", "5002", False),
    ("500101", "50010101", True), ("500101", "500102", False),
])
def test_an_officer_sees_his_area_and_below_only(area, code, sees):
    assert Officer("u", "x", area, "", "").sees(code) is sees


def test_login_limit_counts_failures_per_address_and_per_user():
    now = [0.0]
    guard = LoginGuard(limit=3, window_s=60, clock=lambda: now[0])
    for _ in range(3):
        assert not guard.blocked("10.0.0.1", "a")
        guard.failed("10.0.0.1", "a")
    assert guard.blocked("10.0.0.1", "b")  # the address
    assert guard.blocked("10.0.0.2", "a")  # the user name, from elsewhere
    assert not guard.blocked("10.0.0.2", "b")
    now[0] = 61
    assert not guard.blocked("10.0.0.1", "a")
