"""Activations: curves and derivatives, softmax temperature, vanishing gradients, and a race between activations."""
import plotly.graph_objects as go
import streamlit as st
import torch

from dlplay.activations import (
    ACTIVATIONS,
    INITS,
    activation_race,
    curve,
    deep_mlp,
    gradient_flow,
    read_dead_units,
    read_flow,
    softmax_with_temperature,
)
from dlplay.data import Dataset, ImageSet, load_dataset
from dlplay.device import pick_device
from ui import charts

RACE = "activations.race"  # the last race's results, under a key no widget owns


@st.cache_resource
def digits() -> Dataset:
    """The embedded digits, loaded once and shared read-only."""
    return load_dataset("mnist5k")


def curves_section() -> None:
    st.header("1. Curves and derivatives")
    chosen = st.multiselect("Activations", list(ACTIVATIONS), default=["ReLU", "sigmoid", "tanh", "GELU"])
    at = st.slider("Read off at x", -5.0, 5.0, 1.0, 0.1)
    xs = torch.linspace(-5, 5, 201, dtype=torch.float64)
    left, right = st.columns(2)
    values, slopes = go.Figure(), go.Figure()
    rows = []
    for i, name in enumerate(chosen):
        colour = charts.PALETTE[i % len(charts.PALETTE)]
        f, df = curve(name, xs)
        values.add_trace(go.Scatter(x=xs.tolist(), y=f.tolist(), name=name, line=dict(color=colour)))
        slopes.add_trace(go.Scatter(x=xs.tolist(), y=df.tolist(), name=name, line=dict(color=colour)))
        f_at, df_at = curve(name, torch.tensor([at], dtype=torch.float64))
        rows.append({"activation": name, "f(x)": float(f_at[0]), "f′(x)": float(df_at[0])})
    for fig, title in ((values, "f(x)"), (slopes, "f′(x), from autograd")):
        fig.add_vline(x=at, line_dash="dot")
        fig.update_layout(height=300, margin=dict(l=10, r=10, t=30, b=10), title=title, xaxis_title="x")
    left.plotly_chart(values)
    right.plotly_chart(slopes)
    st.dataframe(rows, hide_index=True)
    for name in chosen:
        st.latex(rf"\text{{{name}}}(x) = {ACTIVATIONS[name][1]}")


def softmax_section() -> None:
    st.header("2. Softmax with temperature")
    columns = st.columns(5)
    logits = torch.tensor([columns[i].number_input(f"z{i + 1}", -10.0, 10.0, v, 0.5)
                           for i, v in enumerate([2.0, 1.0, 0.5, 0.0, -1.0])])
    temperature = st.select_slider("Temperature T", [0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 10.0], value=1.0)
    probs = softmax_with_temperature(logits, temperature)
    st.latex(r"p_i = \frac{e^{z_i / T}}{\sum_j e^{z_j / T}}")
    fig = go.Figure(go.Bar(x=[f"z{i + 1}" for i in range(5)], y=probs.tolist(), texttemplate="%{y:.1%}"))
    fig.update_layout(height=260, margin=dict(l=10, r=10, t=10, b=10), yaxis=dict(range=[0, 1], tickformat=".0%"))
    st.plotly_chart(fig)
    st.caption("Low T sharpens the distribution towards the largest logit; high T flattens it towards uniform.")


def flow_section() -> None:
    st.header("3. Vanishing and exploding gradients")
    a, b, c, d = st.columns(4)
    depth = a.slider("Depth (hidden layers)", 1, 50, 20)
    width = b.select_slider("Width", [16, 32, 64, 128, 256], value=64)
    activation = c.selectbox("Activation", list(ACTIVATIONS), index=list(ACTIVATIONS).index("sigmoid"))
    init = d.selectbox("Initialisation", INITS)
    data = digits()
    batch = ImageSet(data.train.images[:128], data.train.labels[:128])
    flow = gradient_flow(deep_mlp([width] * depth, activation, init, seed=0), batch)
    st.info(read_flow(flow.gradient_norms, activation))
    layers = list(range(1, depth + 1))
    left, right = st.columns(2)
    norms = go.Figure(go.Scatter(x=layers, y=flow.gradient_norms, mode="lines+markers"))
    norms.update_layout(height=300, margin=dict(l=10, r=10, t=30, b=10), title="‖∂L/∂W‖ per layer (log scale)",
                        xaxis_title="hidden layer (input side first)", yaxis_type="log")
    left.plotly_chart(norms)
    spread = go.Figure([go.Box(y=sample.tolist(), name=str(i), boxpoints=False, marker_color=charts.PALETTE[0])
                        for i, sample in zip(layers, flow.activations, strict=True)])
    spread.update_layout(height=300, margin=dict(l=10, r=10, t=30, b=10), showlegend=False,
                         title="activation values per layer", xaxis_title="hidden layer")
    right.plotly_chart(spread)
    st.caption(read_dead_units(activation, sum(flow.dead_fraction) / len(flow.dead_fraction)))


def race_section() -> None:
    st.header("4. Which activation should I pick? A race")
    chosen = st.multiselect("Race these", list(ACTIVATIONS), default=["ReLU", "GELU", "sigmoid", "tanh"],
                            key="race.choice")
    st.caption("The same 784 → 128 → 64 → 10 network, optimizer (Adam, 0.001), seed and data order, three epochs "
               "on the embedded digits, once per activation.")
    if st.button("Race", type="primary") and chosen:
        with st.spinner("Training..."):
            st.session_state[RACE] = activation_race(chosen, digits(), pick_device("cpu"))
    results = st.session_state.get(RACE)
    if not results:
        return
    left, right = st.columns(2)
    for column, field, title in ((left, "losses", "training loss (smoothed)"),
                                 (right, "accuracies", "training accuracy (smoothed)")):
        fig = go.Figure([go.Scatter(y=charts.smooth(getattr(r, field)), name=name, mode="lines")
                         for name, r in results.items()])
        fig.update_layout(height=300, margin=dict(l=10, r=10, t=30, b=10), title=title, xaxis_title="batch")
        column.plotly_chart(fig)
    st.dataframe([{"activation": n, "test accuracy": r.test_accuracy, "seconds": r.seconds}
                  for n, r in sorted(results.items(), key=lambda item: -item[1].test_accuracy)], hide_index=True,
                 column_config={"test accuracy": st.column_config.NumberColumn(format="percent")})


st.title("Activations")
st.caption("What a neuron does to its input, how that shapes the gradients that flow back, and which to choose.")
curves_section()
softmax_section()
flow_section()
race_section()
