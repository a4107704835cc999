"""Neuron math: one neuron, then the article's 3 → 3 → 2 network forward and backward, every number checked."""
import numpy as np
import pandas as pd
import streamlit as st
import torch

from dlplay.lessons.neuron import (
    ARTICLE_INPUT,
    HIDDEN_ACTIVATIONS,
    LOSSES,
    OUTPUT_ACTIVATIONS,
    Network,
    activate,
    activation_curve,
    autograd_gradients,
    backward,
    binary_batch,
    finite_difference_gradients,
    forward,
    loss_against_probability,
    loss_on_logits,
    loss_terms,
    one_hot,
    random_network,
    sgd_step,
    train,
)
from ui import charts, tables
from ui.i18n import N_, _, say, shown_as, translated, translator
from ui.latex import matrix, number
from ui.state import NeuronState

PAGE = NeuronState()
STAGES = (N_("forward"), N_("loss"), N_("backward"), N_("update"))
STAGE = PAGE.key("net.stage")  # the loop stepper's radio
LOSS_NAMES = {"cross-entropy": N_("cross-entropy"), "mse": N_("mean squared error (MSE)")}
SLIPS = {
    N_("where"): ["§3.2", "§3.2", "§3.2", "§3.3", "§4.2", "§4.2", "§4.2"],
    N_("the article writes"): [
        N_("hidden-layer gradients ∂L/∂z₁ = a₂·(ŷ₁ − y₁), ∂L/∂z₂ = a₂·(ŷ₂ − y₂), ∂L/∂z₃ = a₃·(ŷ₁ − y₁)"),
        N_("∂L/∂z₄ = a₄(ŷ₁ − y₁) + a₅(ŷ₂ − y₂)"),
        N_("weight update W₄₁ ← W₄₁ − α·∂L/∂z₄ (no aⱼ factor)"),
        N_("Adam “combines SGD and the momentum method”"),
        N_("ReLU: ∂L/∂zᵢ = aᵢ for zᵢ > 0"),
        N_("sigmoid: ∂L/∂zᵢ = aᵢ(1 − aᵢ)"),
        N_("tanh: ∂L/∂zᵢ = aᵢ(1 − aᵢ²)")],
    N_("correct"): [
        N_("δ₁ = (W₂ᵀ δ₂) ⊙ f′(z₁): every output's error, weighted by its weight, times the unit's slope"),
        N_("z₄ is an output unit, so ∂L/∂z₄ = ŷ₁ − y₁ (as the line above it says); a sum over the outputs is what a "
           "hidden unit's ∂L/∂aⱼ = Σₖ Wₖⱼ δₖ looks like"),
        N_("∂L/∂wᵢⱼ = δᵢ · aⱼ, so wᵢⱼ ← wᵢⱼ − α δᵢ aⱼ"),
        N_("Adam is momentum (the running mean m of the gradients) plus RMSprop-style scaling of each parameter's "
           "step by √v̂ (the running mean of squared gradients), both bias-corrected"),
        N_("ReLU′(z) = 1 for z > 0 and 0 otherwise, and ∂L/∂zᵢ = ∂L/∂aᵢ · ReLU′(zᵢ)"),
        N_("∂L/∂zᵢ = ∂L/∂aᵢ · aᵢ(1 − aᵢ): the upstream gradient multiplies the slope"),
        N_("tanh′(z) = 1 − aᵢ², so ∂L/∂zᵢ = ∂L/∂aᵢ · (1 − aᵢ²)")]}


def one_neuron() -> None:
    st.header(_("1. One neuron"))
    columns = st.columns(4)
    xs = [columns[i].slider(f"x{i + 1}", -2.0, 2.0, float(ARTICLE_INPUT[i]), 0.1, key=f"neuron.x{i + 1}")
          for i in range(3)]
    ws = [columns[i].slider(f"w{i + 1}", -2.0, 2.0, [0.5, -0.3, 0.8][i], 0.1, key=f"neuron.w{i + 1}")
          for i in range(3)]
    b = columns[3].slider("b", -2.0, 2.0, 0.1, 0.1, key="neuron.b")
    name = columns[3].selectbox(_("Activation f"), HIDDEN_ACTIVATIONS, key="neuron.f")
    z = sum(w * x for w, x in zip(ws, xs, strict=True)) + b
    a = float(activate(name, torch.tensor(z, dtype=torch.float64)))
    terms = " + ".join(rf"({number(w, 1)})({number(x, 1)})" for w, x in zip(ws, xs, strict=True))
    st.latex(rf"\begin{{aligned}} z &= \sum_i w_i x_i + b \\"  # two lines: one is wider than a narrow window
             rf" &= {terms} + ({number(b, 1)}) = {number(z)} \end{{aligned}}")
    st.latex(rf"a = \mathrm{{{name}}}(z) = {number(a)}")
    xs, ys = activation_curve(name)
    st.plotly_chart(charts.curve_with_point(xs, ys, (z, a), f"{name}(z)", "z", "a = f(z)"))


def class_names(count: int) -> dict[int, str]:
    """Classes 0..count-1 as the article names them (class 1, class 2, ...)."""
    return {k: _("class {number}").format(number=k + 1) for k in range(count)}


def as_tensor(frame: pd.DataFrame) -> torch.Tensor:
    """A table's numbers as a float64 tensor."""
    return torch.tensor(np.ascontiguousarray(frame, dtype=np.float64))


def replace_network(net: Network) -> None:
    """Store new weights and start fresh weight tables."""
    PAGE.net = net
    PAGE.version += 1


def take_step(x: torch.Tensor, y: torch.Tensor, lr: float) -> None:
    """One SGD step of the network shown, and the loop stepper back at its forward pass: the SGD button's step and
    the loop's Next after the update are the same step of the same network."""
    net: Network = PAGE.net
    f = forward(net, x, y)
    PAGE.last_loss = float(f.loss)
    replace_network(sgd_step(net, backward(net, x, y, f), lr))
    st.session_state[STAGE] = "forward"


def next_stage(x: torch.Tensor, y: torch.Tensor, lr: float) -> None:
    """The loop stepper's Next: the next stage; after the update, the step itself, and the loop starts again."""
    stage = st.session_state[STAGE]
    if stage == STAGES[-1]:
        take_step(x, y, lr)
    else:
        st.session_state[STAGE] = STAGES[STAGES.index(stage) + 1]


def network_controls() -> tuple[Network, torch.Tensor, torch.Tensor]:
    """Activation, loss and target pickers, weight tables, random init and reset -> (network, x, y)."""
    a, b, c, d = st.columns(4)
    hidden = a.selectbox(_("Hidden activation"), HIDDEN_ACTIVATIONS, key="neuron.net.hidden")
    loss = c.selectbox(_("Loss"), LOSSES, format_func=translated(LOSS_NAMES), key="neuron.net.loss")
    outputs = OUTPUT_ACTIVATIONS if loss == "mse" else ("softmax", "sigmoid")
    output = b.selectbox(_("Output activation"), outputs, key="neuron.net.output")
    target = d.radio(_("Target class y"), [0, 1], horizontal=True, format_func=shown_as(class_names(2)),
                     key="neuron.net.target")
    seed = a.number_input(_("Seed"), 0, 10_000, 0, key="neuron.net.seed")
    if b.button(_("Random init (seed)"), key="neuron.net.random") or PAGE.net is None:
        replace_network(random_network(seed=int(seed)))
    if c.button(_("Reset to seed 0"), key="neuron.net.reset"):
        replace_network(random_network(seed=0))
    net: Network = PAGE.net
    version = PAGE.version  # new tables whenever the weights are replaced, so old edits do not linger
    st.caption(_("Edit any weight or bias in the tables: everything below recomputes."))
    left, right = st.columns(2)
    w1 = left.data_editor(pd.DataFrame(net.w1.numpy(), columns=["x1", "x2", "x3"], index=["h1", "h2", "h3"]),
                          key=f"neuron.w1.{version}")
    b1 = left.data_editor(pd.DataFrame({"b1": net.b1.numpy()}, index=["h1", "h2", "h3"]), key=f"neuron.b1.{version}")
    w2 = right.data_editor(pd.DataFrame(net.w2.numpy(), columns=["h1", "h2", "h3"], index=["o1", "o2"]),
                           key=f"neuron.w2.{version}")
    b2 = right.data_editor(pd.DataFrame({"b2": net.b2.numpy()}, index=["o1", "o2"]), key=f"neuron.b2.{version}")
    net = Network(as_tensor(w1).reshape(3, 3), as_tensor(b1).reshape(3), as_tensor(w2).reshape(2, 3),
                  as_tensor(b2).reshape(2), hidden, output, loss)
    PAGE.net = net
    return net, torch.tensor([ARTICLE_INPUT], dtype=torch.float64), one_hot([target], 2)


def forward_section(net: Network, x: torch.Tensor, y: torch.Tensor, f) -> None:
    st.subheader(_("Forward pass, layer by layer"))
    st.latex(rf"z_1 = W_1 x + b_1 = {matrix(net.w1)} {matrix(x[0], 0)} + {matrix(net.b1)} = {matrix(f.z1[0])}")
    st.latex(rf"a_1 = \mathrm{{{net.hidden}}}(z_1) = {matrix(f.a1[0])}")
    st.latex(rf"z_2 = W_2 a_1 + b_2 = {matrix(net.w2)} {matrix(f.a1[0])} + {matrix(net.b2)} = {matrix(f.z2[0])}")
    st.latex(rf"\hat y = \mathrm{{{net.output}}}(z_2) = {matrix(f.a2[0])}, \quad y = {matrix(y[0], 0)}")


# The loss formula, and one output's signed term with @p for ŷₖ, @t for yₖ and @k for the number of outputs K.
LOSS_FORMULAS = {
    ("cross-entropy", "softmax"): (r"L = -\sum_k y_k \log \hat y_k", r"-@t \cdot \log @p"),
    ("cross-entropy", "sigmoid"): (
        r"L = -\tfrac{1}{K} \sum_k \big[y_k \log \hat y_k + (1 - y_k) \log(1 - \hat y_k)\big]",
        r"-\tfrac{1}{@k}\big[@t \log @p + (1 - @t) \log(1 - @p)\big]"),
    "mse": (r"L = \tfrac{1}{K} \sum_k (\hat y_k - y_k)^2", r"+\tfrac{1}{@k}(@p - @t)^2"),
}


def loss_section(net: Network, y: torch.Tensor, f) -> None:
    st.subheader(_("The loss, term by term"))
    formula, term = LOSS_FORMULAS["mse"] if net.loss == "mse" else LOSS_FORMULAS[(net.loss, net.output)]
    outputs = y.shape[1]
    parts = [term.replace("@p", number(float(p))).replace("@t", number(float(t), 0)).replace("@k", str(outputs))
             for p, t in zip(f.a2[0], y[0], strict=True)]
    values = loss_terms(net.loss, net.output, f.a2, y)[0]
    st.latex(rf"{formula}, \quad K = {outputs}")
    st.latex("L = " + " ".join(parts).removeprefix("+") + " = " + " + ".join(number(float(v), 4) for v in values)
             + rf" = {number(float(f.loss), 4)}")
    if net.loss == "cross-entropy" and net.output == "sigmoid":
        st.caption(_("With sigmoid outputs each output answers its own yes/no question, so the loss is binary "
                     "cross-entropy per output: the wrong class's output is pushed towards 0 too."))


def update_section(net: Network, grads, stepped: Network, lr: float) -> None:
    st.subheader(_("The update: every weight moves against its gradient, α = {lr}").format(lr=f"{lr:g}"))
    st.latex(r"\theta \leftarrow \theta - \alpha \frac{\partial L}{\partial \theta}")
    for name, label in (("w2", "W_2"), ("b2", "b_2"), ("w1", "W_1"), ("b1", "b_1")):
        st.latex(rf"\begin{{aligned}} {label} &\leftarrow {matrix(getattr(net, name))} - {number(lr, 2)} \cdot "
                 rf"{matrix(getattr(grads, 'd' + name))} \\ &= {matrix(getattr(stepped, name))} \end{{aligned}}")


def backward_section(net: Network, x: torch.Tensor, f, grads) -> None:
    st.subheader(_("Backward pass: the chain rule, from the loss to every weight"))
    if net.output == "softmax" and net.loss == "cross-entropy":
        st.latex(rf"\delta_2 = \frac{{\partial L}}{{\partial z_2}} = \hat y - y = {matrix(grads.dz2[0])}")
    elif net.loss == "cross-entropy":  # sigmoid outputs with binary cross-entropy
        st.latex(rf"\delta_2 = \frac{{\partial L}}{{\partial z_2}} = \tfrac{{1}}{{K}}(\hat y - y) = "
                 rf"{matrix(grads.dz2[0])}")
    else:
        st.latex(rf"\delta_2 = \frac{{\partial L}}{{\partial z_2}} = J_{{\hat y}}(z_2)^\top "
                 rf"\frac{{\partial L}}{{\partial \hat y}} = {matrix(grads.dz2[0])}")
    st.latex(rf"\frac{{\partial L}}{{\partial W_2}} = \delta_2 a_1^\top = {matrix(grads.dw2)}, \quad "
             rf"\frac{{\partial L}}{{\partial b_2}} = \delta_2 = {matrix(grads.db2)}")
    gate = torch.where(f.z1[0] > 0, 1.0, 0.0) if net.hidden == "relu" else None
    gate_text = rf"\mathbb{{1}}[z_1 > 0] = {matrix(gate, 0)}" if gate is not None else r"f'(z_1)"
    st.latex(rf"\delta_1 = (W_2^\top \delta_2) \odot {gate_text} \;\Rightarrow\; \delta_1 = {matrix(grads.dz1[0])}")
    st.latex(rf"\frac{{\partial L}}{{\partial W_1}} = \delta_1 x^\top = {matrix(grads.dw1)}, \quad "
             rf"\frac{{\partial L}}{{\partial b_1}} = \delta_1 = {matrix(grads.db1)}")


def check_section(net: Network, x: torch.Tensor, y: torch.Tensor, grads) -> None:
    st.subheader(_("Checked"))
    oracle, numeric = autograd_gradients(net, x, y), finite_difference_gradients(net, x, y)
    names = {"dw1": "∂L/∂W₁", "db1": "∂L/∂b₁", "dw2": "∂L/∂W₂", "db2": "∂L/∂b₂"}
    autograd, finite = _("max |hand − autograd|"), _("max |hand − finite differences|")
    tables.table(pd.DataFrame({
        _("gradient"): list(names.values()),
        autograd: [float((getattr(grads, k) - getattr(oracle, k)).abs().max()) for k in names],
        finite: [float((getattr(grads, k) - getattr(numeric, k)).abs().max()) for k in names]}),
        {autograd: tables.scientific(), finite: tables.scientific()})
    st.caption(_("Every number above comes from hand-written formulas in dlplay.lessons.neuron (no autograd); this "
                 "table compares them with torch.autograd and with central finite differences (h = 1e-6), in float64."))


def training_section(net: Network, x: torch.Tensor, y: torch.Tensor, loss_now: float, lr: float) -> None:
    st.subheader(_("One gradient step, then many"))
    a, b = st.columns(2)
    a.metric(_("Loss"), f"{loss_now:.4f}", delta=None if PAGE.last_loss is None else
             _("{change} after the last step").format(change=f"{loss_now - PAGE.last_loss:+.4f}"),
             delta_color="inverse")
    b.button(_("Take one SGD step: θ ← θ − α ∂L/∂θ"), key="neuron.net.step", on_click=take_step, args=(x, y, lr))
    steps = st.slider(_("Train N steps"), 1, 200, 50, key="neuron.net.steps")
    single = train(net, x, y, lr, steps)[1]
    batch_x, batch_y = binary_batch(8, seed=1)
    batch = train(net, batch_x, batch_y, lr, steps)[1]
    st.plotly_chart(charts.lines({_("the article's single example"): single, _("a batch of 8 examples"): batch},
                                 x_title=_("SGD step"), y_title=_("loss"), log_y=False))
    st.caption(_("One example is learned perfectly; a batch whose labels no 3→3→2 network can all fit stops "
                 "at a higher loss. Raise α to 3 and watch the single-example curve jump around."))


def loop_diagram(stage: str) -> str:
    """The article's training loop with the current stage highlighted."""
    nodes = {"input": (_("Input x"), "forward"), "hidden": (_("Hidden layer a₁"), "forward"),
             "output": (_("Output ŷ"), "forward"), "loss": (_("Loss L"), "loss"),
             "backprop": (_("Backprop δ"), "backward"), "update": (_("Update θ"), "update")}
    lines = ['digraph loop { rankdir=LR; bgcolor="transparent"; node [shape=box, style="rounded,filled", '
             'fontname="Helvetica", color="#4a6fa5"];']
    lines += [f'{key} [label="{label}", fillcolor="{"#ffd27f" if part == stage else "#eef3fb"}"];'
              for key, (label, part) in nodes.items()]
    iterate = _("iterate")
    lines += ["input -> hidden -> output -> loss -> backprop -> update;",
              f'update -> input [label="{iterate}", style=dashed];', "}"]
    return "\n".join(lines)


def losses_section() -> None:
    st.header(_("Losses: MSE and cross-entropy on the same output"))
    a, b, c = st.columns(3)
    logits = torch.tensor([[a.slider("logit z₁", -5.0, 5.0, 2.0, 0.1, key="neuron.loss.z1"),
                            b.slider("logit z₂", -5.0, 5.0, 0.5, 0.1, key="neuron.loss.z2"),
                            c.slider("logit z₃", -5.0, 5.0, -1.0, 0.1, key="neuron.loss.z3")]], dtype=torch.float64)
    target = st.radio(_("True class"), [0, 1, 2], horizontal=True, format_func=shown_as(class_names(3)),
                      key="neuron.loss.y")
    y = one_hot([target], 3)
    rows = []
    for loss in LOSSES:
        value, gradient = loss_on_logits(loss, logits, y)
        rows.append({_("loss"): _(LOSS_NAMES[loss]), _("value"): value,
                     _("∂L/∂z (w.r.t. the logits)"): str([round(float(v), 4) for v in gradient])})
    st.latex(rf"\hat y = \mathrm{{softmax}}(z) = {matrix(torch.softmax(logits, 1)[0])}, \quad y = {matrix(y[0], 0)}")
    tables.table(rows, {_("value"): tables.decimals(4)})
    st.markdown(_("With softmax, cross-entropy's gradient is simply **ŷ − y**: the error itself, large when the "
                  "model is confidently wrong. MSE's gradient passes through the softmax's slope, which flattens out "
                  "when the model is confidently wrong, so it learns slowly exactly when it should learn fast."))
    p, losses = loss_against_probability()
    st.plotly_chart(charts.lines({say(name): values for name, values in losses.items()}, p,
                                 _("predicted probability of the true class p"), _("loss"), log_y=False))


st.title(_("Neuron math"))
st.caption(_("The article's §2–§4 worked example, live and exact: every number below is computed by hand-written "
             "formulas and checked against PyTorch's autograd."))
one_neuron()
st.header(_("2. The article's network: 3 inputs → 3 hidden (ReLU) → 2 outputs (softmax), x = [1, 0, 1]"))
net, x, y = network_controls()
f = forward(net, x, y)
grads = backward(net, x, y, f)
a, b, c = st.columns([3, 1, 1.4], vertical_alignment="bottom")
stage = a.radio(_("Step through the loop"), STAGES, horizontal=True, format_func=translator(), key=STAGE)
lr = c.select_slider(_("Learning rate α"), [0.01, 0.03, 0.1, 0.3, 1.0, 3.0], value=0.3, key="neuron.net.lr")
b.button(_("Next ▶"), key="neuron.net.next", on_click=next_stage, args=(x, y, lr), width="stretch")
st.graphviz_chart(loop_diagram(stage))
if stage == STAGES[-1]:
    st.caption(_("Next takes this step, the same as the SGD step button below, and starts the loop again with the new "
                 "weights."))
if stage == "forward":
    forward_section(net, x, y, f)
elif stage == "loss":
    loss_section(net, y, f)
elif stage == "backward":
    backward_section(net, x, f, grads)
else:
    update_section(net, grads, sgd_step(net, grads, lr), lr)
check_section(net, x, y, grads)
training_section(net, x, y, float(f.loss), lr)
with st.expander(_("Where the article slips, and the correct formulas")):
    tables.table({_(column): [_(text) for text in texts] for column, texts in SLIPS.items()})
    st.caption(_("The formulas on this page are the correct ones; the tests check each against autograd."))
losses_section()
