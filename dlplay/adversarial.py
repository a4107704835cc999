"""The fast gradient sign method (Goodfellow et al. 2015): a nudge of every pixel that flips a prediction."""
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from dlplay.classify import to_picture
from dlplay.models import evaluating


def fgsm(model: nn.Module, batch: torch.Tensor, label: int, epsilon: float) -> torch.Tensor:
    """x + ε·sign(∂ loss(x, label) / ∂x), clipped to the valid 0..1 range: one (1, C, H, W) adversarial picture."""
    device = next(model.parameters()).device
    with torch.enable_grad(), evaluating(model):  # callers may be inside torch.no_grad()
        x = batch.to(device).clone().requires_grad_(True)
        grad, = torch.autograd.grad(F.cross_entropy(model(x), torch.tensor([label], device=device)), x)
    return (x + epsilon * grad.sign()).clamp(0, 1).detach().cpu()


@torch.no_grad()
def _predicted(model: nn.Module, x: torch.Tensor) -> int:
    with evaluating(model):
        return int(model(x.to(next(model.parameters()).device)).argmax(1))


def perturbation_picture(batch: torch.Tensor, moved: torch.Tensor, epsilon: float) -> np.ndarray:
    """What FGSM added, as a picture: grey is no change, white +ε, black −ε (uint8, (H, W) or (H, W, 3))."""
    return to_picture(((moved - batch) / max(epsilon, 1e-9) + 1) / 2)


def flip_epsilon(model: nn.Module, batch: torch.Tensor, label: int, epsilons: Sequence[float]) -> float | None:
    """The smallest ε of `epsilons` (ascending) whose FGSM picture is no longer classified as `label`."""
    for epsilon in epsilons:
        if _predicted(model, fgsm(model, batch, label, epsilon)) != label:
            return epsilon
    return None
