"""A model-agnostic Trainer: explicit model, optimizer, data and device; events per batch and epoch; cooperative
stop."""
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from dlplay.augment import Augmentation, random_affine
from dlplay.data import ImageSet
from dlplay.device import DeviceInfo, autocast, synchronize
from dlplay.evaluate import evaluate
from dlplay.layers import Dropout
from dlplay.training.distributed import Ranks, all_sum, shard
from dlplay.training.schedules import build_schedule

OPTIMIZERS = ("sgd", "momentum", "adam", "adamw", "rmsprop")
# A batch loss above this multiple of the first batch's (at least 1), or not finite, means the run has diverged: with
# too high a learning rate, cross-entropy jumps from ~2.3 to 1e6 and beyond long before it overflows to inf or NaN.
DIVERGENCE_FACTOR = 100.0
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
GENERATORS = ("shuffle", "augment", "dropout")  # the run's own random streams, each seeded from the run's seed


def build_optimizer(name: str, params, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """One of OPTIMIZERS ('momentum' is SGD with momentum 0.9) over `params`; Adam and AdamW run fused (one kernel
    for all parameters: a fifth of the for-loop version's time per step on a CPU)."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay)
    if name == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")


def hold_frozen_norms(model: nn.Module) -> None:
    """Put batch-norm layers whose weight and bias are frozen in eval mode, so that their running mean and variance
    stay fixed too (practitioners' way of freezing a backbone: in training mode they would keep moving)."""
    for module in model.modules():
        parameters = list(module.parameters(recurse=False))
        if isinstance(module, BATCH_NORMS) and parameters and not any(p.requires_grad for p in parameters):
            module.eval()


@dataclass(frozen=True)
class BatchEvent:
    """Metrics after one optimizer step."""

    epoch: int  # 1-based
    step: int  # 1-based, counted over the whole run
    steps_per_epoch: int
    loss: float
    accuracy: float
    images_per_sec: float  # over this epoch so far
    lr: float


@dataclass(frozen=True)
class EpochEvent:
    """Metrics after one epoch; validation fields are None without validation data."""

    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float | None
    val_accuracy: float | None
    images_per_sec: float
    seconds: float


@dataclass
class History:
    """Everything a run reported, and whether it was stopped early."""

    batches: list[BatchEvent] = field(default_factory=list)
    epochs: list[EpochEvent] = field(default_factory=list)
    stopped: bool = False
    diverged_at: int | None = None  # the step whose loss blew up; the model keeps the weights from before it

    def stop(self) -> "History":
        """Mark the run as stopped early; returns self."""
        self.stopped = True
        return self

    @property
    def divergence_message(self) -> str | None:
        """What to tell the user when the loss diverged."""
        if self.diverged_at is None:
            return None
        return f"loss diverged at step {self.diverged_at}: lower the learning rate"


class Trainer:
    """Trains any classifier on an in-memory ImageSet; the caller owns model, optimizer, data and device."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, train: ImageSet, device: DeviceInfo, *,
                 batch_size: int = 64, epochs: int = 1, schedule: str = "constant", seed: int = 0,
                 augmentation: Augmentation = Augmentation(), val: ImageSet | None = None,
                 label_smoothing: float = 0.0, class_weights: torch.Tensor | None = None,
                 balanced_sampling: bool = False, ranks: Ranks | None = None):
        if batch_size < 1 or epochs < 1:
            raise ValueError("batch_size and epochs must be at least 1")
        if ranks is not None and batch_size % ranks.world:
            raise ValueError(f"the batch size ({batch_size}, for all processes together) must be a multiple of the "
                             f"number of processes ({ranks.world})")
        self.model, self.optimizer, self.train_set, self.val_set = model, optimizer, train, val
        self.device, self.batch_size, self.epochs, self.seed = device, batch_size, epochs, seed
        self.augmentation = augmentation
        # Distributed (model wrapped in DistributedDataParallel by the caller): batch_size is the global batch, each
        # rank takes batch_size / world of its shard per step, and the epoch's metrics are summed over the ranks.
        self.ranks = ranks
        self.rank_batch = batch_size // ranks.world if ranks else batch_size
        shard_size = -(-len(train) // ranks.world) if ranks else len(train)  # a rank's share, padded like the order
        self.steps_per_epoch = -(-shard_size // self.rank_batch)
        self.scheduler = build_schedule(schedule, optimizer, self.steps_per_epoch * epochs)
        self.balanced_sampling = balanced_sampling
        weight = class_weights.to(device.device) if class_weights is not None else None
        self.loss_fn = nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing)
        # Only float16 needs its gradients scaled (bfloat16 has float32's range).
        self.scaler = torch.amp.GradScaler(device.device.type, enabled=device.autocast is torch.float16)
        self._listeners: dict[str, list[Callable]] = {"batch_end": [], "epoch_end": [], "held": []}
        # pause(), resume() and stop() come from other threads; the training thread holds under this condition.
        self._control = threading.Condition()
        self._stop = threading.Event()
        self._paused = False
        self.pause_at: int | None = None  # hold by itself once this many steps are done (then as if pause() was called)
        # Every random draw comes from the run's own generators, never the process-wide RNG that other threads use.
        # Dropout masks are drawn where the activations are (a mask drawn on the CPU would cross to the GPU at every
        # forward pass); the shuffle and the augmentation's few numbers are drawn on the CPU, as on every device.
        on_device = device.device.type in ("cuda", "mps")
        self.generators = {name: torch.Generator(device.device if on_device and name == "dropout" else "cpu")
                           .manual_seed(seed + offset) for offset, name in enumerate(GENERATORS)}
        self.epochs_done, self.steps_done = 0, 0
        self.loss_limit = math.inf  # set from the first batch's loss

    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """What continuing this run exactly needs besides the model: tensors, and JSON-ready plain data."""
        optimizer = self.optimizer.state_dict()
        tensors = {f"generator.{name}": g.get_state() for name, g in self.generators.items()}
        scalars: dict[str, dict] = {}
        for index, values in optimizer["state"].items():
            for name, value in values.items():
                if torch.is_tensor(value):
                    tensors[f"optimizer.{index}.{name}"] = value.detach().cpu().contiguous()
                else:
                    scalars.setdefault(str(index), {})[name] = value
        plain = {"param_groups": optimizer["param_groups"], "optimizer_scalars": scalars,
                 "scheduler": self.scheduler.state_dict() if self.scheduler else None,
                 "epochs_done": self.epochs_done, "steps_done": self.steps_done, "loss_limit": self.loss_limit,
                 "generator_devices": {name: g.device.type for name, g in self.generators.items()},
                 "scaler": self.scaler.state_dict()}  # float16's loss scale and its growth count ({} if unused)
        return tensors, plain

    def load_state(self, tensors: dict[str, torch.Tensor], plain: dict) -> None:
        """Restore what state() returned, so that fit() continues where the saved run stopped (exactly, on the same
        kind of device: a generator saved on another kind starts afresh from the seed and the step)."""
        optimizer_state: dict[int, dict] = {}
        saved_on = plain.get("generator_devices", {})
        for key, value in tensors.items():
            kind, _, rest = key.partition(".")
            if kind == "generator":
                generator = self.generators[rest]
                if saved_on.get(rest, "cpu") == generator.device.type:
                    generator.set_state(value)
                else:  # CUDA's Philox state is not the CPU's Mersenne Twister's
                    generator.manual_seed(self.seed + GENERATORS.index(rest) + 1_000_003 * plain["steps_done"])
            elif kind == "optimizer":
                index, name = rest.split(".", 1)  # fit() gives the tensor its parameter's device and layout
                optimizer_state.setdefault(int(index), {})[name] = value
        for index, values in plain["optimizer_scalars"].items():
            optimizer_state.setdefault(int(index), {}).update(values)
        self.optimizer.load_state_dict({"state": optimizer_state, "param_groups": plain["param_groups"]})
        if self.scheduler and plain["scheduler"]:
            self.scheduler.load_state_dict(plain["scheduler"])
        if self.scaler.is_enabled() and plain.get("scaler"):  # saved by a float16 run: resumed in float16
            self.scaler.load_state_dict(plain["scaler"])
        self.epochs_done, self.steps_done = plain["epochs_done"], plain["steps_done"]
        self.loss_limit = plain["loss_limit"]

    def on(self, event: str, callback: Callable) -> None:
        """Call `callback(BatchEvent)` on 'batch_end', `callback(EpochEvent)` on 'epoch_end', or `callback(step)` on
        'held' (the run has stopped moving: it holds after `step` steps until resume() or stop())."""
        self._listeners[event].append(callback)

    def stop(self) -> None:
        """Ask the run to stop; honoured before the next batch (safe to call from another thread)."""
        with self._control:
            self._stop.set()
            self._control.notify_all()

    def pause(self) -> None:
        """Hold the run before its next batch until resume() or stop(); 'held' fires once it holds."""
        with self._control:
            self._paused = True

    def resume(self) -> None:
        """Continue a paused run (anything sent after this call comes after the 'held' it answers)."""
        with self._control:
            self._paused = False
            self._control.notify_all()

    def _emit(self, event: str, payload) -> None:
        for callback in self._listeners[event]:
            callback(payload)

    def _prepare(self, images_uint8: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, H, W) on the device -> float 0..1 in the device's preferred memory format."""
        x = images_uint8.float().div_(255)
        return x.contiguous(memory_format=torch.channels_last) if self.device.channels_last else x

    def _epoch_order(self, generator: torch.Generator) -> torch.Tensor:
        """A shuffle of the training indices, or with balanced sampling a draw (with replacement) in which every
        class is equally likely."""
        labels = self.train_set.labels
        if not self.balanced_sampling:
            return torch.randperm(len(labels), generator=generator)
        per_image = (1.0 / torch.bincount(labels).double())[labels]
        return torch.multinomial(per_image, len(labels), replacement=True, generator=generator)

    def fit(self) -> History:
        """Run the remaining epochs (or until stop()); returns the History of this call."""
        images, labels = self.place()
        history, step = History(), self.steps_done
        last_good = LastGood(self.model)  # the weights before the latest step: kept if the next loss blows up
        for epoch in range(self.epochs_done + 1, self.epochs + 1):
            if self._stop.is_set():  # before drawing the epoch's order, so a saved state stays exact
                return history.stop()
            self.model.train()
            hold_frozen_norms(self.model)  # a frozen layer stays fixed, running statistics included
            meter = EpochMeter()
            for idx in self._batches():
                if not self._wait_or_stop(meter, step):
                    return history.stop()
                y = labels[idx]
                logits, loss = self._forward(images[idx], y)
                readout = Readout(loss, logits, y)  # on its way to the host while the backward pass is queued
                last_good.save()  # the weights this loss was computed with
                lr = self._update(loss)
                batch_loss, correct = readout.values()  # waits for the forward pass only
                if self.ranks is not None:  # every rank sees the same mean loss
                    batch_loss = all_sum([batch_loss], self.device.device)[0] / self.ranks.world
                if self._diverged(batch_loss, first=step == 0):
                    last_good.restore()  # the weights from before the step that made these
                    history.diverged_at = step + 1
                    return history
                last_good.accept()
                step += 1
                event = meter.add(epoch, step, self.steps_per_epoch, batch_loss, correct, len(y), lr)
                history.batches.append(event)
                self._emit("batch_end", event)
            event = self._end_epoch(epoch, meter)
            history.epochs.append(event)
            self.epochs_done, self.steps_done = epoch, step
            self._emit("epoch_end", event)
        return history

    def place(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Move the model, its optimizer's state and the training images to the device (fit() does it first);
        returns the images and labels there. Dropout draws from the run's own generator."""
        dev = self.device.device
        for module in self.model.modules():
            if isinstance(module, Dropout):
                module.generator = self.generators["dropout"]
        # Module.to keeps the Parameter objects, so the optimizer built on them still updates this model.
        self.model.to(dev, memory_format=self.device.memory_format)
        self._lay_out_optimizer_state()
        return self.train_set.images.to(dev), self.train_set.labels.to(dev)

    def _lay_out_optimizer_state(self) -> None:
        """Give each restored state tensor its parameter's device, and each per-parameter one (Adam's moments) its
        parameter's memory layout too.

        load_state() runs while the model may still be on the CPU; the optimizer's own rule for restored state is
        applied again once the parameters are where they train: every tensor on its parameter's device, the 0-d
        step counter too for fused and capturable optimizers (a fused AdamW with its step on the CPU and its
        parameters on a GPU fails, pytorch#124133), on the CPU for the others. Fused optimizers walk a parameter and
        its moments through memory in the same order, so a channels_last weight with a moment restored in NCHW
        order would be updated with another weight's numbers."""
        if not self.optimizer.state:
            return
        self.optimizer.load_state_dict(self.optimizer.state_dict())
        for param, state in self.optimizer.state.items():
            for name, value in state.items():
                if torch.is_tensor(value) and value.shape == param.shape and (
                        value.device != param.device or value.stride() != param.stride()):
                    state[name] = torch.empty_like(param, dtype=value.dtype).copy_(value)

    def _batches(self):
        """The epoch's batches of training indices, in the order drawn from the run's shuffle generator."""
        order = self._epoch_order(self.generators["shuffle"])  # the same on every rank: one seed
        order = (shard(order, self.ranks) if self.ranks else order).to(self.device.device)
        for i in range(self.steps_per_epoch):
            yield order[i * self.rank_batch:(i + 1) * self.rank_batch]

    def _wait_or_stop(self, meter: "EpochMeter", step: int) -> bool:
        """Hold while paused, or from `pause_at` steps on (that time does not count against images/s); False once
        stop() was called. 'held' is sent under the lock that resume() takes, so it always comes first."""
        with self._control:
            if self.pause_at is not None and step >= self.pause_at:
                self._paused, self.pause_at = True, None
            if self._paused and not self._stop.is_set():
                self._emit("held", step)
                waited = time.perf_counter()
                self._control.wait_for(lambda: not self._paused or self._stop.is_set())
                meter.start += time.perf_counter() - waited
        return not self._stop.is_set()

    def _forward(self, images_uint8: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Augment a batch and run the model: (logits, loss)."""
        x = random_affine(self._prepare(images_uint8), self.augmentation, self.generators["augment"])
        with autocast(self.device):
            logits = self.model(x)
            return logits, self.loss_fn(logits, y)

    def _diverged(self, batch_loss: float, first: bool) -> bool:
        """Whether this batch's loss means the run has blown up (the first batch sets the limit)."""
        if first:
            self.loss_limit = DIVERGENCE_FACTOR * max(batch_loss, 1.0)  # NaN stays NaN: caught below
        return not batch_loss <= self.loss_limit  # also true for NaN

    def _update(self, loss: torch.Tensor) -> float:
        """Backward pass, optimizer and schedule step; returns the learning rate the step used."""
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        lr = self.optimizer.param_groups[0]["lr"]
        if self.scheduler is not None:
            self.scheduler.step()
        return lr

    def _end_epoch(self, epoch: int, meter: "EpochMeter") -> EpochEvent:
        """The epoch's metrics, with the validation images evaluated."""
        synchronize(self.device.device)  # the clock stops when the device has done the epoch's work
        seconds = time.perf_counter() - meter.start
        if self.ranks is not None:
            meter.seen, meter.loss_sum, meter.correct = all_sum([meter.seen, meter.loss_sum, meter.correct],
                                                                self.device.device)
        val = (evaluate(self.model, self.val_set, self.device, batch_size=self.batch_size)
               if self.val_set is not None else None)
        return EpochEvent(epoch, meter.loss_sum / meter.seen, meter.correct / meter.seen, val.loss if val else None,
                          val.accuracy if val else None, meter.seen / seconds, seconds)


class EpochMeter:
    """Running totals of one epoch: images seen, summed loss, correct predictions, and its start time."""

    def __init__(self):
        self.start, self.seen, self.loss_sum, self.correct = time.perf_counter(), 0, 0.0, 0

    def add(self, epoch: int, step: int, steps_per_epoch: int, batch_loss: float, batch_correct: int, n: int,
            lr: float) -> BatchEvent:
        """Count one batch of `n` images, `batch_correct` of them right; returns its BatchEvent."""
        self.seen += n
        self.loss_sum += batch_loss * n
        self.correct += batch_correct
        return BatchEvent(epoch, step, steps_per_epoch, batch_loss, batch_correct / n,
                          self.seen / (time.perf_counter() - self.start), lr)


class Readout:
    """A step's loss and correct count, copied to the host without waiting: the device goes on with the backward
    pass and the update queued after it, while the host waits only for the forward pass (an .item() per value
    would stall the device on the host at every step)."""

    def __init__(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor):
        values = torch.stack([loss.detach().float(), (logits.detach().argmax(1) == y).sum().float()])
        self._event = None
        if values.device.type == "cuda":
            self._host = torch.empty(2, pin_memory=True)
            self._host.copy_(values, non_blocking=True)
            self._event = torch.cuda.Event()
            self._event.record()
        else:
            self._host = values

    def values(self) -> tuple[float, int]:
        """(loss, correct), once they have arrived."""
        if self._event is not None:
            self._event.synchronize()
        loss, correct = self._host.tolist()
        return loss, int(correct)


class LastGood:
    """The model's weights and float buffers before its latest step, to go back to when that step blows the loss
    up. Two copies on the device, written by one multi-tensor copy: save() fills the spare before a step, accept()
    keeps it once the step's loss is known to be good, restore() puts back the last accepted one."""

    def __init__(self, model: nn.Module):
        self.state = [t for t in model.state_dict().values() if t.is_floating_point()]
        self.good = [t.detach().clone() for t in self.state]
        self.spare = [t.detach().clone() for t in self.state]

    @torch.no_grad()
    def save(self) -> None:
        """Remember the model as it is now, until accept() or the next save()."""
        if self.state:
            torch._foreach_copy_(self.spare, self.state)

    def accept(self) -> None:
        """The weights save() remembered led to a good loss: they are the ones restore() goes back to now."""
        self.good, self.spare = self.spare, self.good

    @torch.no_grad()
    def restore(self) -> None:
        """Put back the last accepted weights."""
        if self.state:
            torch._foreach_copy_(self.state, self.good)
