"""Training jobs in real worker processes: the scheduler's fair queue, pause / stop / resume, a worker killed
mid-epoch, exact resume from a checkpoint, threads shared between workers, and the run store's budget.

No test races the machine's speed: a run is put into the state a test needs by an event (it pauses itself at a
given step, and reports when it holds), so the tests pass alike on a slow CPU, a fast one, and with --tiny-runs."""
import gc
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from dlplay.augment import Augmentation
from dlplay.data import Dataset, ImageSet
from dlplay.training.jobs import (
    AlreadyTraining,
    Budget,
    RunAlreadyLive,
    RunConfig,
    RunStatus,
    RunStore,
    Scheduler,
    ServerSettings,
    SettingError,
)
from dlplay.training.jobs.local_backend import LocalBackend
from dlplay.training.jobs.runner import EVALUATION_FILE, MODEL_FILE, STATE_FILE, build_run_model
from dlplay.training.jobs.scheduler import default_capacity
from dlplay.training.jobs.spec import steps_per_epoch
from dlplay.training.jobs.store import folder_bytes
from helpers import alive, descendants, held, wait_until

pytestmark = pytest.mark.slow  # worker processes
QUICK = RunConfig(epochs=1, augmentation=Augmentation())
REPO = Path(__file__).resolve().parents[4]


@pytest.fixture
def small(mnist5k, tiny_runs):
    """A maker of datasets of the first n training images (not the registered dataset: workers get it through the
    run store); with --tiny-runs a tenth of them, so that every epoch takes milliseconds."""
    def make(n=640, name="mnist5k subset") -> Dataset:
        n = max(40, n // 10) if tiny_runs else n
        return Dataset(name, mnist5k.class_names, ImageSet(mnist5k.train.images[:n], mnist5k.train.labels[:n]),
                       ImageSet(mnist5k.test.images[:200], mnist5k.test.labels[:200]))
    return make


def finish(job, timeout=120.0):
    wait_until(lambda: not job.snapshot().active, timeout)
    return job.snapshot()


@pytest.fixture(scope="module")
def backend():
    """One zygote for the module's schedulers: each would otherwise spend seconds importing torch first."""
    started = LocalBackend()
    yield started
    started.shutdown()


def stop_all(scheduler: Scheduler) -> None:
    """End a test's runs, leaving the shared backend running."""
    for job in scheduler.running_jobs():
        job.stop()
    wait_until(lambda: not scheduler.running_jobs())


@pytest.fixture
def scheduler(backend, tmp_path):
    started = Scheduler(backend, RunStore(tmp_path / "runs"), capacity=1)
    yield started
    stop_all(started)


def test_a_run_trains_in_a_worker_process_and_delivers_its_model_and_evaluation(scheduler, mnist5k):
    job = scheduler.submit(RunConfig(epochs=2), mnist5k, "alice", registered=True)
    wait_until(lambda: job.handle is not None)
    assert job.handle.pid != os.getpid()  # the server process only reads events
    snap = finish(job)
    assert snap.status is RunStatus.FINISHED and len(snap.epochs) == 2 and snap.step == snap.total_steps
    assert snap.evaluation.accuracy >= 0.9 and snap.epochs[-1].val_accuracy >= 0.9
    assert snap.train_size == 3600  # 10% of the training images validate
    model, card = job.model()
    assert card.test_accuracy == snap.evaluation.accuracy and card.class_names == mnist5k.class_names
    assert {MODEL_FILE, EVALUATION_FILE, STATE_FILE} <= {p.name for p in job.folder.iterdir()}


def test_fair_queue_one_run_per_session_positions_and_cancel(scheduler, small):
    data = small()
    first = scheduler.submit(RunConfig(epochs=20), data, "alice", registered=False, pause_at_step=1)
    held(first)  # it holds the only slot until it is stopped
    with pytest.raises(AlreadyTraining):
        scheduler.submit(QUICK, data, "alice", registered=False)
    second = scheduler.submit(QUICK, data, "bob", registered=False)
    third = scheduler.submit(QUICK, data, "carol", registered=False)
    assert (second.snapshot().queue_position, third.snapshot().queue_position) == (1, 2)
    assert second.snapshot().status is RunStatus.QUEUED and "Waiting" in second.snapshot().message
    second.stop()  # a queued run can be cancelled...
    assert second.snapshot().status is RunStatus.STOPPED and "Cancelled" in second.snapshot().message
    assert third.snapshot().queue_position == 1  # ...and the next one moves up
    first.stop()
    assert finish(first).status is RunStatus.STOPPED and first.snapshot().step == 1
    assert finish(third).status is RunStatus.FINISHED and second.snapshot().step == 0


def test_a_queued_run_knows_when_it_should_start(scheduler, small):
    data = small()
    finish(scheduler.submit(QUICK, data, "alice", registered=False))  # the scheduler learns this model's speed
    running = scheduler.submit(RunConfig(epochs=3, augmentation=Augmentation()), data, "bob", registered=False,
                               pause_at_step=2)
    waiting = scheduler.submit(QUICK, data, "carol", registered=False)
    held(running)  # two steps done, the rest to come: its time left is known
    expected = waiting.snapshot().expected_start_seconds
    remaining = running.snapshot().eta_seconds
    assert expected is not None and 0 < expected <= remaining + 1.0
    running.resume()
    assert finish(running).status is RunStatus.FINISHED
    assert finish(waiting).status is RunStatus.FINISHED


def test_stop_mid_run_keeps_the_weights_reached_and_pause_holds(scheduler, mnist5k):
    job = scheduler.submit(RunConfig(epochs=5), mnist5k, "alice", registered=True, pause_at_step=3)
    assert held(job).step == 3  # it paused itself after exactly 3 steps
    job.resume()
    wait_until(lambda: job.snapshot().step > 3)  # resumed, it trains on
    job.pause()
    assert job.snapshot().status is RunStatus.PAUSED  # the page shows it at once...
    holding = held(job).step  # ...and the worker says where it holds
    job.stop()
    snap = finish(job)
    assert snap.status is RunStatus.STOPPED and snap.evaluation is not None
    assert snap.step == holding < snap.total_steps  # not one step taken while paused


def test_divergence_stops_with_the_message_and_the_last_good_weights(scheduler, mnist5k):
    data = Dataset("mnist5k subset", mnist5k.class_names, ImageSet(mnist5k.train.images[:640],
                   mnist5k.train.labels[:640]), mnist5k.test)  # what the loss does is the point here, not speed
    config = RunConfig(epochs=1, lr=1000.0, schedule="constant")  # the first step alone blows the loss up
    snap = finish(scheduler.submit(config, data, "alice", registered=False))
    assert snap.status is RunStatus.DIVERGED
    assert snap.message.startswith("Loss diverged at step ") and "lower the learning rate" in snap.message
    assert snap.step == 1  # it blew up on step 2, so the last good weights are the initial ones
    saved = load_file(str(next(scheduler.store.root.glob(f"*/{MODEL_FILE}"))))
    initial = build_run_model(config, data).state_dict()
    assert all(torch.isfinite(v).all() for v in saved.values())
    assert all(torch.equal(initial[k], v) for k, v in saved.items() if v.is_floating_point() and "running" not in k)


def test_a_killed_worker_frees_its_slot_and_the_run_resumes_exactly(scheduler, small):
    config = RunConfig(epochs=3, seed=2)
    data = small()
    reference = finish(scheduler.submit(config, data, "ref", registered=False))
    per_epoch = steps_per_epoch(config, data)
    mid_epoch_2 = per_epoch + min(3, per_epoch - 1)
    job = scheduler.submit(config, data, "alice", registered=False, pause_at_step=mid_epoch_2)
    waiting = scheduler.submit(QUICK, data, "bob", registered=False)
    snap = held(job)
    assert snap.step == mid_epoch_2 and snap.checkpoint_epoch == 1
    os.kill(job.handle.pid, signal.SIGKILL)
    snap = finish(job)
    assert snap.status is RunStatus.CRASHED
    assert snap.message.startswith("The training process stopped unexpectedly; resume from epoch 2")
    assert finish(waiting).status is RunStatus.FINISHED  # the slot was freed; the other run went on
    point = scheduler.store.resume_point(job.run_id)
    resumed = scheduler.submit(point.config, data, "alice", registered=False, run_id=job.run_id, resume=point)
    snap = finish(resumed)
    assert snap.status is RunStatus.FINISHED and [e.epoch for e in snap.epochs] == [1, 2, 3]
    assert [b.loss for b in snap.batches] == [b.loss for b in reference.batches]
    assert snap.evaluation.accuracy == reference.evaluation.accuracy


def test_one_live_job_per_run_however_many_sessions_resume_it_at_once(scheduler, small):
    config, data = RunConfig(epochs=2, seed=4), small()
    job = scheduler.submit(config, data, "alice", registered=False, pause_at_step=steps_per_epoch(config, data))
    held(job)
    os.kill(job.handle.pid, signal.SIGKILL)
    assert finish(job).status is RunStatus.CRASHED
    point = scheduler.store.resume_point(job.run_id)
    start, outcomes = threading.Barrier(6), []

    def press_resume(owner: str) -> None:  # six tabs of its browser press Resume at the same moment
        start.wait()
        try:
            outcomes.append(scheduler.submit(point.config, data, owner, registered=False, run_id=job.run_id,
                                             resume=point))
        except RunAlreadyLive as refused:
            outcomes.append(refused)

    pressers = [threading.Thread(target=press_resume, args=("alice",)) for _ in range(6)]
    for presser in pressers:
        presser.start()
    for presser in pressers:
        presser.join(60)
    live = [o for o in outcomes if not isinstance(o, RunAlreadyLive)]
    assert len(outcomes) == 6 and len(live) == 1  # one wins; five are told
    assert all("already training" in str(o) for o in outcomes if o is not live[0])
    snap = finish(live[0])
    assert snap.status is RunStatus.FINISHED and [e.epoch for e in snap.epochs] == [1, 2]
    again = scheduler.submit(point.config, data, "alice", registered=False, run_id=job.run_id, resume=point)
    assert finish(again).status is RunStatus.FINISHED  # once it has ended, the run may be resumed again


def test_seeded_runs_give_identical_curves(scheduler, small):
    config = RunConfig(epochs=2, seed=3)
    curves = [[b.loss for b in finish(scheduler.submit(config, small(), f"user{i}", registered=False)).batches]
              for i in range(2)]
    assert curves[0] == curves[1] and len(curves[0]) == 2 * steps_per_epoch(config, small())


def test_impossible_model_is_refused_before_queueing(scheduler):
    tiny = Dataset("tiny", ("a", "b"), ImageSet(torch.zeros(4, 1, 4, 4, dtype=torch.uint8), torch.tensor([0, 1, 0, 1])),
                   ImageSet(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.tensor([0, 1])))
    with pytest.raises(ValueError, match="too small"):
        scheduler.submit(RunConfig(model="small-cnn"), tiny, "alice", registered=False)
    assert scheduler.active_job("alice") is None
    with pytest.raises(ValueError, match="weighted sampler"):
        RunConfig(remedy="oversample")


def test_a_users_images_reach_the_worker_through_the_store(scheduler, small):
    mine = small(300, name="my digits")  # not a registered dataset: the worker reads the stored file
    snap = finish(scheduler.submit(QUICK, mine, "alice", registered=False))
    assert snap.status is RunStatus.FINISHED and len(snap.evaluation.labels) == 200
    assert len(list((scheduler.store.root / "_datasets").glob("*.safetensors"))) == 1


def test_workers_share_the_cores_without_oversubscribing(backend, tmp_path, small):
    scheduler = Scheduler(backend, RunStore(tmp_path), capacity=2, cores=2)
    try:
        alone = scheduler.submit(RunConfig(epochs=30), small(), "alice", registered=False, pause_at_step=1)
        assert held(alone).threads == 2  # a run alone uses every core
        second = scheduler.submit(RunConfig(epochs=30), small(), "bob", registered=False, pause_at_step=1)
        assert held(second).threads == 1  # two runs: one core each, never 2 x 2 threads on 2 cores...
        alone.resume()
        wait_until(lambda: alone.snapshot().threads == 1)  # ...the first takes its new share at its next batch
        alone.pause()
        held(alone)
        second.stop()
        assert finish(second).status is RunStatus.STOPPED
        alone.resume()
        wait_until(lambda: alone.snapshot().threads == 2)  # alone again: it gets the cores back
        alone.stop()
        finish(alone)
    finally:
        stop_all(scheduler)
    assert scheduler._cpu_shares(3) == [1, 1, 1] and Scheduler(backend, RunStore(tmp_path), cores=8,
                                                                   capacity=3)._cpu_shares(3) == [3, 3, 2]


def test_a_run_nobody_watches_is_stopped_after_the_idle_timeout(backend, tmp_path, small):
    scheduler = Scheduler(backend, RunStore(tmp_path), capacity=1, idle_timeout=1.5)
    config, data = RunConfig(epochs=40), small()
    last_step = config.epochs * steps_per_epoch(config, data) - 1  # it cannot finish: it pauses a step before
    try:
        watched = scheduler.submit(config, data, "alice", registered=False, pause_at_step=last_step)
        deadline = time.monotonic() + 3  # twice the idle timeout, three checks of the idle watcher
        while time.monotonic() < deadline:  # a page polls it: it keeps going
            watched.touch()
            assert watched.snapshot().active
            time.sleep(0.2)
        snap = finish(watched, timeout=30)  # the tab closed: stopped, and it says why
        assert snap.status is RunStatus.STOPPED and snap.step <= last_step
        assert snap.message.startswith("Nobody watched this run for 1 minute(s), so it stopped to free its training "
                                       "slot. Stopped; the model keeps")
    finally:
        stop_all(scheduler)


def finished_run_folder(scheduler, data) -> Path:
    """Train a run to its end in a session that then goes away; returns where its files were."""
    job = scheduler.submit(QUICK, data, "alice", registered=False)
    finish(job)
    assert job.folder.exists()
    return job.folder


def crashed_run_folder(scheduler, data) -> tuple[Path, weakref.ref]:
    """A run whose worker dies after its first checkpoint, in a session that then goes away: its folder, and a
    weak reference to its job that tells when nothing holds it any more."""
    config = RunConfig(epochs=30)
    job = scheduler.submit(config, data, "bob", registered=False, pause_at_step=steps_per_epoch(config, data))
    assert held(job).checkpoint_epoch == 1
    os.kill(job.handle.pid, signal.SIGKILL)
    assert finish(job).status is RunStatus.CRASHED
    wait_until(lambda: not scheduler.running_jobs())
    return job.folder, weakref.ref(job)


def test_the_store_keeps_within_its_budget_and_forgets_finished_runs_nobody_holds(scheduler, small):
    store = scheduler.store
    finished = finished_run_folder(scheduler, small(name="mine"))
    # The session that held it ended: once its worker's reader thread is done, nothing holds the run.
    wait_until(lambda: gc.collect() is not None and scheduler.tidy() is None and not finished.exists(), timeout=10)
    assert not list((store.root / "_datasets").glob("*"))
    crashed, job = crashed_run_folder(scheduler, small())
    wait_until(lambda: gc.collect() is not None and job() is None, timeout=10)  # nothing holds the run now...
    scheduler.tidy()
    assert crashed.exists()  # ...yet it is resumable: left to the budget
    old = [store.run_dir(store.record(scheduler_spec(i)).run_id) for i in range(3)]
    for i, folder in enumerate(old):
        (folder / "state.safetensors").write_bytes(b"x" * 1000)
        for path in (folder / "state.safetensors", folder / "run.json", folder):
            os.utime(path, (time.time() - 100 + i, time.time() - 100 + i))
    over = folder_bytes(old[1]) + 1  # more than one run must go
    removed = store.prune(Budget(max_bytes=store.total_bytes() - over, max_age_seconds=3600), keep={old[0].name})
    assert removed == [old[1].name, old[2].name]  # the least recently used first, never one that is kept
    assert store.prune(Budget(max_age_seconds=50), keep=set()) == [old[0].name]  # too old
    assert crashed.exists()


def test_a_run_forgotten_while_the_store_is_busy_does_not_deadlock(scheduler, small):
    """The collector runs finalizers in whichever thread it interrupts: here, one that holds the store's lock (as
    recording a run or pruning does). Deleting the run's files there would wait for that lock forever."""
    finished = finished_run_folder(scheduler, small(name="mine"))
    wait_until(lambda: not scheduler.running_jobs())
    with scheduler.store._lock:
        gc.collect()  # the run's Job is collected here, its finalizer called with the lock held
    assert finished.exists()
    scheduler.tidy()
    assert not finished.exists()


def scheduler_spec(i: int):
    from dlplay.training.jobs.spec import DataRef, JobSpec
    return JobSpec(f"{i:012x}", QUICK, DataRef("mnist5k"))


SERVER = textwrap.dedent("""
    import sys, time
    from dlplay.data import load_dataset
    from dlplay.training.jobs import RunConfig, RunStore, Scheduler
    from dlplay.training.jobs.local_backend import LocalBackend
    if __name__ == "__main__":
        scheduler = Scheduler(LocalBackend(), RunStore(sys.argv[1]), capacity=1)
        job = scheduler.submit(RunConfig(epochs=50), load_dataset("mnist5k"), "alice", registered=True,
                               pause_at_step=1)
        while job.snapshot().held_at_step is None:  # it trains no further than one step
            time.sleep(0.05)
        print(job.handle.pid, flush=True)
        time.sleep(600)
""")


@pytest.mark.skipif(not Path("/proc").exists(), reason="counts processes through /proc (Linux)")
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_no_worker_outlives_the_server(tmp_path, how):
    script = tmp_path / "server.py"
    script.write_text(SERVER)
    server = subprocess.Popen([sys.executable, str(script), str(tmp_path / "runs")], stdout=subprocess.PIPE,
                              text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        worker = int(server.stdout.readline())
        family = descendants(server.pid)
        assert worker in family and len(family) >= 2  # the forkserver and the training worker
        server.send_signal(how)
        server.wait(30)
        wait_until(lambda: not any(alive(pid) for pid in family), timeout=20)
    finally:
        server.kill()


def test_server_settings_come_from_the_environment_and_bad_values_get_a_sentence(tmp_path):
    settings = ServerSettings.from_env({"DLPLAY_SLOTS": "3", "DLPLAY_IDLE_TIMEOUT": "600", "DLPLAY_RUNS_MAX_MB": "100",
                                        "DLPLAY_RUNS_MAX_DAYS": "1", "DLPLAY_RAY_ADDRESS": "10.0.0.5:6379",
                                        "DLPLAY_RUNS_DIR": str(tmp_path)})
    assert (settings.slots, settings.idle_timeout, settings.ray_address, settings.runs_dir) == \
        (3, 600.0, "10.0.0.5:6379", tmp_path)
    assert settings.budget == Budget(100 * 1024**2, 86400)
    default = ServerSettings.from_env({})
    assert default.slots is None and default.idle_timeout == 900 and default.ray_address is None
    assert (default.queue_max, ServerSettings.from_env({"DLPLAY_QUEUE_MAX": "5"}).queue_max) == (20, 5)
    with pytest.raises(SettingError, match="DLPLAY_SLOTS='two' is not a whole number"):
        ServerSettings.from_env({"DLPLAY_SLOTS": "two"})
    with pytest.raises(SettingError, match="DLPLAY_SLOTS must be at least 1"):
        ServerSettings.from_env({"DLPLAY_SLOTS": "0"})
    with pytest.raises(SettingError, match="DLPLAY_RUNS_MAX_MB='lots' is not a number"):
        ServerSettings.from_env({"DLPLAY_RUNS_MAX_MB": "lots"})
    assert default_capacity(cores=2, gpus=0) == 1 and default_capacity(16, 0) == 8 and default_capacity(16, 4) == 4


def test_data_that_cannot_teach_is_refused_before_queueing(scheduler, mnist5k):
    from dlplay.training.jobs import DataProblem
    same = mnist5k.train.images[:1].repeat(8, 1, 1, 1)  # one picture, eight times, in two classes
    copies = Dataset("copies", ("a", "b"), ImageSet(same, torch.tensor([0, 1] * 4)),
                     ImageSet(same[:2].clone(), torch.tensor([0, 1])))
    with pytest.raises(DataProblem, match="the very same picture"):
        scheduler.submit(QUICK, copies, "alice", registered=False)
    assert scheduler.active_job("alice") is None


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="reads a worker's command line from /proc")
def test_workers_can_start_as_fresh_interpreters_as_they_do_on_macos(tmp_path, small, monkeypatch):
    """On macOS a forked child may not use Metal: there the zygote spawns each job. The same path, chosen here."""
    from dlplay.training.jobs.labs import DATASET_FILE, ZIP_FILE
    from dlplay.training.jobs.lane import LabLane
    from helpers import class_folders_zip
    monkeypatch.setenv("DLPLAY_WORKER_START", "spawn")
    scheduler = Scheduler(LocalBackend(), RunStore(tmp_path / "runs"), capacity=1)
    scheduler.labs = LabLane(scheduler.backend, tmp_path, scheduler.lab_threads)
    try:
        job = scheduler.submit(QUICK, small(), "alice", registered=False, pause_at_step=2)
        snap = held(job)
        command = Path(f"/proc/{snap.worker_pid}/cmdline").read_bytes().split(b"\0")
        assert command[1:4] == [b"-m", b"dlplay.training.jobs.zygote", b"--job"]  # exec'd, not a fork of the zygote
        job.resume()
        assert finish(job).status is RunStatus.FINISHED
        lab = scheduler.labs.submit("import_zip", {"image_size": 32, "name": "pets"}, "alice",
                                    files={ZIP_FILE: class_folders_zip({"cats": 4, "dogs": 4})})
        wait_until(lambda: not lab.snapshot().status.active, 120)
        assert lab.snapshot().status is RunStatus.FINISHED and (lab.folder / DATASET_FILE).exists()
    finally:
        scheduler.shutdown()
