"""Classify one picture with a trained model: the preprocessing shown step by step, top-k, heat-map colours."""
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import nn

from dlplay.checkpoint import ModelCard, load_model
from dlplay.models import evaluating

ASSETS = Path(__file__).with_name("assets")
BUNDLED_MODEL = ASSETS / "digits-small-cnn.safetensors"
SAMPLE_PHOTOS = ASSETS / "photos"
# A colour map from dark blue through red to yellow, for heat-maps: anchors at 0, 0.35, 0.7 and 1.
HEAT_ANCHORS = np.array([[0, 0, 80], [160, 0, 120], [240, 60, 30], [255, 230, 80]], dtype=np.float64)


@dataclass(frozen=True)
class Preprocessed:
    """What the model is fed, and how the picture got there."""

    steps: list[tuple[str, np.ndarray]]  # (what was done, the picture after it) for display
    batch: torch.Tensor  # (1, C, H, W) float 0..1, the model's input
    inverted: bool  # light paper with dark ink was turned into light ink on dark, like MNIST


def load_bundled_model() -> tuple[nn.Module, ModelCard]:
    """The pre-trained digit model shipped in the package (built by scripts/build_bundled_model.py)."""
    return load_model(BUNDLED_MODEL)


DIGIT_BOX = 20  # MNIST's digits fill a 20×20 box inside the 28×28 image
INK_THRESHOLD = 0.25  # a pixel is ink when it is this bright (after inversion) relative to the brightest


def is_digit_model(card: ModelCard) -> bool:
    """A model trained on MNIST-like digits: one channel, 28×28, light ink on a mostly dark background."""
    return card.input_shape == (1, 28, 28) and card.mean[0] < 0.5


def centre_digit(ink: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """MNIST's own normalisation of a light-on-dark (H, W) float 0..1 picture: crop to the ink, fit it in a 20×20
    box keeping its shape, then centre its centre of mass in 28×28. Returns each step's picture (0..1); a picture
    with no ink comes back as it was, resized."""
    rows, cols = np.nonzero(ink >= INK_THRESHOLD * max(float(ink.max()), 1e-6))
    if ink.max() <= 0 or not len(rows):
        return [("no ink found: resized as it is", _resized(ink, 28, 28))]
    cropped = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    scale = DIGIT_BOX / max(cropped.shape)
    height, width = (max(1, round(n * scale)) for n in cropped.shape)
    fitted = _resized(cropped, width, height)
    weights = fitted.sum()
    cy = (fitted.sum(axis=1) * np.arange(height)).sum() / weights  # centre of mass in the fitted box
    cx = (fitted.sum(axis=0) * np.arange(width)).sum() / weights
    canvas = np.zeros((28, 28), dtype=np.float32)
    top, left = int(round(13.5 - cy)), int(round(13.5 - cx))
    top, left = min(max(top, 0), 28 - height), min(max(left, 0), 28 - width)
    canvas[top:top + height, left:left + width] = fitted
    return [("cropped to the ink", cropped), (f"fitted into a {DIGIT_BOX}×{DIGIT_BOX} box, keeping its shape", fitted),
            ("centred by its centre of mass in 28×28, as MNIST's digits are", canvas)]


def _resized(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """A float 0..1 (H, W) picture resized with antialiasing."""
    picture = Image.fromarray(pixels.astype(np.float32), mode="F").resize((width, height), Image.Resampling.LANCZOS)
    return np.clip(np.asarray(picture), 0, 1)


def preprocess(image: Image.Image, card: ModelCard) -> Preprocessed:
    """Fit an 'L' or 'RGB' picture to the model's input. Digit models (trained on light-on-dark 28×28 digits)
    get MNIST's normalisation: dark-on-light pictures inverted, the ink cropped, fitted in 20×20 and centred by its
    centre of mass; other models get the picture cropped to their aspect and resized."""
    channels, height, width = card.input_shape
    steps = [("your picture", np.asarray(image))]
    if is_digit_model(card):
        gray = np.asarray(image.convert("L"), dtype=np.float32) / 255
        if image.mode != "L":
            steps.append(("converted to grayscale", (gray * 255).astype(np.uint8)))
        inverted = gray.mean() > 0.5  # mostly light: dark ink on light paper
        if inverted:
            gray = 1.0 - gray
            steps.append(("inverted: the model learned light ink on a dark background", (gray * 255).astype(np.uint8)))
        centred = centre_digit(gray)
        steps += [(text, (pixels * 255).round().astype(np.uint8)) for text, pixels in centred]
        batch = torch.from_numpy(np.ascontiguousarray(centred[-1][1], dtype=np.float32)).view(1, 1, 28, 28)
        return Preprocessed(steps, batch, inverted)
    fitted = ImageOps.fit(image, (width, height), method=Image.Resampling.BILINEAR)
    steps.append((f"cropped to the centre and resized to {width}×{height}", np.asarray(fitted)))
    if channels == 1 and fitted.mode != "L":
        fitted = fitted.convert("L")
        steps.append(("converted to grayscale", np.asarray(fitted)))
    elif channels == 3 and fitted.mode != "RGB":
        fitted = fitted.convert("RGB")
        steps.append(("converted to colour (RGB)", np.asarray(fitted)))
    pixels = np.asarray(fitted, dtype=np.float32) / 255
    # The training images were mostly dark (mean below 0.5): a mostly light picture is dark ink on light paper.
    inverted = channels == 1 and card.mean[0] < 0.5 and pixels.mean() > 0.5
    if inverted:
        pixels = 1.0 - pixels
        steps.append(("inverted: the model learned light ink on a dark background", (pixels * 255).astype(np.uint8)))
    batch = torch.from_numpy(pixels.reshape(height, width, channels)).permute(2, 0, 1).unsqueeze(0).contiguous()
    return Preprocessed(steps, batch, inverted)


def as_uint8(x: torch.Tensor) -> torch.Tensor:
    """One 0..1 image, (C, H, W) or a batch of one (1, C, H, W), as a uint8 (C, H, W) tensor on the CPU."""
    image = x[0] if x.ndim == 4 else x
    return (image.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8)


def to_picture(x: torch.Tensor) -> np.ndarray:
    """One 0..1 image, (C, H, W) or a batch of one, as a (H, W) or (H, W, 3) uint8 picture for display."""
    return as_uint8(x).permute(1, 2, 0).squeeze(-1).numpy()


@torch.no_grad()
def probabilities(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """Softmax over the classes for each image of a (N, C, H, W) 0..1 batch, in eval mode."""
    with evaluating(model):
        return model(batch.to(next(model.parameters()).device)).float().softmax(1).cpu()


def top_k(probs: torch.Tensor, class_names, k: int) -> list[tuple[str, float]]:
    """The k most probable classes of one probability vector, most probable first."""
    values, indices = probs.topk(min(k, len(class_names)))
    return [(class_names[i], float(v)) for v, i in zip(values.tolist(), indices.tolist(), strict=True)]


def colorize(heat: np.ndarray) -> np.ndarray:
    """(H, W) values in 0..1 -> (H, W, 3) uint8 colours from dark blue (0) to yellow (1)."""
    positions = np.linspace(0, 1, len(HEAT_ANCHORS))
    rgb = [np.interp(heat, positions, HEAT_ANCHORS[:, c]) for c in range(3)]
    return np.stack(rgb, axis=-1).round().astype(np.uint8)


def overlay(picture: np.ndarray, heat: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a heat-map over a (H, W) or (H, W, 3) uint8 picture of the same size."""
    base = np.repeat(picture[..., None], 3, axis=2) if picture.ndim == 2 else picture
    return (base * (1 - alpha) + colorize(heat) * alpha).round().astype(np.uint8)

# The sample photos come from scikit-image's data folder; licences as stated there.
SAMPLE_CREDITS = {
    "astronaut.png": "Eileen Collins, NASA portrait (public domain, NASA)",
    "chelsea.png": "Chelsea the cat (CC0, photo by Stefan van der Walt)",
    "coffee.png": "A cup of coffee (CC0, photo by Rachel Michetti)",
    "horse.png": "A horse silhouette (public domain)",
    "rocket.jpg": "A Falcon 9 rocket on the pad (public domain, SpaceX)",
}
SAMPLE_NAMES = {  # short enough for a picker
    "astronaut.png": "Eileen Collins, astronaut", "chelsea.png": "Chelsea the cat", "coffee.png": "A cup of coffee",
    "horse.png": "A horse", "rocket.jpg": "A Falcon 9 rocket",
}
