"""Convolution: what Conv2D and pooling compute, number by number, on the learner's own picture and on filters
from a model the learner trained."""
from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st
from PIL import Image

from dlplay.classify import SAMPLE_CREDITS, SAMPLE_NAMES, SAMPLE_PHOTOS
from dlplay.images import ImageRejected, decode_image
from dlplay.lessons.convolution import (
    KERNELS,
    avg_pool,
    conv2d,
    conv_step,
    first_conv,
    max_pool,
    normalised,
    pad_input,
    padded_output_size,
    pads,
    parse_kernel,
    picture_planes,
    relu,
    shape_table,
    strongest,
    window_indices,
)
from dlplay.limits import limits
from dlplay.models import build_model
from ui import chart_words, charts, state, tables
from ui.i18n import N_, _, say, translated, translator
from ui.state import ConvolutionState

PAGE = ConvolutionState()
ROW, COL = PAGE.key("row"), PAGE.key("col")  # the kernel's position, moved by the sliders and the step buttons
CHANNEL_NAMES = {1: [N_("grey")], 3: [N_("red"), N_("green"), N_("blue")]}
TYPED_DEFAULT = "1 0 -1\n1 0 -1\n1 0 -1"
PADDINGS = ["valid", "same", 1, 2, 3]


def choose_picture() -> tuple[str, Image.Image | np.ndarray] | None:
    """The input: a digit from mnist5k (as its 28×28 grey levels), a sample photo or an upload."""
    source = st.radio(_("Input"), [N_("a digit"), N_("a sample photo"), N_("my picture")], horizontal=True,
                      format_func=translator(), key="convolution.source")
    if source == "a digit":
        test = state.dataset("mnist5k").test
        index = st.number_input(_("Digit number (from the 1,000 test digits)"), 0, len(test.labels) - 1, 7,
                                key="convolution.digit")
        return (_("test digit #{index} (a {label})").format(index=index, label=int(test.labels[index])),
                test.images[index].double().numpy() / 255)
    if source == "a sample photo":
        name = st.selectbox(_("Photo"), sorted(SAMPLE_NAMES), format_func=translated(SAMPLE_NAMES),
                            key="convolution.photo")
        data = (SAMPLE_PHOTOS / name).read_bytes()
        alt = _(SAMPLE_CREDITS[name])
    else:
        uploaded = st.file_uploader(_("A picture (PNG, JPEG, WebP, BMP or GIF)"), key="convolution.upload")
        if uploaded is None:
            st.info(_("Upload a picture to convolve it."))
            return None
        name, data = uploaded.name, uploaded.getvalue()
        alt = name
    try:
        photo = decode_image(data, draft_size=(256, 256))
    except ImageRejected as err:
        st.error(f"{name}: {say(str(err))}")
        return None
    st.image(picture_planes(photo, 320, 3).transpose(1, 2, 0), width="stretch", alt=alt,  # the photo as a photo
             caption=_("The convolution sees this picture scaled down to the picture size set below."))
    return name, photo


def choose_kernel():
    """The kernel: a classic one, a typed one, or a filter from a trained model's first convolution. Returns
    (label, kernel (C, k, k) or (k, k), bias, model filters or None), or None after saying what is wrong."""
    kind = st.radio(_("Kernel"), [N_("classic"), N_("typed"), N_("from a trained model")], horizontal=True,
                    format_func=translator(), key="convolution.kind")
    if kind == "classic":
        name = st.selectbox(_("Classic kernel"), list(KERNELS), format_func=translator(), key="convolution.classic")
        return _(name), np.array(KERNELS[name], dtype=np.float64), 0.0, None
    if kind == "typed":
        text = st.text_area(_("Kernel rows (any square up to 7×7: numbers split by spaces, one row per line)"),
                            TYPED_DEFAULT,
                            key="convolution.typed", height=130, max_chars=limits().kernel_chars)
        label = _("your kernel")
        try:
            PAGE.typed_kernel = parse_kernel(text)
        except ValueError as err:  # said beside the field; the pictures keep the last kernel that could be used
            st.error(_("This kernel cannot be used: {reason}.").format(reason=say(str(err))))
            label = _("your last usable kernel")
        bias = st.number_input(_("Bias"), -10.0, 10.0, 0.0, 0.1, key="convolution.bias")
        kernel = PAGE.typed_kernel if PAGE.typed_kernel is not None else parse_kernel(TYPED_DEFAULT)
        return label, kernel, bias, None
    models = state.trained_models()
    key = st.selectbox(_("Model"), list(models), format_func=lambda k: models[k][0], key="convolution.model")
    label, load = models[key]
    model, card = load()
    filters = first_conv(model)
    index = st.slider(_("Filter of its first convolution"), 0, filters.weight.shape[0] - 1, 0, key="convolution.filter")
    count, channels, height, width = filters.weight.shape
    st.caption(_("{count} filters of {shape}, learnt on {dataset}. The model applies them with stride {stride}, "
                 "padding {padding} and dilation {dilation}: set those below to see its own first feature map.").format(
        count=count, shape=f"{channels}×{height}×{width}", dataset=card.dataset, stride=filters.stride,
        padding=filters.padding, dilation=filters.dilation))
    return (_("filter {index} of {model}").format(index=index, model=label), filters.weight[index],
            float(filters.bias[index]), filters)


def kernel_planes(kernel: np.ndarray, channels: int) -> np.ndarray:
    """A (k, k) kernel repeated on every input channel, or a (C, k, k) one as it is."""
    return kernel if kernel.ndim == 3 else np.repeat(kernel[None], channels, axis=0)


def position_slider(column, label: str, key: str, count: int) -> int:
    """A slider over 0..count-1, kept within range (one position needs no slider)."""
    st.session_state[key] = min(st.session_state.get(key, 0), count - 1)
    if count == 1:
        column.caption(_("{label}: 0 (the only one)").format(label=label))
        return 0
    return column.slider(label, 0, count - 1, key=key)


def step(rows: int, cols: int, direction: int) -> None:
    """Move the kernel one position in reading order, wrapping around the map."""
    flat = (st.session_state[ROW] * cols + st.session_state[COL] + direction) % (rows * cols)
    st.session_state[ROW], st.session_state[COL] = divmod(flat, cols)


def number(value: float, digits: int = 3, minus: str = "−") -> str:
    """A value rounded for the page, with a real minus sign (LaTeX wants '-') and never a −0."""
    rounded = round(float(value), digits) + 0.0
    return f"{rounded:.{digits}f}".replace("-", minus)


def products_table(step_result, kernel: np.ndarray, channel: int) -> pd.DataFrame:
    """One channel's window × kernel = product, cell by cell, as text."""
    k = kernel.shape[-1]
    return pd.DataFrame([[f"{number(step_result.window[channel, i, j])} × {number(kernel[channel, i, j])} = "
                          f"{number(step_result.products[channel, i, j])}" for j in range(k)] for i in range(k)],
                        columns=[_("column {number}").format(number=j) for j in range(k)],
                        index=[_("row {number}").format(number=i) for i in range(k)])


@dataclass(frozen=True)
class Setup:
    """What the controls of section 1 chose: the input planes (normalised as the chosen model does), the kernel on
    every channel, and how it moves."""

    name: str
    planes: np.ndarray  # (C, H, W)
    label: str
    weight: np.ndarray  # (C, k, k)
    bias: float
    stride: int
    padding: int | str
    dilation: int
    colour: bool  # drawn in red, green and blue (a model's filter sees normalised numbers: drawn in grey)


def convolution_controls(stage) -> Setup | None:
    """The picture, the kernel, the channels, stride, padding and dilation (None, with a sentence, when unusable)."""
    picked = choose_picture()
    chosen = choose_kernel() if picked is not None else None
    if chosen is None:
        return None
    name, picture = picked
    label, kernel, bias, filters = chosen
    if filters is not None:
        channels = filters.weight.shape[1]
    elif isinstance(picture, np.ndarray):
        channels = 1
    else:
        channels = st.radio(_("Channels"), [1, 3], horizontal=True, key="convolution.channels",
                            format_func=translated({1: N_("grey (1)"), 3: N_("colour (3: red, green, blue)")}))
    if isinstance(picture, np.ndarray):
        planes = np.repeat(picture, 3, axis=0) if channels == 3 else picture
    else:
        size = st.slider(_("Picture size (longer side, pixels)"), 8, 64, 32, key="convolution.size")
        planes = picture_planes(picture, size, channels)
    stride = st.radio(_("Stride"), [1, 2, 3], horizontal=True, key="convolution.stride")
    padding = st.radio(_("Padding"), PADDINGS, horizontal=True, key="convolution.padding")
    dilation = st.radio(_("Dilation"), [1, 2, 3], horizontal=True, key="convolution.dilation")
    if filters is not None:
        planes = normalised(planes, filters.mean, filters.std)
        stage.caption(_("The model first normalises its input, (x − {mean}) / {std}: the numbers below are after "
                        "that.").format(mean=", ".join(f"{m:.3f}" for m in filters.mean),
                                        std=", ".join(f"{s:.3f}" for s in filters.std)))
    return Setup(name, planes, label, kernel_planes(kernel, channels), bias, stride, padding, dilation,
                 colour=channels == 3 and filters is None)


def kernel_window(setup: Setup, padded: np.ndarray, pads_: tuple, output: np.ndarray):
    """The position sliders and steps, the padded input with the kernel's window, the output map with its pixel;
    returns the step's numbers and the position."""
    (row_pads, col_pads), (out_h, out_w) = pads_, output.shape
    left, right, back, forward = st.columns([2, 2, 1, 1], vertical_alignment="bottom")
    layout = (setup.name, output.shape, setup.stride, setup.padding, setup.dilation)
    if PAGE.layout != layout:  # a new picture or a new stride, padding or dilation: start where something happens
        PAGE.layout = layout
        st.session_state[ROW], st.session_state[COL] = strongest(output)
    row = position_slider(left, _("Output row"), ROW, out_h)
    col = position_slider(right, _("Output column"), COL, out_w)
    back.button(_("◀ Step"), on_click=step, args=(out_h, out_w, -1), key="convolution.back", width="stretch")
    forward.button(_("Step ▶"), on_click=step, args=(out_h, out_w, 1), key="convolution.next", width="stretch")
    result = conv_step(padded, setup.weight, setup.bias, row, col, setup.stride, setup.dilation)
    cells = [(int(r), int(c)) for r in result.rows for c in result.cols]
    height, width = setup.planes.shape[1:]
    frame = (row_pads[0], col_pads[0], row_pads[0] + height, col_pads[0] + width)
    pic, out = st.columns(2)
    title = f"{setup.name}, {width}×{height}" + (_(" padded") if sum(row_pads + col_pads) else "")
    picture = (dict(rgb=(padded.transpose(1, 2, 0) * 255).astype(np.uint8)) if setup.colour
               else dict(values=padded.mean(axis=0)))
    chart_words.chart(charts.pixel_grid(**picture, title=title, cells=cells, frame=frame), "convolution.input_chart",
                      pic)
    chart_words.chart(charts.pixel_grid(output, title=_("output map, {size}").format(size=f"{out_w}×{out_h}"),
                                        signed=True, cells=[(row, col)]), "convolution.output_chart", out)
    return result, row, col


def products(setup: Setup, result, row: int, col: int) -> None:
    """Every input × weight = product per channel, the channels' sums and the bias adding up to the output pixel."""
    channels, k = setup.weight.shape[:2]
    st.markdown(_("Kernel: **{kernel}**, {size}").format(kernel=setup.label, size=f"{k}×{k}")
                + (_(" on each of {channels} channels").format(channels=channels) if channels > 1 else "")
                + _(". Output pixel (row {row}, column {col}) sees padded rows {rows} and columns {cols}.").format(
                    row=row, col=col, rows=result.rows.tolist(), cols=result.cols.tolist()))
    names = [_(n) for n in CHANNEL_NAMES.get(channels, [])] or [_("channel {number}").format(number=i)
                                                                for i in range(channels)]
    for channel in range(channels):
        st.caption(_("{channel}: input × weight = product; these add up to {total}").format(
            channel=names[channel], total=number(result.channel_sums[channel], 4)))
        tables.table(products_table(result, setup.weight, channel), hide_index=False)
    sums = " + ".join(rf"\underbrace{{{number(s, 4, '-')}}}_{{\text{{{n}}}}}" for s, n in
                      zip(result.channel_sums, names, strict=True))
    bias = _("bias")
    st.latex(rf"{sums} + \underbrace{{{number(result.bias, 4, '-')}}}_{{\text{{{bias}}}}} = "
             rf"{number(result.total, 4, '-')}")


def one_convolution() -> np.ndarray | None:
    """Section 1; returns the output map for the pooling section."""
    st.header(_("1. One convolution, every number"))
    controls, stage = st.columns([1, 2.4], gap="large")
    with controls:
        setup = convolution_controls(stage)
    if setup is None:
        return None
    k = setup.weight.shape[-1]
    row_pads, col_pads = (pads(n, k, setup.stride, setup.padding, setup.dilation) for n in setup.planes.shape[1:])
    out_h, out_w = (padded_output_size(n, k, setup.stride, p, setup.dilation)
                    for n, p in zip(setup.planes.shape[1:], (row_pads, col_pads), strict=True))
    if out_h == 0 or out_w == 0:
        stage.warning(_("A {k}×{k} kernel with dilation {dilation} reaches over {reach} pixels, more than the "
                        "padded {size} picture has: make the picture larger, pad it or lower the dilation.").format(
            k=k, dilation=setup.dilation, reach=setup.dilation * (k - 1) + 1,
            size=f"{setup.planes.shape[2] + sum(col_pads)}×{setup.planes.shape[1] + sum(row_pads)}"))
        return None
    output = conv2d(setup.planes, setup.weight[None], np.array([setup.bias]), setup.stride, setup.padding,
                    setup.dilation)[0]
    with stage:
        result, row, col = kernel_window(setup, pad_input(setup.planes, row_pads, col_pads), (row_pads, col_pads),
                                         output)
        products(setup, result, row, col)
    return output


def shape_arithmetic() -> None:
    """Section 2: the output-size formula with the user's numbers, the padded grid, the article's shape tables."""
    st.header(_("2. Shape arithmetic"))
    a, b, c, d, e = st.columns(5)
    n = a.slider(_("Input size n"), 1, 32, 7, key="convolution.n")
    k = b.slider(_("Kernel k"), 1, 7, 3, key="convolution.k")
    s = c.slider(_("Stride s"), 1, 4, 1, key="convolution.s")
    padding = d.selectbox(_("Padding p"), ["valid", "same", 0, 1, 2, 3], key="convolution.p")
    dilation = e.slider(_("Dilation d"), 1, 3, 1, key="convolution.d")
    before, after = pads(n, k, s, padding, dilation)
    out = padded_output_size(n, k, s, (before, after), dilation)
    reach = dilation * (k - 1) + 1
    if padding == "same":
        st.markdown(_("'same' (as Keras does it) pads so that the output has ⌈n/s⌉ = ⌈{n}/{s}⌉ = {out} positions: "
                      "{before} zero(s) before and {after} after.").format(n=n, s=s, out=out, before=before,
                                                                            after=after))
        st.latex(rf"\left\lfloor \frac{{n + p_1 + p_2 - d(k-1) - 1}}{{s}} \right\rfloor + 1 = "
                 rf"\left\lfloor \frac{{{n} + {before} + {after} - {dilation}({k}-1) - 1}}{{{s}}} \right\rfloor + 1 "
                 rf"= {out}")
    else:
        p = before
        st.latex(rf"\left\lfloor \frac{{n + 2p - d(k-1) - 1}}{{s}} \right\rfloor + 1 = "
                 rf"\left\lfloor \frac{{{n} + 2\cdot{p} - {dilation}({k}-1) - 1}}{{{s}}} \right\rfloor + 1 = "
                 + (str(out) if out else r"\le 0"))
    if out == 0:
        st.warning(_("The kernel reaches over {reach} pixels (d(k−1) + 1), more than the {size} the padded input "
                     "has: no output at all. Pad more, or shrink the kernel or the dilation.").format(
            reach=reach, size=n + before + after))
        return
    left, right = st.columns([1, 1.4])
    anchors = window_indices(np.arange(out), 1, s, 1)
    chart_words.chart(charts.padding_grid(n, before, after, window_indices(0, k, s, dilation), anchors),
                      "convolution.grid", left, words=_(
                          "The {input} input inside its zero padding, the kernel's first position outlined, and a "
                          "dot where each of its {out} positions starts.").format(input=f"{n}×{n}",
                                                                                   out=f"{out}×{out}"))
    right.markdown(_("- the input: **{input}** (blue), zero padding: **{before}** before, **{after}** after (grey)\n"
                     "- the kernel covers **{reach}** pixels with dilation {dilation} (orange: its first position)\n"
                     "- it moves **{s}** pixel(s) at a time (a dot where each position starts): **{out}** outputs"
                     ).format(input=f"{n}×{n}", before=before, after=after, reach=f"{reach}×{reach}",
                              dilation=dilation, s=s, out=f"{out}×{out}"))
    st.subheader(_("The article's two CNNs, layer by layer"))
    st.caption(_("Shapes in Keras' order (height, width, channels); computed here from the formula, and the same as "
                 "Keras' model.summary() and PyTorch's own forward pass (the tests check both)."))
    for title, name, shape in (("§5.3, CIFAR-10: 32×32×3", "article-cifar10", (3, 32, 32)),
                               ("§5.2, 150×150×3", "article-150", (3, 150, 150))):
        rows = shape_table(build_model(name, shape, 10), shape)
        st.markdown(_("**{title}**: {count} parameters").format(title=title, count=f"{sum(r.params for r in rows):,}"))
        parameters = _("parameters")
        tables.table([{_("layer"): r.layer, _("output shape"): " × ".join(map(str, r.output_shape)),
                       parameters: r.params, _("how"): say(r.formula)} for r in rows], {parameters: tables.whole()},
                     height="content")


def pooling(output: np.ndarray) -> None:
    """Section 3: ReLU and pooling on the output map above, the three stages side by side."""
    st.header(_("3. Activation and pooling"))
    a, b, c = st.columns(3)
    kind = a.radio(_("Pooling"), [N_("max"), N_("average")], horizontal=True, format_func=translator(),
                   key="convolution.pool")
    window = b.slider(_("Window"), 1, 4, 2, key="convolution.window")
    stride = c.slider(_("Pool stride (0 = the window)"), 0, 4, 0, key="convolution.pool_stride") or window
    activated = relu(output)[None]
    if min(activated.shape[1:]) < window:
        st.warning(_("The {window} window is larger than the {size} map: make the picture larger or the window "
                     "smaller.").format(window=f"{window}×{window}", size=f"{output.shape[1]}×{output.shape[0]}"))
        return
    if kind == "max":
        pooled, where = max_pool(activated, window, stride)
        winners = [divmod(int(i), activated.shape[2]) for i in np.unique(where[0][pooled[0] > 0])]  # not 0s
    else:
        pooled, winners = avg_pool(activated, window, stride), []
    x, y, z = st.columns(3)
    chart_words.chart(charts.pixel_grid(output, title=_("the convolution's output"), signed=True),
                      "convolution.stage1", x)
    chart_words.chart(charts.pixel_grid(activated[0], title=_("after ReLU: max(0, x)"), marks=winners),
                      "convolution.stage2", y)
    pooled_title = (_("after max pooling: {size}") if kind == "max" else _("after average pooling: {size}")).format(
        size=f"{pooled.shape[2]}×{pooled.shape[1]}")
    chart_words.chart(charts.pixel_grid(pooled[0], title=pooled_title), "convolution.stage3", z)
    if kind == "max":
        st.caption(_("Each × on the ReLU map is the input that won its {window} window (windows of zeros are not "
                     "marked; ties go to the first in reading order, as in PyTorch). Everything else is thrown away: "
                     "pooling keeps how strongly each window holds the feature, not where in it, so the map gets "
                     "smaller and less sensitive to small shifts.").format(window=f"{window}×{window}"))
    else:
        st.caption(_("Average pooling keeps the mean of each {window} window: smoother than max pooling, and every "
                     "input counts.").format(window=f"{window}×{window}"))


st.title(_("Convolution"))
st.caption(_("What one Conv2D layer computes, number by number, on your picture; how big its output is; and what "
             "ReLU and pooling do next. Every number is computed by hand here and checked against PyTorch in the "
             "tests."))
output_map = one_convolution()
shape_arithmetic()
if output_map is not None:
    pooling(output_map)
