"""What one input may cost the server, in one place: each limit is checked against a cost worked out from the
input's header before anything large is read, decoded or built, and each can be raised by the operator through its
DLPLAY_* environment variable (README: "Running a class")."""
import os
from dataclasses import dataclass, fields
from functools import cache


class SettingError(ValueError):
    """An environment variable holds a value dlplay cannot use; the message says which and why."""


def number_from_env(env, name: str, kind, default, minimum):
    """The number in environment variable `name` (`default` when unset or empty); a bad value raises SettingError."""
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        raise SettingError(f"{name}={text!r} is not {'a whole number' if kind is int else 'a number'}") from None
    if value < minimum:
        raise SettingError(f"{name} must be at least {minimum}, got {text}")
    return value


@dataclass(frozen=True)
class Limits:
    """The most one input may cost; each field's comment names its environment variable (Limits.variable)."""

    model_parameters: int = 50_000_000  # DLPLAY_MAX_MODEL_PARAMETERS: a model file's weights (the article's: 3.5 M)
    model_activations: int = 25_000_000  # DLPLAY_MAX_MODEL_ACTIVATIONS: values one image makes flow through it
    image_megapixels: float = 50.0  # DLPLAY_MAX_IMAGE_MEGAPIXELS: a 48-megapixel phone photo fits
    image_decoded_mb: float = 400.0  # DLPLAY_MAX_IMAGE_DECODED_MB: memory a decode may take (pixels × bytes/pixel)
    csv_rows: int = 5_000  # DLPLAY_MAX_CSV_ROWS: points in a playground CSV
    kernel_chars: int = 2_000  # DLPLAY_MAX_KERNEL_CHARS: a typed convolution kernel (7×7 numbers need ~400)
    playground_steps: int = 2_000  # DLPLAY_MAX_PLAYGROUND_STEPS: optimizer steps in one live playground update
    zip_megapixels: float = 1_000.0  # DLPLAY_MAX_ZIP_MEGAPIXELS: what a zip's images decode to, all together
    zip_seconds: float = 120.0  # DLPLAY_MAX_ZIP_SECONDS: reading a zip's images, all together
    zip_dataset_mb: float = 256.0  # DLPLAY_MAX_ZIP_DATASET_MB: the memory a zip's images take once resized
    datasets_per_browser: int = 2  # DLPLAY_MAX_DATASETS_PER_BROWSER: imported zips one browser's tabs hold at once

    @staticmethod
    def variable(field_name: str) -> str:
        """The environment variable that sets a field."""
        return "DLPLAY_MAX_" + field_name.upper()

    @classmethod
    def from_env(cls, env=os.environ) -> "Limits":
        """The limits the environment gives (bad values raise SettingError)."""
        return cls(**{f.name: number_from_env(env, cls.variable(f.name), type(f.default), f.default, 1)
                      for f in fields(cls)})


@cache
def limits() -> Limits:
    """This server's limits, read from the environment once."""
    return Limits.from_env()
