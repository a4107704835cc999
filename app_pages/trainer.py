"""CNN trainer: pick data and a model, train in a worker process, watch it learn, look inside the result."""
from dataclasses import replace
from pathlib import Path

import pandas as pd
import streamlit as st

from dlplay.after_training.transfer import FREEZE, IMAGENET, imagenet_weights
from dlplay.augment import ARTICLE, LIGHT, Augmentation
from dlplay.builder import LayerSpec
from dlplay.checkpoint import ModelFileError
from dlplay.data import (
    DATASETS,
    Dataset,
    DatasetUnavailable,
    ImageSet,
    download_files,
    files_present,
    read_dataset,
    sample_per_class,
)
from dlplay.device import DEVICE_CHOICES, pick_device
from dlplay.limits import limits
from dlplay.models import CUSTOM, IMAGENET_MIN_SIZE, MODELS, build_model, summary
from dlplay.pretrained import WeightsUnavailable
from dlplay.training.jobs import (
    REMEDIES,
    AlreadyTraining,
    DataProblem,
    Job,
    NotYourRun,
    ResumePoint,
    RunAlreadyLive,
    RunConfig,
    RunSnapshot,
    RunStatus,
    ServerFull,
    SettingError,
    check_run_id,
)
from dlplay.training.jobs.labs import DATASET_FILE, ZIP_FILE, read_result
from dlplay.training.jobs.progress import epochs_csv
from dlplay.training.jobs.scheduler import resumable
from dlplay.training.jobs.spec import steps_per_epoch
from dlplay.training.schedules import SCHEDULES
from dlplay.training.trainer import OPTIMIZERS
from dlplay.userdata import ZipImport
from ui import chart_words, charts, state, tables
from ui import trainer_views as views
from ui.i18n import N_, _, listing, say, sentence, shown_as, translated, translator
from ui.labs import follow, start_lab
from ui.state import TrainerState

PAGE = TrainerState()
ZIP_CHOICE = "zip"
FRESH = "fresh weights"
IMAGENET_MODEL = "mobilenet-v3-small"  # the architecture the ImageNet choice trains
AUGMENTATIONS = {N_("none"): Augmentation(), N_("light (rotate 5°, shift and zoom 5%)"): LIGHT,
                 N_("the article's ImageDataGenerator"): ARTICLE}
CUSTOM_AUGMENTATION = N_("custom")
FREEZE_LABELS = {"none": N_("nothing (fine-tune all)"), "features": N_("the conv layers"),
                 "all but the head": N_("all but the new output layer")}
LEARNING_RATES = [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0]


def choose_dataset() -> tuple[Dataset | None, bool]:
    """The dataset picker: (the dataset, whether it is one of dlplay's own), or None with a message shown."""
    options = [*DATASETS, ZIP_CHOICE]
    choice = st.selectbox(_("Dataset"), options, key="trainer.dataset",
                          format_func=shown_as({**{n: f"{n}: {_(d.description)}" for n, d in DATASETS.items()},
                                                ZIP_CHOICE: _("your own images: a .zip of class folders")}))
    if choice != ZIP_CHOICE:
        try:
            if DATASETS[choice].downloads and not files_present(choice):
                st.info(_("**{name}** is not on this computer yet: {description}.").format(
                    name=choice, description=_(DATASETS[choice].description)))
                if not st.button(_("Download {name}").format(name=choice), key="trainer.download"):
                    return None, False
                bar = st.progress(0.0, text=_("Connecting..."))
                download_files(choice, progress=lambda fraction, text: bar.progress(fraction, text=say(text)))
            return state.dataset(choice), True
        except DatasetUnavailable as err:
            st.error(say(str(err)))
            return None, False
    st.caption(_("One folder per class (cats/, dogs/, ...), like Keras' `flow_from_directory('train')`; optionally "
                 "train/ and test/ folders. Without test/, 20% of each class is held out for testing."))
    uploaded = st.file_uploader(_("Zip of class folders"), type=["zip"], key="trainer.zip")
    size = st.select_slider(_("Resize every image to"), [32, 48, 64, 96, 128, 150], value=64, key="trainer.size")
    previous = PAGE.user_data
    if uploaded is not None and (previous is None or previous[0] != (uploaded.file_id, size)):
        imported = import_in_a_worker(uploaded, size)
        if imported is None:
            return None, False
        PAGE.user_data = previous = ((uploaded.file_id, size), imported)
    if previous is None:
        st.info(_("Upload a .zip to train on your own images."))
        return None, False
    imported = previous[1]
    if imported.skipped:
        with st.expander(_("{count} file(s) skipped").format(count=len(imported.skipped))):
            tables.table(pd.DataFrame([(file, say(reason)) for file, reason in imported.skipped],
                                      columns=[_("file"), _("reason")]))
    return imported.dataset, False


def import_in_a_worker(uploaded, size: int) -> ZipImport | None:
    """The uploaded zip imported by a lab in the worker lane (followed live until it ends); None until then, or
    if it cannot be (the page says why)."""
    wanted, quota = (uploaded.file_id, size), state.visitor().quota_key
    if PAGE.zip_lab is None or PAGE.zip_lab[0] != wanted:  # a new upload or size: import it (once)
        replaced = PAGE.user_data[1].dataset if PAGE.user_data else None  # this tab's last import: it makes way
        held, allowed = state.dataset_holdings().count(quota, besides=replaced), limits().datasets_per_browser
        if held >= allowed:
            st.error(_("This browser's other tabs already hold {count} imported zip(s), as many as the server allows "
                       "one browser; close one of those tabs, or train there.").format(count=held))
            return None
        lab = start_lab("import_zip", {"image_size": size, "name": Path(uploaded.name).stem},
                        {ZIP_FILE: uploaded.getvalue()})
        if lab is None:
            return None
        PAGE.zip_lab = (wanted, lab)
    lab = PAGE.zip_lab[1]
    snapshot = follow(lab, key=PAGE.key("zip_lab"))
    if snapshot.status is not RunStatus.FINISHED:
        return None
    PAGE.zip_lab = None  # its folder goes with it: the images now live in the dataset read here
    imported = ZipImport(read_dataset(lab.folder / DATASET_FILE), read_result(lab.kind, snapshot.result, lab.folder))
    state.dataset_holdings().hold(quota, imported.dataset)
    return imported


def choose_start() -> tuple[Job | str | None, str]:
    """Fresh weights, or (transfer learning) a finished run's model or ImageNet weights, and what stays fixed."""
    runs = state.evaluated_runs()
    labels = {FRESH: _("fresh weights"),
              **{i: _("run #{number}'s model: {model} trained on {dataset} (transfer learning)").format(
                  number=i + 1, model=r.config.model, dataset=r.dataset_name) for i, r in enumerate(runs)},
              IMAGENET: _("ImageNet weights: torchvision's MobileNetV3-small (transfer learning)")}
    choice = st.selectbox(_("Start from"), list(labels), key="trainer.start_from", format_func=shown_as(labels),
                          help=_("Transfer learning: weights learnt on other images, with a new output layer for "
                                 "this data's classes."))
    if choice == FRESH:
        return None, "none"
    if choice == IMAGENET:
        if not PAGE.imagenet_checked:  # look once a session: a download attempt can take a while
            try:
                imagenet_weights(IMAGENET_MODEL)
            except WeightsUnavailable as err:
                PAGE.imagenet_problem = str(err)
            PAGE.imagenet_checked = True
        if PAGE.imagenet_problem:
            st.warning(sentence(say(PAGE.imagenet_problem)))
    freeze = st.radio(_("Keep fixed while training"), FREEZE, horizontal=True, key="trainer.freeze",
                      format_func=translated(FREEZE_LABELS))
    return (IMAGENET if choice == IMAGENET else runs[choice]), freeze


def choose_model(dataset: Dataset, source: Job | str | None) -> tuple[str, tuple[LayerSpec, ...]]:
    """The architecture picker (or the layer builder) with its diagram and summary, or why it cannot work; what
    a run starts from fixes the architecture."""
    if source == IMAGENET:
        model, stack = IMAGENET_MODEL, ()
        st.caption(_("Architecture: {model}, the network the ImageNet weights belong to; your images are resized to "
                     "at least {size} px, made RGB and normalised as ImageNet's were.").format(
            model=model, size=IMAGENET_MIN_SIZE))
    elif source is not None:
        model, stack = source.config.model, source.config.stack
        st.caption(_("Architecture: {model}, as the run it starts from.").format(model=model))
    else:
        model = st.selectbox(_("Architecture"), [*MODELS, CUSTOM], key="trainer.model",
                             format_func=shown_as({**{n: f"{n}: {_(m.description)}" for n, m in MODELS.items()},
                                                   CUSTOM: _("custom: build your own, layer by layer")}))
        stack = views.stack_editor(PAGE.stack, key=PAGE.key("stack")) if model == CUSTOM else ()
    try:
        rows = summary(build_model(model, dataset.input_shape, dataset.num_classes, stack=stack), dataset.input_shape)
    except ValueError as err:
        st.error(_("This model cannot take {size} images. {reason}").format(
            size=f"{dataset.input_shape[2]}×{dataset.input_shape[1]}", reason=say(str(err))))
        return model, stack
    views.model_diagram(rows, dataset.input_shape)
    views.summary_table(rows)
    return model, stack


def choose_settings(dataset: Dataset, model: str, stack: tuple[LayerSpec, ...], source: Job | str | None,
                    freeze: str) -> RunConfig:
    """Hyperparameters, data size and augmentation widgets -> a RunConfig (its epochs are chosen beside Train)."""
    a, b, c, d = st.columns(4)
    optimizer = a.selectbox(_("Optimizer"), OPTIMIZERS, index=OPTIMIZERS.index("adamw"), key="trainer.optimizer")
    lr = b.select_slider(_("Learning rate"), LEARNING_RATES, value=3e-3, key="trainer.lr")
    schedule = c.selectbox(_("Schedule"), list(SCHEDULES), index=list(SCHEDULES).index("onecycle"),
                           key="trainer.schedule",
                           help="\n".join(f"- **{name}**: {_(what)}" for name, what in SCHEDULES.items()))
    weight_decay = d.select_slider(_("Weight decay"), [0.0, 1e-4, 5e-4, 1e-3, 1e-2, 5e-2], value=5e-4,
                                   key="trainer.weight_decay")
    a, b, c, d = st.columns(4, vertical_alignment="bottom")
    batch_size = a.select_slider(_("Batch size"), [8, 16, 32, 64, 128, 256, 512], value=64, key="trainer.batch")
    seed = b.number_input(_("Seed"), 0, 1_000_000, 0, key="trainer.seed")
    device = c.selectbox(_("Device"), DEVICE_CHOICES, key="trainer.device")
    mixed = d.checkbox(_("Mixed precision"), value=True, key="trainer.mixed",
                        help=_("Faster, with the same accuracy: float16 on CUDA GPUs, bfloat16 on CPUs that compute "
                               "it natively (AVX-512 BF16, AMX, Arm BF16); float32 elsewhere, and when unticked. On "
                               "this server, 'auto' trains in {precision}.").format(
                            precision=say(pick_device("auto", True).precision)))
    with st.expander(_("The article's FAQ as experiments: data size, class imbalance, overfitting")):
        fraction = st.slider(_("Training images used"), 10, 100, 100, step=10, format="%d%%", key="trainer.fraction",
                             help=_("Why does deep learning need much data? Train on less and compare test "
                                    "accuracy."))
        a, b = st.columns(2)
        shrunk = a.multiselect(_("Make these classes rare"), range(dataset.num_classes), key="trainer.rare",
                               format_func=shown_as(dataset.class_names))
        keep = b.slider(_("...keeping this share of their images"), 1, 100, 10, format="%d%%", disabled=not shrunk,
                        key="trainer.keep")
        remedy = st.radio(_("Remedy for the imbalance"), REMEDIES, horizontal=True, disabled=not shrunk,
                          format_func=translator(), key="trainer.remedy",
                          help=_("A class-weighted loss counts each rare image more; a weighted sampler shows rare "
                                 "images more often. Compare the per-class accuracy of the rare classes."))
        dropout = st.checkbox(_("Dropout layers on"), value=True, key="trainer.dropout",
                              help=_("Overfitting remedies: dropout, weight decay (above) and augmentation (below)."))
    preset = st.radio(_("Augmentation (training images only)"), [*AUGMENTATIONS, CUSTOM_AUGMENTATION], index=1,
                      horizontal=True, format_func=translator(), key="trainer.augmentation")
    augmentation = AUGMENTATIONS.get(preset) or views.augmentation_sliders()
    with st.expander(_("Augmentation: preview and why only training images")):
        st.markdown(_("Each epoch sees new random versions of the training images, so the model cannot memorise "
                      "them. The article's code also augments its **test** data: that is a mistake, because the "
                      "test score should measure the model on the real images it will meet, not on random "
                      "distortions. Note too that Keras reads `shear_range=0.2` as 0.2 *degrees*, and that a "
                      "horizontal flip turns digits into mirror writing."))
        preview = sample_per_class(dataset.train, per_class=1, seed=0)
        views.augmentation_preview(ImageSet(preview.images[:2], preview.labels[:2]), dataset.class_names,
                                   augmentation, PAGE.preview_seed)
        if st.button(_("New random versions"), key="trainer.new_versions"):
            PAGE.preview_seed += 1
            st.rerun()
    return RunConfig(model=model, stack=stack, optimizer=optimizer, lr=lr, weight_decay=weight_decay, schedule=schedule,
                     batch_size=batch_size, seed=int(seed), device=device, mixed_precision=mixed,
                     augmentation=augmentation, train_fraction=fraction / 100, shrunk_classes=tuple(shrunk),
                     shrunk_keep=keep / 100, remedy=remedy if shrunk else "none", dropout=dropout,
                     start_from=IMAGENET if source == IMAGENET else str(source.model_file()) if source else "",
                     freeze=freeze)


def start_run(config: RunConfig, dataset: Dataset, registered: bool, run_id: str | None = None,
              resume: ResumePoint | None = None, pause_after: int = 0) -> None:
    """Queue (or resume) a run for this session and put its id in the URL, or say why it cannot start.

    `registered`: the dataset is one of dlplay's own (workers load it by name), not the user's images.
    `pause_after`: the run pauses by itself once this epoch is done (0: it does not).
    """
    try:
        hold = pause_after * steps_per_epoch(config, dataset) if 0 < pause_after < config.epochs else None
        me = state.visitor()
        job = state.scheduler().submit(config, dataset, me.owner, quota_key=me.quota_key, registered=registered,
                                       run_id=run_id, resume=resume, pause_at_step=hold)
    except (AlreadyTraining, NotYourRun) as err:
        st.error(sentence(say(str(err))))
        return
    except RunAlreadyLive:
        st.error(_("This run is already training again, resumed from another tab or session."))
        return
    except ServerFull as err:
        st.error(sentence(say(str(err))))
        return
    except DataProblem as err:
        st.error(say(str(err)))
        return
    except WeightsUnavailable as err:
        st.error(sentence(say(str(err))))
        return
    except ValueError as err:
        st.error(_("This model cannot be trained on these images: {reason}.").format(reason=say(str(err))))
        return
    state.set_current_run(job)
    step = job.snapshot().step  # all it has done yet: a run that ends unseen is replayed
    PAGE.seen = (job.run_id, step, step)
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
        st.error(_("The images this run trained on are no longer on the server: upload the zip again and start a "
                   "new run."))
        return
    start_run(point.config, dataset, key is None, run_id, resume=point)


def find_run_from_url() -> Job | None:
    """The run named in the URL (after a refresh, in a second tab, from a shared link). This browser's run becomes
    the session's, with every control; another browser's is only shown (the viewed run); a run of this browser
    that the server no longer trains is offered for resuming."""
    state.set_viewed_run(None)
    try:
        run_id = check_run_id(st.query_params.get("run", ""))
    except ValueError:
        return None
    me, job = state.visitor(), state.scheduler().job(run_id)
    if job is not None and job.evicted:
        job = None  # the store's budget removed its files: the store says so below
    if job is not None and not me.owns(job.owner):
        state.set_viewed_run(job)
        return None
    if job is not None:
        state.set_current_run(job)
        return job
    store = state.scheduler().store
    if store.evicted(run_id):
        st.info(_("This run's files were removed to keep the server's disk within its budget."))
        return None
    if not me.owns(store.owner(run_id)):
        if store.meta(run_id):
            st.info(_("This link is to another browser's run, which the server is not training now: only the "
                      "browser that started it can resume it."))
        return None
    try:
        point = store.resume_point(run_id)
    except ModelFileError:
        st.warning(_("The interrupted run's checkpoint could not be read; start a new run."))
        return None
    if point is None or len(point.epochs) >= point.config.epochs:
        return None  # no checkpoint, or it had finished: nothing to resume
    store.touch(run_id)  # seen again: the store's budget removes it last
    done = len(point.epochs)
    st.info(_("An interrupted run was found: {model} on {dataset}, {done} of {epochs} epochs done (checkpoint saved "
              "after epoch {done}).").format(model=point.config.model, dataset=point.data.name, done=done,
                                             epochs=point.config.epochs))
    if st.button(_("Resume the interrupted run"), key="trainer.resume_found"):
        resume_from_checkpoint(run_id, point)
    return None


def replaying(job: Job | None) -> bool:
    """Whether the session's finished run `job` is being drawn again as it grew (its results wait till the end)."""
    return job is not None and PAGE.replay is not None and PAGE.replay.run_id == job.run_id


def seen_so_far(job: Job, snapshot: RunSnapshot) -> tuple[int, int]:
    """(the step up to which this page watched `job` grow, the step it last drew); a run it never drew: all seen."""
    seen = PAGE.seen
    return seen[1:] if seen and seen[0] == job.run_id else (snapshot.step, snapshot.step)


def live_view(job: Job, owned: bool = True) -> None:
    """Progress and curves of a run (the owner's watching keeps it from the idle timeout); reruns the page once
    the run ends (to replay it first if it finished before the learner saw it grow), and for the owner when its
    buttons must change."""
    if owned:
        job.touch()
    snapshot = job.snapshot()
    if owned and not snapshot.active and job not in state.finished_runs():  # it ended since the last look
        state.keep_finished(job)
        PAGE.replay = views.replay_for(job.run_id, seen_so_far(job, snapshot)[0], snapshot)
        st.rerun()
    if owned and replaying(job):
        replay_view(job, snapshot)
        return
    views.progress(snapshot, job.config.epochs)
    if snapshot.status is not RunStatus.QUEUED:  # a static plot while training: a third less work for the browser
        curves(job, snapshot, static=snapshot.active)
    if not owned:
        if not snapshot.active and snapshot.status is not PAGE.controls_status:
            st.rerun()  # the run ended: draw its results
        return
    PAGE.seen = (job.run_id, *views.watched(seen_so_far(job, snapshot), snapshot))
    if snapshot.status is not PAGE.controls_status:  # queued -> running, or paused by itself: other buttons
        st.rerun()


def curves(job: Job, snapshot: RunSnapshot, static: bool) -> None:
    """A run's curves as `snapshot` has them, and what each set of images is for."""
    chart_words.chart(views.live_figure(job.run_id, snapshot, job.config.epochs), "trainer.live_chart",
                      words=chart_words.training(snapshot.epochs), config={"staticPlot": static})
    if snapshot.train_size:
        views.curves_explained(snapshot, job.config.validation_fraction, len(state.run_dataset(job).test))


def replay_view(job: Job, snapshot: RunSnapshot) -> None:
    """One frame of the replay of a finished run, with a way to skip to its end; the frame after the last one
    reruns the page to draw the results."""
    replay = PAGE.replay
    if replay.over:
        PAGE.replay = None
        st.rerun()
    shown = views.as_of(snapshot, replay.step)
    if views.replay_progress(shown, job.config.epochs):  # skip to the end
        PAGE.replay = None
        st.rerun()
    curves(job, shown, static=True)
    PAGE.replay = replay.next()


def run_controls(job: Job | None, config: RunConfig, dataset: Dataset, registered: bool) -> None:
    """Epochs and Train (optionally pausing after a chosen epoch), pause / resume, stop (or cancel while queued),
    and resume after a crash, in one row; under it, what Train trains."""
    snapshot = job.snapshot() if job else None
    active = bool(snapshot and snapshot.active)
    PAGE.controls_status = snapshot.status if snapshot else None
    row = st.container(horizontal=True, vertical_alignment="bottom")  # side by side, each as wide as it needs
    epochs = row.number_input(_("Epochs"), 1, 100, 3, key="trainer.epochs", width=140)
    pause_after = row.number_input(
        _("Pause after epoch"), 0, 100, 0, key="trainer.pause_after", width=180,
        help=_("0: train straight through. Otherwise the run pauses by itself once that epoch is done and its "
               "checkpoint saved, so you can read the curves at that point; Resume goes on."))
    config = replace(config, epochs=int(epochs))
    if row.button(_("Train"), type="primary", disabled=active, key="trainer.train"):
        start_run(config, dataset, registered, pause_after=int(pause_after))
    command = None
    if active and snapshot.status is RunStatus.QUEUED:
        command = job.stop if row.button(_("Cancel"), key="trainer.cancel") else None
    elif active:
        paused = snapshot.status is RunStatus.PAUSED
        if row.button(_("Resume") if paused else _("Pause"), key="trainer.pause"):
            command = job.resume if paused else job.pause
        if row.button(_("Stop"), key="trainer.stop"):
            command = job.stop
    elif snapshot and resumable(snapshot, job.config.epochs):
        if row.button(_("Resume from epoch {epoch}").format(epoch=snapshot.checkpoint_epoch + 1),
                      key="trainer.resume_crashed"):
            resume_from_checkpoint(job.run_id, state.scheduler().store.resume_point(job.run_id))
    if command:
        command()
        st.rerun()  # the buttons and the status line show the new state at once
    st.caption(_("Trains {model} with {optimizer}, learning rate {lr}, batch size {batch}: choose the model and "
                 "every setting in 3 and 4 below.").format(model=config.model, optimizer=config.optimizer,
                                                          lr=f"{config.lr:g}", batch=config.batch_size))


def pictures_visible(job: Job, owned: bool) -> bool:
    """Whether this page may show the pictures a run trained on: the owner always; others when they are dlplay's
    own images, or the owner shared theirs."""
    return owned or job.spec.data.file_key is None or job.pictures_shared


def run_results(run: Job, owned: bool) -> None:
    """An ended run's results: test accuracy, the confusion matrix, and (where its pictures may be shown) its most
    confident mistakes and a look inside the network; the owner of a run on their own images may share them."""
    final = run.snapshot()
    if final.active or final.evaluation is None:
        return
    run_data = state.run_dataset(run)
    views.results(final.evaluation, final, run.config.validation_fraction)
    if owned and run.spec.data.file_key is not None:
        shared = st.toggle(_("Share my pictures with people who open this run's link"), value=run.pictures_shared,
                           key=f"trainer.share.{run.run_id}",
                           help=_("Off: they see the curves and the numbers, never your pictures."))
        if shared != run.pictures_shared:
            run.share_pictures(shared)
    if not pictures_visible(run, owned):
        views.confusion_section(final.evaluation, run_data, key=f"trainer.cell.{run.run_id}", pictures=False)
        st.caption(_("The pictures this run trained on stay private: its owner has not shared them."))
        return
    # Lazy tabs: only the open one runs (looking inside the network costs the server a few forward passes).
    confusion_tab, mistakes_tab, inside_tab = st.tabs([_("Confusion matrix"), _("Most confident mistakes"),
                                                        _("Inside the network")], on_change="rerun",
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


def read_only_view(job: Job) -> None:
    """Another browser's run, opened through its link: its progress, curves and results, with no controls, no
    downloads, and its model in none of this browser's pickers."""
    st.info(_("This run belongs to another browser: you can watch it and see its results, but not control it, "
              "download it or use its model."))
    config = job.config
    st.caption(_("Its settings: {model} on {dataset}; {optimizer}, learning rate {lr}, batch size {batch}, {epochs} "
                 "epoch(s).").format(model=config.model, dataset=job.dataset_name, optimizer=config.optimizer,
                                     lr=f"{config.lr:g}", batch=config.batch_size, epochs=config.epochs))
    if st.button(_("Start a run of your own"), key="trainer.own_run"):
        del st.query_params["run"]
        state.set_viewed_run(None)
        st.rerun()
    PAGE.controls_status = job.snapshot().status
    st.fragment(run_every=views.LIVE_REFRESH_SECONDS if PAGE.controls_status.active else None)(live_view)(
        job, owned=False)
    run_results(job, owned=False)


def runs_section() -> None:
    """Compare finished runs and download their models and metrics."""
    runs = state.finished_runs()
    if not runs:
        return
    st.header(_("5. Runs"))
    labels = [_("#{number} {model}, {optimizer} lr {lr}, {epochs} epoch(s)").format(
        number=i + 1, model=r.config.model, optimizer=r.config.optimizer, lr=f"{r.config.lr:g}",
        epochs=r.config.epochs) for i, r in enumerate(runs)]
    snapshots = [r.snapshot() for r in runs]
    accuracy = _("test accuracy")
    table = tables.differing({
        _("run"): labels, _("status"): [_(s.status.value) for s in snapshots],
        accuracy: [s.evaluation.accuracy if s.evaluation else None for s in snapshots],
        _("dataset"): [r.dataset_name for r in runs],
        _("train images"): [s.train_size for s in snapshots], _("batch"): [r.config.batch_size for r in runs],
        _("schedule"): [r.config.schedule for r in runs], _("weight decay"): [r.config.weight_decay for r in runs],
        _("dropout"): [r.config.dropout for r in runs], _("augmented"): [r.config.augmentation.active for r in runs],
        _("rare classes"): [listing(state.run_dataset(r).class_names[c] for c in r.config.shrunk_classes) or None
                            for r in runs],
        _("remedy"): [_(r.config.remedy) for r in runs], _("seed"): [r.config.seed for r in runs]}, kept=3)
    helps = {accuracy: tables.percent(_(
        "The share of the test images each run's model classified correctly after its last epoch.")),
        _("train images"): tables.whole(_(
            "The images each run learnt from: the training images it used, less the share held out for "
            "validation."))}
    tables.table(table, {name: column for name, column in helps.items() if name in table})
    chosen = st.multiselect(_("Overlay the curves of"), range(len(runs)), default=list(range(len(runs)))[-2:],
                            format_func=shown_as(labels), key="trainer.overlay")
    if chosen:
        chart_words.chart(charts.training_curves([charts.Curves(labels[i], snapshots[i].batches,
                                                                snapshots[i].epochs) for i in chosen]),
                          "trainer.overlay_chart",
                          words=" ".join(chart_words.training(snapshots[i].epochs, labels[i]) for i in chosen))
    which = st.selectbox(_("Download"), range(len(runs)), index=len(runs) - 1, format_func=shown_as(labels),
                         key="trainer.download_run")
    run, snapshot = runs[which], snapshots[which]
    a, b = st.columns(2)
    if snapshot.evaluation is not None:
        a.download_button(_("Model (.safetensors)"), run.model_file().read_bytes, file_name="dlplay-run.safetensors",
                          mime="application/octet-stream", key="trainer.model_file")
    b.download_button(_("Metrics (.csv)"), epochs_csv(snapshot.epochs), file_name="dlplay-run-metrics.csv",
                      mime="text/csv", key="trainer.metrics_file")


def train_section(config: RunConfig, dataset: Dataset, registered: bool) -> None:
    """Train with its controls, then the run's progress and curves (replayed if it finished unseen) and its
    results; or another browser's run, read-only."""
    try:
        state.scheduler()
    except SettingError as err:
        st.error(_("Training is not available: {reason}.").format(reason=say(str(err))))
        st.stop()
    run = state.current_run() or find_run_from_url()
    viewed = state.viewed_run() if run is None else None
    if viewed is not None:
        read_only_view(viewed)
        return
    run_controls(run, config, dataset, registered)
    if run is None:
        st.info(_("Press **Train** to start. With the defaults, 3 epochs on mnist5k take a few seconds on a laptop "
                  "CPU."))
        return
    refresh = (views.LIVE_REFRESH_SECONDS if run.snapshot().active else
               views.REPLAY_SECONDS if replaying(run) else None)
    st.fragment(run_every=refresh)(live_view)(run)
    if not replaying(run):
        run_results(run, owned=True)


st.title(_("CNN trainer"))
st.caption(_("Pick data and a model, press Train, and watch the accuracy, loss and validation curves of the "
             "article's §5.4 grow. Training runs in the background: change controls or switch pages, it keeps going."))
st.header(_("1. Data"))
dataset, registered = choose_dataset()
if dataset is None:
    st.stop()
views.data_overview(dataset)
st.header(_("2. Train"))
training = st.container()  # filled last, from the model and settings chosen below, but shown here where the eye is
st.header(_("3. Model"))
start, frozen = choose_start()
model_name, stack = choose_model(dataset, start)
st.header(_("4. Settings"))
config = choose_settings(dataset, model_name, stack, start, frozen)
with training:
    train_section(config, dataset, registered)
if not replaying(state.current_run()):  # its results, here too, wait for the replay's end
    runs_section()
