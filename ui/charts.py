"""Plotly figures for the pages, built only from data the dlplay core returns; one registered template gives them
all the same margins, colours, legend and numbers.

Numbers are written one way for a learner, on every axis as in every table (ui/tables.py): powers of ten as 1e-9
(never SI prefixes such as 10n or 1μ), log axes labelled at whole powers of ten only, shares as percentages with
one decimal (axes: whole percentages up to 100%), and counts (epochs, rounds, steps) on whole ticks."""
import base64
import html
import io
import itertools
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np
import plotly.colors
import plotly.graph_objects as go
import plotly.io as pio
import streamlit  # noqa: F401  registers Streamlit's own "streamlit" Plotly template, which dlplay's extends
from PIL import Image, ImageDraw, ImageFont

from dlplay.training.trainer import BatchEvent, EpochEvent
from ui.i18n import _

# One palette for every chart: Okabe and Ito's eight colours (Wong, Nature Methods 8:441, 2011), which stay apart
# for colour-blind eyes (tests/unit/test_colour_vision.py simulates them), with TensorFlow Playground's blue and
# orange in place of their own (#0072b2 and #e69f00, 2 and 7 CAM02-UCS units away); yellow, the faintest on white,
# comes last.
BLUE, ORANGE, VERMILLION = "#0877bd", "#f59322", "#d55e00"
PALETTE = (BLUE, ORANGE, "#009e73", VERMILLION, "#cc79a7", "#56b4e9", "#000000", "#f0e442")
# Past eight categories the colours come round again, each round with a second cue of its own: a marker symbol on
# points and lines, a hatch on bars. Category i: colour(i), symbol(i), hatch(i).
SYMBOLS = ("circle", "square", "diamond", "triangle-up")
HATCHES = ("", "/", "x", ".")
# Signed values, everywhere but the playground (which draws them in its class colours, orange below zero and blue
# above, as TensorFlow Playground does): ColorBrewer's red–white–blue, negative red. Its ends are equally dark and
# its middle light, so a value and its negative look equally strong, and red against blue survives every
# colour-vision deficiency (unlike a red–green scale); the test checks its ends and middle.
DIVERGING = "RdBu"
MARGIN = dict(l=10, r=10, t=30, b=10)
MAX_BATCH_POINTS = 600  # cap the per-batch traces: redrawing many points each second grows server memory
NUMBERS = dict(exponentformat="e", separatethousands=True)  # 1e-9 and 12,000; Plotly's default prints 1n and 12k
pio.templates["dlplay"] = go.layout.Template(layout=dict(margin=MARGIN, colorway=PALETTE, xaxis=NUMBERS, yaxis=NUMBERS,
                                                         legend=dict(orientation="h", y=-0.25)))
PERCENT_AXIS = dict(range=[0, 1], tickvals=[0, 0.2, 0.4, 0.6, 0.8, 1], tickformat=".0%")  # labelled up to 100%
SHARE = ".1%"  # a share printed on a bar or in a hover: one decimal, as in the tables
# Every figure: Streamlit's theme, then dlplay's margins and colours, merged once under a name of its own (plotly
# merges a "streamlit+dlplay" default again for every figure: 21 ms a figure against 1.7 ms on this machine).
pio.templates["streamlit_dlplay"] = pio.templates.merge_templates(pio.templates["streamlit"], pio.templates["dlplay"])
pio.templates.default = "streamlit_dlplay"


def colour(i: int) -> str:
    """Series or category i's colour: the palette's, round and round."""
    return PALETTE[i % len(PALETTE)]


def class_colour(k: int) -> str:
    """Class k's colour: class 0 orange and class 1 blue, as TensorFlow Playground draws them, then the palette."""
    return PLAYGROUND_COLOURS[k % len(PLAYGROUND_COLOURS)]


def symbol(i: int) -> str:
    """Category i's marker symbol: a circle for the first eight, another shape for each further eight."""
    return SYMBOLS[i // len(PALETTE) % len(SYMBOLS)]


def hatch(i: int) -> str:
    """Category i's bar hatch: none for the first eight, another pattern for each further eight."""
    return HATCHES[i // len(PALETTE) % len(HATCHES)]


def text(label: str) -> str:
    """Escape a user-provided label so Plotly shows it as text, never as HTML."""
    return html.escape(label)


def log_axis(values: Sequence[float]) -> dict:
    """A log axis for positive `values`, labelled at whole powers of ten only (Plotly's own choice labels the 2s
    and 5s between them in small print), no more than about six labels; under one decade, plain numbers."""
    finite = [v for v in values if math.isfinite(v) and v > 0]
    decades = math.log10(max(finite) / min(finite)) if finite else 0.0
    if decades < 1:
        return dict(type="log", tickformat="~g")
    return dict(type="log", dtick=max(1, math.ceil(decades / 6)))


def whole_ticks(first: float, last: float, most: int = 10) -> dict:
    """An axis of counts (epochs, rounds, steps) from `first` to `last` with ticks on whole numbers only: every
    1, 2, 5, 10, 20, ... so that no more than `most` are drawn."""
    steps = (digit * 10 ** power for power in itertools.count() for digit in (1, 2, 5))
    return dict(tick0=0, dtick=next(step for step in steps if (last - first) / step <= most))


def smooth(values: Sequence[float], weight: float = 0.9) -> list[float]:
    """TensorBoard-style exponential moving average with bias correction."""
    out, average = [], 0.0
    for i, v in enumerate(values, start=1):
        average = weight * average + (1 - weight) * v
        out.append(average / (1 - weight ** i))
    return out


@dataclass(frozen=True)
class Curves:
    """One run's curves: its label, per-batch events and per-epoch events."""

    label: str
    batches: Sequence[BatchEvent]
    epochs: Sequence[EpochEvent]


def training_curves(runs: Sequence[Curves]) -> go.Figure:
    """Accuracy and loss against epochs: smoothed per-batch training, per-epoch training and validation."""
    # Two side-by-side axes laid out by hand: plotly's make_subplots costs ~15 ms per call, and this figure is
    # redrawn every second while a run trains, on the same cores and under the same GIL as the training thread.
    fig = go.Figure(layout=dict(
        xaxis=dict(domain=[0, 0.46], title=_("epoch")), yaxis=dict(title=_("accuracy"), tickformat=".0%"),
        xaxis2=dict(domain=[0.54, 1], title=_("epoch")), yaxis2=dict(anchor="x2", title=_("cross-entropy")),
        annotations=[dict(text=title, x=x, y=1.08, xref="paper", yref="paper", showarrow=False, font=dict(size=14))
                     for title, x in ((_("Accuracy"), 0.23), (_("Loss"), 0.77))]))
    for i, run in enumerate(runs):
        hue, name = colour(i), text(run.label)
        if run.batches:
            steps_per_epoch, stride = run.batches[0].steps_per_epoch, -(-len(run.batches) // MAX_BATCH_POINTS)
            x = [b.step / steps_per_epoch for b in run.batches[::stride]]
            acc = smooth([b.accuracy for b in run.batches])[::stride]
            loss = smooth([b.loss for b in run.batches])[::stride]
            for axis, y in (("", acc), ("2", loss)):
                fig.add_trace(go.Scatter(x=x, y=y, mode="lines", line=dict(color=hue, width=1), opacity=0.35,
                                         name=_("{run}: training (per batch, smoothed)").format(run=name),
                                         legendgroup=name,
                                         showlegend=not axis, xaxis=f"x{axis}", yaxis=f"y{axis}"))
        epochs = [e.epoch for e in run.epochs]
        series = [("", [e.train_accuracy for e in run.epochs], _("training (epoch)"), "solid"),
                  ("2", [e.train_loss for e in run.epochs], _("training (epoch)"), "solid")]
        if run.epochs and run.epochs[0].val_accuracy is not None:
            series += [("", [e.val_accuracy for e in run.epochs], _("validation"), "dash"),
                       ("2", [e.val_loss for e in run.epochs], _("validation"), "dash")]
        for axis, y, kind, dash in series:
            fig.add_trace(go.Scatter(x=epochs, y=y, mode="lines+markers", line=dict(color=hue, dash=dash),
                                     marker=dict(symbol=symbol(i)),
                                     name=f"{name}: {kind}", legendgroup=name, showlegend=not axis,
                                     xaxis=f"x{axis}", yaxis=f"y{axis}"))
    fig.update_layout(height=380, margin=dict(t=40))
    fig.update_xaxes(whole_ticks(0, max((x for trace in fig.data for x in trace.x), default=1)))
    return fig


def class_counts(class_names: Sequence[str], train_counts: Sequence[int], test_counts: Sequence[int]) -> go.Figure:
    """Grouped bars: images per class in the training and test splits."""
    names = [text(n) for n in class_names]
    fig = go.Figure([go.Bar(x=names, y=list(train_counts), name=_("train")),
                     go.Bar(x=names, y=list(test_counts), name=_("test"))])
    fig.update_layout(barmode="group", height=260, margin=dict(t=10), yaxis_title=_("images"),
                      xaxis=dict(type="category"))
    return fig


def confusion_matrix(confusion, class_names: Sequence[str]) -> go.Figure:
    """A heat-map of counts: rows are the true classes, columns the predicted ones."""
    names = [text(n) for n in class_names]
    counts = confusion.tolist()
    fig = go.Figure(go.Heatmap(z=counts, x=names, y=names, colorscale="Blues", text=counts, texttemplate="%{text}",
                               hoverinfo="skip", showscale=False))
    # Plotly cannot select heat-map cells, so an invisible marker sits on each cell to be clicked instead.
    cells = [(true, predicted) for true in range(len(names)) for predicted in range(len(names))]
    fig.add_trace(go.Scatter(
        x=[names[p] for __, p in cells], y=[names[t] for t, __ in cells], mode="markers",
        marker=dict(symbol="square", size=max(8, 300 // len(names)), opacity=0.01), showlegend=False,
        customdata=[counts[t][p] for t, p in cells],
        hovertemplate=_("true %{y}, predicted %{x}: %{customdata}") + "<extra></extra>"))
    fig.update_layout(height=420, margin=dict(t=10), clickmode="event+select",
                      xaxis=dict(title=_("predicted"), type="category"),
                      yaxis=dict(title=_("true"), autorange="reversed", type="category"))
    return fig


def clicked_cell(points: Sequence[dict], class_names: Sequence[str]) -> tuple[int, int] | None:
    """(true, predicted) class indices of the confusion-matrix cell a user clicked, from Streamlit's selection."""
    index = {text(n): i for i, n in enumerate(class_names)}
    for point in points:
        true, predicted = index.get(str(point.get("y"))), index.get(str(point.get("x")))
        if true is not None and predicted is not None:
            return true, predicted
    return None


def per_class_accuracy(class_names: Sequence[str], accuracy: Sequence[float]) -> go.Figure:
    """Horizontal bars: the share of each class's test images classified correctly."""
    fig = go.Figure(go.Bar(x=list(accuracy), y=[text(n) for n in class_names], orientation="h",
                           texttemplate=f"%{{x:{SHARE}}}", textposition="auto"))
    fig.update_layout(height=max(220, 24 * len(class_names)), margin=dict(t=10), xaxis=PERCENT_AXIS,
                      yaxis=dict(type="category", autorange="reversed"))
    return fig


def layer_bars(names: Sequence[str], values: Sequence[float], axis_title: str, log: bool = False,
               percent: bool = False) -> go.Figure:
    """One bar per name, in order (layers input side first, or a model's forms), from 0; with `log`, on a log axis
    when the values span more than two decades (a log axis makes small differences look large, and its bars start
    nowhere in particular)."""
    fig = go.Figure(go.Bar(x=[text(n) for n in names], y=list(values)))
    log = log and spans_decades(values)
    fig.update_layout(height=280, margin=dict(t=10), xaxis=dict(type="category"),
                      yaxis_title=_("{title} (log scale)").format(title=axis_title) if log else axis_title)
    if log:
        fig.update_yaxes(log_axis(values))
    if percent:
        fig.update_yaxes(PERCENT_AXIS)
    return fig


def spans_decades(values: Sequence[float]) -> bool:
    """Whether positive values span more than two decades (then a log axis shows them all)."""
    finite = [v for v in values if math.isfinite(v)]
    return bool(finite) and min(finite) > 0 and max(finite) / min(finite) > 100


def _line_cue(i: int) -> dict:
    """Line i's mode: past the palette's eight colours, which come round again, a few markers of its symbol too."""
    if i < len(PALETTE):
        return dict(mode="lines")
    return dict(mode="lines+markers", marker=dict(symbol=symbol(i), size=9, maxdisplayed=12))


def lines(series: dict[str, Sequence[float]], x: Sequence[float] | None = None, x_title: str = "",
          y_title: str = "", title: str | None = None, log_y: bool | None = None, height: int = 300,
          mark_x: float | None = None, y_range: tuple[float, float] | None = None,
          dashed: Collection[str] = ()) -> go.Figure:
    """One line per named series (against `x`, or their index); a log y axis when asked, or (log_y None) when the
    values span more than two decades; `mark_x` draws a dotted vertical line; `y_range` holds the y axis; the series
    named in `dashed` are dashed, so that a line drawn under them shows between the dashes."""
    values = [v for ys in series.values() for v in ys]
    log = spans_decades(values) if log_y is None else log_y
    fig = go.Figure([go.Scatter(x=list(x) if x is not None else None, y=list(ys), name=text(name),
                                line=dict(dash="dash", width=3) if name in dashed else None, **_line_cue(i))
                     for i, (name, ys) in enumerate(series.items())])
    fig.update_layout(height=height, title=title, xaxis_title=x_title, margin=dict(t=30 if title else 10),
                      yaxis=dict(title=_("{title} (log scale)").format(title=y_title) if log and y_title else y_title,
                                 range=y_range, **(log_axis(values) if log else dict(type="linear"))))
    xs = list(x) if x is not None else list(range(max((len(ys) for ys in series.values()), default=1)))
    if xs and all(float(v).is_integer() for v in xs):  # epochs, rounds, steps, layers: whole ticks only
        fig.update_xaxes(whole_ticks(min(xs), max(xs)))
    if mark_x is not None:
        fig.add_vline(x=mark_x, line_dash="dot")
    return fig


def curve_with_point(x: Sequence[float], y: Sequence[float], point: tuple[float, float], name: str,
                     x_title: str, y_title: str) -> go.Figure:
    """A function's curve with one point of it marked."""
    fig = go.Figure([go.Scatter(x=list(x), y=list(y), mode="lines", name=text(name)),
                     go.Scatter(x=[point[0]], y=[point[1]], mode="markers", marker=dict(size=12),
                                name=_("this neuron"))])
    fig.update_layout(height=260, margin=dict(t=10), xaxis_title=x_title, yaxis_title=y_title)
    return fig


def bars(labels: Sequence[str], values: Sequence[float], horizontal: bool = False, height: int = 260) -> go.Figure:
    """Bars of probabilities (0 to 100%), labelled with their values; horizontal bars list the first label on top."""
    names = [text(n) for n in labels]
    bar = (go.Bar(x=list(values), y=names, orientation="h", texttemplate=f"%{{x:{SHARE}}}")
           if horizontal else go.Bar(x=names, y=list(values), texttemplate=f"%{{y:{SHARE}}}"))
    fig = go.Figure(bar)
    fig.update_layout(height=height, margin=dict(t=10), xaxis=PERCENT_AXIS if horizontal else dict(type="category"),
                      yaxis=dict(type="category", autorange="reversed") if horizontal else PERCENT_AXIS)
    return fig


def per_layer_boxes(samples: Sequence[Sequence[float]], title: str) -> go.Figure:
    """One box plot of values per layer, input side on the left."""
    fig = go.Figure([go.Box(y=list(sample), name=str(i), boxpoints=False, marker_color=PALETTE[0])
                     for i, sample in enumerate(samples, start=1)])
    fig.update_layout(height=300, showlegend=False, title=title, xaxis_title=_("hidden layer"))
    return fig


def race_contour(x: Sequence[float], y: Sequence[float], z: Sequence[Sequence[float]],
                 minima: Sequence[tuple[float, float]], paths: dict[str, Sequence[tuple[float, float]]],
                 x_range: tuple[float, float], y_range: tuple[float, float], frames: int = 40) -> go.Figure:
    """A loss surface's contour lines (z as given, e.g. log-scaled), its minima as stars, and each named path, drawn
    whole and replayed in the browser (Plotly frames up to `frames` evenly spaced steps, a Play button and a step
    slider: no trip to the server per step)."""
    x, y, z = (np.asarray(values, dtype=np.float32) for values in (x, y, z))  # half the bytes of float64
    fig = go.Figure(go.Contour(x=x, y=y, z=z, colorscale="Greys", showscale=False,
                               contours=dict(coloring="lines"), hoverinfo="skip", ncontours=30))
    if minima:
        fig.add_trace(go.Scatter(x=[m[0] for m in minima], y=[m[1] for m in minima], mode="markers", name=_("minimum"),
                                 marker=dict(symbol="star", size=14, color="gold", line=dict(color="black", width=1))))
    first = len(fig.data)

    # Arrays, not lists: Plotly checks a list number by number and sends an array as one block of bytes (a touch
    # that redraws the race costs a fifth of the time); float32 holds the 4 decimals drawn.
    arrays = [np.round(np.asarray(points, dtype=np.float32).reshape(-1, 2), 4) for points in paths.values()]

    def upto(step: int) -> list[go.Scatter]:
        """The paths' traces as far as `step` (coordinates to 4 decimals: the frames stay small)."""
        return [go.Scatter(x=xy[:step + 1, 0], y=xy[:step + 1, 1]) for xy in arrays]

    last = max((len(points) for points in paths.values()), default=1) - 1
    steps = sorted({round(i * last / frames) for i in range(frames + 1)})
    for i, (name, trace) in enumerate(zip(paths, upto(last), strict=True)):
        fig.add_trace(trace.update(mode="lines+markers", marker=dict(size=3), name=text(name),
                                   line=dict(color=colour(i))))
    fig.frames = [go.Frame(name=str(step), data=upto(step), traces=list(range(first, len(fig.data)))) for step in steps]
    still = dict(frame=dict(duration=0, redraw=False), transition=dict(duration=0), mode="immediate")
    fig.update_layout(
        height=540, margin=dict(t=10), xaxis=dict(range=x_range), yaxis=dict(range=y_range),
        legend=dict(orientation="h", y=-0.28),
        updatemenus=[dict(type="buttons", direction="left", x=0, xanchor="left", y=-0.08, yanchor="top",
                          showactive=False, pad=dict(t=20), buttons=[
                              dict(label="▶ " + _("Play"), method="animate",
                                   args=[None, dict(frame=dict(duration=100, redraw=False), transition=dict(duration=0),
                                                    fromcurrent=False, mode="immediate")]),
                              dict(label="❚❚ " + _("Pause"), method="animate", args=[[None], still])])],
        sliders=[dict(active=len(steps) - 1, x=0.2, len=0.8, y=-0.08, yanchor="top", pad=dict(t=10),
                      currentvalue=dict(prefix=_("step") + " "),
                      steps=[dict(label=str(step), method="animate", args=[[str(step)], still]) for step in steps])])
    return fig


SURFACE_OPACITY = 0.55  # the surface's colours over white, so that the points stand out
PLAYGROUND_COLOURS = (ORANGE, BLUE, *PALETTE[2:])  # the palette, class 0 orange and class 1 blue: class_colour


def _surface_scale(task: str, classes: int, discretize: bool, z: np.ndarray, targets: Sequence[np.ndarray]):
    """The surface's colours: (values to colour, colour scale, zmin, zmax), as playground_surface describes. For
    regression the scale is symmetric about 0 and shared with the points: ± the largest |prediction| or |target|."""
    if task == "regression":
        limit = max(float(np.abs(values).max(initial=0.0)) for values in (z, *targets)) or 1.0
        return z, DIVERGING, -limit, limit
    if classes == 2:
        return (np.sign(z) if discretize else z), [[0, class_colour(0)], [0.5, "#ffffff"], [1, class_colour(1)]], -1, 1
    return z, [[i / (classes - 1), class_colour(i)] for i in range(classes)], 0, classes - 1


def playground_surface(axis: Sequence[float], values, train: tuple, test: tuple | None, task: str, classes: int,
                       discretize: bool, height: int = 440) -> go.Figure:
    """The network's output over the plane as a heat-map, with the training points (circles) and, when given,
    the test points (outlined). Two classes: P(1) − P(0) from orange to blue; more: the predicted class's colour;
    regression: the prediction, and each point its target, on one colour axis symmetric about 0 with its bar."""
    shown = [points for points in (train, test) if points is not None]
    z, scale, zmin, zmax = _surface_scale(task, classes, discretize, values.numpy(),  # NumPy: validated at once
                                          [y.numpy() for _x, y in shown])
    regression = task == "regression"
    shared = dict(coloraxis="coloraxis") if regression else {}
    fig = go.Figure(go.Heatmap(x=list(axis), y=list(axis), z=z, opacity=SURFACE_OPACITY, hoverinfo="skip",
                               **(shared or dict(colorscale=scale, zmin=zmin, zmax=zmax, showscale=False))))
    for points, name, outline in ((train, _("training points"), False), (test, _("test points"), True)):
        if points is None:
            continue
        x, y = points
        colours = y.tolist() if regression else [class_colour(int(k)) for k in y]
        shapes = "circle" if regression else [symbol(int(k)) for k in y]
        fig.add_trace(go.Scatter(x=x[:, 0].tolist(), y=x[:, 1].tolist(), mode="markers", name=name,
                                 marker=dict(size=6, color=colours, symbol=shapes, **shared,
                                             line=dict(width=1.5 if outline else 0.5,
                                                       color="black" if outline else "white"))))
    fig.update_layout(height=height, xaxis=dict(title="x₁", range=[axis[0], axis[-1]], constrain="domain"),
                      yaxis=dict(title="x₂", range=[axis[0], axis[-1]], scaleanchor="x", constrain="domain"),
                      showlegend=False)
    if regression:
        fig.update_layout(coloraxis=dict(colorscale=scale, cmin=zmin, cmax=zmax,
                                         colorbar=dict(title=dict(text=_("output and target"), side="right"),
                                                       thickness=14)))
    return fig


def _colours(values: np.ndarray, scale, zmin: float, zmax: float) -> np.ndarray:
    """Values mapped through a colour scale (a Plotly name or [[position, colour], ...]) from zmin to zmax to RGB
    floats, as Plotly does."""
    scale = plotly.colors.get_colorscale(scale) if isinstance(scale, str) else scale
    positions = [float(p) for p, __ in scale]
    rgb = np.array([hex_rgb(c) if c.startswith("#") else plotly.colors.unlabel_rgb(c) for __, c in scale], dtype=float)
    t = np.clip((values - zmin) / max(zmax - zmin, 1e-12), 0, 1)
    return np.stack([np.interp(t, positions, rgb[:, i]) for i in range(3)], axis=-1)


COLOUR_BAR_WIDTH = 64  # pixels the playing picture's colour bar (regression) adds on the right


def _colour_bar(height: int, scale, limit: float) -> Image.Image:
    """A vertical colour bar from +limit (top) through 0 to −limit, labelled at those three values."""
    bar = Image.new("RGB", (COLOUR_BAR_WIDTH, height), "white")
    top, bottom = 6, height - 6
    ramp = np.linspace(limit, -limit, bottom - top)[:, None].repeat(14, 1)  # (rows, 14): one value a row
    bar.paste(Image.fromarray(_colours(ramp, scale, -limit, limit).round().astype(np.uint8)), (6, top))
    draw, font = ImageDraw.Draw(bar), ImageFont.load_default(size=11)
    for label, y in ((f"{limit:+.2f}", top), ("0", (top + bottom) / 2), (f"{-limit:+.2f}", bottom)):
        draw.line((20, y, 23, y), fill="black")
        draw.text((25, y), label, fill="black", font=font, anchor="lm")
    return bar


def playground_picture(axis: Sequence[float], values, train: tuple, test: tuple | None, task: str, classes: int,
                       discretize: bool, size: int = 440) -> np.ndarray:
    """playground_surface as a plain (size, size, 3) picture, drawn on the server: while the playground plays, a
    browser redraws a picture in no time, and a Plotly heat-map with its points in about 0.1–0.2 s on a small CPU
    (bench/playground_bench.py). For regression, its colour bar widens it by COLOUR_BAR_WIDTH."""
    shown = [points for points in (train, test) if points is not None]
    z, scale, zmin, zmax = _surface_scale(task, classes, discretize, values.numpy(), [y.numpy() for _x, y in shown])
    shaded = 255 + (_colours(z, scale, zmin, zmax) - 255) * SURFACE_OPACITY
    picture = Image.fromarray(shaded[::-1].round().astype(np.uint8)).resize((size, size), Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(picture)
    step = (axis[-1] - axis[0]) / (len(axis) - 1)
    low, span = axis[0] - step / 2, axis[-1] - axis[0] + step

    for points, outline in ((train, False), (test, True)):
        if points is None:
            continue
        x, y = points
        if task == "regression":
            fills, shapes = _colours(y.numpy(), scale, zmin, zmax).round().astype(int), ["circle"] * len(y)
        else:
            fills, shapes = [hex_rgb(class_colour(int(k))) for k in y], [symbol(int(k)) for k in y]
        for (px, py), fill, shape in zip(x[:, :2].tolist(), fills, shapes, strict=True):
            _mark(draw, (px - low) / span * size, (1 - (py - low) / span) * size, shape,
                  fill=tuple(int(c) for c in fill), outline="black" if outline else "white", width=2 if outline else 1)
    if task == "regression":
        framed = Image.new("RGB", (size + COLOUR_BAR_WIDTH, size), "white")
        framed.paste(picture)
        framed.paste(_colour_bar(size, scale, zmax), (size, 0))
        picture = framed
    return np.asarray(picture)


def _mark(draw: ImageDraw.ImageDraw, x: float, y: float, shape: str, **style) -> None:
    """One point at (x, y) in a picture, about 7 pixels across, of one of the SYMBOLS' shapes."""
    r = 3.5
    corners = {"square": [(x - r, y - r), (x + r, y - r), (x + r, y + r), (x - r, y + r)],
               "diamond": [(x, y - r - 1), (x + r + 1, y), (x, y + r + 1), (x - r - 1, y)],
               "triangle-up": [(x, y - r - 1), (x + r + 1, y + r), (x - r - 1, y + r)]}
    if shape in corners:
        draw.polygon(corners[shape], **style)
    else:
        draw.ellipse((x - r, y - r, x + r, y + r), **style)


def _signed_rgb(values: np.ndarray) -> np.ndarray:
    """Values as RGB: orange below zero, white at zero, blue above, scaled to their largest |value|."""
    t = np.clip(values / max(float(np.abs(values).max(initial=0.0)), 1e-9), -1, 1)[..., None]
    orange, white, blue = (np.array(hex_rgb(c), dtype=float) for c in (class_colour(0), "#ffffff", class_colour(1)))
    return np.where(t < 0, white + (orange - white) * -t, white + (blue - white) * t).round().astype(np.uint8)


def hex_rgb(colour: str) -> tuple[int, int, int]:
    """'#rrggbb' as an (r, g, b) tuple."""
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


def _png_uri(rgb: np.ndarray) -> str:
    """An RGB array as a PNG data URI."""
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _text_width(label: str, size: float) -> float:
    """About how wide `label` is set at font size `size`: a CJK character one em, any other 0.62 em."""
    return sum(1.0 if ord(c) >= 0x2E80 else 0.62 for c in label) * size


def _link_colour(value: float, largest: float) -> str:
    """A weight's colour: grey when small, towards blue when positive and orange when negative as |w| grows."""
    t = min(1.0, abs(value) / largest)
    grey, end = np.array(hex_rgb("#d0d4d6"), dtype=float), np.array(hex_rgb(class_colour(int(value >= 0))))
    r, g, b = (grey + (end - grey) * t).round().astype(int)
    return f"#{r:02x}{g:02x}{b:02x}"


def network_svg(columns: Sequence, weights: Sequence, input_names: Sequence[str], output_names: Sequence[str],
                headers: Sequence[tuple[str, str]], classes: int, width: int = 600) -> str:
    """The network as an SVG drawing in the manner of TensorFlow Playground: each node a box holding its picture
    over the plane (`columns`: one (nodes, r, r) tensor per column, inputs to outputs, rows along x₂), each weight a
    curve from one box to the next, blue when positive and orange when negative, wider and stronger as |w| grows
    (`weights`: one (out, in) matrix per layer). Inputs and hidden neurons are coloured orange below zero and blue
    above, each to its own largest |value|; outputs are each class's probability from white to the class's colour
    (`classes` > 1) or the prediction, signed. `headers`: each column's (name, short name), the short one used when
    the name does not fit; the drawing is `width` units wide and meant to be shown at about that many pixels."""
    top, font = 26.0, 13.0
    left, right = (max(_text_width(name, font) for name in names) + 8 for names in (input_names, output_names))
    spacing = (width - left - right) / len(columns)
    box = float(np.clip(spacing * 0.6, 18, 88))
    pitch = box + max(8.0, box * 0.22)
    rows = max(len(column) for column in columns)
    height = top + rows * pitch + 4
    centres = [[(left + spacing * (i + 0.5), top + pitch * (rows / 2 + j - (len(column) - 1) / 2))
                for j in range(len(column))] for i, column in enumerate(columns)]
    largest = max((float(w.abs().max()) for w in weights), default=1.0) or 1.0
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height:.0f}" width="{width}" '
             f'height="{height:.0f}" font-family="sans-serif" fill="#333">']
    for layer, w in enumerate(weights):  # the links first, under the boxes
        for (to, frm), value in np.ndenumerate(w.numpy()):
            (x0, y0), (x1, y1) = centres[layer][frm], centres[layer + 1][to]
            x0, x1, middle = x0 + box / 2, x1 - box / 2, (x0 + x1) / 2
            parts.append(f'<path d="M{x0:.1f},{y0:.1f} C{middle:.1f},{y0:.1f} {middle:.1f},{y1:.1f} {x1:.1f},{y1:.1f}" '
                         f'fill="none" stroke="{_link_colour(value, largest)}" '
                         f'stroke-width="{0.6 + 5.4 * min(1.0, abs(value) / largest):.2f}"/>')
    for i, (column, (name, short)) in enumerate(zip(columns, headers, strict=True)):
        outputs = i == len(columns) - 1
        label = name if _text_width(name, font) <= spacing * 0.95 else short
        if label:
            parts.append(f'<text x="{centres[i][0][0]:.1f}" y="{top - 9:.1f}" font-size="{font}" '
                         f'text-anchor="middle">{html.escape(label)}</text>')
        for k, values in enumerate(column.flip(1).numpy()):  # rows along x₂ go up, as on the plot
            if outputs and classes > 1:
                t = np.clip(values, 0, 1)[..., None]
                rgb = (255 + (np.array(hex_rgb(class_colour(k)), dtype=float) - 255) * t).round().astype(np.uint8)
            else:
                rgb = _signed_rgb(values)
            x, y = centres[i][k]
            parts.append(f'<image x="{x - box / 2:.1f}" y="{y - box / 2:.1f}" width="{box:.1f}" height="{box:.1f}" '
                         f'preserveAspectRatio="none" href="{_png_uri(rgb)}"/>'
                         f'<rect x="{x - box / 2:.1f}" y="{y - box / 2:.1f}" width="{box:.1f}" height="{box:.1f}" '
                         f'fill="none" stroke="#555" stroke-width="1"/>')
            if i == 0:
                parts.append(f'<text x="{x - box / 2 - 5:.1f}" y="{y:.1f}" font-size="{font}" text-anchor="end" '
                             f'dominant-baseline="central">{html.escape(input_names[k])}</text>')
            elif outputs:
                parts.append(f'<text x="{x + box / 2 + 4:.1f}" y="{y:.1f}" font-size="{font}" '
                             f'dominant-baseline="central">{html.escape(output_names[k])}</text>')
    return "".join(parts) + "</svg>"


HIGHLIGHT, FRAME = VERMILLION, BLUE  # cells outlined and marked, and a frame dashed, over a picture


def pixel_grid(values=None, rgb=None, title: str = "", signed: bool = False, cells: Sequence[tuple[int, int]] = (),
               marks: Sequence[tuple[int, int]] = (), frame: tuple[int, int, int, int] | None = None,
               height: int = 320) -> go.Figure:
    """A picture or map drawn pixel by pixel (row 0 on top): `values` (H, W) as a heat-map (grey, or DIVERGING
    around 0 when `signed`: negative red, positive blue) or `rgb` (H, W, 3) uint8; `cells` outlined and `marks`
    crossed in HIGHLIGHT, `frame` (top, left, bottom, right) dashed."""
    if rgb is not None:
        fig = go.Figure(go.Image(z=rgb, hovertemplate=_("row %{y}, column %{x}: %{z}") + "<extra></extra>"))
    else:
        limit = max(float(np.abs(values).max()), 1e-9) if signed else None
        fig = go.Figure(go.Heatmap(z=values, colorscale=DIVERGING if signed else "gray",
                                   zmin=-limit if signed else None, zmax=limit, showscale=signed,
                                   hovertemplate=_("row %{y}, column %{x}: %{z:.3f}") + "<extra></extra>"))
    for row, col in cells:
        fig.add_shape(type="rect", x0=col - 0.5, x1=col + 0.5, y0=row - 0.5, y1=row + 0.5,
                      line=dict(color=HIGHLIGHT, width=2.5))
    if marks:
        fig.add_trace(go.Scatter(x=[c for __, c in marks], y=[r for r, __ in marks], mode="markers", hoverinfo="skip",
                                 marker=dict(symbol="x", size=7, color=HIGHLIGHT), showlegend=False))
    if frame is not None:
        top, left, bottom, right = frame
        fig.add_shape(type="rect", x0=left - 0.5, x1=right - 0.5, y0=top - 0.5, y1=bottom - 0.5,
                      line=dict(color=FRAME, width=2, dash="dash"))
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=40, b=10),
                      xaxis=dict(visible=False, constrain="domain"),
                      yaxis=dict(visible=False, autorange="reversed", scaleanchor="x"))
    return fig


def padding_grid(n: int, before: int, after: int, window: Sequence[int], anchors: Sequence[int],
                 height: int = 340) -> go.Figure:
    """An n×n input inside its zero border (grey), the first kernel position's cells outlined and a dot where each
    kernel position starts (`window`, `anchors`: padded coordinates along a side)."""
    size = n + before + after
    inside = np.zeros((size, size))
    inside[before:before + n, before:before + n] = 1
    fig = go.Figure(go.Heatmap(z=inside, colorscale=[[0, "#e6e6e6"], [1, "#9ecae1"]], showscale=False, xgap=1,
                               ygap=1, hoverinfo="skip"))
    fig.add_trace(go.Scatter(x=[c for r in anchors for c in anchors], y=[r for r in anchors for c in anchors],
                             mode="markers", marker=dict(size=7, color="#333333"), hoverinfo="skip",
                             name=_("where each kernel position starts")))
    for row in window:
        for col in window:
            fig.add_shape(type="rect", x0=col - 0.5, x1=col + 0.5, y0=row - 0.5, y1=row + 0.5,
                          line=dict(color=HIGHLIGHT, width=3))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), legend=dict(y=-0.05),
                      xaxis=dict(visible=False, constrain="domain"),
                      yaxis=dict(visible=False, autorange="reversed", scaleanchor="x"))
    return fig


def client_classes(counts, class_names: Sequence[str]) -> go.Figure:
    """Stacked bars: how many images of each class every client holds (`counts`: clients × classes), the clients
    numbered along the axis (names as long as "client 12" run into each other)."""
    fig = go.Figure([go.Bar(x=list(range(1, len(counts) + 1)), y=[int(row[c]) for row in counts],
                            name=text(name), marker=dict(color=class_colour(c), pattern_shape=hatch(c)))
                     for c, name in enumerate(class_names)])
    fig.update_layout(barmode="stack", height=300, margin=dict(t=10), yaxis_title=_("images"),
                      xaxis=dict(title=_("client"), tickmode="linear", tick0=1, dtick=1),
                      legend=dict(title=_("class"), y=-0.35))
    return fig


def size_accuracy(names: Sequence[str], sizes_kb: Sequence[float], accuracies: Sequence[float]) -> go.Figure:
    """Each form of a model as a point of its own colour, named in the legend (a name printed beside its point is
    cut off at the chart's edge): compressed size across, test accuracy up."""
    fig = go.Figure([go.Scatter(x=[size], y=[accuracy], mode="markers", name=text(name),
                                marker=dict(size=12, color=colour(i), symbol=symbol(i)),
                                hovertemplate=f"%{{x:,.1f}} KB, %{{y:{SHARE}}}")
                     for i, (name, size, accuracy) in enumerate(zip(names, sizes_kb, accuracies, strict=True))])
    fig.update_layout(height=360, margin=dict(t=10), legend=dict(y=-0.3),
                      xaxis=dict(title=_("{title} (log scale)").format(title=_("gzip-compressed size (KB)")),
                                 **log_axis(sizes_kb)),
                      yaxis=dict(title=_("test accuracy"), tickformat=".0%"))
    return fig


def compare_bars(categories: Sequence[str], series: dict[str, Sequence[float]], y_title: str,
                 percent: bool = False) -> go.Figure:
    """Bars grouped by category, one colour per series, each bar labelled with its value."""
    fig = go.Figure([go.Bar(x=list(categories), y=list(values), name=text(name),
                            texttemplate=f"%{{y:{SHARE}}}" if percent else "%{y:.3g}")
                     for name, values in series.items()])
    fig.update_layout(barmode="group", height=320, margin=dict(t=10), yaxis_title=y_title,
                      xaxis=dict(type="category"), yaxis=PERCENT_AXIS if percent else {})
    return fig
