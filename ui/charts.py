"""Plotly figures for the pages, built only from data the dlplay core returns."""
import html
from collections.abc import Sequence
from dataclasses import dataclass

import plotly.graph_objects as go

from dlplay.train import BatchEvent, EpochEvent

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")
MAX_BATCH_POINTS = 600  # cap the per-batch traces: redrawing many points each second grows server memory


def text(label: str) -> str:
    """Escape a user-provided label so Plotly shows it as text, never as HTML."""
    return html.escape(label)


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
        xaxis=dict(domain=[0, 0.46], title="epoch"), yaxis=dict(title="accuracy", tickformat=".0%"),
        xaxis2=dict(domain=[0.54, 1], title="epoch"), yaxis2=dict(anchor="x2", title="cross-entropy"),
        annotations=[dict(text=title, x=x, y=1.08, xref="paper", yref="paper", showarrow=False, font=dict(size=14))
                     for title, x in (("Accuracy", 0.23), ("Loss", 0.77))]))
    for i, run in enumerate(runs):
        colour, name = PALETTE[i % len(PALETTE)], text(run.label)
        if run.batches:
            steps_per_epoch, stride = run.batches[0].steps_per_epoch, -(-len(run.batches) // MAX_BATCH_POINTS)
            x = [b.step / steps_per_epoch for b in run.batches[::stride]]
            acc = smooth([b.accuracy for b in run.batches])[::stride]
            loss = smooth([b.loss for b in run.batches])[::stride]
            for axis, y in (("", acc), ("2", loss)):
                fig.add_trace(go.Scatter(x=x, y=y, mode="lines", line=dict(color=colour, width=1), opacity=0.35,
                                         name=f"{name}: training (per batch, smoothed)", legendgroup=name,
                                         showlegend=not axis, xaxis=f"x{axis}", yaxis=f"y{axis}"))
        epochs = [e.epoch for e in run.epochs]
        series = [("", [e.train_accuracy for e in run.epochs], "training (epoch)", "solid"),
                  ("2", [e.train_loss for e in run.epochs], "training (epoch)", "solid")]
        if run.epochs and run.epochs[0].val_accuracy is not None:
            series += [("", [e.val_accuracy for e in run.epochs], "validation", "dash"),
                       ("2", [e.val_loss for e in run.epochs], "validation", "dash")]
        for axis, y, kind, dash in series:
            fig.add_trace(go.Scatter(x=epochs, y=y, mode="lines+markers", line=dict(color=colour, dash=dash),
                                     name=f"{name}: {kind}", legendgroup=name, showlegend=not axis,
                                     xaxis=f"x{axis}", yaxis=f"y{axis}"))
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.25))
    return fig


def class_counts(class_names: Sequence[str], train_counts: Sequence[int], test_counts: Sequence[int]) -> go.Figure:
    """Grouped bars: images per class in the training and test splits."""
    names = [text(n) for n in class_names]
    fig = go.Figure([go.Bar(x=names, y=list(train_counts), name="train"),
                     go.Bar(x=names, y=list(test_counts), name="test")])
    fig.update_layout(barmode="group", height=260, margin=dict(l=10, r=10, t=10, b=10), yaxis_title="images",
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
        x=[names[p] for _, p in cells], y=[names[t] for t, _ in cells], mode="markers",
        marker=dict(symbol="square", size=max(8, 300 // len(names)), opacity=0.01), showlegend=False,
        customdata=[counts[t][p] for t, p in cells],
        hovertemplate="true %{y}, predicted %{x}: %{customdata}<extra></extra>"))
    fig.update_layout(height=420, margin=dict(l=10, r=10, t=10, b=10), clickmode="event+select",
                      xaxis=dict(title="predicted", type="category"),
                      yaxis=dict(title="true", autorange="reversed", type="category"))
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
                           texttemplate="%{x:.1%}", textposition="auto"))
    fig.update_layout(height=max(220, 24 * len(class_names)), margin=dict(l=10, r=10, t=10, b=10),
                      xaxis=dict(range=[0, 1], tickformat=".0%"), yaxis=dict(type="category", autorange="reversed"))
    return fig


def layer_bars(names: Sequence[str], values: Sequence[float], axis_title: str, log: bool = False,
               percent: bool = False) -> go.Figure:
    """One bar per layer, input side on the left."""
    fig = go.Figure(go.Bar(x=[text(n) for n in names], y=list(values)))
    fig.update_layout(height=280, margin=dict(l=10, r=10, t=10, b=10), yaxis_title=axis_title,
                      xaxis=dict(type="category"))
    if log:
        fig.update_yaxes(type="log")
    if percent:
        fig.update_yaxes(tickformat=".0%", range=[0, 1])
    return fig
