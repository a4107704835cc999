"""The main action of a page, done in a real browser in either language (controls are found by their keys, not
their words), so that a page can be checked once its result is drawn, not only as it opens."""
import re

from serving import SCRIPT_DONE

LAB_SECONDS = 300  # a lab or a run on a loaded 2-core machine


def control(page, key: str, element: str = "button"):
    """The `element` inside the widget whose key is `key` (Streamlit gives its container the class st-key-<key>,
    with each character other than a letter, digit, _ or - made a -)."""
    return page.locator(f'.st-key-{re.sub(r"[^a-zA-Z0-9_-]", "-", key)} {element}').first


def settled(page, timeout: float = 120) -> None:
    """Wait until the page's script has finished running."""
    page.wait_for_selector(SCRIPT_DONE, timeout=timeout * 1000)


def train_one_epoch(page) -> None:
    """The trainer: one epoch of the default network, until its results are on the page (Train is enabled again)."""
    epochs = control(page, "trainer.epochs", "input")
    epochs.fill("1")
    epochs.press("Enter")
    settled(page)
    control(page, "trainer.train").click()
    page.wait_for_url("**run=*", timeout=LAB_SECONDS * 1000)
    control(page, "trainer.train").and_(page.locator(":enabled")).wait_for(timeout=LAB_SECONDS * 1000)
    settled(page)


def step_three_epochs(page) -> None:
    """The playground: three presses of Step."""
    for _ in range(3):
        control(page, "playground.step").click()
        settled(page)


def export_and_measure(page) -> None:
    """After training: export the model to ONNX and measure it, until its files are offered for download."""
    control(page, "after_training.export").click()
    page.locator('[data-testid="stDownloadButton"]').first.wait_for(timeout=LAB_SECONDS * 1000)
    settled(page)


# Upload & classify opens on a sample photo already classified: its result is scanned as the page opens.
ACTIONS = {"trainer": train_one_epoch, "playground": step_three_epochs, "after_training": export_and_measure}
