"""The article's worked example by hand: a 3 → 3 → 2 network's forward pass, loss, backward pass and SGD step,
written out formula by formula (no autograd), so that every number a page shows can be checked against autograd."""
from dataclasses import dataclass, replace

import torch

HIDDEN_ACTIVATIONS = ("relu", "sigmoid", "tanh", "identity")
OUTPUT_ACTIVATIONS = ("softmax", "sigmoid", "tanh", "identity")
LOSSES = ("cross-entropy", "mse")
ARTICLE_INPUT = (1.0, 0.0, 1.0)  # x in the article's §3-4 example


def activate(name: str, z: torch.Tensor) -> torch.Tensor:
    """f(z) for an element-wise activation, or softmax over the last dimension."""
    if name == "relu":
        return z.clamp_min(0)
    if name == "sigmoid":
        return 1 / (1 + torch.exp(-z))
    if name == "tanh":
        return torch.tanh(z)
    if name == "identity":
        return z.clone()
    if name == "softmax":
        e = torch.exp(z - z.max(dim=-1, keepdim=True).values)
        return e / e.sum(dim=-1, keepdim=True)
    raise ValueError(f"unknown activation {name!r}")


def derivative(name: str, z: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """f'(z) of an element-wise activation, written with its output a = f(z) where that is simplest."""
    if name == "relu":
        return (z > 0).to(z.dtype)  # 1 for z > 0, else 0 (the article writes aᵢ here: a slip)
    if name == "sigmoid":
        return a * (1 - a)
    if name == "tanh":
        return 1 - a ** 2  # (the article writes aᵢ(1 − aᵢ²): a slip)
    if name == "identity":
        return torch.ones_like(z)
    raise ValueError(f"{name!r} is not element-wise")


@dataclass(frozen=True)
class Network:
    """Weights (out × in) and biases of a two-layer network, with its activations and loss."""

    w1: torch.Tensor  # (H, I)
    b1: torch.Tensor  # (H,)
    w2: torch.Tensor  # (O, H)
    b2: torch.Tensor  # (O,)
    hidden: str = "relu"
    output: str = "softmax"
    loss: str = "cross-entropy"

    def __post_init__(self) -> None:
        if self.loss == "cross-entropy" and self.output not in ("softmax", "sigmoid"):
            raise ValueError("cross-entropy needs probabilities: use a softmax or sigmoid output")


def random_network(inputs: int = 3, width: int = 3, outputs: int = 2, seed: int = 0, **choices) -> Network:
    """Weights drawn uniformly from ±1/√fan_in (PyTorch's default range) with a seed, in float64."""
    g = torch.Generator().manual_seed(seed)

    def uniform(*shape, fan_in):
        return (torch.rand(*shape, generator=g, dtype=torch.float64) * 2 - 1) / fan_in ** 0.5

    return Network(uniform(width, inputs, fan_in=inputs), uniform(width, fan_in=inputs),
                   uniform(outputs, width, fan_in=width), uniform(outputs, fan_in=width), **choices)


@dataclass(frozen=True)
class Forward:
    """Every intermediate value of the forward pass for a batch (n, ·)."""

    z1: torch.Tensor
    a1: torch.Tensor
    z2: torch.Tensor
    a2: torch.Tensor  # ŷ
    loss: torch.Tensor  # a scalar: the mean over the batch


@dataclass(frozen=True)
class Gradients:
    """∂L/∂ of each parameter, and the error signals δ = ∂L/∂z of both layers."""

    dz2: torch.Tensor
    dw2: torch.Tensor
    db2: torch.Tensor
    dz1: torch.Tensor
    dw1: torch.Tensor
    db1: torch.Tensor


def loss_terms(name: str, output: str, a2: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each output's share of the loss, (n, O), before averaging over the batch: the loss is their sum per example.

    Cross-entropy after softmax is −Σₖ yₖ log ŷₖ (one distribution over the classes); after sigmoid every output is
    its own yes/no question, so it is binary cross-entropy per output, −[yₖ log ŷₖ + (1 − yₖ) log(1 − ŷₖ)] / O
    (−Σ yₖ log ŷₖ alone would give a wrong-class output no gradient at all). MSE is (ŷₖ − yₖ)² / O.
    """
    outputs = y.shape[1]
    if name == "cross-entropy" and output == "softmax":
        return -y * torch.log(a2)
    if name == "cross-entropy":
        return -(y * torch.log(a2) + (1 - y) * torch.log(1 - a2)) / outputs
    if name == "mse":
        return (a2 - y) ** 2 / outputs
    raise ValueError(f"unknown loss {name!r}")


def loss_value(name: str, output: str, a2: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The loss of the outputs `a2` against one-hot `y`, averaged over the batch (see loss_terms)."""
    return loss_terms(name, output, a2, y).sum(dim=1).mean()


def forward(net: Network, x: torch.Tensor, y: torch.Tensor) -> Forward:
    """z₁ = W₁x + b₁, a₁ = f(z₁), z₂ = W₂a₁ + b₂, ŷ = g(z₂), L = loss(ŷ, y); x (n, I), y (n, O) one-hot."""
    z1 = x @ net.w1.T + net.b1
    a1 = activate(net.hidden, z1)
    z2 = a1 @ net.w2.T + net.b2
    a2 = activate(net.output, z2)
    return Forward(z1, a1, z2, a2, loss_value(net.loss, net.output, a2, y))


def backward(net: Network, x: torch.Tensor, y: torch.Tensor, f: Forward) -> Gradients:
    """The chain rule, layer by layer, from the loss back to W₁ (batch-mean gradients)."""
    n, outputs = y.shape
    if net.output == "softmax" and net.loss == "cross-entropy":
        dz2 = (f.a2 - y) / n  # softmax + cross-entropy: δ₂ = ŷ − y
    elif net.output == "sigmoid" and net.loss == "cross-entropy":
        dz2 = (f.a2 - y) / (n * outputs)  # sigmoid + binary cross-entropy: δ₂ = (ŷ − y) / O, output by output
    else:
        da2 = 2 * (f.a2 - y) / (outputs * n)  # ∂L/∂ŷ of MSE
        if net.output == "softmax":  # δ₂ = J·∂L/∂ŷ with J = diag(ŷ) − ŷŷᵀ
            dz2 = f.a2 * (da2 - (da2 * f.a2).sum(dim=1, keepdim=True))
        else:
            dz2 = da2 * derivative(net.output, f.z2, f.a2)
    dw2, db2 = dz2.T @ f.a1, dz2.sum(dim=0)  # ∂L/∂W₂ = δ₂ a₁ᵀ
    dz1 = (dz2 @ net.w2) * derivative(net.hidden, f.z1, f.a1)  # δ₁ = (W₂ᵀδ₂) ⊙ f'(z₁)
    dw1, db1 = dz1.T @ x, dz1.sum(dim=0)  # ∂L/∂W₁ = δ₁ xᵀ
    return Gradients(dz2, dw2, db2, dz1, dw1, db1)


def autograd_gradients(net: Network, x: torch.Tensor, y: torch.Tensor) -> Gradients:
    """The same gradients from torch.autograd, with PyTorch's own activations and losses (F.mse_loss,
    F.cross_entropy, F.binary_cross_entropy), none of dlplay's formulas: the oracle."""
    params = [t.detach().clone().requires_grad_(True) for t in (net.w1, net.b1, net.w2, net.b2)]
    w1, b1, w2, b2 = params
    torch_act = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "identity": lambda t: t,
                 "softmax": lambda t: torch.softmax(t, dim=1)}
    z1 = x @ w1.T + b1
    z1.retain_grad()
    z2 = torch_act[net.hidden](z1) @ w2.T + b2
    z2.retain_grad()
    a2 = torch_act[net.output](z2)
    if net.loss == "mse":
        loss = torch.nn.functional.mse_loss(a2, y)
    elif net.output == "softmax":
        loss = torch.nn.functional.cross_entropy(z2, y)  # soft-target cross-entropy on the logits
    else:
        loss = torch.nn.functional.binary_cross_entropy(a2, y)  # mean over every example and output
    loss.backward()
    return Gradients(z2.grad, w2.grad, b2.grad, z1.grad, w1.grad, b1.grad)


def finite_difference_gradients(net: Network, x: torch.Tensor, y: torch.Tensor, h: float = 1e-6) -> Gradients:
    """Central differences (L(θ + h) − L(θ − h)) / 2h for every weight and bias (δ's are left as NaN)."""
    def grad_of(name: str) -> torch.Tensor:
        base = getattr(net, name).contiguous()
        out = torch.zeros_like(base)
        for index in range(base.numel()):
            bumped = []
            for sign in (1, -1):
                changed = base.clone().view(-1)
                changed[index] += sign * h
                bumped.append(float(forward(replace(net, **{name: changed.view_as(base)}), x, y).loss))
            out.view(-1)[index] = (bumped[0] - bumped[1]) / (2 * h)
        return out

    nan = torch.full((1,), float("nan"), dtype=torch.float64)
    return Gradients(nan, grad_of("w2"), grad_of("b2"), nan, grad_of("w1"), grad_of("b1"))


def sgd_step(net: Network, grads: Gradients, lr: float) -> Network:
    """θ ← θ − α·∂L/∂θ for every weight and bias."""
    return replace(net, w1=net.w1 - lr * grads.dw1, b1=net.b1 - lr * grads.db1,
                   w2=net.w2 - lr * grads.dw2, b2=net.b2 - lr * grads.db2)


def train(net: Network, x: torch.Tensor, y: torch.Tensor, lr: float, steps: int) -> tuple[Network, list[float]]:
    """`steps` full-batch SGD steps; returns the final network and the loss before each step and after the last."""
    losses = []
    for _ in range(steps):
        f = forward(net, x, y)
        losses.append(float(f.loss))
        net = sgd_step(net, backward(net, x, y, f), lr)
    losses.append(float(forward(net, x, y).loss))
    return net, losses


def one_hot(classes: list[int], count: int) -> torch.Tensor:
    """(n, count) float64 one-hot rows."""
    return torch.nn.functional.one_hot(torch.tensor(classes), count).to(torch.float64)


def binary_batch(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n random binary inputs like the article's x = [1, 0, 1], with random one-hot targets of 2 classes."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 2, (n, 3), generator=g).to(torch.float64)
    return x, one_hot(torch.randint(0, 2, (n,), generator=g).tolist(), 2)


def activation_curve(name: str, low: float = -4.0, high: float = 4.0, points: int = 161) -> tuple[list, list]:
    """x on [low, high] and f(x), for drawing one activation."""
    xs = torch.linspace(low, high, points, dtype=torch.float64)
    return xs.tolist(), activate(name, xs).tolist()


def loss_on_logits(loss: str, logits: torch.Tensor, y: torch.Tensor) -> tuple[float, torch.Tensor]:
    """A softmax output's loss for logits (1, K) and one-hot y, and its gradient ∂L/∂z, by this module's hand-written
    backward pass (the network reduced to identity layers, so that z₂ is the logits)."""
    k = logits.shape[1]
    eye, zeros = torch.eye(k, dtype=torch.float64), torch.zeros(k, dtype=torch.float64)
    net = Network(eye, zeros, eye, zeros, "identity", "softmax", loss)
    f = forward(net, logits, y)
    return float(f.loss), backward(net, logits, y, f).dz2[0]


def loss_against_probability(points: int = 99) -> tuple[list[float], dict[str, list[float]]]:
    """p, the predicted probability of the true class, and each loss as a function of it (two classes)."""
    p = torch.linspace(0.01, 0.99, points, dtype=torch.float64)
    return p.tolist(), {"cross-entropy −log p": (-torch.log(p)).tolist(),
                        "MSE on a one-hot target, 2 classes: (1 − p)²": ((1 - p) ** 2).tolist()}
