"""The Trainer learns real digits, stops within a batch, is reproducible, and evaluate() counts correctly."""
import json
import threading

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from dlplay.augment import Augmentation, random_affine
from dlplay.data import ImageSet
from dlplay.evaluate import evaluate
from dlplay.models import build_model
from dlplay.train import OPTIMIZERS, Trainer, build_optimizer


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
