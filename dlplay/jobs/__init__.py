"""Training runs as jobs: the server renders, workers train (local processes, or Ray actors on a cluster)."""
from .progress import RunSnapshot
from .runner import ResumePoint
from .scheduler import AlreadyTraining, DataProblem, Job, Scheduler
from .settings import ServerSettings, SettingError, start_scheduler
from .spec import REMEDIES, RunConfig, RunStatus, check_run_id, new_run_id
from .store import Budget, RunStore

__all__ = ["REMEDIES", "AlreadyTraining", "Budget", "DataProblem", "Job", "ResumePoint", "RunConfig", "RunSnapshot",
           "RunStatus", "RunStore", "Scheduler", "ServerSettings", "SettingError", "check_run_id", "new_run_id",
           "start_scheduler"]
