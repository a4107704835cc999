"""How fast a touch answers: a real `streamlit run app.py` and headless Chromium; on every page, in English and 中文,
each slider, select and checkbox is touched from the keyboard a few times (a slider one step right then back, a
select to its next option then back, a checkbox on then off), and each touch is timed in the browser from the key
press to the end of the rerun it starts (the page's script state back to "not running"). Printed: per page and
language, the touches, their median and their worst (with the control); goal ≤ 0.30 s median, none over 0.60 s.

Run: python bench/touch_bench.py [--pages optimizers,neuron] [--langs en] [--per-kind 99] [--verbose]

Measured 2026-12-07 on 2 shared cores under a load average of 13-20 (other test runs: every time ~5-10x a quiet
machine's), the first three sliders and selects of a page, before and after the fragments and caches, back to back:
Optimizers 14.0 s -> 2.0 s median (en), 6.2 s -> 4.5 s (中文); Neuron math 1.18 s -> 0.35 s (en). On a quiet
machine before: Optimizers 0.60 s, Neuron math 0.20 s (single touches to 0.95 s).
"""
import argparse
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests" / "browser")]
from playwright.sync_api import Error as PlaywrightError  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

from serving import SCRIPT_DONE, launch_chromium, streamlit_server  # noqa: E402

PAGES = ("", "neuron", "activations", "optimizers", "playground", "convolution", "trainer", "classify",
         "after_training")
MAIN = '[data-testid="stMain"] '  # the page's own controls, not the sidebar's
KINDS = {  # kind -> a selector of the element that takes the keys
    "slider": MAIN + '[data-testid="stSlider"] input[type="range"]',
    "select": MAIN + '[data-testid="stSelectbox"] input',
    "checkbox": MAIN + '[data-testid="stCheckbox"] input',
}
# In the page: the time of the latest key press, and of the end of the first rerun that starts after it.
WATCH = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  window.__touch = {pressed: null, running: false, done: null};
  document.addEventListener('keydown', () => {
    window.__touch = {pressed: performance.now(), running: false, done: null};
  }, true);
  new MutationObserver(() => {
    const t = window.__touch, state = app.getAttribute('data-test-script-state');
    if (t.pressed === null || t.done !== null) return;
    if (state === 'running') t.running = true;
    else if (state === 'notRunning' && t.running) t.done = performance.now();
  }).observe(app, {attributes: true, attributeFilter: ['data-test-script-state']});
}"""
VERBOSE = "--verbose" in sys.argv
STARTED = "() => window.__touch.running || window.__touch.done !== null"
FINISHED = "() => window.__touch.done !== null"


def press(page, target, keys: list[str]) -> float | None:
    """Press `keys` on `target`; the seconds from the last key to the end of the rerun it started (None: none did)."""
    target.focus()
    for key in keys:
        page.keyboard.press(key)
    try:
        page.wait_for_function(STARTED, timeout=1500)
    except PlaywrightError:
        return None  # e.g. a slider already at its end
    page.wait_for_function(FINISHED, timeout=60_000)
    page.wait_for_selector(SCRIPT_DONE, timeout=60_000)
    return page.evaluate("() => (window.__touch.done - window.__touch.pressed) / 1000")


def label_of(target) -> str:
    """A control's label, for the report."""
    return target.evaluate("""e => (e.closest('[data-testid="stSlider"], [data-testid="stSelectbox"], '
        + '[data-testid="stCheckbox"]')?.innerText || '').split('\\n')[0].slice(0, 40)""")


def touches(kind: str) -> list[list[str]]:
    """The key sequences of one control's touches: each moves it and the next moves it back."""
    return {"slider": [["ArrowRight"], ["ArrowLeft"]],
            "select": [["ArrowDown", "Enter"], ["ArrowDown", "ArrowUp", "ArrowUp", "Enter"]],  # the list opens on
            # the option after the chosen one
            "checkbox": [["Space"], ["Space"]]}[kind]


def touch_page(browser, url: str, per_kind: int) -> list[tuple[float, str]]:
    """Every (up to per_kind of each kind) control of the page at `url`, touched: [(seconds, control)]."""
    page = browser.new_page(viewport={"width": 1400, "height": 1600})
    page.goto(url)
    page.wait_for_selector(SCRIPT_DONE, timeout=120_000)
    page.evaluate(WATCH)
    times = []
    for kind, selector in KINDS.items():
        for index in range(min(page.locator(selector).count(), per_kind)):
            for keys in touches(kind):
                controls = page.locator(selector)
                if index >= controls.count():
                    break  # a touch redrew the page with fewer controls
                target = controls.nth(index)
                if not target.is_enabled():
                    break
                seconds = press(page, target, keys)
                if VERBOSE:
                    print(f"  {kind} {index} {label_of(target)!r} {keys}: {seconds}", flush=True)
                if seconds is not None:
                    times.append((seconds, f"{kind} {label_of(target)}"))
                page.keyboard.press("Escape")  # close a select's list if it is still open
    page.close()
    return times


def main() -> None:
    """Touch every page's controls in each language; print per page the median and the worst time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", default=",".join(name or "home" for name in PAGES))
    parser.add_argument("--langs", default="en,zh")
    parser.add_argument("--verbose", action="store_true", help="print every touch")
    parser.add_argument("--per-kind", type=int, default=99, help="controls of each kind to touch on a page")
    args = parser.parse_args()
    pages = [("" if name == "home" else name) for name in args.pages.split(",")]
    everything = []
    with streamlit_server() as (url, _server), sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        open_page = browser.new_page()  # the server's first page run (imports, start-up) is not a touch
        open_page.goto(url)
        open_page.wait_for_selector(SCRIPT_DONE, timeout=120_000)
        open_page.close()
        print(f"{'page':16}{'lang':6}{'touches':>8}{'median s':>10}{'worst s':>9}  worst control", flush=True)
        for lang in args.langs.split(","):
            for name in pages:
                times = touch_page(browser, f"{url}/{name}?lang={lang}", args.per_kind)
                everything += [t for t, _ in times]
                if not times:
                    print(f"{name or 'home':16}{lang:6}{0:>8}", flush=True)
                    continue
                worst = max(times)
                print(f"{name or 'home':16}{lang:6}{len(times):>8}{statistics.median(t for t, _ in times):>10.3f}"
                      f"{worst[0]:>9.3f}  {worst[1]}", flush=True)
        browser.close()
    if everything:
        print(f"\nall: {len(everything)} touches, median {statistics.median(everything):.3f} s, worst "
              f"{max(everything):.3f} s; over 0.60 s: {sum(t > 0.6 for t in everything)}")


if __name__ == "__main__":
    main()
