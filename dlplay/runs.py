"""Training runs in background threads: one per user session, a process-wide cap, live snapshots for the UI."""
import logging
import os
import re
import threading
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn


from .augment import LIGHT, Augmentation
from .builder import LayerSpec
from .checkpoint import ModelCard, read_training_state, save_training_state
from .data import Dataset, ImageSet, balanced_class_weights, default_data_dir, shrink_classes, stratified_split
from .device import DeviceInfo, pick_device
from .evaluate import Evaluation, evaluate
from .models import build_model, set_dropout
from .train import BatchEvent, EpochEvent, Trainer, build_optimizer

log = logging.getLogger(__name__)
REMEDIES = ("none", "weighted loss", "weighted sampler")
OOM_HALVINGS = 2  # out of memory: halve the batch this many times, then move to the CPU
MIN_RETRY_BATCH = 8


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
    stack: tuple[LayerSpec, ...] = ()  # the builder's layers, for model 'custom'


RUN_ID = re.compile(r"[0-9a-f]{12}")
STATE_FILE = "state.safetensors"


def default_runs_dir() -> Path:
    """Where run checkpoints live: $DLPLAY_RUNS_DIR, else ~/.cache/dlplay/runs."""
    return Path(os.environ.get("DLPLAY_RUNS_DIR") or default_data_dir().parent / "runs")


def new_run_id() -> str:
    """A random 12-hex-digit run id (it names the run's checkpoint folder and goes in the page's URL)."""
    return uuid.uuid4().hex[:12]


def state_path(run_id: str, root: Path | None = None) -> Path:
    """The checkpoint file of a run id; a malformed id (say, from an edited URL) raises ValueError."""
    if not RUN_ID.fullmatch(run_id):
        raise ValueError("not a run id")
    return (root or default_runs_dir()) / run_id / STATE_FILE


def config_to_plain(config: RunConfig) -> dict:
    """A RunConfig as JSON-ready data."""
    return asdict(config)


def config_from_plain(plain: dict) -> RunConfig:
    """The RunConfig that config_to_plain() described."""
    return RunConfig(**{**plain, "augmentation": Augmentation(**plain["augmentation"]),
                        "shrunk_classes": tuple(plain["shrunk_classes"]),
                        "stack": tuple(LayerSpec(**spec) for spec in plain["stack"])})


@dataclass(frozen=True)
class ResumePoint:
    """Where an interrupted run stopped: saved after its last finished epoch."""

    config: RunConfig
    dataset: str
    weights: dict
    trainer_tensors: dict
    trainer_plain: dict
    epochs: list[EpochEvent]
    batches: list[BatchEvent]


def read_resume_point(path: Path) -> ResumePoint:
    """The resume point stored in a run's state file."""
    weights, tensors, plain, _card = read_training_state(path)
    return ResumePoint(config_from_plain(plain["config"]), plain["dataset"], weights, tensors, plain["trainer"],
                       [EpochEvent(**e) for e in plain["epochs"]], [BatchEvent(**b) for b in plain["batches"]])


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

    def __init__(self, config: RunConfig, dataset: Dataset, slots: RunSlots, checkpoint: Path | None = None,
                 resume: ResumePoint | None = None):
        self.config, self.dataset, self.slots, self.checkpoint = config, dataset, slots, checkpoint
        self.resume_point = resume
        if config.remedy not in REMEDIES:
            raise ValueError(f"unknown remedy {config.remedy!r}; choose one of: {', '.join(REMEDIES)}")
        train = take_fraction(dataset.train, config.train_fraction, config.seed)
        if config.shrunk_classes:
            train = shrink_classes(train, config.shrunk_classes, config.shrunk_keep, config.seed)
        self.train_set, self.val_set = (stratified_split(train, config.validation_fraction, config.seed)
                                        if config.validation_fraction > 0 else (train, None))
        self.mean, self.std = dataset.channel_stats()
        # Built here, not in the thread, so that an impossible architecture is refused before anything starts.
        self.model = self._fresh_model()
        self.batch_size = config.batch_size  # halved if the device runs out of memory
        self.steps_per_epoch = -(-len(self.train_set) // config.batch_size)
        self._progress = _Progress()
        if resume:
            self.model.load_state_dict(resume.weights)
            self._progress.batches, self._progress.epochs = list(resume.batches), list(resume.epochs)
        self._cancelled = threading.Event()
        self._active_trainer: Trainer | None = None
        self.device: DeviceInfo | None = None  # where the model lives once training has started
        self._thread = threading.Thread(target=self._work, name="dlplay-training", daemon=True)

    def start(self) -> "TrainingRun":
        """Start the background thread; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop before the next batch (or leave the queue)."""
        self._cancelled.set()
        if self._active_trainer:
            self._active_trainer.stop()

    def pause(self) -> None:
        """Hold before the next batch."""
        if self._active_trainer:
            self._active_trainer.pause()
            self._set(status="paused", message="Paused.")

    def resume(self) -> None:
        """Continue after pause()."""
        if self._active_trainer:
            self._active_trainer.resume()
            self._set(status="running", message="Training.")

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread to finish (for scripts and tests)."""
        self._thread.join(timeout)

    def card(self) -> ModelCard:
        """The metadata a saved copy of this run's model carries."""
        evaluation = self.snapshot().evaluation
        return ModelCard(self.config.model, self.dataset.class_names, self.dataset.input_shape, self.mean, self.std,
                         self.dataset.name, evaluation.accuracy if evaluation else None,
                         tuple((spec.kind, spec.size) for spec in self.config.stack))

    def snapshot(self) -> RunSnapshot:
        """A consistent copy of the progress so far."""
        p = self._progress
        with p.lock:
            return RunSnapshot(p.status, p.message, list(p.batches), list(p.epochs),
                               self.steps_per_epoch * self.config.epochs, self.batch_size, p.evaluation,
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
            batches, epochs = list(self._progress.batches), list(self._progress.epochs)
        if self.checkpoint and self.batch_size == self.config.batch_size:  # a resume restarts at the set batch size
            tensors, trainer_plain = self._active_trainer.state()
            plain = {"config": config_to_plain(self.config), "dataset": self.dataset.name, "trainer": trainer_plain,
                     "epochs": [asdict(e) for e in epochs], "batches": [asdict(b) for b in batches]}
            save_training_state(self.checkpoint, self.model, self.card(), tensors, plain)

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

    def _device(self) -> DeviceInfo:
        device = pick_device(self.config.device)
        if not self.config.mixed_precision:
            device = type(device)(device.device, device.name, False, device.channels_last)
        return device

    def _fresh_model(self) -> nn.Module:
        model = build_model(self.config.model, self.dataset.input_shape, self.dataset.num_classes, self.mean,
                            self.std, seed=self.config.seed, stack=self.config.stack)
        if not self.config.dropout:
            set_dropout(model, 0.0)
        return model

    def _make_trainer(self, device: DeviceInfo, batch_size: int) -> Trainer:
        optimizer = build_optimizer(self.config.optimizer, self.model.parameters(), self.config.lr,
                                    self.config.weight_decay)
        weights = (balanced_class_weights(self.train_set.labels, self.dataset.num_classes)
                   if self.config.remedy == "weighted loss" else None)
        trainer = Trainer(self.model, optimizer, self.train_set, device, batch_size=batch_size,
                          epochs=self.config.epochs, schedule=self.config.schedule, seed=self.config.seed,
                          augmentation=self.config.augmentation, val=self.val_set, class_weights=weights,
                          balanced_sampling=self.config.remedy == "weighted sampler")
        trainer.on("batch_end", self._on_batch)
        trainer.on("epoch_end", self._on_epoch)
        return trainer

    def _train(self) -> None:
        device, batch_size, notes = self._device(), self.config.batch_size, []
        while True:
            self.device, self.batch_size = device, batch_size
            self.steps_per_epoch = -(-len(self.train_set) // batch_size)
            self._active_trainer = trainer = self._make_trainer(device, batch_size)
            if self.resume_point and batch_size == self.config.batch_size:
                trainer.load_state(self.resume_point.trainer_tensors, self.resume_point.trainer_plain)
            if self._cancelled.is_set():
                trainer.stop()
            self._set(status="running", message=" ".join(notes) or "Training.", device_name=device.name)
            try:
                history = trainer.fit()
                break
            except torch.OutOfMemoryError:
                # Start again from the initial weights with a smaller batch, then on the CPU.
                self._set(batches=[], epochs=[])
                if device.device.type == "cuda":
                    torch.cuda.empty_cache()
                if batch_size > MIN_RETRY_BATCH and len(notes) < OOM_HALVINGS:
                    batch_size //= 2
                    notes.append(f"Out of memory: restarted with batch size {batch_size}.")
                elif device.device.type != "cpu":
                    device = pick_device("cpu")
                    notes.append("Out of memory on the GPU: restarted on the CPU.")
                else:
                    raise
                self.model = self._fresh_model()
        evaluation = evaluate(self.model, self.dataset.test, device, batch_size=batch_size)
        if history.diverged_at is not None:
            status = "diverged"
            message = f"{history.divergence_message.capitalize()} (the model keeps the last good weights)."
        elif history.stopped:
            status, message = "stopped", "Stopped; the model keeps the weights it had reached."
        else:
            seconds = sum(e.seconds for e in history.epochs)
            status = "finished"
            message = (f"Trained {len(history.epochs)} epoch(s) in {seconds:.1f} s; "
                       f"test accuracy {evaluation.accuracy:.1%}.")
        self._set(status=status, message=" ".join([*notes, message]), evaluation=evaluation)


def epochs_csv(epochs: list[EpochEvent]) -> str:
    """Per-epoch metrics as CSV text with a header row."""
    rows = ["epoch,train_loss,train_accuracy,val_loss,val_accuracy,images_per_sec,seconds"]
    rows += [",".join("" if v is None else f"{v:.6g}" for v in (e.epoch, e.train_loss, e.train_accuracy, e.val_loss,
                                                                 e.val_accuracy, e.images_per_sec, e.seconds))
             for e in epochs]
    return "\n".join(rows) + "\n"
