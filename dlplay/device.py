"""Pick the compute device (CUDA, then Apple MPS, else CPU) and describe it."""
import os
from dataclasses import dataclass

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class DeviceInfo:
    """The chosen device with what training should do on it."""

    device: torch.device
    name: str  # "CPU" or the accelerator's name, for display
    mixed_precision: bool  # autocast to float16 (CUDA only)
    channels_last: bool  # NHWC memory format for conv nets


def mps_available() -> bool:
    """True when Apple's Metal backend is built and usable."""
    return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()


def pick_device(preference: str = "auto") -> DeviceInfo:
    """Resolve 'auto' / 'cpu' / 'cuda' / 'mps' to a DeviceInfo; an unavailable accelerator raises ValueError."""
    if preference not in DEVICE_CHOICES:
        raise ValueError(f"unknown device {preference!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    if preference == "auto":
        preference = "cuda" if torch.cuda.is_available() else "mps" if mps_available() else "cpu"
    if preference == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("CUDA was requested but no CUDA GPU is available; use 'auto' or 'cpu'")
        return DeviceInfo(torch.device("cuda"), torch.cuda.get_device_name(0), True, True)
    if preference == "mps":
        if not mps_available():
            raise ValueError("Apple MPS was requested but is not available; use 'auto' or 'cpu'")
        return DeviceInfo(torch.device("mps"), "Apple GPU (MPS)", False, False)
    # channels_last speeds up convolutions on x86 CPUs too (oneDNN NHWC kernels): see bench/.
    return DeviceInfo(torch.device("cpu"), "CPU", False, True)


def configure_threads(num_threads: int | None = None) -> int:
    """Set torch's intra-op thread count once at start-up (default: all cores); return the count in use."""
    wanted = num_threads or os.cpu_count() or 1
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)
    return torch.get_num_threads()
