"""axe-core on every page in headless Chromium, in English and 中文, as it opens and after its main action (a trained
run, a played playground, an exported model: tests/browser/page_actions.py): each finding by page, impact and rule,
then the totals. The test suite scans the pages as they open in 中文 and after their action in English
(tests/browser/test_accessibility.py); this does both in both languages.

Run: python bench/axe_scan.py
"""
import collections
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests" / "browser")]
from axe_playwright_python.sync_playwright import Axe  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from page_actions import ACTIONS  # noqa: E402
from serving import SCRIPT_DONE, launch_chromium, streamlit_server  # noqa: E402

PAGES = ("", "neuron", "activations", "optimizers", "playground", "convolution", "trainer", "classify",
         "after_training")


def main() -> None:
    """Scan each page in each language; print the findings and their totals."""
    total = collections.Counter()
    with streamlit_server() as (url, _server), sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        for lang in ("en", "zh"):
            for name, action in [(name, None) for name in PAGES] + list(ACTIONS.items()):
                page = browser.new_context(viewport={"width": 1400, "height": 1600}).new_page()
                page.goto(f"{url}/{name}?lang={lang}")
                page.wait_for_selector(SCRIPT_DONE, timeout=120_000)
                if action is not None:
                    action(page)
                page.wait_for_function("() => [...document.images].every(image => image.complete)", timeout=60_000)
                shown = (name or "home") + (" (after)" if action else "")
                for found in Axe().run(page).response["violations"]:
                    total[(found["impact"], found["id"])] += len(found["nodes"])
                    print(f"{lang} {shown:22} {found['impact']:9} {found['id']:30} {len(found['nodes']):3}  "
                          f"{found['nodes'][0]['html'][:80]}", flush=True)
                page.context.close()
    print()
    for (impact, rule), count in sorted(total.items()):
        print(f"{impact:9} {rule:35} {count}")


if __name__ == "__main__":
    main()
