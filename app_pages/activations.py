"""Activations: curves and derivatives, softmax temperature, vanishing gradients, and a race between activations."""
import streamlit as st
import torch

from dlplay.data import ImageSet
from dlplay.device import pick_device
from dlplay.lessons.activations import (
    ACTIVATIONS,
    INITS,
    activation_race,
    covering,
    curves,
    deep_mlp,
    gradient_flow,
    read_flow,
    softmax_with_temperature,
    values_at,
)
from ui import chart_words, charts, state, tables, verdicts
from ui.i18n import _, translator
from ui.state import ActivationsState

PAGE = ActivationsState()


def curves_section() -> None:
    st.header(_("1. Curves and derivatives"))
    chosen = st.multiselect(_("Activations"), list(ACTIVATIONS), default=["ReLU", "sigmoid", "tanh", "GELU"],
                            key="activations.curves.choice")
    at = st.slider(_("Read off at x"), -5.0, 5.0, 1.0, 0.1, key="activations.curves.x")
    xs, shapes = curves(chosen)
    values, slopes = ({n: pair[i] for n, pair in shapes.items()} for i in (0, 1))
    left, right = st.columns(2)
    chart_words.chart(charts.lines(values, xs, "x", title="f(x)", mark_x=at, dashed=covering(values)),
                      "activations.curves.values", left)
    chart_words.chart(charts.lines(slopes, xs, "x", title=_("f′(x), from autograd"), mark_x=at,
                                   dashed=covering(slopes)), "activations.curves.slopes", right)
    for name, under in covering(values).items():
        st.caption(_("{name} is dashed: at this scale it lies on {under}, which shows between its dashes.").format(
            name=name, under=under))
    tables.table([{_("activation"): row["activation"], "f(x)": row["f(x)"], "f′(x)": row["f′(x)"]}
                  for row in values_at(chosen, at)], {"f(x)": tables.decimals(4), "f′(x)": tables.decimals(4)})
    for name in chosen:
        st.latex(rf"\text{{{name}}}(x) = {ACTIVATIONS[name][1]}")


def softmax_section() -> None:
    st.header(_("2. Softmax with temperature"))
    columns = st.columns(5)
    logits = torch.tensor([columns[i].number_input(f"z{i + 1}", -10.0, 10.0, v, 0.5,
                                                   key=f"activations.softmax.z{i + 1}")
                           for i, v in enumerate([2.0, 1.0, 0.5, 0.0, -1.0])])
    temperature = st.select_slider(_("Temperature T"), [0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 10.0], value=1.0,
                                   key="activations.softmax.t")
    probs = softmax_with_temperature(logits, temperature)
    st.latex(r"p_i = \frac{e^{z_i / T}}{\sum_j e^{z_j / T}}")
    chart_words.chart(charts.bars([f"z{i + 1}" for i in range(5)], probs.tolist()), "activations.softmax.chart")
    st.caption(_("Low T sharpens the distribution towards the largest logit; high T flattens it towards uniform."))


def flow_section() -> None:
    st.header(_("3. Vanishing and exploding gradients"))
    a, b, c, d = st.columns(4)
    depth = a.slider(_("Depth (hidden layers)"), 1, 50, 20, key="activations.flow.depth")
    width = b.select_slider(_("Width"), [16, 32, 64, 128, 256], value=64, key="activations.flow.width")
    activation = c.selectbox(_("Activation"), list(ACTIVATIONS), index=list(ACTIVATIONS).index("sigmoid"),
                             key="activations.flow.activation")
    init = d.selectbox(_("Initialisation"), INITS, format_func=translator(), key="activations.flow.init")
    data = state.dataset("mnist5k")
    batch = ImageSet(data.train.images[:128], data.train.labels[:128])
    flow = gradient_flow(deep_mlp([width] * depth, activation, init, seed=0), batch)
    st.info(verdicts.gradient_flow(read_flow(flow.gradient_norms), activation))
    left, right = st.columns(2)
    chart_words.chart(charts.lines({"‖∂L/∂W‖": flow.gradient_norms}, range(1, depth + 1),
                                   _("hidden layer (input side first)"), title=_("‖∂L/∂W‖ per layer"), log_y=True),
                      "activations.flow.norms", left)
    chart_words.chart(charts.per_layer_boxes([a.tolist() for a in flow.activations], _("activation values per layer")),
                      "activations.flow.values", right)
    st.caption(verdicts.dead_units(activation, sum(flow.dead_fraction) / len(flow.dead_fraction)))


def race_section() -> None:
    st.header(_("4. Which activation should I pick? A race"))
    chosen = st.multiselect(_("Race these"), list(ACTIVATIONS), default=["ReLU", "GELU", "sigmoid", "tanh"],
                            key="activations.race.choice")
    st.caption(_("The same 784 → 128 → 64 → 10 network, optimizer (Adam, 0.001), seed and data order, three "
                 "epochs on the embedded digits, once per activation."))
    if st.button(_("Race"), type="primary", key="activations.race.go") and chosen:
        with st.spinner(_("Training...")):
            PAGE.race_results = activation_race(chosen, state.dataset("mnist5k"), pick_device("cpu"))
    results = PAGE.race_results
    if not results:
        return
    left, right = st.columns(2)
    for column, field, title in ((left, "losses", _("training loss (smoothed)")),
                                 (right, "accuracies", _("training accuracy (smoothed)"))):
        chart_words.chart(charts.lines({name: charts.smooth(getattr(r, field)) for name, r in results.items()},
                                       x_title=_("batch"), title=title, log_y=False), f"activations.race.{field}",
                          column)
    accuracy = _("test accuracy")
    seconds = _("seconds")
    tables.table([{_("activation"): n, accuracy: r.test_accuracy, seconds: r.seconds}
                  for n, r in sorted(results.items(), key=lambda item: -item[1].test_accuracy)],
                 {accuracy: tables.percent(), seconds: tables.decimals(1)})


st.title(_("Activations"))
st.caption(_("What a neuron does to its input, how that shapes the gradients that flow back, and which to choose."))
curves_section()
softmax_section()
flow_section()
race_section()
