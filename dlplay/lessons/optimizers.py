"""Real torch.optim optimizers racing on 2-D loss surfaces, and the article's SGD and Adam written out by hand."""
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from dlplay.training.schedules import build_schedule

Surface2D = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Surface:
    """A loss surface f(x, y) with its minima, a default start and a plotting window."""

    f: Surface2D
    minima: tuple[tuple[float, float], ...]
    start: tuple[float, float]
    x_range: tuple[float, float]
    y_range: tuple[float, float]
    formula: str  # LaTeX
    bounded: bool = True  # False for a surface that falls away forever (the saddle): running off is escaping

    def holds(self, x: float, y: float) -> bool:
        """Whether (x, y) lies on the plotted square, where an unbounded surface is defined for the race."""
        return self.x_range[0] <= x <= self.x_range[1] and self.y_range[0] <= y <= self.y_range[1]


SURFACES: dict[str, Surface] = {
    "ill-conditioned quadratic": Surface(lambda x, y: 0.5 * x ** 2 + 10 * y ** 2, ((0.0, 0.0),), (-4.5, 1.5),
                                         (-5, 5), (-2, 2), r"\tfrac12 x^2 + 10 y^2"),
    "Rosenbrock": Surface(lambda x, y: (1 - x) ** 2 + 100 * (y - x ** 2) ** 2, ((1.0, 1.0),), (-1.5, 2.0),
                          (-2, 2), (-1, 3), r"(1 - x)^2 + 100 (y - x^2)^2"),
    "Beale": Surface(lambda x, y: (1.5 - x + x * y) ** 2 + (2.25 - x + x * y ** 2) ** 2
                     + (2.625 - x + x * y ** 3) ** 2, ((3.0, 0.5),), (1.0, 1.4), (-4.5, 4.5), (-4.5, 4.5),
                     r"(1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2"),
    "Himmelblau": Surface(lambda x, y: (x ** 2 + y - 11) ** 2 + (x + y ** 2 - 7) ** 2,
                          ((3.0, 2.0), (-2.805118, 3.131312), (-3.779310, -3.283186), (3.584428, -1.848126)),
                          (-0.5, -0.5), (-5, 5), (-5, 5), r"(x^2 + y - 11)^2 + (x + y^2 - 7)^2"),
    "saddle": Surface(lambda x, y: x ** 2 - y ** 2, (), (-2.0, 0.01), (-3, 3), (-3, 3), r"x^2 - y^2", bounded=False),
    "Rastrigin": Surface(lambda x, y: 20 + x ** 2 - 10 * torch.cos(2 * math.pi * x) + y ** 2
                         - 10 * torch.cos(2 * math.pi * y), ((0.0, 0.0),), (3.2, -2.7), (-5.12, 5.12),
                         (-5.12, 5.12), r"20 + x^2 - 10\cos 2\pi x + y^2 - 10\cos 2\pi y"),
}

# name -> (torch.optim class, default hyperparameters): each races with its own settings.
RACE_OPTIMIZERS: dict[str, tuple[type, dict]] = {
    "SGD": (torch.optim.SGD, {"lr": 0.01}),
    "SGD + momentum": (torch.optim.SGD, {"lr": 0.01, "momentum": 0.9}),
    "Nesterov": (torch.optim.SGD, {"lr": 0.01, "momentum": 0.9, "nesterov": True}),
    "Adagrad": (torch.optim.Adagrad, {"lr": 0.5}),
    "RMSprop": (torch.optim.RMSprop, {"lr": 0.01, "alpha": 0.99}),
    "Adam": (torch.optim.Adam, {"lr": 0.1, "betas": (0.9, 0.999)}),
    "AdamW": (torch.optim.AdamW, {"lr": 0.1, "betas": (0.9, 0.999), "weight_decay": 0.01}),
    "NAdam": (torch.optim.NAdam, {"lr": 0.1}),
}
ESCAPE = 1e6  # |x| or |y| beyond this, or a non-finite loss: the run has diverged (a bounded surface)


@dataclass
class Path2D:
    """One optimizer's run: positions, losses, when it got within tolerance, and when (if) it diverged."""

    name: str
    points: list[tuple[float, float]] = field(default_factory=list)  # before step 1, then after each step
    losses: list[float] = field(default_factory=list)
    reached_at: int | None = None  # first step whose loss is within `tolerance` of the surface's minimum
    diverged_at: int | None = None
    escaped_at: int | None = None  # left the square of a surface with no bottom (the saddle), falling for ever
    state: dict[str, list[float]] = field(default_factory=dict)  # the optimizer's buffers after step `state_step`,
    # or after its last step when the run stopped before it


def run(surface: Surface, name: str, start: tuple[float, float], steps: int, hyper: dict | None = None,
        tolerance: float = 1e-3, state_step: int | None = None, schedule: str = "constant") -> Path2D:
    """Run torch.optim's `name` optimizer from `start` for `steps` steps on `surface` (a race of one)."""
    return race(surface, [name], start, steps, {name: hyper or {}}, tolerance, schedule, state_step)[0]


def grid(surface: Surface, n: int = 120) -> tuple[list[float], list[float], list[list[float]]]:
    """x, y and f(x, y) on an n × n grid over the surface's window, for a contour plot."""
    xs = torch.linspace(*surface.x_range, n, dtype=torch.float64)
    ys = torch.linspace(*surface.y_range, n, dtype=torch.float64)
    gx, gy = torch.meshgrid(xs, ys, indexing="xy")
    return xs.tolist(), ys.tolist(), surface.f(gx, gy).tolist()


def loss_axis_range(surface: Surface, n: int = 120) -> tuple[float, float] | None:
    """For a surface that falls away forever, the loss axis held to the values f takes over the plotted window (a
    path that leaves it has escaped, and its plunge would flatten every other curve), with 5% room above and below;
    None for a bounded surface."""
    if surface.bounded:
        return None
    values = torch.tensor(grid(surface, n)[2], dtype=torch.float64)
    low, high = values.min().item(), values.max().item()
    room = 0.05 * (high - low)
    return low - room, high + room


def log_grid(surface: Surface, n: int = 120) -> tuple[list[float], list[float], list[list[float]]]:
    """grid() with f replaced by log(1 + f − min f): contour lines that show the floor of a valley as well as its
    walls."""
    xs, ys, zs = grid(surface, n)
    z = torch.tensor(zs, dtype=torch.float64)
    return xs, ys, torch.log1p(z - z.min()).tolist()


def article_sgd(grad: Callable[[torch.Tensor], torch.Tensor], theta: torch.Tensor, lr: float,
                steps: int) -> list[torch.Tensor]:
    """§3.3: θ ← θ − α ∇L(θ), step by step."""
    thetas = [theta.clone()]
    for _ in range(steps):
        theta = theta - lr * grad(theta)
        thetas.append(theta.clone())
    return thetas


def article_adam(grad: Callable[[torch.Tensor], torch.Tensor], theta: torch.Tensor, lr: float, steps: int,
                 beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> list[dict[str, torch.Tensor]]:
    """§3.3: m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ), θ ← θ − α m̂/(√v̂ + ε);
    returns every step's g, m, v, m̂, v̂ and θ."""
    m = torch.zeros_like(theta)
    v = torch.zeros_like(theta)
    records = []
    for t in range(1, steps + 1):
        g = grad(theta)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)
        theta = theta - lr * m_hat / (torch.sqrt(v_hat) + eps)
        records.append({"g": g, "m": m, "v": v, "m_hat": m_hat, "v_hat": v_hat, "theta": theta})
    return records


def surface_gradient(surface: Surface) -> Callable[[torch.Tensor], torch.Tensor]:
    """∇f at a point (2,), via autograd (the surfaces are the test problems, not the subject here)."""
    def grad(theta: torch.Tensor) -> torch.Tensor:
        point = theta.detach().clone().requires_grad_(True)
        g, = torch.autograd.grad(surface.f(point[0], point[1]), point)
        return g
    return grad


def buffers(optimizer: torch.optim.Optimizer, point: torch.Tensor) -> dict[str, list[float]]:
    """An optimizer's per-coordinate buffers for the point (momentum, Adam's m and v...), as lists."""
    return {k: v.detach().flatten().tolist() for k, v in optimizer.state[point].items()
            if torch.is_tensor(v) and v.numel() > 1}


def race(surface: Surface, names, start: tuple[float, float], steps: int, settings: dict | None = None,
         tolerance: float = 1e-3, schedule: str = "constant", state_step: int | None = None) -> list[Path2D]:
    """Run several torch.optim optimizers side by side, each under the learning-rate schedule `schedule`; one
    surface evaluation and one backward pass per step serve them all (each keeps its own parameter, optimizer and
    state), which makes a race several times faster than running them one after another, with the same path for
    each. A run stops when it diverges (a non-finite loss, or a bounded surface left far behind) or, on a surface
    with no bottom, when it leaves the plotted square: below it the loss falls for ever. With `state_step`, each path
    keeps its optimizer's buffers after that step (or its last). No racers, no paths."""
    if not names:
        return []
    settings = settings or {}
    points = [torch.tensor(start, dtype=torch.float64, requires_grad=True) for _ in names]
    # foreach=False: the multi-tensor path only costs time on a single two-element parameter.
    optimizers = [RACE_OPTIMIZERS[n][0]([p], **{**RACE_OPTIMIZERS[n][1], **settings.get(n, {}), "foreach": False})
                  for n, p in zip(names, points, strict=True)]
    schedulers = [build_schedule(schedule, o, steps) for o in optimizers]
    best = min((float(surface.f(*torch.tensor(m, dtype=torch.float64))) for m in surface.minima), default=None)
    paths = [Path2D(n) for n in names]
    active = list(range(len(names)))
    for step in range(steps + 1):
        stacked = torch.stack([points[i] for i in active])  # (k, 2): the racers still running
        losses = surface.f(stacked[:, 0], stacked[:, 1])  # (k,)
        running = []
        for row, (i, value, (x, y)) in enumerate(zip(active, losses.detach().tolist(), stacked.detach().tolist(),
                                                     strict=True)):
            path = paths[i]
            path.points.append((x, y))
            path.losses.append(value)
            if surface.bounded and (not math.isfinite(value) or max(abs(x), abs(y)) > ESCAPE):
                path.diverged_at = step
            elif not surface.bounded and not (math.isfinite(value) and surface.holds(x, y)):
                path.escaped_at = step
            if path.diverged_at is not None or path.escaped_at is not None:
                if state_step is not None and 0 < step < state_step:  # the state it stopped with
                    path.state = buffers(optimizers[i], points[i])
                continue
            if best is not None and path.reached_at is None and value - best <= tolerance:
                path.reached_at = step
            running.append((row, i))
        if step == steps or not running:
            break
        for _, i in running:
            points[i].grad = None  # what zero_grad() does, without its per-call overhead
        alive = losses if len(running) == len(active) else losses[[row for row, _ in running]]
        alive.sum().backward()  # each point's gradient is its own loss's gradient
        for _, i in running:
            optimizers[i].step()
            if schedulers[i]:
                schedulers[i].step()
            if state_step == step + 1:
                paths[i].state = buffers(optimizers[i], points[i])
        active = [i for _, i in running]
    return paths
