"""axe-core, the engine behind Lighthouse's accessibility audit, on the pages in a real Chromium, in English and
中文: no critical or serious violation that the app can fix."""
import pytest
from axe_playwright_python.sync_playwright import Axe

from serving import SCRIPT_DONE

pytestmark = pytest.mark.slow  # a real server and Chromium

# The pages that pass today; the Network playground and Neuron math are the next to be made clean (issue 28).
PAGES = ("", "activations", "optimizers", "convolution", "trainer", "classify", "after_training")
BLOCKING = ("critical", "serious")


def violations(page) -> list[str]:
    """axe-core's critical and serious findings on the page as it is, one line each: rule, count, first element."""
    found = Axe().run(page).response["violations"]
    return [f"{v['id']} ×{len(v['nodes'])}: {v['nodes'][0]['html'][:120]}" for v in found if v["impact"] in BLOCKING]


@pytest.mark.parametrize("lang", ["zh"])  # 中文 in CI, for its time (the longer labels); both in bench/axe_scan.py
def test_every_page_passes_axe_core_when_it_opens(app_url, browser, lang):
    context = browser.new_context(viewport={"width": 1400, "height": 1600})
    found = {}
    for name in PAGES:
        page = context.new_page()
        page.goto(f"{app_url}/{name}?lang={lang}")
        page.wait_for_selector(SCRIPT_DONE, timeout=120_000)
        page.wait_for_function("() => [...document.images].every(image => image.complete)", timeout=60_000)
        if problems := violations(page):
            found[name or "home"] = problems
        page.close()
    context.close()
    assert not found, found
