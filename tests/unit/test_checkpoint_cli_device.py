"""Saving and loading models, the command line's results and exit codes, device choice, core/UI separation."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torchvision import datasets

from dlplay.checkpoint import ModelCard, ModelFileError, load_model, read_card, save_model
from dlplay.cli import main
from dlplay.device import configure_threads, cpu_has_native_bf16, pick_device
from dlplay.models import build_model

REPO = Path(__file__).resolve().parents[2]


def card_for(arch: str, classes=10, shape=(1, 28, 28)) -> ModelCard:
    return ModelCard(arch, tuple(str(i) for i in range(classes)), shape, (0.1307,), (0.3081,), "mnist5k", 0.5)


def test_save_then_load_gives_the_same_model(tmp_path, cpu):
    model = build_model("small-cnn", (1, 28, 28), 10, (0.1307,), (0.3081,)).to(memory_format=torch.channels_last)
    card = card_for("small-cnn")
    path = save_model(tmp_path / "m.safetensors", model, card)
    loaded, loaded_card = load_model(path)
    assert loaded_card == card and read_card(path) == card
    for key, tensor in model.state_dict().items():
        assert torch.equal(tensor, loaded.state_dict()[key]), key
    x = torch.rand(4, 1, 28, 28)
    model.eval()
    assert torch.allclose(model(x), loaded(x), atol=1e-6)  # memory formats differ, so kernels may round differently


def test_weights_of_another_architecture_are_refused_with_the_difference(tmp_path):
    path = save_model(tmp_path / "wrong.safetensors", build_model("article-cifar10", (1, 28, 28), 10),
                      card_for("small-cnn"))
    with pytest.raises(ModelFileError, match="do not fit small-cnn: missing .*unexpected"):
        load_model(path)
    other_classes = save_model(tmp_path / "k.safetensors", build_model("small-cnn", (1, 28, 28), 3),
                               card_for("small-cnn"))
    with pytest.raises(ModelFileError, match=r"shape mismatch .*\(3, 128\) vs model \(10, 128\)"):
        load_model(other_classes)


def test_unreadable_or_foreign_files_are_refused(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"this is not a safetensors file")
    with pytest.raises(ModelFileError, match="not a readable"):
        load_model(junk)
    from safetensors.torch import save_file
    bare = tmp_path / "bare.safetensors"
    save_file({"w": torch.zeros(2)}, str(bare))
    with pytest.raises(ModelFileError, match="no dlplay metadata"):
        load_model(bare)


@pytest.mark.parametrize("argv, complaint", [
    (["--dataset", "imagenet"], "choose from 'mnist5k', 'mnist', 'fashion-mnist', 'cifar10'"),
    (["--model", "vgg"], "choose from 'small-cnn', 'strided-cnn', 'article-cifar10', 'article-150'"),
    (["--optimizer", "lion"], "choose from 'sgd', 'momentum', 'adam', 'adamw', 'rmsprop'"),
    (["--lr", "0"], "--lr: must be greater than 0"),
    (["--lr", "-0.1"], "--lr: must be greater than 0"),
    (["--lr", "fast"], "--lr: expected a float"),
    (["--epochs", "0"], "--epochs: must be greater than 0"),
    (["--batch-size", "0"], "--batch-size: must be greater than 0"),
    (["--weight-decay", "-1"], "--weight-decay: must be 0 or more"),
    (["--label-smoothing", "1"], "--label-smoothing: must be below 1"),
])
def test_invalid_arguments_exit_2_with_the_valid_choices(argv, complaint, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", *argv])
    assert exit_info.value.code == 2
    assert complaint in capsys.readouterr().err


def test_offline_dataset_is_one_message_not_a_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(datasets.MNIST, "mirrors", ["http://127.0.0.1:9/"])
    assert main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Could not load the mnist dataset") and "Traceback" not in err


@pytest.mark.slow
def test_cli_trains_reports_and_saves(tmp_path):
    out = tmp_path / "model.safetensors"
    done = subprocess.run([sys.executable, "-m", "dlplay", "train", "--dry-run", "--epochs", "3", "--save", str(out),
                           "--no-mixed-precision"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "(float32)" in done.stdout  # mixed precision switched off, whatever the device
    assert "test accuracy" in done.stdout and "epoch 1/1" in done.stderr  # --dry-run: one epoch of two batches
    model, card = load_model(out)
    assert card.architecture == "strided-cnn" and card.dataset == "mnist5k" and card.input_shape == (1, 28, 28)
    assert 0.0 <= card.test_accuracy <= 1.0 and card.mean[0] == pytest.approx(0.13, abs=0.02)


def test_device_choice_is_honest():
    assert pick_device("cpu").device.type == "cpu"
    auto = pick_device("auto")
    assert auto.device.type == ("cuda" if torch.cuda.is_available() else auto.device.type)
    if not torch.cuda.is_available():
        assert auto.device.type in ("cpu", "mps")
        native = auto.device.type == "cpu" and cpu_has_native_bf16()
        assert auto.autocast is (torch.bfloat16 if native else None)  # bf16 only where the CPU has it
        with pytest.raises(ValueError, match="no CUDA GPU"):
            pick_device("cuda")
    with pytest.raises(ValueError, match="auto"):
        pick_device("tpu")
    assert configure_threads(1) == 1 and configure_threads() >= 1


@pytest.mark.slow  # a fresh interpreter imports every module
def test_core_never_imports_streamlit():
    code = ("import importlib, pkgutil, sys, dlplay\n"
            "for m in pkgutil.walk_packages(dlplay.__path__, 'dlplay.'):\n"
            "    if m.name != 'dlplay.__main__': importlib.import_module(m.name)\n"
            "print(sorted(k for k in sys.modules if k.split('.')[0] == 'streamlit'))")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
