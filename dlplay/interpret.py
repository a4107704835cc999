"""Plain-language readings of training curves, like a tutor glancing at TensorBoard."""
import itertools
from collections.abc import Sequence

from .train import EpochEvent

RISING_EPOCHS = 3  # validation loss rising this many epochs in a row while training loss falls = overfitting
GAP_POINTS = 5.0  # train accuracy this many points above validation = memorising


def read_curves(epochs: Sequence[EpochEvent]) -> str:
    """One sentence on what the per-epoch curves show: overfitting, a generalisation gap, underfitting or fine."""
    if not epochs:
        return "No epoch has finished yet."
    last = epochs[-1]
    if last.val_loss is None:
        return (f"Training accuracy {last.train_accuracy:.1%} after {len(epochs)} epoch(s); no validation data to "
                "compare.")
    rising = 0
    for before, after in itertools.pairwise(epochs):
        rising = rising + 1 if after.val_loss > before.val_loss and after.train_loss < before.train_loss else 0
    if rising >= RISING_EPOCHS:
        return (f"Validation loss has risen for {rising} epochs while training loss falls: overfitting. "
                "Try dropout, weight decay, augmentation or more data.")
    gap = (last.train_accuracy - last.val_accuracy) * 100
    if gap > GAP_POINTS:
        return (f"Training accuracy is {gap:.1f} points above validation accuracy: the model is starting to "
                "memorise its training images.")
    if last.val_accuracy < 0.5 and len(epochs) >= 2 and last.train_accuracy < 0.6:
        return (f"Both accuracies are low ({last.train_accuracy:.0%} training, {last.val_accuracy:.0%} validation): "
                "underfitting. Train longer, raise the learning rate a little or use a bigger model.")
    if -gap > GAP_POINTS:
        return (f"Validation accuracy is ahead of training accuracy ({last.val_accuracy:.1%} vs "
                f"{last.train_accuracy:.1%}): normal early on, as training accuracy is averaged over an epoch in "
                "which the model was still improving, through dropout and augmentation. No sign of overfitting.")
    return (f"Training and validation agree ({last.train_accuracy:.1%} vs {last.val_accuracy:.1%}): "
            "no sign of overfitting yet.")
