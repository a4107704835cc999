"""One home for what pages share: cached server-wide resources (datasets, the training scheduler) and this
session's runs. Pages ask here instead of reaching into st.session_state with string keys."""
import atexit
import gc
import threading
import uuid
from collections.abc import Callable

import streamlit as st

from dlplay.classify import load_bundled_model
from dlplay.data import Dataset, load_dataset, read_dataset
from dlplay.training.jobs import Job, Scheduler, ServerSettings, start_scheduler
from ui.i18n import _

SESSION, RUN, RUNS, DATASETS = "state.session", "state.run", "state.runs", "state.run_datasets"
MAX_KEPT_RUNS = 10
GC_SECONDS = 60.0  # a full garbage collection this often (.streamlit/config.toml turns off the one after each rerun)


def collect_garbage_now_and_then(runs: Scheduler) -> None:
    """Free ended sessions (their state is full of reference cycles) once a minute instead of after every rerun:
    a full collection holds the GIL for 0.1-0.4 s with torch loaded, and a training page reruns every 2 s. Then
    the files of the runs those sessions held go. Ends with the scheduler."""
    while not runs.closed.wait(GC_SECONDS):
        gc.collect()
        runs.tidy()


_STARTED: list[Scheduler] = []  # every scheduler this process started, to end with it


def shutdown_schedulers() -> None:
    """End every scheduler this process started, with its queue and workers (the server is stopping)."""
    while _STARTED:
        _STARTED.pop().shutdown()


atexit.register(shutdown_schedulers)


@st.cache_resource(show_spinner=False)
def scheduler() -> Scheduler:
    """The server's one training scheduler; its workers end with the server. Bad settings raise SettingError."""
    started = start_scheduler(ServerSettings.from_env())
    _STARTED.append(started)
    threading.Thread(target=collect_garbage_now_and_then, args=(started,), daemon=True, name="dlplay-gc").start()
    return started


@st.cache_resource(show_spinner=False)
def _loaded_dataset(name: str) -> Dataset:
    return load_dataset(name)


_LOADED: set[str] = set()  # the datasets this server has loaded: calls for them need no spinner


def dataset(name: str) -> Dataset:
    """A registered dataset, loaded once per server and shared read-only; the first load shows a spinner (after
    half a second, as reading a downloaded dataset takes), later calls (several per rerun) go straight to the
    cache without starting one."""
    if name in _LOADED:
        return _loaded_dataset(name)
    with st.spinner(_("Loading the dataset (the first time it is downloaded)...")):
        loaded = _loaded_dataset(name)
    _LOADED.add(name)
    return loaded


@st.cache_resource(show_spinner=False)
def bundled_model():
    """The digit model shipped in the package, loaded once per server and shared read-only: (model, card)."""
    return load_bundled_model()


def session_id() -> str:
    """This browser session's id: the owner of its training runs."""
    return st.session_state.setdefault(SESSION, uuid.uuid4().hex)


def current_run() -> Job | None:
    """The run this session started last (or found again through the URL)."""
    return st.session_state.get(RUN)


def set_current_run(job: Job) -> None:
    """Make `job` the session's current run."""
    st.session_state[RUN] = job


def finished_runs() -> list[Job]:
    """This session's ended runs, oldest first (at most MAX_KEPT_RUNS)."""
    return st.session_state.get(RUNS, [])


BUNDLED = "bundled"  # trained_models' key for the bundled digit model; a run's key is its run id


def evaluated_runs() -> list[Job]:
    """This session's ended runs that have a trained model (a run stopped before its first epoch has none)."""
    return [r for r in finished_runs() if r.snapshot().evaluation is not None]


def trained_models() -> dict[str, tuple[str, Callable[[], tuple]]]:
    """The models a page can offer, by a key that does not change with the language: the bundled digit model, then
    this session's evaluated runs; each as (its label in the page's language, a loader returning (model, card))."""
    runs = evaluated_runs()
    return {BUNDLED: (_("the bundled digit model (small CNN trained on mnist5k)"), bundled_model),
            **{r.run_id: (_("run #{number} from the CNN trainer: {model} on {dataset}").format(
                number=i, model=r.config.model, dataset=r.dataset_name), r.model) for i, r in enumerate(runs, start=1)}}


def keep_finished(job: Job) -> None:
    """Add an ended run to the session's list (the oldest is dropped past MAX_KEPT_RUNS; its files go with it)."""
    runs = st.session_state.setdefault(RUNS, [])
    if job not in runs:
        runs.append(job)
        del runs[:-MAX_KEPT_RUNS]


def user_dataset(key: str) -> Dataset:
    """A user's images stored in the run store under `key`, read once per session (and released with it)."""
    cached = st.session_state.setdefault(DATASETS, {})
    if key not in cached:
        cached[key] = read_dataset(scheduler().store.dataset_file(key))
    return cached[key]


def run_dataset(job: Job) -> Dataset:
    """The dataset a run trained on: a registered one, or the user's images from the run store."""
    key = job.spec.data.file_key
    return dataset(job.spec.data.name) if key is None else user_dataset(key)
