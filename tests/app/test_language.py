"""The language switch: under ?lang=zh every page renders in Chinese with no English message from the catalog left on
it (text, widgets, tables, charts, diagrams); the switch keeps the URL and every control's value; every widget has a
key, so that its value outlives the change of its label."""
import json
import re
from functools import cache
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from google.protobuf.message import Message
from streamlit.testing.v1 import AppTest

from helpers import by_label, labs_ended, run_to_the_end, unreadable_cells

REPO = Path(__file__).resolve().parents[2]
PAGES = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "app_pages").glob("*.py"))
CJK = re.compile(r"[\u4e00-\u9fff]")
WIDGETS = ("button", "checkbox", "color_picker", "date_input", "multiselect", "number_input", "radio", "select_slider",
           "selectbox", "slider", "text_area", "text_input", "time_input", "toggle")


def english_phrases() -> set[str]:
    """The catalog's English messages of two words or more whose Chinese differs, without placeholders."""
    with (REPO / "locale" / "zh" / "LC_MESSAGES" / "dlplay.po").open("rb") as file:
        return {m.id for m in read_po(file)
                if m.id and m.string != m.id and "{" not in m.id and len(m.id.split()) >= 2}


def proto_strings(message: Message) -> list[str]:
    """Every string inside a protobuf message (labels, bodies, options, help, chart and diagram specs)."""
    found = []
    for _field, value in message.ListFields():
        values = [value] if isinstance(value, (str, bytes, int, float, Message)) else value  # repeated: a list
        for item in values:
            if isinstance(item, Message):
                found += proto_strings(item)
            elif isinstance(item, str):
                found.append(item)
    return found


def shown_strings(node) -> list[str]:
    """Every string the page shows, from the element tree down (code stays as it is, in English)."""
    if getattr(node, "type", None) == "code":
        return []
    found = proto_strings(node.proto) if getattr(node, "proto", None) is not None else []
    for child in getattr(node, "children", {}).values():
        found += shown_strings(child)
    return found


def chinese_page(page: str) -> AppTest:
    at = AppTest.from_file(str(REPO / "router.py"), default_timeout=120)
    at.query_params["lang"] = "zh"
    at.run()
    at.switch_page(page).run()
    assert not at.exception
    return at


def english_left(at: AppTest) -> list[str]:
    shown = []
    for text in shown_strings(at.main) + shown_strings(at.sidebar):
        if text.startswith("$$ID-"):  # a widget's id, which holds its key: never shown
            continue
        try:  # a chart's spec: its titles, names and hover templates, not its JSON's syntax
            shown.append(json.dumps(json.loads(text), ensure_ascii=False))
        except ValueError:
            shown.append(text)
    whole = "\n".join(shown).replace("\\n", "\n")
    return sorted(phrase for phrase in english_phrases() if phrase in whole)


def as_words(words: str) -> str:
    return rf"(?<![\w-]){re.escape(words)}(?![\w-])"


@cache
def catalog_english() -> re.Pattern:
    """Every English message of the catalog whose Chinese differs (single words too), as whole words, but for those
    the Chinese messages use themselves (the "max" of max(0, x))."""
    with (REPO / "locale" / "zh" / "LC_MESSAGES" / "dlplay.po").open("rb") as file:
        messages = [(m.id, m.string) for m in read_po(file) if m.id and m.string != m.id]
    chinese = "\n".join(string for __, string in messages)
    english = [english for english, __ in messages if "{" not in english and not re.search(as_words(english), chinese)]
    return re.compile("|".join(as_words(words) for words in sorted(english, key=len, reverse=True)))


def title(thing) -> str:
    """A Plotly title, given as text or as {"text": ...}."""
    return thing.get("text", "") if isinstance(thing, dict) else thing or ""


def figure_texts(at: AppTest) -> list[str]:
    """What the page's Plotly figures print: their titles, axis titles and tick labels, legend names and title,
    annotations, colour-bar titles, and the text on bars and points."""
    found = []
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        layout = spec.get("layout", {})
        found += [title(layout.get("title")), title(layout.get("legend", {}).get("title"))]
        found += [a.get("text", "") for a in layout.get("annotations", [])]
        for key, axis in layout.items():
            if key.startswith(("xaxis", "yaxis")):
                found += [title(axis.get("title")), *map(str, axis.get("ticktext", []))]
            elif key == "coloraxis":
                found.append(title(axis.get("colorbar", {}).get("title")))
        for trace in spec.get("data", []):
            texts = trace.get("text")
            found += [trace.get("name") or "", *([texts] if isinstance(texts, str) else texts or [])]
    return [text for text in found if isinstance(text, str) and text]


def english_in_figures(at: AppTest) -> list[str]:
    english = catalog_english()
    return sorted({f"{found.group()!r} in {text!r}" for text in figure_texts(at) for found in english.finditer(text)})


@pytest.mark.parametrize("page", PAGES)
def test_each_page_in_chinese_has_no_english_message_left_and_every_widget_a_key(page):
    at = chinese_page(page)
    assert CJK.search(at.title[0].value)
    assert not english_left(at)
    assert not english_in_figures(at)  # not even one word ("loss", "epoch") on a chart
    unkeyed = [f"{kind}: {w.label}" for kind in WIDGETS for w in getattr(at, kind) if w.key is None]
    assert not unkeyed, unkeyed  # a key keeps a widget's value when the language switches


@pytest.mark.slow
def test_results_in_chinese_after_an_action():
    at = chinese_page("app_pages/after_training.py")
    labs_ended(by_label(at.button, "导出并测量").click().run())  # the lab runs in a worker: wait for its end
    assert not at.exception and any("onnx 检查器通过" in s.value for s in at.success)
    assert "准确率" in at.dataframe[0].value.columns and not english_left(at) and not english_in_figures(at)
    assert not unreadable_cells(at)  # the reference's own differences: "—", not "None"
    at.switch_page("app_pages/optimizers.py").run()
    outcomes = at.dataframe[0].value["结果"].tolist()
    assert all(CJK.search(o) for o in outcomes) and not english_left(at)


@pytest.mark.slow
def test_a_training_run_reads_in_chinese():
    at = chinese_page("app_pages/trainer.py")
    by_label(at.number_input, "训练轮数").set_value(1).run()
    by_label(at.button, "训练").click().run()
    run_to_the_end(at)
    assert not at.exception and at.metric[0].label == "测试准确率"
    assert any("训练了 1 轮" in c.value for c in at.caption)  # the run's message, said by the core in English
    assert CJK.search(at.info[0].value) and not english_left(at)  # the reading of the curves


@pytest.mark.slow
def test_switching_keeps_a_running_training():
    at = AppTest.from_file(str(REPO / "router.py"), default_timeout=120).run()
    at.switch_page("app_pages/trainer.py").run()
    by_label(at.number_input, "Epochs").set_value(30).run()
    by_label(at.number_input, "Pause after epoch").set_value(29).run()  # it cannot finish while the test looks
    by_label(at.button, "Train").click().run()
    job = at.session_state["state.run"]
    by_label(at.radio, "Language / 语言").set_value("zh").run()
    assert not at.exception and at.session_state["state.run"] is job and job.snapshot().active
    assert by_label(at.number_input, "训练轮数").value == 30
    by_label(at.button, "停止").click().run()
    run_to_the_end(at)
    assert job.snapshot().status.value == "stopped"


def test_the_switch_keeps_the_url_and_the_controls():
    at = AppTest.from_file(str(REPO / "router.py"), default_timeout=120).run()
    at.switch_page("app_pages/playground.py").run()
    by_label(at.selectbox, "Data").set_value("XOR").run()
    by_label(at.slider, "Noise").set_value(30).run()
    by_label(at.radio, "Language / 语言").set_value("zh").run()
    assert not at.exception and at.query_params["lang"] == "zh"
    assert by_label(at.selectbox, "数据").value == "XOR" and by_label(at.slider, "噪声").value == 30
    by_label(at.radio, "Language / 语言").set_value("en").run()
    assert at.query_params["lang"] == "en" and by_label(at.selectbox, "Data").value == "XOR"


def test_a_link_with_lang_zh_opens_in_chinese():
    at = AppTest.from_file(str(REPO / "router.py"), default_timeout=120)
    at.query_params["lang"] = "zh"
    at.run()
    assert at.title[0].value == "dlplay：在动手中学习深度学习"
    assert any("**设备：**" in m.value for m in at.sidebar.markdown)


def test_factors_and_lists_read_as_chinese():
    """A factor is 倍 (not 35×) and a list is joined by 、 (not English commas) on a Chinese page."""
    at = chinese_page("app_pages/activations.py")
    vanishing = at.info[0].value
    assert re.search(r"的小 [\d.,]+( × 10\^\d+)? 倍", vanishing) and not re.search(r"\d×", vanishing), vanishing
    at.switch_page("app_pages/classify.py").run()
    assert any("类别：0、1、2、3、4、5、6、7、8、9。" in c.value for c in at.caption)
