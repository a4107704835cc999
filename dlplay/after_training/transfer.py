"""Transfer learning, the usual answer to "not enough data" (the article's §9.1 says why data matters, not what to
do with little; see Yosinski et al., 2014): reuse a trained network's features for new classes (a new head, the
features frozen or not), and a lab that measures what that buys against training from scratch on the same few
images."""
import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from dlplay.data import Dataset, ImageSet, sample_per_class
from dlplay.device import DeviceInfo
from dlplay.evaluate import evaluate
from dlplay.models import build_model, init_weights
from dlplay.pretrained import WeightsUnavailable, checked_weights
from dlplay.training.trainer import Trainer, build_optimizer

FREEZE = ("none", "features", "all but the head")  # what stays fixed while the new classes are learnt
IMAGENET = "imagenet"  # start from torchvision's ImageNet weights (a run's `start_from`)
IMAGENET_WEIGHTS = {"mobilenet-v3-small": "MobileNet_V3_Small_Weights"}  # architecture -> torchvision weights enum


def imagenet_weights(architecture: str) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet weights for `architecture`, from torch's cache or downloaded once into it, checked
    and loaded without running pickled code (dlplay.pretrained)."""
    import torchvision.models

    if architecture not in IMAGENET_WEIGHTS:
        raise WeightsUnavailable(f"dlplay has no ImageNet weights for {architecture}; pick "
                                 f"{', '.join(IMAGENET_WEIGHTS)}")
    weights = getattr(torchvision.models, IMAGENET_WEIGHTS[architecture]).IMAGENET1K_V1
    return checked_weights(weights.url, Path(torch.hub.get_dir()) / "checkpoints",
                           f"ImageNet weights for {architecture}")


def load_imagenet_backbone(model: nn.Module, architecture: str) -> nn.Module:
    """Put ImageNet weights into the torchvision network inside a dlplay `architecture` model, all but the final
    layer (whose classes differ); returns the model."""
    state = imagenet_weights(architecture)
    network = next(m for m in model.modules() if type(m).__module__.startswith("torchvision."))
    own = network.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    missing = [k for k in own if k not in usable]
    if len(missing) > 2:  # only the last layer's weight and bias may differ
        raise WeightsUnavailable(f"the ImageNet weights do not fit {architecture}: {', '.join(missing[:3])} …")
    network.load_state_dict(usable, strict=False)
    return model
FINE_TUNE_STEPS = 150  # optimizer steps per arm, whatever the number of images: few images, many epochs


def only_classes(data: ImageSet, classes: Sequence[int]) -> ImageSet:
    """The images of `classes`, relabelled 0, 1, … in the order given."""
    keep = torch.isin(data.labels, torch.tensor(list(classes)))
    relabel = torch.full((int(data.labels.max()) + 1,), -1, dtype=torch.int64)
    relabel[torch.tensor(list(classes))] = torch.arange(len(classes))
    return ImageSet(data.images[keep], relabel[data.labels[keep]])


def with_new_head(model: nn.Sequential, num_classes: int, freeze: str, seed: int = 0) -> nn.Sequential:
    """A copy of `model` whose last linear layer is replaced by a fresh one for `num_classes`, with `freeze` deciding
    what else learns: "none" (everything), "features" (the dense layers only: conv and batch-norm fixed) or "all but
    the head" (only the new layer). The Trainer keeps frozen batch-norm layers in eval mode, so their running
    statistics stay fixed too."""
    if freeze not in FREEZE:
        raise ValueError(f"freeze must be one of {', '.join(FREEZE)}, not {freeze!r}")
    copied = copy.deepcopy(model)
    name, last = [(n, m) for n, m in copied.named_modules() if isinstance(m, nn.Linear)][-1]
    head = nn.Linear(last.in_features, num_classes)
    init_weights(nn.Sequential(head), torch.Generator().manual_seed(seed))
    parent_name, _, attribute = name.rpartition(".")
    setattr(copied.get_submodule(parent_name), attribute, head)
    for module in copied.modules():
        fixed = (freeze == "features" and isinstance(module, (nn.Conv2d, nn.BatchNorm2d))) or (
            freeze == "all but the head" and module is not head)
        for parameter in module.parameters(recurse=False):
            parameter.requires_grad_(not fixed)
    return copied


def fine_tune(model: nn.Module, data: ImageSet, device: DeviceInfo, steps: int = FINE_TUNE_STEPS, lr: float = 3e-3,
              seed: int = 0) -> nn.Module:
    """Train the parameters of `model` that are not frozen for about `steps` optimizer steps (whole epochs) on
    `data`; returns it."""
    batch_size = min(64, len(data))
    epochs = math.ceil(steps / math.ceil(len(data) / batch_size))
    trainable = [p for p in model.parameters() if p.requires_grad]
    Trainer(model.to(device.device), build_optimizer("adam", trainable, lr), data, device, batch_size=batch_size,
            epochs=epochs, seed=seed).fit()
    return model


@dataclass(frozen=True)
class LabResult:
    """From scratch against transferred, on the same few images of the new classes."""

    per_class: int
    scratch: float  # test accuracy on the new classes
    transferred: float


def transfer_lab(data: Dataset, device: DeviceInfo, old: Sequence[int] = (0, 1, 2, 3, 4),
                 new: Sequence[int] = (5, 6, 7, 8, 9), shots: Sequence[int] = (10, 50, 200), freeze: str = "none",
                 pretrain_epochs: int = 5, steps: int = FINE_TUNE_STEPS,
                 seed: int = 0) -> tuple[float, list[LabResult]]:
    """Pre-train the small CNN on the `old` classes, then learn the `new` ones from `shots` images per class, from
    scratch and from the pre-trained features, each arm on the same images. Returns the pre-trained model's test
    accuracy on the old classes and one result per shot count."""
    mean, std = data.channel_stats()
    old_train, old_test = only_classes(data.train, old), only_classes(data.test, old)
    new_train, new_test = only_classes(data.train, new), only_classes(data.test, new)
    pretrained = build_model("small-cnn", data.input_shape, len(old), mean, std, seed=seed)
    Trainer(pretrained.to(device.device), build_optimizer("adamw", pretrained.parameters(), 3e-3), old_train, device,
            batch_size=64, epochs=pretrain_epochs, schedule="onecycle", seed=seed).fit()
    pretrained_accuracy = evaluate(pretrained, old_test, device).accuracy
    results = []
    for shots_per_class in shots:
        sample = sample_per_class(new_train, shots_per_class, seed=seed)
        fresh = build_model("small-cnn", data.input_shape, len(new), mean, std, seed=seed + 1)
        scratch = fine_tune(fresh, sample, device, steps, seed=seed)
        transferred = fine_tune(with_new_head(pretrained, len(new), freeze, seed=seed + 1), sample, device, steps,
                                seed=seed)
        results.append(LabResult(shots_per_class, evaluate(scratch, new_test, device).accuracy,
                                 evaluate(transferred, new_test, device).accuracy))
    return pretrained_accuracy, results
