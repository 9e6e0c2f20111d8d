"""ASGI middleware of the control plane, one class each (Starlette's shape).

``api.postcall.service.EgressPolicyMiddleware`` stays with the post-call feature it
serves; ``api.app`` adds the ones here.
"""

from __future__ import annotations

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    """Refuses request bodies over ``limit`` bytes with 413, before reading them whole.

    A declared Content-Length over the limit is refused at once; a chunked body is
    counted as it arrives and refused as soon as it passes the limit.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse(
            {"detail": f"request body larger than {self.limit} bytes"}, status_code=413
        )
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass


# Same-origin only: the pages load their scripts and styles from this server and talk
# to its API; inline styles are allowed (test-call page, the widget's shadow style),
# inline scripts are not. frame-ancestors stops another site framing a page (clickjacking).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; media-src 'self' blob: mediastream:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
FRAME_ANCESTORS = "frame-ancestors 'none'"


class SecurityHeaders:
    """Adds Content-Security-Policy (with frame-ancestors), X-Content-Type-Options and
    Referrer-Policy to every HTML response. A page that sets its own policy keeps it,
    with frame-ancestors added when it lacks one."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = secure_headers(list(message.get("headers") or []))
            await send(message)

        await self.app(scope, receive, send_with_headers)


def secure_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    names = {k.lower(): v for k, v in headers}
    if not names.get(b"content-type", b"").lower().startswith(b"text/html"):
        return headers
    out = [(k, v) for k, v in headers if k.lower() != b"content-security-policy"]
    policy = names.get(b"content-security-policy")
    if policy is None:
        policy = CSP.encode()
    elif b"frame-ancestors" not in policy:
        policy = policy.rstrip(b"; ") + b"; " + FRAME_ANCESTORS.encode()
    out.append((b"content-security-policy", policy))
    if b"x-content-type-options" not in names:
        out.append((b"x-content-type-options", b"nosniff"))
    if b"referrer-policy" not in names:
        out.append((b"referrer-policy", b"no-referrer"))
    return out
