"""Browser: `streamlit run app.py` headless on a free port, opened in headless Chromium through Playwright."""
import contextlib
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


@contextlib.contextmanager
def streamlit_server():
    """`streamlit run app.py` headless on a free localhost port; yields its URL."""
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
def app_url():
    with streamlit_server() as url:
        yield url


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


def test_a_page_url_opened_first_on_a_fresh_server_goes_through_the_router(browser):
    with streamlit_server() as url:
        page = open_page(browser, f"{url}/trainer", height=900)
        page.get_by_text("1. Data").wait_for(timeout=60_000)
        sidebar = page.locator('[data-testid="stSidebar"]').inner_text()
        assert "Device:" in sidebar and "CNN trainer" in sidebar  # app.py ran: its badge and menu are there
        assert page.locator('[data-testid="stException"]').count() == 0
        page.close()


def test_train_one_epoch_and_see_the_curves(app_url, browser):
    page = open_page(browser, f"{app_url}/trainer", height=3600)
    epochs = page.get_by_label("Epochs")
    epochs.fill("1")
    epochs.press("Enter")
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=60_000)
    page.get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("Test accuracy", exact=True).wait_for(timeout=120_000)
    accuracy = page.locator('[data-testid="stMetricValue"]').first.inner_text()
    assert float(accuracy.rstrip("%")) >= 90.0
    expect(page.locator(".js-plotly-plot")).not_to_have_count(0)
    assert page.locator('[data-testid="stException"]').count() == 0
    page.get_by_text("4. Train").scroll_into_view_if_needed()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "trainer.png"), full_page=True)
    # Click the confusion-matrix cell "true 3, predicted 5": the images below switch to that cell.
    cells = page.locator(".js-plotly-plot:has(.heatmaplayer image)").first.locator(".nsewdrag").first
    box = cells.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 5.5 / 10, box["y"] + box["height"] * 3.5 / 10)
    expect(page.get_by_text("test image(s) of class “3” predicted as “5”")).to_be_visible(timeout=30_000)
    page.close()


def test_upload_a_photo_through_the_file_chooser_and_see_a_prediction(app_url, browser):
    page = open_page(browser, f"{app_url}/classify", height=2400)
    page.get_by_text("my files").click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').last.set_input_files(
        str(REPO / "dlplay" / "assets" / "photos" / "coffee.png"))
    page.get_by_text("with probability").wait_for(timeout=60_000)
    expect(page.get_by_text("What the model sees")).to_be_visible()
    assert page.locator('[data-testid="stException"]').count() == 0
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "classify.png"))
    page.close()


def test_draw_a_digit_on_the_pad_and_see_it_read(app_url, browser):
    page = open_page(browser, f"{app_url}/classify", height=2000)
    page.get_by_text("drawing", exact=True).click()
    canvas = page.locator("canvas[aria-label='drawing pad']")
    canvas.wait_for(timeout=30_000)
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + 140, box["y"] + 40)
    page.mouse.down()
    for step in range(0, 200, 10):  # one long vertical stroke: a "1"
        page.mouse.move(box["x"] + 140, box["y"] + 40 + step)
    page.mouse.up()
    page.get_by_role("button", name="Classify my drawing").click()
    verdict = page.get_by_text("with probability")
    verdict.wait_for(timeout=60_000)
    assert verdict.inner_text().startswith("1 with probability")
    expect(page.get_by_text("inverted: the model learned light ink on a dark background")).to_be_visible()
    page.close()


@pytest.mark.parametrize("path, heading, drawn", [
    ("neuron", "Forward pass, layer by layer", ".katex"),  # LaTeX typeset in the browser
    ("activations", "3. Vanishing and exploding gradients", ".js-plotly-plot"),
    ("optimizers", "1. The race", ".js-plotly-plot"),  # the contour and the paths
])
def test_math_pages_draw_their_content(app_url, browser, path, heading, drawn):
    page = open_page(browser, f"{app_url}/{path}", height=2400)
    page.get_by_text(heading).first.wait_for(timeout=60_000)
    expect(page.locator(drawn).first).to_be_visible()
    assert page.locator('[data-testid="stException"]').count() == 0
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{path}.png"))
    page.close()
