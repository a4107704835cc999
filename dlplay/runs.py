"""Training runs in background threads: one per user session, a process-wide cap, live snapshots for the UI."""
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path


from .augment import LIGHT, Augmentation
from .checkpoint import ModelCard, save_model
from .data import Dataset, ImageSet, balanced_class_weights, shrink_classes, stratified_split
from .device import DeviceInfo, pick_device
from .evaluate import Evaluation, evaluate
from .models import build_model, set_dropout
from .train import BatchEvent, EpochEvent, Trainer, build_optimizer

log = logging.getLogger(__name__)
REMEDIES = ("none", "weighted loss", "weighted sampler")


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run, as chosen on the trainer page or in a script."""

    model: str = "small-cnn"
    optimizer: str = "adamw"
    lr: float = 3e-3
    weight_decay: float = 5e-4
    schedule: str = "onecycle"
    batch_size: int = 64
    epochs: int = 3
    seed: int = 0
    device: str = "auto"
    mixed_precision: bool = True  # used on CUDA only
    augmentation: Augmentation = LIGHT
    train_fraction: float = 1.0  # share of the training images used ("why does deep learning need much data")
    validation_fraction: float = 0.1  # held out of the training images to draw the validation curve
    shrunk_classes: tuple[int, ...] = ()  # the class-imbalance lab: these classes keep only `shrunk_keep`
    shrunk_keep: float = 0.1
    remedy: str = "none"  # for imbalance: "none", "weighted loss" or "weighted sampler"
    dropout: bool = True  # off: every dropout layer's p is set to 0


class RunSlots:
    """A process-wide cap on concurrent training runs (shared by all sessions)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._semaphore = threading.BoundedSemaphore(capacity)

    def acquire(self, cancelled: threading.Event) -> bool:
        """Wait for a free slot; False if `cancelled` is set first."""
        while not cancelled.is_set():
            if self._semaphore.acquire(timeout=0.2):
                return True
        return False

    def release(self) -> None:
        """Give a slot back."""
        self._semaphore.release()


@dataclass(frozen=True)
class RunSnapshot:
    """A consistent copy of a run's progress for drawing; the lists are the UI's to keep."""

    status: str  # queued, running, paused, finished, stopped, diverged, failed
    message: str
    batches: list[BatchEvent]
    epochs: list[EpochEvent]
    total_steps: int
    batch_size: int
    evaluation: Evaluation | None
    device_name: str

    @property
    def step(self) -> int:
        """Optimizer steps done so far."""
        return self.batches[-1].step if self.batches else 0

    @property
    def active(self) -> bool:
        """Still queued, running or paused."""
        return self.status in ("queued", "running", "paused")

    @property
    def eta_seconds(self) -> float | None:
        """Seconds of training left at the current epoch's speed (None before the first batch)."""
        if not self.batches:
            return None
        return (self.total_steps - self.step) * self.batch_size / self.batches[-1].images_per_sec


def take_fraction(data: ImageSet, fraction: float, seed: int) -> ImageSet:
    """A seeded, class-stratified share of the images (all of them for fraction >= 1)."""
    if fraction >= 1:
        return data
    _, kept = stratified_split(data, fraction, seed)
    return kept


@dataclass
class _Progress:
    """What the worker writes and the UI reads, always under `lock`."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    status: str = "queued"
    message: str = "Waiting for a free training slot."
    batches: list[BatchEvent] = field(default_factory=list)
    epochs: list[EpochEvent] = field(default_factory=list)
    evaluation: Evaluation | None = None
    device_name: str = ""


class TrainingRun:
    """One training run on a background thread; the thread never touches the UI, the UI calls snapshot()."""

    def __init__(self, config: RunConfig, dataset: Dataset, slots: RunSlots, checkpoint: Path | None = None):
        self.config, self.dataset, self.slots, self.checkpoint = config, dataset, slots, checkpoint
        if config.remedy not in REMEDIES:
            raise ValueError(f"unknown remedy {config.remedy!r}; choose one of: {', '.join(REMEDIES)}")
        train = take_fraction(dataset.train, config.train_fraction, config.seed)
        if config.shrunk_classes:
            train = shrink_classes(train, config.shrunk_classes, config.shrunk_keep, config.seed)
        self.train_set, self.val_set = (stratified_split(train, config.validation_fraction, config.seed)
                                        if config.validation_fraction > 0 else (train, None))
        self.mean, self.std = dataset.channel_stats()
        # Built here, not in the thread, so that an impossible architecture is refused before anything starts.
        self.model = build_model(config.model, dataset.input_shape, dataset.num_classes, self.mean, self.std,
                                 seed=config.seed)
        if not config.dropout:
            set_dropout(self.model, 0.0)
        self.steps_per_epoch = -(-len(self.train_set) // config.batch_size)
        self._progress = _Progress()
        self._cancelled = threading.Event()
        self._trainer: Trainer | None = None
        self.device: DeviceInfo | None = None  # where the model lives once training has started
        self._thread = threading.Thread(target=self._work, name="dlplay-training", daemon=True)

    def start(self) -> "TrainingRun":
        """Start the background thread; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop before the next batch (or leave the queue)."""
        self._cancelled.set()
        if self._trainer:
            self._trainer.stop()

    def pause(self) -> None:
        """Hold before the next batch."""
        if self._trainer:
            self._trainer.pause()
            self._set(status="paused", message="Paused.")

    def resume(self) -> None:
        """Continue after pause()."""
        if self._trainer:
            self._trainer.resume()
            self._set(status="running", message="Training.")

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread to finish (for scripts and tests)."""
        self._thread.join(timeout)

    def card(self) -> ModelCard:
        """The metadata a saved copy of this run's model carries."""
        evaluation = self.snapshot().evaluation
        return ModelCard(self.config.model, self.dataset.class_names, self.dataset.input_shape, self.mean, self.std,
                         self.dataset.name, evaluation.accuracy if evaluation else None)

    def snapshot(self) -> RunSnapshot:
        """A consistent copy of the progress so far."""
        p = self._progress
        with p.lock:
            return RunSnapshot(p.status, p.message, list(p.batches), list(p.epochs),
                               self.steps_per_epoch * self.config.epochs, self.config.batch_size, p.evaluation,
                               p.device_name)

    def _set(self, **fields) -> None:
        with self._progress.lock:
            for name, value in fields.items():
                setattr(self._progress, name, value)

    def _on_batch(self, event: BatchEvent) -> None:
        with self._progress.lock:
            self._progress.batches.append(event)

    def _on_epoch(self, event: EpochEvent) -> None:
        with self._progress.lock:
            self._progress.epochs.append(event)
        if self.checkpoint:
            save_model(self.checkpoint, self.model, self.card())

    def _work(self) -> None:
        if not self.slots.acquire(self._cancelled):
            self._set(status="stopped", message="Cancelled while waiting for a training slot.")
            return
        self._set(status="running", message="Preparing the data and the model.")
        try:
            self._train()
        except Exception as err:  # a worker thread: report the failure in plain words, keep details in the log
            log.exception("training run failed")
            self._set(status="failed", message=f"Training failed: {err}")
        finally:
            self.slots.release()

    def _train(self) -> None:
        device = pick_device(self.config.device)
        if not self.config.mixed_precision:
            device = type(device)(device.device, device.name, False, device.channels_last)
        optimizer = build_optimizer(self.config.optimizer, self.model.parameters(), self.config.lr,
                                    self.config.weight_decay)
        trainer = Trainer(self.model, optimizer, self.train_set, device, batch_size=self.config.batch_size,
                          epochs=self.config.epochs, schedule=self.config.schedule, seed=self.config.seed,
                          augmentation=self.config.augmentation, val=self.val_set,
                          class_weights=(balanced_class_weights(self.train_set.labels, self.dataset.num_classes)
                                         if self.config.remedy == "weighted loss" else None),
                          balanced_sampling=self.config.remedy == "weighted sampler")
        self.device = device
        trainer.on("batch_end", self._on_batch)
        trainer.on("epoch_end", self._on_epoch)
        self._trainer = trainer
        if self._cancelled.is_set():
            trainer.stop()
        self._set(status="running", message="Training.", device_name=device.name)
        history = trainer.fit()
        evaluation = evaluate(self.model, self.dataset.test, device)
        if history.diverged_at is not None:
            status = "diverged"
            message = f"{history.divergence_message.capitalize()} (the model keeps the last good weights)."
        elif history.stopped:
            status, message = "stopped", "Stopped; the model keeps the weights it had reached."
        else:
            seconds = sum(e.seconds for e in history.epochs)
            status = "finished"
            message = f"Trained {len(history.epochs)} epoch(s) in {seconds:.1f} s; test accuracy {evaluation.accuracy:.1%}."
        self._set(status=status, message=message, evaluation=evaluation)


def epochs_csv(epochs: list[EpochEvent]) -> str:
    """Per-epoch metrics as CSV text with a header row."""
    rows = ["epoch,train_loss,train_accuracy,val_loss,val_accuracy,images_per_sec,seconds"]
    rows += [",".join("" if v is None else f"{v:.6g}" for v in (e.epoch, e.train_loss, e.train_accuracy, e.val_loss,
                                                                 e.val_accuracy, e.images_per_sec, e.seconds))
             for e in epochs]
    return "\n".join(rows) + "\n"
