"""Training runs as jobs: the server renders, workers train (local processes, or Ray actors on a cluster)."""
from dlplay.limits import SettingError
from dlplay.training.jobs.progress import RunSnapshot
from dlplay.training.jobs.runner import ResumePoint
from dlplay.training.jobs.scheduler import (
    AlreadyTraining,
    DataProblem,
    Job,
    NotYourRun,
    RunAlreadyLive,
    Scheduler,
    ServerFull,
)
from dlplay.training.jobs.settings import ServerSettings, start_scheduler
from dlplay.training.jobs.spec import REMEDIES, RunConfig, RunStatus, check_run_id, new_run_id
from dlplay.training.jobs.store import Budget, RunStore

__all__ = ["REMEDIES", "AlreadyTraining", "Budget", "DataProblem", "Job", "NotYourRun", "ResumePoint", "RunAlreadyLive",
           "RunConfig", "RunSnapshot", "RunStatus", "RunStore", "Scheduler", "ServerSettings", "ServerFull",
           "SettingError", "check_run_id", "new_run_id", "start_scheduler"]
