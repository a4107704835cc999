"""The middleware that gives each browser its secret: a real ASGI app behind it, driven as a server would."""
import asyncio
import re
from concurrent.futures import ThreadPoolExecutor

from ui.browser import COOKIE, BrowserCookie, Visitor, cookie_in, owner_of


async def page(scope, receive, send):
    """An ASGI app that answers every request with a page (and every websocket by accepting it)."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.accept"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]})
    await send({"type": "http.response.body", "body": b"<html></html>"})


def serve(coroutine) -> None:
    """Run one ASGI exchange to its end on a thread of its own: the session's browser tests keep an event loop
    running on the main thread (Playwright's sync API), where `asyncio.run` refuses to start."""
    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, coroutine).result()


def request(cookie: str | None = None, kind: str = "http", scheme: str = "http") -> list[dict]:
    """What the browser receives for one request through the middleware."""
    headers = [(b"host", b"localhost")] + ([(b"cookie", cookie.encode())] if cookie is not None else [])
    scope = {"type": kind, "scheme": scheme, "path": "/", "headers": headers}
    sent = []

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        sent.append(message)

    serve(BrowserCookie(page)(scope, receive, send))
    return sent


def set_cookies(sent: list[dict]) -> list[str]:
    return [value.decode() for message in sent if message["type"] == "http.response.start"
            for name, value in message["headers"] if name == b"set-cookie"]


def test_a_new_browser_gets_a_secret_that_scripts_cannot_read():
    (header,) = set_cookies(request())
    assert re.fullmatch(rf"{COOKIE}=[0-9a-f]{{32}}; Path=/; Max-Age=31536000; HttpOnly; SameSite=Lax", header)
    assert set_cookies(request()) != [header]  # each browser its own
    assert set_cookies(request(scheme="https"))[0].endswith("; Secure")


def test_a_browser_keeps_its_secret_and_a_forged_one_is_replaced():
    secret = "0123456789abcdef0123456789abcdef"
    assert set_cookies(request(f"theme=dark; {COOKIE}={secret}")) == []
    assert cookie_in([(b"cookie", f"a=1; {COOKIE}={secret}".encode())]) == secret
    for forged in ("../etc", "0" * 31, "G" * 32, ""):
        assert set_cookies(request(f"{COOKIE}={forged}")), forged
    assert request(kind="websocket") == [{"type": "websocket.accept"}]  # websockets pass untouched


def test_the_owner_id_is_not_the_secret_and_a_visitor_owns_only_its_own_runs():
    secret = "0123456789abcdef0123456789abcdef"
    owner = owner_of(secret)
    assert owner != secret and owner == owner_of(secret) and owner != owner_of(secret[::-1])
    me = Visitor(owner, owner)
    assert me.owns(owner) and not me.owns(owner_of("f" * 32)) and not me.owns(None)


def test_a_websocket_carries_the_address_the_server_saw_and_never_one_the_client_claims():
    seen = {}

    async def app(scope, receive, send):
        seen.update(scope)

    scope = {"type": "websocket", "scheme": "ws", "path": "/_stcore/stream", "client": ("10.0.0.7", 5555),
             "headers": [(b"x-dlplay-address", b"1.2.3.4"), (b"cookie", b"a=1")]}
    serve(BrowserCookie(app)(scope, None, None))
    assert [v for k, v in seen["headers"] if k == b"x-dlplay-address"] == [b"10.0.0.7"]
    assert (b"cookie", b"a=1") in seen["headers"]
