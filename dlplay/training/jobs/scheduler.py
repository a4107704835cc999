"""A fair queue of training jobs over a backend's slots: jobs start in arrival order, every run has an owner (a
browser), each browser has at most RUNS_PER_BROWSER active runs, and local workers share the CPU cores so that
together they never use more threads than the machine has."""
import math
import threading
import time
import weakref
from pathlib import Path

import torch
from torch import nn

from dlplay.checkpoint import ModelCard, load_model
from dlplay.data import Dataset, data_problem
from dlplay.device import usable_cores
from dlplay.evaluate import Evaluation, evaluation_from_bytes
from dlplay.training.jobs.progress import Progress, RunSnapshot
from dlplay.training.jobs.runner import EVALUATION_FILE, MODEL_FILE, ResumePoint, build_run_model
from dlplay.training.jobs.spec import DataRef, JobSpec, RunConfig, RunStatus, new_run_id, training_split
from dlplay.training.jobs.store import Budget, RunStore

CORES_PER_CPU_SLOT = 2  # the default CNN gains ~1.5x from a 2nd thread, less from more (see bench/crowd_bench.py)
QUEUE_MAX = 20  # runs waiting at once, all browsers together (DLPLAY_QUEUE_MAX)
RUNS_PER_BROWSER = 1  # runs queued, running or paused at once for one browser (DLPLAY_RUNS_PER_BROWSER)
START_SECONDS = 1.0  # a job's set-up before its first batch, for queue estimates
IDLE_CHECK_SECONDS = 1.0
IDLE_TIMEOUT = 900.0  # seconds a run may go unwatched by its owner before it is stopped (DLPLAY_IDLE_TIMEOUT)


class AlreadyTraining(ValueError):
    """A browser asked for more active runs than its quota."""


class NotYourRun(PermissionError):
    """A resume of a run that another browser started."""


class ServerFull(ValueError):
    """The queue holds as many runs as the server allows; the message says when to try again."""


class RunAlreadyLive(ValueError):
    """A resume of a run that a live job already trains (two sessions pressed Resume on the same run)."""


class DataProblem(ValueError):
    """The run's images cannot teach or test a model; the message says why and what to do."""


def default_capacity(cores: int, gpus: int) -> int:
    """How many runs train at once: one per GPU, else one per CORES_PER_CPU_SLOT cores (at least one)."""
    return gpus if gpus else max(1, cores // CORES_PER_CPU_SLOT)


def resumable(snapshot: RunSnapshot, epochs: int) -> bool:
    """Whether an ended run can go on from its last checkpoint: it crashed or was stopped after a saved epoch and
    before its last."""
    return snapshot.status in (RunStatus.CRASHED, RunStatus.STOPPED) and 0 < snapshot.checkpoint_epoch < epochs


def _forget_finished(store: RunStore, run_id: str, progress: Progress) -> None:
    """When nobody holds a run any more (its session ended): an ended run's files go at the store's next prune; a
    resumable one stays (until the store's budget)."""
    snapshot = progress.snapshot()
    if not snapshot.status.active and not resumable(snapshot, progress.epochs_wanted):
        store.forget(run_id)


class Job:
    """A run as the server knows it: its spec and owner (and what the owner's quota counts against), its live
    progress, its model and evaluation once done."""

    def __init__(self, scheduler: "Scheduler", spec: JobSpec, owner: str, quota_key: str, dataset_name: str,
                 expected_images: int, progress: Progress):
        self.spec, self.run_id, self.config = spec, spec.run_id, spec.config
        self.owner, self.quota_key = owner, quota_key
        self.dataset_name, self.expected_images, self.progress = dataset_name, expected_images, progress
        self._scheduler, self.handle = scheduler, None
        self.last_seen = time.monotonic()
        self.evicted = False  # the store's budget removed the run's files (its page says so)
        self._evaluation: Evaluation | None = None
        self._model: tuple[nn.Module, ModelCard] | None = None
        weakref.finalize(self, _forget_finished, scheduler.store, self.run_id, progress)

    @property
    def folder(self) -> Path:
        """The run's folder in the store."""
        return self._scheduler.store.run_dir(self.run_id)

    def snapshot(self) -> RunSnapshot:
        """A consistent copy of the run's progress, with its queue place while queued and its evaluation once done."""
        if self.progress.status is RunStatus.QUEUED:
            return self.progress.snapshot(None, **self._scheduler.queue_info(self))
        return self.progress.snapshot(self.evaluation())

    def touch(self) -> None:
        """The owner's page is watching this run (runs nobody watches can be stopped after an idle timeout)."""
        self.last_seen = time.monotonic()

    @property
    def pictures_shared(self) -> bool:
        """Whether the owner lets people who open this run's link see the pictures it trained on."""
        return bool(self._scheduler.store.meta(self.run_id).get("share_pictures"))

    def share_pictures(self, shared: bool) -> None:
        """Let (or stop letting) people who open this run's link see the pictures it trained on."""
        self._scheduler.store.share_pictures(self.run_id, shared)

    def evaluation(self) -> Evaluation | None:
        """The test-set evaluation, once the worker has delivered it (None once the store's budget removed it)."""
        if self._evaluation is None and EVALUATION_FILE in self.progress.files and not self.evicted:
            try:
                self._evaluation = evaluation_from_bytes((self.folder / EVALUATION_FILE).read_bytes())
            except FileNotFoundError:
                return None  # removed by the budget just now: the next tidy marks the job
        return self._evaluation

    def model(self) -> tuple[nn.Module, ModelCard]:
        """The trained model (in eval mode, on the CPU) and its card, read from the run's model file."""
        if self._model is None:
            self._model = load_model(self.model_file())
        return self._model

    def model_file(self) -> Path:
        """The run's model as a .safetensors file (exists once the run has ended with a model)."""
        return self.folder / MODEL_FILE

    def pause(self) -> None:
        """Hold the run before its next batch."""
        self._scheduler.command(self, RunStatus.PAUSED, "pause")

    def resume(self) -> None:
        """Continue a paused run."""
        self._scheduler.command(self, RunStatus.RUNNING, "resume")

    def stop(self) -> None:
        """Stop the run before its next batch, or take it out of the queue."""
        self._scheduler.stop(self)


class Scheduler:
    """Owns the queue and the running jobs of one server; a backend starts the workers."""

    def __init__(self, backend, store: RunStore, capacity: int | None = None, cores: int | None = None,
                 gpus: int | None = None, idle_timeout: float = 0.0, budget: Budget = Budget(),
                 queue_max: int = QUEUE_MAX, runs_per_browser: int = RUNS_PER_BROWSER):
        self.backend, self.store, self.budget = backend, store, budget
        self.cores = cores or usable_cores()
        self.gpus = torch.cuda.device_count() if gpus is None else gpus
        self.capacity = capacity or backend.capacity() or default_capacity(self.cores, self.gpus)
        self.idle_timeout, self.queue_max, self.runs_per_browser = idle_timeout, queue_max, runs_per_browser
        self._lock = threading.RLock()
        self._queue: list[Job] = []
        self._running: dict[Job, object] = {}  # job -> the backend's handle
        self._gpu_of: dict[Job, int] = {}
        self._jobs: weakref.WeakValueDictionary[str, Job] = weakref.WeakValueDictionary()
        self._speed: dict[str, float] = {}  # images/s last seen per model, for queue estimates
        self.closed = threading.Event()  # set by shutdown()
        self.labs = None  # the short-job lane for labs (lane.LabLane), when the server has one
        if idle_timeout > 0:
            threading.Thread(target=self._watch_idle, daemon=True, name="dlplay-idle-runs").start()

    def submit(self, config: RunConfig, dataset: Dataset, owner: str, *, registered: bool, quota_key: str = "",
               run_id: str | None = None, resume: ResumePoint | None = None, pause_at_step: int | None = None) -> Job:
        """Queue a run (or the resumption of one) for the browser `owner`; it starts when a slot is free.

        `registered`: the dataset is one of dlplay's registered datasets, which a worker loads by name; any other
        (a user's zip) is stored as a file for the worker. `quota_key`: what the run counts against (default: the
        owner). `pause_at_step`: the run pauses by itself once it has done this many steps (until resumed or
        stopped). An impossible model raises ValueError, a run past the quota AlreadyTraining, a resume of another
        browser's run NotYourRun, a run id that a live job already has RunAlreadyLive (one live job per run, however
        many sessions ask at once), a full queue ServerFull.
        """
        build_run_model(config, dataset)  # refuse an impossible architecture before anything is queued
        train, _ = training_split(config, dataset)
        problem = data_problem(dataset.class_names, train, dataset.test)
        if problem:
            raise DataProblem(problem)
        quota_key = quota_key or owner
        if run_id is not None and self.store.owner(run_id) not in (None, owner):
            raise NotYourRun("this run belongs to another browser; only the browser that started it can resume it")
        self._refuse_live_run(run_id)
        self._refuse_past_the_quota(quota_key)
        spec = JobSpec(run_id or new_run_id(), config, DataRef(dataset.name), resume=resume is not None,
                       pause_at_step=pause_at_step)
        spec = self.store.record(spec, None if registered else dataset, owner)
        train_images = len(dataset.train) * min(1.0, config.train_fraction) * (1 - config.validation_fraction)
        progress = Progress(config.epochs, config.batch_size, *((resume.batches, resume.epochs) if resume else ()))
        job = Job(self, spec, owner, quota_key, dataset.name, int(train_images * config.epochs), progress)
        with self._lock:
            self._refuse_live_run(run_id)
            self._refuse_past_the_quota(quota_key)
            self._refuse_past_the_queue_cap()
            self._jobs[spec.run_id] = job
            self._queue.append(job)
            self._dispatch()
        return job

    def _refuse_past_the_quota(self, quota_key: str) -> None:
        with self._lock:
            active = sum(j.quota_key == quota_key and j.progress.status.active for j in [*self._running, *self._queue])
        if active >= self.runs_per_browser:
            raise AlreadyTraining(f"this browser already has {active} run(s) training or waiting, as many as the "
                                  f"server allows one browser; stop one first")

    def _refuse_past_the_queue_cap(self) -> None:
        if len(self._queue) < self.queue_max:
            return
        start = self._expected_start(len(self._queue) + 1)
        when = (f"in about {max(1, math.ceil(start / 60))} minute(s)" if start != float("inf")
                else "in a few minutes")
        raise ServerFull(f"the server is full: {len(self._queue)} runs are waiting for a training slot; try again "
                         f"{when}")

    def _refuse_live_run(self, run_id: str | None) -> None:
        live = self._jobs.get(run_id) if run_id else None
        if live is not None and live.progress.status.active:
            raise RunAlreadyLive("this run is already training, resumed from another tab or session")

    def job(self, run_id: str) -> Job | None:
        """The job with this run id, if a session still holds it or it is active."""
        return self._jobs.get(run_id)

    def active_job(self, owner: str) -> Job | None:
        """The owner's queued or running job, if any."""
        with self._lock:
            return next((j for j in [*self._running, *self._queue] if j.owner == owner), None)

    def running_jobs(self) -> list[Job]:
        """The jobs that hold a slot now."""
        with self._lock:
            return list(self._running)

    def command(self, job: Job, status: RunStatus, cmd: str) -> None:
        """Send pause or resume to a running job, showing the new status at once."""
        with self._lock:
            handle = self._running.get(job)
            if handle is None or job.progress.status not in (RunStatus.RUNNING, RunStatus.PAUSED):
                return
            job.progress.set(status, "Paused." if status is RunStatus.PAUSED else "Training.")
            handle.command(cmd)

    def stop(self, job: Job) -> None:
        """Stop a running job before its next batch, or cancel a queued one."""
        with self._lock:
            if job in self._queue:
                self._queue.remove(job)
                reason = job.progress.stop_reason
                job.progress.set(RunStatus.STOPPED, f"{reason} Cancelled while waiting for a training slot."
                                 if reason else "Cancelled while waiting for a training slot.")
            elif job in self._running:
                self._running[job].command("stop")

    def queue_info(self, job: Job) -> dict:
        """A queued job's place (1 = next) and, when speeds are known, the seconds until it should start."""
        with self._lock:
            if job not in self._queue:
                return {}
            position = self._queue.index(job) + 1
            start = self._expected_start(position)
        return {"queue_position": position, "expected_start_seconds": None if start == float("inf") else start}

    def _expected_start(self, position: int) -> float:
        """Seconds until the job at this place in the queue (1 = next) should start; inf while speeds are unknown
        (called with the lock held)."""
        free_at = sorted([self._remaining(j) for j in self._running] + [0.0] * (self.capacity - len(self._running)))
        for ahead in self._queue[:position - 1]:
            start = free_at.pop(0)
            free_at = sorted([*free_at, start + self._duration(ahead)])
        return free_at[0]

    def lab_threads(self) -> int:
        """CPU threads for a lab starting now: one beside training runs (they hold the cores), else every core."""
        with self._lock:
            return 1 if self._running else self.cores

    def shutdown(self) -> None:
        """Cancel the queue and end every worker, the labs' too (the server is stopping)."""
        self.closed.set()
        if self.labs is not None:
            self.labs.shutdown()
        with self._lock:
            for job in self._queue:
                job.progress.set(RunStatus.STOPPED, "The server stopped before this run could start.")
            self._queue.clear()
            for handle in self._running.values():
                handle.kill()
        self.backend.shutdown()

    def _duration(self, job: Job) -> float:
        speed = self._speed.get(job.config.model) or (max(self._speed.values()) if self._speed else None)
        return START_SECONDS + job.expected_images / speed if speed else float("inf")

    def _remaining(self, job: Job) -> float:
        snapshot = job.progress.snapshot()
        if snapshot.eta_seconds is not None:
            return snapshot.eta_seconds
        return self._duration(job)

    def _dispatch(self) -> None:
        """Start queued jobs while slots are free (called with the lock held)."""
        from dlplay.training.jobs.gpus import next_start

        while self._queue and not self.closed.is_set():
            # Local workers: GPU runs share the GPUs, CPU runs have slots of their own (gpus.next_start); a Ray
            # cluster places its actors on its GPUs itself, so there every run takes one of `capacity` slots.
            gpus = self.gpus if self.backend.shares_cores else 0
            start = next_start([job.config.device != "cpu" for job in self._queue], list(self._gpu_of.values()),
                               gpus, self.capacity, default_capacity(self.cores, 0) if gpus else self.capacity)
            if start is None:
                break
            index, gpu = start
            job = self._queue.pop(index)
            self._gpu_of[job] = gpu
            threads = (self._cpu_shares(len(self._running) + 1)[-1] if self.backend.shares_cores
                       else self.backend.job_threads())
            job.progress.set(RunStatus.RUNNING, "Starting a worker process.")
            folder = self.store.run_dir(job.run_id)
            dataset_file = self.store.dataset_file(job.spec.data.file_key) if job.spec.data.file_key else None
            job.handle = self._running[job] = self.backend.launch(
                job.spec.with_threads(threads, gpu), folder, dataset_file, job.progress,
                lambda _handle, job=job: self._finished(job))
        self._rebalance()

    def _cpu_shares(self, workers: int) -> list[int]:
        """Threads for each of `workers` local workers: the cores split as evenly as possible, at least one each.

        Why it matters: an OpenMP thread pool spins while waiting for its peers, so two workers that each use every
        core fight over them and both collapse (measured here: 2,250 images/s alone, 580 each with two such
        workers, against 1,400 each with one thread per worker).
        """
        base, extra = divmod(self.cores, workers)
        return [max(1, base + (1 if i < extra else 0)) for i in range(workers)]

    def _rebalance(self) -> None:
        if not self.backend.shares_cores or not self._running:
            return
        for handle, threads in zip(self._running.values(), self._cpu_shares(len(self._running)), strict=True):
            handle.command("threads", n=threads)

    def _finished(self, job: Job) -> None:
        """A worker has gone (its job ended or it died): free its slot and start the next job."""
        snapshot = job.progress.snapshot()
        with self._lock:
            self._running.pop(job, None)
            self._gpu_of.pop(job, None)
            if snapshot.batches:
                self._speed[job.config.model] = snapshot.batches[-1].images_per_sec
            self._dispatch()
        self.tidy()

    def tidy(self) -> None:
        """Delete the files of runs nobody holds any more, and keep the store within its budget: never a run that
        trains, the runs whose owners watched them lately last. A removed run that a session holds is marked."""
        with self._lock:
            active = {j.run_id for j in [*self._running, *self._queue]}
            held = dict(self._jobs)
        now, lately = time.monotonic(), self.idle_timeout or IDLE_TIMEOUT
        watched = {run_id for run_id, job in held.items() if now - job.last_seen < lately}
        for run_id in self.store.prune(self.budget, active, watched):
            if run_id in held:
                held[run_id].evicted = True

    def _watch_idle(self) -> None:
        while not self.closed.wait(IDLE_CHECK_SECONDS):
            now = time.monotonic()
            with self._lock:
                idle = [j for j in [*self._running, *self._queue] if now - j.last_seen > self.idle_timeout]
            for job in idle:
                minutes = max(1, round(self.idle_timeout / 60))
                job.progress.stopping_because(f"Nobody watched this run for {minutes} minute(s), so it stopped to "
                                              f"free its training slot.")
                self.stop(job)
