"""A real `streamlit run app.py` server and headless Chromium through Playwright, for browser tests and benches."""
import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("DLPLAY_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCRIPT_DONE = '[data-testid="stApp"][data-test-script-state="notRunning"]'


def free_port() -> int:
    """A TCP port that is free on localhost now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(env: dict | None = None, options: tuple[str, ...] = ()):
    """`streamlit run app.py` headless on a free localhost port; yields (url, the server's Popen)."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false", *options],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("streamlit did not start:\n" + server.stdout.read().decode()) from None
                time.sleep(0.5)
        yield url, server
    finally:
        server.terminate()
        server.wait(30)


def launch_chromium(playwright):
    """Debian's Chromium, headless, with the flags this offline machine needs."""
    assert Path(CHROMIUM).exists(), f"Chromium not found at {CHROMIUM}: apt-get install -y chromium"
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def open_page(browser, url: str, height: int = 1900):
    """Open `url` in a new page and wait until the Streamlit script has finished running."""
    page = browser.new_page(viewport={"width": 1300, "height": height})
    page.goto(url)
    page.wait_for_selector(SCRIPT_DONE, timeout=120_000)
    return page


def press_train(page, epochs: int, pause_after: int = 0) -> None:
    """On the trainer page: set the number of epochs (and "Pause after epoch"), wait for each rerun, press Train."""
    for label, value in (("Epochs", epochs), ("Pause after epoch", pause_after)):
        field = page.get_by_role("spinbutton", name=label, exact=True)
        field.fill(str(value))
        field.press("Enter")
        page.wait_for_selector(SCRIPT_DONE, timeout=60_000)
    page.get_by_role("button", name="Train", exact=True).click()
