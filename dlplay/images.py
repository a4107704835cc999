"""The one safe way dlplay decodes an image file: caps, a format allow-list, EXIF, every mode to RGB or L."""
import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from dlplay.limits import limits

ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")
MAX_BYTES = 25 * 1024 * 1024
MIN_SIDE = 8
# Peak bytes per pixel while an image of each mode is decoded and made L or RGB (to_standard_mode): the decoded
# pixels plus the copies its conversion holds at once. A 14 KB 1-bit PNG can declare 49 megapixels: the cost
# follows the mode and the pixels, never the file's size.
DECODE_BYTES_PER_PIXEL = {"1": 2, "L": 1, "P": 4, "RGB": 3, "CMYK": 7, "YCbCr": 6, "LAB": 6, "HSV": 6,
                          "I;16": 11, "I;16B": 11, "I;16L": 11, "I": 13, "F": 13}
TRANSPARENT_BYTES_PER_PIXEL = 19  # RGBA, LA, PA or a transparent palette: the image, RGBA, a canvas, composite, RGB
BACKGROUND = 255  # transparent pixels are shown on white paper


class ImageRejected(ValueError):
    """A file that is not a usable image; the message is one plain sentence for the user."""


def _flatten_alpha(image: Image.Image) -> Image.Image:
    """Composite an image with transparency onto white; keep grayscale as L and colour as RGB."""
    gray = image.mode in ("LA", "La") or (image.mode == "P" and image.palette and image.palette.mode == "L")
    rgba = image.convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, (BACKGROUND,) * 4)
    flat = Image.alpha_composite(canvas, rgba).convert("RGB")
    return flat.convert("L") if gray else flat


def _to_8bit(image: Image.Image) -> Image.Image:
    """Map 16/32-bit integer and float grayscale to 0..255, keeping the tonal range (65535 -> 255)."""
    values = np.asarray(image, dtype=np.float64)
    top = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
    if image.mode == "F" and values.max() <= 1.0:
        top = 1.0
    return Image.fromarray(np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")


def to_standard_mode(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 'L' (grayscale) or 'RGB', flattening transparency onto white."""
    if image.mode in ("L", "RGB"):
        return image
    if image.mode == "1":
        return image.convert("L")
    if image.mode in ("RGBA", "LA", "La", "RGBa", "PA") or "transparency" in image.info:
        return _flatten_alpha(image)
    if image.mode == "P":
        return image.convert("RGB")
    if image.mode.startswith("I") or image.mode == "F":
        return _to_8bit(image)
    return image.convert("RGB")  # CMYK, YCbCr, LAB, HSV


def decode_cost(mode: str, info: dict, pixels: int) -> int:
    """Bytes that decoding and converting `pixels` pixels of this mode takes at its peak."""
    transparent = mode in ("RGBA", "LA", "La", "RGBa", "PA") or "transparency" in info
    return pixels * (TRANSPARENT_BYTES_PER_PIXEL if transparent else DECODE_BYTES_PER_PIXEL.get(mode, 16))


def _draft(image: Image.Image, draft_size: tuple[int, int] | None) -> None:
    """Let a JPEG decode at a reduced scale near `draft_size` (much faster); other formats decode in full."""
    if draft_size and image.format == "JPEG":
        image.draft("RGB" if image.mode != "L" else "L", draft_size)


def decoded_pixels(path: Path, draft_size: tuple[int, int] | None = None, max_pixels: int | None = None) -> int:
    """The pixels an image file decodes to (JPEG's reduced decode for `draft_size` counted), read from its header
    alone; 0 for a file that decode_image would refuse without decoding."""
    max_pixels = max_pixels or int(limits().image_megapixels * 1e6)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path, formats=ALLOWED_FORMATS) as image:
                if image.size[0] * image.size[1] > max_pixels:
                    return 0
                _draft(image, draft_size)
                return image.size[0] * image.size[1]
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError):
        return 0


def decode_image(data: bytes, *, max_bytes: int = MAX_BYTES, max_pixels: int | None = None,
                 max_decoded_mb: float | None = None, min_side: int = MIN_SIDE,
                 draft_size: tuple[int, int] | None = None) -> Image.Image:
    """Decode image bytes safely into an upright 'L' or 'RGB' Pillow image, or raise ImageRejected. The pixels and
    the memory the decoded mode needs are checked against the limits (dlplay.limits) from the header first."""
    max_pixels = max_pixels or int(limits().image_megapixels * 1e6)
    max_decoded = (max_decoded_mb or limits().image_decoded_mb) * 1e6
    if not data:
        raise ImageRejected("The file is empty.")
    if len(data) > max_bytes:
        raise ImageRejected(f"The file is {len(data) / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise ImageRejected(f"The image declares too many pixels; the limit is {max_pixels / 1e6:.0f} "
                            "megapixels.") from None
    except UnidentifiedImageError:
        raise ImageRejected("This is not an image dlplay can read (use PNG, JPEG, WebP, BMP or GIF).") from None
    except (OSError, SyntaxError, ValueError, EOFError):  # a recognised format whose header is cut or broken
        raise ImageRejected("The image file is truncated or corrupt.") from None
    width, height = image.size
    if width * height > max_pixels:
        raise ImageRejected(f"The image declares {width}×{height} pixels; the limit is {max_pixels / 1e6:.0f} "
                            "megapixels.")
    if min(width, height) < min_side:
        raise ImageRejected(f"The image is {width}×{height} pixels; each side needs at least {min_side}.")
    _draft(image, draft_size)
    cost = decode_cost(image.mode, image.info, image.size[0] * image.size[1])
    if cost > max_decoded:
        raise ImageRejected(f"Decoding this {width}×{height} image ({image.mode}) would take {cost / 1e6:,.0f} MB of "
                            f"memory; the limit is {max_decoded / 1e6:,.0f} MB.")
    try:
        image.seek(0)  # the first frame of an animation
        image.load()
        return to_standard_mode(ImageOps.exif_transpose(image))
    except (OSError, SyntaxError, ValueError, EOFError):
        raise ImageRejected("The image file is truncated or corrupt.") from None
