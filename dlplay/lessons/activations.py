"""Activation functions: curves and autograd derivatives, softmax temperature, gradient flow in deep MLPs, a race."""
import itertools
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from dlplay.data import ImageSet
from dlplay.models import init_weights

# name -> (the function, its formula in LaTeX)
ACTIVATIONS = {
    "ReLU": (torch.relu, r"\max(0, x)"),
    "LeakyReLU": (lambda x: F.leaky_relu(x, 0.01), r"\max(0.01x, x)"),
    "ELU": (F.elu, r"x \text{ if } x > 0 \text{ else } e^x - 1"),
    "GELU": (F.gelu, r"x\,\Phi(x)"),
    "SiLU / Swish": (F.silu, r"x\,\sigma(x)"),
    "sigmoid": (torch.sigmoid, r"\sigma(x) = \frac{1}{1 + e^{-x}}"),
    "tanh": (torch.tanh, r"\tanh x = \frac{e^x - e^{-x}}{e^x + e^{-x}}"),
    "softplus": (F.softplus, r"\log(1 + e^x)"),
    "identity": (lambda x: x, r"x"),
}
MODULES = {"ReLU": nn.ReLU, "LeakyReLU": nn.LeakyReLU, "ELU": nn.ELU, "GELU": nn.GELU, "SiLU / Swish": nn.SiLU,
           "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "softplus": nn.Softplus, "identity": nn.Identity}
INITS = ("PyTorch default", "Xavier", "He")


def curve(name: str, xs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """f(x) and f'(x) (from autograd) at the points xs."""
    x = xs.detach().clone().requires_grad_(True)
    y = ACTIVATIONS[name][0](x)
    dy, = torch.autograd.grad(y.sum(), x)
    return y.detach(), dy


def curves(names, low: float = -5.0, high: float = 5.0, points: int = 201) -> tuple[list[float], dict]:
    """x on [low, high] and, per activation, (f(x), f'(x)) as lists: the page's two charts."""
    xs = torch.linspace(low, high, points, dtype=torch.float64)
    return xs.tolist(), {name: tuple(t.tolist() for t in curve(name, xs)) for name in names}


def covering(series: dict[str, list[float]], within: float = 0.02) -> dict[str, str]:
    """The curves that lie within `within` of the chart's height of a curve listed before them at every x (LeakyReLU
    on ReLU), each with the curve it would hide if drawn solid over it."""
    values = [v for ys in series.values() for v in ys]
    tolerance = within * ((max(values) - min(values)) if values else 0.0)
    found = {}
    for i, (name, ys) in enumerate(series.items()):
        under = next((other for other, zs in list(series.items())[:i]
                      if max(abs(a - b) for a, b in zip(ys, zs, strict=True)) <= tolerance), None)
        if under is not None:
            found[name] = under
    return found


def values_at(names, x: float) -> list[dict]:
    """f(x) and f'(x) of each activation at one x, as table rows."""
    point = torch.tensor([x], dtype=torch.float64)
    return [{"activation": name, "f(x)": float(f[0]), "f′(x)": float(df[0])}
            for name in names for f, df in [curve(name, point)]]


def softmax_with_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """softmax(z / T): T < 1 sharpens the distribution, T > 1 flattens it."""
    return torch.softmax(logits / temperature, dim=-1)


def deep_mlp(widths, activation: str, init: str, seed: int = 0, inputs: int = 784,
             classes: int = 10) -> nn.Sequential:
    """Hidden layers of the given widths with `activation`, initialised the chosen way, then the classes."""
    g = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = [nn.Flatten()]
    sizes = [inputs, *widths]
    for fan_in, fan_out in itertools.pairwise(sizes):
        layers += [nn.Linear(fan_in, fan_out), MODULES[activation]()]
    layers.append(nn.Linear(sizes[-1], classes))
    model = nn.Sequential(*layers)
    if init == "PyTorch default":
        init_weights(model, g)  # nn.Linear's own initialisation, drawn from the seeded generator
        return model
    for layer in layers:
        if isinstance(layer, nn.Linear):
            if init == "Xavier":
                nn.init.xavier_uniform_(layer.weight, generator=g)
            else:
                nn.init.kaiming_uniform_(layer.weight, nonlinearity="relu", generator=g)
            nn.init.zeros_(layer.bias)
    return model


@dataclass(frozen=True)
class GradientFlow:
    """Per hidden layer (input side first): weight-gradient norm, a sample of activations, dead-unit fraction."""

    gradient_norms: list[float]
    activations: list[torch.Tensor]  # up to 2,000 values per layer
    dead_fraction: list[float]  # units whose output is 0 for every image (meaningful for ReLU)


def gradient_flow(model: nn.Sequential, batch: ImageSet) -> GradientFlow:
    """One forward and backward pass of cross-entropy on a batch (images scaled to 0..1) at initialisation."""
    captured: list[torch.Tensor] = []
    activation_layers = [m for m in model if not isinstance(m, (nn.Linear, nn.Flatten))]
    hooks = [m.register_forward_hook(lambda _m, _i, out: captured.append(out.detach())) for m in activation_layers]
    try:
        loss = F.cross_entropy(model(batch.images.float() / 255), batch.labels)
    finally:
        for hook in hooks:
            hook.remove()
    linears = [m for m in model if isinstance(m, nn.Linear)][:-1]  # the hidden layers
    grads = torch.autograd.grad(loss, [m.weight for m in linears])
    g = torch.Generator().manual_seed(0)
    samples = [a.flatten()[torch.randperm(a.numel(), generator=g)[:2000]] for a in captured]
    return GradientFlow([float(x.norm()) for x in grads], samples,
                        [float((a == 0).all(dim=0).float().mean()) for a in captured])


CAN_DIE = ("ReLU",)  # outputs exactly 0 (with zero slope) over half the line; LeakyReLU keeps a 0.01 slope there


@dataclass(frozen=True)
class FlowReading:
    """How the gradient norm changes from the last hidden layer back to the first (ui/verdicts.py says it)."""

    kind: str  # "shallow" (under 2 layers), "vanishing", "exploding" or "healthy"
    factor: float = 1.0  # vanishing: last / first norm; exploding: first / last; healthy: the larger of the two
    thousandfold_at: int | None = None  # vanishing: the layer (from the input) where it is first 1000x smaller
    layers: int = 0


def read_flow(norms: list[float]) -> FlowReading:
    """Classify the gradient norms per hidden layer (input side first) as vanishing, exploding or healthy."""
    if len(norms) < 2:
        return FlowReading("shallow", layers=len(norms))
    ratio = norms[-1] / max(norms[0], 1e-30)  # how much smaller the first layer's gradient is than the last's
    if ratio >= 10:
        first = next((len(norms) - i + 1 for i in range(1, len(norms) + 1)  # walking back from the last layer
                      if norms[-1] / max(norms[-i], 1e-30) >= 1000), None)
        return FlowReading("vanishing", ratio, first, len(norms))
    if ratio <= 0.1:
        return FlowReading("exploding", 1 / ratio, None, len(norms))
    return FlowReading("healthy", max(norms) / max(min(norms), 1e-30), None, len(norms))  # across all the layers


@dataclass(frozen=True)
class RaceResult:
    """One activation's run in the race."""

    losses: list[float]  # per batch
    accuracies: list[float]  # per batch (training)
    test_accuracy: float
    seconds: float


def activation_race(names, data, device, epochs: int = 3, seed: int = 0) -> dict[str, RaceResult]:
    """The same 784-128-64-10 MLP, optimizer and data order, trained with each activation in turn."""
    from dlplay.evaluate import evaluate
    from dlplay.training.trainer import Trainer, build_optimizer

    results = {}
    for name in names:
        model = deep_mlp([128, 64], name, "PyTorch default", seed=seed, classes=data.num_classes)
        trainer = Trainer(model, build_optimizer("adam", model.parameters(), 1e-3), data.train, device,
                          batch_size=64, epochs=epochs, seed=seed)
        history = trainer.fit()
        results[name] = RaceResult([b.loss for b in history.batches], [b.accuracy for b in history.batches],
                                   evaluate(model, data.test, device).accuracy, sum(e.seconds for e in history.epochs))
    return results
