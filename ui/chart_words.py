"""Figures said in words: every chart that carries a result is drawn with a short sentence beside it, for a screen
reader and for every reader, and its numbers behind a "show as table" toggle.

The sentence is read from the figure's own traces (lines: where each starts and ends, lowest and highest; bars:
highest and lowest; heat-maps: range and where the largest is; a confusion matrix: accuracy and the most common
mistake), unless the page knows better what its chart means and passes its own. Numbers are written as on the axes
and in the tables (ui/charts.py, ui/tables.py): no SI prefixes, powers of ten as 1.23e-9, shares as 91.8%, counts
whole with thousands separated, "—" for nothing."""
import html
import math
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
import torch

from dlplay.lessons import playground
from dlplay.training.trainer import EpochEvent
from ui import charts, tables
from ui.i18n import N_, _, listing

MOST_TRACES = 4  # a sentence names this many curves, bars or boxes at most; the table holds them all
MOST_POINTS = 3  # a set of points with more than this is counted, not listed
MARKDOWN = re.compile(r"([\\`*_\[\]<>$~])")  # what Streamlit's Markdown would read as markup or LaTeX


def number(value, percent: bool = False) -> str:
    """A value as the app writes it: 91.8% for a share, 12,000 for a whole number, 1.23e-9 for a tiny or huge one,
    else three significant digits at most (2.3, 0.0813, 123); "—" for nothing."""
    if value is None or not math.isfinite(float(value)):
        return tables.NOTHING
    value = float(value)
    if percent:
        return f"{value:.1%}"
    if value.is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) < 1e-3 or abs(value) >= 1e5:
        mantissa, exponent = f"{value:.2e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    written = f"{value:,.{max(0, 2 - math.floor(math.log10(abs(value))))}f}"
    return written.rstrip("0").rstrip(".") if "." in written else written


def text(label) -> str:
    """A figure's label (HTML-escaped for Plotly, ui/charts.py) as plain text, for a table."""
    return html.unescape(str(label))


def plain(label) -> str:
    """A figure's label as text that Markdown shows as it is, for a sentence."""
    return MARKDOWN.sub(r"\\\1", text(label))


def _axis(figure: go.Figure, trace, letter: str):
    """The layout axis a trace is drawn on ("x" or "y")."""
    anchor = getattr(trace, f"{letter}axis", None) or letter
    return figure.layout[f"{letter}axis{anchor[1:]}"]


def _title(axis) -> str:
    """An axis's title, without the " (log scale)" the figures add."""
    title = axis.title.text or ""
    suffix = _("{title} (log scale)").format(title="")
    return title[:-len(suffix)] if suffix and title.endswith(suffix) else title


def _is_percent(axis) -> bool:
    """Whether an axis shows shares as percentages."""
    return "%" in (axis.tickformat or "")


def _values(values) -> list:
    """A trace's values as a plain list (Plotly keeps tuples or arrays)."""
    return [] if values is None else list(np.asarray(values).tolist())


def _numeric(values: Sequence) -> bool:
    """Whether every value is a number."""
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def _points(trace) -> tuple[list, list]:
    """A trace's x and y values, as many of each (x: the points' indices when it has none)."""
    y = _values(trace.y)
    x = _values(trace.x) or list(range(len(y)))
    return x[:len(y)], y[:len(x)]


def _xs(trace) -> list:
    """A trace's x values, as many as it has y values."""
    return _points(trace)[0]


def _is_curve(trace, plane: bool = False) -> bool:
    """A scatter trace drawn as a line along x (a curve against steps, epochs, x), not a path over a `plane`."""
    x = _xs(trace)
    return (not plane and "lines" in (trace.mode or "lines") and len(x) > 1 and _numeric(x)
            and all(a <= b for a, b in zip(x, x[1:], strict=False)))


def _figure_title(figure: go.Figure) -> str:
    """The figure's own title, if it has one."""
    return figure.layout.title.text or ""


def _names(figure: go.Figure, traces: Sequence, say=plain) -> list[str]:
    """Each trace's name as a reader should hear it (`say`: for a sentence or a table): its own name, with its
    axis's title when the figure has several y axes, else the axis's or the figure's title, else "the curve"."""
    several_axes = len({t.yaxis or "y" for t in traces}) > 1
    names = []
    for trace in traces:
        name, axis = say(trace.name or ""), say(_title(_axis(figure, trace, "y")) or _figure_title(figure))
        names.append(f"{name} ({axis})" if name and axis and several_axes else name or axis or _("the curve"))
    return names


def _with_title(title: str, value: str) -> str:
    """A value with its axis's title before it (epoch 5), or alone."""
    return f"{plain(title)} {value}" if title else value


def _curve_sentence(figure: go.Figure, trace, name: str) -> str:
    """Where a curve starts and ends, and its lowest and highest values."""
    x, y = _points(trace)
    percent, x_title = _is_percent(_axis(figure, trace, "y")), _title(_axis(figure, trace, "x"))
    finite = [v for v in y if isinstance(v, (int, float)) and math.isfinite(v)]
    texts = dict(name=name, first=number(y[0], percent), last=number(y[-1], percent),
                 low=number(min(finite, default=None), percent), high=number(max(finite, default=None), percent),
                 start=_with_title(x_title, number(x[0])), end=number(x[-1]))
    return _("{name} goes from {first} at {start} to {last} at {end}; lowest {low}, highest {high}.").format(**texts)


def _point(figure: go.Figure, trace, x, y) -> str:
    """One point, with its axes' titles when they have them: "size 12.3 KB, accuracy 98.1%", else "(1.2, 3.4)"."""
    x_axis, y_axis = _axis(figure, trace, "x"), _axis(figure, trace, "y")
    x_text = number(x, _is_percent(x_axis)) if isinstance(x, (int, float)) else plain(x)
    y_text = number(y, _is_percent(y_axis)) if isinstance(y, (int, float)) else plain(y)
    if _title(x_axis) and _title(y_axis):
        return _("{x}, {y}").format(x=_with_title(_title(x_axis), x_text), y=_with_title(_title(y_axis), y_text))
    return f"({x_text}, {y_text})"


def _scatter_sentence(figure: go.Figure, trace, name: str, plane: bool) -> str:
    """A scatter trace in words: a curve's course, a path's start and end (over a `plane`), or its points."""
    if _is_curve(trace, plane):
        return _curve_sentence(figure, trace, name)
    x, y = _points(trace)
    if "lines" in (trace.mode or "") and len(x) > 1:
        return _("{name} goes from {first} to {last} in {steps} steps.").format(
            name=name, first=_point(figure, trace, x[0], y[0]), last=_point(figure, trace, x[-1], y[-1]),
            steps=f"{len(x) - 1:,}")
    if len(x) > MOST_POINTS:
        return _("{name}: {count} points.").format(name=name, count=f"{len(x):,}")
    return _("{name}: {points}.").format(name=name, points=listing(_point(figure, trace, a, b)
                                                                     for a, b in zip(x, y, strict=True)))


def _mark(figure: go.Figure) -> float | None:
    """Where a dotted vertical line marks the x axis (charts.lines' `mark_x`), if one does."""
    for shape in figure.layout.shapes:
        if shape.type == "line" and shape.x0 is not None and shape.x0 == shape.x1:
            return float(shape.x0)
    return None


def _at_mark(figure: go.Figure, curves: Sequence, names: Sequence[str], at: float) -> str:
    """Each curve's value where the x axis is marked (the slider's x, the epoch shown)."""
    values = []
    for trace, name in zip(curves, names, strict=True):
        x, y = _points(trace)
        if x[0] <= at <= x[-1]:
            value = np.interp(at, x, [math.nan if v is None else v for v in y])
            values.append(f"{name} {number(value, _is_percent(_axis(figure, trace, 'y')))}")
    x_title, y_title = _title(_axis(figure, curves[0], "x")), _title(_axis(figure, curves[0], "y"))
    what = plain(y_title or _figure_title(figure)) or _("the values")
    return _("At {x}, {what}: {values}.").format(x=_with_title(x_title, number(at)), what=what,
                                                 values=listing(values))


def _bars_sentence(figure: go.Figure, trace, name: str | None) -> str:
    """A bar trace's highest and lowest bars."""
    horizontal = trace.orientation == "h"
    labels, values = (_values(trace.y), _values(trace.x)) if horizontal else (_values(trace.x), _values(trace.y))
    value_axis, label_axis = (_axis(figure, trace, "x"), _axis(figure, trace, "y")) if horizontal else (
        _axis(figure, trace, "y"), _axis(figure, trace, "x"))
    percent, label_title = _is_percent(value_axis), _title(label_axis)

    def bar(i: int) -> str:
        label = _with_title(label_title, plain(labels[i])) if _numeric([labels[i]]) else plain(labels[i])
        return f"{label} ({number(values[i], percent)})"

    order = sorted(range(len(values)), key=lambda i: values[i])
    if name:
        return _("{name}: highest {high}, lowest {low}.").format(name=name, high=bar(order[-1]), low=bar(order[0]))
    return _("Highest: {high}; lowest: {low}.").format(high=bar(order[-1]), low=bar(order[0]))


def _where(figure: go.Figure, trace, row: int, column: int) -> str:
    """A heat-map's cell by its labels ("true 4, predicted 9", "x₁ 1.2, x₂ 3.4") or its row and column."""
    x, y = _values(trace.x), _values(trace.y)
    if not x or not y:
        return _("row {row}, column {column}").format(row=row, column=column)
    x_title, y_title = _title(_axis(figure, trace, "x")), _title(_axis(figure, trace, "y"))
    parts = [(y_title, y[row]), (x_title, x[column])]
    return ", ".join(_with_title(t, number(v) if isinstance(v, (int, float)) else plain(v)) for t, v in parts)


def _grid_sentence(figure: go.Figure, trace) -> str:
    """A heat-map's or contour's range of values and where its largest is."""
    z = np.asarray(trace.z, dtype=float)
    if not np.isfinite(z).any():
        return _("No values yet.")
    row, column = np.unravel_index(np.nanargmax(np.where(np.isfinite(z), z, -np.inf)), z.shape)
    return _("Values from {low} to {high}; the largest at {where}.").format(
        low=number(np.nanmin(z)), high=number(np.nanmax(z)), where=_where(figure, trace, int(row), int(column)))


def _boxes_sentence(figure: go.Figure, boxes: Sequence) -> str:
    """Box plots: their medians from the first box to the last, and the lowest and highest value of all."""
    x_title = _title(_axis(figure, boxes[0], "x"))
    medians = [float(np.median(_values(b.y))) for b in boxes]
    everything = [v for b in boxes for v in _values(b.y)]
    return _("Medians from {first} at {start} to {last} at {end}; all values from {low} to {high}.").format(
        first=number(medians[0]), last=number(medians[-1]), start=_with_title(x_title, plain(boxes[0].name)),
        end=plain(boxes[-1].name), low=number(min(everything)), high=number(max(everything)))


def describe(figure: go.Figure) -> str:
    """A figure said in a few sentences, read from its traces (see the module's docstring)."""
    traces = list(figure.data)
    grids = [t for t in traces if t.type in ("heatmap", "contour")]
    pictures = [t for t in traces if t.type == "image"]
    if pictures:
        height, width = np.asarray(pictures[0].z).shape[:2]
        return _("A picture of {size} pixels.").format(size=f"{width}×{height}")
    if grids and grids[0].type == "heatmap":
        return _grid_sentence(figure, grids[0])
    boxes = [t for t in traces if t.type == "box"]
    if boxes:
        return _boxes_sentence(figure, boxes)
    bars = [t for t in traces if t.type == "bar"]
    if bars:
        names = _names(figure, bars) if len(bars) > 1 else [None]
        said = [_bars_sentence(figure, t, n) for t, n in zip(bars, names, strict=True)]
    else:
        shown = [t for t in traces if t.type == "scatter" and _values(t.y)]
        names, plane = _names(figure, shown), bool(grids)
        curves = [(t, n) for t, n in zip(shown, names, strict=True) if _is_curve(t, plane)]
        mark = _mark(figure)
        if mark is not None and curves:
            return _at_mark(figure, *zip(*curves, strict=True), mark)
        said = [_scatter_sentence(figure, t, n, plane) for t, n in zip(shown, names, strict=True)]
    if not said:
        return _("No values yet.")
    more = len(said) - MOST_TRACES
    return " ".join(said[:MOST_TRACES]) + (" " + _("And {count} more in the table.").format(count=more)
                                           if more > 0 else "")


def confusion(figure: go.Figure) -> str:
    """A confusion matrix (charts.confusion_matrix) said in words: its accuracy and its most common mistake."""
    heatmap = next(t for t in figure.data if t.type == "heatmap")
    counts, names = np.asarray(heatmap.z, dtype=np.int64), [plain(n) for n in _values(heatmap.x)]
    total, correct = int(counts.sum()), int(np.trace(counts))
    said = _("Accuracy {accuracy}: {correct} of {total} test images on the diagonal.").format(
        accuracy=number(correct / total if total else None, percent=True), correct=f"{correct:,}", total=f"{total:,}")
    wrong = counts.copy()
    np.fill_diagonal(wrong, 0)
    if wrong.max(initial=0) == 0:
        return said
    true, predicted = np.unravel_index(int(wrong.argmax()), wrong.shape)
    return said + " " + _("The most common mistake: “{true}” taken for “{predicted}”, {count} times.").format(
        true=names[true], predicted=names[predicted], count=f"{int(wrong[true, predicted]):,}")


def training(epochs: Sequence[EpochEvent], label: str = "") -> str:
    """A run's curves in a sentence: how its training loss moved over the finished epochs, and its last validation
    accuracy (training accuracy without validation); `label` names the run when several are drawn."""
    if not epochs:
        said = _("No epoch has finished yet.")
    else:
        last = epochs[-1]
        accuracy = (_("validation accuracy {accuracy}") if last.val_accuracy is not None else
                    _("training accuracy {accuracy}")).format(accuracy=number(
                        last.val_accuracy if last.val_accuracy is not None else last.train_accuracy, percent=True))
        if len(epochs) == 1:
            said = _("After 1 epoch: training loss {loss}; {accuracy}.").format(
                loss=number(last.train_loss), accuracy=accuracy)
        else:
            moved = (_("Training loss fell from {first} to {last} over {epochs} epochs; {accuracy}.")
                     if last.train_loss <= epochs[0].train_loss else
                     _("Training loss rose from {first} to {last} over {epochs} epochs; {accuracy}."))
            said = moved.format(first=number(epochs[0].train_loss), last=number(last.train_loss),
                                epochs=len(epochs), accuracy=accuracy)
    return f"{plain(label)}: {said}" if label else said


# Colour names for the playground's class colours (ui/charts.py's and Okabe–Ito's); a colour not named here is left
# out of the sentence, which then names the class alone.
COLOUR_NAMES = {"#f59322": N_("orange"), "#0877bd": N_("blue"), "#2ca02c": N_("green"), "#d62728": N_("red"),
                "#9467bd": N_("purple"), "#8c564b": N_("brown"), "#e377c2": N_("pink"), "#7f7f7f": N_("grey"),
                "#bcbd22": N_("olive"), "#17becf": N_("cyan"), "#e69f00": N_("orange"), "#56b4e9": N_("sky blue"),
                "#009e73": N_("green"), "#f0e442": N_("yellow"), "#0072b2": N_("blue"), "#d55e00": N_("vermilion"),
                "#cc79a7": N_("pink"), "#000000": N_("black")}
SHAPE_NAMES = {"everywhere": N_("the whole plane"), "centre": N_("the centre"),
               "outside": N_("everything around the centre"), "top": N_("the top"), "bottom": N_("the bottom"),
               "left": N_("the left"), "right": N_("the right"), "top right": N_("the upper right"),
               "top left": N_("the upper left"), "bottom right": N_("the lower right"),
               "bottom left": N_("the lower left"),
               "top left and bottom right": N_("the top-left and bottom-right corners"),
               "top right and bottom left": N_("the top-right and bottom-left corners")}
NINTH_NAMES = {"bottom left": N_("bottom left"), "bottom": N_("bottom"), "bottom right": N_("bottom right"),
               "left": N_("left"), "centre": N_("centre"), "right": N_("right"), "top left": N_("top left"),
               "top": N_("top"), "top right": N_("top right")}


def _class_region(label: int, shape: str | None, held: Sequence[str]) -> str:
    """Where one class lies, in the class's colour: "the centre blue (class 1)"."""
    where = _(SHAPE_NAMES[shape]) if shape else _("the {parts} parts").format(
        parts=listing(_(NINTH_NAMES[n]) for n in held))
    colour = COLOUR_NAMES.get(charts.PLAYGROUND_COLOURS[label % len(charts.PLAYGROUND_COLOURS)].lower())
    if colour is None:
        return _("{where} in class {label}'s colour").format(where=where, label=label)
    return _("{where} {colour} (class {label})").format(where=where, colour=_(colour), label=label)


def decision_regions(values: torch.Tensor, task: str, classes: int, wrong: int | None = None,
                     tested: int = 0) -> str:
    """The playground's picture of the network over the plane in words (`values`: Session.surface's, rows along
    x₂): which class it gives each region, or for regression where its output is highest and lowest; with `wrong`,
    how many of the `tested` test points it gets wrong."""
    if task == playground.REGRESSION:
        means = {name: float(part.mean()) for name, part in playground.ninths(values).items()}
        high, low = max(means, key=means.get), min(means, key=means.get)
        said = _("The network's output runs from {low} to {high}: highest at the {top}, lowest at the {bottom}."
                 ).format(low=number(float(values.min())), high=number(float(values.max())),
                          top=_(NINTH_NAMES[high]), bottom=_(NINTH_NAMES[low]))
    else:
        parts = [_class_region(*region) for region in playground.regions(playground.predicted_classes(values,
                                                                                                      classes))]
        if not parts:
            said = _("No region of the plane is clearly one class yet.")
        else:
            regions = parts[0] if len(parts) == 1 else _("{some} and {last}").format(some=listing(parts[:-1]),
                                                                                      last=parts[-1])
            said = _("The network colours {regions}.").format(regions=regions)
    if wrong is not None and tested:
        said += " " + _("Test points misclassified: {wrong} of {count}.").format(wrong=wrong, count=tested)
    return said


def table(figure: go.Figure) -> tuple[pd.DataFrame, dict]:
    """A figure's numbers as a table and its columns' formats (for tables.table): curves side by side against x,
    bars by category, a heat-map as its grid, boxes by their summary, points one a row."""
    traces = list(figure.data)
    grid = next((t for t in traces if t.type in ("heatmap", "image")), None)
    if grid is not None:
        return _grid_table(figure, grid)
    boxes = [t for t in traces if t.type == "box"]
    if boxes:
        columns = [_("name"), _("lowest"), _("median"), _("highest")]
        frame = pd.DataFrame([[text(b.name), min(_values(b.y)), float(np.median(_values(b.y))), max(_values(b.y))]
                              for b in boxes], columns=columns)
        return frame, {c: _format(frame[c].tolist()) for c in columns[1:]}
    bars = [t for t in traces if t.type == "bar"]
    if bars:
        return _bars_table(figure, bars)
    shown = [t for t in traces if t.type == "scatter" and _values(t.y)]
    if shown and all(_is_curve(t, plane=any(t.type == "contour" for t in traces)) for t in shown):
        return _curves_table(figure, shown)
    return _points_table(figure, shown)


def _unique(names: Sequence[str]) -> list[str]:
    """Column names made unique by numbering the repeats."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return out


def _format(values: Sequence, percent: bool = False, log: bool = False):
    """A column's format, as the figure writes its axis: a share, a power of ten, a count, or enough decimals."""
    finite = [abs(float(v)) for v in values if v is not None and math.isfinite(float(v))]
    if percent:
        return tables.percent()
    if finite and all(v.is_integer() for v in finite):
        return tables.whole()
    largest = max(finite, default=1.0)
    if log or largest >= 1e5 or 0 < largest < 1e-2:
        return tables.scientific()
    return tables.decimals(int(np.clip(2 - math.floor(math.log10(largest or 1.0)), 0, 6)))


def _curves_table(figure: go.Figure, curves: Sequence) -> tuple[pd.DataFrame, dict]:
    """Curves side by side, a row per x value (an empty cell where a curve has no point)."""
    x_title = text(_title(_axis(figure, curves[0], "x"))) or "x"
    names = _unique(_names(figure, curves, text))
    frame = pd.DataFrame({x_title: sorted({x for t in curves for x in _xs(t)})})
    formats = {x_title: _format(frame[x_title].tolist())}
    for trace, name in zip(curves, names, strict=True):
        x, y = _points(trace)
        column = pd.Series(y, index=x, dtype=float)
        column = column[~column.index.duplicated(keep="last")]
        frame[name] = frame[x_title].map(column)
        y_axis = _axis(figure, trace, "y")
        formats[name] = _format(column.tolist(), _is_percent(y_axis), y_axis.type == "log")
    return frame, formats


def _bars_table(figure: go.Figure, bars: Sequence) -> tuple[pd.DataFrame, dict]:
    """Bars by category, a column per trace."""
    horizontal = bars[0].orientation == "h"
    label_letter, value_letter = ("y", "x") if horizontal else ("x", "y")
    label_title = text(_title(_axis(figure, bars[0], label_letter))) or _("name")
    names = _unique([text(t.name or "") or text(_title(_axis(figure, t, value_letter))) or _("value")
                     for t in bars])
    frame = pd.DataFrame({label_title: [text(v) for v in _values(getattr(bars[0], label_letter))]})
    formats = {}
    for trace, name in zip(bars, names, strict=True):
        values = _values(getattr(trace, value_letter))
        frame[name] = pd.Series(values[:len(frame)], dtype=float)
        axis = _axis(figure, trace, value_letter)
        formats[name] = _format(values, _is_percent(axis), axis.type == "log")
    return frame, formats


def _grid_table(figure: go.Figure, trace) -> tuple[pd.DataFrame, dict]:
    """A heat-map's grid or a picture's pixels ("r, g, b"), a row per row, its first column the row's label."""
    z = np.asarray(trace.z)
    cells = [[", ".join(map(str, pixel)) for pixel in row] for row in z.tolist()] if trace.type == "image" else z
    x, y = _values(getattr(trace, "x", None)), _values(getattr(trace, "y", None))
    columns = [number(v) if isinstance(v, (int, float)) else text(v) for v in x] if x else [
        str(c) for c in range(z.shape[1])]
    rows = [number(v) if isinstance(v, (int, float)) else text(v) for v in y] if y else [
        str(r) for r in range(z.shape[0])]
    corner, columns = text(_title(_axis(figure, trace, "y"))) or _("row"), _unique(columns)
    frame = pd.DataFrame(cells, columns=columns)
    frame.insert(0, corner, rows, allow_duplicates=True)
    formats = {} if trace.type == "image" else {c: _format(z.ravel().tolist()) for c in columns}
    return frame, formats


def _points_table(figure: go.Figure, traces: Sequence) -> tuple[pd.DataFrame, dict]:
    """Points one a row: the trace's name, x and y."""
    if not traces:
        return pd.DataFrame(), {}
    x_title = text(_title(_axis(figure, traces[0], "x"))) or "x"
    y_title = text(_title(_axis(figure, traces[0], "y"))) or "y"
    if x_title == y_title:
        x_title, y_title = f"{x_title} (x)", f"{y_title} (y)"
    names = _names(figure, traces, text)
    rows = [(name, x, y) for trace, name in zip(traces, names, strict=True)
            for x, y in zip(*_points(trace), strict=True)]
    frame = pd.DataFrame(rows, columns=[_("name"), x_title, y_title])
    return frame, {x_title: _format(frame[x_title].tolist(), _is_percent(_axis(figure, traces[0], "x"))),
                   y_title: _format(frame[y_title].tolist(), _is_percent(_axis(figure, traces[0], "y")))}


@st.fragment
def _table_toggle(figure: go.Figure, key: str) -> None:
    """The "show as table" toggle and, when on, the figure's table; a fragment, so that the toggle reruns this
    alone and not the page (which may train, race or evaluate)."""
    if st.toggle(_("Show as table"), key=f"{key}.table", help=_("The chart's numbers, for reading or copying.")):
        frame, formats = table(figure)
        tables.table(frame, formats, height=min(400, 38 + 35 * len(frame)))


def chart(figure: go.Figure, key: str, where=None, words: str | None = None, **options):
    """`figure` in `where` (the page, or a column of it) with its sentence below (`words`, else describe's) and a
    "show as table" toggle; `options` go to st.plotly_chart (on_select, config...). Returns its event."""
    where = where if where is not None else st.container()
    event = where.plotly_chart(figure, key=key, **options)
    where.caption(words if words is not None else describe(figure))
    with where:
        _table_toggle(figure, key)
    return event

