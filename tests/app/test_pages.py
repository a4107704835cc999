"""AppTest: every page renders without an exception; the Home page shows the device and the digits."""
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dlplay.device import pick_device
from helpers import unreadable_cells

REPO = Path(__file__).resolve().parents[2]
PAGES = [f"app_pages/{name}.py"
         for name in ("home", "neuron", "activations", "optimizers", "playground", "convolution", "trainer",
                      "classify", "after_training")]
TIMEOUT = 120  # a cold `import torch` takes longer than AppTest's default 3 s


def test_every_page_file_is_covered_here():
    assert sorted(str(p.relative_to(REPO)) for p in (REPO / "app_pages").glob("*.py")) == sorted(PAGES)


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_without_exception(page):
    at = AppTest.from_file(str(REPO / "router.py"), default_timeout=TIMEOUT).run()
    at.switch_page(page).run()
    assert not at.exception
    assert at.title
    assert not unreadable_cells(at)  # "—" for nothing, never "None"


def test_home_shows_the_path_device_and_digits():
    at = AppTest.from_file(str(REPO / "router.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert at.title[0].value.startswith("dlplay")
    text = " ".join(m.value for m in at.markdown)
    assert "Neuron math" in text and "CNN trainer" in text and "Upload & classify" in text
    assert "4,000 training" in text and "1,000 test" in text
    device = pick_device("auto")  # what this machine has: the badge and the note must say so, on a CPU or a GPU
    assert f"**Device:** {device.name}" in text
    notes = [box.value for box in [*at.info, *at.success]]
    assert any(device.name in note for note in notes)
    captions = [[img.caption for img in column.proto.imgs] for column in at.get("image")]
    assert captions == [[f"label {c}"] * 2 for c in range(10)]  # two digits of every class
    assert at.get("graphviz_chart")  # the training-loop diagram
    assert at.caption[-1].value.startswith("MNIST")


def test_a_bad_limit_in_the_environment_is_one_sentence(monkeypatch):
    from dlplay.limits import limits

    monkeypatch.setenv("DLPLAY_MAX_CSV_ROWS", "lots")
    limits.cache_clear()
    try:
        at = AppTest.from_file(str(REPO / "router.py"), default_timeout=120).run()
        assert not at.exception
        assert [e.value for e in at.error] == ["The server's settings are not usable: DLPLAY_MAX_CSV_ROWS='lots' is "
                                               "not a whole number."]
    finally:
        monkeypatch.delenv("DLPLAY_MAX_CSV_ROWS")
        limits.cache_clear()
