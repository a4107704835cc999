"""The run store on disk: a folder per run (settings, checkpoint, model, evaluation, log) and the datasets of users'
zips, kept within a size and age budget."""
import hashlib
import json
import os
import shutil
import stat
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from dlplay.checkpoint import ModelFileError, write_atomically
from dlplay.data import Dataset, dataset_bytes, default_data_dir
from dlplay.training.jobs.runner import STATE_FILE, ResumePoint, read_resume_point
from dlplay.training.jobs.spec import DataRef, JobSpec, check_run_id

DATASETS_FOLDER = "_datasets"
EVICTED_FOLDER = "_evicted"  # an empty file per run the budget removed, so that its link can say what happened
META_FILE = "run.json"


def default_runs_dir() -> Path:
    """Where runs live: $DLPLAY_RUNS_DIR, else ~/.cache/dlplay/runs."""
    return Path(os.environ.get("DLPLAY_RUNS_DIR") or default_data_dir().parent / "runs")


@dataclass(frozen=True)
class Budget:
    """How much the run store may hold: runs beyond it are removed, least recently used first."""

    max_bytes: int = 2 * 1024**3
    max_age_seconds: float = 7 * 24 * 3600


def _stats(folder: Path) -> list[os.stat_result]:
    """The stat of a folder and of everything under it that still exists (another server sharing the folder may
    be deleting a run while this one looks)."""
    found = []
    for path in [folder, *folder.rglob("*")]:
        try:
            found.append(path.stat())
        except FileNotFoundError:
            continue
    return found


def folder_bytes(folder: Path) -> int:
    """Total size of the files under a folder."""
    return sum(s.st_size for s in _stats(folder) if stat.S_ISREG(s.st_mode))


def last_used(folder: Path) -> float:
    """The newest modification time of a folder or any file in it (0 for a folder that is gone)."""
    return max((s.st_mtime for s in _stats(folder)), default=0.0)


class RunStore:
    """Run folders and dataset files under one root."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root or default_runs_dir())
        self._lock = threading.Lock()  # recording a run and pruning never interleave
        self._forgotten: deque[str] = deque()  # runs to delete at the next prune (see forget)

    def run_dir(self, run_id: str) -> Path:
        """The folder of a run id (a malformed id raises ValueError)."""
        return self.root / check_run_id(run_id)

    def _save_dataset(self, dataset: Dataset) -> str:
        """Store a dataset once (named by its content's hash) for workers to read; returns its key."""
        data = dataset_bytes(dataset)
        key = hashlib.sha256(data).hexdigest()[:24]
        path = self.dataset_file(key)
        if path.exists():
            path.touch()
        else:
            write_atomically(path, data)
        return key

    def dataset_file(self, key: str) -> Path:
        """Where the dataset with this key is stored."""
        if not key.isalnum():
            raise ValueError("not a dataset key")
        return self.root / DATASETS_FOLDER / f"{key}.safetensors"

    def record(self, spec: JobSpec, dataset: Dataset | None = None, owner: str | None = None) -> JobSpec:
        """Write the run's settings and owner into its folder, first storing `dataset` (a user's images) for the
        worker; returns the spec with the stored dataset's key. A resumed run keeps what its folder already says
        (when it was made, whether its pictures are shared)."""
        with self._lock:
            if dataset is not None:
                spec = replace(spec, data=DataRef(dataset.name, self._save_dataset(dataset)))
            meta = {"created": time.time(), "share_pictures": False, **self.meta(spec.run_id),
                    "config": spec.config.to_plain(), "data": asdict(spec.data), "owner": owner}
            write_atomically(self.run_dir(spec.run_id) / META_FILE, json.dumps(meta).encode())
        return spec

    def meta(self, run_id: str) -> dict:
        """What the run's folder says about it (settings, owner, created, share_pictures); {} if nothing readable."""
        try:
            meta = json.loads((self.run_dir(run_id) / META_FILE).read_text())
        except (OSError, ValueError):
            return {}
        return meta if isinstance(meta, dict) else {}

    def owner(self, run_id: str) -> str | None:
        """The browser that started the run (None for a run recorded without one)."""
        owner = self.meta(run_id).get("owner")
        return owner if isinstance(owner, str) else None

    def share_pictures(self, run_id: str, shared: bool) -> None:
        """Record whether the run's owner lets people who open its link see the pictures it trained on."""
        with self._lock:
            meta = self.meta(run_id)
            if meta:
                meta["share_pictures"] = shared
                write_atomically(self.run_dir(run_id) / META_FILE, json.dumps(meta).encode())

    def resume_point(self, run_id: str) -> ResumePoint | None:
        """The run's last checkpoint, or None when there is none; an unreadable one raises ModelFileError."""
        path = self.run_dir(run_id) / STATE_FILE
        if not path.exists():
            return None
        try:
            return read_resume_point(path)
        except (ValueError, TypeError, KeyError) as err:
            raise ModelFileError("the run's checkpoint could not be read") from err

    def touch(self, run_id: str) -> None:
        """Mark a run as just used, so that the budget removes it last."""
        folder = self.run_dir(run_id)
        if folder.exists():
            os.utime(folder)

    def forget(self, run_id: str) -> None:
        """Mark a run's folder for deletion at the next prune.

        Safe from a garbage-collection finalizer: it takes no lock. (A finalizer runs in whichever thread the
        collector interrupts, possibly one that holds this store's lock: deleting there would deadlock.)
        """
        self._forgotten.append(run_id)

    def total_bytes(self) -> int:
        """What the whole store takes on disk."""
        return folder_bytes(self.root) if self.root.exists() else 0

    def prune(self, budget: Budget, keep: set[str], last: set[str] = frozenset()) -> list[str]:
        """Remove runs older than the budget's age, then runs until the store fits its size: the least recently used
        first, the runs in `last` (their owners are here) only after all others, never the runs in `keep` (they
        train). Dataset files no remaining run uses go too. Returns the removed run ids, each left a tombstone."""
        with self._lock:
            if not self.root.exists():
                self._forgotten.clear()
                return []
            return self._prune(budget, keep, last)

    def _prune(self, budget: Budget, keep: set[str], last: set[str]) -> list[str]:
        while self._forgotten:
            shutil.rmtree(self.run_dir(self._forgotten.popleft()), ignore_errors=True)
        runs = [f for f in self.root.iterdir() if f.is_dir() and not f.name.startswith("_")]
        runs.sort(key=lambda folder: (folder.name in last, last_used(folder)))
        now, removed = time.time(), []
        total = self.total_bytes()
        for folder in runs:
            if folder.name in keep:
                continue
            if now - last_used(folder) > budget.max_age_seconds or total > budget.max_bytes:
                total -= folder_bytes(folder)
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder.name)
        for run_id in removed:
            write_atomically(self.root / EVICTED_FOLDER / run_id, b"")
        for tombstone in (self.root / EVICTED_FOLDER).glob("*"):
            if now - last_used(tombstone) > budget.max_age_seconds:
                tombstone.unlink(missing_ok=True)
        self._prune_datasets()
        return removed

    def evicted(self, run_id: str) -> bool:
        """Whether the store's budget removed this run."""
        return (self.root / EVICTED_FOLDER / check_run_id(run_id)).exists()

    def _prune_datasets(self) -> None:
        """Delete the dataset files that no run uses any more."""
        folder = self.root / DATASETS_FOLDER
        if not folder.exists():
            return
        used = set()
        for meta in self.root.glob(f"*/{META_FILE}"):
            try:
                used.add(json.loads(meta.read_text())["data"]["file_key"])
            except (OSError, ValueError, KeyError):
                continue
        for path in folder.glob("*.safetensors"):
            if path.stem not in used:
                path.unlink(missing_ok=True)
