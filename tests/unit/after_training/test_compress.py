"""Compression: pruning zeroes exactly the smallest weights across layers and a pruned model still classifies;
the distillation loss is its definition; every form is measured beside the original."""
import copy

import pytest
import torch
from torch import nn

from dlplay.after_training import compress
from dlplay.after_training.compress import (
    STUDENT,
    compression_report,
    distillation_loss,
    prunable,
    prune_model,
    student_share,
    weight_sparsity,
)
from dlplay.after_training.deploy import INT8_FILE, deployment_report, report_images
from dlplay.checkpoint import ModelCard, load_model_bytes, model_bytes
from dlplay.classify import load_bundled_model
from dlplay.data import load_dataset
from dlplay.device import pick_device
from dlplay.evaluate import evaluate
from dlplay.models import CUSTOM, MODELS, build_model


@pytest.fixture(scope="module")
def bundled():
    return load_bundled_model()


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.5, 0.9])
def test_the_smallest_weights_across_layers_become_zero_and_the_rest_stay(bundled, sparsity):
    model, _ = bundled
    before = copy.deepcopy(model.state_dict())
    pruned = prune_model(model, sparsity)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # the original is untouched
    old = torch.cat([w.detach().flatten() for w in (getattr(m, n) for m, n in prunable(model))])
    new = torch.cat([w.detach().flatten() for w in (getattr(m, n) for m, n in prunable(pruned))])
    assert weight_sparsity(pruned) == pytest.approx(sparsity, abs=1 / old.numel())
    kept = new != 0
    assert torch.equal(new[kept], old[kept])  # survivors keep their values
    if sparsity:  # the oracle: the k-th smallest |w| over all layers is the line between dropped and kept
        k = round(sparsity * old.numel())
        line = old.abs().kthvalue(k).values
        assert (old.abs()[~kept] <= line).all() and (old.abs()[kept] >= line).all()
    assert not any(hasattr(m, "weight_mask") or hasattr(m, "weight_orig") for m in pruned.modules())  # permanent


def test_a_pruned_model_saves_loads_and_classifies(bundled):
    model, card = bundled
    digits = load_dataset("mnist5k")
    device = pick_device("cpu")
    pruned = prune_model(model, 0.5)
    reloaded, _ = load_model_bytes(model_bytes(pruned, card), "pruned.safetensors")
    assert weight_sparsity(reloaded) == pytest.approx(0.5, abs=1e-3)
    original = evaluate(model, digits.test, device).accuracy
    assert evaluate(reloaded, digits.test, device).accuracy > original - 0.02  # half the weights, little lost


def test_distillation_loss_against_its_definition_and_its_known_gradient():
    torch.manual_seed(0)
    student, teacher, labels = torch.randn(6, 5, requires_grad=True), torch.randn(6, 5), torch.randint(0, 5, (6,))
    t, alpha = 3.0, 0.7
    loss = distillation_loss(student, teacher, labels, t, alpha)
    p_teacher = torch.exp(teacher / t) / torch.exp(teacher / t).sum(1, keepdim=True)  # written out, not F.*
    log_p_student = student / t - torch.log(torch.exp(student / t).sum(1, keepdim=True))
    kl = (p_teacher * (torch.log(p_teacher) - log_p_student)).sum(1).mean()
    log_p_hard = student - torch.log(torch.exp(student).sum(1, keepdim=True))
    expected = alpha * t * t * kl - (1 - alpha) * log_p_hard[torch.arange(6), labels].mean()
    torch.testing.assert_close(loss, expected)
    soft_only = distillation_loss(student, teacher, labels, t, 1.0)
    (grad,) = torch.autograd.grad(soft_only, student)
    p_student = torch.softmax(student.detach() / t, 1)
    torch.testing.assert_close(grad, t * (p_student - p_teacher) / 6)  # T²·(1/T)·(p_s − p_t) per image, averaged


@pytest.mark.slow
def test_the_report_puts_every_form_beside_the_original(bundled):
    model, card = bundled
    digits = load_dataset("mnist5k")
    before = copy.deepcopy(model.state_dict())
    forms = compression_report(model, card, digits, pick_device("auto"), [0.9, 0.5], quantize=True, student_epochs=2)
    assert [f.name for f in forms] == ["original", "pruned 50%", "pruned 90%", "int8 (ONNX Runtime, static)",
                                       "distilled student (2 epochs)"]
    original, half, most, int8, student = forms
    assert original.accuracy == evaluate(model, digits.test, pick_device("cpu")).accuracy
    assert original.parameters > half.parameters > most.parameters
    assert original.gzip_bytes > half.gzip_bytes > most.gzip_bytes  # zeros compress
    assert half.file_bytes == original.file_bytes  # ...but a dense file does not shrink
    assert int8.file_bytes < original.file_bytes / 2 and int8.accuracy > original.accuracy - 0.02
    assert student.parameters < original.parameters / 5 and student.accuracy > 0.9  # a seventh of the size, taught
    assert all(f.latency_one > 0 and f.latency_batch > 0 for f in forms)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # the original is untouched


@pytest.mark.slow
def test_the_int8_form_reuses_the_deployment_reports_file(bundled, tmp_path, monkeypatch):
    model, card = bundled
    digits = load_dataset("mnist5k")
    images, labels, calibration = report_images(card, digits, quantize=True)
    variants = deployment_report(model, card, tmp_path, images, labels, calibration)
    int8 = (tmp_path / INT8_FILE).read_bytes()

    def quantize_again(*_args):
        raise AssertionError("quantized again")

    monkeypatch.setattr(compress, "quantize_onnx", quantize_again)
    [_, form] = compression_report(model, card, digits, pick_device("auto"), [], quantize=True, student_epochs=0,
                                   int8=int8)
    assert form.file_bytes == len(int8) and form.accuracy == variants[2].accuracy  # the very file, measured alike


@pytest.mark.parametrize("sparsity", [1.0, -0.1])
def test_impossible_sparsities_are_refused(sparsity):
    with pytest.raises(ValueError, match="sparsity must be"):
        prune_model(nn.Sequential(nn.Linear(2, 2)), sparsity)


@pytest.mark.parametrize("architecture", list(MODELS))
def test_the_students_share_is_counted_from_both_models(architecture):
    """The caption's "{student} parameters, {share} of this model's {teacher}" comes from the two models' own
    parameter counts: a seventh only for the small CNN on digits, far less for the larger ones."""
    card = ModelCard(architecture, tuple("0123456789"), (1, 28, 28), (0.5,), (0.5,), "mnist5k")
    student = build_model(CUSTOM, card.input_shape, 10, stack=STUDENT)
    teacher = build_model(architecture, card.input_shape, 10)
    assert student_share(card) == (sum(p.numel() for p in student.parameters()),
                                   sum(p.numel() for p in teacher.parameters()))
    share = student_share(card)[0] / student_share(card)[1]
    assert (0.14 < share < 0.15) == (architecture == "small-cnn")


def test_the_bundled_models_student_is_a_seventh_of_it(bundled):
    model, card = bundled
    assert student_share(card) == (14_410, sum(p.numel() for p in model.parameters())) == (14_410, 98_554)
