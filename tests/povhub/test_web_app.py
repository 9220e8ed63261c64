"""The web page's failure modes, in-process (FastAPI's test client), without ClickHouse: forms
without their CSRF token, a worker that does not answer, a removed officer, the metrics."""

import re

import pytest
from fastapi.testclient import TestClient

from povhub.web.access import WorkerAccess
from povhub.web.app import create_app
from povhub.web.users import UserStore
from tests.conftest import free_port

PASSWORD = "correct horse 16"


@pytest.fixture
def site(tmp_path):
    users = UserStore(tmp_path / "users.json")
    users.add("province50", "province", "50", PASSWORD)
    # nothing listens on this port: the worker is down
    app = create_app(WorkerAccess("127.0.0.1", free_port(), timeout=2), users, "k" * 40, cookie_secure=False)
    return TestClient(app), users


def csrf(client: TestClient) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)[1]


def log_in(client: TestClient) -> None:
    r = client.post("/login", data={"username": "province50", "password": PASSWORD, "csrf": csrf(client)},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/area/50"


def test_a_form_without_its_csrf_token_is_refused(site):
    client, _ = site
    client.get("/login")
    r = client.post("/login", data={"username": "province50", "password": PASSWORD, "csrf": "forged"})
    assert r.status_code == 400 and "แบบฟอร์มหมดอายุ" in r.text
    log_in(client)
    client.post("/logout", data={"csrf": "forged"})  # a cross-site logout does nothing
    assert client.get("/area/50", follow_redirects=False).status_code != 303


def test_worker_down_gives_one_line_and_no_traceback(site):
    client, _ = site
    log_in(client)
    r = client.get("/area/50")
    assert r.status_code == 503
    assert "ยังอ่านข้อมูลไม่ได้" in r.text and "povhub worker" in r.text and "Traceback" not in r.text


def test_session_cookie_is_signed_strict_and_httponly(tmp_path):
    users = UserStore(tmp_path / "users.json")
    users.add("province50", "province", "50", PASSWORD)
    client = TestClient(create_app(WorkerAccess("127.0.0.1", 9), users, "k" * 40, cookie_secure=True),
                        base_url="https://testserver")
    cookie = client.get("/login").headers["set-cookie"].lower()
    assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie


def test_a_removed_officer_is_logged_out(site):
    client, users = site
    log_in(client)
    users.remove("province50")
    r = client.get("/area/50", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_pages_need_a_login_and_metrics_count_them(site):
    client, _ = site
    for path in ("/area/TH", "/worklist/500101", "/household/50010000123", "/alerts/50", "/area/50/export.csv"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == f"/login?next={path}"
    client.get("/no-such-page-" + "x" * 20)
    metrics = client.get("/metrics").text
    assert 'povhub_web_requests_total{route="area",status="303"}' in metrics
    assert 'route="other"' in metrics and "no-such-page" not in metrics


def test_security_headers_forbid_other_origins(site):
    client, _ = site
    headers = client.get("/login").headers
    assert "default-src 'self'" in headers["content-security-policy"]
    assert headers["cache-control"] == "no-store" and headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(("target", "safe"), [
    ("/area/50", True), ("/", True), ("//evil.example/x", False), ("/\\evil.example", False),
    ("https://evil.example", False), ("area/50", False),
])
def test_login_returns_only_to_this_site(target, safe):
    from povhub.web.app import safe_next
    assert safe_next(target) is safe


def test_login_with_a_foreign_next_lands_on_the_officers_area(site):
    client, _ = site
    r = client.post("/login", data={"username": "province50", "password": PASSWORD, "csrf": csrf(client),
                                    "next": "//evil.example/"}, follow_redirects=False)
    assert r.headers["location"] == "/area/50"
