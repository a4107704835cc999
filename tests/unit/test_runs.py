"""Background training runs, the plain-language reading of curves, and the chart data."""
import threading
import time

import pytest
import torch

from dlplay.augment import Augmentation
from dlplay.data import Dataset, ImageSet
from dlplay.interpret import read_curves
from dlplay.runs import RunConfig, RunSlots, TrainingRun, epochs_csv, read_resume_point, take_fraction
from dlplay.train import EpochEvent
from ui import charts

QUICK = RunConfig(epochs=1, augmentation=Augmentation())


def small(mnist5k, n=640) -> Dataset:
    return Dataset("mnist5k", mnist5k.class_names, ImageSet(mnist5k.train.images[:n], mnist5k.train.labels[:n]),
                   ImageSet(mnist5k.test.images[:200], mnist5k.test.labels[:200]))


def wait_until(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_run_trains_and_evaluates(mnist5k):
    run = TrainingRun(RunConfig(epochs=2), mnist5k, RunSlots(1)).start()
    run.join(120)
    snap = run.snapshot()
    assert snap.status == "finished" and len(snap.epochs) == 2 and snap.step == snap.total_steps
    assert snap.evaluation.accuracy >= 0.9 and snap.epochs[-1].val_accuracy >= 0.9
    assert len(run.train_set) == 3600 and len(run.val_set) == 400  # 10% of the training images validate


def test_an_interrupted_run_resumes_from_its_checkpoint_exactly(mnist5k, tmp_path):
    config = RunConfig(epochs=3, seed=2)
    data = small(mnist5k)
    reference = TrainingRun(config, data, RunSlots(1)).start()
    reference.join(60)
    state = tmp_path / "run" / "state.safetensors"
    first = TrainingRun(config, data, RunSlots(1), checkpoint=state).start()
    wait_until(lambda: len(first.snapshot().epochs) >= 1)
    first.stop()  # as if the page were refreshed and the process restarted: only the file is left
    first.join(60)
    point = read_resume_point(state)  # written atomically at the end of each epoch
    assert point.config == config and point.dataset == "mnist5k" and len(point.epochs) >= 1
    resumed = TrainingRun(point.config, data, RunSlots(1), resume=point).start()
    resumed.join(60)
    assert [b.loss for b in resumed.snapshot().batches] == [b.loss for b in reference.snapshot().batches]
    assert resumed.snapshot().evaluation.accuracy == reference.snapshot().evaluation.accuracy


def test_stop_mid_run_keeps_the_weights_reached(mnist5k):
    run = TrainingRun(RunConfig(epochs=5), mnist5k, RunSlots(1))
    run.start()
    wait_until(lambda: run.snapshot().step >= 3)
    run.stop()
    run.join(60)
    snap = run.snapshot()
    assert snap.status == "stopped" and snap.step < snap.total_steps and snap.evaluation is not None


def test_pause_holds_and_resume_continues(mnist5k):
    run = TrainingRun(RunConfig(epochs=3), mnist5k, RunSlots(1)).start()
    wait_until(lambda: run.snapshot().step >= 2)
    run.pause()
    time.sleep(0.3)
    held = run.snapshot().step
    time.sleep(0.5)
    assert run.snapshot().status == "paused" and run.snapshot().step == held
    run.resume()
    run.join(120)
    assert run.snapshot().status == "finished"


def test_divergence_stops_with_the_message_and_last_good_weights(mnist5k):
    run = TrainingRun(RunConfig(epochs=1, lr=10.0), small(mnist5k), RunSlots(1))
    before = {k: v.clone() for k, v in run.model.state_dict().items()}
    run.start().join(60)
    snap = run.snapshot()
    assert snap.status == "diverged"
    assert snap.message.startswith("Loss diverged at step ") and "lower the learning rate" in snap.message
    assert all(torch.isfinite(v).all() for v in run.model.state_dict().values())
    # It blew up on step 2, so the last good weights are the initial ones (the loss of step 1 was fine).
    assert snap.step == 1
    assert all(torch.equal(before[k], v) for k, v in run.model.state_dict().items() if v.is_floating_point()
               and "running" not in k)


def test_slots_queue_a_second_run_until_the_first_ends(mnist5k):
    slots = RunSlots(1)
    first = TrainingRun(RunConfig(epochs=3), mnist5k, slots).start()
    wait_until(lambda: first.snapshot().step >= 1)
    second = TrainingRun(QUICK, small(mnist5k), slots).start()
    time.sleep(0.5)
    assert second.snapshot().status == "queued" and "Waiting" in second.snapshot().message
    first.stop()
    second.join(60)
    assert second.snapshot().status == "finished"


def test_a_queued_run_can_be_cancelled(mnist5k):
    slots = RunSlots(1)
    held = threading.Event()
    assert slots.acquire(held)
    run = TrainingRun(QUICK, small(mnist5k), slots).start()
    run.stop()
    run.join(10)
    assert run.snapshot().status == "stopped" and run.snapshot().step == 0
    slots.release()


def test_seeded_runs_give_identical_curves(mnist5k):
    config = RunConfig(epochs=1, seed=3)
    losses = []
    for _ in range(2):
        run = TrainingRun(config, small(mnist5k), RunSlots(1)).start()
        run.join(60)
        losses.append([b.loss for b in run.snapshot().batches])
    assert losses[0] == losses[1] and len(losses[0]) > 5


def test_impossible_model_is_refused_before_starting(mnist5k):
    tiny = Dataset("tiny", ("a", "b"), ImageSet(torch.zeros(4, 1, 4, 4, dtype=torch.uint8), torch.tensor([0, 1, 0, 1])),
                   ImageSet(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.tensor([0, 1])))
    with pytest.raises(ValueError, match="too small"):
        TrainingRun(RunConfig(model="small-cnn"), tiny, RunSlots(1))


def test_take_fraction_is_stratified(mnist5k):
    part = take_fraction(mnist5k.train, 0.1, seed=0)
    assert torch.bincount(part.labels).tolist() == [40] * 10
    assert take_fraction(mnist5k.train, 1.0, 0) is mnist5k.train


def epoch(n, train_loss, val_loss, train_acc, val_acc):
    return EpochEvent(n, train_loss, train_acc, val_loss, val_acc, 1000.0, 1.0)


def test_reading_names_overfitting_gap_underfitting_and_health():
    rising = [epoch(i, 1.0 - 0.1 * i, 0.5 + 0.05 * max(0, i - 2), 0.8 + 0.02 * i, 0.8) for i in range(1, 7)]
    assert read_curves(rising).startswith("Validation loss has risen for 4 epochs while training loss falls: overfitting")
    gap = [epoch(1, 0.5, 0.6, 0.90, 0.90), epoch(2, 0.1, 0.55, 0.99, 0.91)]
    assert "8.0 points above validation" in read_curves(gap)
    low = [epoch(1, 2.3, 2.3, 0.11, 0.10), epoch(2, 2.29, 2.3, 0.12, 0.11)]
    assert "underfitting" in read_curves(low)
    assert "risen" not in read_curves(rising[:4])  # rising for only 2 epochs: not yet called overfitting
    good = [epoch(1, 0.5, 0.4, 0.90, 0.91), epoch(2, 0.2, 0.2, 0.96, 0.96)]
    assert "no sign of overfitting" in read_curves(good)
    assert read_curves([]) == "No epoch has finished yet."


def test_epochs_csv_has_a_row_per_epoch():
    text = epochs_csv([epoch(1, 0.5, 0.4, 0.9, 0.91), EpochEvent(2, 0.25, 0.95, None, None, 900.0, 2.0)])
    lines = text.splitlines()
    assert lines[0].startswith("epoch,train_loss") and lines[1].startswith("1,0.5,0.9,0.4,0.91")
    assert lines[2] == "2,0.25,0.95,,,900,2"


def test_charts_carry_the_numbers_and_escape_labels(mnist5k):
    run = TrainingRun(RunConfig(epochs=2, augmentation=Augmentation()), small(mnist5k), RunSlots(1)).start()
    run.join(60)
    snap = run.snapshot()
    fig = charts.training_curves([charts.Curves("<b>run</b>", snap.batches, snap.epochs)])
    validation = [t for t in fig.data if t.name.endswith("validation")]
    assert [list(t.y) for t in validation] == [[e.val_accuracy for e in snap.epochs], [e.val_loss for e in snap.epochs]]
    assert all("<b>" not in t.name for t in fig.data) and "&lt;b&gt;run" in fig.data[0].name
    confusion = charts.confusion_matrix(snap.evaluation.confusion, mnist5k.class_names)
    assert [list(row) for row in confusion.data[0].z] == snap.evaluation.confusion.tolist()
    weird = ("cat", "<b>dog</b>")
    assert charts.clicked_cell([{"x": "&lt;b&gt;dog&lt;/b&gt;", "y": "cat", "z": 3}], weird) == (0, 1)
    assert charts.clicked_cell([{"x": 0.5, "y": 2}], weird) is None
    assert charts.smooth([1.0, 1.0, 1.0]) == pytest.approx([1.0, 1.0, 1.0])  # bias-corrected: no warm-up dip


def test_imbalance_lab_shrinks_the_chosen_classes_and_remedies_reach_the_trainer(mnist5k):
    from dlplay.data import balanced_class_weights, shrink_classes
    shrunk = shrink_classes(mnist5k.train, [3, 5], keep=0.05, seed=0)
    assert torch.bincount(shrunk.labels).tolist() == [400, 400, 400, 20, 400, 20, 400, 400, 400, 400]
    weights = balanced_class_weights(torch.tensor([0, 0, 0, 0, 1]), 3)
    assert weights.tolist() == pytest.approx([5 / 8, 5 / 2, 0.0])

    config = RunConfig(epochs=1, shrunk_classes=(3,), shrunk_keep=0.1, remedy="weighted loss", dropout=False)
    run = TrainingRun(config, mnist5k, RunSlots(1))
    counts = torch.bincount(run.train_set.labels)
    assert counts[3] < counts[4] / 5
    assert all(m.p == 0 for m in run.model.modules() if isinstance(m, torch.nn.Dropout))
    with pytest.raises(ValueError, match="weighted sampler"):
        TrainingRun(RunConfig(remedy="oversample"), mnist5k, RunSlots(1))


def test_weighted_sampler_draws_every_class_equally_often(mnist5k, cpu):
    from dlplay.models import build_model
    from dlplay.train import Trainer, build_optimizer
    labels = torch.tensor([0] * 900 + [1] * 100)
    data = ImageSet(torch.zeros(1000, 1, 28, 28, dtype=torch.uint8), labels)
    model = build_model("small-cnn", (1, 28, 28), 2)
    trainer = Trainer(model, build_optimizer("sgd", model.parameters(), 0.01), data, cpu, balanced_sampling=True)
    drawn = labels[trainer._epoch_order(torch.Generator().manual_seed(0))]
    assert 440 <= int((drawn == 1).sum()) <= 560  # binomial(1000, 0.5): about 500, not 100
    plain = Trainer(model, build_optimizer("sgd", model.parameters(), 0.01), data, cpu)
    assert sorted(plain._epoch_order(torch.Generator().manual_seed(0)).tolist()) == list(range(1000))


class RunsOutOfMemory(torch.nn.Module):
    """Stands in for a GPU that runs out of memory above a batch size (no GPU is needed to test the fallback)."""

    def __init__(self, num_classes: int, max_batch: int):
        super().__init__()
        self.max_batch = max_batch
        self.linear = torch.nn.Linear(28 * 28, num_classes)

    def forward(self, x):
        if len(x) > self.max_batch:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return self.linear(x.flatten(1))


def fake_architecture(monkeypatch, max_batch: int) -> None:
    from dlplay import models
    monkeypatch.setitem(models.MODELS, "fake-oom", models.ModelSpec(
        "test double", lambda shape, k: [RunsOutOfMemory(k, max_batch)]))


def test_out_of_memory_halves_the_batch_and_retries(mnist5k, monkeypatch):
    fake_architecture(monkeypatch, max_batch=16)
    run = TrainingRun(RunConfig(model="fake-oom", epochs=1, batch_size=64), small(mnist5k), RunSlots(1)).start()
    run.join(60)
    snap = run.snapshot()
    assert snap.status == "finished" and snap.batch_size == 16
    assert "restarted with batch size 32" in snap.message and "restarted with batch size 16" in snap.message
    assert snap.step == snap.total_steps == -(-len(run.train_set) // 16)


def test_out_of_memory_at_the_smallest_batch_on_the_cpu_fails_in_plain_words(mnist5k, monkeypatch):
    fake_architecture(monkeypatch, max_batch=0)
    run = TrainingRun(RunConfig(model="fake-oom", epochs=1, batch_size=16), small(mnist5k), RunSlots(1)).start()
    run.join(60)
    snap = run.snapshot()
    assert snap.status == "failed" and snap.message.startswith("Training failed: CUDA out of memory")
    assert "Traceback" not in snap.message
