"""A training job as a worker runs it: data, model and Trainer, out-of-memory back-off, per-epoch checkpoints and
the final model and evaluation, reported as plain events and files (the transport is the caller's)."""
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from dlplay.after_training.transfer import IMAGENET, load_imagenet_backbone, with_new_head
from dlplay.augment import forget_device_buffers
from dlplay.checkpoint import ModelCard, load_model, model_bytes, read_training_state, training_state_bytes
from dlplay.data import Dataset, balanced_class_weights
from dlplay.device import (
    AcceleratorLock,
    DeviceInfo,
    is_out_of_memory,
    make_deterministic,
    pick_device,
    release_memory,
)
from dlplay.evaluate import evaluate, evaluation_bytes
from dlplay.models import build_model, set_dropout
from dlplay.training.jobs.spec import DataRef, JobSpec, RunConfig, RunStatus, training_split
from dlplay.training.trainer import BatchEvent, EpochEvent, Trainer, build_optimizer

log = logging.getLogger(__name__)
STATE_FILE, MODEL_FILE, EVALUATION_FILE = "state.safetensors", "model.safetensors", "evaluation.safetensors"
OOM_HALVINGS = 2  # out of memory: halve the batch this many times, then move to the CPU
MIN_RETRY_BATCH = 8
FLUSH_SECONDS = 0.2  # batch events are sent in bundles at most this often: the server wakes up 5 times a second
# Apple's one GPU trains one run at a time: the worker that holds this lock has it, the others train on the CPU.
MPS_LOCK = AcceleratorLock(Path(tempfile.gettempdir()) / f"dlplay-mps-{os.getuid()}.lock")
MPS_BUSY = "Apple's GPU is busy with another run: training on the CPU."

Emit = Callable[[dict], None]  # one JSON-ready event for the server
Deliver = Callable[[str, bytes], None]  # one finished file (name, contents) for the run's folder on the server


@dataclass(frozen=True)
class ResumePoint:
    """Where an interrupted run stopped: saved after its last finished epoch."""

    config: RunConfig
    data: DataRef
    weights: dict
    trainer_tensors: dict
    trainer_plain: dict
    epochs: list[EpochEvent]
    batches: list[BatchEvent]


def read_resume_point(path: Path) -> ResumePoint:
    """The resume point stored in a run's state file."""
    weights, tensors, plain, _card = read_training_state(path)
    return ResumePoint(RunConfig.from_plain(plain["config"]), DataRef(**plain["data"]), weights, tensors,
                       plain["trainer"], [EpochEvent(**e) for e in plain["epochs"]],
                       [BatchEvent(**b) for b in plain["batches"]])


def build_run_model(config: RunConfig, dataset: Dataset, from_source: bool = True) -> nn.Module:
    """The model a run starts from: fresh weights, or (transfer learning) the `start_from` model's weights with a
    new head and `freeze` applied. `from_source` False builds the same shapes without reading that file (a resumed
    run loads its own weights). An impossible architecture or source raises ValueError."""
    mean, std = dataset.channel_stats()
    model = build_model(config.model, dataset.input_shape, dataset.num_classes, mean, std, seed=config.seed,
                        stack=config.stack)
    if config.start_from:
        if from_source:
            model = (load_imagenet_backbone(model, config.model) if config.start_from == IMAGENET
                     else _previous_run_model(config, dataset))
        model = with_new_head(model, dataset.num_classes, config.freeze, seed=config.seed)
    if not config.dropout:
        set_dropout(model, 0.0)
    return model


def _previous_run_model(config: RunConfig, dataset: Dataset) -> nn.Module:
    """The trained model `config.start_from` names, checked against this run's images and architecture."""
    source, card = load_model(config.start_from, "the model to start from")
    if card.input_shape != dataset.input_shape:
        raise ValueError(f"the model to start from takes {'×'.join(map(str, card.input_shape))} images and these "
                         f"are {'×'.join(map(str, dataset.input_shape))}")
    if (card.architecture, card.stack) != (config.model, tuple((s.kind, s.size) for s in config.stack)):
        raise ValueError(f"the model to start from is a {card.architecture}, not a {config.model}")
    return source


def run_card(config: RunConfig, dataset: Dataset, model: nn.Module, accuracy: float | None = None) -> ModelCard:
    """The metadata a run's saved model carries (the normalisation is the model's own: a transferred model keeps
    the one its weights were trained with)."""
    normalize = model[0]
    mean, std = tuple(normalize.mean.flatten().tolist()), tuple(normalize.std.flatten().tolist())
    return ModelCard(config.model, dataset.class_names, dataset.input_shape, mean, std, dataset.name, accuracy,
                     tuple((spec.kind, spec.size) for spec in config.stack))


def back_off(device: DeviceInfo, batch_size: int, halvings: int, mixed_precision: bool
             ) -> tuple[DeviceInfo, int, str] | None:
    """Where a run that ran out of memory restarts: with half the batch (OOM_HALVINGS times, while above
    MIN_RETRY_BATCH), then on the CPU in the run's own precision; (device, batch size, what to tell the user), or
    None on the CPU when there is nothing left to try."""
    if batch_size > MIN_RETRY_BATCH and halvings < OOM_HALVINGS:
        return device, batch_size // 2, f"Out of memory: restarted with batch size {batch_size // 2}."
    if device.device.type != "cpu":
        return pick_device("cpu", mixed_precision), batch_size, "Out of memory on the GPU: restarted on the CPU."
    return None


def batch_row(event: BatchEvent) -> list:
    """A BatchEvent as a compact JSON-ready row."""
    return [event.epoch, event.step, event.steps_per_epoch, event.loss, event.accuracy, event.images_per_sec, event.lr]


class JobRunner:
    """Runs one job to its end; pause(), resume(), stop() and set_threads() may be called from another thread."""

    def __init__(self, spec: JobSpec, dataset: Dataset, emit: Emit, deliver: Deliver,
                 resume: ResumePoint | None = None):
        self.spec, self.config, self.dataset = spec, spec.config, dataset
        self._emit_now, self._deliver, self.resume_point = emit, deliver, resume
        self.train_set, self.val_set = training_split(self.config, dataset)
        self.model = build_run_model(self.config, dataset, from_source=resume is None)
        self.card = run_card(self.config, dataset, self.model)
        if resume:
            self.model.load_state_dict(resume.weights)
        self._pending: list[list] = []
        self._flushed = time.monotonic()
        self._stopped = threading.Event()
        self._trainer: Trainer | None = None
        self._threads = spec.threads

    # pause() and resume() come on the commands thread: their status goes out at once, leaving the batches that
    # the training thread collects to that thread (which sends them before it reports holding).
    def pause(self) -> None:
        """Hold before the next batch; the worker reports 'held' once it does."""
        if self._trainer:
            self._trainer.pause()
            self._emit_now({"type": "status", "status": RunStatus.PAUSED.value, "message": "Paused."})

    def resume(self) -> None:
        """Continue after pause() or after the spec's pause_at_step."""
        if self._trainer:
            self._trainer.resume()
            self._emit_now({"type": "status", "status": RunStatus.RUNNING.value, "message": "Training."})

    def stop(self) -> None:
        """Stop before the next batch; the model keeps the weights it reached."""
        self._stopped.set()
        if self._trainer:
            self._trainer.stop()

    def set_threads(self, threads: int) -> None:
        """Use this many CPU threads from the next batch on."""
        self._threads = max(1, threads)

    def _emit(self, event: dict) -> None:
        self._flush()
        self._emit_now(event)

    def _flush(self) -> None:
        if self._pending:
            rows, self._pending = self._pending, []
            self._emit_now({"type": "batches", "rows": rows})
        self._flushed = time.monotonic()

    def _apply_threads(self) -> None:
        # Called on the training thread: torch's intra-op thread count belongs to the thread that runs the ops.
        if torch.get_num_threads() != self._threads:
            torch.set_num_threads(self._threads)
            self._emit({"type": "threads", "n": self._threads})

    def _on_batch(self, event: BatchEvent) -> None:
        self._pending.append(batch_row(event))
        if time.monotonic() - self._flushed >= FLUSH_SECONDS:
            self._flush()
        self._apply_threads()

    def _on_held(self, step: int) -> None:
        self._emit({"type": "held", "step": step})

    def _on_epoch(self, event: EpochEvent, batch_size: int, history: list[EpochEvent], batches: list[BatchEvent]):
        self._emit({"type": "epoch", "epoch": asdict(event)})
        if batch_size != self.config.batch_size:  # a resume restarts at the set batch size: no checkpoint
            return
        tensors, trainer_plain = self._trainer.state()
        plain = {"config": self.config.to_plain(), "data": asdict(self.spec.data), "trainer": trainer_plain,
                 "epochs": [asdict(e) for e in history], "batches": [asdict(b) for b in batches]}
        self._deliver(STATE_FILE, training_state_bytes(self.model, self.card, tensors, plain))
        self._emit({"type": "file", "name": STATE_FILE, "epoch": event.epoch})

    def _device(self) -> tuple[DeviceInfo, list[str]]:
        """The run's device, and what to tell the user about the choice; CUDA kernels made repeatable (a run here
        checkpoints every epoch and promises an exact resume)."""
        device = pick_device(self.config.device, self.config.mixed_precision)
        notes = [device.note] if device.note else []
        if device.device.type == "mps" and not MPS_LOCK.acquire():
            device = pick_device("cpu", self.config.mixed_precision)
            notes.append(MPS_BUSY)
        make_deterministic(device)
        return device, notes

    def _make_trainer(self, device: DeviceInfo, batch_size: int) -> Trainer:
        optimizer = build_optimizer(self.config.optimizer, self.model.parameters(), self.config.lr,
                                    self.config.weight_decay)
        weights = (balanced_class_weights(self.train_set.labels, self.dataset.num_classes)
                   if self.config.remedy == "weighted loss" else None)
        trainer = Trainer(self.model, optimizer, self.train_set, device, batch_size=batch_size,
                          epochs=self.config.epochs, schedule=self.config.schedule, seed=self.config.seed,
                          augmentation=self.config.augmentation, val=self.val_set, class_weights=weights,
                          label_smoothing=self.config.label_smoothing,
                          balanced_sampling=self.config.remedy == "weighted sampler")
        history = list(self.resume_point.epochs) if self.resume_point and batch_size == self.config.batch_size else []
        batches = list(self.resume_point.batches) if history else []
        trainer.on("batch_end", self._on_batch)
        trainer.on("batch_end", batches.append)

        def epoch_end(event: EpochEvent) -> None:
            history.append(event)
            self._on_epoch(event, batch_size, history, batches)

        trainer.on("epoch_end", epoch_end)
        trainer.on("held", self._on_held)
        trainer.pause_at = self.spec.pause_at_step
        if history:
            trainer.load_state(self.resume_point.trainer_tensors, self.resume_point.trainer_plain)
        return trainer

    def run(self) -> None:
        """Train, evaluate on the test images, deliver the model and the evaluation, and report the outcome."""
        try:
            status, message, device, batch_size = self._train()
        except Exception as err:  # a worker: report the failure in plain words, keep details in the log
            log.exception("training run failed")
            self._emit({"type": "done", "status": RunStatus.FAILED.value, "message": f"Training failed: {err}"})
            return
        evaluation = evaluate(self.model, self.dataset.test, device, batch_size=batch_size)
        if status == RunStatus.FINISHED:
            message += f" test accuracy {evaluation.accuracy:.1%}."
        self.card = run_card(self.config, self.dataset, self.model, evaluation.accuracy)
        self._deliver(MODEL_FILE, model_bytes(self.model, self.card))
        self._deliver(EVALUATION_FILE, evaluation_bytes(evaluation))
        self._emit({"type": "done", "status": status.value, "message": message,
                    "files": [MODEL_FILE, EVALUATION_FILE]})

    def _train(self) -> tuple[RunStatus, str, DeviceInfo, int]:
        (device, notes), batch_size, halvings = self._device(), self.config.batch_size, 0
        self._emit({"type": "threads", "n": torch.get_num_threads()})
        while True:
            self._apply_threads()
            self._trainer = trainer = self._make_trainer(device, batch_size)
            if self._stopped.is_set():
                trainer.stop()
            self._emit({"type": "started", "device": device.name, "batch_size": batch_size, "pid": os.getpid(),
                        "steps_per_epoch": trainer.steps_per_epoch, "train_size": len(self.train_set),
                        "val_size": len(self.val_set) if self.val_set else 0,
                        "message": " ".join(notes) or "Training."})
            try:
                history = trainer.fit()
                break
            except Exception as err:
                retry = back_off(device, batch_size, halvings, self.config.mixed_precision) if is_out_of_memory(
                    err) else None
                if retry is None:
                    raise
            # Start again from the initial weights with a smaller batch, then on the CPU. Out of the handler, the
            # failed attempt's frames went with its traceback; its model and optimizer go now, before the cache is
            # emptied, or the memory they hold would stay reserved (on the GPU the run has just left, too).
            self._trainer = trainer = self.model = None
            forget_device_buffers()
            release_memory(device.device)
            halvings += retry[0] is device
            device, batch_size, note = retry
            notes.append(note)
            self._pending = []
            self._emit({"type": "reset"})
            self.model, self.resume_point = build_run_model(self.config, self.dataset), None
        self._flush()
        if history.diverged_at is not None:
            status = RunStatus.DIVERGED
            message = f"{history.divergence_message.capitalize()} (the model keeps the last good weights)."
        elif history.stopped:
            status, message = RunStatus.STOPPED, "Stopped; the model keeps the weights it had reached."
        else:
            seconds = sum(e.seconds for e in history.epochs)
            status, message = RunStatus.FINISHED, f"Trained {len(history.epochs)} epoch(s) in {seconds:.1f} s;"
        return status, " ".join([*notes, message]), device, batch_size
