"""Look inside a CNN: first-layer filters, feature maps, gradient norms, dead ReLUs, and where it looked (Grad-CAM,
saliency)."""
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from dlplay.data import ImageSet
from dlplay.device import DeviceInfo
from dlplay.models import evaluating


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
    try:
        with evaluating(model):
            model(_as_input(image.unsqueeze(0), device))
    finally:
        for hook in hooks:
            hook.remove()
    return captured


def gradient_norms(model: nn.Module, batch: ImageSet, device: DeviceInfo) -> list[LayerValue]:
    """L2 norm of the cross-entropy gradient of each conv and linear layer's weights on one batch (eval mode)."""
    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with evaluating(model):
        loss = F.cross_entropy(model(_as_input(batch.images, device)), batch.labels.to(device.device))
        grads = torch.autograd.grad(loss, [m.weight for _, m in layers])
    return [LayerValue(f"{name} {type(m).__name__}", float(g.norm()))
            for (name, m), g in zip(layers, grads, strict=True)]


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
    try:
        with evaluating(model):
            for chunk in images.split(256):
                model(_as_input(chunk, device))
    finally:
        for hook in hooks:
            hook.remove()
    return [LayerValue(f"{name} ReLU", 1.0 - float(alive.float().mean())) for name, alive in ever_active.items()]


def _last_conv(model: nn.Module) -> nn.Module:
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("Grad-CAM needs a model with at least one convolution")
    return convs[-1]


@torch.enable_grad()
def grad_cam(model: nn.Module, batch: torch.Tensor, target: int) -> np.ndarray:
    """Grad-CAM (Selvaraju et al. 2017) at the last conv layer for class `target`: (H, W) in 0..1 at input size."""
    layer, saved = _last_conv(model), {}
    forward = layer.register_forward_hook(lambda _m, _i, out: saved.setdefault("maps", out))
    try:
        with evaluating(model):
            score = model(batch.to(next(model.parameters()).device))[0, target]
        maps = saved["maps"]  # (1, K, h, w)
        grads, = torch.autograd.grad(score, maps)
    finally:
        forward.remove()
    weights = grads.mean(dim=(2, 3), keepdim=True)  # (1, K, 1, 1): how much each map matters for the class
    cam = torch.relu((weights * maps).sum(1, keepdim=True)).detach()  # (1, 1, h, w)
    cam = nn.functional.interpolate(cam, size=batch.shape[-2:], mode="bilinear", align_corners=False)[0, 0]
    return (cam / cam.max().clamp_min(1e-12)).cpu().numpy()


@torch.enable_grad()
def saliency(model: nn.Module, batch: torch.Tensor, target: int) -> np.ndarray:
    """Gradient saliency: |d score / d pixel|, the largest over colour channels, scaled to 0..1: (H, W)."""
    x = batch.to(next(model.parameters()).device).clone().requires_grad_(True)
    with evaluating(model):
        grad, = torch.autograd.grad(model(x)[0, target], x)
    heat = grad.abs().amax(dim=1)[0]
    return (heat / heat.max().clamp_min(1e-12)).cpu().numpy()
