"""A bound on request bodies, enforced before anything parses them.

FastAPI reads a JSON body whole and parses it before any check runs, so without a bound one
request can make the API hold and parse any amount of data. A declared Content-Length over the
limit is refused without reading; a chunked body is read only up to the limit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    """ASGI middleware: bodies over `limit` bytes get the response `refuse` makes (a 413)."""

    def __init__(self, app: ASGIApp, limit: int, refuse: Callable[[Request], Awaitable[Response]]) -> None:
        self.app, self.limit, self.refuse = app, limit, refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Request(scope).headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            await (await self.refuse(Request(scope)))(scope, receive, send)
            return
        messages: list[Message] = []  # as received, handed on unchanged once the body is known to fit
        size = 0
        while not messages or (messages[-1]["type"] == "http.request" and messages[-1].get("more_body", False)):
            messages.append(await receive())
            size += len(messages[-1].get("body", b""))
            if size > self.limit:
                await (await self.refuse(Request(scope)))(scope, receive, send)
                return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)
