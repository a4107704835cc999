"""The network playground's core: 2-D datasets, input features, a small fully connected network, and its training
step by step (TensorFlow Playground's model, in PyTorch, with more than two classes and regression)."""
import contextlib
import copy
import csv
import io
import itertools
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from dlplay.layers import Dropout
from dlplay.limits import limits
from dlplay.models import init_weights

CLASSIFICATION, REGRESSION = "classification", "regression"
EXTENT = 6.0  # every dataset lies in [-EXTENT, EXTENT]²
MAX_HIDDEN_LAYERS, MAX_NEURONS = 8, 16
# How Play trains: 5 epochs an update, a new update asked for every 0.15 s (one asked for while an update runs waits
# for it): 3.9 updates a second in Chromium on 2 cores (bench/playground_bench.py).
EPOCHS_PER_UPDATE, UPDATE_SECONDS = 5, 0.15
MAX_SNAPSHOTS = 400  # past networks kept for the time slider; beyond, every other one is dropped


def _circle(n: int, noise: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Class 1 inside a disc of radius 2, class 0 on a ring from 3.5 to 5."""
    inner = n // 2
    radius = torch.cat([torch.rand(inner, generator=g) * 2, 3.5 + torch.rand(n - inner, generator=g) * 1.5])
    angle = torch.rand(n, generator=g) * 2 * math.pi
    x = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], 1)
    return x + noise * torch.randn(n, 2, generator=g), (torch.arange(n) < inner).long()


def _xor(n: int, noise: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Points in the four quadrants (kept 0.3 from the axes); the class is whether x₁ and x₂ share a sign."""
    x = (torch.rand(n, 2, generator=g) * 2 - 1) * 5
    x = x + torch.sign(x) * 0.3
    label = (x[:, 0] * x[:, 1] > 0).long()
    return x + noise * torch.randn(n, 2, generator=g), label


def _clusters(centres: list[tuple[float, float]]) -> Callable:
    def make(n: int, noise: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        label = torch.arange(n) % len(centres)
        x = torch.tensor(centres)[label] + (0.5 + 2 * noise) * torch.randn(n, 2, generator=g)
        return x, label
    return make


def _spiral(n: int, noise: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two interleaved spirals, one per class."""
    label = torch.arange(n) % 2
    t = torch.rand(n, generator=g) * 1.75 * 2 * math.pi
    radius = 5 * t / (1.75 * 2 * math.pi)
    angle = t + math.pi * label
    x = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], 1)
    return x + noise * torch.randn(n, 2, generator=g), label


def _moons(n: int, noise: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two interlocking half circles (scikit-learn's make_moons, scaled to the plane)."""
    label = torch.arange(n) % 2
    t = torch.rand(n, generator=g) * math.pi
    x = torch.where(label[:, None] == 0, torch.stack([torch.cos(t), torch.sin(t)], 1),
                    torch.stack([1 - torch.cos(t), 0.5 - torch.sin(t)], 1))
    x = (x - torch.tensor([0.5, 0.25])) * 3.5
    return x + noise * torch.randn(n, 2, generator=g), label


def _plane(n: int, noise: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A tilted plane: the target is (x₁ + x₂) / 10, plus noise."""
    x = (torch.rand(n, 2, generator=g) * 2 - 1) * 5
    return x, (x.sum(1) / 10 + 0.1 * noise * torch.randn(n, generator=g))


def _bumps(n: int, noise: float, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A mixture of Gaussian bumps, two up and two down."""
    x = (torch.rand(n, 2, generator=g) * 2 - 1) * 5
    y = torch.zeros(n)
    for (cx, cy), sign in (((-2.5, 2.5), 1), ((2.5, -2.5), 1), ((2.5, 2.5), -1), ((-2.5, -2.5), -1)):
        y += sign * torch.exp(-((x[:, 0] - cx) ** 2 + (x[:, 1] - cy) ** 2) / 4)
    return x, y + 0.1 * noise * torch.randn(n, generator=g)


@dataclass(frozen=True)
class DataKind:
    """A 2-D dataset: classification (with its number of classes) or regression, and its generator."""

    task: str
    classes: int
    make: Callable


DATASETS: dict[str, DataKind] = {
    "circle": DataKind(CLASSIFICATION, 2, _circle),
    "XOR": DataKind(CLASSIFICATION, 2, _xor),
    "two Gaussians": DataKind(CLASSIFICATION, 2, _clusters([(2.0, 2.0), (-2.0, -2.0)])),
    "spiral": DataKind(CLASSIFICATION, 2, _spiral),
    "two moons": DataKind(CLASSIFICATION, 2, _moons),
    "four clusters (4 classes)": DataKind(CLASSIFICATION, 4, _clusters([(2.5, 2.5), (-2.5, 2.5), (-2.5, -2.5),
                                                                        (2.5, -2.5)])),
    "plane (regression)": DataKind(REGRESSION, 1, _plane),
    "Gaussian bumps (regression)": DataKind(REGRESSION, 1, _bumps),
}

FEATURES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "x₁": lambda a, b: a,
    "x₂": lambda a, b: b,
    "x₁²": lambda a, b: a * a,
    "x₂²": lambda a, b: b * b,
    "x₁x₂": lambda a, b: a * b,
    "sin x₁": lambda a, b: torch.sin(a),
    "sin x₂": lambda a, b: torch.sin(b),
}
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "ReLU": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "linear": nn.Identity, "LeakyReLU": nn.LeakyReLU,
}
# foreach: one fused update over all the parameters (10% faster per step on these tiny networks)
# Fused kernels where torch has them (one call updates every tensor: a 2 x 8 network's epoch on the spiral takes
# 18 ms with Adam fused against 25 ms with foreach), foreach for RMSprop, which has no fused version.
OPTIMIZERS: dict[str, Callable] = {
    "SGD": lambda p, lr: torch.optim.SGD(p, lr, fused=True),
    "SGD + momentum": lambda p, lr: torch.optim.SGD(p, lr, momentum=0.9, fused=True),
    "Adam": lambda p, lr: torch.optim.Adam(p, lr, fused=True),
    "RMSprop": lambda p, lr: torch.optim.RMSprop(p, lr, foreach=True),
}
REGULARIZERS = ("none", "L1", "L2")


@dataclass(frozen=True)
class Points:
    """2-D points and their labels (class indices) or targets (floats), split into train and test."""

    task: str
    classes: int  # 1 for regression
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


def split(task: str, classes: int, x: torch.Tensor, y: torch.Tensor, train_fraction: float,
          g: torch.Generator) -> Points:
    """Shuffle the points and split them into train and test (at least one point on each side)."""
    order = torch.randperm(len(x), generator=g)
    cut = min(len(x) - 1, max(1, round(len(x) * train_fraction)))
    train, test = order[:cut], order[cut:]
    return Points(task, classes, x[train].float(), y[train], x[test].float(), y[test])


def make_points(name: str, n: int, noise: float, train_fraction: float, seed: int) -> Points:
    """A named dataset of n points; noise 0 to 1 (for classes, the spread around each class's shape)."""
    kind = DATASETS[name]
    g = torch.Generator().manual_seed(seed)
    x, y = kind.make(n, noise * 1.5, g)
    return split(kind.task, kind.classes, x, y, train_fraction, g)


def epochs_per_update(train_points: int, batch_sizes: Sequence[int], max_steps: int) -> tuple[int, int]:
    """(epochs one live update trains, optimizer steps in one epoch of all the networks): EPOCHS_PER_UPDATE, fewer
    when those steps are many (at most `max_steps` an update); 0 when a single epoch is over it. A link's cost (a
    CSV's points in batches of 1 took 10 s an update) is worked out before any training."""
    steps = sum(-(-train_points // size) for size in batch_sizes)
    return min(EPOCHS_PER_UPDATE, max_steps // steps), steps


def train_together(sessions: Sequence["Session"], rounds: int, keep_going: Callable[[], bool] = lambda: True) -> None:
    """Train compared sessions `rounds` rounds, checking `keep_going` before each: in a round the sessions at the
    lowest epoch train one epoch (all of them once they stand level, so a network added later catches up first).
    A round holds every session's lock, taken in order: a reader holding them too sees every network between
    rounds, never one trained and the other not yet."""
    for _ in range(rounds):
        if not keep_going():
            return
        with contextlib.ExitStack() as held:
            for session in sessions:
                held.enter_context(session.lock)
            lowest = min(session.epoch for session in sessions)
            for session in sessions:
                if session.epoch == lowest:
                    session.train(1)


def read_points_csv(data: bytes, train_fraction: float, seed: int) -> Points:
    """The user's points from a CSV with columns x1, x2 and label (classes) or target (regression); a bad file
    raises ValueError with one sentence naming the problem. Its rows are counted before any is parsed, and parsing
    stops at the limit (a CSV parsed in full first took +220 MB for 6 MB)."""
    limit = limits().csv_rows
    points = data.count(b"\n") - 1 + (not data.endswith(b"\n"))  # lines after the header
    if points > limit:
        raise ValueError(f"the CSV has {points:,} points; the playground takes at most {limit:,}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError("the file is not text (UTF-8); save it as CSV") from None
    reader = csv.DictReader(io.StringIO(text))
    columns = {name.strip().lower() for name in reader.fieldnames or []}
    rows = list(itertools.islice(reader, limit))  # a row spans at least one line: the count above bounds it
    answer = "label" if "label" in columns else "target" if "target" in columns else None
    missing = [c for c in ("x1", "x2") if c not in columns] + ([] if answer else ["label or target"])
    if missing:
        raise ValueError(f"the CSV needs the columns x1, x2 and label (or target); missing: {', '.join(missing)}")
    if len(rows) < 4:
        raise ValueError("the CSV needs at least 4 points")
    values = []
    for number, row in enumerate(rows, start=2):
        row = {k.strip().lower(): v for k, v in row.items() if k is not None}
        try:
            values.append([float(row["x1"]), float(row["x2"]), float(row[answer])])
        except (TypeError, ValueError):
            raise ValueError(f"line {number} has a value that is not a number") from None
    table = torch.tensor(values, dtype=torch.float64)
    if not torch.isfinite(table).all():
        raise ValueError("the CSV has infinite or NaN values")
    x, y = table[:, :2], table[:, 2]
    if answer == "label":
        if not torch.equal(y, y.round()) or y.min() < 0:
            raise ValueError("labels must be whole numbers 0, 1, 2, …")
        classes = int(y.max()) + 1
        if len(torch.unique(y)) < 2:
            raise ValueError("every point has the same label: a classifier needs at least two classes")
        if classes > 10:
            raise ValueError("labels go up to 9 at most (10 classes)")
        y = y.long()
    else:
        classes, y = 1, y.float()
    scale = EXTENT * 0.9 / max(1e-9, x.abs().max().item())  # fit the points into the plane shown
    g = torch.Generator().manual_seed(seed)
    return split(CLASSIFICATION if answer == "label" else REGRESSION, classes, x * scale, y, train_fraction, g)


def feature_matrix(x: torch.Tensor, features: tuple[str, ...]) -> torch.Tensor:
    """The chosen input features of 2-D points (N, 2) as a (N, len(features)) matrix."""
    return torch.stack([FEATURES[f](x[:, 0], x[:, 1]) for f in features], 1)


@dataclass(frozen=True)
class NetworkConfig:
    """Everything that defines a playground network and how it trains."""

    features: tuple[str, ...] = ("x₁", "x₂")
    hidden: tuple[int, ...] = (4, 2)
    activations: tuple[str, ...] = ("tanh", "tanh")  # one per hidden layer
    dropout: float = 0.0
    regularizer: str = "none"
    reg_rate: float = 0.0
    optimizer: str = "SGD"
    lr: float = 0.03
    batch_size: int = 10

    def check(self) -> None:
        """Raise ValueError with one sentence when the configuration cannot make a network."""
        if not self.features:
            raise ValueError("choose at least one input feature")
        if len(self.hidden) > MAX_HIDDEN_LAYERS or any(not 1 <= n <= MAX_NEURONS for n in self.hidden):
            raise ValueError(f"at most {MAX_HIDDEN_LAYERS} hidden layers of 1 to {MAX_NEURONS} neurons")
        if len(self.activations) != len(self.hidden):
            raise ValueError("one activation per hidden layer")


def build_network(config: NetworkConfig, outputs: int, generator: torch.Generator) -> nn.Sequential:
    """Linear layers with each hidden layer's activation (and dropout), ending in `outputs` raw scores; initial
    weights and dropout masks come from `generator`, never the process-wide RNG other sessions share."""
    config.check()
    layers: list[nn.Module] = []
    width = len(config.features)
    for size, activation in zip(config.hidden, config.activations, strict=True):
        layers += [nn.Linear(width, size), ACTIVATIONS[activation]()]
        if config.dropout:
            dropout = Dropout(config.dropout)
            dropout.generator = generator
            layers.append(dropout)
        width = size
    layers.append(nn.Linear(width, outputs))
    model = nn.Sequential(*layers)
    init_weights(model, generator)
    return model


def loss_of(task: str, scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for classes (binary through the same formula), half the squared error for regression."""
    if task == CLASSIFICATION:
        return F.cross_entropy(scores, y)
    return 0.5 * F.mse_loss(scores.squeeze(1), y)


def linear_layers(model: nn.Sequential) -> list[nn.Linear]:
    """A playground network's linear layers, input side first (the last one gives the outputs)."""
    return [m for m in model if isinstance(m, nn.Linear)]


def hidden_outputs(model: nn.Sequential, x: torch.Tensor) -> list[torch.Tensor]:
    """Each hidden layer's output (after its activation) for the feature rows `x`, input side first."""
    outputs = []
    for layer in model:
        x = layer(x)
        if not isinstance(layer, (nn.Linear, nn.Dropout)):  # an activation ends a hidden layer
            outputs.append(x)
    return outputs


def penalty(model: nn.Module, regularizer: str) -> torch.Tensor:
    """Σ|w| (L1) or ½Σw² (L2) over the weights (not the biases); training adds the rate times this to the loss."""
    weights = [m.weight for m in linear_layers(model)]
    if regularizer == "L1":
        return sum(w.abs().sum() for w in weights)
    if regularizer == "L2":
        return 0.5 * sum((w * w).sum() for w in weights)
    return torch.zeros(())


@dataclass
class Session:
    """One playground run: the data, the network, its optimizer, and its numbers and verdict after each epoch."""

    points: Points
    config: NetworkConfig
    seed: int
    model: nn.Sequential = field(init=False)
    epoch: int = 0
    train_losses: list[float] = field(default_factory=list)  # loss_of alone: the penalty is not in it...
    penalties: list[float] = field(default_factory=list)  # ...but here: rate × penalty, 0 without one
    test_losses: list[float] = field(default_factory=list)
    test_accuracies: list[float] = field(default_factory=list)  # classification only
    dead: list[int] = field(default_factory=list)  # hidden neurons that output 0 for every training point
    weight_sizes: list[float] = field(default_factory=list)  # mean |w| over the weights
    candidates: list[str] = field(default_factory=list)  # each epoch's verdict on its own numbers...
    shown: list[str] = field(default_factory=list)  # ...and the one shown (shown_kind)
    snapshots: dict[int, dict] = field(default_factory=dict)  # epoch -> weights, for the time slider
    snapshot_stride: int = 1

    def __post_init__(self):
        # A page may read the session while an earlier run of it is still training (a click interrupts a live
        # update): training holds this lock, and readers take it to see a whole epoch.
        self.lock = threading.RLock()
        self.generator = torch.Generator().manual_seed(self.seed)
        self.model = build_network(self.config, self.points.classes, self.generator)
        self.optimizer = OPTIMIZERS[self.config.optimizer](self.model.parameters(), lr=self.config.lr)
        self.train_inputs = feature_matrix(self.points.train_x, self.config.features)
        self.test_inputs = feature_matrix(self.points.test_x, self.config.features)
        self.chance_loss = chance_loss(self.points.task, self.points.train_y)
        self.neurons = sum(self.config.hidden)
        self._record()

    def train(self, epochs: int = 1, keep_going: Callable[[], bool] = lambda: True) -> None:
        """Run `epochs` passes over the training points in shuffled mini-batches, checking `keep_going` before
        each."""
        n, size = len(self.train_inputs), self.config.batch_size
        for _ in range(epochs):
            if not keep_going():
                return
            with self.lock:
                self._train_epoch(n, size)

    def retune(self, config: NetworkConfig) -> bool:
        """Take new training settings (optimizer, learning rate, batch size, regularization) and go on from the
        current weights; False when `config` changes the network itself, which needs a new session."""
        same_network = (config.features, config.hidden, config.activations, config.dropout) == (
            self.config.features, self.config.hidden, self.config.activations, self.config.dropout)
        if not same_network:
            return False
        with self.lock:
            if config.optimizer != self.config.optimizer:
                self.optimizer = OPTIMIZERS[config.optimizer](self.model.parameters(), lr=config.lr)
            for group in self.optimizer.param_groups:
                group["lr"] = config.lr
            self.config = config
        return True

    @torch.no_grad()
    def set_weight(self, layer: int, to_neuron: int, from_neuron: int, value: float) -> None:
        """Set one weight by hand; the losses of the current epoch are recomputed and training goes on from here."""
        with self.lock:
            linear_layers(self.model)[layer].weight[to_neuron, from_neuron] = value
            for history in (self.train_losses, self.penalties, self.test_losses, self.test_accuracies, self.dead,
                            self.weight_sizes, self.candidates, self.shown):
                if history:
                    history.pop()
            self._record()

    def wait_for_epoch(self) -> None:
        """Return once an epoch that another thread is training has finished."""
        with self.lock:
            pass

    def _train_epoch(self, n: int, size: int) -> None:
        self.model.train()
        for idx in torch.randperm(n, generator=self.generator).split(size):
            loss = loss_of(self.points.task, self.model(self.train_inputs[idx]), self.points.train_y[idx])
            if self.config.regularizer != "none":
                loss = loss + self.penalty_term()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        self.epoch += 1
        self._record()

    @torch.no_grad()
    def _record(self) -> None:
        self.model.eval()
        self.train_losses.append(loss_of(self.points.task, self.model(self.train_inputs), self.points.train_y).item())
        self.penalties.append(self.penalty_term().item())
        test_scores = self.model(self.test_inputs)
        self.test_losses.append(loss_of(self.points.task, test_scores, self.points.test_y).item())
        if self.points.task == CLASSIFICATION:
            self.test_accuracies.append((test_scores.argmax(1) == self.points.test_y).float().mean().item())
        self.dead.append(self.dead_neurons()[0])
        self.weight_sizes.append(torch.cat([m.weight.flatten() for m in linear_layers(self.model)]).abs().mean().item())
        self.candidates.append(candidate(self.trace(), self.epoch))
        self.shown.append(shown_kind(self.candidates, self.shown[-1] if self.shown else "start"))
        if self.epoch % self.snapshot_stride == 0:
            self.snapshots[self.epoch] = {k: v.clone() for k, v in self.model.state_dict().items()}
        if len(self.snapshots) > MAX_SNAPSHOTS:  # keep every other one: memory stays bounded on long runs
            self.snapshot_stride *= 2
            self.snapshots = {e: w for e, w in self.snapshots.items() if e % self.snapshot_stride == 0}

    def penalty_term(self) -> torch.Tensor:
        """What the regularization adds to each batch's loss now: the rate times the weights' penalty (0: none)."""
        if self.config.regularizer == "none":
            return torch.zeros(())
        return self.config.reg_rate * penalty(self.model, self.config.regularizer)

    def epochs_kept(self) -> list[int]:
        """The epochs the time slider can show: the kept snapshots and now."""
        return sorted({*self.snapshots, self.epoch})

    def model_at(self, epoch: int | None = None) -> nn.Sequential:
        """The network as it was after `epoch` (one of the kept snapshots; None: now), in eval mode."""
        if epoch is None or epoch == self.epoch:
            return self.model.eval()
        past = copy.deepcopy(self.model)
        past.load_state_dict(self.snapshots[epoch])
        return past.eval()

    def _grid(self, resolution: int) -> tuple[torch.Tensor, torch.Tensor]:
        axis = torch.linspace(-EXTENT, EXTENT, resolution)
        gx, gy = torch.meshgrid(axis, axis, indexing="xy")
        return axis, feature_matrix(torch.stack([gx.reshape(-1), gy.reshape(-1)], 1), self.config.features)

    @torch.no_grad()
    def surface(self, resolution: int = 60, epoch: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The network over the plane: grid coordinates (resolution,) and, per grid point, the predicted class's
        probability signed by class for two classes (P(class 1) − P(class 0)), the predicted class for more, or
        the prediction for regression; shape (resolution, resolution), rows along x₂."""
        axis, inputs = self._grid(resolution)
        scores = self.model_at(epoch)(inputs)
        if self.points.task == REGRESSION:
            values = scores.squeeze(1)
        elif self.points.classes == 2:
            probs = scores.softmax(1)
            values = probs[:, 1] - probs[:, 0]
        else:
            values = scores.argmax(1).float()
        return axis, values.reshape(resolution, resolution)

    @torch.no_grad()
    def node_surfaces(self, resolution: int = 32, epoch: int | None = None) -> list[torch.Tensor]:
        """Every node of the network over the plane, one (nodes, resolution, resolution) tensor per column of the
        drawing: the input features, each hidden layer's neurons (after their activation), and the outputs (each
        class's probability, or the prediction); rows along x₂."""
        _, x = self._grid(resolution)
        model = self.model_at(epoch)
        scores = model(x)
        outputs = scores if self.points.task == REGRESSION else scores.softmax(1)
        return [values.T.reshape(-1, resolution, resolution) for values in (x, *hidden_outputs(model, x), outputs)]

    @torch.no_grad()
    def dead_neurons(self) -> tuple[int, int]:
        """(dead, total) hidden neurons: dead ones output exactly 0 for every training point (ReLU units that
        no gradient can revive)."""
        outputs = hidden_outputs(self.model.eval(), self.train_inputs)
        return sum(int((out == 0).all(0).sum()) for out in outputs), sum(out.shape[1] for out in outputs)

    def trace(self) -> "Trace":
        """The numbers after each epoch so far, as the verdict reads them."""
        return Trace(self.points.task, self.config.regularizer, self.config.reg_rate, self.chance_loss,
                     self.neurons, self.train_losses, self.test_losses, self.dead, self.weight_sizes)

    def verdict(self) -> "Verdict":
        """What the curves say now (ui/verdicts.py says it in the page's language)."""
        return verdict_at(self.trace(), self.epoch, self.shown[-1])


@dataclass(frozen=True)
class Trace:
    """A session's numbers after each epoch (index 0: before training), and the settings that explain them: what
    the verdict reads. A recorded run (tests/unit/lessons/traces/) is one."""

    task: str
    regularizer: str
    reg_rate: float
    chance_loss: float  # the loss of always predicting the training points' class shares (or mean target)
    neurons: int  # hidden neurons
    train_losses: Sequence[float]
    test_losses: Sequence[float]
    dead: Sequence[int]  # hidden neurons that output 0 for every training point
    weight_sizes: Sequence[float]  # mean |w| over the weights (not the biases)


@dataclass(frozen=True)
class Verdict:
    """What a playground session's curves show after an epoch: the verdict's kind and the numbers it is told with."""

    kind: str  # one of KINDS
    train_loss: float
    test_loss: float
    best_test: float  # the lowest test loss so far...
    best_epoch: int  # ...and its epoch
    chance_loss: float
    dead: int
    neurons: int
    weight_size: float  # mean |w| now...
    first_weight_size: float  # ...and before training
    regularizer: str
    reg_rate: float


# The verdict's kinds, most telling first: an epoch's numbers give the first kind whose test holds (`candidate`).
#   blown-up     the training loss is not finite or above twice its start: nothing else can be read from the curves.
#   regularized  a penalty is on, the weights have shrunk below half their start and the training loss is within 5%
#                of chance: the rate pulls every weight to zero, and a stall or dead units follow from it.
#   overfitting  the gap is large: the test loss is over twice the training loss, 20% above its best, and the gap
#                over a tenth of chance. Memorising explains the test loss, whatever else holds (dead units too).
#   dead         a quarter of the hidden neurons or more output 0 for every training point: a smaller network than
#                the one drawn, which explains a stall and outranks what follows.
#   overfitting  the test loss is 5% above its best and rising over the window while the training loss falls: the
#                classic sign, before the gap is large.
#   stalled      the training loss fell less than 2% over the window and is still above a fifth of chance.
#   settled      it fell less than 2% and is below a fifth of chance, or it is below a hundredth of chance: the
#                network fits its training points (and a loss that small falls by large fractions of nothing).
#   test-flat    the training loss falls and the test loss does not (it is 1% above its best, or not lower than a
#                window ago): from here the network learns its training points more than the pattern.
#   learning     both fall: the test loss is within 1% of its best and lower than a window ago.
# The window is the last fifth of the run, at least 5 epochs ("start" before that).
KINDS = ("start", "blown-up", "regularized", "overfitting", "dead", "stalled", "settled", "test-flat", "learning")
FIRST_EPOCH = 5  # the first epoch with a verdict
HOLD_EPOCHS = 3  # a new verdict is shown once it has been the candidate this many epochs in a row, except:
AT_ONCE = ("blown-up",)  # these are shown as soon as they appear,
WHILE_TRUE = ("learning",)  # and these are left as soon as they stop: "both losses are falling" only while they are


def candidate(trace: Trace, epoch: int) -> str:
    """The kind that the numbers after `epoch` show on their own (KINDS' comment gives the tests and why)."""
    if epoch < FIRST_EPOCH:
        return "start"
    train, test, chance = trace.train_losses, trace.test_losses, trace.chance_loss
    train_now, test_now = train[epoch], test[epoch]
    if not math.isfinite(train_now) or train_now > 2 * train[0]:
        return "blown-up"
    if (trace.regularizer != "none" and trace.reg_rate > 0 and train_now >= 0.95 * chance
            and trace.weight_sizes[epoch] < 0.5 * trace.weight_sizes[0]):
        return "regularized"
    best = min((t for t in test[:epoch + 1] if math.isfinite(t)), default=test_now)
    if test_now > 2 * train_now and test_now > 1.2 * best and test_now - train_now > 0.1 * chance:
        return "overfitting"
    if trace.dead[epoch] and trace.dead[epoch] * 4 >= trace.neurons:
        return "dead"
    window = max(FIRST_EPOCH, epoch // 5)
    train_falls = train_now < 0.98 * train[epoch - window]
    if train_falls and test_now > 1.05 * best and test_now > test[epoch - window]:
        return "overfitting"
    if not train_falls or train_now < 0.01 * chance:
        return "stalled" if train_now > 0.2 * chance else "settled"
    if test_now > 1.01 * best or test_now >= test[epoch - window]:
        return "test-flat"
    return "learning"


def shown_kind(candidates: Sequence[str], shown_before: str) -> str:
    """The kind shown after the latest of `candidates` (one per epoch, oldest first), `shown_before` the one shown
    the epoch before: the latest candidate once it has held HOLD_EPOCHS epochs in a row, else the kind shown before
    (at once after "start", to an AT_ONCE kind, or from a WHILE_TRUE one). Numbers that hover at a threshold flip
    the candidate from one epoch to the next; what is shown stays: every kind but those stays HOLD_EPOCHS epochs."""
    latest = candidates[-1]
    if latest in AT_ONCE or "start" in (latest, shown_before) or shown_before in WHILE_TRUE:
        return latest
    held = candidates[-HOLD_EPOCHS:]
    return latest if len(held) == HOLD_EPOCHS and all(kind == latest for kind in held) else shown_before


def verdict_at(trace: Trace, epoch: int, kind: str) -> Verdict:
    """The verdict of kind `kind` after `epoch`, with that epoch's numbers."""
    finite = [(t, e) for e, t in enumerate(trace.test_losses[:epoch + 1]) if math.isfinite(t)]
    best_test, best_epoch = min(finite) if finite else (math.nan, 0)
    return Verdict(kind, trace.train_losses[epoch], trace.test_losses[epoch], best_test, best_epoch,
                   trace.chance_loss, trace.dead[epoch], trace.neurons, trace.weight_sizes[epoch],
                   trace.weight_sizes[0], trace.regularizer, trace.reg_rate)


def verdicts(trace: Trace) -> list[Verdict]:
    """The verdict shown after each epoch of `trace`, as a session shows them while it trains."""
    candidates, shown = [], []
    for epoch in range(len(trace.train_losses)):
        candidates.append(candidate(trace, epoch))
        shown.append(shown_kind(candidates, shown[-1] if shown else "start"))
    return [verdict_at(trace, epoch, kind) for epoch, kind in enumerate(shown)]


def chance_loss(task: str, y: torch.Tensor) -> float:
    """The loss of the best prediction that ignores the inputs: for classes, the entropy of the class shares (their
    log-shares as scores); for regression, half the targets' variance (the mean as the prediction)."""
    if task == CLASSIFICATION:
        shares = torch.bincount(y).double() / len(y)
        shares = shares[shares > 0]
        return float(-(shares * shares.log()).sum())
    return float(0.5 * y.double().var(correction=0))


# The plane in ninths, from the bottom row up (rows along x₂, as the surface's): where a picture's regions lie.
NINTHS = ("bottom left", "bottom", "bottom right", "left", "centre", "right", "top left", "top", "top right")
CLEAR = 0.6  # a ninth belongs to a class when at least this share of it does
_ALL = frozenset(NINTHS)
_EDGES = frozenset({"top", "bottom", "left", "right"})
_CORNERS = frozenset({"top left", "top right", "bottom left", "bottom right"})
_SIDES = {side: frozenset(n for n in NINTHS if side in n.split()) for side in ("top", "bottom", "left", "right")}
_CORNER_HALVES = {"top right": ("top left", "bottom right"), "top left": ("top right", "bottom left"),
                  "bottom right": ("top right", "bottom left"), "bottom left": ("top left", "bottom right")}
# Shapes a class's ninths can make, most particular first: (name, ninths it must hold, ninths it may hold besides).
SHAPES = (("everywhere", _ALL, frozenset()),
          ("centre", frozenset({"centre"}), _EDGES),
          ("outside", _CORNERS, _EDGES),
          *((side, _SIDES[side], _ALL - _SIDES[{"top": "bottom", "bottom": "top", "left": "right",
                                                 "right": "left"}[side]] - _SIDES[side])
            for side in ("top", "bottom", "left", "right")),
          *((corner, frozenset({corner, *corner.split()}), frozenset({"centre", *diagonal}))
            for corner, diagonal in _CORNER_HALVES.items()),
          ("top left and bottom right", frozenset({"top left", "bottom right"}), _ALL - {"top right", "bottom left"}),
          ("top right and bottom left", frozenset({"top right", "bottom left"}), _ALL - {"top left", "bottom right"}))


def ninths(grid: torch.Tensor) -> dict[str, torch.Tensor]:
    """A (rows, columns) grid over the plane (rows along x₂) cut into its nine parts, by name."""
    rows, columns = (torch.linspace(0, n, 4).round().long().tolist() for n in grid.shape)
    return {NINTHS[3 * i + j]: grid[rows[i]:rows[i + 1], columns[j]:columns[j + 1]] for i in range(3) for j in range(3)}


def majority_ninths(labels: torch.Tensor) -> dict[str, int | None]:
    """The class that holds each ninth of the plane (`labels`: a class per grid point, rows along x₂), or None where
    no class holds CLEAR of it."""
    found = {}
    for name, part in ninths(labels).items():
        counts = torch.bincount(part.flatten().long())
        found[name] = int(counts.argmax()) if counts.max() >= CLEAR * part.numel() else None
    return found


def shape_of(held: set[str] | frozenset[str]) -> str | None:
    """The name of the shape these ninths make (SHAPES), or None when they make none of them."""
    for name, needed, allowed in SHAPES:
        if needed <= held <= needed | allowed:
            return name
    return None


def regions(labels: torch.Tensor) -> list[tuple[int, str | None, tuple[str, ...]]]:
    """Where each class lies on the plane (`labels`: a class per grid point, rows along x₂): (class, its shape's
    name or None, the ninths it holds), the class holding fewest ninths first; classes that hold none are left
    out."""
    held: dict[int, list[str]] = {}
    for name, label in majority_ninths(labels).items():
        if label is not None:
            held.setdefault(label, []).append(name)
    return [(label, shape_of(set(names)), tuple(names))
            for label, names in sorted(held.items(), key=lambda item: (len(item[1]), item[0]))]


def predicted_classes(values: torch.Tensor, classes: int) -> torch.Tensor:
    """The class predicted at each grid point from Session.surface's values: for two classes, 1 where P(1) > P(0)."""
    return (values > 0).long() if classes == 2 else values.round().long()


FEATURE_CODE = {"x₁": "a", "x₂": "b", "x₁²": "a * a", "x₂²": "b * b", "x₁x₂": "a * b", "sin x₁": "torch.sin(a)",
                "sin x₂": "torch.sin(b)"}
ACTIVATION_CODE = {"ReLU": "nn.ReLU()", "tanh": "nn.Tanh()", "sigmoid": "nn.Sigmoid()", "linear": "nn.Identity()",
                   "LeakyReLU": "nn.LeakyReLU()"}
OPTIMIZER_CODE = {"SGD": "torch.optim.SGD(model.parameters(), lr={lr})",
                  "SGD + momentum": "torch.optim.SGD(model.parameters(), lr={lr}, momentum=0.9)",
                  "Adam": "torch.optim.Adam(model.parameters(), lr={lr})",
                  "RMSprop": "torch.optim.RMSprop(model.parameters(), lr={lr})"}


def pytorch_script(data: str, count: int, noise: float, train_fraction: float, data_seed: int,
                   config: NetworkConfig, epochs: int) -> str:
    """A short script that builds and trains the same network on the same points in plain PyTorch (the points
    come from dlplay.lessons.playground.make_points) and prints the losses."""
    config.check()
    layers, width = [], len(config.features)
    for size, activation in zip(config.hidden, config.activations, strict=True):
        layers.append(f"nn.Linear({width}, {size}), {ACTIVATION_CODE[activation]},")
        if config.dropout:
            layers.append(f"nn.Dropout({config.dropout}),")
        width = size
    task = DATASETS[data].task
    layers.append(f"nn.Linear({width}, {DATASETS[data].classes}),")
    loss = ("F.cross_entropy(scores, y)" if task == CLASSIFICATION else "0.5 * F.mse_loss(scores.squeeze(1), y)")
    penalty_line = {"none": "",
                    "L1": f"\n        loss = loss + {config.reg_rate} * sum(m.weight.abs().sum() for m in model "
                          "if isinstance(m, nn.Linear))",
                    "L2": f"\n        loss = loss + {config.reg_rate} * 0.5 * sum((m.weight ** 2).sum() for m in model "
                          "if isinstance(m, nn.Linear))"}[config.regularizer]
    body = "\n".join(f"    {line}" for line in layers)
    features = ", ".join(FEATURE_CODE[f] for f in config.features)
    return f'''"""The network playground's run in plain PyTorch: {data}, {count} points, noise {noise:g}."""
import torch
from torch import nn
from torch.nn import functional as F

from dlplay.lessons.playground import make_points

points = make_points({data!r}, {count}, {noise!r}, {train_fraction!r}, seed={data_seed})


def features(x):
    a, b = x[:, 0], x[:, 1]
    return torch.stack([{features}], 1)


def loss_of(scores, y):
    return {loss}


torch.manual_seed(0)
model = nn.Sequential(
{body}
)
optimizer = {OPTIMIZER_CODE[config.optimizer].format(lr=config.lr)}
train_x, test_x = features(points.train_x), features(points.test_x)
for epoch in range({epochs}):
    model.train()
    for idx in torch.randperm(len(train_x)).split({config.batch_size}):
        loss = loss_of(model(train_x[idx]), points.train_y[idx]){penalty_line}
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
model.eval()
with torch.no_grad():
    print(f"after {{epoch + 1}} epochs: training loss {{loss_of(model(train_x), points.train_y).item():.4f}}, "
          f"test loss {{loss_of(model(test_x), points.test_y).item():.4f}}")
'''
