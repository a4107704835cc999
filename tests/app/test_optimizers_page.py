"""AppTest drives Optimizers: changing the surface or the learning rate changes the race's results."""
import base64
import json

import numpy as np
import pytest

from helpers import by_label, open_app_page


def values(array) -> list[float]:
    """A trace's numbers from its JSON: a list, or Plotly's typed array (base64 bytes and their dtype)."""
    if isinstance(array, dict):
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
    return array


def race_table(at):
    return next(d.value for d in at.dataframe if "steps to tolerance" in d.value.columns)


def test_changing_the_surface_changes_the_race():
    at = open_app_page("app_pages/optimizers.py")
    before = race_table(at)
    assert list(before["optimizer"]) == ["SGD", "SGD + momentum", "Adam"]
    by_label(at.selectbox, "Loss surface").set_value("Rosenbrock").run()
    after = race_table(at)
    assert not at.exception and list(after["final loss"]) != list(before["final loss"])
    assert any("100 (y - x^2)^2" in block.value for block in at.latex)
    assert any("t=1:" in block.value and r"\nabla L" in block.value for block in at.latex)  # SGD by hand
    assert any("t=3:" in block.value and r"\hat m" in block.value for block in at.latex)  # Adam by hand


def test_a_learning_rate_ten_times_too_big_is_reported_as_divergence():
    at = open_app_page("app_pages/optimizers.py")
    assert not any("diverged at step" in w.value for w in at.warning)
    by_label(at.number_input, "α").set_value(0.5).run()  # SGD on the quadratic: α × 10 = 5 explodes
    assert any(w.value.startswith("α × 10 = 5: diverged at step") for w in at.warning)


def test_each_optimizer_has_its_own_hyperparameters():
    at = open_app_page("app_pages/optimizers.py")
    before = race_table(at)
    by_label(at.number_input, "betas[0]").set_value(0.5).run()  # Adam's first beta
    after = race_table(at)
    assert not at.exception
    adam = list(after["optimizer"]).index("Adam")
    assert after["final loss"][adam] != before["final loss"][adam]
    assert list(after["final loss"])[:2] == list(before["final loss"])[:2]  # the others are unchanged


def test_an_empty_race_and_adagrad_under_one_cycle_get_no_traceback():
    at = open_app_page("app_pages/optimizers.py")
    by_label(at.multiselect, "Optimizers (torch.optim)").set_value([]).run()
    assert not at.exception and any("Pick at least one optimizer" in box.value for box in at.info)
    by_label(at.multiselect, "Optimizers (torch.optim)").set_value(["Adagrad", "SGD"]).run()
    by_label(at.selectbox, "Learning-rate schedule").set_value("onecycle").run()
    assert not at.exception and list(race_table(at)["optimizer"]) == ["Adagrad", "SGD"]


def test_the_table_keeps_numbers_apart_and_the_saddle_is_escaped():
    at = open_app_page("app_pages/optimizers.py")
    by_label(at.selectbox, "Loss surface").set_value("saddle").run()
    table = race_table(at)
    assert table["steps to tolerance"].isna().all()  # no minimum to reach: empty cells, not the words "not reached"
    outcomes = dict(zip(table["optimizer"], table["outcome"], strict=True))
    assert all(outcome.startswith("ran off the surface at step") for outcome in outcomes.values()), outcomes
    assert (table["final loss"] > -10).all()  # where it left the square (f ≥ −9 there), not −3.98e4 far beyond it
    specs = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    loss_axis = next(spec["layout"]["yaxis"] for spec in specs
                     if spec["layout"].get("yaxis", {}).get("title", {}).get("text") == "loss")
    assert loss_axis["range"][0] == pytest.approx(-9.9, abs=0.01)  # held near the square's lowest value: a plunge
    # off the square does not flatten the other curves
    assert any("has no bottom" in caption.value for caption in at.caption)


def test_the_race_replays_in_the_browser_without_a_rerun_per_step():
    at = open_app_page("app_pages/optimizers.py")
    assert not any(s.label == "Show the paths up to step" for s in at.slider)  # no server round trip per step
    race_chart = next(json.loads(c.proto.spec) for c in at.get("plotly_chart")
                      if json.loads(c.proto.spec).get("frames"))
    paths = [trace for trace in race_chart["data"] if trace.get("mode") == "lines+markers"]
    assert [trace["name"] for trace in paths] == ["SGD", "SGD + momentum", "Adam"]
    frames = race_chart["frames"]
    assert 20 <= len(frames) <= 41 and frames[0]["name"] == "0" and frames[-1]["name"] == "500"
    assert all(len(values(trace["x"])) == 1 for trace in frames[0]["data"])  # the start, then more each frame
    assert [len(values(trace["x"])) for trace in frames[-1]["data"]] == [len(values(trace["x"])) for trace in paths] \
        == [501] * 3
    assert values(frames[-1]["data"][0]["y"])[:5] == values(paths[0]["y"])[:5]
    assert all(len(values(later["x"])) >= len(values(earlier["x"]))
               for before, after in zip(frames, frames[1:], strict=False)
               for earlier, later in zip(before["data"], after["data"], strict=True))
    [menu] = race_chart["layout"]["updatemenus"]
    play = menu["buttons"][0]
    assert play["method"] == "animate" and play["label"].endswith("Play") and play["args"][0] is None
    slider = race_chart["layout"]["sliders"][0]
    assert [step["args"][0] for step in slider["steps"]] == [[frame["name"]] for frame in frames]
