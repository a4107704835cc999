"""Plain-language readings of training curves, like a tutor glancing at TensorBoard."""
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from dlplay.training.trainer import EpochEvent

RISING_EPOCHS = 3  # validation loss rising this many epochs in a row while training loss falls = overfitting
GAP_POINTS = 5.0  # train accuracy this many points above validation = memorising


@dataclass(frozen=True)
class CurveReading:
    """What the per-epoch curves show (ui/verdicts.py says it in the page's language)."""

    kind: str  # "empty", "no-validation", "overfitting", "memorising", "underfitting", "ahead" or "agree"
    epochs: int = 0
    train_accuracy: float = 0.0
    val_accuracy: float | None = None
    rising: int = 0  # epochs in a row the validation loss rose while the training loss fell
    gap: float = 0.0  # training minus validation accuracy, in points


def read_curves(epochs: Sequence[EpochEvent]) -> CurveReading:
    """Classify the per-epoch curves: overfitting, a generalisation gap, underfitting or fine."""
    if not epochs:
        return CurveReading("empty")
    last = epochs[-1]
    if last.val_loss is None:
        return CurveReading("no-validation", len(epochs), last.train_accuracy)
    rising = 0
    for before, after in itertools.pairwise(epochs):
        rising = rising + 1 if after.val_loss > before.val_loss and after.train_loss < before.train_loss else 0
    gap = (last.train_accuracy - last.val_accuracy) * 100
    if rising >= RISING_EPOCHS:
        kind = "overfitting"
    elif gap > GAP_POINTS:
        kind = "memorising"
    elif last.val_accuracy < 0.5 and len(epochs) >= 2 and last.train_accuracy < 0.6:
        kind = "underfitting"
    elif -gap > GAP_POINTS:
        kind = "ahead"
    else:
        kind = "agree"
    return CurveReading(kind, len(epochs), last.train_accuracy, last.val_accuracy, rising, gap)
