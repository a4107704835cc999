"""Evaluate a classifier on an in-memory ImageSet: accuracy, loss, confusion matrix, per-class accuracy."""
from dataclasses import dataclass

import torch
from safetensors.torch import load, save
from torch.nn import functional as F

from dlplay.data import ImageSet
from dlplay.device import DeviceInfo, autocast
from dlplay.models import evaluating


@dataclass(frozen=True)
class Evaluation:
    """Test metrics; confusion[i, j] counts images of true class i predicted as class j."""

    accuracy: float
    loss: float
    confusion: torch.Tensor  # (K, K) int64
    predictions: torch.Tensor  # (N,) int64
    probabilities: torch.Tensor  # (N, K) float32, softmax of the logits
    labels: torch.Tensor  # (N,) int64, the true classes

    def confident_mistakes(self, k: int) -> list[int]:
        """Indices of up to k wrongly classified images, most confident wrong prediction first."""
        wrong = torch.nonzero(self.predictions != self.labels).flatten()
        confidence = self.probabilities[wrong, self.predictions[wrong]]
        return wrong[confidence.argsort(descending=True)[:k]].tolist()

    def cell(self, true_class: int, predicted_class: int) -> list[int]:
        """Indices of the images of `true_class` that were predicted as `predicted_class`."""
        hits = (self.labels == true_class) & (self.predictions == predicted_class)
        return torch.nonzero(hits).flatten().tolist()

    @property
    def per_class_accuracy(self) -> list[float]:
        """Recall of each class (nan for a class with no test images)."""
        totals = self.confusion.sum(dim=1).double()
        return (self.confusion.diag().double() / totals).tolist()


@torch.no_grad()
def predict_logits(model: torch.nn.Module, images: torch.Tensor, device: DeviceInfo,
                   batch_size: int = 500) -> torch.Tensor:
    """Logits (N, K) on the CPU for uint8 images (N, C, H, W), in eval mode, batch by batch."""
    out = []
    with evaluating(model):
        for chunk in images.split(batch_size):
            x = chunk.to(device.device).float().div_(255)
            if device.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast(device):
                out.append(model(x).float().cpu())
    return torch.cat(out)


def evaluate(model: torch.nn.Module, data: ImageSet, device: DeviceInfo, num_classes: int | None = None,
             batch_size: int = 500) -> Evaluation:
    """Accuracy, mean cross-entropy, confusion matrix and predictions of `model` on `data`."""
    logits = predict_logits(model, data.images, device, batch_size)
    k = num_classes or logits.shape[1]
    predictions = logits.argmax(1)
    confusion = torch.bincount(data.labels * k + predictions, minlength=k * k).view(k, k)
    return Evaluation(
        accuracy=float((predictions == data.labels).double().mean()),
        loss=float(F.cross_entropy(logits, data.labels)),
        confusion=confusion,
        predictions=predictions,
        probabilities=logits.softmax(1),
        labels=data.labels,
    )


TENSOR_FIELDS = ("confusion", "predictions", "probabilities", "labels")


def evaluation_bytes(evaluation: Evaluation) -> bytes:
    """An Evaluation as .safetensors bytes (the two scores as 0-d float64 tensors)."""
    tensors = {name: getattr(evaluation, name).contiguous() for name in TENSOR_FIELDS}
    scores = {name: torch.tensor(getattr(evaluation, name), dtype=torch.float64) for name in ("accuracy", "loss")}
    return save(tensors | scores)


def evaluation_from_bytes(data: bytes) -> Evaluation:
    """The Evaluation that evaluation_bytes() wrote."""
    tensors = load(data)
    return Evaluation(accuracy=float(tensors["accuracy"]), loss=float(tensors["loss"]),
                      **{name: tensors[name] for name in TENSOR_FIELDS})
