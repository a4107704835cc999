"""CNN trainer: pick data and a model, train in a worker process, watch it learn, look inside the result."""
from pathlib import Path

import pandas as pd
import streamlit as st

from dlplay.augment import ARTICLE, LIGHT, Augmentation
from dlplay.builder import ARTICLE_STACK, LayerSpec
from dlplay.checkpoint import ModelFileError
from dlplay.data import DATASETS, Dataset, DatasetUnavailable, ImageSet, download_files, files_present, sample_per_class
from dlplay.device import DEVICE_CHOICES, pick_device
from dlplay.jobs import (
    REMEDIES,
    AlreadyTraining,
    DataProblem,
    Job,
    ResumePoint,
    RunConfig,
    RunStatus,
    SettingError,
    check_run_id,
)
from dlplay.jobs.progress import epochs_csv
from dlplay.models import CUSTOM, IMAGENET_MIN_SIZE, MODELS, build_model, summary
from dlplay.schedules import SCHEDULES
from dlplay.train import OPTIMIZERS
from dlplay.transfer import FREEZE, IMAGENET, WeightsUnavailable, imagenet_weights
from dlplay.userdata import ZipRejected, import_zip
from ui import charts, state
from ui import trainer_views as views

ZIP_CHOICE = "zip"
FRESH = "fresh weights"
IMAGENET_MODEL = "mobilenet-v3-small"  # the architecture the ImageNet choice trains
IMAGENET_PROBLEM = "trainer.imagenet_problem"  # why the ImageNet weights cannot be had (None: they can)
USER_DATA, STACK = "trainer.user_data", "trainer.stack"  # session-state keys that no widget owns
AUGMENTATIONS = {"none": Augmentation(), "light (rotate 5°, shift and zoom 5%)": LIGHT,
                 "the article's ImageDataGenerator": ARTICLE}
LEARNING_RATES = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0]


def choose_dataset() -> tuple[Dataset | None, bool]:
    """The dataset picker: (the dataset, whether it is one of dlplay's own), or None with a message shown."""
    options = [*DATASETS, ZIP_CHOICE]
    choice = st.selectbox("Dataset", options, format_func=lambda n: f"{n}: {DATASETS[n].description}"
                          if n in DATASETS else "your own images: a .zip of class folders")
    if choice != ZIP_CHOICE:
        try:
            if DATASETS[choice].downloads and not files_present(choice):
                st.info(f"**{choice}** is not on this computer yet: {DATASETS[choice].description}.")
                if not st.button(f"Download {choice}"):
                    return None, False
                bar = st.progress(0.0, text="Connecting...")
                download_files(choice, progress=lambda fraction, text: bar.progress(fraction, text=text))
            return state.dataset(choice), True
        except DatasetUnavailable as err:
            st.error(str(err))
            return None, False
    st.caption("One folder per class (cats/, dogs/, ...), like Keras' `flow_from_directory('train')`; optionally "
               "train/ and test/ folders. Without test/, 20% of each class is held out for testing.")
    uploaded = st.file_uploader("Zip of class folders", type=["zip"])
    size = st.select_slider("Resize every image to", [32, 48, 64, 96, 128, 150], value=64)
    previous = st.session_state.get(USER_DATA)
    if uploaded is not None and (previous is None or previous[0] != (uploaded.file_id, size)):
        try:
            with st.spinner("Unpacking and decoding the images..."):
                imported = import_zip(uploaded, image_size=size, name=Path(uploaded.name).stem)
        except ZipRejected as err:
            st.error(str(err))
            return None, False
        st.session_state[USER_DATA] = previous = ((uploaded.file_id, size), imported)
    if previous is None:
        st.info("Upload a .zip to train on your own images.")
        return None, False
    imported = previous[1]
    if imported.skipped:
        with st.expander(f"{len(imported.skipped)} file(s) skipped"):
            st.dataframe(pd.DataFrame(imported.skipped, columns=["file", "reason"]), hide_index=True)
    return imported.dataset, False


def choose_start() -> tuple[Job | str | None, str]:
    """Fresh weights, or (transfer learning) a finished run's model or ImageNet weights, and what stays fixed."""
    runs = [r for r in state.finished_runs() if r.snapshot().evaluation is not None]
    labels = {FRESH: FRESH, IMAGENET: "ImageNet weights: torchvision's MobileNetV3-small (transfer learning)"}
    choice = st.selectbox("Start from", [FRESH, *range(len(runs)), IMAGENET], key="trainer.start_from",
                          format_func=lambda i: labels[i] if i in labels else f"run #{i + 1}'s model: "
                          f"{runs[i].config.model} trained on {runs[i].dataset_name} (transfer learning)",
                          help="Transfer learning: weights learnt on other images, with a new output layer for this "
                               "data's classes.")
    if choice == FRESH:
        return None, "none"
    if choice == IMAGENET:
        if IMAGENET_PROBLEM not in st.session_state:  # look once a session: a download attempt can take a while
            try:
                imagenet_weights(IMAGENET_MODEL)
                st.session_state[IMAGENET_PROBLEM] = None
            except WeightsUnavailable as err:
                st.session_state[IMAGENET_PROBLEM] = f"{str(err)[0].upper()}{str(err)[1:]}."
        if st.session_state[IMAGENET_PROBLEM]:
            st.warning(st.session_state[IMAGENET_PROBLEM])
    freeze = st.radio("Keep fixed while training", FREEZE, horizontal=True, key="trainer.freeze",
                      format_func={"none": "nothing (fine-tune all)", "features": "the conv layers",
                                   "all but the head": "all but the new output layer"}.__getitem__)
    return (IMAGENET if choice == IMAGENET else runs[choice]), freeze


def choose_model(dataset: Dataset, source: Job | str | None) -> tuple[str, tuple[LayerSpec, ...]]:
    """The architecture picker (or the layer builder) with its diagram and summary, or why it cannot work; what
    a run starts from fixes the architecture."""
    if source == IMAGENET:
        model, stack = IMAGENET_MODEL, ()
        st.caption(f"Architecture: {model}, the network the ImageNet weights belong to; your images are resized to "
                   f"at least {IMAGENET_MIN_SIZE} px, made RGB and normalised as ImageNet's were.")
    elif source is not None:
        model, stack = source.config.model, source.config.stack
        st.caption(f"Architecture: {model}, as the run it starts from.")
    else:
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


def choose_settings(dataset: Dataset, model: str, stack: tuple[LayerSpec, ...], source: Job | str | None,
                    freeze: str) -> RunConfig:
    """Hyperparameters, data size and augmentation widgets -> a RunConfig."""
    a, b, c, d = st.columns(4)
    optimizer = a.selectbox("Optimizer", OPTIMIZERS, index=OPTIMIZERS.index("adamw"))
    lr = b.select_slider("Learning rate", LEARNING_RATES, value=3e-3)
    schedule = c.selectbox("Schedule", list(SCHEDULES), index=list(SCHEDULES).index("onecycle"),
                           help="\n".join(f"- **{name}**: {what}" for name, what in SCHEDULES.items()))
    weight_decay = d.select_slider("Weight decay", [0.0, 1e-4, 5e-4, 1e-3, 1e-2, 5e-2], value=5e-4)
    a, b, c, d = st.columns(4)
    batch_size = a.select_slider("Batch size", [8, 16, 32, 64, 128, 256, 512], value=64)
    epochs = b.number_input("Epochs", 1, 100, 3)
    seed = c.number_input("Seed", 0, 1_000_000, 0)
    device = d.selectbox("Device", DEVICE_CHOICES)
    mixed = st.checkbox("Mixed precision", value=True,
                        help="Faster, with the same accuracy: float16 on CUDA GPUs, bfloat16 on CPUs that compute it "
                             "natively (AVX-512 BF16, AMX, Arm BF16); float32 elsewhere, and when unticked. On this "
                             f"server, 'auto' trains in {pick_device('auto', True).precision}.")
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
                     shrunk_keep=keep / 100, remedy=remedy if shrunk else "none", dropout=dropout,
                     start_from=IMAGENET if source == IMAGENET else str(source.model_file()) if source else "",
                     freeze=freeze)


def start_run(config: RunConfig, dataset: Dataset, registered: bool, run_id: str | None = None,
              resume: ResumePoint | None = None) -> None:
    """Queue (or resume) a run for this session and put its id in the URL, or say why it cannot start.

    `registered`: the dataset is one of dlplay's own (workers load it by name), not the user's images.
    """
    try:
        job = state.scheduler().submit(config, dataset, state.session_id(), registered=registered, run_id=run_id,
                                       resume=resume)
    except AlreadyTraining:
        st.error("This session is already training: stop that run first.")
        return
    except DataProblem as err:
        st.error(str(err))
        return
    except WeightsUnavailable as err:
        st.error(f"{str(err)[0].upper()}{str(err)[1:]}.")
        return
    except ValueError as err:
        st.error(f"This model cannot be trained on these images: {err}.")
        return
    state.set_current_run(job)
    st.query_params["run"] = job.run_id  # a refresh keeps the id, so the run can be found again
    st.rerun()  # draw the whole app again with the run in it (the sidebar shows its progress on every page)


def resume_from_checkpoint(run_id: str, point: ResumePoint) -> None:
    """Start the run again from its last checkpoint, on the data it trained on."""
    key = point.data.file_key
    if key is None:
        dataset = state.dataset(point.data.name)
    elif state.scheduler().store.dataset_file(key).exists():
        dataset = state.user_dataset(key)
    else:
        st.error("The images this run trained on are no longer on the server: upload the zip again and start a new "
                 "run.")
        return
    start_run(point.config, dataset, key is None, run_id, resume=point)


def find_run_from_url() -> Job | None:
    """After a refresh: the run named in the URL if the server still has it, else offer to resume it."""
    try:
        run_id = check_run_id(st.query_params.get("run", ""))
    except ValueError:
        return None
    job = state.scheduler().job(run_id)
    if job is not None:
        state.set_current_run(job)
        return job
    store = state.scheduler().store
    try:
        point = store.resume_point(run_id)
    except ModelFileError:
        st.warning("The interrupted run's checkpoint could not be read; start a new run.")
        return None
    if point is None or len(point.epochs) >= point.config.epochs:
        return None  # no checkpoint, or it had finished: nothing to resume
    store.touch(run_id)  # seen again: the store's budget removes it last
    done = len(point.epochs)
    st.info(f"An interrupted run was found: {point.config.model} on {point.data.name}, {done} of "
            f"{point.config.epochs} epochs done (checkpoint saved after epoch {done}).")
    if st.button("Resume the interrupted run"):
        resume_from_checkpoint(run_id, point)
    return None


def live_view(job: Job) -> None:
    """Progress and curves of the current run; reruns the page once the run ends."""
    job.touch()
    snapshot = job.snapshot()
    views.progress(snapshot, job.config.epochs)
    if snapshot.status is not RunStatus.QUEUED:  # a static plot while training: a third less work for the browser
        st.plotly_chart(views.live_figure(job.run_id, snapshot), key="trainer.live_chart",
                        config={"staticPlot": snapshot.active})
    if not snapshot.active and job not in state.finished_runs():
        state.keep_finished(job)
        st.rerun()


def run_controls(job: Job | None, config: RunConfig, dataset: Dataset, registered: bool) -> None:
    """Train, pause / resume, stop (or cancel while queued), and resume after a crash."""
    snapshot = job.snapshot() if job else None
    active = bool(snapshot and snapshot.active)
    row = st.container(horizontal=True)  # buttons side by side, each as wide as its label
    if row.button("Train", type="primary", disabled=active):
        start_run(config, dataset, registered)
    command = None
    if active and snapshot.status is RunStatus.QUEUED:
        command = job.stop if row.button("Cancel") else None
    elif active:
        paused = snapshot.status is RunStatus.PAUSED
        if row.button("Resume" if paused else "Pause"):
            command = job.resume if paused else job.pause
        if row.button("Stop"):
            command = job.stop
    elif snapshot and snapshot.status is RunStatus.CRASHED and 0 < snapshot.checkpoint_epoch:
        if row.button(f"Resume from epoch {snapshot.checkpoint_epoch + 1}"):
            resume_from_checkpoint(job.run_id, state.scheduler().store.resume_point(job.run_id))
    if command:
        command()
        st.rerun()  # the buttons and the status line show the new state at once


def runs_section() -> None:
    """Compare finished runs and download their models and metrics."""
    runs = state.finished_runs()
    if not runs:
        return
    st.header("5. Runs")
    labels = [f"#{i + 1} {r.config.model}, {r.config.optimizer} lr {r.config.lr:g}, {r.config.epochs} ep"
              for i, r in enumerate(runs)]
    snapshots = [r.snapshot() for r in runs]
    table = pd.DataFrame({
        "run": labels, "dataset": [r.dataset_name for r in runs], "status": [s.status.value for s in snapshots],
        "test accuracy": [s.evaluation.accuracy if s.evaluation else None for s in snapshots],
        "train images": [s.train_size for s in snapshots], "batch": [r.config.batch_size for r in runs],
        "schedule": [r.config.schedule for r in runs], "weight decay": [r.config.weight_decay for r in runs],
        "dropout": [r.config.dropout for r in runs], "augmented": [r.config.augmentation.active for r in runs],
        "rare classes": [", ".join(state.run_dataset(r).class_names[c] for c in r.config.shrunk_classes)
                         for r in runs],
        "remedy": [r.config.remedy for r in runs], "seed": [r.config.seed for r in runs]})
    st.dataframe(table, hide_index=True,
                 column_config={"test accuracy": st.column_config.NumberColumn(format="percent")})
    chosen = st.multiselect("Overlay the curves of", labels, default=labels[-2:])
    if chosen:
        picked = [(label, snapshots[labels.index(label)]) for label in chosen]
        st.plotly_chart(charts.training_curves([charts.Curves(label, s.batches, s.epochs) for label, s in picked]))
    which = st.selectbox("Download", labels, index=len(labels) - 1)
    run, snapshot = runs[labels.index(which)], snapshots[labels.index(which)]
    a, b = st.columns(2)
    if snapshot.evaluation is not None:
        a.download_button("Model (.safetensors)", run.model_file().read_bytes, file_name="dlplay-run.safetensors",
                          mime="application/octet-stream")
    b.download_button("Metrics (.csv)", epochs_csv(snapshot.epochs), file_name="dlplay-run-metrics.csv",
                      mime="text/csv")


st.title("CNN trainer")
st.caption("Pick data and a model, press Train, and watch the accuracy, loss and validation curves of the article's "
           "§5.4 grow. Training runs in the background: change controls or switch pages, it keeps going.")
st.header("1. Data")
dataset, registered = choose_dataset()
if dataset is None:
    st.stop()
views.data_overview(dataset)
st.header("2. Model")
start, frozen = choose_start()
model_name, stack = choose_model(dataset, start)
st.header("3. Settings")
config = choose_settings(dataset, model_name, stack, start, frozen)

st.header("4. Train")
try:
    state.scheduler()
except SettingError as err:
    st.error(f"Training is not available: {err}.")
    st.stop()
run = state.current_run() or find_run_from_url()
run_controls(run, config, dataset, registered)
if run is None:
    st.info("Press **Train** to start. With the defaults, 3 epochs on mnist5k take a few seconds on a laptop CPU.")
else:
    active = run.snapshot().active
    st.fragment(run_every=views.LIVE_REFRESH_SECONDS if active else None)(live_view)(run)
    final = run.snapshot()
    if not final.active and final.evaluation is not None:
        run_data = state.run_dataset(run)
        views.results(final.evaluation, final)
        # Lazy tabs: only the open one runs (looking inside the network costs the server a few forward passes).
        confusion_tab, mistakes_tab, inside_tab = st.tabs(["Confusion matrix", "Most confident mistakes",
                                                            "Inside the network"], on_change="rerun",
                                                           key="trainer.results_tab")
        if confusion_tab.open:
            with confusion_tab:
                views.confusion_section(final.evaluation, run_data, key=f"trainer.cell.{run.run_id}")
        if mistakes_tab.open:
            with mistakes_tab:
                views.mistakes_section(final.evaluation, run_data)
        if inside_tab.open:
            with inside_tab:
                views.inside_section(run.model()[0], run_data, pick_device("cpu"))
runs_section()
