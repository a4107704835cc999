"""Labs in real worker processes, in a lane of their own: a zip's import and the After-training labs leave the
server, each with progress, a queue place, a cancel and a folder that goes with it; an import never waits behind a
training run. Every state a test asserts is reached by an event (a run that holds, a lab that reports), never by
sleeping."""
import gc
import os
import signal

import pytest

from dlplay.after_training.deploy import deployment_report, report_images
from dlplay.classify import BUNDLED_MODEL, load_bundled_model
from dlplay.data import load_dataset, read_dataset
from dlplay.training.jobs import AlreadyTraining, RunConfig, RunStatus, RunStore, Scheduler
from dlplay.training.jobs.labs import DATASET_FILE, LAB_NICENESS, ZIP_FILE, read_result
from dlplay.training.jobs.lane import LabLane
from dlplay.training.jobs.local_backend import LocalBackend
from dlplay.training.jobs.spec import steps_per_epoch
from dlplay.training.jobs.zygote import NICENESS
from helpers import class_folders_zip, held, wait_until

pytestmark = pytest.mark.slow  # worker processes


@pytest.fixture(scope="module")
def backend():
    started = LocalBackend()
    yield started
    started.shutdown()


@pytest.fixture
def lane(backend, tmp_path):
    started = LabLane(backend, tmp_path, threads=lambda: 1)
    yield started
    started.shutdown()


def ended(lab, timeout=120.0):
    wait_until(lambda: not lab.snapshot().status.active, timeout)
    return lab.snapshot()


def test_a_zip_is_imported_in_a_worker_and_its_folder_goes_with_the_lab(lane):
    data = class_folders_zip({"cats": 6, "dogs": 6}, extra={"cats/notes.txt": b"not a picture"})
    lab = lane.submit("import_zip", {"image_size": 32, "name": "pets"}, "alice", files={ZIP_FILE: data})
    done = ended(lab)
    assert done.status is RunStatus.FINISHED and done.fraction == 1.0
    dataset = read_dataset(lab.folder / DATASET_FILE)
    assert dataset.class_names == ("cats", "dogs") and dataset.input_shape == (3, 32, 32)
    assert len(dataset.train) + len(dataset.test) == 12 and not (lab.folder / ZIP_FILE).exists()
    assert [name for name, _ in read_result("import_zip", done.result, lab.folder)] == ["cats/notes.txt"]
    folder = lab.folder
    del lab, done
    gc.collect()
    assert not folder.exists()  # the session that held it ended: its files went with it


def test_a_bad_zip_is_one_sentence_from_the_worker(lane):
    lab = lane.submit("import_zip", {"image_size": 32, "name": "x"}, "alice", files={ZIP_FILE: b"PK\x03\x04 nope"})
    done = ended(lab)
    assert done.status is RunStatus.FAILED and "not a readable .zip" in done.message


def test_an_import_does_not_wait_behind_a_training_run(backend, tmp_path, mnist5k):
    scheduler = Scheduler(backend, RunStore(tmp_path / "runs"), capacity=1, cores=2)
    scheduler.labs = LabLane(backend, tmp_path, scheduler.lab_threads)
    try:
        config = RunConfig(epochs=2)
        run = scheduler.submit(config, mnist5k, "bob", registered=True,
                               pause_at_step=steps_per_epoch(config, mnist5k))
        held(run)  # the only training slot is taken, and stays taken while the test looks
        assert scheduler.lab_threads() == 1  # beside a training run, a lab gets one thread
        lab = scheduler.labs.submit("import_zip", {"image_size": 32, "name": "pets"}, "alice",
                                    files={ZIP_FILE: class_folders_zip({"cats": 4, "dogs": 4})})
        assert ended(lab).status is RunStatus.FINISHED
        assert run.snapshot().status is RunStatus.PAUSED  # done while the run still held its slot
        run.stop()
    finally:
        scheduler.shutdown()


def test_labs_queue_with_a_place_and_cancel_while_waiting_or_running(lane):
    long = {"clients": 20, "alpha": None, "rounds": 20, "local": {"epochs": 3}}
    first = lane.submit("federated", long, "alice")
    wait_until(lambda: first.snapshot().fraction > 0, timeout=120)  # running, and it reports how far it is
    assert first.snapshot().status is RunStatus.RUNNING and "round" in first.snapshot().text
    # below training workers, which are below the server: a lab beside a run takes what the run leaves
    assert os.getpriority(os.PRIO_PROCESS, first.handle.pid) == min(19, os.nice(0) + NICENESS + LAB_NICENESS)
    with pytest.raises(AlreadyTraining, match="already has a lab"):
        lane.submit("transfer", {"freeze": "none", "pretrain_epochs": 1}, "alice")
    second = lane.submit("transfer", {"freeze": "none", "pretrain_epochs": 1}, "bob")
    waiting = second.snapshot()
    assert waiting.status is RunStatus.QUEUED and waiting.queue_position == 1
    assert waiting.expected_start_seconds is None  # no lab of its kind has finished yet: no guess
    second.cancel()
    assert second.snapshot().status is RunStatus.STOPPED and second.snapshot().message == "Cancelled."
    first.cancel()
    done = ended(first, timeout=30)
    assert done.status is RunStatus.STOPPED and done.message == "Cancelled."
    assert lane.submit("transfer", {"freeze": "none", "pretrain_epochs": 1}, "alice").snapshot().status.active


def test_the_deploy_lab_in_a_worker_measures_what_the_function_measures_here(lane, tmp_path):
    lab = lane.submit("deploy", {"model_file": str(BUNDLED_MODEL), "quantize": False}, "alice")
    done = ended(lab)
    assert done.status is RunStatus.FINISHED, done.message
    variants = read_result("deploy", done.result, lab.folder)
    model, card = load_bundled_model()
    images, labels, calibration = report_images(card, load_dataset(card.dataset), False)
    here = deployment_report(model, card, tmp_path, images, labels, calibration)
    assert [v.name for v in variants] == [v.name for v in here]
    assert [v.size_bytes for v in variants] == [v.size_bytes for v in here]  # the very same files
    assert [v.accuracy for v in variants] == pytest.approx([v.accuracy for v in here])
    assert all(v.path is None or v.path.read_bytes() == (tmp_path / v.path.name).read_bytes() for v in variants)


def test_a_lab_whose_worker_dies_says_so_and_frees_its_slot(lane):
    first = lane.submit("federated", {"clients": 20, "alpha": None, "rounds": 20, "local": {"epochs": 3}}, "alice")
    wait_until(lambda: first.handle.pid is not None and first.snapshot().fraction > 0, timeout=120)
    second = lane.submit("transfer", {"freeze": "none", "pretrain_epochs": 1}, "bob")
    os.kill(first.handle.pid, signal.SIGKILL)
    done = ended(first, timeout=30)
    assert done.status is RunStatus.CRASHED and "stopped unexpectedly" in done.message
    wait_until(lambda: second.snapshot().status is not RunStatus.QUEUED, timeout=30)  # the slot went on
    second.cancel()
