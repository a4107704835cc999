"""The GPU decisions that need no GPU to check: which GPUs a PyTorch build has kernels for, which errors are a
device out of memory (on the real messages of CUDA, MPS, cuBLAS, cuDNN and the CPU's allocator), the deterministic
switches a resumable CUDA run sets, and the lock that gives Apple's one GPU to one run at a time. Nothing here
assumes this machine has no GPU."""
import os

import pytest
import torch

from dlplay.device import (
    AcceleratorLock,
    DeviceInfo,
    has_kernels,
    is_out_of_memory,
    make_deterministic,
    pick_device,
)

# torch.cuda.get_arch_list() of the cu128 and cu130 wheels (this project's), and of an older wheel that also ships
# PTX for its newest architecture.
WHEEL = ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"]
OLD_WHEEL_WITH_PTX = ["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90", "compute_90"]


@pytest.mark.parametrize("gpu, capability, arch_list, runs", [
    ("Tesla P100", (6, 0), WHEEL, False),
    ("GTX 1080", (6, 1), WHEEL, False),
    ("Tesla V100", (7, 0), WHEEL, False),
    ("Tesla T4", (7, 5), WHEEL, True),
    ("A100", (8, 0), WHEEL, True),
    ("RTX 3090", (8, 6), WHEEL, True),
    ("RTX 4090 (sm_89 runs sm_86 code)", (8, 9), WHEEL, True),
    ("H100", (9, 0), WHEEL, True),
    ("B200", (10, 0), WHEEL, True),
    ("RTX 5090", (12, 0), WHEEL, True),
    ("Jetson Thor (sm_110: no binary, no PTX)", (11, 0), WHEEL, False),
    ("GTX 1080 under the old wheel", (6, 1), OLD_WHEEL_WITH_PTX, True),
    ("RTX 5090 under the old wheel: PTX for 9.0, compiled on the spot", (12, 0), OLD_WHEEL_WITH_PTX, True),
    ("T4 under PTX for 8.0 only: PTX never runs on an older GPU", (7, 5), ["sm_80", "compute_80"], False),
    ("H100 under an arch-specific build", (9, 0), ["sm_90a"], True),
    ("B200 under an sm_90a-only build", (10, 0), ["sm_90a"], False),
    ("a ROCm build lists gfx targets: not judged", (9, 0), ["gfx90a", "gfx942"], True),
])
def test_a_build_runs_on_a_gpu_only_where_nvidias_rules_say(gpu, capability, arch_list, runs):
    assert has_kernels(capability, arch_list) is runs, gpu


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_this_machines_gpus_have_kernels_in_this_build():
    for index in range(torch.cuda.device_count()):
        assert has_kernels(torch.cuda.get_device_capability(index), torch.cuda.get_arch_list())


def test_auto_passes_over_a_gpu_the_build_cannot_run_and_says_so_in_one_sentence(monkeypatch):
    """The machine is made to report a V100 (the CUDA runtime's answers, not pick_device, are the doubles)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 0))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla V100-SXM2-16GB")
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: WHEEL)
    auto = pick_device("auto")
    assert auto.device.type != "cuda"
    assert auto.note == ("Tesla V100-SXM2-16GB (compute capability 7.0) is not supported by this PyTorch build, "
                         "which has kernels for sm_75, sm_80, sm_86, sm_90, sm_100, sm_120: training on the CPU.")
    with pytest.raises(ValueError, match=r"V100.*not supported by this PyTorch build.*use 'cpu'$"):
        pick_device("cuda")


def test_a_usable_device_carries_no_note():
    assert pick_device("auto").note is None  # whatever this machine has, it is used without a caveat
    assert pick_device("cpu").note is None


def real_cpu_allocator_error() -> RuntimeError:
    try:
        torch.empty(2**62, dtype=torch.uint8)  # more than any address space: refused at once, nothing allocated
    except RuntimeError as err:
        return err
    raise AssertionError("the allocator did not refuse")


OUT_OF_MEMORY = [  # as PyTorch words them (torch's own strings, and as users reported them)
    torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 MiB. GPU 0 has a total capacity of 14.75 GiB "
                           "of which 3.06 MiB is free. Including non-PyTorch memory, this process has 14.74 GiB memory "
                           "in use."),
    torch.OutOfMemoryError("CUDA out of memory. Allocation was preemptively rejected because it would exceed "
                           "per_process_memory_fraction limit. Requested size: 8388608"),
    RuntimeError("MPS backend out of memory (MPS allocated: 18.13 GB, other allocations: 45.09 MB, max allowed: "
                 "18.13 GB). Tried to allocate 256 bytes on shared pool. Use PYTORCH_MPS_HIGH_WATERMARK_RATIO=0.0 to "
                 "disable upper limit for memory allocations (may cause system failure)."),
    RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"),
    RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"),
    RuntimeError("CUDA error: out of memory\nCompile with `TORCH_USE_CUDA_DSA` to enable device-side assertions."),
    RuntimeError("HIP out of memory. Tried to allocate 2.00 GiB"),
]
NOT_OUT_OF_MEMORY = [
    RuntimeError("CUDA error: device-side assert triggered"),
    RuntimeError("Expected all tensors to be on the same device, but found at least two devices, cuda:0 and cpu! "
                 "(when checking argument for argument state_steps in method wrapper__fused_adamw_)"),
    RuntimeError("CUDA error: no kernel image is available for execution on the device"),
    RuntimeError("mat1 and mat2 shapes cannot be multiplied (64x100 and 200x10)"),
    ValueError("out of memory"),  # not an error PyTorch raises for memory
]


@pytest.mark.parametrize("err", [*OUT_OF_MEMORY, "real CPU allocator"], ids=repr)
def test_every_backends_out_of_memory_is_recognised(err):
    assert is_out_of_memory(real_cpu_allocator_error() if err == "real CPU allocator" else err)


@pytest.mark.parametrize("err", NOT_OUT_OF_MEMORY, ids=repr)
def test_other_failures_are_not_taken_for_out_of_memory(err):
    assert not is_out_of_memory(err)


def test_a_cuda_run_made_exact_sets_cudnn_cublas_and_torch_to_deterministic(monkeypatch):
    saved = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
             torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    try:
        make_deterministic(DeviceInfo(torch.device("cpu"), "CPU", None, True))
        assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ  # a CPU run is left as it is
        assert (torch.backends.cudnn.deterministic, torch.are_deterministic_algorithms_enabled()) == saved[1:3]
        make_deterministic(DeviceInfo(torch.device("cuda"), "a GPU", torch.float16, True))  # touches no GPU
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved[:2]
        torch.use_deterministic_algorithms(saved[2], warn_only=saved[3])


def test_apples_gpu_goes_to_one_holder_at_a_time(tmp_path):
    first, second = AcceleratorLock(tmp_path / "mps.lock"), AcceleratorLock(tmp_path / "mps.lock")
    assert first.acquire() and first.acquire()  # the holder keeps it
    assert not second.acquire()  # another holder (a separate open file, as another process has) does not get it
    first.release()
    assert second.acquire()
    second.release()
