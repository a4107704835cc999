"""Optimizers: real torch.optim optimizers racing on 2-D loss surfaces; learning rates; schedules; Adam by hand."""

import streamlit as st
import torch

from dlplay.lessons.optimizers import (
    RACE_OPTIMIZERS,
    SURFACES,
    article_adam,
    article_sgd,
    log_grid,
    loss_axis_range,
    race,
    run,
    surface_gradient,
)
from dlplay.training.schedules import SCHEDULES, lr_trace
from ui import chart_words, charts, tables, verdicts
from ui.i18n import _, current, shown_as, translator
from ui.latex import matrix

# Ranges torch.optim accepts (betas, momentum and alpha below 1; a learning rate above 0).
BOUNDS = {"lr": (1e-6, 10.0), "betas": (0.0, 0.9999), "momentum": (0.0, 0.9999), "alpha": (0.0, 0.9999),
          "weight_decay": (0.0, 1.0)}


KEPT = 32  # results kept per cache, shared by every learner on the server: a touch that comes back to a setting
# (or that changes another section) computes nothing again, and memory stays bounded


@st.cache_data(max_entries=KEPT, show_spinner=False)
def race_paths(surface: str, chosen: list[str], start: tuple[float, float], steps: int, settings: dict,
               tolerance: float, schedule: str) -> list:
    """The race of these settings, computed once."""
    return race(SURFACES[surface], chosen, start, steps, settings, tolerance, schedule, state_step=steps)


@st.cache_resource(max_entries=KEPT, show_spinner=False)
def race_figure(surface: str, chosen: list[str], start: tuple[float, float], steps: int, settings: dict,
                tolerance: float, schedule: str, language: str):
    """The race's animated drawing (about 40 frames) for these settings and this language, built once and shared:
    Streamlit copies a figure before sending it, so no session changes the one kept here."""
    shape = SURFACES[surface]
    paths = race_paths(surface, chosen, start, steps, settings, tolerance, schedule)
    return charts.race_contour(*surface_grid(surface), shape.minima, {p.name: p.points for p in paths},
                               shape.x_range, shape.y_range)


@st.cache_data(max_entries=len(SURFACES), show_spinner=False)
def surface_grid(surface: str) -> tuple[list[float], list[float], list[list[float]]]:
    """log_grid() of a surface, computed once."""
    return log_grid(SURFACES[surface])


@st.cache_data(max_entries=len(SURFACES), show_spinner=False)
def loss_axis(surface: str) -> tuple[float, float] | None:
    """loss_axis_range() of a surface, computed once."""
    return loss_axis_range(SURFACES[surface])


@st.cache_data(max_entries=KEPT, show_spinner=False)
def learning_rate_paths(name: str, base: float) -> list:
    """`name` on the ill-conditioned quadratic at α × 0.1, 1 and 10, computed once."""
    surface = SURFACES["ill-conditioned quadratic"]
    paths = []
    for factor in (0.1, 1, 10):
        path = run(surface, name, surface.start, 300, {"lr": base * factor})
        path.name = f"α × {factor:g} = {base * factor:.4g}"
        paths.append(path)
    return paths


def hyperparameters(name: str) -> dict:
    """Number inputs for every numeric setting of one optimizer (betas as two numbers), in one row."""
    defaults = RACE_OPTIMIZERS[name][1]
    fields = [(k, i, v) for k, value in defaults.items() if not isinstance(value, bool)
              for i, v in (enumerate(value) if isinstance(value, tuple) else [(None, value)])]
    columns = st.columns(len(fields) + 1)
    columns[0].markdown(f"**{name}**")
    chosen: dict = {}
    for column, (key, index, value) in zip(columns[1:], fields, strict=True):
        label = key if index is None else f"{key}[{index}]"
        low, high = BOUNDS.get(key, (0.0, 1.0))
        number = column.number_input(label, low, high, float(value), format="%.4f",
                                     key=f"optimizers.hyper.{name}.{label}")
        if index is None:
            chosen[key] = number
        else:
            chosen[key] = (*chosen.get(key, ()), number)
    return {**defaults, **chosen}


@st.fragment  # a touch here reruns the race alone, not the sections below
def race_section() -> None:
    st.header(_("1. The race"))
    a, b = st.columns([2, 1])
    name = a.selectbox(_("Loss surface"), list(SURFACES), format_func=translator(), key="optimizers.race.surface")
    surface = SURFACES[name]
    a.latex(rf"f(x, y) = {surface.formula}")
    x0 = b.slider(_("start x"), float(surface.x_range[0]), float(surface.x_range[1]), float(surface.start[0]), 0.05,
                  key=f"optimizers.race.x0.{name}")
    y0 = b.slider(_("start y"), float(surface.y_range[0]), float(surface.y_range[1]), float(surface.start[1]), 0.05,
                  key=f"optimizers.race.y0.{name}")
    chosen = st.multiselect(_("Optimizers (torch.optim)"), list(RACE_OPTIMIZERS),
                            default=["SGD", "SGD + momentum", "Adam"], key="optimizers.race.optimizers")
    with st.expander(_("Each optimizer's hyperparameters")):
        settings = {n: hyperparameters(n) for n in chosen}
    a, b, c = st.columns(3)
    steps = a.slider(_("Steps"), 50, 1000, 500, 50, key="optimizers.race.steps")
    tolerance = b.select_slider(_("Tolerance (loss above the minimum)"), [1e-1, 1e-2, 1e-3, 1e-4, 1e-6], value=1e-3,
                                key="optimizers.race.tolerance")
    schedule = c.selectbox(_("Learning-rate schedule"), list(SCHEDULES), key="optimizers.race.schedule",
                           format_func=shown_as({n: f"{n}: {_(what)}" for n, what in SCHEDULES.items()}))
    if not chosen:
        st.info(_("Pick at least one optimizer to race."))
        return
    if schedule == "onecycle" and any(settings[n].get("momentum") or "betas" in settings[n] for n in chosen):
        st.caption(_("One-cycle also cycles the momentum (0.95 → 0.85 → 0.95) of the optimizers that have one; "
                     "plain SGD, RMSprop and Adagrad keep none."))
    inputs = (name, chosen, (x0, y0), steps, settings, tolerance, schedule)
    paths = race_paths(*inputs)
    chart_words.chart(race_figure(*inputs, current()), "optimizers.race.chart")
    st.caption(_("Press Play under the drawing to watch the race step by step, or drag its slider."))
    loss_chart(paths, name, "optimizers.race.losses")
    final, reached = _("final loss"), _("steps to tolerance")
    tables.table([{_("optimizer"): p.name, "lr": settings[p.name]["lr"], reached: p.reached_at,
                   final: p.losses[-1], _("outcome"): verdicts.optimizer_outcome(p)} for p in paths],
                 {final: tables.scientific(), reached: tables.whole(
                     help=_("—: the loss never came within the tolerance of the minimum."))})
    who = st.selectbox(_("Internal state of"), chosen, key="optimizers.race.state")
    path = next(p for p in paths if p.name == who)
    at = len(path.points) - 1  # the last step it took: `steps`, or where it stopped
    kept = "; ".join(f"{k} = [{v[0]:.4g}, {v[1]:.4g}]" for k, v in path.state.items()) or _("plain SGD keeps no state")
    st.caption(_("{optimizer} after step {step}: {state}").format(optimizer=who, step=at, state=kept))


def loss_chart(paths, surface: str, key: str) -> None:
    """Each path's loss per step, the axis held to the surface's square when it has no bottom."""
    held = loss_axis(surface)
    chart_words.chart(charts.lines({p.name: p.losses for p in paths}, x_title=_("step"), y_title=_("loss"),
                                   y_range=held), key)
    if held:
        st.caption(_("This surface has no bottom: off the square above it falls for ever, so a run ends where it "
                     "leaves the square, and the loss axis is held to the values f takes on it."))


@st.fragment  # a touch here reruns this section alone
def learning_rate_section() -> None:
    st.header(_("2. Learning rate: too small, right, too big"))
    a, b = st.columns(2)
    name = a.selectbox(_("Optimizer"), list(RACE_OPTIMIZERS), key="optimizers.lr.optimizer")
    base = b.number_input("α", 1e-5, 10.0, float(RACE_OPTIMIZERS[name][1]["lr"]), format="%.4f",
                          key="optimizers.lr.alpha")
    paths = learning_rate_paths(name, base)
    loss_chart(paths, "ill-conditioned quadratic", "optimizers.lr.losses")
    for path in paths:
        if path.diverged_at is not None:
            st.warning(_("{name}: diverged at step {step}.").format(name=path.name, step=path.diverged_at))
    st.caption(_("On this quadratic the y-direction is 20 times steeper than x: a rate just too big for it makes y "
                 "bounce from side to side forever without ever settling, and a bigger one makes it explode."))


def schedules_section() -> None:
    st.header(_("3. Schedules"))
    chart_words.chart(charts.lines({f"{name}: {_(what)}": lr_trace(name, 0.1, 300)
                                    for name, what in SCHEDULES.items()},
                                   x_title=_("step"), y_title=_("learning rate (base 0.1)"), log_y=False, height=340),
                      "optimizers.schedules")


def article_section() -> None:
    st.header(_("4. The article's SGD and Adam, by hand"))
    surface = SURFACES["Beale"]
    gradient = surface_gradient(surface)
    start = torch.tensor(surface.start, dtype=torch.float64)
    st.latex(r"\theta_t = \theta_{t-1} - \alpha \nabla L(\theta_{t-1})")
    thetas = article_sgd(gradient, start, 0.01, 3)
    for t in range(1, 4):
        st.latex(rf"t={t}:\ \nabla L = {matrix(gradient(thetas[t - 1]))},\ "
                 rf"\theta = {matrix(thetas[t - 1])} - 0.01 \cdot {matrix(gradient(thetas[t - 1]))} = "
                 rf"{matrix(thetas[t])}")
    st.latex(r"m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t,\quad v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,\quad "
             r"\hat m_t = \frac{m_t}{1-\beta_1^t},\quad \hat v_t = \frac{v_t}{1-\beta_2^t},\quad "
             r"\theta_t = \theta_{t-1} - \alpha \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon}")
    records = article_adam(gradient, start, 0.05, 3)
    for t, r in enumerate(records, start=1):
        st.latex(rf"t={t}:\ g = {matrix(r['g'])},\ m = {matrix(r['m'])},\ v = {matrix(r['v'], 4)},\ "
                 rf"\hat m = {matrix(r['m_hat'])},\ \hat v = {matrix(r['v_hat'])},\ \theta = {matrix(r['theta'])}")
    st.caption(_("On Beale's surface from (1, 1.4); SGD with α = 0.01, Adam with α = 0.05. The tests check this "
                 "hand-written Adam (and SGD) against torch.optim.Adam (and SGD) to 1e-6 over 100 steps."))


st.title(_("Optimizers"))
st.caption(_("Real torch.optim optimizers on a two-number parameter (x, y), racing down classic test surfaces."))
race_section()
learning_rate_section()
schedules_section()
article_section()
