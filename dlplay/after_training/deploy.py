"""Deploy a trained model: export it to ONNX with its card, check it, run it with ONNX Runtime beside PyTorch, and
quantize it to int8 with ONNX Runtime's own tools.

torch.onnx's exporter (torch.export, then onnxscript) writes the graph; the `onnx` checker validates it; ONNX
Runtime runs and quantizes it. All three are the maintained tools for this, so none of it is written by hand.
"""
import contextlib
import copy
import json
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process
from torch import nn

from dlplay.checkpoint import METADATA_KEY, ModelCard, ModelFileError, card_metadata, model_bytes, read_card_fields
from dlplay.data import Dataset
from dlplay.models import evaluating

OPSET = 18
INPUT, OUTPUT = "images", "logits"  # (N, C, H, W) floats in 0..1 in, class scores out; N is free
CALIBRATION_BATCH = 32
CALIBRATION_IMAGES = 256  # training images that set an int8 model's activation ranges
RANDOM_IMAGES = 256  # compared on, seeded, when the model's own test images are not at hand
LATENCY_BATCH = 64


@contextlib.contextmanager
def on_the_cpu(model: nn.Module) -> Iterator[nn.Module]:
    """`model` in eval mode on the CPU for a block: the model itself when it is there (back in its own mode after),
    else a copy, so the caller's model stays on its GPU, in its mode."""
    if all(t.device.type == "cpu" for t in [*model.parameters(), *model.buffers()]):
        with evaluating(model):
            yield model
    else:
        yield copy.deepcopy(model).cpu().eval()


def export_onnx(model: nn.Module, card: ModelCard, path: str | Path) -> Path:
    """Write `model` (on any device; left as it was) as an ONNX file (opset OPSET, any batch size) carrying its card,
    checked by the onnx checker."""
    example = torch.rand(2, *card.input_shape)
    with on_the_cpu(model) as cpu_model:
        program = torch.onnx.export(cpu_model, (example,), dynamo=True, opset_version=OPSET, input_names=[INPUT],
                                    output_names=[OUTPUT], dynamic_shapes=({0: torch.export.Dim("batch")},),
                                    verbose=False)
    proto = program.model_proto
    onnx.helper.set_model_props(proto, card_metadata(card))
    onnx.checker.check_model(proto, full_check=True)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, path)
    return path


def onnx_card(path: str | Path) -> ModelCard:
    """The ModelCard an exported file carries; ModelFileError for a file that is not a checked dlplay ONNX model."""
    name = Path(path).name
    try:
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto)
    except Exception as err:  # noqa: BLE001  onnx raises several types (DecodeError, ValidationError, OSError)
        raise ModelFileError(f"{name} is not a valid ONNX model") from err
    props = {p.key: p.value for p in proto.metadata_props}
    if METADATA_KEY not in props:
        raise ModelFileError(f"{name} was not exported by dlplay, so its input and classes are unknown")
    return read_card_fields(json.loads(props[METADATA_KEY]), name)


ONNX_FILE, INT8_FILE = "model.onnx", "model.int8.onnx"  # the files deployment_report writes


class OnnxModel:
    """An ONNX model (a file, or its bytes) run by ONNX Runtime on the CPU: logits for a batch of 0..1 images."""

    def __init__(self, model: str | Path | bytes):
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: the quantized graph's notes are not for the user
        self.session = ort.InferenceSession(model if isinstance(model, bytes) else str(model), options,
                                            providers=["CPUExecutionProvider"])

    def __call__(self, images: torch.Tensor) -> np.ndarray:
        """(N, C, H, W) images in 0..1 → (N, classes) logits."""
        return self.session.run([OUTPUT], {INPUT: images.float().cpu().numpy()})[0]


@dataclass(frozen=True)
class Agreement:
    """How an ONNX model's outputs compare with PyTorch's on the same images."""

    max_difference: float  # the largest |logit difference|
    same_prediction: float  # the share of images where both pick the same class


def agreement(reference: np.ndarray, theirs: np.ndarray) -> Agreement:
    """How close `theirs` logits are to the `reference` ones for the same images."""
    return Agreement(float(np.abs(theirs - reference).max()), float((theirs.argmax(1) == reference.argmax(1)).mean()))


@torch.no_grad()
def compare(model: nn.Module, onnx_model: OnnxModel, images: torch.Tensor) -> Agreement:
    """Run PyTorch (float32, CPU) and ONNX Runtime on the same 0..1 images and compare their logits."""
    with on_the_cpu(model) as cpu_model:
        return agreement(cpu_model(images.float()).numpy(), onnx_model(images))


class _Batches(CalibrationDataReader):
    """Calibration images for quantize_static, CALIBRATION_BATCH at a time."""

    def __init__(self, images: torch.Tensor):
        self.batches = iter(images[i:i + CALIBRATION_BATCH].float().numpy()
                            for i in range(0, len(images), CALIBRATION_BATCH))

    def get_next(self) -> dict | None:
        batch = next(self.batches, None)
        return None if batch is None else {INPUT: batch}


def quantize_onnx(source: str | Path, target: str | Path, calibration: torch.Tensor) -> Path:
    """Static int8 quantization of an exported model with ONNX Runtime: weights per channel (int8), activations
    (uint8) scaled from the ranges seen on `calibration` images (0..1, from the training data); QDQ format. The
    card travels along."""
    card = onnx_card(source)
    with tempfile.TemporaryDirectory(prefix="dlplay-quantize-") as folder:
        prepared = Path(folder) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared))  # shape inference and graph clean-up, as ORT recommends
        quantize_static(str(prepared), str(target), _Batches(calibration), quant_format=QuantFormat.QDQ,
                        per_channel=True, weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8)
    proto = onnx.load(str(target))
    onnx.helper.set_model_props(proto, card_metadata(card))
    onnx.save(proto, str(target))
    return Path(target)


def median_latency(run, images: torch.Tensor, repeats: int = 30) -> float:
    """Median seconds of `run(images)` over `repeats` calls, after one warm-up call."""
    run(images)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(images)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


@dataclass(frozen=True)
class Variant:
    """One form of a model, measured on this machine."""

    name: str
    path: Path | None  # the file it is (None: the PyTorch model in memory, saved as .safetensors)
    size_bytes: int
    accuracy: float | None  # on the test images, when there are some
    agreement: Agreement  # against the PyTorch model
    latency_one: float  # median seconds for one image
    latency_batch: float  # median seconds for a batch of LATENCY_BATCH images


def report_images(card: ModelCard, dataset: Dataset | None,
                  quantize: bool) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """What a report measures on, as 0..1 images: (the dataset's test images, their labels, CALIBRATION_IMAGES of
    its training images to quantize with); without the dataset, RANDOM_IMAGES seeded random images, no labels and
    no calibration."""
    if dataset is None:
        return torch.rand(RANDOM_IMAGES, *card.input_shape, generator=torch.Generator().manual_seed(0)), None, None
    calibration = dataset.train.images[:CALIBRATION_IMAGES].float() / 255 if quantize else None
    return dataset.test.images.float() / 255, dataset.test.labels, calibration


@torch.no_grad()
def deployment_report(model: nn.Module, card: ModelCard, folder: str | Path, images: torch.Tensor,
                      labels: torch.Tensor | None, calibration: torch.Tensor | None) -> list[Variant]:
    """Export `model` to folder/model.onnx (and, with calibration images, quantize it to folder/model.int8.onnx),
    then measure each form against the PyTorch model on `images` (0..1; with `labels`, their accuracy). The caller's
    model stays on its device, in its mode."""
    with on_the_cpu(model) as cpu_model:
        return _measure(cpu_model, card, Path(folder), images, labels, calibration)


def _measure(model: nn.Module, card: ModelCard, folder: Path, images: torch.Tensor, labels: torch.Tensor | None,
             calibration: torch.Tensor | None) -> list[Variant]:
    one, batch = images[:1].float(), images[:LATENCY_BATCH].float()

    def accuracy(logits: np.ndarray) -> float | None:
        return None if labels is None else float((logits.argmax(1) == labels.numpy()).mean())

    reference = model(images.float()).numpy()
    variants = [Variant("PyTorch, float32", None, len(model_bytes(model, card)), accuracy(reference),
                        Agreement(0.0, 1.0), median_latency(model, one), median_latency(model, batch))]
    exported = export_onnx(model, card, folder / ONNX_FILE)
    files = [("ONNX Runtime, float32", exported)]
    if calibration is not None:
        files.append(("ONNX Runtime, int8 (static, per channel)",
                      quantize_onnx(exported, folder / INT8_FILE, calibration)))
    for name, path in files:
        runner = OnnxModel(path)
        logits = runner(images)
        variants.append(Variant(name, path, path.stat().st_size, accuracy(logits), agreement(reference, logits),
                                median_latency(runner, one), median_latency(runner, batch)))
    return variants
