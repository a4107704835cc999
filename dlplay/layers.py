"""Layers of our own that the registered models, the layer builder and the playground build with."""
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F


class Normalize(nn.Module):
    """Subtract the per-channel mean and divide by the std; inputs are images scaled to 0..1."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


class Upsample(nn.Module):
    """Resize small images up to the size a stack of valid convolutions needs (like Keras' target_size)."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)

    def extra_repr(self) -> str:
        return f"size={self.size}"


class Dropout(nn.Dropout):
    """nn.Dropout that can draw its masks from its own generator.

    The global torch RNG is shared by every thread of the process: a page building a model for its summary table
    while another session trains would change that run's dropout masks. With `generator` set (the Trainer sets it),
    the masks depend only on the run's seed. Masks are drawn on the generator's device: the Trainer gives a run on
    a GPU a generator there, so that no mask crosses from the CPU at each forward pass.
    """

    generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or self.generator is None:
            return super().forward(x)
        keep = torch.rand(x.shape, generator=self.generator, device=self.generator.device) >= self.p
        return x * keep.to(x.device, x.dtype) / (1 - self.p)
