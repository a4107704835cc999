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
