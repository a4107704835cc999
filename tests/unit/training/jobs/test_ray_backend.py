"""The Ray backend on a real local Ray runtime (no mock): a job runs as an actor in another process, pauses,
resumes, stops and delivers its model and evaluation; the CLI's --ray runs the same job."""
import os

import pytest
import ray

from dlplay.checkpoint import load_model
from dlplay.cli import main
from dlplay.data import Dataset, ImageSet
from dlplay.training.jobs import RunConfig, RunStatus, RunStore, Scheduler
from dlplay.training.jobs.ray_backend import RayBackend
from dlplay.training.jobs.spec import steps_per_epoch
from helpers import held, wait_until

pytestmark = pytest.mark.slow  # a Ray runtime


def test_the_cli_trains_as_a_ray_job_and_saves_the_model(tmp_path, capsys):
    path = tmp_path / "ray.safetensors"
    assert main(["train", "--ray", "local", "--dry-run", "--save", str(path)]) == 0
    assert not ray.is_initialized()  # the CLI leaves no Ray runtime behind
    out = capsys.readouterr().out
    assert "as a Ray job on" in out and "Trained 1 epoch(s)" in out
    _, card = load_model(path)
    assert card.dataset == "mnist5k" and 0 <= card.test_accuracy <= 1


@pytest.fixture(scope="module")
def ray_scheduler(tmp_path_factory):
    scheduler = Scheduler(RayBackend("local", num_cpus=2), RunStore(tmp_path_factory.mktemp("ray-runs")))
    yield scheduler
    scheduler.shutdown()


def test_capacity_comes_from_the_clusters_resources(ray_scheduler):
    assert ray.cluster_resources()["CPU"] == 2 and ray_scheduler.capacity == 1  # 2 CPUs per job


def test_a_ray_job_pauses_resumes_stops_and_delivers_its_results(ray_scheduler, mnist5k, tiny_runs):
    n = 128 if tiny_runs else 1280
    data = Dataset("digits subset", mnist5k.class_names, ImageSet(mnist5k.train.images[:n],
                                                                  mnist5k.train.labels[:n]), mnist5k.test)
    config = RunConfig(epochs=40)
    after_epoch_1 = steps_per_epoch(config, data) + 1
    job = ray_scheduler.submit(config, data, "alice", registered=False, pause_at_step=after_epoch_1)
    snap = held(job, timeout=120)  # it paused itself; its first checkpoint was copied from the actor first
    assert snap.step == after_epoch_1 and snap.checkpoint_epoch == 1
    assert snap.worker_pid not in (0, os.getpid())  # trained in a Ray worker process
    job.resume()
    wait_until(lambda: job.snapshot().step > after_epoch_1, timeout=120)
    job.pause()
    holding = held(job, timeout=120).step  # paused by the page's command this time
    job.stop()
    wait_until(lambda: not job.snapshot().active, timeout=120)
    snap = job.snapshot()
    assert snap.status is RunStatus.STOPPED and snap.step == holding < snap.total_steps
    assert snap.evaluation is not None and len(snap.evaluation.labels) == len(mnist5k.test)
    model, card = job.model()
    assert card.test_accuracy == snap.evaluation.accuracy and card.dataset == "digits subset"
    point = ray_scheduler.store.resume_point(job.run_id)
    assert len(point.epochs) == snap.checkpoint_epoch


def test_a_registered_dataset_is_loaded_on_the_node_and_trains_to_the_end(ray_scheduler, mnist5k):
    job = ray_scheduler.submit(RunConfig(epochs=1), mnist5k, "bob", registered=True)
    wait_until(lambda: not job.snapshot().active, timeout=120)
    snap = job.snapshot()
    assert snap.status is RunStatus.FINISHED and snap.evaluation.accuracy > 0.8 and snap.train_size == 3600
