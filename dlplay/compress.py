"""Make a trained model smaller: magnitude pruning with torch.nn.utils.prune, made permanent, and how much it
costs in accuracy and saves in a compressed file."""
import copy
import gzip
from dataclasses import dataclass

from torch import nn
from torch.nn.utils import prune

from .checkpoint import ModelCard, model_bytes
from .data import ImageSet
from .device import DeviceInfo
from .evaluate import evaluate


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


@dataclass(frozen=True)
class Pruned:
    """One pruned variant, measured."""

    sparsity: float  # asked for
    measured_sparsity: float  # zeros found in the weights
    nonzero_parameters: int
    gzip_bytes: int  # the .safetensors file gzip-compressed: zeros compress, a dense file does not shrink
    accuracy: float


def pruning_sweep(model: nn.Module, card: ModelCard, test: ImageSet, device: DeviceInfo,
                  sparsities: list[float]) -> list[Pruned]:
    """Prune `model` at each sparsity (0 is the model itself) and measure each on the test images."""
    results = []
    for sparsity in sorted(sparsities):
        pruned = prune_model(model, sparsity)
        nonzero = sum(int((p != 0).sum()) for p in pruned.parameters())
        results.append(Pruned(sparsity, weight_sparsity(pruned), nonzero,
                              len(gzip.compress(model_bytes(pruned, card), compresslevel=6)),
                              evaluate(pruned.to(device.device), test, device).accuracy))
    return results

