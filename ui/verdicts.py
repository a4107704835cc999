"""The core's verdicts (gradient flow, training curves, a playground session, an optimizer's path) as one sentence
in the page's language: the core decides what the numbers show, this module says it."""
from dlplay.lessons.activations import CAN_DIE, FlowReading
from dlplay.lessons.optimizers import Path2D
from dlplay.lessons.playground import Verdict
from dlplay.training.curve_reading import CurveReading
from ui.i18n import _


def factor_text(factor: float) -> str:
    """A factor as '35×' or, when huge, '6.5 × 10^15 times' (in Chinese '35 倍', '6.5 × 10^15 倍')."""
    if factor < 1e6:
        return _("{number}×").format(number=f"{factor:,.0f}")
    mantissa, exponent = f"{factor:.1e}".split("e")
    return _("{number} times").format(number=f"{mantissa} × 10^{int(exponent)}")


def gradient_flow(reading: FlowReading, activation: str) -> str:
    """How the gradients change with depth, and what that means for training."""
    if reading.kind == "shallow":
        return _("Add layers to see how gradients change with depth.")
    if reading.kind == "vanishing":
        where = (_("; already 1000× smaller at layer {layer} of {layers} (counting from the input)").format(
            layer=reading.thousandfold_at, layers=reading.layers) if reading.thousandfold_at else "")
        return _("Vanishing gradients: with {activation}, the first layer's gradient is {factor} smaller than the "
                 "last hidden layer's{where}. The early layers will barely learn.").format(
            activation=activation, factor=factor_text(reading.factor), where=where)
    if reading.kind == "exploding":
        return _("Exploding gradients: with {activation}, the first layer's gradient is {factor} larger than the "
                 "last hidden layer's. Training would be unstable.").format(activation=activation,
                                                                           factor=factor_text(reading.factor))
    return _("Healthy flow: with {activation}, gradient norms stay within {factor}× across the layers.").format(
        activation=activation, factor=f"{reading.factor:.1f}")


def dead_units(activation: str, fraction: float) -> str:
    """The share of units that output 0 for every image, and whether this activation can die."""
    if activation in CAN_DIE:
        sentence = _("Dead units (output 0 for every image of the batch): {share} on average over the layers. A "
                     "{activation} unit whose input is negative for every image outputs 0 and passes back no "
                     "gradient, so it may never recover.")
    else:
        sentence = _("Dead units (output 0 for every image of the batch): {share} on average over the layers: "
                     "{activation} never sits at exactly 0 over a whole range of inputs (LeakyReLU keeps a slope of "
                     "0.01 there), so its units cannot die.")
    return sentence.format(share=f"{fraction:.1%}", activation=activation)


def training_curves(reading: CurveReading) -> str:
    """What the training curves show, like a tutor glancing at TensorBoard."""
    train = f"{reading.train_accuracy:.1%}"
    val = f"{reading.val_accuracy:.1%}" if reading.val_accuracy is not None else ""
    sentences = {
        "empty": _("No epoch has finished yet."),
        "no-validation": _("Training accuracy {train} after {epochs} epoch(s); no validation data to compare."),
        "overfitting": _("Validation loss has risen for {rising} epochs while training loss falls: overfitting. Try "
                         "dropout, weight decay, augmentation or more data."),
        "memorising": _("Training accuracy is {gap} points above validation accuracy: the model is starting to "
                        "memorise its training images."),
        "underfitting": _("Both accuracies are low ({train} training, {val} validation): underfitting. Train longer, "
                          "raise the learning rate a little or use a bigger model."),
        "ahead": _("Validation accuracy is ahead of training accuracy ({val} vs {train}): normal early on, as "
                   "training accuracy is averaged over an epoch in which the model was still improving, through "
                   "dropout and augmentation. No sign of overfitting."),
        "agree": _("Training and validation agree ({train} vs {val}): no sign of overfitting yet."),
    }
    return sentences[reading.kind].format(train=train, val=val, epochs=reading.epochs, rising=reading.rising,
                                          gap=f"{reading.gap:.1f}")


def playground_session(verdict: Verdict) -> str:
    """What a playground network's curves say now, with the numbers the verdict rests on."""
    sentences = {
        "start": _("Press Play (or Step) and watch the losses and the picture change."),
        "blown-up": _("The loss has blown up: lower the learning rate."),
        "regularized": _("The {regularizer} penalty has pulled the weights towards zero (their mean size is {size}, "
                         "{first} before training), so the network gives almost the same answer everywhere: its "
                         "training loss {train} is no better than always guessing the same ({chance}). Lower the "
                         "regularization rate (now {rate})."),
        "overfitting": _("Overfitting: the training loss is {train} but the test loss is {test}, {ratio}× its best "
                         "({best}, after epoch {best_epoch}). The network is learning its training points rather "
                         "than the pattern. Try more data, L2 regularization or dropout."),
        "dead": _("{dead} of {total} neurons are dead: they output 0 for every training point, so no gradient "
                  "reaches them. Try a smaller learning rate or LeakyReLU."),
        "stalled": _("The training loss has stopped falling while still high ({train}; always guessing the same "
                     "scores {chance}). The network may need more neurons, other features, or a larger learning "
                     "rate."),
        "settled": _("The training loss has levelled off low (training {train}, test {test}): the network fits its "
                     "training points and has learnt what it can with these settings."),
        "test-flat": _("The training loss still falls ({train}) but the test loss no longer does ({test}; its best "
                       "was {best}, after epoch {best_epoch}): from here the network learns its training points more "
                       "than the pattern. Watch for overfitting."),
        "learning": _("Both losses are falling (training {train}, test {test}): the network is learning."),
    }
    return sentences[verdict.kind].format(
        dead=verdict.dead, total=verdict.neurons, train=f"{verdict.train_loss:.3f}", test=f"{verdict.test_loss:.3f}",
        best=f"{verdict.best_test:.3f}", best_epoch=verdict.best_epoch,
        ratio=f"{verdict.test_loss / verdict.best_test:.2f}" if verdict.best_test else "",
        chance=f"{verdict.chance_loss:.3f}", regularizer=verdict.regularizer, rate=f"{verdict.reg_rate:g}",
        size=f"{verdict.weight_size:.2g}", first=f"{verdict.first_weight_size:.2g}")


def optimizer_outcome(path: Path2D) -> str:
    """How an optimizer's run on a surface ended."""
    if path.escaped_at is not None:
        return _("ran off the surface at step {step}, still falling").format(step=path.escaped_at)
    if path.diverged_at is not None:
        return _("diverged at step {step}").format(step=path.diverged_at)
    return _("finished")
