"""axe-core on every page in headless Chromium, in English and 中文: each finding by page, impact and rule, then
the totals. The test suite runs the 中文 pages (tests/browser/test_accessibility.py); this runs both.

Run: python bench/axe_scan.py
"""
import collections
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests" / "browser")]
from axe_playwright_python.sync_playwright import Axe  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from serving import SCRIPT_DONE, launch_chromium, streamlit_server  # noqa: E402

PAGES = ("", "neuron", "activations", "optimizers", "playground", "convolution", "trainer", "classify",
         "after_training")


def main() -> None:
    """Scan each page in each language; print the findings and their totals."""
    total = collections.Counter()
    with streamlit_server() as (url, _server), sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        for lang in ("en", "zh"):
            for name in PAGES:
                page = browser.new_context(viewport={"width": 1400, "height": 1600}).new_page()
                page.goto(f"{url}/{name}?lang={lang}")
                page.wait_for_selector(SCRIPT_DONE, timeout=120_000)
                page.wait_for_function("() => [...document.images].every(image => image.complete)", timeout=60_000)
                for found in Axe().run(page).response["violations"]:
                    total[(found["impact"], found["id"])] += len(found["nodes"])
                    print(f"{lang} {name or 'home':15} {found['impact']:9} {found['id']:30} {len(found['nodes']):3}  "
                          f"{found['nodes'][0]['html'][:80]}", flush=True)
                page.context.close()
    print()
    for (impact, rule), count in sorted(total.items()):
        print(f"{impact:9} {rule:35} {count}")


if __name__ == "__main__":
    main()
