"""Network playground: 2-D data, a small network, play and watch the decision boundary form (TensorFlow Playground,
in PyTorch, with more classes, regression and your own points)."""
import contextlib

import streamlit as st

from dlplay.lessons.playground import (
    ACTIVATIONS,
    DATASETS,
    FEATURES,
    MAX_HIDDEN_LAYERS,
    MAX_NEURONS,
    OPTIMIZERS,
    REGULARIZERS,
    UPDATE_SECONDS,
    NetworkConfig,
    Session,
    epochs_per_update,
    linear_layers,
    make_points,
    pytorch_script,
    read_points_csv,
    train_together,
)
from dlplay.limits import limits
from ui import chart_words, charts, verdicts
from ui.i18n import N_, _, listing, say, say_in_code, sentence, shown_as, translator
from ui.playground_link import (
    COMPARE,
    DROPOUTS,
    LEARNING_RATES,
    PREFIX,
    PREFIX_B,
    REG_RATES,
    from_query,
    to_query,
)
from ui.state import PlaygroundState

PAGE = PlaygroundState()
MY_CSV = N_("my points (CSV)")
NAMES = ("A", "B")
KEPT_PARAMS = ("lang",)  # the app's own query parameters, which the playground's link keeps
NOW = "now"  # the look-back slider's last stop: it follows training
CONTROLS_WIDTH, STAGE_WIDTH = 340, 540  # pixels


DEFAULTS = {"data": "circle", "seed": 0, "train_share": 50, "noise": 10, "points": 300, "features": ["x₁", "x₂"],
            "layers": 2, "optimizer": "SGD", "lr": 0.03, "batch": 10, "dropout": 0.0, "regularizer": "none",
            "reg_rate": 0.001}
LAYER_DEFAULTS = {"neurons": 4, "activation": "tanh"}


def start_from_link() -> None:
    """On a session's first visit, the link's settings (else the defaults) become the controls' values; later
    visits keep what the learner set. Controls then take their values from the session state only."""
    if not PAGE.link_read:
        for key, value in {**{PREFIX + k: v for k, v in DEFAULTS.items()},
                           **from_query(st.query_params.to_dict())}.items():
            st.session_state.setdefault(key, value)
        PAGE.link_read = True
    for key, value in DEFAULTS.items():  # Streamlit forgets a widget's state when a rerun does not draw it
        st.session_state.setdefault(PREFIX + key, value)
    for key, value in {**DEFAULTS, "features": ["x₁", "x₂", "x₁²", "x₂²"]}.items():
        st.session_state.setdefault(PREFIX_B + key, value)


def next_seed() -> None:
    st.session_state[PREFIX + "seed"] = (st.session_state[PREFIX + "seed"] + 1) % 10_001


def data_controls():
    """The data section; returns (points, what the points were built from) or (None, None) with a sentence shown."""
    name = st.selectbox(_("Data"), [*DATASETS, MY_CSV], format_func=translator(), key="playground.data")
    a, b = st.columns(2)
    seed = a.number_input(_("Seed"), 0, 10_000, key="playground.seed")
    fraction = b.slider(_("Training share"), 10, 90, step=10, format="%d%%", key="playground.train_share") / 100
    if name == MY_CSV:
        upload = st.file_uploader(_("CSV with columns x1, x2 and label (classes 0, 1, …) or target (a number)"),
                                  type=["csv"], key="playground.csv")
        if upload is None:
            st.info(_("Upload a CSV of 2-D points to train on them."))
            return None, None
        try:
            return read_points_csv(upload.getvalue(), fraction, int(seed)), (upload.file_id, fraction, seed)
        except ValueError as err:
            st.error(_("This CSV cannot be used: {reason}.").format(reason=say(str(err))))
            return None, None
    a, b = st.columns(2)
    noise = a.slider(_("Noise"), 0, 50, step=5, format="%d%%", key="playground.noise") / 100
    count = b.slider(_("Points"), 50, 1000, step=50, key="playground.points")
    st.button(_("Regenerate the points"), key="playground.regenerate", on_click=next_seed,
              help=_("New points of the same kind (the next seed)."))
    return make_points(name, count, noise, fraction, int(seed)), (name, noise, count, fraction, seed)


def network_controls(prefix: str = PREFIX) -> NetworkConfig:
    """Features, hidden layers and training settings, in the widgets whose keys start with `prefix`."""
    features = st.pills(_("Input features"), list(FEATURES), selection_mode="multi", key=f"{prefix}features",
                        width="stretch", wrap=True)  # the pills wrap instead of scrolling past the column's edge
    layers = st.slider(_("Hidden layers"), 0, MAX_HIDDEN_LAYERS, key=f"{prefix}layers")
    sizes, activations = [], []
    for start in range(0, layers, 2):
        for i, column in enumerate(st.columns(2)):
            layer = start + i
            if layer >= layers:
                break
            for name, value in LAYER_DEFAULTS.items():
                st.session_state.setdefault(f"{prefix}{name}.{layer}", value)
            sizes.append(column.number_input(_("Layer {number} neurons").format(number=layer + 1), 1, MAX_NEURONS,
                                             key=f"{prefix}neurons.{layer}"))
            activations.append(column.selectbox(_("Layer {number} activation").format(number=layer + 1),
                                                list(ACTIVATIONS), key=f"{prefix}activation.{layer}"))
    a, b = st.columns(2)
    optimizer = a.selectbox(_("Optimizer"), list(OPTIMIZERS), key=f"{prefix}optimizer")
    lr = b.select_slider(_("Learning rate"), LEARNING_RATES, key=f"{prefix}lr")
    a, b = st.columns(2)
    batch = a.slider(_("Batch size"), 1, 30, key=f"{prefix}batch")
    dropout = b.select_slider(_("Dropout"), DROPOUTS, key=f"{prefix}dropout")
    a, b = st.columns(2)
    regularizer = a.radio(_("Regularization"), REGULARIZERS, horizontal=True, format_func=translator(),
                          key=f"{prefix}regularizer")
    if regularizer == "none":  # no rate to set (a greyed-out slider's label fails WCAG contrast): keep the learner's
        rate = st.session_state[f"{prefix}reg_rate"] = st.session_state[f"{prefix}reg_rate"]  # for its return
    else:
        rate = b.select_slider(_("Regularization rate"), REG_RATES, key=f"{prefix}reg_rate")
    return NetworkConfig(tuple(features or ()), tuple(int(s) for s in sizes), tuple(activations), dropout,
                         regularizer, rate, optimizer, lr, batch)


def write_link() -> None:
    """Keep the URL's query string equal to the controls, so the address bar is a link to this playground."""
    values, values_b = ({key.removeprefix(prefix): value for key, value in st.session_state.items()
                         if isinstance(key, str) and key.startswith(prefix)} for prefix in (PREFIX, PREFIX_B))
    if values.get("data") == MY_CSV:
        return  # the user's file cannot travel in a link
    query = to_query(values, values_b if st.session_state.get(COMPARE) else None)
    query |= {key: st.query_params[key] for key in KEPT_PARAMS if key in st.query_params}
    if st.query_params.to_dict() != query:
        st.query_params.from_dict(query)


def current_sessions(points, data_key, configs: list[NetworkConfig]) -> list[Session]:
    """One session per network for these points (A, then B). A new learning rate, optimizer, batch size or
    regularization carries on from the current weights, and turning the comparison on or off keeps A's training
    (a new B catches up with A's epoch); a change of data or of a network's shape rebuilds them all together, so
    that compared networks start from the same data and seed at the same time. [] (with a sentence) for an
    impossible network."""
    networks = PAGE.networks if PAGE.built_from == data_key else None
    common = list(zip(networks or [], configs, strict=False))
    kept = [session for session, __ in common] if all(session.retune(config) for session, config in common) else []
    if networks is None or len(kept) != len(networks) or len(kept) != len(configs):
        try:
            PAGE.networks = kept + [Session(points, config, seed=0) for config in configs[len(kept):]]
        except ValueError as err:
            PAGE.networks = None
            st.warning(sentence(say(str(err))))
            return []
        PAGE.built_from = data_key
    return PAGE.networks


def edit_weight(session: Session) -> None:
    """Set one weight by hand; training then goes on from the edited network."""
    with st.expander(_("Edit a weight by hand")):
        layers = linear_layers(session.model)
        a, b, c, d = st.columns(4)
        names = [*(_("hidden {number}").format(number=i + 1) for i in range(len(layers) - 1)), _("output")]
        layer = a.selectbox(_("Layer"), range(len(layers)), key="playground.edit_layer", format_func=shown_as(names))
        rows, columns = layers[layer].weight.shape
        to = b.number_input(_("To neuron"), 1, rows, 1, key="playground.edit_to")
        source = c.number_input(_("From neuron"), 1, columns, 1, key="playground.edit_from")
        current = layers[layer].weight[int(to) - 1, int(source) - 1].item()
        value = d.number_input(_("Weight"), -10.0, 10.0, round(current, 3), step=0.1, key="playground.edit_value")
        st.caption(_("Now {value}. Set it, then Step or Play: training goes on from the edited network.").format(
            value=f"{current:.3f}"))
        st.button(_("Set the weight"), key="playground.edit_set", on_click=session.set_weight,
                  args=(layer, int(to) - 1, int(source) - 1, float(value)))


def set_playing(playing: bool) -> None:
    """Play or pause: each button says what it does, so a second click on a stale Pause never plays again."""
    PAGE.playing = playing


def reset() -> None:
    """Forget the trained network: the next run builds a fresh one from the same seed."""
    PAGE.built_from = None
    PAGE.playing = False


def draw_network(session: Session, show_test: bool, discretize: bool, epoch: int | None, name: str,
                 compact: bool, details: bool) -> None:
    """One network's epoch, losses and reading, its output over the plane with the points (with `details` an
    interactive figure, else a picture that is quicker to draw while playing) and its drawing, as it was after
    `epoch` (None: now); `compact` for half the width."""
    points, shown = session.points, session.epoch if epoch is None else epoch
    accuracy = f"{session.test_accuracies[shown]:.1%}" if session.test_accuracies else None
    penalized = session.config.regularizer != "none"
    penalty_label = _("{regularizer} penalty").format(regularizer=session.config.regularizer)
    if compact:
        st.markdown(_("Epoch **{epoch}** · training loss **{train}** · test loss **{test}**").format(
            epoch=shown, train=f"{session.train_losses[shown]:.3f}", test=f"{session.test_losses[shown]:.3f}")
            + (_(" · {regularizer} penalty **{penalty}**").format(regularizer=session.config.regularizer,
                                                                  penalty=f"{session.penalties[shown]:.3f}")
               if penalized else "")
            + (_(" · test accuracy **{accuracy}**").format(accuracy=accuracy) if accuracy else ""))
    else:
        widths = [0.7, 1.6 if penalized else 1, 1, 1.1][:4 if accuracy else 3]  # room for the penalty's words
        columns = st.columns(widths)
        columns[0].metric(_("Epoch"), shown)
        columns[1].metric(_("Training loss"), f"{session.train_losses[shown]:.3f}",  # the penalty: a term beside it
                          delta=f"+{session.penalties[shown]:.3f}" if penalized else None, delta_color="off",
                          delta_arrow="off", delta_description=penalty_label if penalized else None)
        columns[2].metric(_("Test loss"), f"{session.test_losses[shown]:.3f}")
        if accuracy:
            columns[3].metric(_("Test accuracy"), accuracy)
    if epoch is None:
        st.info(verdicts.playground_session(session.verdict()))
    axis, values = session.surface(epoch=epoch)
    shown_points = ((points.train_x, points.train_y), (points.test_x, points.test_y) if show_test else None)
    size = 300 if compact else 440
    surface_words = _("The network's output over the plane (x₁ across, x₂ up, from −6 to 6).")
    wrong = round((1 - session.test_accuracies[shown]) * len(points.test_y)) if session.test_accuracies else None
    regions = chart_words.decision_regions(values, points.task, points.classes, wrong, len(points.test_y))
    if not details:  # playing: a picture drawn here, which the browser shows at once
        picture = charts.playground_picture(axis.tolist(), values, *shown_points, points.task, points.classes,
                                            discretize, size)
        st.image(picture, width="stretch" if compact else picture.shape[1], alt=f"{surface_words} {regions}")
        st.caption(regions)
    else:
        chart_words.chart(charts.playground_surface(axis.tolist(), values, *shown_points, points.task,
                                                    points.classes, discretize, size), f"playground.surface{name}",
                          words=regions)
    st.caption(surface_words)
    network_picture(session, epoch, compact)


def network_picture(session: Session, epoch: int | None, compact: bool) -> None:
    """The network's drawing, each node's picture inside it, as it was after `epoch` (None: now)."""
    points = session.points
    outputs = ["ŷ"] if points.task == "regression" else [f"ŷ{k}" for k in range(points.classes)]
    headers = [(_("input"), ""), *((_("hidden {number}").format(number=i + 1), str(i + 1))
                                   for i in range(len(session.config.hidden))), (_("output"), "")]
    weights = [m.weight.detach() for m in linear_layers(session.model_at(epoch))]
    st.image(charts.network_svg(session.node_surfaces(epoch=epoch), weights, session.config.features, outputs,
                                headers, points.classes, width=300 if compact else 600),
             width="stretch", alt=_("The network: {network}.").format(network=network_label(session.config)))


def drawing_caption(task: str) -> str:
    """What the boxes and lines of the network's drawing show."""
    if task == "regression":
        return _("In the network's drawing each box is a node's output over the same plane, orange below zero and "
                 "blue above; each line is a weight: blue positive, orange negative, thicker when larger.")
    return _("In the network's drawing each box is a node's output over the same plane: orange below zero and blue "
             "above, and for the outputs each class's probability in its colour; each line is a weight: blue "
             "positive, orange negative, thicker when larger.")


def network_label(config: NetworkConfig) -> str:
    """Features and hidden layers in a few words, to tell compared networks apart."""
    hidden = listing(f"{n} {a}" for n, a in zip(config.hidden, config.activations, strict=True)) or _("none")
    return _("inputs {inputs}; hidden layers: {hidden}").format(inputs=" ".join(config.features) or _("none"),
                                                               hidden=hidden)


def loss_caption(sessions: list[Session]) -> str:
    """What the curves' loss is, and each penalty that training adds to it."""
    text = (_("The loss is the cross-entropy of the softmax class probabilities, averaged over the points.")
            if sessions[0].points.task == "classification" else
            _("The loss is half the mean squared error: ½·mean((ŷ − y)²) over the points."))
    for session, name in zip(sessions, NAMES, strict=False):
        config = session.config
        if config.regularizer == "none":
            continue
        who = _("Network {name}'s training").format(name=name) if len(sessions) > 1 else _("Training")
        text += _(" {who} minimises the loss plus the {regularizer} penalty {rate} × {term} on the weights (not the "
                  "biases); the penalty is drawn as its own curve, and the training and test losses leave it out."
                  ).format(who=who, regularizer=config.regularizer, rate=f"{config.reg_rate:g}",
                           term="Σ|w|" if config.regularizer == "L1" else "½Σw²")
    return text


def draw(sessions: list[Session], show_test: bool, discretize: bool, epoch: int | None, details: bool) -> None:
    """The loss curves (overlaid when two networks are compared) with what the loss is, then each network side by
    side."""
    shown = sessions[0].epoch if epoch is None else epoch
    curves = {}
    for session, name in zip(sessions, NAMES, strict=False):
        label = f"{name}: " if len(sessions) > 1 else ""
        curves |= {label + _("training"): session.train_losses, label + _("test"): session.test_losses}
        if session.config.regularizer != "none":
            curves[label + _("{regularizer} penalty").format(regularizer=session.config.regularizer)] = (
                session.penalties)
    chart_words.chart(charts.lines(curves, x_title=_("epoch"), y_title=_("loss"), height=220, mark_x=shown),
                      "playground.losses")
    st.caption(loss_caption(sessions))
    if len({session.epoch for session in sessions}) > 1:
        st.caption(_("Network B started later: until it reaches A's epoch {epoch}, Step and Play train B alone."
                     ).format(epoch=sessions[0].epoch))
    columns = st.columns(len(sessions)) if len(sessions) > 1 else [st.container()]
    for session, name, column in zip(sessions, NAMES, columns, strict=False):
        with column:
            if len(sessions) > 1:
                st.markdown(_("**Network {name}**: {network}").format(name=name, network=network_label(session.config)))
            draw_network(session, show_test, discretize, epoch, name, compact=len(sessions) > 1, details=details)
    st.caption(drawing_caption(sessions[0].points.task))


def play_controls(sessions: list[Session], points) -> tuple[bool, bool, int | None]:
    """Play / Pause, Step, Reset, the view toggles and the look-back slider -> (show test, discretize, past epoch
    to show or None for now)."""
    session, playing = sessions[0], PAGE.playing
    a, b, c = st.columns(3)
    if playing:
        a.button(_("Pause"), type="primary", key="playground.pause", on_click=set_playing, args=(False,))
    else:
        a.button(_("Play"), type="primary", key="playground.play", on_click=set_playing, args=(True,))
    b.button(_("Step"), key="playground.step", disabled=playing, on_click=train_together, args=(sessions, 1))
    c.button(_("Reset"), key="playground.reset", on_click=reset)
    d, e = st.columns(2)
    show_test = d.toggle(_("Show test points"), key="playground.show_test")
    discretize = e.toggle(_("Discretize output"), key="playground.discretize",
                          disabled=points.task != "classification" or points.classes != 2)
    for each in sessions:
        each.wait_for_epoch()  # a live update interrupted by this click may still be finishing one
    if playing or session.epoch == 0:
        return show_test, discretize, None
    kept = set.intersection(*(set(each.epochs_kept()) for each in sessions))  # a later B lacks A's first epochs
    earlier = sorted(e for e in kept if e != session.epoch)
    labels = {**{e: str(e) for e in earlier}, NOW: _("{epoch} (now)").format(epoch=session.epoch)}
    chosen = st.select_slider(_("Look back: the network after epoch"), [*earlier, NOW], value=NOW,
                              format_func=labels.get, key="playground.look_back")
    return show_test, discretize, None if chosen == NOW else chosen


def live(sessions: list[Session], epochs: int, show_test: bool, discretize: bool, past: int | None) -> None:
    """While playing, train `epochs` epochs and draw, every UPDATE_SECONDS (a fragment: the rest of the page
    stays)."""
    if PAGE.playing:
        train_together(sessions, epochs, keep_going=lambda: PAGE.playing)
    with contextlib.ExitStack() as held:  # whole epochs' numbers, never half of one
        for each in sessions:
            held.enter_context(each.lock)
        draw(sessions, show_test, discretize, past, details=not PAGE.playing)


def code_section(session: Session, data_key, config: NetworkConfig) -> None:
    """The run as a plain PyTorch script."""
    with st.expander(_("Show PyTorch code")):
        if data_key[0] in DATASETS:  # a built-in dataset: (name, noise, count, fraction, seed); a CSV: (id, …)
            name, noise, count, fraction, seed = data_key
            st.caption(_("The same network and data in plain PyTorch, trained for as many epochs as this run "
                         "(100 before the first step). Run it with python next to dlplay."))
            script = pytorch_script(name, count, noise, fraction, int(seed), config, session.epoch or 100)
            st.code(say_in_code(script), language="python", wrap_lines=True)
        else:
            st.caption(_("The code is written for the built-in datasets; pick one of them to see it."))


st.title(_("Network playground"))
st.caption(_("Pick 2-D data and a small network, press Play, and watch it learn to separate the points. Every "
             "number comes from a real PyTorch network trained with a real torch.optim optimizer."))
start_from_link()
# The controls and the stage side by side where the window has room for both (1,400 px with the sidebar open), else
# the stage below the controls: each keeps a width at which its widgets, and A and B side by side, can be read.
layout = st.container(horizontal=True, gap="medium")
controls, stage = layout.container(width=CONTROLS_WIDTH), layout.container(width=STAGE_WIDTH)
with controls:
    points, data_key = data_controls()
    config = network_controls()
    configs = [config]
    if st.toggle(_("Compare with a second network (B)"), key=COMPARE,
                 help=_("Both networks train on the same points from the same seed, side by side.")):
        with st.expander(_("Network B"), expanded=True):
            configs.append(network_controls(PREFIX_B))
write_link()
with stage:
    sessions = current_sessions(points, data_key, configs) if points is not None else []
    if sessions:
        limit = limits().playground_steps
        epochs, steps = epochs_per_update(len(points.train_x), [c.batch_size for c in configs], limit)
        if not epochs:
            st.warning(_("One epoch here takes {steps} optimizer steps ({points} training points in batches of "
                         "{batch}); a live update may take at most {limit}. Raise the batch size or use fewer "
                         "points.").format(steps=f"{steps:,}", points=f"{len(points.train_x):,}",
                                           batch=configs[0].batch_size, limit=f"{limit:,}"))
            st.stop()
        show_test, discretize, past = play_controls(sessions, points)
        st.fragment(live, run_every=UPDATE_SECONDS if PAGE.playing else None)(sessions, epochs, show_test,
                                                                             discretize, past)
        if not PAGE.playing:
            edit_weight(sessions[0])
if sessions:  # the code at the page's full width: in the stage's column it scrolls sideways
    code_section(sessions[0], data_key, config)
