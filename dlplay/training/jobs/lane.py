"""The short-job lane: labs (a zip's import, every After-training lab) run in worker processes of their own, queued
apart from training runs so that an import never waits behind someone's 30-epoch run. Each lab has an owner, a
place in the queue with an expected start, progress, a cancel, and a folder for its files that goes with it."""
import math
import shutil
import statistics
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dlplay.training.jobs.scheduler import AlreadyTraining, ServerFull
from dlplay.training.jobs.spec import RunStatus

LAB_SLOTS = 1  # labs at once (DLPLAY_LAB_SLOTS)
LABS_PER_BROWSER = 1  # labs one browser may have queued or running at once
LAB_QUEUE_MAX = 20  # labs waiting at once, all browsers together
LABS_FOLDER = "_labs"
KEPT_DURATIONS = 5  # recent durations of each kind, for expected starts


@dataclass(frozen=True)
class LabSnapshot:
    """A consistent copy of a lab's state for a page."""

    status: RunStatus
    fraction: float  # done, 0..1 (0 while unknown)
    text: str  # what it is doing now
    message: str  # its outcome, once it has ended
    elapsed_seconds: float
    queue_position: int | None = None
    expected_start_seconds: float | None = None
    result: dict | None = None  # the lab's plain result, once finished


class LabProgress:
    """The server's copy of one lab's state; the worker's events arrive on a reader thread."""

    def __init__(self):
        self._lock = threading.Lock()
        self.status, self.fraction, self.text, self.message = RunStatus.QUEUED, 0.0, "", ""
        self.result: dict | None = None
        self.started = self.ended = None
        self.cancelled = False

    def apply(self, event: dict) -> None:
        """Fold one event from the worker into the state."""
        with self._lock:
            if event["type"] == "progress":
                self.fraction, self.text = float(event["fraction"]), str(event["text"])
            elif event["type"] == "done":
                self.status, self.message = RunStatus(event["status"]), str(event["message"])
                self.result, self.ended = event.get("result"), time.monotonic()
                self.fraction = 1.0 if self.status is RunStatus.FINISHED else self.fraction

    def crashed(self) -> None:
        """The worker went without an outcome: cancelled, or died."""
        with self._lock:
            self.ended = time.monotonic()
            if self.cancelled:
                self.status, self.message = RunStatus.STOPPED, "Cancelled."
            else:
                self.status, self.message = RunStatus.CRASHED, "The lab's process stopped unexpectedly; run it again."

    def set(self, status: RunStatus, message: str) -> None:
        """Set the status from the server's side (started, cancelled while queued)."""
        with self._lock:
            self.status, self.message = status, message
            now = time.monotonic()
            if status is RunStatus.RUNNING:
                self.started = now
            elif not status.active:
                self.ended = now

    def snapshot(self, **queue) -> LabSnapshot:
        """A consistent copy of the state."""
        with self._lock:
            elapsed = ((self.ended or time.monotonic()) - self.started) if self.started else 0.0
            return LabSnapshot(self.status, self.fraction, self.text, self.message, elapsed, **queue,
                               result=self.result)


class Lab:
    """A lab as the server knows it: its kind, owner and folder, its progress, and a cancel."""

    def __init__(self, lane: "LabLane", kind: str, params: dict, owner: str, quota_key: str, folder: Path):
        self.kind, self.owner, self.quota_key, self.folder = kind, owner, quota_key, folder
        self.request = {"kind": kind, "params": params, "folder": str(folder)}  # for the worker
        self.progress, self.handle, self._lane = LabProgress(), None, lane
        weakref.finalize(self, shutil.rmtree, folder, True)  # its files go with it (rmtree takes no lock)

    def snapshot(self) -> LabSnapshot:
        """The lab's state, with its queue place and expected start while it waits."""
        return self.progress.snapshot(**self._lane.queue_info(self))

    def cancel(self) -> None:
        """Take the lab out of the queue, or end its worker."""
        self._lane.cancel(self)


class LabLane:
    """A queue of labs over slots of their own; a backend with `launch_lab` starts the workers."""

    def __init__(self, backend, root: Path, threads: Callable[[], int], slots: int = LAB_SLOTS,
                 per_browser: int = LABS_PER_BROWSER, queue_max: int = LAB_QUEUE_MAX, owns_backend: bool = False):
        """`threads` says how many CPU threads a lab starting now may use; with `owns_backend`, the lane ends its
        backend when it shuts down (one started for labs alone)."""
        self.backend, self.root, self.threads = backend, Path(root) / LABS_FOLDER, threads
        self.owns_backend = owns_backend
        self.slots, self.per_browser, self.queue_max = slots, per_browser, queue_max
        self._lock = threading.RLock()
        self._queue: list[Lab] = []
        self._running: set[Lab] = set()
        self._durations: dict[str, deque[float]] = {}
        self.closed = False
        shutil.rmtree(self.root, ignore_errors=True)  # labs of an earlier server: nobody holds them now

    def submit(self, kind: str, params: dict, owner: str, quota_key: str = "",
               files: dict[str, bytes] | None = None) -> Lab:
        """Queue a lab of `kind` for `owner`, its input `files` written into its folder first. Past the browser's
        quota it raises AlreadyTraining, past the queue's cap ServerFull."""
        quota_key = quota_key or owner
        self._refuse(quota_key)
        folder = self.root / uuid.uuid4().hex[:12]
        folder.mkdir(parents=True)
        for name, data in (files or {}).items():
            (folder / name).write_bytes(data)
        lab = Lab(self, kind, params, owner, quota_key, folder)
        with self._lock:
            self._refuse(quota_key)
            self._queue.append(lab)
            self._dispatch()
        return lab

    def _refuse(self, quota_key: str) -> None:
        with self._lock:
            mine = sum(lab.quota_key == quota_key for lab in [*self._running, *self._queue])
            waiting = len(self._queue)
        if mine >= self.per_browser:
            raise AlreadyTraining("this browser already has a lab running or waiting; let it finish or cancel it")
        if waiting >= self.queue_max:
            raise ServerFull(f"the server is full: {waiting} labs are waiting for a slot; try again in a few minutes")

    def queue_info(self, lab: Lab) -> dict:
        """A waiting lab's place (1 = next) and, once labs of each kind ahead have run before, its expected start."""
        with self._lock:
            if lab not in self._queue:
                return {}
            position = self._queue.index(lab) + 1
            ahead = [self._typical(other.kind) for other in self._queue[:position - 1]]
            running = [max(0.0, self._typical(other.kind) - other.progress.snapshot().elapsed_seconds)
                       for other in self._running]
        free_at = sorted(running + [0.0] * (self.slots - len(running)))
        for seconds in ahead:
            start = free_at.pop(0)
            free_at = sorted([*free_at, start + seconds])
        start = free_at[0]
        return {"queue_position": position, "expected_start_seconds": None if math.isinf(start) else start}

    def _typical(self, kind: str) -> float:
        seen = self._durations.get(kind)
        return statistics.median(seen) if seen else math.inf

    def cancel(self, lab: Lab) -> None:
        """Take a lab out of the queue, or kill its worker (a lab keeps nothing worth saving half done)."""
        with self._lock:
            if lab in self._queue:
                self._queue.remove(lab)
                lab.progress.set(RunStatus.STOPPED, "Cancelled.")
            elif lab in self._running:
                lab.progress.cancelled = True
                lab.handle.kill()

    def _dispatch(self) -> None:
        """Start waiting labs while slots are free (called with the lock held)."""
        while self._queue and len(self._running) < self.slots and not self.closed:
            lab = self._queue.pop(0)
            self._running.add(lab)
            lab.progress.set(RunStatus.RUNNING, "")
            lab.handle = self.backend.launch_lab({**lab.request, "threads": self.threads()}, lab.progress,
                                                 lambda _handle, lab=lab: self._finished(lab))

    def _finished(self, lab: Lab) -> None:
        with self._lock:
            self._running.discard(lab)
            snapshot = lab.progress.snapshot()
            if snapshot.status is RunStatus.FINISHED:
                self._durations.setdefault(lab.kind, deque(maxlen=KEPT_DURATIONS)).append(snapshot.elapsed_seconds)
            self._dispatch()

    def shutdown(self) -> None:
        """Cancel the queue and end every lab's worker (the server is stopping)."""
        with self._lock:
            self.closed = True
            for lab in self._queue:
                lab.progress.set(RunStatus.STOPPED, "The server stopped before this lab could start.")
            self._queue.clear()
            for lab in list(self._running):
                lab.progress.cancelled = True
                lab.handle.kill()
        if self.owns_backend:
            self.backend.shutdown()
