"""AppTest drives the After training page: export the bundled model, see every form measured, download the files.
Every lab runs in a worker of the short-job lane; the tests rerun the page until it has ended."""
import io

import numpy as np
import onnx
import pytest

from helpers import by_label, labs_ended, open_app_page

PAGE = "app_pages/after_training.py"


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
    by_label(at.slider, "Rounds").set_value(2).run()
    labs_ended(by_label(at.button, "Run FedAvg").click().run())
    assert not at.exception
    clients, alpha, mix, histories = at.session_state["after_training.federated"]
    assert (clients, alpha) == (4, 0.05) and len(mix) == 4
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
    assert any("Transferred minus scratch" in m.value for m in at.markdown)
