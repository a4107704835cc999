"""AppTest drives the CNN trainer page: train, stop, switch pages mid-run, diverge, and import zips.

A test that needs a run in a given state puts it there with the page's own "Pause after epoch": the run holds once
that epoch is done, however fast the machine trains."""
import time
from dataclasses import replace
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dlplay.data import load_dataset
from dlplay.training.jobs.spec import training_split
from helpers import (
    by_label,
    class_folders_zip,
    image_bytes,
    labs_ended,
    noise_png,
    open_app_page,
    run_to_the_end,
    wait_until,
    zip_bytes,
)

REPO = Path(__file__).resolve().parents[2]
RUN_KEY = "state.run"


def open_trainer() -> AppTest:
    return open_app_page("app_pages/trainer.py")


def click(at: AppTest, label: str) -> AppTest:
    return by_label(at.button, label).click().run()


def run_state(at: AppTest):
    return at.session_state[RUN_KEY].snapshot()


def restart_server() -> None:
    """As after a server restart: the scheduler and its workers end, and the next page run starts a new one."""
    from ui import state
    state.shutdown_schedulers()
    st.cache_resource.clear()


def train_holding(at: AppTest, epochs: int, pause_after: int) -> AppTest:
    """Press Train for `epochs` epochs with "Pause after epoch" set; return once the worker holds there."""
    by_label(at.number_input, "Epochs").set_value(epochs).run()
    by_label(at.number_input, "Pause after epoch").set_value(pause_after).run()
    click(at, "Train")
    return poll_until(at, lambda a: run_state(a).held_at_step is not None or not run_state(a).active)


def poll_until(at: AppTest, predicate, timeout=180.0) -> AppTest:
    """AppTest does not tick st.fragment(run_every=...): rerun the script until the run reaches the state."""
    deadline = time.monotonic() + timeout
    while not predicate(at):
        assert time.monotonic() < deadline, "timed out waiting for the run"
        time.sleep(0.3)
        at.run()
        assert not at.exception
    return at


def said_in_words(at: AppTest) -> None:
    """After a one-epoch run: the curves and the confusion matrix are said in words (ui/chart_words.py), and the
    matrix's "show as table" toggle shows its counts."""
    snapshot, captions = at.session_state["state.run"].snapshot(), [c.value for c in at.caption]
    loss = snapshot.epochs[-1].train_loss
    said = next(c for c in captions if c.startswith("After 1 epoch: training loss "))
    assert abs(float(said.split("training loss ")[1].split(";")[0]) - loss) < 0.005 + loss * 0.005
    accuracy = next(m.value for m in at.metric if m.label == "Test accuracy")
    assert any(c.startswith(f"Accuracy {accuracy}: ") and "test images on the diagonal" in c for c in captions)
    key = next(t.key for t in at.toggle if t.key.endswith(".chart.table") and ".cell." in t.key)
    at.toggle(key=key).set_value(True).run()
    assert not at.exception
    table = next(d.value for d in at.dataframe if list(d.value.columns)[0] == "true")
    assert table.iloc[:, 1:].astype(int).to_numpy().tolist() == snapshot.evaluation.confusion.tolist()
    at.toggle(key=key).set_value(False).run()


@pytest.mark.slow  # trains in a worker process
def test_one_epoch_on_mnist5k_shows_test_accuracy_then_a_run_starts_from_it(tmp_path):
    at = open_trainer()
    by_label(at.number_input, "Epochs").set_value(1).run()
    click(at, "Train")
    run_to_the_end(at)
    metrics = {m.label: m.value for m in at.metric}
    assert float(metrics["Test accuracy"].rstrip("%")) >= 90.0
    assert any("o sign of overfitting" in box.value or "points above" in box.value for box in at.info)
    assert "Runs" in [h.value for h in at.header][-1]
    said_in_words(at)
    assert "First-layer filters" not in " ".join(m.value for m in at.markdown)  # tabs run only when open
    at.session_state["trainer.results_tab"] = "Inside the network"  # the learner opens the look-inside tab
    at.run()
    text = " ".join(m.value for m in at.markdown)
    assert "First-layer filters" in text and "Dead ReLUs" in text
    by_label(at.slider, "Test image").set_value(7).run()
    assert not at.exception
    first = at.session_state[RUN_KEY]  # transfer learning: the next run starts from this one's model
    start = by_label(at.selectbox, "Start from")
    start.select_index(start.options.index(next(o for o in start.options if o.startswith("run #1's model")))).run()
    by_label(at.radio, "Keep fixed while training").set_value("features").run()
    assert any("as the run it starts from" in c.value for c in at.caption)
    click(at, "Train")
    poll_until(at, lambda a: a.session_state[RUN_KEY] is not first and not run_state(a).active)
    second = at.session_state[RUN_KEY]
    assert run_state(at).status.value == "finished" and second.config.start_from == str(first.model_file())
    convs = [[m.weight for m in run.model()[0].modules() if m.__class__.__name__ == "Conv2d"]
             for run in (first, second)]
    assert all(a.equal(b) for a, b in zip(*convs, strict=True))  # the conv layers stayed as run #1 left them


@pytest.mark.slow  # trains in a worker process
def test_imbalance_lab_with_a_weighted_sampler():
    at = open_trainer()
    by_label(at.number_input, "Epochs").set_value(1).run()
    by_label(at.multiselect, "Make these classes rare").set_value([3, 8]).run()
    by_label(at.radio, "Remedy for the imbalance").set_value("weighted sampler").run()
    by_label(at.checkbox, "Dropout layers on").uncheck().run()
    click(at, "Train")
    run = at.session_state[RUN_KEY]
    assert run.config.shrunk_classes == (3, 8) and run.config.remedy == "weighted sampler" and not run.config.dropout
    train, _ = training_split(run.config, load_dataset("mnist5k"))  # what the worker trains on
    counts = train.labels.bincount().tolist()
    assert counts[3] < counts[4] / 5 and counts[8] < counts[4] / 5
    poll_until(at, lambda a: not run_state(a).active)
    assert run_state(at).status == "finished" and run_state(at).train_size == len(train)


@pytest.mark.slow  # trains in a worker process
def test_stop_mid_run_and_switching_pages_does_not_lose_it():
    at = train_holding(open_trainer(), epochs=30, pause_after=1)
    held = run_state(at)
    assert held.status == "paused" and held.checkpoint_epoch == 1 and held.step == held.held_at_step
    by_label(at.select_slider, "Learning rate").set_value(0.1).run()  # changing a control mid-run...
    assert run_state(at).active and at.session_state[RUN_KEY].config.lr == 3e-3  # ...leaves the run alone
    click(at, "Resume")
    at.switch_page("app_pages/home.py").run()
    assert not at.exception
    job = at.session_state[RUN_KEY]
    wait_until(lambda: job.snapshot().step > held.step)  # it keeps training while we are away (29 epochs to go)
    job.pause()
    wait_until(lambda: job.snapshot().held_at_step is not None)
    at.switch_page("app_pages/trainer.py").run()
    assert run_state(at).active and run_state(at).step > held.step
    assert any(p.proto.text.startswith("step ") for p in at.get("progress"))
    click(at, "Stop")
    poll_until(at, lambda a: not run_state(a).active, timeout=30)
    snap = run_state(at)
    assert snap.status == "stopped" and snap.step == job.snapshot().step < snap.total_steps
    at.run()
    assert any("Stopped" in w.value for w in at.warning)


@pytest.mark.slow  # trains in a worker process
def test_learning_rate_ten_shows_the_divergence_message():
    at = open_trainer()
    by_label(at.select_slider, "Learning rate").set_value(10.0).run()
    by_label(at.number_input, "Epochs").set_value(1).run()
    click(at, "Train")
    poll_until(at, lambda a: not run_state(a).active, timeout=60)
    at.run()
    assert any("Loss diverged at step" in e.value and "lower the learning rate" in e.value for e in at.error)


@pytest.mark.slow  # trains in a worker process
def test_seeded_runs_give_identical_curves():
    at = open_trainer()
    by_label(at.number_input, "Epochs").set_value(1).run()
    curves = []
    for _ in range(2):
        click(at, "Train")
        poll_until(at, lambda a: not run_state(a).active)
        curves.append([b.loss for b in run_state(at).batches])
        at.run()
    assert curves[0] == curves[1] and len(curves[0]) > 10
    assert len(at.session_state["state.runs"]) == 2


def upload(at: AppTest, data: bytes, name="photos.zip") -> AppTest:
    """Upload a zip and rerun until the worker lane has imported it (or refused it)."""
    by_label(at.selectbox, "Dataset").set_value("zip").run()
    at.get("file_uploader")[0].upload(name, data, "application/zip").run()
    return labs_ended(at)


@pytest.mark.slow  # trains in a worker process
def test_zip_import_shows_classes_counts_and_samples_as_text():
    weird = "<img src=x onerror=alert(1)> <b>bold"
    at = upload(open_trainer(), class_folders_zip({"cats": 6, weird: 6}, prefix="pets/",
                                                   extra={"pets/cats/broken.png": b"\x89PNG\r\n\x1a\n..."}))
    table = next(d.value for d in at.dataframe if "class" in d.value.columns)
    assert sorted(table["class"]) == sorted(["cats", weird]) and table["train"].sum() + table["test"].sum() == 12
    assert weird in [t.value for t in at.text]  # drawn as plain text, never as HTML
    assert any("1 file(s) skipped" in e.label for e in at.expander)
    click(at, "Train")
    poll_until(at, lambda a: not run_state(a).active)
    assert run_state(at).status == "finished"


@pytest.mark.slow  # imports in a worker process
@pytest.mark.parametrize("data, message", [
    (zip_bytes({"a/0.png": noise_png(0), "b/0.png": noise_png(1), "../escape.png": noise_png(2)}),
     "escapes its folder"),
    (zip_bytes({"a/0.png": noise_png(0), "b/0.png": noise_png(1)}, symlinks={"a/x.png": "/etc/passwd"}),
     "symbolic link"),
    (zip_bytes({f"a/{i}.png": b"" for i in range(20_001)}), "the limit is 20,000"),
    (class_folders_zip({"only": 5}), "at least 2 are needed"),
    (zip_bytes({f"{c}/{i}.png": image_bytes(90) for c in "ab" for i in range(4)}), "the very same picture"),
    (class_folders_zip({"cats": 1, "dogs": 1}), "no test images to measure the model with"),
    (b"PK\x03\x04 not really a zip", "not a readable .zip"),
])
def test_bad_zips_get_one_sentence_and_the_page_keeps_working(data, message):
    at = upload(open_trainer(), data)
    assert any(message in e.value for e in at.error)
    by_label(at.selectbox, "Dataset").set_value("mnist5k").run()  # the page still works
    assert not at.exception and at.dataframe


A_BROWSER, B_BROWSER = "a" * 32, "b" * 32  # two browsers' secrets (a real browser's come in its cookie)
RUN_BUTTONS = {"Train", "Pause", "Resume", "Stop", "Cancel", "Resume the interrupted run"}


def open_trainer_as(browser: str, run_id: str | None = None) -> AppTest:
    """The trainer page in a new session of `browser`, opened at `run_id`'s link if given."""
    at = AppTest.from_file(str(REPO / "router.py"), default_timeout=120)
    at.session_state["state.browser"] = browser
    if run_id:
        at.query_params["run"] = run_id
    at.run()
    at.switch_page("app_pages/trainer.py").run()
    assert not at.exception
    return at


def buttons(at: AppTest) -> set[str]:
    return {b.label for b in at.button}


@pytest.mark.slow  # trains in a worker process
def test_a_run_link_gives_its_browser_every_control_and_anyone_else_a_read_only_view():
    # This test once asserted that any session opening a run's link got the run with every control. Now a run is its
    # browser's: another browser's session gets a read-only view, and the owner's refresh, a second tab and a server
    # restart still find it with every control.
    owner = train_holding(open_trainer_as(A_BROWSER), epochs=3, pause_after=1)
    run_id = owner.query_params["run"]
    assert run_state(owner).checkpoint_epoch == 1

    other = open_trainer_as(B_BROWSER, run_id)
    assert any("belongs to another browser" in box.value for box in other.info)
    assert not buttons(other) & RUN_BUTTONS and "Start a run of your own" in buttons(other)
    assert RUN_KEY not in other.session_state  # the run is not B's: no sidebar badge, no model in B's pickers
    assert any("Holding after step" in c.value for c in other.caption)  # its progress, live

    refreshed = open_trainer_as(A_BROWSER, run_id)  # the owner's refresh (or second tab): every control
    assert refreshed.session_state[RUN_KEY] is owner.session_state[RUN_KEY]
    assert {"Resume", "Stop"} <= buttons(refreshed)
    click(refreshed, "Stop")
    poll_until(refreshed, lambda a: not run_state(a).active)
    assert run_state(refreshed).status == "stopped" and len(run_state(refreshed).epochs) == 1

    other.run()  # B sees the results, read-only: the numbers, no downloads, no controls
    assert "Test accuracy" in [m.label for m in other.metric] and not other.get("download_button")
    assert not buttons(other) & RUN_BUTTONS and not other.session_state["state.runs"]
    assert refreshed.get("download_button")  # the owner can take the model home

    restart_server()  # only the checkpoint file is left
    stranger = open_trainer_as(B_BROWSER, run_id)
    assert any("only the browser that started it can resume it" in box.value for box in stranger.info)
    assert "Resume the interrupted run" not in buttons(stranger)
    restarted = open_trainer_as(A_BROWSER, run_id)
    assert any("An interrupted run was found" in box.value for box in restarted.info)
    click(restarted, "Resume the interrupted run")
    poll_until(restarted, lambda a: not run_state(a).active)
    snap = run_state(restarted)
    assert snap.status == "finished" and [e.epoch for e in snap.epochs] == [1, 2, 3]


@pytest.mark.slow  # trains in a worker process
def test_a_learners_own_pictures_stay_private_until_they_share_them():
    owner = upload(open_trainer_as(A_BROWSER), class_folders_zip({"cats": 12, "dogs": 12}))
    by_label(owner.number_input, "Epochs").set_value(1).run()
    click(owner, "Train")
    run_to_the_end(owner)
    run_id = owner.query_params["run"]
    assert "Most confident mistakes" in [t.label for t in owner.tabs]  # the owner sees their pictures

    other = open_trainer_as(B_BROWSER, run_id)
    assert "Test accuracy" in [m.label for m in other.metric]
    assert any("stay private" in c.value for c in other.caption)
    assert not other.tabs  # no most confident mistakes, no look inside...
    assert "True class" not in [box.label for box in other.selectbox]  # ...and no pictures behind the matrix's cells

    by_label(owner.toggle, "Share my pictures with people who open this run's link").set_value(True).run()
    other.run()
    assert "Most confident mistakes" in [t.label for t in other.tabs]
    assert not any("stay private" in c.value for c in other.caption)


@pytest.mark.slow  # trains in a worker process
def test_a_run_the_disk_budget_removes_is_announced_and_leaves_every_picker():
    from dlplay.training.jobs import Budget
    from ui import state

    at = open_trainer()
    by_label(at.number_input, "Epochs").set_value(1).run()
    click(at, "Train")
    run_to_the_end(at)
    run_id = at.query_params["run"]
    assert any(h.value == "5. Runs" for h in at.header)
    scheduler = state.scheduler()
    budget, scheduler.budget = scheduler.budget, Budget(max_bytes=0)  # the disk fills up with other learners' runs
    try:
        scheduler.tidy()
    finally:
        scheduler.budget = budget
    at.run()
    assert any("was removed to keep the server's disk within its budget" in t.value for t in at.toast)
    assert not any(h.value == "5. Runs" for h in at.header) and at.session_state[RUN_KEY] is None
    assert not at.exception
    later = open_trainer_as(A_BROWSER, run_id)  # its link says what happened
    assert any("files were removed" in box.value for box in later.info)


@pytest.mark.slow  # imports in a worker process
def test_one_browser_holds_at_most_its_quota_of_imported_zips_across_its_tabs():
    data = class_folders_zip({"cats": 4, "dogs": 4})
    tabs = [upload(open_trainer_as(A_BROWSER), data) for _ in range(2)]  # the default quota: 2 per browser
    assert all(any(h.value == "3. Model" for h in tab.header) for tab in tabs)
    third = upload(open_trainer_as(A_BROWSER), data)
    assert any("other tabs already hold 2 imported zip(s)" in e.value for e in third.error)
    again = upload(tabs[0], class_folders_zip({"cats": 5, "dogs": 5}))  # a tab's new upload replaces its own
    assert not again.error and any(h.value == "3. Model" for h in again.header)
    assert not upload(open_trainer_as(B_BROWSER), data).error  # another browser has its own quota


def test_an_edited_run_id_in_the_url_is_ignored():
    at = AppTest.from_file(str(REPO / "router.py"), default_timeout=120)
    at.query_params["run"] = "../../etc/passwd"
    at.run()
    at.switch_page("app_pages/trainer.py").run()
    assert not at.exception and RUN_KEY not in at.session_state


def test_an_offline_download_gets_one_sentence_and_the_page_keeps_working(monkeypatch):
    from torchvision import datasets
    monkeypatch.setattr(datasets.CIFAR10, "url", "http://127.0.0.1:9/cifar-10-python.tar.gz")
    at = open_trainer()
    by_label(at.selectbox, "Dataset").set_value("cifar10").run()
    assert any("not on this computer yet" in box.value for box in at.info)
    click(at, "Download cifar10")
    assert not at.exception
    message = next(e.value for e in at.error if "cifar10" in e.value)
    assert "cifar-10-python.tar.gz in" in message and "'mnist5k'" in message
    by_label(at.selectbox, "Dataset").set_value("mnist5k").run()
    assert not at.exception and any(h.value == "3. Model" for h in at.header)


@pytest.mark.slow  # trains in a worker process
def test_the_layer_builder_adds_moves_removes_and_refuses_impossible_stacks():
    at = open_trainer()
    by_label(at.selectbox, "Architecture").set_value("custom").run()
    layers = [t.value for t in at.text if t.value[:1].isdigit() and ". " in t.value]
    assert layers[0] == "1. conv 3×3, 32 filters + ReLU" and len(layers) == 8  # the article's stack to start from
    assert at.get("graphviz_chart")  # the diagram
    by_label(at.selectbox, "New layer").set_value("pool").run()
    click(at, "Add layer")  # after the dense layers: refused
    assert any("Layer 9 (max-pool 2×2) comes after a dense layer" in e.value for e in at.error)
    for _ in range(3):
        [b for b in at.button if b.label == "✕"][-1].click().run()  # remove the last layer
    click(at, "Add layer")  # 28 → 26 → 13 → 11 → 5 → 3 → 1: one more pool cannot work
    assert any("Layer 7 (max-pool 2×2) gets a 1×1 feature map" in e.value for e in at.error)
    [b for b in at.button if b.label == "✕"][-1].click().run()
    assert not at.error
    [b for b in at.button if b.label == "↑"][1].click().run()  # move layer 2 (pool) above layer 1 (conv)
    layers = [t.value for t in at.text if t.value[:1].isdigit() and ". " in t.value]
    assert layers[:2] == ["1. max-pool 2×2", "2. conv 3×3, 32 filters + ReLU"]
    by_label(at.number_input, "Epochs").set_value(1).run()
    click(at, "Train")
    poll_until(at, lambda a: not run_state(a).active)
    assert run_state(at).status == "finished" and at.session_state[RUN_KEY].config.model == "custom"


@pytest.fixture
def one_slot(monkeypatch):
    """A server whose scheduler has a single training slot (whatever this machine has)."""
    monkeypatch.setenv("DLPLAY_SLOTS", "1")
    restart_server()  # the next page run starts a scheduler from these settings
    yield
    restart_server()


@pytest.mark.slow  # trains in a worker process
def test_a_second_learner_waits_in_line_and_can_cancel(one_slot):
    first, second = train_holding(open_trainer(), epochs=3, pause_after=1), open_trainer()
    assert run_state(first).status == "paused"  # it holds the only slot
    click(second, "Train")
    assert run_state(second).status == "queued"
    assert any("Queued: 1st in line for a training slot" in box.value for box in second.info)
    click(second, "Cancel")
    assert run_state(second).status == "stopped" and "Cancelled" in run_state(second).message
    click(first, "Stop")
    poll_until(first, lambda a: not run_state(a).active)


@pytest.mark.slow  # trains in a worker process
def test_a_worker_that_dies_is_reported_and_the_run_resumes_from_its_checkpoint():
    import os
    import signal
    at = train_holding(open_trainer(), epochs=3, pause_after=1)
    job = at.session_state[RUN_KEY]
    assert run_state(at).checkpoint_epoch == 1
    os.kill(job.handle.pid, signal.SIGKILL)
    poll_until(at, lambda a: not run_state(a).active)
    at.run()
    assert any("The training process stopped unexpectedly; resume from epoch 2" in e.value for e in at.error)
    click(at, "Resume from epoch 2")
    poll_until(at, lambda a: not run_state(a).active)
    snap = run_state(at)
    assert snap.status == "finished" and [e.epoch for e in snap.epochs] == [1, 2, 3]
    assert at.session_state[RUN_KEY].run_id == job.run_id and job.run_id in at.query_params["run"]


def test_imagenet_weights_offline_get_one_sentence_and_the_page_keeps_working(tmp_path, monkeypatch):
    import urllib.error

    import torch

    def refuse(*_args, **_kwargs):  # no network in tests: a download fails the way urllib fails offline
        raise urllib.error.URLError("no network")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
    at = open_trainer()
    start = by_label(at.selectbox, "Start from")
    start.select_index(len(start.options) - 1).run()  # ImageNet weights
    assert not at.exception
    [warning] = [w.value for w in at.warning]
    assert "could not be downloaded" in warning and "mobilenet_v3_small-047dcff4.pth" in warning
    assert str(tmp_path / "hub" / "checkpoints") in warning
    assert any("mobilenet-v3-small" in c.value for c in at.caption)  # the architecture the weights belong to
    assert any(c.value.startswith("A deep network") for c in at.caption)  # too long a chain to draw
    click(at, "Train")
    assert not at.exception and any("could not be downloaded" in e.value for e in at.error)
    assert RUN_KEY not in at.session_state  # nothing was queued


def live_chart(at: AppTest) -> dict | None:
    """The live chart's figure as the page sent it (None when it shows none)."""
    import json
    charts = [c for c in at.get("plotly_chart") if "trainer.live_chart" in c.proto.id]
    return json.loads(charts[0].proto.spec) if charts else None


def points(figure: dict, name: str) -> list[float]:
    """The x values of the live chart's accuracy trace called `name`."""
    return next(t["x"] for t in figure["data"] if t["name"] == f"this run: {name}" and t.get("yaxis", "y") == "y")


@pytest.mark.slow  # trains in a worker process
def test_a_run_that_finishes_before_the_next_refresh_is_replayed_epoch_by_epoch_then_explained():
    at = open_trainer()
    by_label(at.number_input, "Epochs").set_value(3).run()
    by_label(at.slider, "Training images used").set_value(20).run()  # 12 steps an epoch: quick on a busy machine
    click(at, "Train")
    job = at.session_state[RUN_KEY]
    wait_until(lambda: not job.snapshot().active, timeout=600)  # the page did not refresh while it trained
    assert job.snapshot().status == "finished" and not at.metric
    frames = []  # (epochs drawn, last step drawn, the progress bar's text) per rerun, until the results show
    while not at.metric:
        assert len(frames) <= 12, "the replay did not end"  # 4 frames an epoch
        at.run()
        assert not at.exception
        figure = live_chart(at)
        frames.append((len(points(figure, "training (epoch)")), max(points(figure, "training (per batch, smoothed)")),
                       at.get("progress")[0].proto.text))
        assert bool(at.metric) == (len(frames) > 1 and frames[-1][:2] == frames[-2][:2])  # results after the last
        if not at.metric:
            assert not any(h.value == "5. Runs" for h in at.header)  # the runs table waits for the end too
    replayed = frames[:-1]
    assert [e for e, __, __ in replayed] == sorted(e for e, __, __ in replayed) and replayed[-1][0] == 3
    assert len({e for e, __, __ in replayed}) >= 3  # the epochs appear one by one...
    steps = [s for __, s, __ in replayed]
    assert steps == sorted(set(steps)) and len(steps) >= 8  # ...as the per-batch curve grows, frame by frame
    assert replayed[0][2].startswith("Replay of the finished run: epoch 1/3")
    # Every number says what it is measured on.
    captions = " ".join(c.value for c in at.caption)
    train, __ = training_split(job.config, load_dataset("mnist5k"))  # 20% of mnist5k's 4,000, less 10% held out
    assert f"the {len(train):,} images the model learns from" in captions and len(train) == 720
    assert "**Validation** (dashed): 10% of the training images, held out before training" in captions
    assert "the dataset's 1,000 test images, scored once after the last epoch" in captions
    helps = {m.label: m.proto.help for m in at.metric}
    assert "The share of the 1,000 test images classified correctly" in helps["Test accuracy"]
    assert "validation images (10% of the training images" in helps["Validation accuracy"]
    assert "lower is better" in helps["Test loss"]
    assert any(h.value == "5. Runs" for h in at.header)

    click(at, "Train")  # a second run: skip its replay
    second = at.session_state[RUN_KEY]
    wait_until(lambda: not second.snapshot().active, timeout=600)
    at.run()
    assert not at.metric and at.get("progress")[0].proto.text.startswith("Replay of the finished run")
    by_label(at.button, "Skip to the end").click().run()
    assert not at.exception and [m.label for m in at.metric][:2] == ["Test accuracy", "Test loss"]
    assert "Skip to the end" not in buttons(at)


def test_a_replay_covers_what_the_learner_did_not_see_and_only_a_finished_run():
    from dlplay.training.jobs import RunSnapshot, RunStatus
    from dlplay.training.trainer import BatchEvent, EpochEvent
    from ui.trainer_views import MAX_REPLAY_FRAMES, as_of, replay_for

    per_epoch, epochs = 10, 3
    batches = [BatchEvent(1 + (s - 1) // per_epoch, s, per_epoch, 2.0 / s, s / 30, 100.0, 1e-3)
               for s in range(1, per_epoch * epochs + 1)]
    ends = [EpochEvent(e, 1.0 / e, 0.3 * e, 1.1 / e, 0.3 * e, 100.0, 1.0) for e in range(1, epochs + 1)]
    finished = RunSnapshot(RunStatus.FINISHED, "", batches, ends, per_epoch * epochs, 64, None, "cpu", 7)
    replay = replay_for("r", 4, finished)  # seen at step 4: 2.6 epochs unseen, 4 frames an epoch
    assert (replay.start, replay.end, replay.frames) == (4, 30, 10)
    frames = []
    while not replay.over:
        shown = as_of(finished, replay.step)
        frames.append((shown.step, len(shown.epochs)))
        replay = replay.next()
    assert frames[0] == (6, 0) and frames[-1] == (30, 3) and [e for __, e in frames] == sorted(e for __, e in frames)
    assert all(a[0] < b[0] for a, b in zip(frames, frames[1:], strict=False))
    assert replay_for("r", 30, finished) is None  # the learner saw it to its last step
    assert replay_for("r", 28, finished).frames == 2  # two steps unseen: they grow too, rather than jump
    assert replay_for("r", 0, replace(finished, status=RunStatus.STOPPED)) is None  # the learner stopped it
    long = replace(finished, batches=[replace(b, steps_per_epoch=1) for b in batches])  # 30 one-step epochs
    assert replay_for("r", 0, long).frames == MAX_REPLAY_FRAMES


def test_looks_that_jump_over_an_epoch_leave_it_to_the_replay_and_smooth_looks_do_not():
    from dlplay.training.jobs import RunSnapshot, RunStatus
    from dlplay.training.trainer import BatchEvent
    from ui.trainer_views import replay_for, watched

    def run(per_epoch: int, epochs: int):
        """The run after `step` steps (`status` then), as a look at the live view finds it."""
        batches = [BatchEvent(1 + (s - 1) // per_epoch, s, per_epoch, 2.0 / s, s / 30, 100.0, 1e-3)
                   for s in range(1, per_epoch * epochs + 1)]
        return lambda step, status=RunStatus.RUNNING: RunSnapshot(status, "", batches[:step], [],
                                                                  per_epoch * epochs, 64, None, "cpu", step)

    def looks(at, *steps):
        seen = (0, 0)  # Train pressed: nothing done yet
        for step in steps:
            seen = watched(seen, at(step))
        return seen

    three = run(10, 3)  # 3 epochs of 10 steps
    # 3 epochs in 5 s, a look every 2 s: each look adds 1.2 epochs, so the learner saw the curves jump twice...
    assert looks(three, 12, 24) == (0, 24)
    replay = replay_for("r", looks(three, 12, 24)[0], three(30, RunStatus.FINISHED))
    assert (replay.start, replay.end) == (0, 30)  # ...and the replay draws the whole run growing, not its last 6 steps
    # 3 epochs in 8 s: under an epoch a look, every epoch's end seen on its own: only the rest is replayed.
    assert looks(three, 8, 16, 24) == (24, 24)
    assert replay_for("r", 24, three(30, RunStatus.FINISHED)).start == 24
    # Back from another page in the middle of the run: the jump waits for the replay until looks grow smoothly again.
    assert looks(three, 2, 20) == (2, 20) and looks(three, 2, 20, 25) == (25, 25)
    assert looks(three, 5, 5, 5) == (5, 5)  # paused: nothing new, nothing jumped
    # A long run of short epochs: its replay would draw 10 epochs a frame, so a look adding 4 is smooth enough.
    long = run(1, 160)
    assert looks(long, 4, 8) == (8, 8) and looks(long, 4, 30) == (4, 30)
