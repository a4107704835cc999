"""Batched random affine augmentation on the training device (Keras ImageDataGenerator's geometric options)."""
import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F


@dataclass(frozen=True)
class Augmentation:
    """Ranges as in Keras' ImageDataGenerator; fill is always 'nearest' (edge pixels repeat)."""

    rotation_deg: float = 0.0  # rotate by U(-r, r) degrees
    width_shift: float = 0.0  # shift by U(-s, s) of the width
    height_shift: float = 0.0  # shift by U(-s, s) of the height
    shear_deg: float = 0.0  # shear angle U(-s, s) degrees (Keras' shear_range is in degrees)
    zoom: float = 0.0  # scale by U(1 - z, 1 + z)
    horizontal_flip: bool = False  # mirror half of the images

    @property
    def active(self) -> bool:
        """Whether this augmentation changes anything."""
        return any((self.rotation_deg, self.width_shift, self.height_shift, self.shear_deg, self.zoom,
                    self.horizontal_flip))


LIGHT = Augmentation(rotation_deg=5, width_shift=0.05, height_shift=0.05, zoom=0.05)  # the CLI default
# The article's ImageDataGenerator (§5.2). Keras reads shear_range=0.2 as 0.2 degrees: almost no shear at all.
ARTICLE = Augmentation(rotation_deg=40, width_shift=0.2, height_shift=0.2, shear_deg=0.2, zoom=0.2,
                       horizontal_flip=True)


def _uniform(n: int, bound: float, generator: torch.Generator) -> torch.Tensor:
    """n samples of U(-bound, bound) drawn on the CPU so results do not depend on the device."""
    return (torch.rand(n, generator=generator, dtype=torch.float32) * 2 - 1) * bound


def random_affine(images: torch.Tensor, aug: Augmentation, generator: torch.Generator) -> torch.Tensor:
    """Apply one random affine transform per image to a float batch (N, C, H, W); returns a new batch."""
    if not aug.active:
        return images
    n = images.shape[0]
    angle = _uniform(n, math.radians(aug.rotation_deg), generator)
    shear = _uniform(n, math.radians(aug.shear_deg), generator)
    scale = 1 + _uniform(n, aug.zoom, generator)
    # affine_grid works in [-1, 1] coordinates, so a shift of s of the width is 2*s.
    tx, ty = _uniform(n, 2 * aug.width_shift, generator), _uniform(n, 2 * aug.height_shift, generator)
    flip = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0) if aug.horizontal_flip else torch.ones(n)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # theta maps output coordinates to input coordinates: rotation @ shear, divided by zoom, then flip in x.
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = cos * flip / scale
    theta[:, 0, 1] = (-sin + cos * torch.tan(shear)) / scale
    theta[:, 1, 0] = sin * flip / scale
    theta[:, 1, 1] = (cos + sin * torch.tan(shear)) / scale
    theta[:, 0, 2], theta[:, 1, 2] = tx, ty
    theta = theta.to(images.device, images.dtype)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def augmented_versions(image: torch.Tensor, aug: Augmentation, count: int, generator: torch.Generator) -> torch.Tensor:
    """`count` random versions of one uint8 image (C, H, W), as the training loop would see them: uint8 (count, C,
    H, W)."""
    batch = image.unsqueeze(0).float().div(255).repeat(count, 1, 1, 1)  # (count, C, H, W)
    return random_affine(batch, aug, generator).mul(255).round().clamp(0, 255).to(torch.uint8)
