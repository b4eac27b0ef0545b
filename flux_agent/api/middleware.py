"""Two guards in front of every route: the API key and the request size limit.

Both are plain ASGI middleware (not `BaseHTTPMiddleware`), so they never buffer or
break a streamed response, and both answer with the API's error body.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PROTECTED_PREFIX = "/v1/"
"""The key guards the API; health checks, the web page's files and /docs stay public."""


async def send_error(
    send: Send, status: int, kind: str, message: str, headers: dict[str, str] | None = None
) -> None:
    body = json.dumps({"error": {"type": kind, "message": message}}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class APIKeyGuard:
    """With a key set, `/v1/*` needs `Authorization: Bearer <key>` (401 otherwise)."""

    def __init__(self, app: ASGIApp, api_key: str | None) -> None:
        self.app = app
        self.expected = f"Bearer {api_key}".encode() if api_key else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            self.expected is None
            or scope["type"] != "http"
            or not scope["path"].startswith(PROTECTED_PREFIX)
            or scope["method"] == "OPTIONS"
        ):
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"authorization")
        if given is None:
            message = "this server needs an API key: send 'Authorization: Bearer <key>'"
        elif not hmac.compare_digest(given, self.expected):
            message = "the API key is wrong"
        else:
            await self.app(scope, receive, send)
            return
        headers = {"WWW-Authenticate": "Bearer"}
        await send_error(send, 401, "authentication_error", message, headers)


class BodyLimit:
    """Refuse request bodies over `max_bytes` with 413, whether or not they declare a length."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await send_error(send, 413, "request_too_large", self._message())
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message: dict[str, Any] = dict(await receive())
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised while a route reads its body; the app's handler answers 413.
                    raise HTTPException(413, self._message())
            return message

        await self.app(scope, limited, send)

    def _message(self) -> str:
        return f"the request body is larger than this server's limit of {self.max_bytes} bytes"
