"""The figures' shared template, and the choices the chart helpers make from the data."""
import plotly.graph_objects as go

from dlplay.training.trainer import EpochEvent
from ui import charts


def test_every_figure_gets_the_dlplay_template():
    fig = go.Figure()
    margin = fig.layout.template.layout.margin
    assert (margin.l, margin.r, margin.t, margin.b) == (10, 10, 30, 10)
    assert tuple(fig.layout.template.layout.colorway) == charts.PALETTE


def test_lines_switch_to_a_log_axis_only_when_values_span_decades():
    assert charts.lines({"a": [100.0, 10.0, 0.01]}, y_title="loss").layout.yaxis.type == "log"
    assert charts.lines({"a": [3.0, 2.0, 1.5]}).layout.yaxis.type == "linear"
    assert charts.lines({"a": [1.0, -5.0, -1e6]}).layout.yaxis.type == "linear"  # the saddle: no log of negatives
    assert charts.lines({"a": [1.0, 1e6]}, log_y=False).layout.yaxis.type == "linear"
    assert charts.lines({"<b>x</b>": [1.0]}).data[0].name == "&lt;b&gt;x&lt;/b&gt;"


def test_the_playing_picture_has_the_surfaces_colours_orientation_and_points():
    import numpy as np
    import torch

    axis = torch.linspace(-6, 6, 4).tolist()
    values = torch.ones(4, 4)
    values[0] = -1.0  # the row at x₂ = −6: class 0 (orange) is sure there
    train = (torch.tensor([[4.0, 4.0]]), torch.tensor([0]))  # an orange point up and to the right
    picture = charts.playground_picture(axis, values, train, None, "classification", 2, False, size=400)
    blend = lambda colour: (255 + (np.array(charts.hex_rgb(colour)) - 255) * charts.SURFACE_OPACITY).round()  # noqa: E731
    assert picture.shape == (400, 400, 3)
    assert (picture[395, 10] == blend(charts.PLAYGROUND_COLOURS[0])).all()  # bottom row: x₂ = −6, orange
    assert (picture[10, 10] == blend(charts.PLAYGROUND_COLOURS[1])).all()  # top: blue
    # the point (4, 4): the plane spans −8..8 (four cells of 4), so it sits 3/4 across and 1/4 down
    assert tuple(picture[100, 300]) == charts.hex_rgb(charts.PLAYGROUND_COLOURS[0])
    regression = charts.playground_picture(axis, torch.arange(16.0).reshape(4, 4) - 8, train, None, "regression", 1,
                                           False, size=40)
    low, high = regression[39, 0].astype(int), regression[0, 39].astype(int)  # the smallest and largest values
    assert low[0] > low[2] and high[2] > high[0]  # RdBu as Plotly draws it: red low, blue high


def test_the_regression_surface_and_its_points_share_one_symmetric_scale_with_a_bar():
    import numpy as np
    import torch

    axis = torch.linspace(-6, 6, 5).tolist()
    values = torch.linspace(-0.20, 0.23, 25).reshape(5, 5)  # the network at epoch 0: small predictions...
    train = (torch.tensor([[-5.0, -5.0], [5.0, 5.0]]), torch.tensor([-0.97, 1.00]))  # ...and the targets
    test = (torch.tensor([[0.0, 5.0]]), torch.tensor([0.23]))
    fig = charts.playground_surface(axis, values, train, test, "regression", 1, False)
    heatmap, *points = fig.data
    assert heatmap.coloraxis == "coloraxis" and [p.marker.coloraxis for p in points] == ["coloraxis"] * 2
    scale = fig.layout.coloraxis
    assert (scale.cmin, scale.cmax) == (-1.0, 1.0)  # symmetric about 0, the largest |value| shown: a target
    assert scale.showscale is not False and scale.colorbar.title.text == "output and target"
    assert heatmap.zmin is None and points[0].marker.cmin is None  # no scale of their own
    # The picture drawn while playing: a point and the surface where the network predicts the point's target have
    # one colour (the surface's is faded towards white, SURFACE_OPACITY); its colour bar runs from +1 to −1.
    values[0, 0] = -0.97  # the cell under the first point (rows along x₂, from −6)
    picture = charts.playground_picture(axis, values, train, test, "regression", 1, False, size=100).astype(float)
    assert picture.shape == (100, 100 + charts.COLOUR_BAR_WIDTH, 3)
    unfaded = lambda pixel: 255 + (pixel - 255) / charts.SURFACE_OPACITY  # noqa: E731
    at = lambda x, y: picture[round((7.5 - y) / 15 * 100), round((x + 7.5) / 15 * 100)]  # noqa: E731  cells of 3
    assert np.allclose(unfaded(picture[99, 0]), at(-5, -5), atol=2)  # the cell of -0.97 and the point of -0.97
    bar = picture[:, 100 + 6:100 + 20]  # the bar's strip of colour
    assert np.allclose(bar[6, 0], at(5, 5), atol=2)  # its top: +1, the point at (5, 5)
    assert bar[93, 0][0] > bar[93, 0][2] and bar[6, 0][2] > bar[6, 0][0]  # red at the bottom, blue at the top


def test_the_network_drawing_holds_each_nodes_picture_and_each_weight_as_a_curve():
    import base64
    import io
    import xml.etree.ElementTree as ET

    import numpy as np
    import torch
    from PIL import Image

    ns = {"svg": "http://www.w3.org/2000/svg"}
    inputs = torch.linspace(-1, 1, 4).repeat(2, 4, 1)  # (2, 4, 4): rising along x₁
    hidden = torch.zeros(3, 4, 4)
    hidden[0, 0] = -2.0  # neuron 1: negative on the row at x₂ = −6 (the first row), zero elsewhere
    outputs = torch.stack([torch.zeros(4, 4), torch.ones(4, 4)])  # class 1 sure everywhere
    weights = [torch.tensor([[1.0, -4.0], [0.5, 0.0], [0.0, 2.0]]), torch.tensor([[0.1, 0.2, 0.3], [4.0, 0, 0]])]
    headers = [("input", ""), ("hidden 1", "1"), ("output", "")]
    svg = charts.network_svg([inputs, hidden, outputs], weights, ["x₁", "x₂"], ["ŷ0", "ŷ1"], headers, classes=2,
                             width=600)
    root = ET.fromstring(svg)
    images = root.findall("svg:image", ns)
    assert len(images) == 2 + 3 + 2  # every node's picture, inside the drawing
    pictures = [np.asarray(Image.open(io.BytesIO(base64.b64decode(i.get("href").split(",", 1)[1])))) for i in images]
    orange, blue = (np.array(charts.hex_rgb(c)) for c in charts.PLAYGROUND_COLOURS[:2])
    assert (pictures[2][-1] == orange).all() and (pictures[2][:-1] == 255).all()  # x₂ = −6 drawn at the bottom
    assert (pictures[6] == blue).all() and (pictures[5] == 255).all()  # P(class 1) = 1 in blue, P(class 0) = 0 white
    assert (pictures[0][:, 0] == orange).all() and (pictures[0][:, -1] == blue).all()  # x₁ from orange to blue
    links = root.findall("svg:path", ns)
    assert len(links) == 6 + 6  # one curve a weight
    widths = {(link.get("stroke"), float(link.get("stroke-width"))) for link in links}
    assert (charts.PLAYGROUND_COLOURS[1], 6.0) in widths and (charts.PLAYGROUND_COLOURS[0], 6.0) in widths  # ±largest
    assert ("#d0d4d6", 0.6) in widths  # a zero weight: thin and grey
    texts = [t.text for t in root.findall("svg:text", ns)]
    assert texts == ["input", "x₁", "x₂", "hidden 1", "output", "ŷ0", "ŷ1"]
    sizes = {t.text: float(t.get("font-size")) for t in root.findall("svg:text", ns)}
    assert min(sizes.values()) >= 13  # readable: about 13 px where the drawing is shown at its width
    narrow = ET.fromstring(charts.network_svg([inputs, *[hidden] * 8, outputs], [weights[0], *[torch.eye(3)] * 7,
                                                                                   weights[1]],
                                              ["x₁", "x₂"], ["ŷ0", "ŷ1"],
                                              [("input", ""), *[(f"隐藏层 {i}", str(i)) for i in range(1, 9)],
                                               ("output", "")], classes=2, width=340))
    headers_drawn = [t.text for t in narrow.findall("svg:text", ns) if t.text not in ("x₁", "x₂", "ŷ0", "ŷ1")]
    assert headers_drawn == [str(i) for i in range(1, 9)]  # too narrow for the names: the numbers

def test_every_axis_writes_powers_of_ten_as_1e_9_and_thousands_with_commas():
    """Plotly's default prints SI prefixes on an axis (10n, 1μ, 100p, 12k), which a learner cannot read."""
    for axis in (go.Figure().layout.template.layout.xaxis, go.Figure().layout.template.layout.yaxis):
        assert axis.exponentformat == "e" and axis.separatethousands


def test_a_log_axis_is_labelled_at_whole_powers_of_ten_only():
    decades = charts.lines({"‖∂L/∂W‖": [1e-12, 1e-6, 1e-3]}, y_title="norm").layout.yaxis  # nine decades
    assert decades.type == "log" and decades.dtick == 2 and decades.title.text == "norm (log scale)"
    few = charts.lines({"a": [0.01, 0.5, 3.0]}).layout.yaxis  # two and a half decades: one tick per decade
    assert few.type == "log" and few.dtick == 1  # (Plotly's own choice, "D2", labels the 2s and 5s between them)
    narrow = charts.lines({"a": [0.35, 0.6, 1.2]}, log_y=True).layout.yaxis  # under one decade: plain numbers
    assert narrow.type == "log" and narrow.dtick is None and narrow.tickformat == "~g"


def test_gradient_norm_bars_start_at_zero_unless_they_span_decades():
    norms = charts.layer_bars(["conv1", "conv2", "fc"], [0.35, 0.5, 1.2], "‖∂loss/∂W‖", log=True).layout.yaxis
    assert norms.type != "log" and norms.title.text == "‖∂loss/∂W‖"  # a linear axis from 0: differences as they are
    vanishing = charts.layer_bars(["a", "b", "c"], [1e-5, 1e-3, 0.5], "‖∂loss/∂W‖", log=True).layout.yaxis
    assert vanishing.type == "log" and vanishing.dtick == 1 and vanishing.title.text == "‖∂loss/∂W‖ (log scale)"


def test_share_axes_are_labelled_up_to_100_percent_and_bars_with_one_decimal():
    probabilities = charts.bars(["a", "b"], [0.25, 0.75])
    assert probabilities.layout.yaxis.tickvals[-1] == 1 and probabilities.layout.yaxis.tickformat == ".0%"
    assert tuple(probabilities.layout.yaxis.range) == (0, 1) and probabilities.data[0].texttemplate == "%{y:.1%}"
    horizontal = charts.bars(["a", "b"], [0.25, 0.75], horizontal=True)
    assert horizontal.layout.xaxis.tickvals[-1] == 1 and horizontal.data[0].texttemplate == "%{x:.1%}"
    per_class = charts.per_class_accuracy(["0", "1"], [0.9, 1.0])
    assert per_class.layout.xaxis.tickvals[-1] == 1 and per_class.data[0].texttemplate == "%{x:.1%}"
    dead = charts.layer_bars(["a"], [0.5], "dead", percent=True).layout.yaxis
    assert dead.tickvals[-1] == 1 and dead.tickformat == ".0%"
    transfer = charts.compare_bars(["10 per class"], {"scratch": [0.6], "transferred": [0.9]}, "acc", percent=True)
    assert transfer.layout.yaxis.tickvals[-1] == 1 and transfer.data[0].texttemplate == "%{y:.1%}"


def test_counts_are_drawn_on_whole_ticks():
    rounds = charts.lines({"FedAvg": [0.5, 0.7, 0.8]}, range(1, 4), "communication round").layout.xaxis
    assert rounds.dtick == 1 and rounds.tick0 == 0  # 1, 2, 3: never 1.5 or 2.5
    assert charts.lines({"loss": [1.0] * 3001}).layout.xaxis.dtick == 500  # epochs 0 to 3000: every 500
    assert charts.lines({"f": [0.0, 1.0]}, [-0.5, 0.5]).layout.xaxis.dtick is None  # not counts: Plotly's ticks
    assert charts.whole_ticks(1, 20) == dict(tick0=0, dtick=2)
    assert charts.whole_ticks(0, 7) == dict(tick0=0, dtick=1)
    epochs = [EpochEvent(epoch=e, train_loss=1.0 / e, train_accuracy=0.9, val_loss=None, val_accuracy=None,
                         images_per_sec=100.0, seconds=1.0) for e in (1, 2, 3)]
    curves = charts.training_curves([charts.Curves("run", [], epochs)]).layout
    assert curves.xaxis.dtick == 1 and curves.xaxis2.dtick == 1


def test_clients_are_numbered_along_the_axis_and_the_forms_of_a_model_named_in_the_legend():
    mix = charts.client_classes([[3, 1], [0, 4], [2, 2]], ["0", "1"])
    assert list(mix.data[0].x) == [1, 2, 3] and mix.layout.xaxis.title.text == "client" and mix.layout.xaxis.dtick == 1
    forms = charts.size_accuracy(["original", "distilled student (3 epochs)"], [420.0, 9.5], [0.98, 0.95])
    assert [trace.name for trace in forms.data] == ["original", "distilled student (3 epochs)"]
    assert all(trace.mode == "markers" and trace.showlegend is not False for trace in forms.data)  # no text to cut
    assert forms.layout.xaxis.type == "log" and forms.layout.xaxis.dtick == 1
