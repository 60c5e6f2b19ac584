"""What keeps a console on loopback safe from the other pages a browser has open.

Any web page can make the operator's browser send requests to 127.0.0.1: a form or a `no-cors`
fetch reaches the console (the page cannot read the answer, but a write is done), and a
DNS-rebinding page (its own name resolved to 127.0.0.1) can even read it. Three checks, each an
ASGI middleware, outermost first:

- `Host` must name what the console is bound to (Starlette's `TrustedHostMiddleware`), so a
  rebinding page's name is refused.
- `TokenGate`: with a token, every request carries it (cookie, `Authorization: Bearer` or
  `?token=`); a page opened with `?token=` gets the cookie and is redirected to its address
  without it, and a browser without the token gets an HTML page saying what to do.
- `SameOriginWrites`: a request that changes state must come from the console's own page
  (`Origin` / `Sec-Fetch-Site`) with a JSON body, which no cross-origin form or `no-cors`
  fetch can send without a CORS preflight the console never grants.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from urllib.parse import urlencode, urlsplit

from starlette.datastructures import Headers, QueryParams
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

COOKIE = "pnp_console_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC = frozenset({"/favicon.ico"})  # the icon tells nothing; the 401 page shows it too


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(bound: str) -> list[str]:
    """The `Host` names a request may carry: the bound name, and on loopback its usual
    aliases. A wildcard bind (0.0.0.0, ::) answers on every address: any name, and the token
    (required there) is what guards it."""
    if bound in ("0.0.0.0", "::", ""):
        return ["*"]
    literal = f"[{bound}]" if ":" in bound else bound
    names = [literal]
    if is_loopback(bound):
        names += ["localhost", "127.0.0.1", "[::1]"]
    return sorted(set(names))


def guard_middleware(bound_host: str, token: str | None) -> list[Middleware]:
    return [
        Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts(bound_host)),
        Middleware(TokenGate, token=token),
        Middleware(SameOriginWrites),
    ]


class TokenGate:
    """Constant-time token check on every request; see the module docstring."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.token or scope["path"] in PUBLIC:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        query = QueryParams(scope.get("query_string", b""))
        given = (
            query.get("token")
            or headers.get("authorization", "").removeprefix("Bearer ")
            or _cookie(headers, COOKIE)
        )
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            log.warning(
                "console refused %s %s: missing or wrong token", _client(scope), scope["path"]
            )
            await _refusal(headers)(scope, receive, send)
            return
        if "token" in query and scope["method"] == "GET" and _navigation(headers):
            # The link an operator opens: keep the token in a cookie, not in the address bar
            # (history, screenshots, the Referer of the next page).
            kept = urlencode([(k, v) for k, v in query.multi_items() if k != "token"])
            response = RedirectResponse(scope["path"] + (f"?{kept}" if kept else ""), 303)
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="strict")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


class SameOriginWrites:
    """A state-changing request comes from the console's own page with a JSON body, or not
    at all (a cross-origin form or `no-cors` fetch writes nothing)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        why = cross_origin(headers)
        if why is None and headers.get("content-type", "").split(";")[0].strip() != (
            "application/json"
        ):
            why = f"content type {headers.get('content-type')!r} is not application/json"
        if why is not None:
            log.warning(
                "console refused %s %s %s: %s", _client(scope), scope["method"], scope["path"], why
            )
            body = {"error": "forbidden", "message": f"refused: {why}"}
            await JSONResponse(body, status_code=403)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def cross_origin(headers: Headers) -> str | None:
    """Why a request is not from the console's own page, or None. Browsers send `Origin` on
    every POST and `Sec-Fetch-Site` on every request; a program without a browser sends
    neither (and cannot be made to by a web page)."""
    site = headers.get("sec-fetch-site")
    if site is not None and site != "same-origin":
        return f"Sec-Fetch-Site {site!r}"
    origin = headers.get("origin")
    if origin is not None:
        parts = urlsplit(origin)
        if parts.netloc != headers.get("host") or parts.scheme not in ("http", "https"):
            return f"Origin {origin!r} is not this console ({headers.get('host')})"
    return None


def _cookie(headers: Headers, name: str) -> str:
    for part in headers.get("cookie", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return ""


def _navigation(headers: Headers) -> bool:
    """A browser opening a page (not a script or an image asking)."""
    mode = headers.get("sec-fetch-mode")
    if mode is not None:
        return mode == "navigate"
    return "text/html" in headers.get("accept", "")


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return f"{client[0]}:{client[1]}" if client else "-"


def _refusal(headers: Headers) -> Response:
    if _navigation(headers):
        return HTMLResponse(_UNAUTHORIZED, status_code=401)
    return JSONResponse({"error": "unauthorized", "message": "token required"}, status_code=401)


_UNAUTHORIZED = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pnp-vision console: token needed</title>
<link rel="icon" href="/favicon.ico">
<style>body{font:15px system-ui,sans-serif;margin:3em auto;max-width:36em;color:#222}
input{font:inherit;padding:.3em;width:20em}button{font:inherit;padding:.3em .8em}</style>
</head><body>
<h1>This console needs its token</h1>
<p>It was started with a token (<code>--token</code> or the <code>console_token</code> setting,
<code>PNP_VISION_CONSOLE_TOKEN</code>). Open the console's address with
<code>?token=...</code> once, or enter the token here: a cookie keeps it for this browser.</p>
<form method="get" action="/"><input type="password" name="token" autocomplete="off"
 placeholder="token" autofocus> <button type="submit">Open the console</button></form>
</body></html>
"""
