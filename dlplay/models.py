"""The article's CNNs and two small digit CNNs, for any input shape and class count, with a Keras-style summary."""
import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from dlplay.builder import build_stack
from dlplay.layers import Dropout, Normalize, Upsample


@contextlib.contextmanager
def evaluating(model: nn.Module):
    """Put a model in eval mode for a block, and back in the mode it was in afterwards (even on an error)."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def set_dropout(model: nn.Module, p: float) -> None:
    """Set the drop probability of every dropout layer (0 turns dropout off)."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = p


def init_weights(model: nn.Module, generator: torch.Generator) -> None:
    """PyTorch's default initialisation of every conv and linear layer, drawn from `generator`."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5), generator=generator)
            if module.bias is not None:
                bound = 1 / math.sqrt(module.weight[0].numel())  # 1 / sqrt(fan_in)
                nn.init.uniform_(module.bias, -bound, bound, generator=generator)


def _valid_conv_blocks(in_channels: int, widths: Sequence[int]) -> list[nn.Module]:
    """Keras-style blocks: Conv2D(w, 3x3, 'valid', relu) then MaxPooling2D(2)."""
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Conv2d(in_channels, width, 3), nn.ReLU(), nn.MaxPool2d(2)]
        in_channels = width
    return layers


def _min_size_for_valid_blocks(blocks: int) -> int:
    """Smallest square input for which `blocks` (3x3 valid conv + 2x2 pool) leave at least a 1x1 map."""
    size = 1
    for _ in range(blocks):
        size = size * 2 + 2
    return size


def _features_then_head(features: list[nn.Module], head: Callable[[int], list[nn.Module]],
                        input_shape) -> nn.Sequential:
    """Join conv features and a dense head whose first layer's width is the flattened feature size."""
    trunk = nn.Sequential(*features, nn.Flatten()).eval()  # eval: batch-norm accepts a batch of one
    try:
        with torch.no_grad():
            flat = trunk(torch.zeros(1, *input_shape)).shape[1]
    except RuntimeError as err:
        raise ValueError(f"images of shape {tuple(input_shape)} are too small for this model") from err
    return nn.Sequential(*features, nn.Flatten(), *head(flat))


def _article_cnn(input_shape, widths, head) -> list[nn.Module]:
    """Valid-convolution CNN; inputs smaller than the stack allows are first upsampled to its minimum size."""
    channels, height, width = input_shape
    need = _min_size_for_valid_blocks(len(widths))
    resize = [Upsample(need)] if min(height, width) < need else []
    shape = (channels, max(height, need), max(width, need)) if resize else input_shape
    body = _features_then_head(_valid_conv_blocks(channels, widths), head, shape)
    return [*resize, *body]


def article_cifar10_cnn(input_shape, num_classes: int) -> list[nn.Module]:
    """§5.3: Conv32-Pool-Conv64-Pool-Conv128-Pool-Flatten-Dense128-Dropout(0.5)-Dense(classes)."""
    return _article_cnn(input_shape, (32, 64, 128), lambda flat: [
        nn.Linear(flat, 128), nn.ReLU(), Dropout(0.5), nn.Linear(128, num_classes)])


def article_150_cnn(input_shape, num_classes: int) -> list[nn.Module]:
    """§5.2: four Conv-Pool blocks (32-64-128-128), Flatten, Dense512, Dense(classes) (softmax is in the loss)."""
    return _article_cnn(input_shape, (32, 64, 128, 128), lambda flat: [
        nn.Linear(flat, 512), nn.ReLU(), nn.Linear(512, num_classes)])


def _dense128_head(num_classes: int) -> Callable[[int], list[nn.Module]]:
    """The small CNNs' head on `flat` features: Dense128, ReLU, Dropout 0.3, Dense(classes)."""

    def head(flat: int) -> list[nn.Module]:
        return [nn.Linear(flat, 128), nn.ReLU(), Dropout(0.3), nn.Linear(128, num_classes)]

    return head


def small_cnn(input_shape, num_classes: int) -> list[nn.Module]:
    """A fast, accurate digit CNN: three same-padded Conv-BN-ReLU-Pool blocks (16-32-64), Dense128, Dropout."""
    channels = input_shape[0]

    def block(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]

    features = [*block(channels, 16), *block(16, 32), *block(32, 64)]
    return list(_features_then_head(features, _dense128_head(num_classes), input_shape))


def strided_cnn(input_shape, num_classes: int) -> list[nn.Module]:
    """The CLI's default: Conv16-Pool-BN-ReLU, then two stride-2 Conv-BN-ReLU blocks (32, 64), Dense128, Dropout.

    A stride-2 convolution downsamples as it computes, at a quarter of the cost of a convolution followed by a
    2x2 max-pool (the All-Convolutional Net's idea), so twice as many epochs fit in the time small-cnn takes. Pooling
    before batch-norm and ReLU computes nearly the same function (max commutes with ReLU and with an increasing
    per-channel scaling) on a quarter of the values."""
    channels = input_shape[0]

    def strided(cin: int, cout: int) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    features = [nn.Conv2d(channels, 16, 3, padding=1, bias=False), nn.MaxPool2d(2), nn.BatchNorm2d(16), nn.ReLU(),
                *strided(16, 32), *strided(32, 64)]
    return list(_features_then_head(features, _dense128_head(num_classes), input_shape))


@dataclass(frozen=True)
class ModelSpec:
    """A registered architecture: what it is and how to build its layers."""

    description: str
    layers: Callable[[tuple[int, int, int], int], list[nn.Module]]
    own_normalisation: bool = False  # the layers normalise 0..1 inputs themselves (as pre-trained weights expect)


IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
IMAGENET_MIN_SIZE = 64  # smaller images are upsampled: MobileNetV3 halves them five times


class ToRGB(nn.Module):
    """Grey images repeated into three channels (colour ones pass through), for networks made for RGB."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def mobilenet_v3_small(input_shape, num_classes: int) -> list[nn.Module]:
    """torchvision's MobileNetV3-small behind the input its ImageNet weights expect: upsampled to at least 64 px,
    grey made RGB, ImageNet's mean and std; its dropout is dlplay's, which a Trainer seeds."""
    from torchvision.models import mobilenet_v3_small as torchvision_mobilenet

    _, height, width = input_shape
    resize = [Upsample(IMAGENET_MIN_SIZE)] if min(height, width) < IMAGENET_MIN_SIZE else []
    network = torchvision_mobilenet(num_classes=num_classes)
    for name, module in list(network.named_modules()):
        if type(module) is nn.Dropout:  # ours draws from the run's generator, not the process-wide (CUDA) RNG
            parent, _, child = name.rpartition(".")
            network.get_submodule(parent).register_module(child, Dropout(module.p, module.inplace))
    return [*resize, ToRGB(), Normalize(IMAGENET_MEAN, IMAGENET_STD), network]


MODELS: dict[str, ModelSpec] = {
    "small-cnn": ModelSpec("Small CNN (3 conv blocks + batch-norm), fast on CPU", small_cnn),
    "strided-cnn": ModelSpec("Small CNN that downsamples with stride-2 convolutions: twice as fast, the CLI's default",
                             strided_cnn),
    "article-cifar10": ModelSpec("The article's CIFAR-10 CNN (§5.3): 3 conv blocks, Dense128, Dropout",
                                 article_cifar10_cnn),
    "article-150": ModelSpec("The article's 150x150 CNN (§5.2): 4 conv blocks, Dense512", article_150_cnn),
    "mobilenet-v3-small": ModelSpec("torchvision's MobileNetV3-small (1.5 M parameters for 10 classes), for "
                                    "ImageNet weights", mobilenet_v3_small, own_normalisation=True),
}
CUSTOM = "custom"  # a stack of LayerSpecs from the builder


def build_model(name: str, input_shape: tuple[int, int, int], num_classes: int,
                mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                seed: int = 0, stack: Sequence | None = None) -> nn.Sequential:
    """Build a registered model (or, for name 'custom', the builder's `stack` of LayerSpecs) taking (N, C, H, W)
    images in 0..1 and returning class logits; weights drawn from `seed`."""
    if name == CUSTOM:
        layers = build_stack(stack or (), tuple(input_shape), num_classes)
    elif name in MODELS:
        layers = MODELS[name].layers(tuple(input_shape), num_classes)
        if MODELS[name].own_normalisation:
            mean, std = (0.0,) * input_shape[0], (1.0,) * input_shape[0]
    else:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}, {CUSTOM}")
    channels = input_shape[0]
    mean = tuple(mean) if mean is not None else (0.5,) * channels
    std = tuple(std) if std is not None else (0.5,) * channels
    model = nn.Sequential(Normalize(mean, std), *layers)
    init_weights(model, torch.Generator().manual_seed(seed))
    return model


@dataclass(frozen=True)
class LayerRow:
    """One line of a model summary."""

    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int


def summary(model: nn.Module, input_shape: tuple[int, int, int]) -> list[LayerRow]:
    """Like Keras model.summary(): each leaf layer with its output shape (batch dim omitted) and parameter count."""
    rows: list[LayerRow] = []
    hooks = [
        module.register_forward_hook(
            lambda m, _inp, out, name=name: rows.append(
                LayerRow(name, type(m).__name__, tuple(out.shape[1:]), sum(p.numel() for p in m.parameters())))
        )
        for name, module in model.named_modules() if not list(module.children())
    ]
    try:
        with evaluating(model), torch.no_grad():
            model(torch.zeros(1, *input_shape, device=next(model.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
    return rows


def format_summary(rows: Sequence[LayerRow]) -> str:
    """The summary as a fixed-width text table with the total parameter count."""
    lines = [f"{'Layer':<24}{'Output shape':<20}{'Params':>10}", "-" * 54]
    lines += [f"{f'{r.name} ({r.kind})':<24}{str(r.output_shape):<20}{r.params:>10,}" for r in rows]
    lines += ["-" * 54, f"Total params: {sum(r.params for r in rows):,}"]
    return "\n".join(lines)
