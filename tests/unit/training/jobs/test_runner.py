"""The worker's side of a job, run in this process: the events it reports, out-of-memory back-off, the imbalance
lab's data, and the charts and CSV the page makes of its progress."""
import pytest
import torch

from dlplay.augment import Augmentation
from dlplay.data import Dataset, ImageSet, balanced_class_weights, shrink_classes
from dlplay.device import DeviceInfo
from dlplay.training.curve_reading import read_curves
from dlplay.training.jobs.progress import Progress, epochs_csv
from dlplay.training.jobs.runner import EVALUATION_FILE, MODEL_FILE, STATE_FILE, JobRunner
from dlplay.training.jobs.spec import DataRef, JobSpec, RunConfig, RunStatus, take_fraction, training_split
from dlplay.training.trainer import EpochEvent
from ui import charts


def small(mnist5k, n=640) -> Dataset:
    return Dataset("mnist5k", mnist5k.class_names, ImageSet(mnist5k.train.images[:n], mnist5k.train.labels[:n]),
                   ImageSet(mnist5k.test.images[:200], mnist5k.test.labels[:200]))


def run_here(config: RunConfig, dataset: Dataset) -> tuple[Progress, list[dict], dict[str, bytes]]:
    """Run a job in this process; returns the progress its events build, the events, and its files."""
    events, files = [], {}
    progress = Progress(config.epochs, config.batch_size)

    def emit(event):
        events.append(event)
        progress.apply(event)

    JobRunner(JobSpec("0123456789ab", config, DataRef(dataset.name), threads=torch.get_num_threads()), dataset, emit,
              files.__setitem__).run()
    return progress, events, files


def test_events_tell_the_whole_story_and_files_arrive_before_the_end(mnist5k):
    progress, events, files = run_here(RunConfig(epochs=2, augmentation=Augmentation()), small(mnist5k))
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["threads", "started"] and kinds[-1] == "done"
    assert kinds.count("epoch") == 2 and kinds.count("file") == 2  # a checkpoint after each epoch
    snap = progress.snapshot()
    assert snap.status is RunStatus.FINISHED and snap.step == snap.total_steps == 2 * 9 and snap.checkpoint_epoch == 2
    assert set(files) == {STATE_FILE, MODEL_FILE, EVALUATION_FILE}
    assert snap.message.startswith("Trained 2 epoch(s) in") and "test accuracy" in snap.message


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
    progress, events, _ = run_here(RunConfig(model="fake-oom", epochs=1, batch_size=64), small(mnist5k))
    snap = progress.snapshot()
    assert snap.status is RunStatus.FINISHED and snap.batch_size == 16
    assert "restarted with batch size 32" in snap.message and "restarted with batch size 16" in snap.message
    assert snap.step == snap.total_steps == -(-snap.train_size // 16)
    assert [e["type"] for e in events].count("reset") == 2


def test_out_of_memory_at_the_smallest_batch_on_the_cpu_fails_in_plain_words(mnist5k, monkeypatch):
    fake_architecture(monkeypatch, max_batch=0)
    progress, _, files = run_here(RunConfig(model="fake-oom", epochs=1, batch_size=16), small(mnist5k))
    snap = progress.snapshot()
    assert snap.status is RunStatus.FAILED and snap.message.startswith("Training failed: CUDA out of memory")
    assert "Traceback" not in snap.message and not files


def test_take_fraction_is_stratified(mnist5k):
    part = take_fraction(mnist5k.train, 0.1, seed=0)
    assert torch.bincount(part.labels).tolist() == [40] * 10
    assert take_fraction(mnist5k.train, 1.0, 0) is mnist5k.train


def test_imbalance_lab_shrinks_the_chosen_classes_and_the_split_keeps_them_rare(mnist5k):
    shrunk = shrink_classes(mnist5k.train, [3, 5], keep=0.05, seed=0)
    assert torch.bincount(shrunk.labels).tolist() == [400, 400, 400, 20, 400, 20, 400, 400, 400, 400]
    weights = balanced_class_weights(torch.tensor([0, 0, 0, 0, 1]), 3)
    assert weights.tolist() == pytest.approx([5 / 8, 5 / 2, 0.0])
    train, val = training_split(RunConfig(shrunk_classes=(3,), shrunk_keep=0.1), mnist5k)
    counts = torch.bincount(train.labels)
    assert counts[3] < counts[4] / 5 and len(val) == pytest.approx(0.1 * (len(train) + len(val)), abs=10)


def test_weighted_sampler_draws_every_class_equally_often(cpu):
    from dlplay.models import build_model
    from dlplay.training.trainer import Trainer, build_optimizer
    labels = torch.tensor([0] * 900 + [1] * 100)
    data = ImageSet(torch.zeros(1000, 1, 28, 28, dtype=torch.uint8), labels)
    model = build_model("small-cnn", (1, 28, 28), 2)
    trainer = Trainer(model, build_optimizer("sgd", model.parameters(), 0.01), data, cpu, balanced_sampling=True)
    drawn = labels[trainer._epoch_order(torch.Generator().manual_seed(0))]
    assert 440 <= int((drawn == 1).sum()) <= 560  # binomial(1000, 0.5): about 500, not 100
    plain = Trainer(model, build_optimizer("sgd", model.parameters(), 0.01), data, cpu)
    assert sorted(plain._epoch_order(torch.Generator().manual_seed(0)).tolist()) == list(range(1000))


def epoch(n, train_loss, val_loss, train_acc, val_acc):
    return EpochEvent(n, train_loss, train_acc, val_loss, val_acc, 1000.0, 1.0)


def test_reading_names_overfitting_gap_underfitting_and_health():
    rising = [epoch(i, 1.0 - 0.1 * i, 0.5 + 0.05 * max(0, i - 2), 0.8 + 0.02 * i, 0.8) for i in range(1, 7)]
    assert (read_curves(rising).kind, read_curves(rising).rising) == ("overfitting", 4)
    gap = [epoch(1, 0.5, 0.6, 0.90, 0.90), epoch(2, 0.1, 0.55, 0.99, 0.91)]
    assert read_curves(gap).kind == "memorising" and read_curves(gap).gap == pytest.approx(8.0)
    low = [epoch(1, 2.3, 2.3, 0.11, 0.10), epoch(2, 2.29, 2.3, 0.12, 0.11)]
    assert read_curves(low).kind == "underfitting"
    assert read_curves(rising[:4]).kind != "overfitting"  # rising for only 2 epochs: not yet called overfitting
    good = [epoch(1, 0.5, 0.4, 0.90, 0.91), epoch(2, 0.2, 0.2, 0.96, 0.96)]
    assert read_curves(good).kind == "agree"
    ahead = [epoch(1, 0.9, 0.2, 0.725, 0.945)]  # the first epoch's average against its end: validation ahead
    assert read_curves(ahead).kind == "ahead"
    assert read_curves([]).kind == "empty"
    assert read_curves([EpochEvent(1, 0.5, 0.9, None, None, 900.0, 1.0)]).kind == "no-validation"


def test_epochs_csv_has_a_row_per_epoch():
    text = epochs_csv([epoch(1, 0.5, 0.4, 0.9, 0.91), EpochEvent(2, 0.25, 0.95, None, None, 900.0, 2.0)])
    lines = text.splitlines()
    assert lines[0].startswith("epoch,train_loss") and lines[1].startswith("1,0.5,0.9,0.4,0.91")
    assert lines[2] == "2,0.25,0.95,,,900,2"


def test_charts_carry_the_numbers_cap_the_points_and_escape_labels(mnist5k):
    from dlplay.evaluate import evaluation_from_bytes
    progress, _, files = run_here(RunConfig(epochs=2, augmentation=Augmentation()), small(mnist5k))
    snap = progress.snapshot()
    fig = charts.training_curves([charts.Curves("<b>run</b>", snap.batches, snap.epochs)])
    validation = [t for t in fig.data if t.name.endswith("validation")]
    assert [list(t.y) for t in validation] == [[e.val_accuracy for e in snap.epochs], [e.val_loss for e in snap.epochs]]
    assert all("<b>" not in t.name for t in fig.data) and "&lt;b&gt;run" in fig.data[0].name
    evaluation = evaluation_from_bytes(files[EVALUATION_FILE])
    confusion = charts.confusion_matrix(evaluation.confusion, mnist5k.class_names)
    assert [list(row) for row in confusion.data[0].z] == evaluation.confusion.tolist()
    many = snap.batches * 200  # 3,600 points: the figure sends at most MAX_BATCH_POINTS of them
    assert max(len(t.x) for t in charts.training_curves([charts.Curves("long", many, [])]).data) <= \
        charts.MAX_BATCH_POINTS
    weird = ("cat", "<b>dog</b>")
    assert charts.clicked_cell([{"x": "&lt;b&gt;dog&lt;/b&gt;", "y": "cat", "z": 3}], weird) == (0, 1)
    assert charts.clicked_cell([{"x": 0.5, "y": 2}], weird) is None
    assert charts.smooth([1.0, 1.0, 1.0]) == pytest.approx([1.0, 1.0, 1.0])  # bias-corrected: no warm-up dip


def test_a_run_can_start_from_a_previous_runs_model(mnist5k, tmp_path):
    from dlplay.checkpoint import load_model_bytes
    from dlplay.training.jobs.runner import build_run_model

    digits = small(mnist5k)
    _, _, files = run_here(RunConfig(epochs=1, augmentation=Augmentation()), digits)
    source_file = tmp_path / "source.safetensors"
    source_file.write_bytes(files[MODEL_FILE])
    source, _ = load_model_bytes(files[MODEL_FILE], "source")
    # New classes: digits 0-4 only, relabelled, so the head must change size.
    keep = digits.train.labels < 5
    fewer = Dataset("first five", [str(c) for c in range(5)],
                    ImageSet(digits.train.images[keep], digits.train.labels[keep]),
                    ImageSet(digits.test.images[digits.test.labels < 5], digits.test.labels[digits.test.labels < 5]))
    config = RunConfig(epochs=1, augmentation=Augmentation(), start_from=str(source_file), freeze="features")
    start = build_run_model(config, fewer)
    assert start[-1].out_features == 5
    for (key, ours), theirs in zip(list(start.state_dict().items())[:-2], list(source.state_dict().values())[:-2],
                                   strict=True):
        assert torch.equal(ours, theirs), key  # every layer but the head comes from the previous run
    convs = [m for m in start.modules() if isinstance(m, torch.nn.Conv2d)]
    assert not any(p.requires_grad for m in convs for p in m.parameters()) and start[-1].weight.requires_grad
    progress, _, after = run_here(config, fewer)
    assert progress.snapshot().status is RunStatus.FINISHED
    trained, card = load_model_bytes(after[MODEL_FILE], "trained")
    assert card.class_names == tuple(fewer.class_names)
    assert card.mean == pytest.approx(source[0].mean.flatten().tolist())  # the normalisation the weights learnt
    for frozen, original in zip((m for m in trained.modules() if isinstance(m, torch.nn.Conv2d)), convs, strict=True):
        assert torch.equal(frozen.weight, original.weight)  # fixed while training
    with pytest.raises(ValueError, match="takes 1×28×28 images"):
        cifar_shaped = Dataset("colour", fewer.class_names, ImageSet(torch.zeros(10, 3, 32, 32, dtype=torch.uint8),
                                                                     torch.arange(10) % 5), fewer.test)
        build_run_model(config, cifar_shaped)
    with pytest.raises(ValueError, match="not a readable"):
        build_run_model(RunConfig(start_from=str(tmp_path / "gone.safetensors")), fewer)


class FailsAbove(torch.nn.Module):
    """Raises `error` for batches above `max_batch`, as a device that has run out of memory does."""

    made: list = []  # weak references to every instance, in the order the runner built them

    def __init__(self, num_classes: int, max_batch: int, error: Exception):
        super().__init__()
        self.max_batch, self.error = max_batch, error
        self.linear = torch.nn.Linear(28 * 28, num_classes)
        import gc
        import weakref
        gc.collect()
        self.alive_before = sum(ref() is not None for ref in FailsAbove.made)  # earlier attempts still held
        FailsAbove.made.append(weakref.ref(self))

    def forward(self, x):
        if len(x) > self.max_batch:
            raise type(self.error)(*self.error.args)  # a new one, as a device raises (a kept one keeps its frames)
        return self.linear(x.flatten(1))


def failing_architecture(monkeypatch, max_batch: int, error: Exception) -> None:
    from dlplay import models
    FailsAbove.made = []
    monkeypatch.setitem(models.MODELS, "fails-above", models.ModelSpec(
        "test double", lambda shape, k: [FailsAbove(k, max_batch, error)]))


@pytest.mark.parametrize("error", [
    RuntimeError("MPS backend out of memory (MPS allocated: 18.13 GB, other allocations: 45.09 MB, max allowed: "
                 "18.13 GB). Tried to allocate 256 bytes on shared pool."),
    RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"),
    RuntimeError("cuDNN error: CUDNN_STATUS_ALLOC_FAILED"),
], ids=["MPS", "cuBLAS", "cuDNN"])
def test_every_backends_out_of_memory_backs_off_and_frees_the_failed_attempt_first(mnist5k, monkeypatch, error):
    failing_architecture(monkeypatch, 16, error)
    progress, events, _ = run_here(RunConfig(model="fails-above", epochs=1, batch_size=64), small(mnist5k))
    snap = progress.snapshot()
    assert snap.status is RunStatus.FINISHED and snap.batch_size == 16
    assert snap.message.startswith("Out of memory: restarted with batch size 32. Out of memory: restarted with "
                                   "batch size 16. Trained 1 epoch(s)")
    attempts = [ref() for ref in FailsAbove.made]
    # The run is built once for the job, once per restart; when a restart builds its model, no failed attempt's
    # model is held any more (its GPU memory can go back to the device before the next one takes any).
    assert len(attempts) == 3 and [a.alive_before for a in attempts if a is not None] == [0]


def test_a_failure_that_is_not_out_of_memory_is_not_retried(mnist5k, monkeypatch):
    failing_architecture(monkeypatch, 16, RuntimeError("CUDA error: device-side assert triggered"))
    progress, events, _ = run_here(RunConfig(model="fails-above", epochs=1, batch_size=64), small(mnist5k))
    snap = progress.snapshot()
    assert snap.status is RunStatus.FAILED
    assert snap.message == "Training failed: CUDA error: device-side assert triggered"
    assert "reset" not in [e["type"] for e in events]


def test_the_back_off_halves_twice_then_leaves_the_gpu_in_the_runs_own_precision():
    from dlplay.device import pick_device
    from dlplay.training.jobs.runner import MIN_RETRY_BATCH, OOM_HALVINGS, back_off
    gpu = DeviceInfo(torch.device("cuda"), "a GPU", torch.float16, True)  # described, never touched
    assert back_off(gpu, 256, 0, True) == (gpu, 128, "Out of memory: restarted with batch size 128.")
    for mixed in (True, False):
        device, batch, note = back_off(gpu, 256, OOM_HALVINGS, mixed)
        assert (device, batch, note) == (pick_device("cpu", mixed), 256,
                                         "Out of memory on the GPU: restarted on the CPU.")
        assert device.autocast is (pick_device("cpu", mixed).autocast)  # float32 when the run switched it off
    assert back_off(gpu, 256, OOM_HALVINGS, False)[0].autocast is None
    assert back_off(gpu, MIN_RETRY_BATCH, 0, True)[0].device.type == "cpu"  # nothing left to halve
    assert back_off(pick_device("cpu"), MIN_RETRY_BATCH, 0, True) is None
