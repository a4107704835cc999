"""ONNX deployment: the exported graph passes the checker, takes any batch size, carries its card and gives
PyTorch's outputs under ONNX Runtime; the int8 model still classifies; the CLI exits 2 on bad input."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from dlplay.after_training.deploy import (
    OPSET,
    OnnxModel,
    compare,
    deployment_report,
    export_onnx,
    onnx_card,
    quantize_onnx,
)
from dlplay.checkpoint import ModelFileError, save_model
from dlplay.classify import load_bundled_model
from dlplay.cli import main
from dlplay.data import load_dataset

REPO = Path(__file__).resolve().parents[3]
TOLERANCE = 1e-4  # float32 logits of ONNX Runtime against PyTorch's (the two order their sums differently)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The bundled digit model exported once for the module: (model, card, path)."""
    model, card = load_bundled_model()
    return model, card, export_onnx(model, card, tmp_path_factory.mktemp("onnx") / "digits.onnx")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("mnist5k")


def test_the_export_passes_the_checker_with_its_opset_and_a_free_batch_axis(exported):
    _, card, path = exported
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [OPSET]
    batch, *rest = proto.graph.input[0].type.tensor_type.shape.dim
    assert batch.dim_param and not batch.HasField("dim_value")  # symbolic: any batch size
    assert [d.dim_value for d in rest] == list(card.input_shape)
    assert onnx_card(path) == card  # the card travels in the file


@pytest.mark.parametrize("batch", [1, 7, 64])
def test_onnx_runtime_gives_pytorchs_outputs_for_any_batch_size(exported, digits, batch):
    model, _, path = exported
    images = digits.test.images[:batch].float() / 255
    agreement = compare(model, OnnxModel(path), images)
    assert agreement.max_difference < TOLERANCE and agreement.same_prediction == 1.0
    with torch.no_grad():
        expected = model.eval()(images).numpy()
    np.testing.assert_allclose(OnnxModel(path)(images), expected, atol=TOLERANCE, rtol=0)


def test_the_int8_model_is_smaller_and_still_classifies(exported, digits, tmp_path):
    model, card, path = exported
    quantized = quantize_onnx(path, tmp_path / "digits.int8.onnx", digits.train.images[:256].float() / 255)
    assert onnx_card(quantized) == card
    assert quantized.stat().st_size < path.stat().st_size / 2
    images, labels = digits.test.images.float() / 255, digits.test.labels.numpy()
    accuracy = (OnnxModel(quantized)(images).argmax(1) == labels).mean()
    fp32_accuracy = (OnnxModel(path)(images).argmax(1) == labels).mean()
    assert accuracy > fp32_accuracy - 0.02  # int8 loses little on the held-out digits
    assert compare(model, OnnxModel(quantized), images).same_prediction > 0.95
    assert {n.op_type for n in onnx.load(str(quantized)).graph.node} >= {"QuantizeLinear", "DequantizeLinear"}


def test_the_report_measures_every_form_on_the_same_images(digits, tmp_path):
    model, card = load_bundled_model()
    images, labels = digits.test.images[:200].float() / 255, digits.test.labels[:200]
    report = deployment_report(model, card, tmp_path, images, labels, digits.train.images[:64].float() / 255)
    assert [v.name.split(",")[0] for v in report] == ["PyTorch", "ONNX Runtime", "ONNX Runtime"]
    torch_accuracy = report[0].accuracy
    assert report[1].accuracy == torch_accuracy and report[1].agreement.max_difference < TOLERANCE
    assert all(v.latency_one > 0 and v.latency_batch > 0 and v.size_bytes > 0 for v in report)
    assert report[2].size_bytes < report[1].size_bytes and report[2].path.exists()


def test_files_that_are_not_dlplay_onnx_models_are_refused(tmp_path, exported):
    garbage = tmp_path / "x.onnx"
    garbage.write_bytes(b"not a model")
    with pytest.raises(ModelFileError, match="not a valid ONNX model"):
        onnx_card(garbage)
    proto = onnx.load(str(exported[2]))
    del proto.metadata_props[:]
    plain = tmp_path / "plain.onnx"
    onnx.save(proto, str(plain))
    with pytest.raises(ModelFileError, match="not exported by dlplay"):
        onnx_card(plain)


@pytest.mark.slow
def test_cli_export_writes_checks_and_compares(tmp_path):
    model, card = load_bundled_model()
    source = save_model(tmp_path / "digits.safetensors", model, card)
    out = tmp_path / "deploy" / "digits.onnx"
    done = subprocess.run([sys.executable, "-m", "dlplay", "export", str(source), "--onnx", str(out), "--quantize"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert out.exists() and out.with_suffix(".int8.onnx").exists()
    assert f"opset {OPSET}" in done.stdout and "the onnx checker passed" in done.stdout
    assert done.stdout.count("max |logit - PyTorch's|") == 3 and "Traceback" not in done.stderr
    assert onnx_card(out) == card


@pytest.mark.parametrize("make, argv_tail, complaint", [
    (lambda p: p / "missing.safetensors", ["--onnx", "out.onnx"], "not a readable .safetensors file"),
    (lambda p: (p / "model.pt").write_bytes(b"\x80\x04pickle") and p / "model.pt", ["--onnx", "out.onnx"],
     "not a readable .safetensors file"),
    (lambda p: p / "any.safetensors", ["--onnx", "out.txt"], "must be a .onnx file"),
])
def test_cli_export_bad_input_is_exit_2_and_one_message(tmp_path, capsys, make, argv_tail, complaint):
    argv_tail = [str(tmp_path / a) if a.startswith("out") else a for a in argv_tail]
    assert main(["export", str(make(tmp_path)), *argv_tail]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and complaint in err and "Traceback" not in err


def test_cli_quantize_needs_the_models_training_images(tmp_path, capsys):
    model, card = load_bundled_model()
    source = save_model(tmp_path / "m.safetensors", model, type(card)(**{**card.__dict__, "dataset": "my-zip"}))
    assert main(["export", str(source), "--onnx", str(tmp_path / "m.onnx"), "--quantize"]) == 2
    assert "calibrates on training images" in capsys.readouterr().err


def test_deploying_leaves_the_callers_model_where_and_as_it_was(exported, digits, tmp_path):
    model, card, _ = exported
    model.train()
    params = [p for p in model.parameters()]
    export_onnx(model, card, tmp_path / "again.onnx")
    deployment_report(model, card, tmp_path, digits.test.images[:64].float() / 255, None, None)
    assert model.training and all(a is b for a, b in zip(model.parameters(), params, strict=True))  # same tensors
    assert {p.device for p in model.parameters()} == {params[0].device}
    model.eval()
