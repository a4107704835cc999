"""Drawing pieces of the CNN trainer page; each takes what it shows as arguments."""
import dataclasses
import math
from dataclasses import dataclass

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch

from dlplay.augment import Augmentation, augmented_versions
from dlplay.builder import LAYER_KINDS, SIZE_LABELS, LayerSpec
from dlplay.data import Dataset, ImageSet, sample_per_class, to_display
from dlplay.evaluate import Evaluation
from dlplay.inside import dead_relus, feature_maps, first_layer_filters, gradient_norms, to_uint8
from dlplay.models import LayerRow
from dlplay.training.curve_reading import read_curves
from dlplay.training.jobs import RunSnapshot, RunStatus
from ui import chart_words, charts, tables, verdicts
from ui.i18n import _, say, sentence, shown_as, translator

GRID_COLUMNS = 8
SAMPLES_PER_CLASS = 8
MAX_CLASS_ROWS = 12


def image_grid(images: torch.Tensor, captions: list[str], width: int = 72) -> None:
    """uint8 (N, C, H, W) images in rows of GRID_COLUMNS, each with a plain-text caption."""
    scale = max(1, 48 // images.shape[-1])  # enlarge tiny images (filters, late feature maps) with crisp pixels
    pictures = to_display(images.repeat_interleave(scale, 2).repeat_interleave(scale, 3))
    for start in range(0, len(pictures), GRID_COLUMNS):
        columns = st.columns(GRID_COLUMNS)
        for column, picture, caption in zip(columns, pictures[start:start + GRID_COLUMNS],
                                            captions[start:start + GRID_COLUMNS], strict=False):
            column.image(picture, width=width, output_format="PNG", alt=caption)
            column.text(caption)


def data_overview(dataset: Dataset) -> None:
    """How many images of what size, then (folded, to keep Train near the top) the class names and counts (chart
    and table) and a few samples of each class."""
    train_counts = torch.bincount(dataset.train.labels, minlength=dataset.num_classes).tolist()
    test_counts = torch.bincount(dataset.test.labels, minlength=dataset.num_classes).tolist()
    c, h, w = dataset.input_shape
    st.markdown((_("**{train} training** and **{test} test** images of {size} pixels, grayscale, in **{classes} "
                   "classes**.") if c == 1 else
                 _("**{train} training** and **{test} test** images of {size} pixels, colour, in **{classes} "
                   "classes**.")).format(train=f"{len(dataset.train):,}", test=f"{len(dataset.test):,}",
                                         size=f"{w}×{h}", classes=dataset.num_classes))
    details = st.expander(_("Images per class, and samples of each class"), key="trainer.data_details")
    left, right = details.columns([3, 2])
    chart_words.chart(charts.class_counts(dataset.class_names, train_counts, test_counts), "trainer.class_counts",
                      left)
    tables.table({_("class"): dataset.class_names, _("train"): train_counts, _("test"): test_counts}, where=right,
                 height=260)
    details.caption(_("Samples of each class ({count} per row; the first {rows} classes):").format(
        count=SAMPLES_PER_CLASS, rows=MAX_CLASS_ROWS))
    shown = sample_per_class(dataset.train, per_class=SAMPLES_PER_CLASS, seed=0)
    for label in range(min(dataset.num_classes, MAX_CLASS_ROWS)):
        row = shown.images[shown.labels == label]  # (n, C, H, W)
        strip = torch.cat(list(row), dim=2)  # the class's samples side by side: (C, H, n*W)
        name, picture = details.columns([1, 6], vertical_alignment="center")
        name.text(dataset.class_names[label])
        picture.image(to_display(strip.unsqueeze(0))[0], width=min(600, 75 * len(row)), output_format="PNG",
                      alt=_("{count} training pictures of class “{name}”").format(
                          count=len(row), name=dataset.class_names[label]))


def augmentation_preview(sample: ImageSet, class_names, augmentation: Augmentation, seed: int) -> None:
    """Each sample image beside random augmented versions, as the training loop will see them."""
    generator = torch.Generator().manual_seed(seed)
    for image, label in zip(sample.images, sample.labels.tolist(), strict=True):
        moved = augmented_versions(image, augmentation, GRID_COLUMNS - 1, generator)
        images = torch.cat([image.unsqueeze(0), moved])
        image_grid(images, [_("original ({label})").format(label=class_names[label])]
                   + [_("augmented")] * (GRID_COLUMNS - 1), width=64)


DIAGRAM_KINDS = {"Conv2d": "#eef3fb", "MaxPool2d": "#f4f4f4", "Linear": "#e9f6ec", "BatchNorm2d": "#fdf6e3",
                 "BatchNorm1d": "#fdf6e3", "Dropout": "#fdf0e6", "Upsample": "#f4f4f4", "Flatten": "#f4f4f4"}


MAX_DIAGRAM_NODES = 24


def model_diagram(rows: list[LayerRow], input_shape) -> None:
    """The model as a left-to-right chain of its main layers, each with its output shape."""
    nodes = [(_("input"), "×".join(map(str, input_shape)), "#ffffff")] + [
        (r.kind, "×".join(map(str, r.output_shape)), DIAGRAM_KINDS[r.kind]) for r in rows if r.kind in DIAGRAM_KINDS]
    if len(nodes) > MAX_DIAGRAM_NODES:  # a chain this long would be unreadably small
        st.caption(_("A deep network: {count} main layers from {first} to {last}; the summary below lists them "
                     "all.").format(count=len(nodes) - 1, first=nodes[0][1], last=nodes[-1][1]))
        return
    dot = ['digraph model { rankdir=LR; bgcolor="transparent"; node [shape=box, style="rounded,filled", '
           'fontname="Helvetica", fontsize=11, color="#4a6fa5"]; edge [color="#4a6fa5"];']
    dot += [f'n{i} [label="{kind}\\n{size}", fillcolor="{colour}"];' for i, (kind, size, colour) in enumerate(nodes)]
    dot += [" -> ".join(f"n{i}" for i in range(len(nodes))) + ";", "}"]
    st.graphviz_chart("\n".join(dot))


def summary_table(rows: list[LayerRow]) -> None:
    """The Keras-style model summary (layers, output shapes, parameters), folded under its totals."""
    total = sum(r.params for r in rows)
    expander = st.expander(_("Model summary: {layers} layers, {parameters} parameters, output {shape}").format(
        layers=len(rows), parameters=f"{total:,}", shape=rows[-1].output_shape), key="trainer.summary")
    table = pd.DataFrame({_("layer"): [f"{r.name} {r.kind}" for r in rows],
                          _("output shape"): [" × ".join(map(str, r.output_shape)) for r in rows],
                          _("parameters"): [r.params for r in rows]})
    tables.table(table, where=expander, height=min(420, 36 + 35 * len(rows)))
    expander.caption(_("Total parameters: {count}. Softmax is applied inside the cross-entropy loss.").format(
        count=f"{total:,}"))


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, ... (in Chinese: 第 n)."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    forms = {"st": _("{number}st"), "nd": _("{number}nd"), "rd": _("{number}rd"), "th": _("{number}th")}
    return forms[suffix].format(number=n)


def queue_message(snapshot: RunSnapshot) -> str:
    """Where a queued run stands: its place in line and, when it can be estimated, when it should start."""
    place = ordinal(snapshot.queue_position)
    if snapshot.expected_start_seconds is None:
        return _("Queued: {place} in line for a training slot. Other learners' runs are training; you can cancel and "
                 "keep changing settings.").format(place=place)
    return _("Queued: {place} in line for a training slot, expected to start in about {seconds} s. Other learners' "
             "runs are training; you can cancel and keep changing settings.").format(
        place=place, seconds=math.ceil(snapshot.expected_start_seconds))


def progress(snapshot: RunSnapshot, epochs: int) -> None:
    """Status line, progress bar with images/s and ETA (or the queue position while queued)."""
    if snapshot.status is RunStatus.QUEUED:
        st.progress(0.0, text=_("waiting"))
        st.info(queue_message(snapshot))
        return
    fraction = snapshot.step / snapshot.total_steps if snapshot.total_steps else 0.0
    parts = [_("step {step}/{total}").format(step=f"{snapshot.step:,}", total=f"{snapshot.total_steps:,}")]
    if snapshot.batches:
        last = snapshot.batches[-1]
        parts += [_("epoch {epoch}/{epochs}").format(epoch=last.epoch, epochs=epochs),
                  _("{speed} images/s").format(speed=f"{last.images_per_sec:,.0f}")]
        if snapshot.eta_seconds is not None:
            parts.append(_("about {seconds} s left").format(seconds=math.ceil(snapshot.eta_seconds)))
    if snapshot.device_name:
        parts.append(_("on {device}").format(device=snapshot.device_name))
    st.progress(min(1.0, fraction), text=" · ".join(parts))
    message = f"**{sentence(_(snapshot.status.value))}** {say(snapshot.message)}"
    alarming = (RunStatus.DIVERGED, RunStatus.FAILED, RunStatus.CRASHED)
    (st.error if snapshot.status in alarming else st.warning if snapshot.status is RunStatus.STOPPED
     else st.caption)(message)


LIVE_FIGURE = "trainer.live_figure"
# How often a training page redraws: every 2 s, not 1 s, halves what each watching browser and the server spend on
# it (a browser on the training machine spent ~25% of a core at 1 s, and that came out of the run's throughput).
LIVE_REFRESH_SECONDS = 2.0
# A run that finished before the page's next refresh (3 epochs of mnist5k take 1.4 s on a fast CPU) is drawn again
# as it grew: a few frames a second, only in the page that watched it start and only for a few seconds, instead of
# faster refreshes for every page that watches a run.
REPLAY_SECONDS = 0.3
REPLAY_FRAMES_PER_EPOCH = 4
MAX_REPLAY_FRAMES = 16  # at most ~5 s, however many epochs


@dataclass(frozen=True)
class Replay:
    """A finished run's curves drawn again as they grew, from the step the learner saw last, a slice a frame."""

    run_id: str
    start: int  # the last step the learner saw while it trained
    end: int  # the run's last step
    frames: int
    frame: int = 1  # the frame to draw next, 1 to `frames`

    @property
    def step(self) -> int:
        """The last step the frame shows."""
        return self.start + (self.end - self.start) * self.frame // self.frames

    @property
    def over(self) -> bool:
        """Whether every frame has been drawn."""
        return self.frame > self.frames

    def next(self) -> "Replay":
        """The replay at its next frame."""
        return dataclasses.replace(self, frame=self.frame + 1)


def watched(seen: tuple[int, int], snapshot: RunSnapshot) -> tuple[int, int]:
    """(the step up to which the learner watched the run grow, the step of their last look) after a look at
    `snapshot`. A look that added more than an epoch since the last one (or, in a long run, more than a replay's
    frame) jumped over what it added: the mark stays before the jump, so that the replay at the run's end draws
    that stretch growing too; once looks grow smoothly again, the mark follows them."""
    mark, last = seen
    if not snapshot.batches:
        return mark, last
    most = max(snapshot.batches[0].steps_per_epoch, snapshot.total_steps // MAX_REPLAY_FRAMES)
    jumped = snapshot.step - last > most
    return (mark if jumped else snapshot.step), snapshot.step


def replay_for(run_id: str, seen_step: int, snapshot: RunSnapshot) -> Replay | None:
    """A replay of what the learner did not see of a finished run grow (in two frames at least, so that even the
    last stretch grows rather than jumps); None if they saw it all, or if it stopped, diverged or failed: then its
    last state is the news."""
    if snapshot.status is not RunStatus.FINISHED or not snapshot.batches or snapshot.step <= seen_step:
        return None
    epochs_unseen = (snapshot.step - seen_step) / snapshot.batches[0].steps_per_epoch
    frames = min(max(2, round(epochs_unseen * REPLAY_FRAMES_PER_EPOCH)), MAX_REPLAY_FRAMES, snapshot.step - seen_step)
    return Replay(run_id, seen_step, snapshot.step, frames)


def as_of(snapshot: RunSnapshot, step: int) -> RunSnapshot:
    """The run as it stood after `step`: its batches up to that step and the epochs finished by then."""
    per_epoch = snapshot.batches[0].steps_per_epoch if snapshot.batches else 1
    return dataclasses.replace(snapshot, batches=[b for b in snapshot.batches if b.step <= step],
                               epochs=[e for e in snapshot.epochs if e.epoch * per_epoch <= step])


def replay_progress(shown: RunSnapshot, epochs: int) -> bool:
    """Where the replay has reached, why the run is drawn again, and a button to skip to its end: whether it was
    pressed. (As many elements as progress() draws before the curves, so the chart is updated in place.)"""
    epoch = shown.batches[-1].epoch if shown.batches else 0
    st.progress(min(1.0, shown.step / shown.total_steps) if shown.total_steps else 0.0,
                text=_("Replay of the finished run: epoch {epoch}/{epochs}").format(epoch=epoch, epochs=epochs))
    row = st.container(horizontal=True, vertical_alignment="center")
    row.caption(_("It trained faster than this page refreshes (or while you were away), so its recorded curves are "
                  "drawn again as they grew."))
    return row.button(_("Skip to the end"), key="trainer.skip_replay")


def live_figure(run_id: str, snapshot: RunSnapshot, epochs: int) -> go.Figure:
    """The live curves over the run's `epochs` (so they grow across the chart), rebuilt only when there is something
    new to show since the last redraw."""
    shown = (run_id, snapshot.version, snapshot.step)  # a replay's frames share the finished run's version
    cached = st.session_state.get(LIVE_FIGURE)
    if cached and cached[0] == shown:
        return cached[1]
    figure = charts.training_curves([charts.Curves(_("this run"), snapshot.batches, snapshot.epochs)])
    span = [0, epochs * 1.04]  # room for the last epoch's marker
    figure.update_layout(xaxis_range=span, xaxis2_range=span)
    st.session_state[LIVE_FIGURE] = (shown, figure)
    return figure


def curves_explained(snapshot: RunSnapshot, validation_share: float, test_images: int) -> None:
    """What the training, validation and test numbers are measured on, a sentence each."""
    lines = [_("**Training** (solid lines): the {count} images the model learns from, every epoch.").format(
        count=f"{snapshot.train_size:,}")]
    if validation_share > 0 and not (snapshot.epochs and snapshot.epochs[0].val_accuracy is None):
        lines.append(_("**Validation** (dashed): {share} of the training images, held out before training and never "
                       "learnt from, scored after each epoch to catch overfitting.").format(
            share=f"{validation_share:.0%}"))
    lines.append(_("**Test**: the dataset's {count} test images, scored once after the last epoch; the score to "
                   "report.").format(count=f"{test_images:,}"))
    st.caption("  \n".join(lines))


def sidebar_progress(snapshot: RunSnapshot, epochs: int) -> None:
    """A one-line view of the session's active run, shown on every page."""
    if snapshot.status is RunStatus.QUEUED:
        st.caption(_("Training run: {place} in line").format(place=ordinal(snapshot.queue_position)))
        return
    fraction = snapshot.step / snapshot.total_steps if snapshot.total_steps else 0.0
    epoch = snapshot.batches[-1].epoch if snapshot.batches else 0
    st.progress(min(1.0, fraction), text=_("Training run: epoch {epoch}/{epochs} ({status})").format(
        epoch=epoch, epochs=epochs, status=_(snapshot.status.value)))


def results(evaluation: Evaluation, snapshot: RunSnapshot, validation_share: float) -> None:
    """Final test and validation accuracy and test loss, each with what it measures, and a one-line reading of the
    curves."""
    a, b, c, d = st.columns(4)
    a.metric(_("Test accuracy"), f"{evaluation.accuracy:.1%}",
             help=_("The share of the {count} test images classified correctly: images the model never trained on, "
                    "so this is how it should do on new ones.").format(count=f"{len(evaluation.labels):,}"))
    b.metric(_("Test loss"), f"{evaluation.loss:.3f}",
             help=_("The mean cross-entropy over the test images: lower is better, and it also rewards confidence "
                    "in right answers."))
    last = snapshot.epochs[-1] if snapshot.epochs else None
    if last is not None and last.val_accuracy is not None:
        c.metric(_("Validation accuracy"), f"{last.val_accuracy:.1%}",
                 help=_("Measured after the last epoch on the validation images ({share} of the training images, "
                        "held out of training): a different and usually smaller set than the test images, so the two "
                        "scores differ a little.").format(share=f"{validation_share:.0%}"))
    d.metric(_("Epochs run"), len(snapshot.epochs))
    st.info(verdicts.training_curves(read_curves(snapshot.epochs)))


def confusion_section(evaluation: Evaluation, dataset: Dataset, key: str, pictures: bool = True) -> None:
    """Confusion matrix and per-class accuracy; with `pictures`, click a cell (or pick it below) to see its test
    images."""
    left, right = st.columns([3, 2])
    matrix = charts.confusion_matrix(evaluation.confusion, dataset.class_names)
    clickable = dict(on_select="rerun", selection_mode="points") if pictures else {}
    event = chart_words.chart(matrix, f"{key}.chart", left, chart_words.confusion(matrix), **clickable)
    chart_words.chart(charts.per_class_accuracy(dataset.class_names, evaluation.per_class_accuracy),
                      f"{key}.per_class", right)
    if not pictures:
        return
    clicked = charts.clicked_cell(event.selection.points, dataset.class_names) if event else None
    if clicked and st.session_state.get(f"{key}.clicked") != clicked:  # a new click moves the pickers below
        st.session_state[f"{key}.clicked"] = clicked
        st.session_state[f"{key}.true"], st.session_state[f"{key}.predicted"] = clicked
    off_diagonal = evaluation.confusion.clone().fill_diagonal_(-1)
    worst = divmod(int(off_diagonal.argmax()), dataset.num_classes)  # start on the most common confusion
    st.session_state.setdefault(f"{key}.true", worst[0])
    st.session_state.setdefault(f"{key}.predicted", worst[1])
    names = list(range(dataset.num_classes))
    a, b = st.columns(2)
    true_class = a.selectbox(_("True class"), names, format_func=shown_as(dataset.class_names), key=f"{key}.true")
    predicted = b.selectbox(_("Predicted as"), names, format_func=shown_as(dataset.class_names),
                            key=f"{key}.predicted")
    indices = evaluation.cell(true_class, predicted)
    st.caption((_("{count} test image(s) of class “{true}” predicted as “{predicted}” (showing 16). Click a cell of "
                  "the matrix to choose another.") if len(indices) > 16 else
                _("{count} test image(s) of class “{true}” predicted as “{predicted}”. Click a cell of the matrix to "
                  "choose another.")).format(count=len(indices), true=dataset.class_names[true_class],
                                             predicted=dataset.class_names[predicted]))
    if indices:
        shown = indices[:16]
        image_grid(dataset.test.images[shown],
                   [_("{probability} sure").format(probability=f"{evaluation.probabilities[i, predicted]:.1%}")
                    for i in shown])


def mistakes_section(evaluation: Evaluation, dataset: Dataset) -> None:
    """The most confident wrong predictions with their probabilities."""
    worst = evaluation.confident_mistakes(16)
    if not worst:
        st.success(_("No test image was misclassified."))
        return
    st.caption(_("The test images the model got wrong while being most sure of itself."))
    names = dataset.class_names
    image_grid(dataset.test.images[worst],
               [f"{names[evaluation.labels[i]]} → {names[evaluation.predictions[i]]} "
                f"({evaluation.probabilities[i, evaluation.predictions[i]]:.1%})" for i in worst])


def inside_section(model, dataset: Dataset, device) -> None:
    """First-layer filters, feature maps of a chosen test image, gradient norms and dead ReLUs."""
    filters = to_uint8(first_layer_filters(model))  # (out, in, k, k)
    st.markdown(_("**First-layer filters**: the {count} {size} kernels of the first convolution, each scaled from "
                  "black (most negative) to white (most positive).").format(
        count=len(filters), size=f"{filters.shape[-1]}×{filters.shape[-1]}"))
    if filters.shape[1] in (1, 3):
        image_grid(filters[:16], [_("filter {number}").format(number=i) for i in range(min(16, len(filters)))],
                   width=48)
    st.markdown(_("**Feature maps**: what each convolutional block outputs for one test image (first 8 channels, "
                  "after ReLU; black is 0)."))
    index = st.slider(_("Test image"), 0, len(dataset.test) - 1, 0, key="trainer.inside_image")
    image = dataset.test.images[index]
    image_grid(image.unsqueeze(0),
               [_("input ({label})").format(label=dataset.class_names[int(dataset.test.labels[index])])])
    for name, maps in feature_maps(model, image, device):
        st.caption(_("layer {layer}: {count} maps of {size}").format(layer=name, count=maps.shape[0],
                                                                    size=f"{maps.shape[2]}×{maps.shape[1]}"))
        shown = to_uint8(maps[:GRID_COLUMNS].unsqueeze(1))
        image_grid(shown, [_("channel {number}").format(number=c) for c in range(len(shown))], width=64)
    batch = ImageSet(dataset.train.images[:256], dataset.train.labels[:256])
    norms = gradient_norms(model, batch, device)
    dead = dead_relus(model, dataset.test.images[:500], device)
    left, right = st.columns(2)
    left.markdown(_("**Gradient norm per layer** (one batch of 256 training images)"))
    chart_words.chart(charts.layer_bars([n.name for n in norms], [n.value for n in norms], "‖∂loss/∂W‖", log=True),
                      "trainer.inside.norms", left)
    right.markdown(_("**Dead ReLUs**: share of units that output 0 for all of 500 test images"))
    chart_words.chart(charts.layer_bars([d.name for d in dead], [d.value for d in dead], _("dead"), percent=True),
                      "trainer.inside.dead", right)


def stack_editor(layers: list[tuple[int, LayerSpec]], key: str) -> tuple[LayerSpec, ...]:
    """Add, remove, reorder and resize the builder's layers, editing `layers` ((id, spec) pairs) in place."""
    st.caption(_("Conv layers are 3×3 'valid' convolutions with ReLU, as in the article's Keras code; a flatten is "
                 "added before the first dense layer, and a final dense layer outputs one score per class."))
    for position, (layer_id, spec) in enumerate(layers):
        a, b, c, d, e = st.columns([4, 2, 1, 1, 1], vertical_alignment="center")
        a.text(f"{position + 1}. {say(spec.describe())}")
        if spec.kind in SIZE_LABELS:
            size = b.number_input(_(SIZE_LABELS[spec.kind]), 0, 4096, spec.size, key=f"{key}.{layer_id}",
                                  label_visibility="collapsed")
            layers[position] = (layer_id, LayerSpec(spec.kind, int(size)))
        if c.button("↑", key=f"{key}.up.{layer_id}", disabled=position == 0, help=_("Move up")):
            layers[position - 1], layers[position] = layers[position], layers[position - 1]
            st.rerun()
        if d.button("↓", key=f"{key}.down.{layer_id}", disabled=position == len(layers) - 1, help=_("Move down")):
            layers[position + 1], layers[position] = layers[position], layers[position + 1]
            st.rerun()
        if e.button("✕", key=f"{key}.remove.{layer_id}", help=_("Remove")):
            del layers[position]
            st.rerun()
    a, b, c = st.columns([2, 2, 1], vertical_alignment="bottom")
    kind = a.selectbox(_("New layer"), LAYER_KINDS, format_func=translator(), key=f"{key}.new_kind")
    size = b.number_input(_("Size (filters, units or drop %)"), 0, 4096, {"conv": 32, "dense": 64, "dropout": 25}.get(
        kind, 0), disabled=kind not in SIZE_LABELS, key=f"{key}.new_size.{kind}")
    if c.button(_("Add layer"), key=f"{key}.add"):
        layers.append((max((i for i, __ in layers), default=-1) + 1, LayerSpec(kind, int(size))))
        st.rerun()
    return tuple(spec for __, spec in layers)


def augmentation_sliders() -> Augmentation:
    """Sliders for Keras ImageDataGenerator's geometric options."""
    a, b, c = st.columns(3)
    rotation = a.slider(_("Rotation range (°)"), 0, 90, 40, key="augment.rotation")
    width = b.slider(_("Width shift"), 0.0, 0.5, 0.2, step=0.05, key="augment.width")
    height = c.slider(_("Height shift"), 0.0, 0.5, 0.2, step=0.05, key="augment.height")
    a, b, c = st.columns(3)
    shear = a.slider(_("Shear (°)"), 0.0, 45.0, 0.2, step=0.1, key="augment.shear")
    zoom = b.slider(_("Zoom"), 0.0, 0.5, 0.2, step=0.05, key="augment.zoom")
    flip = c.checkbox(_("Horizontal flip"), value=True, key="augment.flip")
    return Augmentation(rotation_deg=rotation, width_shift=width, height_shift=height, shear_deg=shear, zoom=zoom,
                        horizontal_flip=flip)
