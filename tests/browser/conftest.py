"""One Streamlit server and one Chromium for the whole test session: every browser test shares them."""
import pytest
from playwright.sync_api import sync_playwright

from serving import launch_chromium, streamlit_server


@pytest.fixture(scope="session")
def app_url():
    """The URL of a real `streamlit run app.py` on this machine."""
    with streamlit_server() as (url, _server):
        yield url


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium through Playwright."""
    with sync_playwright() as p:
        chromium = launch_chromium(p)
        yield chromium
        chromium.close()
