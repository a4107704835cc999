"""Look inside a CNN: first-layer filters, feature maps, per-layer gradient norms and dead ReLUs."""
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .data import ImageSet
from .device import DeviceInfo


@dataclass(frozen=True)
class LayerValue:
    """A number (or a tensor) attached to one named layer."""

    name: str
    value: float


def _as_input(images: torch.Tensor, device: DeviceInfo) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float 0..1 on the device."""
    return images.to(device.device).float().div_(255)


def first_layer_filters(model: nn.Module) -> torch.Tensor:
    """The first convolution's weights (out_channels, in_channels, k, k), on the CPU."""
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    return conv.weight.detach().float().cpu().clone()


def to_uint8(maps: torch.Tensor) -> torch.Tensor:
    """Scale each map of (N, C, H, W) to 0..255 on its own (min to 0, max to 255) for display."""
    flat = maps.flatten(1)
    low, high = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
    scaled = (flat - low) / (high - low).clamp_min(1e-12)
    return (scaled * 255).round().to(torch.uint8).view_as(maps)


@torch.no_grad()
def feature_maps(model: nn.Module, image: torch.Tensor, device: DeviceInfo) -> list[tuple[str, torch.Tensor]]:
    """What each convolutional block outputs for one uint8 image (C, H, W): (layer name, maps (C', H', W'))."""
    captured: list[tuple[str, torch.Tensor]] = []
    hooks = [module.register_forward_hook(
                 lambda m, _inp, out, name=name: captured.append((name, out[0].float().cpu())) if out.ndim == 4
                 else None)
             for name, module in model.named_modules() if isinstance(module, nn.ReLU)]
    was_training = model.training
    try:
        model.eval()
        model(_as_input(image.unsqueeze(0), device))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return captured


def gradient_norms(model: nn.Module, batch: ImageSet, device: DeviceInfo) -> list[LayerValue]:
    """L2 norm of the cross-entropy gradient of each conv and linear layer's weights on one batch (eval mode)."""
    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    try:
        model.eval()
        loss = F.cross_entropy(model(_as_input(batch.images, device)), batch.labels.to(device.device))
        grads = torch.autograd.grad(loss, [m.weight for _, m in layers])
    finally:
        model.train(was_training)
    return [LayerValue(f"{name} {type(m).__name__}", float(g.norm())) for (name, m), g in zip(layers, grads, strict=True)]


@torch.no_grad()
def dead_relus(model: nn.Module, images: torch.Tensor, device: DeviceInfo) -> list[LayerValue]:
    """For each ReLU, the fraction of its units (channels for conv maps) that output 0 for every image given."""
    ever_active: dict[str, torch.Tensor] = {}

    def record(name):
        def hook(_module, _inp, out):
            alive = out > 0
            alive = alive.any(dim=(0, 2, 3)) if out.ndim == 4 else alive.any(dim=0)  # per channel / per unit
            ever_active[name] = ever_active[name] | alive if name in ever_active else alive
        return hook

    hooks = [m.register_forward_hook(record(name)) for name, m in model.named_modules() if isinstance(m, nn.ReLU)]
    was_training = model.training
    try:
        model.eval()
        for chunk in images.split(256):
            model(_as_input(chunk, device))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return [LayerValue(f"{name} ReLU", 1.0 - float(alive.float().mean())) for name, alive in ever_active.items()]
