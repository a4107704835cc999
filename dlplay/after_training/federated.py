"""Federated averaging (FedAvg, McMahan et al. 2017), simulated: clients each hold their own images, train a copy
of the global model on them, and send back their weights and image counts (never an image), and the server averages
the weights by those counts.

The data is dealt out once (IID, or skewed by a Dirichlet draw per class); the server's loop hands each client
only its own images and gets back only weights and counts.
"""
import copy
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from dlplay.data import Dataset, ImageSet
from dlplay.device import DeviceInfo
from dlplay.evaluate import evaluate
from dlplay.models import build_model
from dlplay.training.trainer import Trainer, build_optimizer


def client_indices(labels: torch.Tensor, clients: int, alpha: float | None, seed: int = 0) -> list[np.ndarray]:
    """Which images each client holds: IID (alpha None: a shuffled, even split) or skewed (each class shared out in
    proportions drawn from Dirichlet(alpha): a small alpha gives each client few classes). Every image goes to
    exactly one client; with a small alpha a client may get none."""
    if not 1 <= clients <= len(labels):
        raise ValueError(f"clients must be between 1 and {len(labels)}, not {clients}")
    rng = np.random.default_rng(seed)
    if alpha is None:
        return [np.sort(part) for part in np.array_split(rng.permutation(len(labels)), clients)]
    if alpha <= 0:
        raise ValueError(f"the Dirichlet alpha must be above 0, not {alpha}")
    parts: list[list[int]] = [[] for _ in range(clients)]
    labels = labels.numpy()
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        cuts = (np.cumsum(rng.dirichlet(np.full(clients, alpha)))[:-1] * len(members)).round().astype(int)
        for part, chunk in zip(parts, np.split(members, cuts), strict=True):
            part.extend(chunk.tolist())
    return [np.sort(np.array(part, dtype=np.int64)) for part in parts]


def split_clients(data: ImageSet, indices: list[np.ndarray]) -> list[ImageSet]:
    """Each client's own copy of its images (copies: nothing a client holds is shared with the pooled set)."""
    return [ImageSet(data.images[torch.as_tensor(i)].clone(), data.labels[torch.as_tensor(i)].clone())
            for i in indices]


def average_weights(states: list[dict[str, torch.Tensor]], counts: list[int]) -> dict[str, torch.Tensor]:
    """Σ_k (n_k / n) · w_k for every floating-point tensor; integer buffers (batch-norm's step counter) are taken
    from the first client."""
    total = sum(counts)
    averaged = {}
    for key, first in states[0].items():
        if first.is_floating_point():
            averaged[key] = sum(state[key] * (count / total) for state, count in zip(states, counts, strict=True))
        else:
            averaged[key] = first.clone()
    return averaged


@dataclass(frozen=True)
class Round:
    """The global model after one round."""

    round: int
    accuracy: float  # on the test images
    loss: float


@dataclass(frozen=True)
class LocalTraining:
    """How each client trains its copy in a round (plain SGD by default, as in the FedAvg paper)."""

    epochs: int = 1
    batch_size: int = 32
    optimizer: str = "sgd"
    lr: float = 0.05


def train_locally(model: nn.Module, data: ImageSet, device: DeviceInfo, local: LocalTraining, seed: int) -> None:
    """Train `model` in place on one client's images only."""
    optimizer = build_optimizer(local.optimizer, model.parameters(), local.lr)
    Trainer(model, optimizer, data, device, batch_size=local.batch_size, epochs=local.epochs, seed=seed).fit()


def fedavg(model: nn.Module, clients: list[ImageSet], test: ImageSet, device: DeviceInfo, rounds: int,
           local: LocalTraining = LocalTraining(), seed: int = 0,
           on_round: Callable[[Round], None] | None = None) -> list[Round]:
    """Run `rounds` of FedAvg from `model` (trained in place: it ends as the global model). Each round, every client
    with images trains a copy on its own images; the server averages the copies' weights by image count."""
    model.to(device.device)
    history = []
    for number in range(1, rounds + 1):
        states, counts = [], []
        for index, data in enumerate(clients):
            if len(data) == 0:
                continue
            copy_ = copy.deepcopy(model)
            train_locally(copy_, data, device, local, seed=seed + 1000 * number + index)
            states.append(copy_.state_dict())
            counts.append(len(data))
        model.load_state_dict(average_weights(states, counts))
        result = evaluate(model, test, device)
        history.append(Round(number, result.accuracy, result.loss))
        if on_round is not None:
            on_round(history[-1])
    return history


def centralised(model: nn.Module, train: ImageSet, test: ImageSet, device: DeviceInfo, rounds: int,
                local: LocalTraining = LocalTraining(), seed: int = 0,
                on_round: Callable[[Round], None] | None = None) -> list[Round]:
    """The comparison: the same model, optimizer and epochs, on all the images pooled in one place (what FedAvg
    avoids), evaluated after the same number of epochs as each round."""
    return fedavg(model, [train], test, device, rounds, local, seed, on_round)


@dataclass(frozen=True)
class FederatedLab:
    """The After training page's FedAvg lab: how the classes were dealt, and each arm's test accuracy per round."""

    mix: list[list[int]]  # images of each class (columns) held by each client (rows)
    federated: list[Round]
    pooled: list[Round] | None  # the same training on all the images in one place (None: not run)


def federated_lab(data: Dataset, device: DeviceInfo, clients: int, alpha: float | None, rounds: int,
                  local: LocalTraining = LocalTraining(), compare_pooled: bool = True, seed: int = 0,
                  on_round: Callable[[str, Round], None] | None = None) -> FederatedLab:
    """Deal `data`'s training images to `clients` (IID, or skewed by Dirichlet `alpha`) and train a fresh small CNN
    with FedAvg for `rounds`; with `compare_pooled`, the same fresh CNN also trains on the pooled images.
    `on_round(arm, round)` hears each round of the arms "federated" and "pooled"."""
    mean, std = data.channel_stats()
    indices = client_indices(data.train.labels, clients, alpha, seed=seed)
    mix = [torch.bincount(data.train.labels[torch.as_tensor(i)], minlength=data.num_classes).tolist()
           for i in indices]

    def fresh() -> nn.Module:
        return build_model("small-cnn", data.input_shape, data.num_classes, mean, std, seed=seed)

    def heard(arm: str) -> Callable[[Round], None] | None:
        return (lambda r: on_round(arm, r)) if on_round is not None else None

    federated = fedavg(fresh(), split_clients(data.train, indices), data.test, device, rounds, local, seed,
                       heard("federated"))
    pooled = (centralised(fresh(), data.train, data.test, device, rounds, local, seed, heard("pooled"))
              if compare_pooled else None)
    return FederatedLab(mix, federated, pooled)
