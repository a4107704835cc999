"""The figures' shared template, and the choices the chart helpers make from the data."""
import plotly.graph_objects as go

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
