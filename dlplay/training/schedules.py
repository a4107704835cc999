"""Learning-rate schedules by name: one registry for the trainer, the CLI and the optimizer race."""
import torch
from torch.optim.lr_scheduler import CosineAnnealingLR, ExponentialLR, LRScheduler, OneCycleLR, StepLR

# name -> what it does, in words a learner reads beside the curve (every schedule is set by the run's length).
SCHEDULES: dict[str, str] = {
    "constant": "the same learning rate all the way",
    "step": "halved at each third of the run",
    "exponential": "shrinks by the same factor every step, to 1% of the start at the end",
    "cosine": "follows half a cosine from the start down to 0",
    "onecycle": "warms up to the set rate over the first quarter, then anneals to almost 0 (one-cycle)",
}
ONECYCLE_WARMUP = 0.25  # share of the run spent warming up


def cycles_momentum(optimizer: torch.optim.Optimizer) -> bool:
    """Whether one-cycle should cycle this optimizer's momentum: only where the user chose momentum (SGD or RMSprop
    with momentum > 0, or Adam's β₁). OneCycleLR's default cycles it always, which silently gives plain SGD a
    momentum of 0.85-0.95, and raises for optimizers that have none (Adagrad)."""
    group = optimizer.param_groups[0]
    return "betas" in group or group.get("momentum", 0) > 0


def build_schedule(name: str, optimizer: torch.optim.Optimizer, total_steps: int) -> LRScheduler | None:
    """The scheduler `name` over `total_steps` optimizer steps (None for 'constant'); stepped once per step."""
    total_steps = max(1, total_steps)
    if name == "constant":
        return None
    if name == "step":
        return StepLR(optimizer, step_size=max(1, total_steps // 3), gamma=0.5)
    if name == "exponential":
        return ExponentialLR(optimizer, gamma=0.01 ** (1 / total_steps))
    if name == "cosine":
        return CosineAnnealingLR(optimizer, T_max=total_steps)
    if name == "onecycle":
        # OneCycleLR's warm-up ends at step pct_start·total − 1 and divides by that: a warm-up of exactly one step
        # (a 4-step run) divides by zero, so such a run warms up for one and a half steps instead.
        warmup = ONECYCLE_WARMUP if ONECYCLE_WARMUP * total_steps != 1 else 1.5 / total_steps
        return OneCycleLR(optimizer, max_lr=[g["lr"] for g in optimizer.param_groups], total_steps=total_steps,
                          pct_start=warmup, cycle_momentum=cycles_momentum(optimizer))
    raise ValueError(f"unknown schedule {name!r}; choose one of: {', '.join(SCHEDULES)}")


def lr_trace(name: str, lr: float, total_steps: int) -> list[float]:
    """The learning rate the schedule `name` sets at each of `total_steps` steps, starting from `lr`."""
    weight = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([weight], lr=lr)
    scheduler = build_schedule(name, optimizer, total_steps)
    rates = []
    for _ in range(total_steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if scheduler:
            scheduler.step()
    return rates
