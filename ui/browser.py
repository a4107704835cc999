"""Who is this browser: a secret cookie that the server gives each browser on its first page load, and that a link
never carries. A learner's runs belong to it: every tab of the same browser, a refresh and a server restart find them
again with full control; anyone else who opens the link gets a read-only view.

The cookie is HttpOnly (the page's scripts cannot read it, so neither can a script injected into it) and set by
the server itself, through Starlette middleware that `app.py` gives Streamlit: Streamlit 1.67 lets a page read cookies
(`st.context.cookies`) but not set them. A client that sends no cookie (one that drops it, or AppTest) is a browser
of its own for each session, and its quotas count by its address instead (which the middleware passes on in a
header: Streamlit's `st.context.ip_address` is None for a client on the server's own machine).
"""
import hashlib
import re
import secrets
from dataclasses import dataclass

import streamlit as st

COOKIE = "dlplay_browser"
ADDRESS_HEADER = b"x-dlplay-address"  # the client's address as the server saw it (Streamlit hides loopback ones)
SECRET = re.compile(r"[0-9a-f]{32}")
COOKIE_DAYS = 365


class BrowserCookie:
    """ASGI middleware: give every HTTP response to a browser without a valid `dlplay_browser` cookie a new one, and
    tell the page the address its websocket came from (in a header of ours, replacing any the client sent)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket":
            address = (scope.get("client") or ("",))[0].encode("latin-1")
            headers = [(k, v) for k, v in scope["headers"] if k.lower() != ADDRESS_HEADER]
            scope = {**scope, "headers": [*headers, (ADDRESS_HEADER, address)]}
        if scope["type"] != "http" or SECRET.fullmatch(cookie_in(scope["headers"]) or ""):
            await self.app(scope, receive, send)
            return
        header = set_cookie_header(secrets.token_hex(16), secure=scope.get("scheme") == "https")

        async def send_with_cookie(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", header)]}
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def cookie_in(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The `dlplay_browser` cookie's value in a request's raw headers, if it sent one."""
    for name, value in headers:
        if name.lower() != b"cookie":
            continue
        for part in value.decode("latin-1").split(";"):
            key, _, found = part.strip().partition("=")
            if key == COOKIE:
                return found
    return None


def set_cookie_header(secret: str, secure: bool) -> bytes:
    """The Set-Cookie header that gives a browser its secret: a year long, for this site only, unreadable to
    scripts, sent along when the learner follows a link to the app (SameSite=Lax)."""
    parts = [f"{COOKIE}={secret}", "Path=/", f"Max-Age={COOKIE_DAYS * 24 * 3600}", "HttpOnly", "SameSite=Lax"]
    return "; ".join([*parts, *(["Secure"] if secure else [])]).encode("latin-1")


@dataclass(frozen=True)
class Visitor:
    """Who is asking: `owner` names the browser (a hash of its secret: the run store never holds a secret), and
    `quota_key` is what its quotas count against (the browser, or its address if it sent no cookie)."""

    owner: str
    quota_key: str

    def owns(self, owner: str | None) -> bool:
        """Whether a run with this owner is this visitor's."""
        return owner is not None and owner == self.owner


def owner_of(secret: str) -> str:
    """The owner id that a browser's secret stands for."""
    return hashlib.sha256(secret.encode()).hexdigest()[:32]


def visitor(session_secret: str) -> Visitor:
    """This browser, from its cookie; without one, the session's own secret (`session_secret`, which tests set to
    act as one browser in two sessions), counted by the client's address."""
    cookie = st.context.cookies.get(COOKIE)  # (AppTest's context holds no cookie and no header)
    address = st.context.headers.get(ADDRESS_HEADER.decode())
    if isinstance(cookie, str) and SECRET.fullmatch(cookie):
        owner = owner_of(cookie)
        return Visitor(owner, owner)
    owner = owner_of(session_secret)
    return Visitor(owner, f"address {address}" if isinstance(address, str) and address else owner)
