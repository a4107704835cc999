"""Pick the compute device (CUDA, then Apple MPS, else CPU) and describe how to train fast on it; tell an
out-of-memory error from the others, give memory back, and make CUDA kernels repeatable where a run must be exact."""
import gc
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")
# CPU features that compute bfloat16 natively: x86's AVX-512 BF16 and AMX, Arm's BF16 extension.
NATIVE_BF16_FLAGS = {"avx512_bf16", "amx_bf16", "bf16"}


@dataclass(frozen=True)
class DeviceInfo:
    """The chosen device with what training should do on it."""

    device: torch.device
    name: str  # "CPU" or the accelerator's name, for display
    autocast: torch.dtype | None  # mixed precision: float16 on CUDA, bfloat16 on CPUs with native bf16; None: fp32
    channels_last: bool  # NHWC memory format for conv nets
    note: str | None = None  # why "auto" did not take the accelerator it saw (a GPU this PyTorch has no kernels for)

    @property
    def memory_format(self) -> torch.memory_format:
        """The memory format models and batches take on this device."""
        return torch.channels_last if self.channels_last else torch.preserve_format

    @property
    def mixed_precision(self) -> bool:
        """Whether forward passes run under autocast."""
        return self.autocast is not None

    @property
    def precision(self) -> str:
        """How the numbers are computed, for display."""
        return {torch.float16: "float16 mixed precision", torch.bfloat16: "bfloat16 mixed precision"}.get(
            self.autocast, "float32")


def autocast(device: DeviceInfo) -> torch.autocast:
    """The autocast context for a forward pass on `device` (a no-op where it computes in float32)."""
    return torch.autocast(device.device.type, dtype=device.autocast or torch.float32,
                          enabled=device.autocast is not None)


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU's feature flags as Linux lists them in /proc/cpuinfo (empty where that is not available)."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text(errors="replace") if path.exists() else ""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86 says flags, Arm says Features
            return set(value.split())
    return set()


def cpu_has_native_bf16(flags: set[str] | None = None) -> bool:
    """Whether this CPU computes bfloat16 in hardware (detected from its flags, not assumed: elsewhere bf16 is
    emulated and slower than float32). Where the flags cannot be read (not Linux), the answer is no."""
    flags = cpu_flags() if flags is None else flags
    return bool(flags & NATIVE_BF16_FLAGS)


def mps_available() -> bool:
    """True when Apple's Metal backend is built and usable."""
    return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()


def has_kernels(capability: tuple[int, int], arch_list: Sequence[str]) -> bool:
    """Whether a CUDA build compiled for `arch_list` (torch.cuda.get_arch_list(): 'sm_86', 'sm_90a', 'compute_90')
    runs on a GPU of compute `capability` (major, minor). A binary for sm_XY runs on X.Y and later minors of the same
    major; PTX (compute_XY) is compiled on the spot for X.Y and any later GPU; an 'a' build runs on X.Y alone. A
    list with no CUDA architectures in it (a ROCm build) is not judged."""
    cuda_archs = [a for a in arch_list if re.fullmatch(r"(sm|compute)_\d+[af]?", a)]
    if not cuda_archs:
        return True
    for arch in cuda_archs:
        kind, _, number = arch.partition("_")
        suffix = number[-1] if number[-1] in "af" else ""
        digits = number.rstrip("af")
        built = (int(digits[:-1]), int(digits[-1]))  # "120" is 12.0, "86" is 8.6
        if suffix == "a":  # architecture-specific features: that GPU only
            runs = capability == built
        elif kind == "compute":
            runs = capability >= built
        else:
            runs = capability[0] == built[0] and capability[1] >= built[1]
        if runs:
            return True
    return False


def _cuda_refusal() -> str | None:
    """Why this process's first CUDA GPU cannot be used by this PyTorch build (None: it can)."""
    capability, archs = torch.cuda.get_device_capability(0), torch.cuda.get_arch_list()
    if has_kernels(capability, archs):
        return None
    return (f"{torch.cuda.get_device_name(0)} (compute capability {capability[0]}.{capability[1]}) is not supported "
            f"by this PyTorch build, which has kernels for {', '.join(archs)}")


def pick_device(preference: str = "auto", mixed_precision: bool = True) -> DeviceInfo:
    """Resolve 'auto' / 'cpu' / 'cuda' / 'mps' to a DeviceInfo; an unavailable accelerator raises ValueError.

    With `mixed_precision`, CUDA autocasts to float16 (with a gradient scaler) and a CPU with native bfloat16 to
    bfloat16; MPS and other CPUs compute in float32. 'auto' skips a GPU this PyTorch build has no kernels for (a
    V100 or a GTX 10xx under a wheel built for sm_75 and later), and its DeviceInfo's note says so.
    """
    if preference not in DEVICE_CHOICES:
        raise ValueError(f"unknown device {preference!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    note = None
    if preference == "auto":
        refusal = _cuda_refusal() if torch.cuda.is_available() else None
        if refusal:
            note = f"{refusal}: training on the CPU."
        usable_cuda = torch.cuda.is_available() and not refusal
        preference = "cuda" if usable_cuda else "mps" if mps_available() else "cpu"
    if preference == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("CUDA was requested but no CUDA GPU is available; use 'auto' or 'cpu'")
        refusal = _cuda_refusal()
        if refusal:
            raise ValueError(f"{refusal}; use 'cpu'")
        return DeviceInfo(torch.device("cuda"), torch.cuda.get_device_name(0),
                          torch.float16 if mixed_precision else None, True)
    if preference == "mps":
        if not mps_available():
            raise ValueError("Apple MPS was requested but is not available; use 'auto' or 'cpu'")
        return DeviceInfo(torch.device("mps"), "Apple GPU (MPS)", None, False)
    # channels_last speeds up convolutions on x86 CPUs too (oneDNN NHWC kernels): bench/train_bench.py measures it.
    bf16 = mixed_precision and cpu_has_native_bf16()
    return DeviceInfo(torch.device("cpu"), "CPU", torch.bfloat16 if bf16 else None, True, note)


# How each backend words running out of memory. CUDA's caching allocator raises torch.OutOfMemoryError; MPS raises
# a plain RuntimeError; cuBLAS and cuDNN report a failed allocation of their own workspace by status name; a
# cudaMalloc outside the allocator is "CUDA error: out of memory"; the CPU's allocator names itself.
OUT_OF_MEMORY = re.compile(r"CUDA out of memory|CUDA error: out of memory|MPS backend out of memory|"
                           r"HIP out of memory|CUBLAS_STATUS_ALLOC_FAILED|CUDNN_STATUS_ALLOC_FAILED|"
                           r"DefaultCPUAllocator: (?:can't allocate|not enough) memory")


def is_out_of_memory(err: BaseException) -> bool:
    """Whether `err` is a device running out of memory (CUDA, MPS, cuBLAS, cuDNN, ROCm or the CPU's allocator), the
    one failure that a smaller batch or another device can cure."""
    return isinstance(err, (torch.OutOfMemoryError, MemoryError)) or (
        isinstance(err, RuntimeError) and OUT_OF_MEMORY.search(str(err)) is not None)


def synchronize(device: torch.device) -> None:
    """Wait until the accelerator has finished the work queued so far (before reading a clock; a no-op on the
    CPU, whose operations finish before they return)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def release_memory(device: torch.device) -> None:
    """Hand the accelerator's cached, now unused memory back to the system (after the tensors that held it have
    been dropped: collected first, since a model and its optimizer sit in reference cycles)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps":
        torch.mps.empty_cache()


def make_deterministic(device: DeviceInfo) -> None:
    """Make this process's CUDA kernels repeat themselves, so that a resumed run gives an uninterrupted one's losses:
    cuDNN's deterministic convolution algorithms without autotuning, cuBLAS with a fixed workspace (set before its
    first handle), and PyTorch's deterministic kernels where an op has two; an op with none warns in the log
    instead of failing. Slower by what bench/ or `python -m dlplay doctor` measures; nothing changes on a CPU, where
    every op used here is deterministic already, or on MPS, which has no such switches."""
    if device.device.type != "cuda":
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.use_deterministic_algorithms(True, warn_only=True)


class AcceleratorLock:
    """A claim on a single shared accelerator (Apple's one GPU) that other processes see: an exclusive flock on a
    file, held until release() or the process's end (the system drops it even when the process is killed)."""

    def __init__(self, path: Path):
        self.path, self._file = Path(path), None

    def acquire(self) -> bool:
        """Claim it without waiting; False when another holder has it."""
        if self._file is not None:
            return True
        import fcntl  # POSIX only, as are the local workers that use this

        handle = open(self.path, "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        """Let the next process have it."""
        if self._file is not None:
            self._file.close()  # closing the file drops the lock
            self._file = None


def cgroup_cpu_quota(proc_cgroup: Path = Path("/proc/self/cgroup"), root: Path = Path("/sys/fs/cgroup")
                     ) -> float | None:
    """The CPUs this process's cgroups allow (quota / period, the tightest from its own cgroup up to the root, in
    cgroup v2's cpu.max or v1's cpu.cfs_quota_us), or None where no quota is set or none can be read."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    limits = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # v2: one hierarchy, "max 100000" or "150000 100000" in cpu.max
            folders, reader = [root], _cpu_max
        elif "cpu" in controllers.split(","):  # v1: the cpu controller's own hierarchy
            folders, reader = [root / controllers, root / "cpu"], _cfs_quota
        else:
            continue
        parts = [p for p in path.split("/") if p]
        for folder in folders:
            for depth in range(len(parts), -1, -1):
                limit = reader(folder.joinpath(*parts[:depth]))
                if limit is not None:
                    limits.append(limit)
    return min(limits, default=None)


def _cpu_max(folder: Path) -> float | None:
    try:
        quota, period = (folder / "cpu.max").read_text().split()
    except (OSError, ValueError):
        return None
    return None if quota == "max" else int(quota) / int(period)


def _cfs_quota(folder: Path) -> float | None:
    try:
        quota = int((folder / "cpu.cfs_quota_us").read_text())
        period = int((folder / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota <= 0 else quota / period


def usable_cores() -> int:
    """The CPU cores this process may use: its affinity mask (taskset, cpusets), lowered to a cgroup CPU quota
    (a container's --cpus) rounded down, at least one. os.cpu_count() counts the whole machine: a server in a
    2-CPU container on a 64-core host would start 32 training slots.

    Rounded down because an OpenMP thread pool spins while its peers work: under a CFS quota of 1.5 CPUs, two
    spinning threads are throttled for part of every period, one thread is not."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity call
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_quota()
    return max(1, min(cores, int(quota)) if quota else cores)


def configure_threads(num_threads: int | None = None) -> int:
    """Set torch's intra-op thread count once at start-up (default: every usable core); return the count in use."""
    wanted = num_threads or usable_cores()
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)
    return torch.get_num_threads()
