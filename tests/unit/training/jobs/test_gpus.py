"""Which GPU a job gets and what its worker's CUDA_VISIBLE_DEVICES says, as functions of what the server sees;
then the scheduler placing real submitted runs (the test plays the workers on sockets, so no process or GPU is
needed)."""
import socket
from multiprocessing.connection import Connection

import pytest
import torch

from dlplay.data import Dataset, ImageSet
from dlplay.training.jobs import RunConfig, RunStatus, RunStore, Scheduler
from dlplay.training.jobs.gpus import next_start, visible_devices, worker_visible_devices
from dlplay.training.jobs.local_backend import LocalHandle
from dlplay.training.jobs.zygote import start_method

MIG = "MIG-1f5d8f0e-8c2b-5b4a-9f1e-3c2d1b0a9e8f"


@pytest.mark.parametrize("server, gpu, worker", [
    (None, 0, "0"), (None, 3, "3"),  # unset: the server sees every GPU, the indices are the machine's
    ("2,3", 0, "2"), ("2,3", 1, "3"),  # the server was given GPUs 2 and 3: its GPU 0 is the machine's GPU 2
    ("3,1", 0, "3"),  # in the server's order
    (" 5 , 7", 1, "7"),
    ("GPU-8a3f21c4,GPU-77b0e2d1", 1, "GPU-77b0e2d1"),
    (f"{MIG}", 0, MIG),  # a MIG slice by its UUID
    ("2,3", None, ""), (None, None, ""),  # a run without a GPU sees none (it never starts a CUDA context)
])
def test_a_worker_is_given_the_physical_gpu_the_server_chose(server, gpu, worker):
    assert worker_visible_devices(gpu, server) == worker


def test_cuda_stops_reading_the_list_at_its_first_invalid_entry():
    assert visible_devices("0,1,-1,2") == ["0", "1"] and visible_devices("-1") == [] and visible_devices("") == []
    assert visible_devices(None) is None
    with pytest.raises(ValueError, match="not among the 2 GPU"):
        worker_visible_devices(2, "4,5")


def start_all(wants_gpu, gpus, gpu_slots, cpu_slots):
    """Feed next_start the way the scheduler does until nothing more fits: [(job, gpu)] in start order."""
    queue, running, started = list(enumerate(wants_gpu)), [], []
    while (choice := next_start([w for _, w in queue], running, gpus, gpu_slots, cpu_slots)) is not None:
        index, gpu = choice
        job, _ = queue.pop(index)
        running.append(gpu)
        started.append((job, gpu))
    return started


def test_extra_slots_spread_over_the_gpus_instead_of_piling_onto_gpu_0():
    assert start_all([True] * 5, gpus=2, gpu_slots=4, cpu_slots=1) == [(0, 0), (1, 1), (2, 0), (3, 1)]
    assert next_start([True], [0, None, 0], gpus=2, gpu_slots=4, cpu_slots=1) == (0, 1)  # the least busy GPU


def test_cpu_runs_have_slots_of_their_own_beside_the_gpus():
    # One GPU and 32 cores: one GPU run at a time, and 16 CPU runs beside it (not one run in all).
    started = start_all([True, True, *[False] * 20], gpus=1, gpu_slots=1, cpu_slots=16)
    assert started[0] == (0, 0) and len(started) == 17
    assert [gpu for _, gpu in started[1:]] == [None] * 16 and 1 not in [job for job, _ in started]


def test_without_gpus_every_run_takes_a_cpu_slot_in_arrival_order():
    assert start_all([True, False, True], gpus=0, gpu_slots=1, cpu_slots=2) == [(0, None), (1, None)]


def test_workers_start_fresh_on_macos_and_fork_elsewhere():
    assert start_method("darwin", {}) == "spawn" and start_method("linux", {}) == "fork"
    assert start_method("linux", {"DLPLAY_WORKER_START": "spawn"}) == "spawn"
    with pytest.raises(ValueError, match="'fork' or 'spawn'"):
        start_method("linux", {"DLPLAY_WORKER_START": "thread"})


class SocketWorkers:
    """Local workers played by the test: each launch is a socket a real LocalHandle reads; the specs are kept."""

    name, shares_cores = "sockets", True

    def __init__(self):
        self.specs, self.workers = [], []

    def capacity(self):
        return None

    def launch(self, spec, run_dir, dataset_file, progress, on_exit) -> LocalHandle:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.specs.append(spec)
        self.workers.append(Connection(theirs.detach()))
        return LocalHandle(Connection(ours.detach()), progress, on_exit)

    def shutdown(self):
        for worker in self.workers:
            worker.close()


def tiny() -> Dataset:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (40, 1, 28, 28), dtype=torch.uint8, generator=generator)
    labels = torch.arange(40) % 2
    return Dataset("tiny", ("a", "b"), ImageSet(images[:32], labels[:32]), ImageSet(images[32:], labels[32:]))


def test_the_scheduler_places_submitted_runs_on_the_gpus_and_the_cpu(tmp_path):
    backend = SocketWorkers()
    scheduler = Scheduler(backend, RunStore(tmp_path), capacity=3, cores=4, gpus=2)  # 3 GPU slots, 2 CPU slots
    try:
        jobs = [scheduler.submit(RunConfig(model="small-cnn", epochs=1, device=device), tiny(), owner,
                                 registered=False)
                for owner, device in [("a", "auto"), ("b", "cuda"), ("c", "auto"), ("d", "auto"), ("e", "cpu")]]
        assert [(s.run_id, s.gpu) for s in backend.specs] == [
            (jobs[0].run_id, 0), (jobs[1].run_id, 1), (jobs[2].run_id, 0), (jobs[4].run_id, None)]
        assert jobs[3].snapshot().status is RunStatus.QUEUED  # the GPU slots are full; the CPU run went past it
    finally:
        scheduler.shutdown()


def test_a_lab_computes_on_the_cpu_unless_given_a_gpu_and_out_of_memory_is_one_sentence():
    from dlplay.training.jobs.labs import OUT_OF_MEMORY, _failure, lab_device
    assert lab_device(None).device.type == "cpu"  # beside the scheduler's runs, a lab takes no GPU of theirs
    mps = RuntimeError("MPS backend out of memory (MPS allocated: 18.13 GB, other allocations: 45.09 MB, max "
                       "allowed: 18.13 GB). Tried to allocate 256 bytes on shared pool.")
    assert _failure(mps) == _failure(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")) == \
        OUT_OF_MEMORY
    assert _failure(ValueError("this model has no convolution layer")) == "this model has no convolution layer"
    assert _failure(RuntimeError("boom")) == "The lab failed: boom"
