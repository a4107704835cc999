"""Batched random affine augmentation on the training device (Keras ImageDataGenerator's geometric options)."""
import functools
import math
from dataclasses import dataclass

import numpy as np
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


def affine_matrices(n: int, aug: Augmentation, generator: torch.Generator) -> torch.Tensor:
    """n random affine matrices (n, 2, 3) within the augmentation's ranges, in affine_grid's convention (they map
    output coordinates in [-1, 1] to input coordinates). Drawn from the run's generator on the CPU in one call, so
    results do not depend on the device or on which options are on; the arithmetic on these few numbers is done in
    NumPy, where it costs microseconds instead of a tensor operation's overhead each."""
    u = torch.rand(6, n, generator=generator, dtype=torch.float64).numpy() * 2 - 1  # U(-1, 1)
    angle, shear = u[0] * math.radians(aug.rotation_deg), u[1] * math.radians(aug.shear_deg)
    scale = 1 + u[2] * aug.zoom
    # affine_grid works in [-1, 1] coordinates, so a shift of s of the width is 2*s.
    tx, ty = u[3] * 2 * aug.width_shift, u[4] * 2 * aug.height_shift
    flip = np.where(u[5] < 0, -1.0, 1.0) if aug.horizontal_flip else np.ones(n)
    cos, sin, tan = np.cos(angle), np.sin(angle), np.tan(shear)
    # rotation @ shear, divided by zoom, then flip in x.
    rows = [cos * flip / scale, (-sin + cos * tan) / scale, tx, sin * flip / scale, (cos + sin * tan) / scale, ty]
    return torch.from_numpy(np.stack(rows, 1).reshape(n, 2, 3).astype(np.float32))


@functools.cache
def _pixel_centres(height: int, width: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(3, height * width): each pixel centre's x and y in [-1, 1] (align_corners=False), and a 1."""
    xs = (torch.arange(width, dtype=torch.float64) * 2 + 1) / width - 1
    ys = (torch.arange(height, dtype=torch.float64) * 2 + 1) / height - 1
    return torch.stack((xs.repeat(height), ys.repeat_interleave(width), torch.ones(height * width))).to(device, dtype)


def forget_device_buffers() -> None:
    """Drop the pixel-centre tables kept per device (after a run has left a GPU, so its memory can go back)."""
    _pixel_centres.cache_clear()


def sampling_grid(theta: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """F.affine_grid(theta, (N, C, height, width), align_corners=False) as one 2-D matrix product of all the
    matrices with the pixel centres: the same grid at a seventh of the cost on small images (affine_grid's batched
    product of tiny matrices costs more than the sampling itself)."""
    centres = _pixel_centres(height, width, theta.device, theta.dtype)
    return (theta.reshape(-1, 3) @ centres).view(-1, 2, height, width).permute(0, 2, 3, 1)


def random_affine(images: torch.Tensor, aug: Augmentation, generator: torch.Generator) -> torch.Tensor:
    """Apply one random affine transform per image to a float batch (N, C, H, W); returns a new batch."""
    if not aug.active:
        return images
    n, _, height, width = images.shape
    theta = affine_matrices(n, aug, generator)
    if images.device.type == "cuda":  # from pinned memory the copy is queued, not waited for
        theta = theta.pin_memory().to(images.device, non_blocking=True)
    theta = theta.to(images.device, images.dtype)
    return F.grid_sample(images, sampling_grid(theta, height, width), mode="bilinear", padding_mode="border",
                         align_corners=False)


def augmented_versions(image: torch.Tensor, aug: Augmentation, count: int, generator: torch.Generator) -> torch.Tensor:
    """`count` random versions of one uint8 image (C, H, W), as the training loop would see them: uint8 (count, C,
    H, W)."""
    batch = image.unsqueeze(0).float().div(255).repeat(count, 1, 1, 1)  # (count, C, H, W)
    return random_affine(batch, aug, generator).mul(255).round().clamp(0, 255).to(torch.uint8)
