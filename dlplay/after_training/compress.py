"""Make a trained model smaller three ways and measure each beside the original: magnitude pruning
(torch.nn.utils.prune, made permanent), int8 post-training quantization (ONNX Runtime, calibrated on training
images) and knowledge distillation into a smaller student (Hinton et al., 2015)."""
import copy
import functools
import gzip
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune

from dlplay.after_training.deploy import (
    INT8_FILE,
    LATENCY_BATCH,
    ONNX_FILE,
    OnnxModel,
    export_onnx,
    median_latency,
    quantize_onnx,
    report_images,
)
from dlplay.builder import LayerSpec
from dlplay.checkpoint import ModelCard, card_parameters, model_bytes
from dlplay.data import Dataset, ImageSet
from dlplay.device import DeviceInfo
from dlplay.models import CUSTOM, build_model

# The student: 14,410 parameters for 28×28 digits, a seventh of the small CNN's 98,554 (student_share says it for any
# model).
STUDENT = (LayerSpec("conv", 8), LayerSpec("pool"), LayerSpec("conv", 16), LayerSpec("pool"), LayerSpec("dense", 32))


def student_card(card: ModelCard) -> ModelCard:
    """The card of the student distilled from a model of `card`: the same inputs, classes and dataset."""
    return ModelCard(CUSTOM, card.class_names, card.input_shape, card.mean, card.std, card.dataset,
                     stack=tuple((s.kind, s.size) for s in STUDENT))


@functools.cache
def student_share(card: ModelCard) -> tuple[int, int]:
    """(the student's parameters, the model's) for a model of `card`, counted from both architectures."""
    return card_parameters(student_card(card)), card_parameters(card)


def prunable(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """The weights pruning acts on: every Conv2d's and Linear's (biases and batch-norm stay)."""
    return [(m, "weight") for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def prune_model(model: nn.Module, sparsity: float) -> nn.Module:
    """A copy of `model` with the `sparsity` share of its conv and linear weights with the smallest |w| across all
    layers (global L1 magnitude) set to zero for good (the pruning masks are folded into the weights)."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be at least 0 and below 1, not {sparsity}")
    pruned = copy.deepcopy(model)
    weights = prunable(pruned)
    prune.global_unstructured(weights, pruning_method=prune.L1Unstructured, amount=sparsity)
    for module, name in weights:
        prune.remove(module, name)
    return pruned


def weight_sparsity(model: nn.Module) -> float:
    """The share of conv and linear weights that are exactly zero."""
    weights = [getattr(m, name) for m, name in prunable(model)]
    return sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                      temperature: float, alpha: float) -> torch.Tensor:
    """α·T²·KL(teacher's softened probabilities ‖ the student's) + (1 − α)·cross-entropy with the labels; T²
    keeps the soft part's gradients the size of the hard part's."""
    soft = F.kl_div(F.log_softmax(student_logits / temperature, 1), F.log_softmax(teacher_logits / temperature, 1),
                    log_target=True, reduction="batchmean") * temperature ** 2
    return alpha * soft + (1 - alpha) * F.cross_entropy(student_logits, labels)


def distill(teacher: nn.Module, student: nn.Module, train: ImageSet, device: DeviceInfo, epochs: int = 5,
            batch_size: int = 64, lr: float = 3e-3, temperature: float = 4.0, alpha: float = 0.9,
            seed: int = 0) -> nn.Module:
    """Train `student` (in place) to match `teacher`'s softened outputs and the labels; returns it in eval mode."""
    dev = device.device
    teacher, student = copy.deepcopy(teacher).to(dev).eval(), student.to(dev).train()  # the teacher may be shared
    images, labels = train.images.to(dev), train.labels.to(dev)
    optimizer = torch.optim.Adam(student.parameters(), lr)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for batch in torch.randperm(len(labels), generator=generator).split(batch_size):
            x = images[batch].float() / 255
            with torch.no_grad():
                teacher_logits = teacher(x)
            loss = distillation_loss(student(x), teacher_logits, labels[batch], temperature, alpha)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return student.eval()


@dataclass(frozen=True)
class Compressed:
    """One form of a model, measured on this machine (CPU, one image and a batch)."""

    name: str
    file_bytes: int  # .safetensors for PyTorch forms, .onnx for ONNX Runtime's
    gzip_bytes: int  # the same file gzip-compressed: where zeros from pruning pay off
    parameters: int  # non-zero ones
    latency_one: float
    latency_batch: float
    accuracy: float


def _measure(name: str, data: bytes, parameters: int, run, images: torch.Tensor, labels: torch.Tensor) -> Compressed:
    logits = torch.as_tensor(run(images))
    return Compressed(name, len(data), len(gzip.compress(data, compresslevel=6)), parameters,
                      median_latency(run, images[:1]), median_latency(run, images[:LATENCY_BATCH]),
                      float((logits.argmax(1) == labels).double().mean()))


def _torch_form(name: str, model: nn.Module, card: ModelCard, images, labels) -> Compressed:
    model = copy.deepcopy(model).eval().cpu()  # timed on the CPU, like ONNX Runtime; the caller's model stays put
    with torch.no_grad():
        return _measure(name, model_bytes(model, card), sum(int((p != 0).sum()) for p in model.parameters()),
                        lambda x: model(x), images, labels)


def compression_report(model: nn.Module, card: ModelCard, data: Dataset, device: DeviceInfo,
                       sparsities: list[float], quantize: bool, student_epochs: int,
                       int8: bytes | None = None) -> list[Compressed]:
    """The original beside each asked-for form: pruned at each sparsity, int8 (ONNX Runtime), and a distilled
    student (student_epochs 0: none), all measured on `data`'s test images. `int8`: the int8 file
    deployment_report already made from this model and `data` (quantized the same way), measured instead of
    exporting and quantizing again."""
    images, labels, calibration = report_images(card, data, quantize)
    forms = [_torch_form("original", model, card, images, labels)]
    for sparsity in sorted(sparsities):
        forms.append(_torch_form(f"pruned {sparsity:.0%}", prune_model(model, sparsity), card, images, labels))
    if quantize:
        if int8 is None:
            with tempfile.TemporaryDirectory(prefix="dlplay-compress-") as folder:
                exported = export_onnx(model, card, Path(folder) / ONNX_FILE)
                int8 = quantize_onnx(exported, Path(folder) / INT8_FILE, calibration).read_bytes()
        parameters = sum(int((p != 0).sum()) for p in model.parameters())
        forms.append(_measure("int8 (ONNX Runtime, static)", int8, parameters, OnnxModel(int8), images, labels))
    if student_epochs:
        student = build_model(CUSTOM, card.input_shape, len(card.class_names), card.mean, card.std, stack=STUDENT)
        distill(model, student, data.train, device, epochs=student_epochs)
        forms.append(_torch_form(f"distilled student ({student_epochs} epochs)", student, student_card(card), images,
                                 labels))
    return forms
