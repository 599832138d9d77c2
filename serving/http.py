"""The HTTP edge of the service: one ASGI middleware in front of BentoML's app.

BentoML answers the endpoints; this layer makes what reaches them, and what comes back, what
docs/serving.md says:

- a body larger than `serving.max_body_bytes` (default 1 MiB) is a 413, refused while it is
  read (by Content-Length when given, else by counting), never parsed;
- the endpoints take JSON: a form or multipart body (BentoML would hand it to its multipart
  parser, which fails with a 500 on a JSON body) is a 415 saying to send
  `Content-Type: application/json`, and another method than POST a 405 saying to POST;
- an error body is always one JSON object `{"error": ...}` (BentoML wraps some 4xx in a list);
- `GET /readyz` says what is not ready (503 with the reason and the fix) and, when ready, what
  is served (BentoML's own answer is a bare "__is_ready__() returns False");
- `GET /docs.json` names the project and its version, the served model, and describes the
  error bodies as they are sent.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DEFAULT_MAX_BODY_BYTES = 1 << 20
MAX_BODY_ENV = "GFM_MAX_BODY_BYTES"  # set by `gfm serve` from serving.max_body_bytes
API_PATHS = ("/recommend", "/similar", "/score")
# Media types BentoML does not parse as JSON (multipart and forms go to its form parser).
NOT_JSON = ("multipart/", "application/x-www-form-urlencoded", "application/vnd.bentoml+pickle")
RETRY_AFTER_S = 5


def max_body_bytes() -> int:
    value = os.environ.get(MAX_BODY_ENV, "").strip()
    return int(value) if value else DEFAULT_MAX_BODY_BYTES


async def _respond(send: Send, status: int, body: dict[str, Any],
                   headers: dict[str, str] | None = None) -> None:
    data = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or []:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


class _Captured:
    """The response of the inner app, held back so that it can be rewritten."""

    def __init__(self) -> None:
        self.start: Message | None = None
        self.body = b""

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")

    async def replay(self, send: Send, body: bytes | None = None) -> None:
        assert self.start is not None
        if body is None:
            body = self.body
        headers = [(k, v) for k, v in self.start.get("headers", [])
                   if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**self.start, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class EdgeMiddleware:
    """See the module docstring. `status` returns (ready, details) of this worker's service
    (serving.service.readiness); `openapi` rewrites the OpenAPI document."""

    def __init__(self, app: Callable, status: Callable[[], Awaitable[tuple[bool, dict]]],
                 openapi: Callable[[dict], dict], max_body: int | None = None) -> None:
        self.app = app
        self.status = status
        self.openapi = openapi
        self.max_body = max_body if max_body is not None else max_body_bytes()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope.get("method", "GET"), scope.get("path", "")
        if method == "GET" and path == "/readyz":
            await self._readyz(scope, receive, send)
        elif method == "GET" and path == "/docs.json":
            await self._docs(scope, receive, send)
        elif method == "POST" and path in API_PATHS:
            await self._api(scope, receive, send)
        elif path in API_PATHS:
            await _respond(send, 405, {"error": f"{path} answers POST with a JSON body, not "
                                                f"{method}: see /docs.json"}, {"Allow": "POST"})
        else:
            await self.app(scope, receive, send)

    async def _readyz(self, scope: Scope, receive: Receive, send: Send) -> None:
        ready, details = await self.status()
        if not ready:
            await _respond(send, 503, {"ready": False, **details},
                           {"Retry-After": str(RETRY_AFTER_S)})
            return
        captured = _Captured()
        await self.app(scope, receive, captured.send)  # BentoML's own checks
        assert captured.start is not None
        if captured.start["status"] != 200:
            await captured.replay(send)
            return
        await _respond(send, 200, {"ready": True, **details})

    async def _docs(self, scope: Scope, receive: Receive, send: Send) -> None:
        captured = _Captured()
        await self.app(scope, receive, captured.send)
        assert captured.start is not None
        if captured.start["status"] != 200:
            await captured.replay(send)
            return
        spec = self.openapi(json.loads(captured.body))
        await captured.replay(send, json.dumps(spec).encode())

    async def _api(self, scope: Scope, receive: Receive, send: Send) -> None:
        media_type = (_header(scope, b"content-type") or "application/json").split(";")[0]
        media_type = media_type.strip().lower()
        if media_type.startswith(NOT_JSON):
            await _respond(send, 415, {
                "error": f"{scope['path']} takes a JSON object, not {media_type}: send the body "
                         "as JSON with the header Content-Type: application/json (curl: -H "
                         "'content-type: application/json' -d '{...}')"})
            return
        length = _header(scope, b"content-length")
        if length is not None and length.strip().isdigit() and int(length) > self.max_body:
            await self._too_large(send, int(length))
            return
        body, more = b"", True
        while more:  # read (at most max_body bytes), then hand the body on
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_body:
                await self._too_large(send, None)
                return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # the disconnect, when it comes

        captured = _Captured()
        await self.app(scope, replay, captured.send)
        assert captured.start is not None
        if captured.start["status"] < 400:
            await captured.replay(send)
            return
        await captured.replay(send, _one_object(captured.body))

    async def _too_large(self, send: Send, length: int | None) -> None:
        size = f"{length:,} bytes" if length is not None else "more"
        await _respond(send, 413, {
            "error": f"the body is {size}; the limit is {self.max_body:,} bytes "
                     "(serving.max_body_bytes): send fewer ids (item_ids: at most 1000, "
                     "recent_item_ids: at most 500)"})


def _one_object(body: bytes) -> bytes:
    """BentoML sends some errors as a one-element list ([{"error": ...}]): unwrap it."""
    try:
        data = json.loads(body)
    except ValueError:
        return json.dumps({"error": body.decode("utf-8", "replace").strip()
                           or "the request failed"}).encode()
    if isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict):
        return json.dumps(data[0]).encode()
    return body
