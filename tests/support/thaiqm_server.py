"""A Thai QM API on loopback that implements connectors/thaiqm/openapi.yaml over an in-memory dataset.

Real HTTP (stdlib ``ThreadingHTTPServer`` in a thread), so the poller is tested through sockets,
timeouts and headers. Knobs inject faults into the next requests, in order: an HTTP status
(500, 503…), a stall longer than the client's timeout, or a 429 with ``Retry-After``. The dataset
builder makes valid records with many equal ``updated_at`` values, so pages split ties.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import geothai

from connectors.citizen_id import check_digit

TOKEN = "test-token-thaiqm"
BANGKOK = timezone(timedelta(hours=7))
ID_FIELD = {"households": "case_id", "problems": "problem_id"}
# (status, previous status) pairs along the lifecycle, each a valid step
STEPS = [("REPORTED", None), ("ACKNOWLEDGED", "REPORTED"), ("ASSIGNED", "ACKNOWLEDGED"),
         ("IN_PROGRESS", "ASSIGNED"), ("RESOLVED", "IN_PROGRESS"), ("SELF_RESOLVED", "REPORTED"),
         ("REFERRED", "ASSIGNED")]
PROBLEMS = [("health", "CHRONIC_CARE", "ผู้ป่วยติดเตียงต้องการการดูแล"), ("living", "HOUSE_REPAIR", "หลังคารั่ว"),
            ("education", "ILLITERATE", "อ่านเขียนไม่ได้"), ("income", "DEBT", "หนี้นอกระบบ"),
            ("access", "NO_WELFARE_CARD", "ยังไม่ได้ลงทะเบียนบัตรสวัสดิการ")]


def citizen_id(rng: random.Random, first: str | None = None) -> str:
    body = (first or str(rng.randint(1, 8))) + "".join(str(rng.randint(0, 9)) for _ in range(11))
    return body + str(check_digit(body))


def iso(t: datetime) -> str:
    return t.astimezone(BANGKOK).isoformat(timespec="milliseconds")


def make_dataset(households: int = 30, seed: int = 7, tie: int = 4) -> dict[str, list[dict[str, Any]]]:
    """Valid households and problems; every `tie` consecutive records share one updated_at."""
    rng = random.Random(seed)
    subdistricts = [s for d in ("4001", "5001", "8001") for s in geothai.subdistricts(d)[:4]]
    start = datetime(2024, 11, 1, 8, 0, tzinfo=BANGKOK)
    data: dict[str, list[dict[str, Any]]] = {"households": [], "problems": []}
    for h in range(households):
        sub = subdistricts[h % len(subdistricts)]
        area = {"province": sub.province_code, "district": sub.district_code, "subdistrict": sub.code,
                "village": f"{sub.code}{h % 9 + 1:02d}" if h % 3 else None}
        house = f"{sub.district_code}{h:06d}{h % 10}"
        case = f"QM-{sub.code}-{h:06d}"
        # one household in seven is headed by a person without Thai status (ID starting with 0)
        ids = [citizen_id(rng, "0" if h % 7 == 3 else None) for _ in range(rng.randint(1, 4))]
        updated = start + timedelta(minutes=h // tie)
        data["households"].append({
            "case_id": case, "house_code": house if h % 10 != 9 else None, **area,
            "members": [{"citizen_id": c, "role": "HEAD" if i == 0 else "MEMBER"} for i, c in enumerate(ids)],
            "surveyed_at": iso(updated - timedelta(days=2)), "updated_at": iso(updated)})
        for p in range(rng.randint(1, 3)):
            dim, code, text = PROBLEMS[(h + p) % len(PROBLEMS)]
            status, previous = STEPS[(h * 3 + p) % len(STEPS)]
            person_only = h % 11 == 5 and p == 0
            n = len(data["problems"])
            data["problems"].append({
                "problem_id": f"P{n:06d}", "case_id": case, **area,
                "house_code": None if person_only else house,
                "citizen_id": ids[-1] if person_only or p == 1 else None,
                "dimension": dim, "problem_code": code, "description": text,
                "status": status, "previous_status": previous,
                "agency": None if status in ("REPORTED", "ACKNOWLEDGED", "SELF_RESOLVED") else "อบต." + sub.name_th,
                "reported_at": iso(start - timedelta(days=10)),
                "updated_at": iso(start + timedelta(minutes=n // tie))})
    return data


@dataclass
class Request:
    path: str
    query: dict[str, str]
    status: int


@dataclass
class ThaiQmServer:
    data: dict[str, list[dict[str, Any]]]
    token: str = TOKEN
    delay_s: float = 0.0  # every request takes at least this long (a slow source)
    requests: list[Request] = field(default_factory=list)
    _faults: deque = field(default_factory=deque)

    def fail_next(self, n: int = 1, status: int = 500) -> None:
        self._faults.extend([("status", status)] * n)

    def stall_next(self, n: int = 1, seconds: float = 2.0) -> None:
        self._faults.extend([("stall", seconds)] * n)

    def throttle_next(self, n: int = 1, retry_after: int = 1) -> None:
        self._faults.extend([("throttle", retry_after)] * n)

    def page(self, feed: str, query: dict[str, str]) -> dict[str, Any]:
        """The contract's keyset paging over (updated_at, id)."""
        key = ID_FIELD[feed]
        rows = sorted(self.data[feed], key=lambda r: (datetime.fromisoformat(r["updated_at"]), r[key]))
        if "updated_since" in query:
            since, after = datetime.fromisoformat(query["updated_since"]), query.get("after_id")
            rows = [r for r in rows if (datetime.fromisoformat(r["updated_at"]) >= since if after is None
                                        else (datetime.fromisoformat(r["updated_at"]), r[key]) > (since, after))]
        limit = int(query.get("limit", 100))
        items = rows[:limit]
        last = items[-1] if items else None
        return {"items": items, "has_more": len(rows) > limit,
                "next": {"updated_since": last["updated_at"], "after_id": last[key]} if last else None}

    def __enter__(self) -> ThaiQmServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                url = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                request = Request(url.path, query, status=0)  # logged on arrival: a stalled one counts too
                server.requests.append(request)
                status, body, headers = server._answer(url.path, query, self.headers.get("Authorization"))
                request.status = status
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    data = json.dumps(body, ensure_ascii=False).encode()
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out first, as the stall meant it to

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def _answer(self, path: str, query: dict[str, str], auth: str | None) -> tuple[int, Any, dict[str, str]]:
        problem = {"Content-Type": "application/problem+json"}
        if self.delay_s:
            time.sleep(self.delay_s)
        if auth != f"Bearer {self.token}":
            return 401, {"title": "Unauthorized", "status": 401}, problem
        feed = path.removeprefix("/v1/")
        if feed not in ID_FIELD:
            return 404, {"title": "Not Found", "status": 404}, problem
        if self._faults:
            kind, arg = self._faults.popleft()
            if kind == "status":
                return arg, {"title": "Injected failure", "status": arg}, problem
            if kind == "throttle":
                return 429, {"title": "Too Many Requests", "status": 429}, {**problem, "Retry-After": str(arg)}
            time.sleep(arg)  # stall: the client should have given up and asked again
        return 200, self.page(feed, query), {"Content-Type": "application/json"}
