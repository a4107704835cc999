"""Browser: `streamlit run app.py` headless on a free port, opened in headless Chromium through Playwright."""
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("DLPLAY_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SCREENSHOTS = Path(os.environ.get("DLPLAY_SCREENSHOT_DIR", REPO / "tests" / "browser" / "screenshots"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url():
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
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
        yield url
    finally:
        server.terminate()
        server.wait(30)


@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).exists(), f"Chromium not found at {CHROMIUM}: apt-get install -y chromium"
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def open_page(browser, url: str, height: int = 1900):
    """Open `url` and wait until the Streamlit script has finished running."""
    page = browser.new_page(viewport={"width": 1300, "height": height})
    page.goto(url)
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=120_000)
    return page


def test_home_page_in_a_real_browser(app_url, browser):
    page = open_page(browser, app_url)
    page.get_by_text("Two training examples of each class").wait_for(timeout=60_000)
    page.locator('[data-testid="stGraphVizChart"] svg').first.wait_for(timeout=60_000)
    assert page.locator('[data-testid="stException"]').count() == 0
    expect(page.locator('[data-testid="stImageContainer"] img')).to_have_count(20)  # the digit preview grid
    assert "CPU" in page.locator('[data-testid="stSidebar"]').inner_text()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "home.png"))
    page.close()
