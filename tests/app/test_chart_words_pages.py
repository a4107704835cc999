"""AppTest: the pages' charts come with a sentence that says what they show, and a "show as table" toggle that shows
their numbers (the table is built only when the toggle is on). The trainer's, after a run, are checked in
test_trainer_page.py, in the test that trains one."""
import json

import pytest
import torch

from helpers import by_label, open_app_page


def spec(at, title: str) -> dict:
    """The spec of the page's chart with this title."""
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return next(s for s in specs if s["layout"].get("title", {}).get("text") == title)


def captions(at) -> list[str]:
    return [c.value for c in at.caption]


def test_the_activation_curves_are_said_at_the_slider_and_their_table_holds_the_charts_numbers():
    at = open_app_page("app_pages/activations.py")
    by_label(at.multiselect, "Activations").set_value(["sigmoid", "ReLU"]).run()
    by_label(at.slider, "Read off at x").set_value(-2.0).run()
    sigmoid = float(torch.sigmoid(torch.tensor(-2.0, dtype=torch.float64)))  # the oracle: torch
    assert f"At x -2, f(x): sigmoid {sigmoid:.3f}, ReLU 0." in captions(at)
    tables_before = len(at.dataframe)
    at.toggle(key="activations.curves.values.table").set_value(True).run()
    assert not at.exception and len(at.dataframe) == tables_before + 1  # built only now
    shown = spec(at, "f(x)")["data"]
    table = next(d.value for d in at.dataframe if list(d.value.columns) == ["x", "sigmoid", "ReLU"])
    assert table["x"].tolist() == pytest.approx(shown[0]["x"])
    assert table["sigmoid"].tolist() == pytest.approx(shown[0]["y"]) and table["ReLU"].tolist() == pytest.approx(
        shown[1]["y"])
    at.toggle(key="activations.curves.values.table").set_value(False).run()
    assert len(at.dataframe) == tables_before


def test_the_playground_says_which_class_each_region_of_the_plane_is_and_how_many_test_points_are_wrong():
    at = open_app_page("app_pages/playground.py")
    for __ in range(3):
        by_label(at.button, "Step").click().run()
    session = at.session_state["playground_run.networks"][0]
    with torch.no_grad():  # the oracle: the network's own predictions on the test points
        wrong = int((session.model(session.test_inputs).argmax(1) != session.points.test_y).sum())
    said = next(c for c in captions(at) if "Test points misclassified" in c)
    assert said.startswith(("The network colours ", "No region of the plane is clearly one class yet."))
    assert said.endswith(f"Test points misclassified: {wrong} of {len(session.points.test_y)}.")
