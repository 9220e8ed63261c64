"""The centres' web page in a real browser: Debian's Chromium, headless, driven by Playwright.

Officers of the four levels log in, drill down to a village, and every headline figure on each
page is compared with `povhub report --format json` for that area (run in this process on the
same chdb folder). Each opens the work list and exports CSV; scoping is checked for province 50;
every rendered page and export is scanned for 13-digit citizen IDs. A screenshot per level goes
to POVHUB_TEST_OUTPUT (default test-output/)/web: look at them.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import threading
import time
from pathlib import Path

import pytest

from povhub.cli import main as povhub
from povhub.web.access import DirectAccess
from povhub.web.app import create_app
from povhub.web.users import UserStore
from sinks.clickhouse import connect
from sinks.tpmap_figures import parse_tpmap_csv
from tests.conftest import free_port
from tests.support.web_data import PLANTED_CITIZEN_ID, load

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is missing")]
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
PASSWORD = "รหัสผ่าน-ทดสอบ-16"
OUTPUT = Path(os.environ.get("POVHUB_TEST_OUTPUT", "test-output")) / "web"
CITIZEN_ID = re.compile(r"(?<!\d)\d{13}(?!\d)")
# (user, level, area, the areas it drills down through to a village)
OFFICERS = [
    ("national01", "national", None, ["TH", "50", "5001", "500101", "50010101"]),
    ("province50", "province", "50", ["50", "5001", "500101", "50010102"]),
    ("district5001", "district", "5001", ["5001", "500101", "50010101"]),
    ("tambon500101", "subdistrict", "500101", ["500101", "50010102"]),
]
LEVEL_OF = {2: "province", 4: "district", 6: "subdistrict", 8: "village"}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("web")
    dsn = f"chdb://{folder}/chdb"
    client = connect(dsn)
    load(client)
    users = UserStore(folder / "users.json")
    for name, level, area, _ in OFFICERS:
        users.add(name, level, area, PASSWORD)
    import uvicorn
    port = free_port()
    app = create_app(DirectAccess(client, server=False), users, "s" * 48, cookie_secure=False)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    old = os.environ.get("CLICKHOUSE_URL")
    os.environ["CLICKHOUSE_URL"] = dsn
    try:
        yield f"http://127.0.0.1:{port}", client
    finally:
        server.should_exit = True
        thread.join(10)
        client.close()
        if old is None:
            os.environ.pop("CLICKHOUSE_URL", None)
        else:
            os.environ["CLICKHOUSE_URL"] = old


@pytest.fixture(scope="module")
def browser():
    # imported here, not at collection: playwright costs every test process a second, and these tests are slow
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def report(code: str) -> dict:
    """`povhub report --format json` for one area: its row in the report of its own level."""
    level = "national" if code == "TH" else LEVEL_OF[len(code)]
    args = ["report", "--level", level, "--format", "json"]
    if level == "village":
        args += ["--code", code[:6]]
    elif level != "national":
        args += ["--code", code]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert povhub(args) == 0
    [row] = [r for r in json.loads(out.getvalue()) if r["code"] == code]
    return row


def tpmap_report(code: str, dimensions: str) -> dict:
    """The area's row of `povhub report --format tpmap --dimensions ...` (TPMAP's CSV)."""
    level = "national" if code == "TH" else LEVEL_OF[len(code)]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert povhub(["report", "--level", level, *(["--code", code] if level != "national" else []),
                       "--format", "tpmap", "--dimensions", dimensions]) == 0
    columns, rows = parse_tpmap_csv(out.getvalue())
    [row] = [dict(zip(columns, r)) for r in rows if r[0] == code]
    return row


def shown(value: object) -> str:
    """A report value as the page prints it: thousands separators, baht to the whole baht."""
    return f"{value:,.0f}" if isinstance(value, float) else f"{value:,}"


def no_citizen_id(text: str, where: str) -> None:
    found = CITIZEN_ID.findall(text)
    assert not found, f"{where} holds 13-digit numbers {found[:3]}"


def login(browser, base: str, user: str, password: str = PASSWORD):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="th-TH", accept_downloads=True)
    page = context.new_page()
    page.goto(base + "/")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    return context, page


@pytest.mark.parametrize("officer", OFFICERS, ids=[o[0] for o in OFFICERS])
def test_officer_drills_down_and_every_figure_equals_povhub_report(site, browser, officer):
    base, _ = site
    user, level, area, path = officer
    context, page = login(browser, base, user)
    try:
        assert page.url == f"{base}/area/{path[0]}"
        for i, code in enumerate(path):
            if i:  # drill down by the child table's link, as an officer would
                page.click(f'#children a[href="/area/{code}"]')
                page.wait_for_url(f"{base}/area/{code}")
            expected = report(code)
            figures = page.locator("[data-figure]")
            assert figures.count() >= 20
            for n in range(figures.count()):
                key = figures.nth(n).get_attribute("data-figure")
                assert figures.nth(n).inner_text() == shown(expected[key]), (code, key)
            assert re.match(r"\d\d:\d\d:\d\d", page.locator("[data-figure-time]").inner_text())
            if expected["open_problems"]:  # the problems by dimension and age add up to the report's count
                totals = page.locator("#problems tbody td:last-child").all_inner_texts()
                assert sum(int(t.replace(",", "")) for t in totals) == expected["open_problems"]
            html = page.content()
            no_citizen_id(html, f"/area/{code}")
            crumbs = page.locator("nav.crumbs").inner_text()
            assert (expected["name_th"] or "") in crumbs or code == "TH" or len(code) == 8
            page.screenshot(path=str(OUTPUT / f"{user}-{len(code) if code != 'TH' else 0:d}-{code}.png"), full_page=True)
        # TPMAP's figures for a dimension selection, as `povhub report --format tpmap --dimensions`
        home = path[0]
        page.goto(f"{base}/area/{home}")
        for box in page.locator("form.dims input[name=dim]").all():
            box.set_checked(box.get_attribute("value") in ("health", "income"))
        page.click("form.dims button")
        page.wait_for_url(re.compile(r".*dim=health.*dim=income.*"))
        expected = tpmap_report(home, "health,income")
        cells = page.locator("[data-tpmap]")
        assert cells.count() >= 10
        for n in range(cells.count()):
            column = cells.nth(n).get_attribute("data-tpmap")
            value = expected[column]
            # text_content: the indicators sit in a closed <details>, not rendered
            assert cells.nth(n).text_content().strip() == (f"{float(value):.2f}" if column == "JPT.MOFval.pov.rate" else f"{value:,}"), column
        assert expected["poor.JPT.MOFval.living"] == 0  # not selected
        # the work list of the tambon on the way down
        tambon = next(c for c in path if len(c) == 6)
        page.goto(f"{base}/worklist/{tambon}")
        assert page.locator("h1").inner_text().startswith("รายการงาน")
        no_citizen_id(page.content(), f"/worklist/{tambon}")
        page.screenshot(path=str(OUTPUT / f"{user}-worklist-{tambon}.png"), full_page=True)
        with page.expect_download() as download:
            page.click(f'a[href="/worklist/{tambon}/export.csv"]')
        text = Path(download.value.path()).read_text(encoding="utf-8-sig")
        assert text.splitlines()[0].startswith("หมู่บ้าน,รหัสบ้าน")
        no_citizen_id(text, "work list CSV")
        houses = page.locator("a.house")
        if houses.count():
            houses.first.click()
            page.wait_for_url(re.compile(r".*/household/\d{11}$"))
            assert "เส้นเวลา" in page.content()
            no_citizen_id(page.content(), page.url)
        with page.expect_download() as download:
            page.goto(f"{base}/area/{path[0]}")
            page.click(f'a[href="/area/{path[0]}/export.csv"]')
        no_citizen_id(Path(download.value.path()).read_text(encoding="utf-8-sig"), "area CSV")
    finally:
        context.close()


def test_province_officer_never_sees_another_province(site, browser):
    base, _ = site
    context, page = login(browser, base, "province50")
    try:
        for path in ("/area/10", "/area/1001", "/area/TH", "/worklist/100101", "/alerts/10", "/area/10/export.csv"):
            assert context.request.get(base + path).status == 403, path
        for path in ("/area/50", "/alerts/50", "/area/50/export.csv", "/alerts/50/export.csv"):
            body = context.request.get(base + path).text()
            assert not re.search(r"/area/10\d*\"|\b100101\b|กรุงเทพ", body), path
        page.goto(base + "/alerts/50")
        page.screenshot(path=str(OUTPUT / "province50-alerts.png"), full_page=True)
        no_citizen_id(page.content(), "/alerts/50")
        # a Bangkok household's page is refused like an unknown one
        bangkok = [line for line in report_rows("subdistrict", "10") if line["households"]]
        assert bangkok
    finally:
        context.close()


def report_rows(level: str, code: str) -> list[dict]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert povhub(["report", "--level", level, "--code", code, "--format", "json"]) == 0
    return json.loads(out.getvalue())


def test_household_of_another_area_is_forbidden_and_timelines_join_three_sources(site, browser):
    base, client = site
    keys = dict(client.query("SELECT household_key, subdistrict FROM household_state FINAL").result_rows)
    outside = next(k for k, sub in keys.items() if not sub.startswith("5001"))
    inside = next(k for k, sub in keys.items() if sub == "500101"
                  and client.command(f"SELECT count() FROM events WHERE household_key = '{k}'"))
    context, page = login(browser, base, "district5001")
    try:
        assert context.request.get(f"{base}/household/{outside}").status == 403
        assert context.request.get(f"{base}/household/99999999999").status == 403
        page.goto(f"{base}/household/{inside}")
        timeline = page.locator("ol.timeline").inner_text()
        for source in ("TPMAP", "Thai QM", "อปท."):
            assert source in timeline
        assert PLANTED_CITIZEN_ID not in page.content()
        page.screenshot(path=str(OUTPUT / "district5001-household.png"), full_page=True)
        audit = client.query("SELECT username, action, household_key FROM web_audit WHERE action = 'household'")
        assert ("district5001", "household", inside) in audit.result_rows
    finally:
        context.close()


def test_page_is_usable_on_a_phone(site, browser):
    base, _ = site
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True,
                                  has_touch=True)
    page = context.new_page()
    try:
        page.goto(base + "/")
        page.fill("input[name=username]", "tambon500101")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{base}/area/500101")
        # nothing wider than the screen but the scrollable child table
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        page.screenshot(path=str(OUTPUT / "phone-tambon500101.png"), full_page=True)
    finally:
        context.close()


# last: its failed logins from 127.0.0.1 trip the limit for every user of this address
def test_wrong_password_and_unknown_user_get_one_message_then_a_limit(site, browser):
    base, _ = site
    messages = []
    for user in ("province50", "nobody-here"):
        context, page = login(browser, base, user, "wrong password!")
        messages.append(page.locator("[role=alert]").inner_text())
        context.close()
    assert messages[0] == messages[1] == "ชื่อผู้ใช้หรือรหัสผ่านไม่ถูกต้อง"
    context, page = login(browser, base, "province50", "wrong password!")
    try:
        for _ in range(5):
            page.fill("input[name=username]", "province50")
            page.fill("input[name=password]", "wrong again!!")
            page.click("button[type=submit]")
        assert "กรุณารอ" in page.locator("[role=alert]").inner_text()
    finally:
        context.close()
