"""The Trainer learns real digits, stops within a batch, is reproducible, and evaluate() counts correctly."""
import json
import threading

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from dlplay.augment import Augmentation, affine_matrices, random_affine, sampling_grid
from dlplay.data import ImageSet
from dlplay.evaluate import evaluate
from dlplay.models import build_model
from dlplay.training.trainer import OPTIMIZERS, Trainer, build_optimizer


def make_trainer(data, device, seed=0, epochs=1, batch_size=64, optimizer="adamw", lr=3e-3, **kwargs):
    model = build_model("small-cnn", tuple(data.train.images.shape[1:]), 10, seed=seed)
    opt = build_optimizer(optimizer, model.parameters(), lr)
    return Trainer(model, opt, data.train, device, batch_size=batch_size, epochs=epochs, seed=seed, **kwargs)


def test_training_on_mnist5k_learns(mnist5k, cpu):
    trainer = make_trainer(mnist5k, cpu, epochs=2, schedule="onecycle", val=mnist5k.test)
    epochs = []
    trainer.on("epoch_end", epochs.append)
    history = trainer.fit()
    assert [e.epoch for e in epochs] == [1, 2] and not history.stopped
    assert epochs[1].train_loss < epochs[0].train_loss
    assert epochs[1].val_accuracy >= 0.95  # 10 classes: chance is 0.10
    assert evaluate(trainer.model, mnist5k.test, cpu).accuracy == pytest.approx(epochs[1].val_accuracy)
    assert all(e.images_per_sec > 0 for e in history.batches)


def test_frozen_batch_norm_keeps_its_running_statistics_while_the_others_move(mnist5k, cpu):
    model = build_model("small-cnn", (1, 28, 28), 10, seed=0)
    frozen, learning = model[2], model[6]  # the first block's batch-norm, and the second's
    for parameter in [*model[1].parameters(), *frozen.parameters()]:  # the first conv block kept fixed
        parameter.requires_grad_(False)
    before = [{k: v.clone() for k, v in layer.state_dict().items()} for layer in (frozen, learning)]
    data = ImageSet(mnist5k.train.images[:128], mnist5k.train.labels[:128])
    optimizer = build_optimizer("adam", [p for p in model.parameters() if p.requires_grad], 3e-3)
    history = Trainer(model, optimizer, data, cpu, batch_size=32, epochs=2, val=data).fit()  # val: eval, then train
    assert len(history.batches) == 8
    assert all(torch.equal(value, before[0][key]) for key, value in frozen.state_dict().items())
    assert learning.num_batches_tracked.item() == before[1]["num_batches_tracked"].item() + 8
    assert not torch.equal(learning.running_mean, before[1]["running_mean"])
    assert not torch.equal(learning.running_var, before[1]["running_var"])
    assert not torch.equal(learning.weight, before[1]["weight"])


def test_stop_is_honoured_before_the_next_batch(mnist5k, cpu):
    trainer = make_trainer(mnist5k, cpu)
    trainer.on("batch_end", lambda e: trainer.stop() if e.step == 3 else None)
    history = trainer.fit()
    assert history.stopped and len(history.batches) == 3 and history.epochs == []


def test_stop_from_another_thread_mid_epoch(mnist5k, cpu):
    trainer = make_trainer(mnist5k, cpu, epochs=3)
    seen, started, result = [], threading.Event(), {}
    trainer.on("batch_end", lambda e: (seen.append(e), started.set()))
    worker = threading.Thread(target=lambda: result.setdefault("history", trainer.fit()))
    worker.start()
    assert started.wait(60)
    trainer.stop()
    seen_at_stop = len(seen)
    worker.join(60)
    history = result["history"]
    assert history.stopped and len(history.batches) <= seen_at_stop + 1  # at most the batch already running


def test_pause_at_holds_after_exactly_that_step_until_resumed_and_stop_ends_a_held_run(mnist5k, cpu):
    small = type(mnist5k)(mnist5k.name, mnist5k.class_names, ImageSet(mnist5k.train.images[:320],
                          mnist5k.train.labels[:320]), mnist5k.test)
    trainer = make_trainer(small, cpu, epochs=2)  # 5 steps per epoch
    trainer.pause_at = 5  # at the epoch's end: epoch 1's event comes before the hold
    events, holds, result = [], [threading.Event(), threading.Event()], {}
    trainer.on("batch_end", lambda e: events.append(("batch", e.step)))
    trainer.on("batch_end", lambda e: trainer.pause() if e.step == 7 else None)  # a pause asked for mid-epoch
    trainer.on("epoch_end", lambda e: events.append(("epoch", e.epoch)))
    trainer.on("held", lambda step: (events.append(("held", step)), holds[len(events) > 7].set()))
    worker = threading.Thread(target=lambda: result.setdefault("history", trainer.fit()))
    worker.start()
    assert holds[0].wait(60)
    assert events == [*[("batch", k) for k in range(1, 6)], ("epoch", 1), ("held", 5)]
    trainer.resume()
    assert holds[1].wait(60)
    assert events[7:] == [("batch", 6), ("batch", 7), ("held", 7)]  # held before step 8
    trainer.stop()  # a held run ends at once, without another step
    worker.join(60)
    assert result["history"].stopped and result["history"].batches[-1].step == 7


def test_same_seed_same_losses_other_seed_differs(mnist5k, cpu):
    small = type(mnist5k)(mnist5k.name, mnist5k.class_names, ImageSet(mnist5k.train.images[:640],
                          mnist5k.train.labels[:640]), mnist5k.test)
    aug = Augmentation(rotation_deg=10, width_shift=0.1)
    runs = [[e.loss for e in make_trainer(small, cpu, seed=s, augmentation=aug).fit().batches] for s in (7, 7, 8)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_other_threads_using_the_global_rng_do_not_change_a_seeded_run(mnist5k, cpu):
    small = type(mnist5k)(mnist5k.name, mnist5k.class_names, ImageSet(mnist5k.train.images[:640],
                          mnist5k.train.labels[:640]), mnist5k.test)
    quiet = [e.loss for e in make_trainer(small, cpu, seed=5).fit().batches]
    done = threading.Event()

    def noisy_neighbour():  # another session: building models and drawing from torch's global RNG
        while not done.is_set():
            build_model("article-cifar10", (1, 28, 28), 10, seed=1)
            torch.nn.Linear(50, 50)  # default init: draws from the global RNG
            torch.rand(1000)

    neighbour = threading.Thread(target=noisy_neighbour)
    neighbour.start()
    try:
        busy = [e.loss for e in make_trainer(small, cpu, seed=5).fit().batches]
    finally:
        done.set()
        neighbour.join()
    assert busy == quiet


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_lowers_the_loss(mnist5k, cpu, name):
    small = ImageSet(mnist5k.train.images[:256], mnist5k.train.labels[:256])
    model = build_model("small-cnn", (1, 28, 28), 10)
    lr = {"sgd": 0.05, "momentum": 0.02}.get(name, 2e-3)
    trainer = Trainer(model, build_optimizer(name, model.parameters(), lr), small, cpu, batch_size=256, epochs=15)
    losses = [e.loss for e in trainer.fit().batches]
    assert losses[-1] < 0.7 * losses[0]


def test_optimizer_settings():
    params = [nn.Parameter(torch.zeros(2))]
    assert build_optimizer("momentum", params, 0.1).param_groups[0]["momentum"] == 0.9
    assert isinstance(build_optimizer("adamw", params, 0.1), torch.optim.AdamW)
    with pytest.raises(ValueError, match="adam"):
        build_optimizer("lbfgs", params, 0.1)


@pytest.mark.parametrize("name, reference", [("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)])
def test_fused_adam_steps_like_torch_optims_for_loop_version(name, reference):
    torch.manual_seed(0)
    ours = [nn.Parameter(torch.randn(3, 4)), nn.Parameter(torch.randn(5))]
    theirs = [nn.Parameter(p.detach().clone()) for p in ours]
    start = [p.detach().clone() for p in ours]
    fused = build_optimizer(name, ours, 0.01, weight_decay=0.1)
    assert fused.param_groups[0]["fused"]
    plain = reference(theirs, lr=0.01, weight_decay=0.1, foreach=False)
    for _ in range(5):
        grads = [torch.randn_like(p) for p in ours]
        for params, opt in ((ours, fused), (theirs, plain)):
            for p, g in zip(params, grads, strict=True):
                p.grad = g.clone()
            opt.step()
    for a, b, before in zip(ours, theirs, start, strict=True):
        torch.testing.assert_close(a, b)
        assert not torch.allclose(a, before)  # the steps moved the weights


class FixedLogits(nn.Module):
    """A 'model' whose logits are stored per image index (the image's first pixel holds the index)."""

    def __init__(self, logits):
        super().__init__()
        self.logits = logits
        self.anchor = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return self.logits[(x[:, 0, 0, 0] * 255).round().long()]


def test_evaluate_confusion_accuracy_and_loss_by_hand(cpu):
    generator = torch.Generator().manual_seed(0)
    n, k = 50, 4
    logits = torch.randn(n, k, generator=generator)
    labels = torch.randint(0, k, (n,), generator=generator)
    images = torch.zeros(n, 1, 2, 2, dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.arange(n, dtype=torch.uint8)
    result = evaluate(FixedLogits(logits), ImageSet(images, labels), cpu)
    predicted = logits.argmax(1)
    expected = torch.zeros(k, k, dtype=torch.int64)
    for true, guess in zip(labels.tolist(), predicted.tolist(), strict=True):
        expected[true, guess] += 1
    assert torch.equal(result.confusion, expected)
    assert result.accuracy == pytest.approx((predicted == labels).float().mean().item())
    assert result.loss == pytest.approx(F.cross_entropy(logits, labels).item(), rel=1e-6)
    recall = [expected[c, c].item() / expected[c].sum().item() for c in range(k)]
    assert result.per_class_accuracy == pytest.approx(recall)


def test_augmentation_flip_only_mirrors_or_keeps_each_image():
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(64, 1, 9, 9, generator=generator)
    out = random_affine(x, Augmentation(horizontal_flip=True), generator)
    mirrored = torch.tensor([torch.allclose(o, i.flip(-1), atol=1e-5) for o, i in zip(out, x, strict=True)])
    kept = torch.tensor([torch.allclose(o, i, atol=1e-5) for o, i in zip(out, x, strict=True)])
    assert (mirrored | kept).all() and mirrored.any() and kept.any()


def test_augmentation_inactive_is_identity_and_active_changes_pixels():
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(8, 1, 28, 28, generator=generator)
    assert random_affine(x, Augmentation(), generator) is x
    moved = random_affine(x, Augmentation(rotation_deg=30, width_shift=0.2, zoom=0.2, shear_deg=10), generator)
    assert moved.shape == x.shape and not torch.allclose(moved, x)


@pytest.mark.parametrize("height,width", [(28, 28), (5, 11), (32, 17)])
def test_the_sampling_grid_is_affine_grids(height, width):
    theta = torch.randn(7, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(height))
    expected = F.affine_grid(theta, [7, 3, height, width], align_corners=False)
    assert torch.allclose(sampling_grid(theta, height, width), expected, atol=1e-12, rtol=0)


def test_random_affine_is_grid_sample_of_its_matrices():
    x = torch.rand(16, 3, 12, 10, generator=torch.Generator().manual_seed(1))
    aug = Augmentation(rotation_deg=20, width_shift=0.1, height_shift=0.2, shear_deg=5, zoom=0.1, horizontal_flip=True)
    theta = affine_matrices(16, aug, torch.Generator().manual_seed(2))
    expected = F.grid_sample(x, F.affine_grid(theta, list(x.shape), align_corners=False), padding_mode="border",
                             align_corners=False)
    assert torch.allclose(random_affine(x, aug, torch.Generator().manual_seed(2)), expected, atol=1e-6)


def test_the_matrices_stay_within_the_augmentations_ranges():
    generator = torch.Generator().manual_seed(0)
    turns = affine_matrices(500, Augmentation(rotation_deg=30), generator).double()
    rotation = turns[:, :, :2]
    assert torch.allclose(rotation @ rotation.transpose(1, 2), torch.eye(2, dtype=torch.float64).expand(500, 2, 2),
                          atol=1e-6)  # pure rotations
    angles = torch.atan2(rotation[:, 1, 0], rotation[:, 0, 0]).rad2deg()
    assert angles.abs().max() <= 30 and angles.abs().max() > 25 and (turns[:, :, 2] == 0).all()
    zooms = affine_matrices(500, Augmentation(zoom=0.2), generator).double()
    assert torch.allclose(zooms[:, 0, 0], zooms[:, 1, 1]) and (zooms[:, 0, 1] == 0).all()
    assert zooms[:, 0, 0].min() >= 1 / 1.2 - 1e-6 and zooms[:, 0, 0].max() <= 1 / 0.8 + 1e-6
    shifts = affine_matrices(500, Augmentation(width_shift=0.1), generator)[:, 0, 2]
    assert shifts.abs().max() <= 0.2 + 1e-6 and shifts.abs().max() > 0.18  # 10% of the width is 0.2 in [-1, 1]


def test_a_run_resumed_from_its_saved_state_continues_exactly(mnist5k, cpu):
    small = type(mnist5k)(mnist5k.name, mnist5k.class_names, ImageSet(mnist5k.train.images[:640],
                          mnist5k.train.labels[:640]), mnist5k.test)
    aug = Augmentation(rotation_deg=10, width_shift=0.1)
    whole = make_trainer(small, cpu, seed=4, epochs=3, schedule="onecycle", augmentation=aug)
    reference = [e.loss for e in whole.fit().batches]

    first = make_trainer(small, cpu, seed=4, epochs=3, schedule="onecycle", augmentation=aug)
    first.on("epoch_end", lambda e: first.stop() if e.epoch == 1 else None)
    part_one = [e.loss for e in first.fit().batches]
    tensors, plain = first.state()
    weights = {k: v.clone() for k, v in first.model.state_dict().items()}

    second = make_trainer(small, cpu, seed=4, epochs=3, schedule="onecycle", augmentation=aug)
    second.model.load_state_dict(weights)
    second.load_state(tensors, json.loads(json.dumps(plain)))  # the plain part survives JSON, as on disk
    part_two = [e.loss for e in second.fit().batches]
    assert part_one + part_two == reference
