"""The centres' web page: server-rendered HTML (Jinja2), Thai throughout, no CDN.

Every page is scoped to the logged-in officer's area: another area's page answers 403, and lists
and exports hold only the officer's area and below (the queries take his area as their prefix).
The figures are `sinks.report.level_summary` rows, the same as `povhub report --format json`.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import hmac
import io
import asyncio
import json
import secrets
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import geothai
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.middleware.sessions import SessionMiddleware

from povhub.web import labels
from povhub.web.access import Access, AccessError, officer_role
from povhub.web.login_guard import LoginGuard
from povhub.web.users import Officer, UserStore
from sinks.dimension_selection import DIMENSIONS, mask_text, selection
from schemas.metrics import WEB_LOGINS as LOGINS
from schemas.metrics import WEB_REQUEST_SECONDS as LATENCY
from schemas.metrics import WEB_REQUESTS as REQUESTS

HERE = Path(__file__).parent
BANGKOK = ZoneInfo("Asia/Bangkok")
LEVEL_OF_LENGTH = {0: "national", 2: "province", 4: "district", 6: "subdistrict", 8: "village"}
CHILD_LEVEL = {"national": "province", "province": "district", "district": "subdistrict", "subdistrict": "village"}
SESSION_HOURS = 8
ROUTES = {"root", "login", "logout", "area", "worklist", "household", "alerts", "static", "metrics", "health"}
WRONG_LOGIN = "ชื่อผู้ใช้หรือรหัสผ่านไม่ถูกต้อง"  # the same for an unknown user and a wrong password
TOO_MANY = "เข้าสู่ระบบผิดหลายครั้งเกินไป กรุณารอ 5 นาทีแล้วลองใหม่"




class Forbidden(Exception):
    pass


class NotFound(Exception):
    pass


class LoginRequired(Exception):
    pass


def safe_next(target: str) -> bool:
    """A path on this site only: browsers read //host and /\\host as another site."""
    return target.startswith("/") and not target.startswith(("//", "/\\")) and "\\" not in target


def area_level(code: str) -> str:
    """'TH' is the nation; otherwise the level of a DOPA code by its length."""
    if code == "TH":
        return "national"
    if not (code.isascii() and code.isdigit() and len(code) in LEVEL_OF_LENGTH):
        raise NotFound(code)
    return LEVEL_OF_LENGTH[len(code)]


@functools.lru_cache(maxsize=20_000)
def area_name(code: str) -> str:
    """The Thai name of an area for breadcrumbs and titles (geothai, as the areas table).

    Cached: geothai finds a sub-district by scanning its list (~7 ms), and an alerts page names
    hundreds of areas."""
    if code == "TH":
        return "ประเทศไทย"
    found = {2: geothai.province, 4: geothai.district, 6: geothai.subdistrict}.get(len(code), lambda _: None)(code)
    if found is not None:
        return found.name_th
    if len(code) in (8, 10):  # DOPA's village, or TPMAP's 10-digit id of one
        return f"หมู่ที่ {int(code[6:8])}"
    if len(code) == 6 and int(code[4:]) >= 51:
        return f"เขตเทศบาล {code}"
    return code


def child_name(row: dict[str, Any], level: str) -> str:
    if row.get("name_th"):
        return row["name_th"]
    if level == "village" and len(row["code"]) == 6:
        return "ไม่ระบุหมู่บ้าน"
    return area_name(row["code"])


def breadcrumbs(code: str, officer: Officer) -> list[tuple[str, str]]:
    """(code, name) from the officer's own area down to `code`."""
    chain = ["TH"] + ([code[:n] for n in (2, 4, 6, 8) if len(code) >= n] if code != "TH" else [])
    return [(c, area_name(c)) for c in chain if officer.sees(c) and (c == officer.home or len(c) > len(officer.area))]


def bangkok_time(iso_or_dt: Any) -> str:
    if not iso_or_dt:
        return "-"
    t = datetime.fromisoformat(iso_or_dt) if isinstance(iso_or_dt, str) else iso_or_dt
    return t.astimezone(BANGKOK).strftime("%d/%m/%Y %H:%M")


def age_th(seconds: int | None) -> str:
    if seconds is None:
        return "ไม่มีข้อมูล"
    for unit, size in (("วัน", 86_400), ("ชั่วโมง", 3_600), ("นาที", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{max(seconds, 0)} วินาที"


def number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def figures_etag(rows: Sequence[dict[str, Any]]) -> str:
    """Changes when any figure changes; the ages, which tick every second, are left out."""
    stable = [{k: v for k, v in r.items() if not k.endswith("_age_s")} for r in rows]
    return hashlib.sha256(json.dumps(stable, sort_keys=True, default=str).encode()).hexdigest()[:16]


def export(rows: list[dict[str, Any]], columns: Sequence[tuple[str, str]], fmt: str, name: str) -> Response:
    """A table as CSV (UTF-8 with BOM, so Excel shows Thai) or XLSX."""
    header = [label for _, label in columns]
    body = [[r.get(k) for k, _ in columns] for r in rows]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(body)
        return Response(("\ufeff" + out.getvalue()).encode(), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
    if fmt == "xlsx":
        from openpyxl import Workbook
        book = Workbook(write_only=True)
        sheet = book.create_sheet(name[:31])
        sheet.append(header)
        for line in body:
            sheet.append([", ".join(map(str, v)) if isinstance(v, list) else v for v in line])
        out = io.BytesIO()
        book.save(out)
        return Response(out.getvalue(),
                        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                        headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'})
    raise NotFound(fmt)


WORK_COLUMNS = (("village", "หมู่บ้าน"), ("household_key", "รหัสบ้าน"), ("members", "สมาชิก"),
                ("due", "สิ่งที่ต้องทำ"), ("last_visit", "เยี่ยมล่าสุด"))
ALERT_COLUMNS = (("severity_th", "ความรุนแรง"), ("title_th", "เรื่อง"), ("level_th", "ระดับที่รับผิดชอบ"),
                 ("steps", "ขั้นตอน"), ("age", "อายุ"), ("due", "กำหนด"), ("area", "พื้นที่"),
                 ("household_key", "รหัสบ้าน"))


def due_items(h: dict[str, Any]) -> list[str]:
    items = []
    if h["visit_due"]:
        items.append("ครัวเรือนเป้าหมายยังไม่ได้เยี่ยมบ้าน")
    if h["overdue_problems"]:
        items.append(f"ปัญหา Thai QM เกินกำหนด {h['overdue_problems']} เรื่อง")
    items += [f"แจ้งเตือน{labels.SEVERITY_TH.get(a['severity'], a['severity'])}: {a['title_th']}" for a in h["alerts"]]
    return items


def alert_view(a: dict[str, Any], now: datetime) -> dict[str, Any]:
    raised = datetime.fromisoformat(a["raised_at"])
    where = a["village"] or a["subdistrict"]
    place = f"{area_name(where)} {area_name(where[:6])}" if len(where) == 8 else area_name(where)
    return {**a, "area": place, "severity_th": labels.SEVERITY_TH.get(a["severity"], a["severity"]),
            "level_th": labels.ALERT_LEVEL_TH.get(a["level"], a["level"]),
            "age": age_th(int((now - raised).total_seconds())),
            "due": bangkok_time(a["due_time"]),
            "overdue": a["due_time"] is not None and datetime.fromisoformat(a["due_time"]) < now}


def create_app(access: Access, users: UserStore, secret: str, cookie_secure: bool = True,
               guard: LoginGuard | None = None) -> FastAPI:
    guard = guard or LoginGuard()
    app = FastAPI(title="Povhub ศจพ.", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(SessionMiddleware, secret_key=secret, session_cookie="povhub_session",
                       max_age=SESSION_HOURS * 3600, same_site="strict", https_only=cookie_secure)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters.update(number=number, age=age_th, bkk=bangkok_time)
    templates.env.globals.update(labels=labels)

    @app.middleware("http")
    async def measured(request: Request, call_next: Callable) -> Response:
        started = time.perf_counter()
        route = request.url.path.split("/")[1] or "root"
        route = route if route in ROUTES else "other"  # a label per typed URL would grow without bound
        try:
            response = await call_next(request)
        except Exception:
            REQUESTS.labels(route, "500").inc()
            raise
        LATENCY.labels(route).observe(time.perf_counter() - started)
        REQUESTS.labels(route, str(response.status_code)).inc()
        # Everything is served from here: no other origin may run code, frame or be told the URL
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; style-src-attr 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'")
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        if route != "static":
            response.headers["Cache-Control"] = "no-store"
        return response

    def csrf_token(request: Request) -> str:
        token = request.session.get("csrf")
        if not token:
            token = request.session["csrf"] = secrets.token_urlsafe(32)
        return token

    def csrf_ok(request: Request, sent: str | None) -> bool:
        return bool(sent) and hmac.compare_digest(str(sent), request.session.get("csrf", ""))

    def officer_of(request: Request) -> Officer | None:
        name = request.session.get("user")
        officer = users.get(name) if name else None
        # a removed user, or one re-added with another area, is logged out
        if officer is None or request.session.get("area") != officer.area:
            return None
        return officer

    def page(request: Request, template: str, officer: Officer | None, status: int = 200, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(request, template, {"officer": officer, "csrf": csrf_token(request),
                                                          "level_th": labels.LEVEL_TH, **context},
                                          status_code=status)

    def required(request: Request) -> Officer:
        officer = officer_of(request)
        if officer is None:
            raise LoginRequired(request.url.path)
        return officer

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"/login?next={exc.args[0]}", status_code=303)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        return page(request, "error.html", officer_of(request), 403, message="ไม่มีสิทธิ์ดูพื้นที่นี้")

    @app.exception_handler(NotFound)
    async def not_found(request: Request, exc: NotFound) -> Response:
        return page(request, "error.html", officer_of(request), 404, message="ไม่พบหน้านี้")

    @app.exception_handler(ValueError)
    async def bad_request(request: Request, exc: ValueError) -> Response:
        # a query refused its arguments (e.g. a code the page let through): a page, not a 500
        return page(request, "error.html", officer_of(request), 404, message="ไม่พบหน้านี้")

    @app.exception_handler(AccessError)
    async def unavailable(request: Request, exc: AccessError) -> Response:
        return page(request, "error.html", officer_of(request), 503,
                    message=f"ยังอ่านข้อมูลไม่ได้ กรุณาลองใหม่อีกครั้ง ({exc})")

    async def run(name: str, officer: Officer, **arguments: Any) -> Any:
        return await asyncio.to_thread(access.run, name, officer_role(officer.area), **arguments)

    def scoped(officer: Officer, code: str) -> str:
        level = area_level(code)
        if not officer.sees(code):
            raise Forbidden(code)
        return level

    async def area_rows(officer: Officer, code: str) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
        level = scoped(officer, code)
        if level == "village":
            own = [r for r in await run("summary", officer, level="village", code=code[:6]) if r["code"] == code]
        else:
            own = await run("summary", officer, level=level, code=None if level == "national" else code)
        if not own:
            raise NotFound(code)
        children = []
        if level in CHILD_LEVEL:
            child_level = CHILD_LEVEL[level]
            children = await run("summary", officer, level=child_level, code=None if level == "national" else code)
            children = [{**r, "name_th": child_name(r, child_level)} for r in children]
        return own[0], children, level

    @app.get("/health")
    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/login")
    async def login_form(request: Request, next: str = "/") -> HTMLResponse:
        return page(request, "login.html", None, next=next if safe_next(next) else "/")

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        username, password = str(form.get("username", "")).strip(), str(form.get("password", ""))
        target = str(form.get("next", "/"))
        target = target if safe_next(target) else "/"
        if not csrf_ok(request, form.get("csrf")):
            return page(request, "login.html", None, 400, error="แบบฟอร์มหมดอายุ กรุณาลองใหม่", next=target)
        address = request.client.host if request.client else "?"
        if guard.blocked(address, username):
            LOGINS.labels("throttled").inc()
            return page(request, "login.html", None, 429, error=TOO_MANY, next=target)
        officer = await asyncio.to_thread(users.authenticate, username, password)
        if officer is None:
            guard.failed(address, username)
            LOGINS.labels("failed").inc()
            return page(request, "login.html", None, 401, error=WRONG_LOGIN, next=target)
        LOGINS.labels("ok").inc()
        request.session.clear()  # a new session at login: a planted session id gains nothing
        request.session.update(user=officer.username, area=officer.area, csrf=secrets.token_urlsafe(32))
        return RedirectResponse(target if target != "/" else f"/area/{officer.home}", status_code=303)

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        form = await request.form()
        if csrf_ok(request, form.get("csrf")):
            request.session.clear()
        return RedirectResponse("/login", status_code=303)

    @app.get("/")
    async def root(request: Request) -> Response:
        officer = officer_of(request)
        return RedirectResponse(f"/area/{officer.home}" if officer else "/login", status_code=303)

    @app.get("/area/{code}")
    async def area(request: Request, code: str) -> Response:
        officer = required(request)
        own, children, level = await area_rows(officer, code)
        try:  # the dimension boxes of the TPMAP section: none ticked means all five
            mask = selection(request.query_params.getlist("dim") or None)
        except ValueError:
            mask = selection(None)
        tpmap = await tpmap_row(officer, code, level, mask)
        problems = await run("open_problems", officer, code="" if code == "TH" else code)
        shown = [c for c in children if c["households"] or c["open_problems"] or any(
            c[k] for k, _ in labels.ALERTS)]
        snapshot = datetime.now(UTC) - timedelta(seconds=own["figures_age_s"] or 0)
        return page(request, "area.html", officer, code=code, level=level, name=area_name(code), own=own,
                    children=shown, hidden_children=len(children) - len(shown),
                    child_level=CHILD_LEVEL.get(level), crumbs=breadcrumbs(code, officer),
                    max_households=max([c["households"] for c in shown] + [1]),
                    as_of=snapshot.astimezone(BANGKOK).strftime("%H:%M:%S"),
                    etag=figures_etag([own, *children]), tpmap=tpmap, mask=mask_text(mask), problems=problems,
                    selected={d for i, d in enumerate(DIMENSIONS) if mask >> i & 1})

    async def tpmap_row(officer: Officer, code: str, level: str, mask: int) -> dict[str, Any] | None:
        """The area's row of TPMAP's figures for the selection; None for a village (TPMAP's village
        ids are its own 10-digit ones) or an area TPMAP has no households in."""
        if level == "village":
            return None
        found = await run("tpmap", officer, level=level, code=None if level == "national" else code,
                          dimensions=mask_text(mask))
        rows = [dict(zip(found["columns"], r)) for r in found["rows"] if r[0] == code]
        return rows[0] if rows else None

    @app.get("/area/{code}/stamp")
    async def stamp(request: Request, code: str) -> Response:
        officer = required(request)
        own, children, _ = await area_rows(officer, code)
        return JSONResponse({"etag": figures_etag([own, *children])})

    @app.get("/area/{code}/export.{fmt}")
    async def area_export(request: Request, code: str, fmt: str) -> Response:
        officer = required(request)
        own, children, level = await area_rows(officer, code)
        rows = children or [own]
        return export(rows, labels.CHILD_COLUMNS + labels.FAILED + labels.ALERTS[2:] + labels.QUALITY, fmt,
                      f"povhub-{code}")

    async def work_rows(request: Request, officer: Officer, code: str) -> list[dict[str, Any]]:
        if scoped(officer, code) not in ("subdistrict", "village"):
            raise NotFound(code)
        rows = await run("work_list", officer, code=code)
        await run("audit", officer, username=officer.username, user_level=officer.level, user_area=officer.area,
                  action="work_list", area_code=code, client_address=request.client.host if request.client else "")
        return [{**h, "due": "; ".join(due_items(h)), "due_list": due_items(h),
                 "last_visit": bangkok_time(h["last_visit_time"]),
                 "village_name": area_name(h["village"]) if h["village"] else "ไม่ระบุหมู่บ้าน"} for h in rows]

    @app.get("/worklist/{code}")
    async def worklist(request: Request, code: str) -> Response:
        officer = required(request)
        rows = await work_rows(request, officer, code)
        villages: dict[str, list[dict[str, Any]]] = {}
        for h in rows:
            villages.setdefault(h["village_name"], []).append(h)
        return page(request, "worklist.html", officer, code=code, name=area_name(code), villages=villages,
                    total=len(rows), crumbs=breadcrumbs(code, officer))

    @app.get("/worklist/{code}/export.{fmt}")
    async def worklist_export(request: Request, code: str, fmt: str) -> Response:
        officer = required(request)
        return export(await work_rows(request, officer, code), WORK_COLUMNS, fmt, f"worklist-{code}")

    @app.get("/household/{key}")
    async def household(request: Request, key: str) -> Response:
        officer = required(request)
        if not (key.isascii() and key.isdigit() and len(key) == 11):
            raise NotFound(key)
        found = await run("household", officer, key=key)
        # unknown and out-of-scope look alike: the page does not confirm that a house code exists
        if found is None or not any(officer.sees(a) for a in found["areas"]):
            raise Forbidden(key)
        state = found["state"]
        area_code = next(a for a in [state["village"] or state["subdistrict"], *found["areas"]] if officer.sees(a))
        await run("audit", officer, username=officer.username, user_level=officer.level, user_area=officer.area,
                  action="household", area_code=area_code, household_key=key,
                  client_address=request.client.host if request.client else "")
        return page(request, "household.html", officer, key=key, state=state, timeline=found["timeline"],
                    crumbs=breadcrumbs(area_code, officer), area_code=area_code)

    async def alert_rows(officer: Officer, code: str) -> list[dict[str, Any]]:
        scoped(officer, code)
        now = datetime.now(UTC)
        return [alert_view(a, now) for a in await run("open_alerts", officer, code="" if code == "TH" else code)]

    @app.get("/alerts/{code}")
    async def alerts(request: Request, code: str) -> Response:
        officer = required(request)
        return page(request, "alerts.html", officer, code=code, name=area_name(code),
                    alerts=await alert_rows(officer, code), crumbs=breadcrumbs(code, officer))

    @app.get("/alerts/{code}/export.{fmt}")
    async def alerts_export(request: Request, code: str, fmt: str) -> Response:
        officer = required(request)
        return export(await alert_rows(officer, code), ALERT_COLUMNS, fmt, f"alerts-{code}")

    return app
