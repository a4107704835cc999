"""CNN trainer: pick data and a model, train in the background, watch it learn, look inside the result."""
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from dlplay.augment import ARTICLE, LIGHT, Augmentation
from dlplay.checkpoint import ModelFileError, model_bytes
from dlplay.data import (DATASETS, Dataset, DatasetUnavailable, ImageSet, download_files, files_present, load_dataset,
                         sample_per_class)
from dlplay.device import DEVICE_CHOICES
from dlplay.builder import ARTICLE_STACK, LayerSpec
from dlplay.models import CUSTOM, MODELS, build_model, summary
from dlplay.runs import (REMEDIES, ResumePoint, RunConfig, RunSlots, TrainingRun, epochs_csv, new_run_id,
                         read_resume_point, state_path)
from dlplay.train import OPTIMIZERS, SCHEDULES
from dlplay.userdata import ZipRejected, import_zip
from ui import charts, trainer_views as views

MAX_CONCURRENT_RUNS = 2  # per server process: more would only share the same cores
MAX_KEPT_RUNS = 10
ZIP_CHOICE = "zip"
# Session-state keys that no widget owns, so they survive page switches.
RUN, RUNS, USER_DATA, FOLDER = "trainer.run", "trainer.runs", "trainer.user_data", "trainer.folder"
STACK = "trainer.stack"
AUGMENTATIONS = {"none": Augmentation(), "light (rotate 5°, shift and zoom 5%)": LIGHT,
                 "the article's ImageDataGenerator": ARTICLE}
LEARNING_RATES = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0]


@st.cache_resource
def run_slots() -> RunSlots:
    """The process-wide cap on concurrent training runs."""
    return RunSlots(MAX_CONCURRENT_RUNS)


@st.cache_resource
def live_runs() -> dict[str, TrainingRun]:
    """Every run started in this server process, by run id: a refreshed page finds its run here."""
    return {}


@st.cache_resource(show_spinner="Loading the dataset (the first time it is downloaded)...")
def builtin_dataset(name: str) -> Dataset:
    """A registered dataset, loaded once per process and shared read-only."""
    return load_dataset(name)


def session_folder() -> Path:
    """This session's private folder for extracted zips and checkpoints."""
    if FOLDER not in st.session_state:
        st.session_state[FOLDER] = Path(tempfile.mkdtemp(prefix="dlplay-session-"))
    return st.session_state[FOLDER]


def choose_dataset() -> Dataset | None:
    """The dataset picker; returns None (with a message shown) when no data is ready."""
    options = [*DATASETS, ZIP_CHOICE]
    choice = st.selectbox("Dataset", options, format_func=lambda n: f"{n}: {DATASETS[n].description}"
                          if n in DATASETS else "your own images: a .zip of class folders")
    if choice != ZIP_CHOICE:
        try:
            if DATASETS[choice].downloads and not files_present(choice):
                st.info(f"**{choice}** is not on this computer yet: {DATASETS[choice].description}.")
                if not st.button(f"Download {choice}"):
                    return None
                bar = st.progress(0.0, text="Connecting...")
                download_files(choice, progress=lambda fraction, text: bar.progress(fraction, text=text))
            return builtin_dataset(choice)
        except DatasetUnavailable as err:
            st.error(str(err))
            return None
    st.caption("One folder per class (cats/, dogs/, ...), like Keras' `flow_from_directory('train')`; optionally "
               "train/ and test/ folders. Without test/, 20% of each class is held out for testing.")
    uploaded = st.file_uploader("Zip of class folders", type=["zip"])
    size = st.select_slider("Resize every image to", [32, 48, 64, 96, 128, 150], value=64)
    previous = st.session_state.get(USER_DATA)
    if uploaded is not None and (previous is None or previous[0] != (uploaded.file_id, size)):
        try:
            with st.spinner("Unpacking and decoding the images..."):
                imported = import_zip(uploaded, session_folder() / "upload", image_size=size,
                                      name=Path(uploaded.name).stem)
        except ZipRejected as err:
            st.error(str(err))
            return None
        st.session_state[USER_DATA] = previous = ((uploaded.file_id, size), imported)
    if previous is None:
        st.info("Upload a .zip to train on your own images.")
        return None
    imported = previous[1]
    if imported.skipped:
        with st.expander(f"{len(imported.skipped)} file(s) skipped"):
            st.dataframe(pd.DataFrame(imported.skipped, columns=["file", "reason"]), hide_index=True)
    return imported.dataset


def choose_model(dataset: Dataset) -> tuple[str, tuple[LayerSpec, ...]]:
    """The architecture picker (or the layer builder) with its diagram and summary, or why it cannot work."""
    model = st.selectbox("Architecture", [*MODELS, CUSTOM], format_func=lambda n: f"{n}: {MODELS[n].description}"
                         if n in MODELS else "custom: build your own, layer by layer")
    layers = st.session_state.setdefault(STACK, [(i, spec) for i, spec in enumerate(ARTICLE_STACK)])
    stack = views.stack_editor(layers, key=STACK) if model == CUSTOM else ()
    try:
        rows = summary(build_model(model, dataset.input_shape, dataset.num_classes, stack=stack), dataset.input_shape)
    except ValueError as err:
        st.error(f"This model cannot take {dataset.input_shape[2]}×{dataset.input_shape[1]} images. {err}")
        return model, stack
    views.model_diagram(rows, dataset.input_shape)
    views.summary_table(rows)
    return model, stack


def choose_settings(dataset: Dataset, model: str, stack: tuple[LayerSpec, ...]) -> RunConfig:
    """Hyperparameters, data size and augmentation widgets -> a RunConfig."""
    a, b, c, d = st.columns(4)
    optimizer = a.selectbox("Optimizer", OPTIMIZERS, index=OPTIMIZERS.index("adamw"))
    lr = b.select_slider("Learning rate", LEARNING_RATES, value=3e-3)
    schedule = c.selectbox("Schedule", SCHEDULES, index=SCHEDULES.index("onecycle"))
    weight_decay = d.select_slider("Weight decay", [0.0, 1e-4, 5e-4, 1e-3, 1e-2, 5e-2], value=5e-4)
    a, b, c, d = st.columns(4)
    batch_size = a.select_slider("Batch size", [8, 16, 32, 64, 128, 256, 512], value=64)
    epochs = b.number_input("Epochs", 1, 100, 3)
    seed = c.number_input("Seed", 0, 1_000_000, 0)
    device = d.selectbox("Device", DEVICE_CHOICES)
    mixed = st.checkbox("Mixed precision (CUDA GPUs only)", value=True)
    with st.expander("The article's FAQ as experiments: data size, class imbalance, overfitting"):
        fraction = st.slider("Training images used", 10, 100, 100, step=10, format="%d%%",
                             help="Why does deep learning need much data? Train on less and compare test accuracy.")
        a, b = st.columns(2)
        shrunk = a.multiselect("Make these classes rare", range(dataset.num_classes),
                               format_func=dataset.class_names.__getitem__)
        keep = b.slider("...keeping this share of their images", 1, 100, 10, format="%d%%", disabled=not shrunk)
        remedy = st.radio("Remedy for the imbalance", REMEDIES, horizontal=True, disabled=not shrunk,
                          help="A class-weighted loss counts each rare image more; a weighted sampler shows rare "
                               "images more often. Compare the per-class accuracy of the rare classes.")
        dropout = st.checkbox("Dropout layers on", value=True,
                              help="Overfitting remedies: dropout, weight decay (above) and augmentation (below).")
    preset = st.radio("Augmentation (training images only)", [*AUGMENTATIONS, "custom"], index=1, horizontal=True)
    augmentation = AUGMENTATIONS.get(preset) or views.augmentation_sliders()
    with st.expander("Augmentation: preview and why only training images"):
        st.markdown("Each epoch sees new random versions of the training images, so the model cannot memorise "
                    "them. The article's code also augments its **test** data: that is a mistake, because the test "
                    "score should measure the model on the real images it will meet, not on random distortions. "
                    "Note too that Keras reads `shear_range=0.2` as 0.2 *degrees*, and that a horizontal flip "
                    "turns digits into mirror writing.")
        preview = sample_per_class(dataset.train, per_class=1, seed=0)
        views.augmentation_preview(ImageSet(preview.images[:2], preview.labels[:2]), dataset.class_names,
                                   augmentation, st.session_state.get("trainer.preview_seed", 0))
        if st.button("New random versions"):
            st.session_state["trainer.preview_seed"] = st.session_state.get("trainer.preview_seed", 0) + 1
            st.rerun()
    return RunConfig(model=model, stack=stack, optimizer=optimizer, lr=lr, weight_decay=weight_decay, schedule=schedule,
                     batch_size=batch_size, epochs=int(epochs), seed=int(seed), device=device, mixed_precision=mixed,
                     augmentation=augmentation, train_fraction=fraction / 100, shrunk_classes=tuple(shrunk),
                     shrunk_keep=keep / 100, remedy=remedy if shrunk else "none", dropout=dropout)


def start_run(config: RunConfig, dataset: Dataset, run_id: str | None = None,
              resume: ResumePoint | None = None) -> None:
    """Start (or resume) a run for this session and put its id in the URL, or say why it cannot start."""
    run_id = run_id or new_run_id()
    try:
        run = TrainingRun(config, dataset, run_slots(), checkpoint=state_path(run_id), resume=resume)
    except ValueError as err:
        st.error(f"This model cannot be trained on these images: {err}.")
        return
    live_runs()[run_id] = st.session_state[RUN] = run.start()
    st.query_params["run"] = run_id  # a refresh keeps the id, so the run can be found again


def find_run_from_url() -> TrainingRun | None:
    """After a refresh: the run named in the URL if it still lives in this process, else offer to resume it."""
    run_id = st.query_params.get("run", "")
    if run_id in live_runs():
        st.session_state[RUN] = live_runs()[run_id]
        return live_runs()[run_id]
    try:
        path = state_path(run_id)
    except ValueError:
        return None
    if not path.exists():
        return None
    try:
        point = read_resume_point(path)
    except (ModelFileError, ValueError, TypeError, KeyError):
        st.warning("The interrupted run's checkpoint could not be read; start a new run.")
        return None
    done = len(point.epochs)
    if done >= point.config.epochs:
        return None  # it had finished: nothing to resume
    st.info(f"An interrupted run was found: {point.config.model} on {point.dataset}, {done} of "
            f"{point.config.epochs} epochs done (checkpoint saved after epoch {done}).")
    if point.dataset not in DATASETS:
        st.caption("Its images came from an uploaded zip, which is not kept: upload it again and start a new run.")
    elif st.button("Resume the interrupted run"):
        start_run(point.config, builtin_dataset(point.dataset), run_id, resume=point)
        return st.session_state.get(RUN)
    return None


def archive(run: TrainingRun) -> None:
    """Keep a finished run in the session's list of runs (newest last)."""
    runs = st.session_state.setdefault(RUNS, [])
    if run not in runs:
        runs.append(run)
        del runs[:-MAX_KEPT_RUNS]


def live_view(run: TrainingRun) -> None:
    """Progress and curves of the current run; reruns the page once the run ends."""
    snapshot = run.snapshot()
    views.progress(snapshot, run.config.epochs)
    st.plotly_chart(charts.training_curves([charts.Curves("this run", snapshot.batches, snapshot.epochs)]),
                    key="trainer.live_chart")
    if not snapshot.active and run not in st.session_state.get(RUNS, []):
        archive(run)
        st.rerun()


def runs_section() -> None:
    """Compare finished runs and download their models and metrics."""
    runs: list[TrainingRun] = st.session_state.get(RUNS, [])
    if not runs:
        return
    st.header("5. Runs")
    labels = [f"#{i + 1} {r.config.model}, {r.config.optimizer} lr {r.config.lr:g}, {r.config.epochs} ep"
              for i, r in enumerate(runs)]
    snapshots = [r.snapshot() for r in runs]
    table = pd.DataFrame({
        "run": labels, "dataset": [r.dataset.name for r in runs], "status": [s.status for s in snapshots],
        "test accuracy": [s.evaluation.accuracy if s.evaluation else None for s in snapshots],
        "train images": [len(r.train_set) for r in runs], "batch": [r.config.batch_size for r in runs],
        "schedule": [r.config.schedule for r in runs], "weight decay": [r.config.weight_decay for r in runs],
        "dropout": [r.config.dropout for r in runs], "augmented": [r.config.augmentation.active for r in runs],
        "rare classes": [", ".join(r.dataset.class_names[c] for c in r.config.shrunk_classes) for r in runs],
        "remedy": [r.config.remedy for r in runs], "seed": [r.config.seed for r in runs]})
    st.dataframe(table, hide_index=True, column_config={"test accuracy": st.column_config.NumberColumn(format="percent")})
    chosen = st.multiselect("Overlay the curves of", labels, default=labels[-2:])
    if chosen:
        picked = [(label, snapshots[labels.index(label)]) for label in chosen]
        st.plotly_chart(charts.training_curves([charts.Curves(label, s.batches, s.epochs) for label, s in picked]))
    which = st.selectbox("Download", labels, index=len(labels) - 1)
    run = runs[labels.index(which)]
    a, b = st.columns(2)
    a.download_button("Model (.safetensors)", model_bytes(run.model, run.card()), file_name="dlplay-run.safetensors",
                      mime="application/octet-stream")
    b.download_button("Metrics (.csv)", epochs_csv(run.snapshot().epochs), file_name="dlplay-run-metrics.csv",
                      mime="text/csv")


st.title("CNN trainer")
st.caption("Pick data and a model, press Train, and watch the accuracy, loss and validation curves of the article's "
           "§5.4 grow. Training runs in the background: change controls or switch pages, it keeps going.")
st.header("1. Data")
dataset = choose_dataset()
if dataset is None:
    st.stop()
views.data_overview(dataset)
st.header("2. Model")
model_name, stack = choose_model(dataset)
st.header("3. Settings")
config = choose_settings(dataset, model_name, stack)

st.header("4. Train")
run: TrainingRun | None = st.session_state.get(RUN) or find_run_from_url()
active = bool(run and run.snapshot().active)
a, b, c, _ = st.columns([1, 1, 1, 3])
if a.button("Train", type="primary", disabled=active):
    start_run(config, dataset)
    run, active = st.session_state.get(RUN), True
if active:
    if run.snapshot().status == "paused":
        if b.button("Resume"):
            run.resume()
    elif b.button("Pause"):
        run.pause()
    if c.button("Stop"):
        run.stop()
if run is None:
    st.info("Press **Train** to start. With the defaults, 3 epochs on mnist5k take a few seconds on a laptop CPU.")
else:
    st.fragment(run_every=1.0 if active else None)(live_view)(run)
    final = run.snapshot()
    if not final.active and final.evaluation is not None:
        views.results(final.evaluation, final)
        confusion_tab, mistakes_tab, inside_tab = st.tabs(["Confusion matrix", "Most confident mistakes",
                                                            "Inside the network"])
        with confusion_tab:
            views.confusion_section(final.evaluation, run.dataset, key=f"trainer.cell.{id(run)}")
        with mistakes_tab:
            views.mistakes_section(final.evaluation, run.dataset)
        with inside_tab:
            views.inside_section(run.model, run.dataset, run.device)
runs_section()
