"""Server settings for training jobs, read from the environment, and the scheduler they describe."""
import os
from dataclasses import dataclass, field
from pathlib import Path

from dlplay.limits import number_from_env
from dlplay.training.jobs.lane import LAB_SLOTS, LabLane
from dlplay.training.jobs.scheduler import IDLE_TIMEOUT, QUEUE_MAX, RUNS_PER_BROWSER, Scheduler
from dlplay.training.jobs.store import Budget, RunStore, default_runs_dir


@dataclass(frozen=True)
class ServerSettings:
    """How the server runs training jobs (each field names its environment variable)."""

    slots: int | None = None  # DLPLAY_SLOTS: runs at once; default one per GPU, else one per 2 CPU cores
    idle_timeout: float = IDLE_TIMEOUT  # DLPLAY_IDLE_TIMEOUT: stop a run its owner left unwatched this long (0: never)
    budget: Budget = field(default_factory=Budget)  # DLPLAY_RUNS_MAX_MB, DLPLAY_RUNS_MAX_DAYS
    ray_address: str | None = None  # DLPLAY_RAY_ADDRESS: a Ray cluster ('local' starts one here); unset: local workers
    runs_dir: Path = field(default_factory=default_runs_dir)  # DLPLAY_RUNS_DIR
    queue_max: int = QUEUE_MAX  # DLPLAY_QUEUE_MAX: runs waiting for a slot at once; past it, "the server is full"
    runs_per_browser: int = RUNS_PER_BROWSER  # DLPLAY_RUNS_PER_BROWSER: one browser's runs training or waiting at once
    lab_slots: int = LAB_SLOTS  # DLPLAY_LAB_SLOTS: labs (imports, After-training labs) at once, apart from training

    @classmethod
    def from_env(cls, env=os.environ) -> "ServerSettings":
        """The settings the environment gives (bad values raise SettingError)."""
        number = number_from_env
        budget = Budget(number(env, "DLPLAY_RUNS_MAX_MB", float, Budget.max_bytes / 1024**2, 0) * 1024**2,
                        number(env, "DLPLAY_RUNS_MAX_DAYS", float, Budget.max_age_seconds / 86400, 0) * 86400)
        return cls(number(env, "DLPLAY_SLOTS", int, None, 1),
                   number(env, "DLPLAY_IDLE_TIMEOUT", float, IDLE_TIMEOUT, 0), budget,
                   env.get("DLPLAY_RAY_ADDRESS") or None,
                   Path(env["DLPLAY_RUNS_DIR"]) if env.get("DLPLAY_RUNS_DIR") else default_runs_dir(),
                   number(env, "DLPLAY_QUEUE_MAX", int, QUEUE_MAX, 1),
                   number(env, "DLPLAY_RUNS_PER_BROWSER", int, RUNS_PER_BROWSER, 1),
                   number(env, "DLPLAY_LAB_SLOTS", int, LAB_SLOTS, 1))


def start_scheduler(settings: ServerSettings) -> Scheduler:
    """A scheduler over local worker processes, or over Ray when an address is set; its labs always run in local
    worker processes (they are short, and read files the server holds)."""
    from dlplay.training.jobs.local_backend import LocalBackend
    if settings.ray_address:
        from dlplay.training.jobs.ray_backend import RayBackend
        backend = RayBackend(settings.ray_address)
    else:
        backend = LocalBackend()
    scheduler = Scheduler(backend, RunStore(settings.runs_dir), settings.slots, idle_timeout=settings.idle_timeout,
                          budget=settings.budget, queue_max=settings.queue_max,
                          runs_per_browser=settings.runs_per_browser)
    local = isinstance(backend, LocalBackend)
    scheduler.labs = LabLane(backend if local else LocalBackend(), settings.runs_dir, scheduler.lab_threads,
                             settings.lab_slots, owns_backend=not local)
    return scheduler
