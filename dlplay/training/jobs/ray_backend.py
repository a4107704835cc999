"""Run jobs as Ray actors on a Ray cluster: the same JobRunner as a local worker, scheduled by Ray with the job's
CPU or GPU needs as resources. Imported only when DLPLAY_RAY_ADDRESS (or the CLI's --ray) asks for Ray.

A cluster started with token authentication (RAY_AUTH_MODE=token) takes only processes that hold its token; Ray
reads the token from RAY_AUTH_TOKEN, else the file RAY_AUTH_TOKEN_PATH names, else ~/.ray/auth_token. A cluster
that will not take this process, or cannot be reached, is one sentence saying what to set (a SettingError)."""
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import ray
import torch
from ray.exceptions import AuthenticationError

import dlplay
from dlplay.checkpoint import write_atomically
from dlplay.data import load_dataset, read_dataset
from dlplay.limits import SettingError
from dlplay.training.jobs.progress import Progress
from dlplay.training.jobs.runner import STATE_FILE, JobRunner, read_resume_point
from dlplay.training.jobs.spec import JobSpec, RunStatus

log = logging.getLogger(__name__)
POLL_SECONDS = 0.25
CALL_TIMEOUT = 60.0


def refusal(address: str, token_mode: bool, token_found: bool = True) -> str:
    """What to set when the cluster at `address` will not take this process, given Ray's mode and token here."""
    if not token_mode:
        return (f"the Ray cluster at {address} asks for a token: set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN to its "
                "token (or RAY_AUTH_TOKEN_PATH to a file that holds it)")
    if not token_found:
        return (f"RAY_AUTH_MODE=token, but no Ray token was found: set RAY_AUTH_TOKEN to the token of the cluster at "
                f"{address} (or RAY_AUTH_TOKEN_PATH to a file that holds it)")
    return (f"the Ray cluster at {address} refused this token: set RAY_AUTH_TOKEN to the token it was started with "
            "(or RAY_AUTH_TOKEN_PATH to a file that holds it); `ray get-auth-token` on its head prints it")


def unreachable(address: str) -> str:
    """The sentence for a Ray address where no cluster answers."""
    return (f"could not connect to the Ray cluster at {address}: check that the cluster is running and that this is "
            "its head's address")


def _refused_token(err: BaseException | None) -> bool:
    """Whether a failed connection was the cluster refusing this process's token (or its lack of one): Ray retries,
    then raises ConnectionError from a RuntimeError that quotes the refusal."""
    while err is not None:
        if isinstance(err, AuthenticationError) or "InvalidAuthToken" in str(err):
            return True
        err = err.__cause__ or err.__context__
    return False


def connect(address: str, **init_args) -> None:
    """Join the Ray cluster at `address` ('local' starts a Ray runtime here); a refusal raises SettingError."""
    package = str(Path(dlplay.__file__).parent)  # shipped to every node, so workers run this very code
    token_mode = os.environ.get("RAY_AUTH_MODE", "").lower() == "token"
    try:
        ray.init(address=None if address == "local" else address, runtime_env={"py_modules": [package]},
                 ignore_reinit_error=True, include_dashboard=False, **init_args)
    except AuthenticationError:  # token mode, and no token anywhere: raised before Ray tries to connect
        raise SettingError(refusal(address, token_mode, token_found=False)) from None
    except ConnectionError as err:
        raise SettingError(refusal(address, token_mode) if _refused_token(err) else unreachable(address)) from None


@ray.remote(max_concurrency=4)  # threads: poll and command calls are served while the job trains
class TrainingActor:
    """One job inside a Ray worker process; events and files wait here until the server polls for them."""

    def __init__(self):
        self._events: list[dict] = []
        self._files: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self._runner: JobRunner | None = None

    def start(self, spec_plain: dict, dataset: bytes | None, state: bytes | None) -> None:
        """Prepare the job from its spec (and the dataset and checkpoint files' contents), then train on a thread."""
        spec = JobSpec.from_plain(spec_plain)
        torch.set_num_threads(spec.threads)
        try:
            with tempfile.TemporaryDirectory(prefix="dlplay-ray-") as scratch:  # read into memory, then gone
                if dataset is not None:
                    data = read_dataset(write_atomically(Path(scratch) / "dataset.safetensors", dataset))
                else:
                    data = load_dataset(spec.data.name)
                resume = read_resume_point(write_atomically(Path(scratch) / STATE_FILE, state)) if state else None
            self._runner = JobRunner(spec, data, self._emit, self._deliver, resume)
        except Exception as err:  # the data or the model could not be prepared: one sentence for the page
            self._emit({"type": "done", "status": RunStatus.FAILED.value,
                        "message": f"Training could not start: {err}"})
            return
        threading.Thread(target=self._runner.run, daemon=True, name="dlplay-ray-job").start()

    def _emit(self, event: dict) -> None:
        with self._lock:
            self._events.append(event)

    def _deliver(self, name: str, data: bytes) -> None:
        with self._lock:
            self._files[name] = data

    def poll(self, cursor: int) -> list[dict]:
        """The events after the first `cursor` ones."""
        with self._lock:
            return self._events[cursor:]

    def read_file(self, name: str) -> bytes:
        """A delivered file's contents."""
        with self._lock:
            return self._files[name]

    def command(self, cmd: str, args: dict) -> None:
        """pause, resume or stop (threads are fixed by the job's Ray resources)."""
        if self._runner and cmd in ("pause", "resume", "stop"):
            getattr(self._runner, cmd)()


class RayHandle:
    """The server's end of one Ray job: a thread polls the actor, copies its files into the run's folder and
    folds its events into the progress."""

    def __init__(self, actor, run_dir: Path, progress: Progress, on_exit: Callable[["RayHandle"], None]):
        self.actor, self.run_dir, self._progress, self._on_exit = actor, run_dir, progress, on_exit
        self.done = False
        self.poller = threading.Thread(target=self._poll, daemon=True, name="dlplay-ray-poller")
        self.poller.start()

    def command(self, cmd: str, **args) -> None:
        """Send pause, resume or stop to the actor (without waiting)."""
        self.actor.command.remote(cmd, args)

    def _fetch(self, name: str) -> None:
        write_atomically(self.run_dir / name, ray.get(self.actor.read_file.remote(name), timeout=CALL_TIMEOUT))

    def _poll(self) -> None:
        cursor = 0
        try:
            while not self.done:
                events = ray.get(self.actor.poll.remote(cursor), timeout=CALL_TIMEOUT)
                cursor += len(events)
                for event in events:
                    for name in ([event["name"]] if event["type"] == "file" else event.get("files", [])):
                        self._fetch(name)  # on disk before the page hears of it
                    self._progress.apply(event)
                    self.done = self.done or event["type"] == "done"
                time.sleep(POLL_SECONDS)
        except Exception:  # the actor is gone or sent what the server cannot read: never a silent slot leak
            log.exception("lost the Ray training actor")
            self._progress.crashed()
        finally:
            ray.kill(self.actor)
            self._on_exit(self)

    def kill(self) -> None:
        """End the actor at once."""
        ray.kill(self.actor)


class RayBackend:
    """Starts each job as an actor on the Ray cluster at `address` ('local' starts a Ray runtime on this machine); a
    cluster that will not take this process raises SettingError."""

    name = "Ray cluster"
    shares_cores = False  # Ray gives each actor the CPUs it asked for

    def __init__(self, address: str, cores_per_job: int = 2, **init_args):
        self.cores_per_job = cores_per_job
        self._handles: list[RayHandle] = []
        connect(address, **init_args)

    def capacity(self) -> int:
        """Jobs the cluster can hold at once: one per GPU, else one per `cores_per_job` CPUs."""
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        return gpus or max(1, int(resources.get("CPU", 1)) // self.cores_per_job)

    def job_threads(self) -> int:
        """CPU threads (and Ray CPUs) each job asks for."""
        return self.cores_per_job

    def launch(self, spec: JobSpec, run_dir: Path, dataset_file: Path | None, progress: Progress,
               on_exit: Callable[[RayHandle], None]) -> RayHandle:
        """Create the job's actor and start it; its events flow into `progress`."""
        gpus = 1 if ray.cluster_resources().get("GPU", 0) and spec.config.device != "cpu" else 0
        spec = spec.with_threads(self.cores_per_job)  # the actor sees its GPU as cuda:0: no index to pass
        actor = TrainingActor.options(num_cpus=self.cores_per_job, num_gpus=gpus).remote()
        state = run_dir / STATE_FILE
        actor.start.remote(spec.to_plain(), dataset_file.read_bytes() if dataset_file else None,
                           state.read_bytes() if spec.resume else None)
        handle = RayHandle(actor, run_dir, progress, on_exit)
        self._handles = [h for h in self._handles if h.poller.is_alive()] + [handle]
        return handle

    def shutdown(self) -> None:
        """Wait for the pollers to let go of their actors, then disconnect (this server's actors end with it)."""
        for handle in self._handles:
            handle.poller.join(timeout=CALL_TIMEOUT)
        ray.shutdown()
