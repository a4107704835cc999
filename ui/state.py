"""One home for state: cached server-wide resources (datasets, the training scheduler), and every page's session
state declared once, as TensorFlow Playground's `State` declares its properties: a `PageState` subclass per page lists
its entries with their defaults, under keys prefixed by the page. Pages read and write those attributes, never
st.session_state by string keys; their widgets' keys carry the same page prefix."""
import atexit
import gc
import threading
import uuid
import weakref
from collections.abc import Callable
from pathlib import Path

import streamlit as st

from dlplay.builder import ARTICLE_STACK
from dlplay.classify import BUNDLED_MODEL, load_bundled_model
from dlplay.data import Dataset, load_dataset, read_dataset
from dlplay.training.jobs import Job, Scheduler, ServerSettings, start_scheduler
from ui import browser
from ui.i18n import _

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


class DatasetHoldings:
    """The users' datasets that sessions hold in memory, counted by what each browser's quota counts against; a
    dataset leaves the count when its session lets it go."""

    def __init__(self):
        self._lock = threading.Lock()
        self._held: dict[str, weakref.WeakSet] = {}

    def count(self, quota_key: str, besides: Dataset | None = None) -> int:
        """How many datasets this browser's sessions hold, not counting `besides`."""
        with self._lock:
            return sum(d is not besides for d in self._held.get(quota_key, ()))

    def hold(self, quota_key: str, dataset: Dataset) -> None:
        """Count `dataset` against this browser until its session lets it go."""
        with self._lock:
            self._held.setdefault(quota_key, weakref.WeakSet()).add(dataset)


@st.cache_resource(show_spinner=False)
def dataset_holdings() -> DatasetHoldings:
    """The server's one count of the users' datasets in memory, per browser."""
    return DatasetHoldings()


class Field:
    """One entry of a page's session state: its default, or a factory for a fresh mutable one (stored on first read,
    so that changes to it last); its key is '<page>.<name>'."""

    def __init__(self, default=None, *, factory: Callable[[], object] | None = None):
        self.default, self.factory = default, factory

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, page: "PageState | None", owner: type):
        if page is None:
            return self
        key = owner.key(self.name)
        if self.factory is None:
            return st.session_state.get(key, self.default)
        if key not in st.session_state:
            st.session_state[key] = self.factory()
        return st.session_state[key]

    def __set__(self, page: "PageState", value) -> None:
        st.session_state[type(page).key(self.name)] = value


class PageState:
    """A page's session state, declared once: subclasses set `page` and list their Fields."""

    page = ""

    @classmethod
    def key(cls, name: str) -> str:
        """The session-state key of an entry or a widget of this page."""
        return f"{cls.page}.{name}"


class LearnerState(PageState):
    """What this browser session holds across pages. (The learner's exercise progress joins it here.)"""

    page = "state"
    browser = Field(factory=lambda: uuid.uuid4().hex)  # the session's own secret, for a browser that sends no cookie
    run = Field(None)  # this browser's run that the session started last (or found again through the URL)
    viewing = Field(None)  # another browser's run, opened through its link: shown read-only
    runs = Field(factory=list)  # its ended runs, oldest first (at most MAX_KEPT_RUNS)
    run_datasets = Field(factory=dict)  # users' images read from the run store, by key


class NeuronState(PageState):
    """Neuron math: the network being edited."""

    page = "neuron"
    net = Field(None)  # the article's 3 → 3 → 2 network, as the tables last set it
    version = Field(0)  # grows whenever the weights are replaced: fresh tables, so old edits do not linger
    last_loss = Field(None)  # the loss before the last SGD step


class ConvolutionState(PageState):
    """Convolution: the last typed kernel that could be used, and the layout the kernel's position belongs to."""

    page = "convolution"
    typed_kernel = Field(None)  # drawn while the typed text cannot be used
    layout = Field(None)  # (picture, output shape, stride, padding, dilation): a new one starts at the strongest pixel


class ActivationsState(PageState):
    """Activations: the last race."""

    page = "activations"
    race_results = Field(None)  # activation -> its race result


class TrainerState(PageState):
    """CNN trainer: the user's zip, the layer builder, what ImageNet weights are available."""

    page = "trainer"
    user_data = Field(None)  # ((file id, image size), the imported zip) of the last upload
    zip_lab = Field(None)  # ((file id, image size), the Lab importing it) until it has finished
    imagenet_checked = Field(False)  # looked once a session whether ImageNet weights can be had (a download...)
    imagenet_problem = Field(None)  # ...can take a while): why not, or None
    stack = Field(factory=lambda: list(enumerate(ARTICLE_STACK)))  # the builder's (id, LayerSpec) rows
    preview_seed = Field(0)  # the augmentation preview's draw
    controls_status = Field(None)  # the run status the Train / Pause / Stop buttons were last drawn for
    seen = Field(None)  # (run id, step watched growing, step last drawn) of the session's run in the live view
    replay = Field(None)  # the trainer_views.Replay of a run that finished unseen, while it is drawn again


class AfterTrainingState(PageState):
    """After training: each lab's last result."""

    page = "after_training"
    labs = Field(factory=dict)  # section -> (what it ran for, its Lab in the worker lane) while it runs
    reports = Field(factory=dict)  # model label -> its deployed forms measured, and their files
    compressed = Field(factory=dict)  # model label -> its compressed forms measured
    federated = Field(None)  # the last FedAvg run: settings, class mix and both histories
    transfer = Field(None)  # the last transfer lab: its settings and results


class PlaygroundState(PageState):
    """Network playground: the networks in training (widget values live under playground.* and playground_b.*)."""

    page = "playground_run"
    link_read = Field(False)  # the link's settings became the controls' values on the first visit
    networks = Field(None)  # one training Session per network shown (A, and B when comparing)
    playing = Field(False)
    built_from = Field(None)  # what the networks were built from: a change of data or shape starts again


LEARNER = LearnerState()


def visitor() -> browser.Visitor:
    """Who this browser is: the owner of its training runs, and what its quotas count against."""
    return browser.visitor(LEARNER.browser)


def viewed_run() -> Job | None:
    """Another browser's run that this session opened through its link (read-only)."""
    return LEARNER.viewing


def set_viewed_run(job: Job | None) -> None:
    """Show `job`, another browser's run, read-only (None: stop showing it)."""
    LEARNER.viewing = job


def current_run() -> Job | None:
    """The run this session started last (or found again through the URL)."""
    return LEARNER.run


def set_current_run(job: Job) -> None:
    """Make `job` the session's current run."""
    LEARNER.run = job


def finished_runs() -> list[Job]:
    """This session's ended runs that still have their files, oldest first (at most MAX_KEPT_RUNS)."""
    return [r for r in LEARNER.runs if not r.evicted]


def take_evicted_runs() -> list[Job]:
    """This session's ended runs whose files the store's budget removed since the last call: they leave its list."""
    runs = LEARNER.runs
    gone = [r for r in runs if r.evicted]
    runs[:] = [r for r in runs if not r.evicted]
    if LEARNER.run is not None and LEARNER.run.evicted:
        LEARNER.run = None
    return gone


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


def trained_model_file(key: str) -> Path:
    """The .safetensors file of trained_models()'s model `key` (for a worker to load)."""
    if key == BUNDLED:
        return BUNDLED_MODEL
    return next(r.model_file() for r in evaluated_runs() if r.run_id == key)


def keep_finished(job: Job) -> None:
    """Add an ended run to the session's list, in place of an earlier end of the same run (stopped, then resumed);
    the oldest is dropped past MAX_KEPT_RUNS, and its files go with it."""
    runs = LEARNER.runs
    if job not in runs:
        runs[:] = [r for r in runs if r.run_id != job.run_id]
        runs.append(job)
        del runs[:-MAX_KEPT_RUNS]


def user_dataset(key: str) -> Dataset:
    """A user's images stored in the run store under `key`, read once per session (and released with it)."""
    cached = LEARNER.run_datasets
    if key not in cached:
        cached[key] = read_dataset(scheduler().store.dataset_file(key))
    return cached[key]


def run_dataset(job: Job) -> Dataset:
    """The dataset a run trained on: a registered one, or the user's images from the run store."""
    key = job.spec.data.file_key
    return dataset(job.spec.data.name) if key is None else user_dataset(key)
