"""The app with a keyboard only, in a real Chromium: no mouse, only Tab, Shift+Tab, Enter, Space and the arrows, and
every element that takes the focus shows it."""
import pytest
from playwright.sync_api import expect

from serving import SCRIPT_DONE, open_page

pytestmark = pytest.mark.slow  # a real server and Chromium

# The focused element, or the box that draws it (a checkbox's hidden input: its label; a select's input: its
# frame), shows the focus: an outline or a box-shadow. Returns a description of the element when it does not.
FOCUS_SHOWN = """() => {
  const focused = document.activeElement;
  if (!focused || focused === document.body) return null;  // between two stops: the page itself
  for (let e = focused, up = 0; e && up < 4; e = e.parentElement, up++) {
    const style = getComputedStyle(e);
    if ((style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0) || style.boxShadow !== 'none')
      return null;
  }
  return focused.outerHTML.slice(0, 160);
}"""
NAME = """() => { const e = document.activeElement;  // a page link's text starts with its icon's name: the last line
  return (e.getAttribute('aria-label') || e.innerText || '').trim().split('\\n').pop().trim(); }"""


# The app's focus ring (router.py's style) is in the page: it arrives with the script's run, after the first paint.
RING_READY = """() => [...document.styleSheets].some(sheet => [...sheet.cssRules].some(
  rule => rule.cssText.includes('stSidebarNavLink') && rule.cssText.includes('focus-visible')))"""


def opened(browser, url: str):
    """The page at `url`, its script run and the app's focus ring in place."""
    page = open_page(browser, url, height=1400)
    page.wait_for_function(RING_READY, timeout=60_000)
    return page


def tab_to(page, name: str, backwards: bool = False, presses: int = 150) -> None:
    """Press Tab (Shift+Tab) until the element named `name` has the focus, checking at every stop that the focus
    shows."""
    for _ in range(presses):
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
        assert (hidden := page.evaluate(FOCUS_SHOWN)) is None, f"the focus does not show on {hidden}"
        if page.evaluate(NAME) == name:
            return
    raise AssertionError(f"{name!r} is not reachable with {'Shift+Tab' if backwards else 'Tab'}")


def set_number(page, name: str, value: int) -> None:
    """Tab to the number field `name`, type `value` over it and press Enter; wait for the rerun."""
    tab_to(page, name)
    page.keyboard.press("ControlOrMeta+A")
    page.keyboard.type(str(value))
    page.keyboard.press("Enter")
    page.wait_for_selector(SCRIPT_DONE, timeout=60_000)


def test_home_to_a_trained_run_with_the_keyboard_only(app_url, browser):
    page = opened(browser, app_url)
    tab_to(page, "CNN trainer")  # the sidebar's navigation
    page.keyboard.press("Enter")
    expect(page.get_by_text("1. Data")).to_be_visible(timeout=60_000)
    page.wait_for_selector(SCRIPT_DONE, timeout=60_000)
    set_number(page, "Epochs", 20)
    set_number(page, "Pause after epoch", 1)  # the run holds after epoch 1, whatever the machine's speed
    tab_to(page, "Train")
    page.keyboard.press("Enter")
    expect(page.get_by_text("Holding after step")).to_be_visible(timeout=120_000)
    tab_to(page, "Resume")
    page.keyboard.press("Space")
    pause = page.get_by_role("button", name="Pause", exact=True)
    expect(pause).to_be_visible(timeout=60_000)
    tab_to(page, "Pause", backwards=True)  # Resume became Pause, redrawn: the focus is back on the page
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Resume", exact=True)).to_be_visible(timeout=60_000)
    tab_to(page, "Stop")
    page.keyboard.press("Enter")
    expect(page.get_by_text("Test accuracy", exact=True)).to_be_visible(timeout=120_000)
    page.close()


def test_classify_another_sample_photo_with_the_keyboard_only(app_url, browser):
    page = opened(browser, f"{app_url}/classify")
    verdict = page.get_by_text("with probability").first
    before = verdict.inner_text()
    tab_to(page, "Sample photo")
    page.keyboard.press("ArrowDown")  # the list opens on the next photo
    page.keyboard.press("Enter")
    expect(verdict).not_to_have_text(before, timeout=60_000)
    page.close()


def test_play_and_pause_the_playground_with_the_keyboard_only(app_url, browser):
    page = opened(browser, f"{app_url}/playground?data=XOR&features=x1x2&net=none&opt=Adam&lr=0.1")
    tab_to(page, "Play")
    page.keyboard.press("Enter")
    epoch = page.locator('[data-testid="stMetric"]').filter(has_text="Epoch").locator('[data-testid="stMetricValue"]')
    expect(epoch).not_to_have_text("0", timeout=30_000)
    tab_to(page, "Pause")  # Play became Pause, a new button: the focus went back to the page
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Play", exact=True)).to_be_visible(timeout=30_000)  # paused
    page.close()
