"""A run's progress as the server sees it: folded from the worker's events, read by pages as snapshots."""
import threading
from dataclasses import dataclass

from dlplay.evaluate import Evaluation
from dlplay.training.jobs.spec import RunStatus
from dlplay.training.trainer import BatchEvent, EpochEvent


@dataclass(frozen=True)
class RunSnapshot:
    """A consistent copy of a run's progress for drawing; the lists are the caller's to keep."""

    status: RunStatus
    message: str
    batches: list[BatchEvent]
    epochs: list[EpochEvent]
    total_steps: int
    batch_size: int
    evaluation: Evaluation | None
    device_name: str
    version: int  # grows with every change: a view redraws only when it grew
    train_size: int = 0
    checkpoint_epoch: int = 0  # the last epoch whose checkpoint is saved (a crashed run resumes after it)
    threads: int = 0  # CPU threads the worker trains with
    worker_pid: int = 0  # the process that trains (on its own machine, for a Ray cluster)
    queue_position: int | None = None  # 1 = next to start
    expected_start_seconds: float | None = None  # for a queued run, when a slot should free up
    held_at_step: int | None = None  # the worker reported that it holds (paused) after this step; None otherwise

    @property
    def step(self) -> int:
        """Optimizer steps done so far."""
        return self.batches[-1].step if self.batches else 0

    @property
    def active(self) -> bool:
        """Still queued, running or paused."""
        return self.status.active

    @property
    def eta_seconds(self) -> float | None:
        """Seconds of training left at the current epoch's speed (None before the first batch)."""
        if not self.batches or not self.status.active:
            return None
        return (self.total_steps - self.step) * self.batch_size / self.batches[-1].images_per_sec


class Progress:
    """The server's copy of one run's state; the transport's thread applies events, pages take snapshots."""

    def __init__(self, epochs: int, batch_size: int, batches=(), epoch_events=()):
        self._lock = threading.Lock()
        self.epochs_wanted = epochs
        self.status, self.message = RunStatus.QUEUED, "Waiting for a free training slot."
        self.batches: list[BatchEvent] = list(batches)
        self.epochs: list[EpochEvent] = list(epoch_events)
        self.batch_size, self.steps_per_epoch, self.train_size = batch_size, 0, 0
        self.device_name, self.checkpoint_epoch, self.version, self.threads = "", len(self.epochs), 0, 0
        self.worker_pid, self.held_at_step = 0, None
        self.files: set[str] = set()
        self.stop_reason = ""  # why the server stopped the run, said before the worker's last word

    def apply(self, event: dict) -> None:
        """Fold one event from the worker into the state."""
        kind = event["type"]
        with self._lock:
            self.version += 1
            if kind == "batches":
                self.batches += [BatchEvent(*row) for row in event["rows"]]
            elif kind == "epoch":
                self.epochs.append(EpochEvent(**event["epoch"]))
            elif kind == "started":
                self.status, self.message = RunStatus.RUNNING, event["message"]
                self.device_name, self.batch_size = event["device"], event["batch_size"]
                self.steps_per_epoch, self.train_size = event["steps_per_epoch"], event["train_size"]
                self.worker_pid = event["pid"]
            elif kind == "status":
                self.status, self.message = RunStatus(event["status"]), event["message"]
                if self.status is not RunStatus.PAUSED:
                    self.held_at_step = None
            elif kind == "held":
                self.status, self.held_at_step = RunStatus.PAUSED, event["step"]
                self.message = f"Holding after step {event['step']}; press Resume to go on."
            elif kind == "file":
                self.files.add(event["name"])
                self.checkpoint_epoch = event.get("epoch", self.checkpoint_epoch)
            elif kind == "threads":
                self.threads = event["n"]
            elif kind == "reset":
                self.batches, self.epochs = [], []
            elif kind == "done":
                self.status, self.message, self.held_at_step = RunStatus(event["status"]), event["message"], None
                if self.status is RunStatus.STOPPED and self.stop_reason:
                    self.message = f"{self.stop_reason} {self.message}"
                self.files.update(event.get("files", ()))

    def set(self, status: RunStatus, message: str) -> None:
        """Set the status from the server's side (queued, cancelled, paused at once, crashed)."""
        with self._lock:
            self.version += 1
            self.status, self.message = status, message
            if status is not RunStatus.PAUSED:
                self.held_at_step = None

    def stopping_because(self, reason: str) -> None:
        """The server is stopping the run for `reason` (a sentence), which its final message will begin with."""
        with self._lock:
            self.stop_reason = reason

    def crashed(self) -> None:
        """The worker died without reporting an outcome: say so, and from where the run can resume."""
        with self._lock:
            self.version += 1
            self.status, k = RunStatus.CRASHED, self.checkpoint_epoch
            if not k:
                self.message = ("The training process stopped unexpectedly before its first checkpoint; "
                                "start the run again.")
            elif k >= self.epochs_wanted:
                self.message = "The training process stopped unexpectedly after its last epoch; resume to evaluate."
            else:
                self.message = (f"The training process stopped unexpectedly; resume from epoch {k + 1} "
                                f"(its checkpoint was saved after epoch {k}).")

    def snapshot(self, evaluation: Evaluation | None = None, **queue) -> RunSnapshot:
        """A consistent copy of the state."""
        with self._lock:
            total = self.steps_per_epoch * self.epochs_wanted
            return RunSnapshot(self.status, self.message, list(self.batches), list(self.epochs), total,
                               self.batch_size, evaluation, self.device_name, self.version, self.train_size,
                               self.checkpoint_epoch, self.threads, self.worker_pid, **queue,
                               held_at_step=self.held_at_step)


def epochs_csv(epochs: list[EpochEvent]) -> str:
    """Per-epoch metrics as CSV text with a header row."""
    rows = ["epoch,train_loss,train_accuracy,val_loss,val_accuracy,images_per_sec,seconds"]
    rows += [",".join("" if v is None else f"{v:.6g}" for v in (e.epoch, e.train_loss, e.train_accuracy, e.val_loss,
                                                                 e.val_accuracy, e.images_per_sec, e.seconds))
             for e in epochs]
    return "\n".join(rows) + "\n"
