"""A layer-by-layer CNN builder: a list of simple layer specs, checked shape by shape before anything is built."""
from dataclasses import dataclass

from torch import nn

from dlplay.layers import Dropout

LAYER_KINDS = ("conv", "pool", "batchnorm", "dropout", "dense")
SIZE_LABELS = {"conv": "filters", "dense": "units", "dropout": "drop %"}


@dataclass(frozen=True)
class LayerSpec:
    """One layer: conv (3×3 valid + ReLU, `size` filters), pool (2×2 max), batchnorm, dropout (`size` %), dense
    (`size` units + ReLU)."""

    kind: str
    size: int = 0

    def describe(self) -> str:
        """A short human-readable name, e.g. 'conv 3×3, 32 filters'."""
        return {"conv": f"conv 3×3, {self.size} filters + ReLU", "pool": "max-pool 2×2", "batchnorm": "batch-norm",
                "dropout": f"dropout {self.size}%", "dense": f"dense {self.size} + ReLU"}[self.kind]


# The article's CIFAR-10 CNN (§5.3), as a starting point to edit.
ARTICLE_STACK = (LayerSpec("conv", 32), LayerSpec("pool"), LayerSpec("conv", 64), LayerSpec("pool"),
                 LayerSpec("conv", 128), LayerSpec("pool"), LayerSpec("dense", 128), LayerSpec("dropout", 50))


class StackError(ValueError):
    """A layer stack that cannot work; the message names the layer and says why."""


def build_stack(specs, input_shape: tuple[int, int, int], num_classes: int) -> list[nn.Module]:
    """The layers for `specs` on (C, H, W) inputs, ending in a linear layer over the classes."""
    channels, height, width = input_shape
    features: int | None = None  # set once the stack is flattened for dense layers
    layers: list[nn.Module] = []
    for number, spec in enumerate(specs, start=1):
        where = f"Layer {number} ({spec.describe()})"
        if spec.kind not in LAYER_KINDS:
            raise StackError(f"{where}: unknown kind; choose one of {', '.join(LAYER_KINDS)}.")
        if spec.kind in ("conv", "dense") and spec.size < 1:
            raise StackError(f"{where}: needs at least 1 {SIZE_LABELS[spec.kind][:-1]}.")
        if spec.kind == "dropout" and not 0 <= spec.size < 100:
            raise StackError(f"{where}: the drop rate must be from 0 to 99%.")
        if spec.kind in ("conv", "pool") and features is not None:
            raise StackError(f"{where} comes after a dense layer: it needs a feature map. Move it above the dense "
                             "layers.")
        if spec.kind == "conv":
            if min(height, width) < 3:
                raise StackError(f"{where} gets a {width}×{height} feature map, which a 3×3 convolution would shrink "
                                 "below 1×1. Remove a layer above it or use larger images.")
            layers += [nn.Conv2d(channels, spec.size, 3), nn.ReLU()]
            channels, height, width = spec.size, height - 2, width - 2
        elif spec.kind == "pool":
            if min(height, width) < 2:
                raise StackError(f"{where} gets a {width}×{height} feature map, which pooling would shrink below "
                                 "1×1. Remove it or a layer above it.")
            layers.append(nn.MaxPool2d(2))
            height, width = height // 2, width // 2
        elif spec.kind == "batchnorm":
            layers.append(nn.BatchNorm2d(channels) if features is None else nn.BatchNorm1d(features))
        elif spec.kind == "dropout":
            layers.append(Dropout(spec.size / 100))
        else:  # dense
            if features is None:
                layers.append(nn.Flatten())
                features = channels * height * width
            layers += [nn.Linear(features, spec.size), nn.ReLU()]
            features = spec.size
    if features is None:
        layers.append(nn.Flatten())
        features = channels * height * width
    return [*layers, nn.Linear(features, num_classes)]
