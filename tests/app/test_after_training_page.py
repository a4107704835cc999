"""AppTest drives the After training page: export the bundled model, see every form measured, download the files.
Every lab runs in a worker of the short-job lane; the tests rerun the page until it has ended. The sentences around
the results are checked on results put in the page's state, in English and in Chinese."""
import io
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from streamlit.testing.v1 import AppTest

from dlplay.after_training.compress import STUDENT
from dlplay.after_training.federated import Round
from dlplay.after_training.transfer import LabResult
from dlplay.classify import load_bundled_model
from dlplay.models import CUSTOM, build_model
from helpers import by_label, labs_ended, open_app_page

PAGE = "app_pages/after_training.py"
ROUTER = Path(__file__).resolve().parents[2] / "router.py"


def page_in(language: str, **state) -> AppTest:
    """The page under ?lang=`language`, drawn again with `state` (after_training.<name>: value) in its session."""
    at = AppTest.from_file(str(ROUTER), default_timeout=120)
    at.query_params["lang"] = language
    at.run()
    at.switch_page(PAGE).run()
    for name, value in state.items():
        at.session_state[f"after_training.{name}"] = value
    at.run()
    assert not at.exception
    return at


def test_the_students_share_is_counted_from_the_two_models():
    at = open_app_page(PAGE)
    model, card = load_bundled_model()
    student = sum(p.numel() for p in build_model(CUSTOM, card.input_shape, len(card.class_names),
                                                 stack=STUDENT).parameters())
    teacher = sum(p.numel() for p in model.parameters())
    caption = next(c.value for c in at.caption if "Distillation trains" in c.value)
    assert f"({student:,} parameters, {student / teacher:.1%} of this model's {teacher:,})" in caption
    assert "(14,410 parameters, 14.6% of this model's 98,554)" in caption and "seventh" not in caption


TRANSFER = ("features", (0.971, [LabResult(10, 0.60, 0.72), LabResult(50, 0.80, 0.85), LabResult(200, 0.90, 0.91)]))


@pytest.mark.parametrize("language, sentence", [
    ("en", "The 0–4 network reached **97.1%** on its own test digits. Kept fixed: the conv layers. Transferred minus "
           "scratch: **+12.0%** with 10 images per class, **+5.0%** with 50, **+1.0%** with 200."),
    ("zh", "0–4 网络在它自己的测试数字上达到 **97.1%**。保持固定：卷积层。"
           "迁移学习减去从零训练：每类 10 张图片时 **+12.0%**，50 张时 **+5.0%**，200 张时 **+1.0%**。")])
def test_the_transfer_result_reads_as_one_sentence_in_each_language(language, sentence):
    at = page_in(language, transfer=TRANSFER)
    assert sentence in [m.value for m in at.markdown]


def test_the_transfer_lab_credits_the_article_for_what_it_says():
    caption = next(c.value for c in open_app_page(PAGE).caption if "transferable" in c.value)  # section 4's
    assert "§9.1" in caption and "not in the article" in caption and "Yosinski" in caption
    assert "FAQ answer" not in caption


def rounds(*accuracies: float) -> list[Round]:
    return [Round(i, a, 0.1) for i, a in enumerate(accuracies, start=1)]


@pytest.mark.parametrize("language, epochs, axis, slider", [
    ("en", 1, "communication round (1 local epoch each)", "Communication rounds"),
    ("en", 3, "communication round (3 local epochs each)", "Communication rounds"),
    ("zh", 3, "通信回合（每回合本地训练 3 轮）", "通信回合数")])
def test_fedavg_names_its_rounds_apart_from_the_epochs_inside_them(language, epochs, axis, slider):
    mix = [[50] * 10, [50] * 10]
    histories = {"FedAvg": rounds(0.8, 0.9), "centralised (all images pooled)": rounds(0.85, 0.95)}
    at = page_in(language, federated=(2, None, epochs, mix, histories))
    chart = next(json.loads(c.proto.spec) for c in at.get("plotly_chart")
                 if json.loads(c.proto.spec)["layout"].get("xaxis", {}).get("title", {}).get("text") == axis)
    assert [trace["x"] for trace in chart["data"]] == [[1, 2], [1, 2]]
    assert by_label(at.slider, slider).value == 5
    caption = next(c.value for c in at.caption if "FedAvg" in c.value)  # what a client sends back
    assert ("sends back its weights and how many images it trained on" in caption if language == "en"
            else "发回它的权重和它训练用的图片数量" in caption)
    inside = {("en", 1): "every client trains one local epoch on its own images",
              ("en", 3): "every client trains 3 local epochs on its own images",
              ("zh", 3): "每个客户端在自己的图片上本地训练 3 轮"}[language, epochs]
    assert any(inside in c.value for c in at.caption)
    final = "FedAvg: **90.0%**" if language == "en" else "FedAvg：**90.0%**"
    assert any(m.value.startswith(final) for m in at.markdown)
    if language == "zh":  # a round is 回合, an epoch 轮: never the same word for both
        assert "轮" not in axis.split("（")[0] and not any("通信轮" in c.value for c in at.caption)


@pytest.mark.slow
def test_export_measures_every_form_and_offers_the_files():
    at = open_app_page(PAGE)
    assert not at.dataframe  # nothing measured before the click
    labs_ended(by_label(at.button, "Export and measure").click().run())
    assert not at.exception
    assert any("The onnx checker passed. Opset 18" in s.value for s in at.success)
    table = at.dataframe[0].value
    assert table["form"].tolist() == ["PyTorch, float32 (the reference)", "ONNX Runtime, float32",
                                      "ONNX Runtime, int8 (static, per channel)"]
    torch_accuracy, onnx_accuracy, int8_accuracy = table["accuracy"].tolist()
    assert onnx_accuracy == torch_accuracy and int8_accuracy > torch_accuracy - 0.02
    assert table["max |Δ logit|"].iloc[1] < 1e-4 and table["same class"].iloc[1] == 1.0
    assert table["same class"].iloc[2] > 0.95 and np.isnan(table["same class"].iloc[0])  # PyTorch: the reference
    sizes = table["size (KB)"].tolist()
    assert sizes[2] < sizes[1] / 2
    downloads = at.get("download_button")
    assert [d.proto.label for d in downloads] == ["Download model.onnx", "Download model.int8.onnx"]


@pytest.mark.slow
def test_the_downloaded_file_is_a_checked_onnx_model(tmp_path):
    at = open_app_page(PAGE)
    by_label(at.checkbox, "Also quantize to int8 (calibrated on 256 training images)").set_value(False).run()
    labs_ended(by_label(at.button, "Export and measure").click().run())
    assert len(at.dataframe[0].value) == 2 and not at.exception  # PyTorch and float32 ONNX only
    [(variants, files)] = at.session_state["after_training.reports"].values()
    proto = onnx.load(io.BytesIO(files["model.onnx"]))
    onnx.checker.check_model(proto, full_check=True)
    assert np.isclose(variants[1].accuracy, variants[0].accuracy)


@pytest.mark.slow
def test_compression_puts_every_form_beside_the_original():
    at = open_app_page(PAGE)
    by_label(at.multiselect, "Pruning sparsities (share of weights set to zero)").set_value([0.5, 0.95]).run()
    by_label(at.slider, "Student epochs (0: no student)").set_value(1).run()
    labs_ended(by_label(at.button, "Compress and measure").click().run())
    assert not at.exception
    table = at.dataframe[-1].value
    assert table["form"].tolist() == ["original", "pruned 50%", "pruned 95%", "int8 (ONNX Runtime, static)",
                                      "distilled student (1 epochs)"]
    accuracy = table["accuracy"].tolist()
    assert accuracy[1] > accuracy[0] - 0.02 and accuracy[2] < accuracy[0]  # half is cheap, 95% is not free
    assert table["gzip (KB)"].iloc[:3].is_monotonic_decreasing
    assert table["non-zero parameters"].iloc[4] < table["non-zero parameters"].iloc[0] / 5
    by_label(at.multiselect, "Pruning sparsities (share of weights set to zero)").set_value([]).run()
    by_label(at.checkbox, "int8 quantization").set_value(False).run()
    by_label(at.slider, "Student epochs (0: no student)").set_value(0).run()
    assert by_label(at.button, "Compress and measure").proto.disabled and not at.exception


@pytest.mark.slow
def test_federated_averaging_against_pooled_training():
    at = open_app_page(PAGE)
    by_label(at.slider, "Clients").set_value(4).run()
    by_label(at.radio, "Split").set_value(True).run()  # skewed (Dirichlet)
    by_label(at.select_slider, "α (smaller: fewer classes per client)").set_value(0.05).run()
    by_label(at.slider, "Communication rounds").set_value(2).run()
    labs_ended(by_label(at.button, "Run FedAvg").click().run())
    assert not at.exception
    clients, alpha, epochs, mix, histories = at.session_state["after_training.federated"]
    assert (clients, alpha, epochs) == (4, 0.05, 1) and len(mix) == 4
    assert sum(map(sum, mix)) == 4000  # every training digit, dealt out once
    assert np.mean([sum(1 for n in row if n) for row in mix]) < 10  # skewed: clients miss classes
    assert list(histories) == ["FedAvg", "centralised (all images pooled)"]
    assert all(len(h) == 2 for h in histories.values())
    assert any("FedAvg: **" in m.value for m in at.markdown)


@pytest.mark.slow
def test_the_transfer_lab_compares_both_arms_at_each_size():
    at = open_app_page(PAGE)
    by_label(at.radio, "While learning 5–9, keep fixed").set_value("features").run()
    by_label(at.slider, "Pre-training epochs on 0–4").set_value(1).run()
    labs_ended(by_label(at.button, "Run the lab").click().run())
    assert not at.exception
    frozen, (pretrained, results) = at.session_state["after_training.transfer"]
    assert frozen == "features" and pretrained > 0.9
    assert [r.per_class for r in results] == [10, 50, 200]
    assert all(0.5 < r.scratch <= 1 and 0.5 < r.transferred <= 1 for r in results)
    assert any("Transferred minus scratch: **" in m.value and m.value.endswith(" with 200.") for m in at.markdown)


def test_the_model_picker_says_fedavg_and_transfer_do_not_use_it():
    at = open_app_page(PAGE)
    picker = by_label(at.selectbox, "Model")
    assert "Sections 1 and 2 only" in picker.help
    captions = [c.value for c in at.main.caption]
    assert "Sections 3 and 4" in captions[1] and "do not use it: they train their own small CNN" in captions[1]
    # the page's second caption: just under the picker, above section 1
