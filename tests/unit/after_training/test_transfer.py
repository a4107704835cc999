"""Transfer learning: the new head and what is frozen, frozen weights stay put while fine-tuning, and the lab's
two arms learn from the very same images."""
import pytest
import torch
from torch import nn

from dlplay.after_training import transfer
from dlplay.after_training.transfer import FREEZE, fine_tune, only_classes, transfer_lab, with_new_head
from dlplay.data import ImageSet, load_dataset
from dlplay.device import pick_device
from dlplay.models import build_model


def test_only_classes_keeps_and_relabels_in_the_order_given():
    data = ImageSet(torch.zeros(6, 1, 2, 2, dtype=torch.uint8), torch.tensor([5, 1, 7, 5, 9, 7]))
    picked = only_classes(data, [7, 5])
    assert picked.labels.tolist() == [1, 0, 1, 0]  # 5, 7, 5, 7 in the original order, 7 → 0 and 5 → 1


@pytest.mark.parametrize("freeze", FREEZE)
def test_a_new_head_and_the_frozen_parts(freeze):
    model = build_model("small-cnn", (1, 28, 28), 5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    moved = with_new_head(model, 3, freeze)
    assert moved[-1].out_features == 3 and model[-1].out_features == 5  # the original keeps its head
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    learning = {type(m).__name__ for m in moved.modules() if any(p.requires_grad for p in m.parameters(False))}
    assert learning == {"none": {"Conv2d", "BatchNorm2d", "Linear"}, "features": {"Linear"},
                        "all but the head": {"Linear"}}[freeze]
    trainable = sum(p.numel() for p in moved.parameters() if p.requires_grad)
    if freeze == "all but the head":
        assert trainable == moved[-1].weight.numel() + moved[-1].bias.numel()
    with pytest.raises(ValueError, match="freeze must be one of"):
        with_new_head(model, 3, "conv only")


@pytest.mark.parametrize("freeze", FREEZE[1:])
def test_fine_tuning_moves_only_what_is_not_frozen_batch_norm_statistics_included(freeze):
    digits = load_dataset("mnist5k")
    model = with_new_head(build_model("small-cnn", (1, 28, 28), 10), 10, freeze)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fine_tune(model, ImageSet(digits.train.images[:64], digits.train.labels[:64]), pick_device("cpu"), steps=3)
    after = model.state_dict()
    changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    layers = {"features": {"14", "17"}, "all but the head": {"17"}}[freeze]  # the dense layers, or the head
    assert changed == layers and all(isinstance(model[int(i)], nn.Linear) for i in layers)
    assert {"2.running_mean", "2.running_var", "2.num_batches_tracked"} <= set(before)  # the statistics were there


def test_the_lab_arms_learn_from_the_same_images(monkeypatch):
    seen = []
    real = transfer.fine_tune

    def watched(model, data, device, steps, lr=3e-3, seed=0):  # the real fine-tuning, noting what it was given
        seen.append(data)
        return real(model, data, device, steps, lr, seed)

    monkeypatch.setattr(transfer, "fine_tune", watched)
    accuracy, results = transfer_lab(load_dataset("mnist5k"), pick_device("cpu"), shots=(3, 6), pretrain_epochs=1,
                                     steps=2)
    assert [r.per_class for r in results] == [3, 6] and 0 < accuracy <= 1
    assert len(seen) == 4
    for scratch_data, transferred_data in (seen[0:2], seen[2:4]):
        assert scratch_data is transferred_data  # one sample, both arms
    assert [len(s) for s in seen] == [15, 15, 30, 30]
    assert set(seen[0].labels.tolist()) == set(range(5))  # digits 5–9, relabelled 0–4


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty torch cache of its own (torch.hub reads TORCH_HOME each time)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    return tmp_path


def offline(monkeypatch):
    """No network: a download fails the way urllib fails offline (tests never touch the real network)."""
    import urllib.error

    def refuse(*_args, **_kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


def test_offline_imagenet_weights_are_one_sentence_saying_where_the_file_goes(torch_home, monkeypatch):
    offline(monkeypatch)
    with pytest.raises(transfer.WeightsUnavailable) as caught:
        transfer.imagenet_weights("mobilenet-v3-small")
    message = str(caught.value)
    assert "mobilenet_v3_small-047dcff4.pth" in message and str(torch_home / "hub" / "checkpoints") in message


def test_imagenet_weights_from_the_cache_go_into_the_backbone_and_a_run_trains_from_them(torch_home, monkeypatch):
    import torchvision

    from dlplay.augment import Augmentation
    from dlplay.data import Dataset
    from dlplay.training.jobs.runner import JobRunner, build_run_model
    from dlplay.training.jobs.spec import DataRef, JobSpec, RunConfig

    fake = torchvision.models.mobilenet_v3_small(num_classes=1000).state_dict()  # the real names and shapes
    asked = []

    def from_the_cache(url, folder, what):  # fetching and checking the file: tests/unit/test_pretrained.py
        asked.append((url.rsplit("/", 1)[-1], folder))
        return fake

    monkeypatch.setattr(transfer, "checked_weights", from_the_cache)
    digits = load_dataset("mnist5k")
    data = Dataset("mnist5k", digits.class_names, ImageSet(digits.train.images[:64], digits.train.labels[:64]),
                   ImageSet(digits.test.images[:32], digits.test.labels[:32]))
    config = RunConfig(model="mobilenet-v3-small", epochs=1, batch_size=32, augmentation=Augmentation(),
                       start_from=transfer.IMAGENET, freeze="features", validation_fraction=0.0)
    model = build_run_model(config, data)
    assert asked == [("mobilenet_v3_small-047dcff4.pth", torch_home / "hub" / "checkpoints")]
    network = model[-1]
    for key, value in network.state_dict().items():
        if not key.startswith("classifier.3"):  # every layer but the new 10-class output comes from the file
            assert torch.equal(value, fake[key]), key
    assert network.classifier[3].out_features == 10
    assert not any(p.requires_grad for p in network.features.parameters())
    x = digits.test.images[:2].float() / 255  # grey 28×28 in: upsampled, made RGB, ImageNet-normalised
    assert model.eval()(x).shape == (2, 10)
    events = []
    JobRunner(JobSpec("0123456789ab", config, DataRef("mnist5k"), threads=1), data, events.append,
              lambda *_: None).run()
    assert events[-1]["status"] == "finished", events[-1]
