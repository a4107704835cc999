"""The scheduler at its edges, with the test itself playing the workers on real sockets (no processes, so these run
in the quick lane): a message the server cannot read marks the run crashed and frees its slot for the next run,
never a silent thread death that leaves a run "running" for ever; and a full queue is one sentence saying when to
try again."""
import json
import os
import socket
import time
from multiprocessing.connection import Connection

import pytest
import torch

from dlplay.data import Dataset, ImageSet
from dlplay.training.jobs import (
    AlreadyTraining,
    Budget,
    NotYourRun,
    RunConfig,
    RunStatus,
    RunStore,
    Scheduler,
    ServerFull,
    new_run_id,
)
from dlplay.training.jobs.local_backend import LocalHandle
from dlplay.training.jobs.spec import DataRef, JobSpec
from helpers import wait_until


class HandWorkers:
    """A backend whose workers are sockets the test writes to (a real LocalHandle reads each one)."""

    name, shares_cores = "sockets", False

    def __init__(self):
        self.workers: list[Connection] = []

    def capacity(self) -> int:
        return 1

    def job_threads(self) -> int:
        return 1

    def launch(self, spec, run_dir, dataset_file, progress, on_exit) -> LocalHandle:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.workers.append(Connection(theirs.detach()))
        return LocalHandle(Connection(ours.detach()), progress, on_exit)

    def shutdown(self) -> None:
        for worker in self.workers:
            worker.close()


def tiny() -> Dataset:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (40, 1, 28, 28), dtype=torch.uint8, generator=generator)
    labels = torch.arange(40) % 2
    return Dataset("tiny", ("a", "b"), ImageSet(images[:32], labels[:32]), ImageSet(images[32:], labels[32:]))


@pytest.mark.parametrize("garbage", [b"{not json", json.dumps({"no": "type"}).encode(),
                                     json.dumps({"type": "epoch", "epoch": {"wrong": 1}}).encode()])
def test_an_unreadable_message_crashes_the_run_and_frees_its_slot(tmp_path, garbage):
    backend = HandWorkers()
    scheduler = Scheduler(backend, RunStore(tmp_path), capacity=1, cores=1, gpus=0)
    try:
        config = RunConfig(model="small-cnn", epochs=1)
        first = scheduler.submit(config, tiny(), "alice", registered=False)
        second = scheduler.submit(config, tiny(), "bob", registered=False)
        assert second.snapshot().status is RunStatus.QUEUED
        worker = backend.workers[0]
        worker.send_bytes(json.dumps({"type": "hello", "pid": 0}).encode())
        worker.send_bytes(garbage)
        wait_until(lambda: first.snapshot().status is RunStatus.CRASHED, timeout=30)
        assert "stopped unexpectedly" in first.snapshot().message
        wait_until(lambda: len(backend.workers) == 2, timeout=30)  # the slot went to the next run
        assert second.snapshot().status is RunStatus.RUNNING and scheduler.running_jobs() == [second]
    finally:
        scheduler.shutdown()


def finish_by_hand(worker, images_per_sec: float) -> None:
    """Play a worker that trains one step at `images_per_sec` and finishes."""
    for event in ({"type": "hello", "pid": 0},
                  {"type": "started", "device": "CPU", "batch_size": 64, "steps_per_epoch": 1, "train_size": 32,
                   "pid": 0, "message": "Training."},
                  {"type": "batches", "rows": [[1, 1, 1, 2.3, 0.1, images_per_sec, 0.001]]},
                  {"type": "done", "status": "finished", "message": "Trained."}):
        worker.send_bytes(json.dumps(event).encode())
    worker.close()


def test_a_full_queue_says_when_to_try_again(tmp_path):
    backend = HandWorkers()
    scheduler = Scheduler(backend, RunStore(tmp_path), capacity=1, cores=1, gpus=0, queue_max=2)
    try:
        config = RunConfig(model="small-cnn", epochs=1)
        first = scheduler.submit(config, tiny(), "alice", registered=False)
        for owner in ("bob", "carol"):
            scheduler.submit(config, tiny(), owner, registered=False)
        with pytest.raises(ServerFull, match="^the server is full: 2 runs are waiting for a training slot; try "
                                             "again in a few minutes$"):  # no run has finished: no speed known
            scheduler.submit(config, tiny(), "dave", registered=False)
        finish_by_hand(backend.workers[0], images_per_sec=10.0)
        wait_until(lambda: not first.snapshot().active and len(backend.workers) == 2, timeout=30)
        assert scheduler.submit(config, tiny(), "dave", registered=False).snapshot().queue_position == 2
        with pytest.raises(ServerFull, match=r"2 runs are waiting .* try again in about \d+ minute\(s\)$"):
            scheduler.submit(config, tiny(), "erin", registered=False)
    finally:
        scheduler.shutdown()


def test_a_browser_has_its_quota_of_runs_however_many_sessions_it_opens(tmp_path):
    backend = HandWorkers()
    scheduler = Scheduler(backend, RunStore(tmp_path), capacity=1, cores=1, gpus=0, runs_per_browser=2)
    try:
        config = RunConfig(model="small-cnn", epochs=1)
        for _ in range(2):  # two tabs of one browser: one trains, one waits
            scheduler.submit(config, tiny(), "alice", registered=False)
        with pytest.raises(AlreadyTraining, match="^this browser already has 2 run"):
            scheduler.submit(config, tiny(), "alice", registered=False)
        # Clients that drop their cookie are a new owner each session, and count together by their address.
        scheduler.submit(config, tiny(), "session-1", registered=False, quota_key="address 10.0.0.7")
        scheduler.submit(config, tiny(), "session-2", registered=False, quota_key="address 10.0.0.7")
        with pytest.raises(AlreadyTraining):
            scheduler.submit(config, tiny(), "session-3", registered=False, quota_key="address 10.0.0.7")
        assert scheduler.submit(config, tiny(), "bob", registered=False).owner == "bob"  # others are not held up
    finally:
        scheduler.shutdown()


def test_a_run_records_its_owner_and_only_the_owner_resumes_it(tmp_path):
    backend = HandWorkers()
    store = RunStore(tmp_path)
    scheduler = Scheduler(backend, store, capacity=1, cores=1, gpus=0)
    try:
        config = RunConfig(model="small-cnn", epochs=1)
        job = scheduler.submit(config, tiny(), "alice", registered=False)
        assert store.owner(job.run_id) == "alice" and not job.pictures_shared
        job.share_pictures(True)
        assert job.pictures_shared and RunStore(tmp_path).meta(job.run_id)["share_pictures"]  # on disk: kept
        job.stop()
        finish_by_hand(backend.workers[0], images_per_sec=10.0)
        wait_until(lambda: not job.snapshot().active, timeout=30)
        with pytest.raises(NotYourRun, match="belongs to another browser"):
            scheduler.submit(config, tiny(), "bob", registered=False, run_id=job.run_id)
        again = scheduler.submit(config, tiny(), "alice", registered=False, run_id=job.run_id)
        assert again.pictures_shared and store.owner(job.run_id) == "alice"  # a resume keeps what the folder says
    finally:
        scheduler.shutdown()


def test_the_budget_removes_the_runs_of_absent_owners_first_and_leaves_a_tombstone(tmp_path):
    store = RunStore(tmp_path)
    ids = [store.record(JobSpec(new_run_id(), RunConfig(), DataRef("mnist5k")), owner=owner).run_id
           for owner in ("here", "gone", "training")]
    for age, run_id in zip((300, 200, 100), ids, strict=True):  # the first is the oldest
        folder = store.run_dir(run_id)
        (folder / "model.safetensors").write_bytes(b"x" * 10_000)
        for path in (*folder.iterdir(), folder):
            os.utime(path, (time.time() - age, time.time() - age))
    budget = Budget(max_bytes=store.total_bytes() - 1, max_age_seconds=3600)  # one run must go
    assert store.prune(budget, keep={ids[2]}, last={ids[0]}) == [ids[1]]  # not the oldest: its owner is here
    assert store.evicted(ids[1]) and not store.evicted(ids[0]) and store.run_dir(ids[0]).exists()
    assert store.prune(Budget(max_bytes=0), keep={ids[2]}, last={ids[0]}) == [ids[0]]  # then it goes too
    assert store.run_dir(ids[2]).exists()  # a run that trains never goes


def test_a_held_run_the_budget_removes_is_marked_for_its_page(tmp_path):
    backend = HandWorkers()
    scheduler = Scheduler(backend, RunStore(tmp_path), capacity=1, cores=1, gpus=0, budget=Budget(max_bytes=0))
    try:
        job = scheduler.submit(RunConfig(model="small-cnn", epochs=1), tiny(), "alice", registered=False)
        assert not job.evicted and job.folder.exists()  # training: never removed
        finish_by_hand(backend.workers[0], images_per_sec=10.0)
        wait_until(lambda: job.evicted, timeout=30)
        assert not job.folder.exists() and scheduler.store.evicted(job.run_id)
        assert job.snapshot().evaluation is None  # its page can still ask
    finally:
        scheduler.shutdown()
