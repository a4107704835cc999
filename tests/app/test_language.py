"""The language switch: ?lang=zh gives the Chinese Home page with no English message left, the switch keeps the
URL and every control's value."""
from pathlib import Path

from babel.messages.pofile import read_po
from streamlit.testing.v1 import AppTest

from helpers import by_label

REPO = Path(__file__).resolve().parents[2]


def english_messages() -> set[str]:
    with (REPO / "locale" / "zh" / "LC_MESSAGES" / "dlplay.po").open("rb") as file:
        return {m.id for m in read_po(file) if m.id and "{" not in m.id}


def shown_text(at) -> list[str]:
    return [e.value for kind in ("title", "subheader", "markdown", "caption", "info") for e in getattr(at, kind)]


def test_home_in_chinese_has_no_english_message_left():
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120)
    at.query_params["lang"] = "zh"
    at.run()
    assert not at.exception
    text = shown_text(at)
    assert at.title[0].value == "dlplay：在动手中学习深度学习"
    left = [message for message in english_messages() if any(message in shown for shown in text)]
    assert not left, left
    assert any("**设备：**" in t for t in text)


def test_the_switch_keeps_the_url_and_the_controls():
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120).run()
    at.switch_page("app_pages/playground.py").run()
    by_label(at.selectbox, "Data").set_value("XOR").run()
    by_label(at.radio, "Language / 语言").set_value("zh").run()
    assert not at.exception and at.query_params["lang"] == "zh"
    assert by_label(at.selectbox, "Data").value == "XOR"  # nothing the learner set is lost
    by_label(at.radio, "Language / 语言").set_value("en").run()
    assert at.query_params["lang"] == "en" and by_label(at.selectbox, "Data").value == "XOR"
