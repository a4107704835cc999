"""AppTest drives the Network playground: step and play train the network, controls rebuild it, bad CSVs and
impossible networks get one sentence."""
import base64
import json
import xml.etree.ElementTree as ET

import pytest
from torch import nn

from helpers import by_label, open_app_page
from ui import charts

PAGE = "app_pages/playground.py"


def metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def surface_spec(at, which: int = 0) -> dict:
    """The spec of the `which`-th output-over-the-plane chart on the page."""
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return [spec for spec in specs if spec["data"] and spec["data"][0].get("type") == "heatmap"][which]


SVG = {"svg": "http://www.w3.org/2000/svg"}


def drawings(at) -> list[ET.Element]:
    """The network drawings on the page (SVG pictures), parsed."""
    return [ET.fromstring(base64.b64decode(img.url.split(",", 1)[1])) for element in at.get("image")
            for img in element.proto.imgs if img.url.startswith("data:image/svg+xml;base64,")]


def test_step_trains_one_epoch_and_the_boundary_moves():
    at = open_app_page(PAGE)
    assert metric(at, "Epoch") == "0"
    before = surface_spec(at)["data"][0]["z"]
    loss = float(metric(at, "Training loss"))
    for _ in range(3):
        by_label(at.button, "Step").click().run()
    assert metric(at, "Epoch") == "3" and not at.exception
    assert surface_spec(at)["data"][0]["z"] != before
    assert float(metric(at, "Training loss")) < loss


def test_play_trains_on_every_tick_and_pause_stops():
    at = open_app_page(PAGE)
    by_label(at.button, "Play").click().run()
    assert by_label(at.button, "Pause")  # the button now pauses
    at.run()  # AppTest reruns the page: the playing fragment trains again
    assert int(metric(at, "Epoch")) >= 5
    by_label(at.button, "Pause").click().run()
    stopped = metric(at, "Epoch")
    at.run()
    assert metric(at, "Epoch") == stopped and not at.exception


def test_changing_the_network_or_the_data_starts_again_and_reset_too():
    at = open_app_page(PAGE)
    by_label(at.button, "Step").click().run()
    by_label(at.slider, "Hidden layers").set_value(3).run()
    assert metric(at, "Epoch") == "0" and len([w for w in at.number_input if "neurons" in w.label]) == 3
    by_label(at.selectbox, "Data").set_value("four clusters (4 classes)").run()
    by_label(at.button, "Step").click().run()
    assert metric(at, "Epoch") == "1"
    by_label(at.button, "Reset").click().run()
    assert metric(at, "Epoch") == "0" and not at.exception


def test_no_features_and_no_hidden_layers_are_handled():
    at = open_app_page(PAGE)
    by_label(at.slider, "Hidden layers").set_value(0).run()
    by_label(at.button, "Step").click().run()
    assert metric(at, "Epoch") == "1"  # a linear model: still a network
    at.get("button_group")[0].set_value([]).run()
    assert any("at least one input feature" in w.value for w in at.warning) and not at.exception


def test_a_regression_surface_and_its_points_share_one_scale_and_the_verdict_reads_its_numbers():
    at = open_app_page(PAGE)
    by_label(at.selectbox, "Data").set_value("plane (regression)").run()
    for _ in range(6):
        by_label(at.button, "Step").click().run()
    spec = surface_spec(at)
    scale = spec["layout"]["coloraxis"]
    assert scale["cmin"] == -scale["cmax"] > -1.5 and scale["colorbar"]["title"]["text"] == "output and target"
    assert [trace.get("coloraxis") or trace["marker"]["coloraxis"] for trace in spec["data"]] == ["coloraxis"] * 2
    [verdict] = [box.value for box in at.info]
    assert metric(at, "Training loss") in verdict  # tanh units, no penalty: a verdict told with the loss now


def test_a_csv_without_the_columns_gets_one_sentence():
    at = open_app_page(PAGE)
    by_label(at.selectbox, "Data").set_value("my points (CSV)").run()
    assert any("Upload a CSV" in box.value for box in at.info) and not at.exception


def test_a_costly_csv_is_refused_before_training_and_a_larger_batch_plays():
    at = open_app_page(PAGE)
    by_label(at.selectbox, "Data").set_value("my points (CSV)").run()
    rows = "".join(f"{i % 97 / 10},{i % 89 / 10},{i % 2}\n" for i in range(5_000))
    at.get("file_uploader")[0].upload("many.csv", ("x1,x2,label\n" + rows).encode(), "text/csv").run()
    by_label(at.slider, "Batch size").set_value(1).run()
    assert not at.exception and not [b for b in at.button if b.label == "Play"]
    [warning] = [w.value for w in at.warning]
    assert warning.startswith("One epoch here takes 2,500 optimizer steps (2,500 training points in batches of 1)")
    assert "at most 2,000" in warning
    by_label(at.slider, "Batch size").set_value(5).run()  # 500 steps an epoch: 4 epochs an update
    assert not at.warning and [b for b in at.button if b.label == "Play"]


def test_the_code_shown_is_the_network_on_the_page():
    at = open_app_page(PAGE)
    by_label(at.selectbox, "Layer 1 activation").set_value("ReLU").run()
    code = at.code[0].value
    assert "nn.Linear(2, 4), nn.ReLU()," in code and "nn.Linear(4, 4), nn.Tanh()," in code
    assert "make_points('circle', 300, 0.1, 0.5, seed=0)" in code and "range(100)" in code


def test_look_back_shows_an_earlier_network_and_now_follows_training():
    at = open_app_page(PAGE)
    for _ in range(3):
        by_label(at.button, "Step").click().run()
    now = surface_spec(at)["data"][0]["z"]
    by_label(at.select_slider, "Look back: the network after epoch").set_value(1).run()
    assert metric(at, "Epoch") == "1" and surface_spec(at)["data"][0]["z"] != now
    by_label(at.select_slider, "Look back: the network after epoch").set_value("now").run()
    by_label(at.button, "Step").click().run()
    assert metric(at, "Epoch") == "4" and not at.exception
    [drawing] = drawings(at)
    assert len(drawing.findall("svg:image", SVG)) == 2 + 4 + 4 + 2  # every node's picture, inside the drawing


def test_a_link_opens_the_same_playground_and_the_address_follows_the_controls():
    from pathlib import Path

    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "router.py"), default_timeout=120)
    at.query_params.update({"data": "XOR", "net": "6-ReLU", "lr": "0.1", "features": "x1x2"})
    at.run()
    at.switch_page(PAGE).run()
    assert by_label(at.selectbox, "Data").value == "XOR" and by_label(at.slider, "Hidden layers").value == 1
    assert by_label(at.number_input, "Layer 1 neurons").value == 6
    assert by_label(at.select_slider, "Learning rate").value == 0.1
    by_label(at.slider, "Batch size").set_value(20).run()
    assert at.query_params["batch"] == "20" and at.query_params["net"] == "6-ReLU" and not at.exception


def test_a_link_with_network_b_opens_the_comparison():
    from pathlib import Path

    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "router.py"), default_timeout=120)
    at.query_params.update({"data": "circle", "net": "4-tanh", "b.net": "3-ReLU,2-ReLU", "b.opt": "Adam"})
    at.run()
    at.switch_page(PAGE).run()
    assert by_label(at.toggle, "Compare with a second network (B)").value is True
    assert [s.value for s in at.slider if s.label == "Hidden layers"] == [1, 2]  # A, then B
    assert [s.value for s in at.selectbox if s.label == "Optimizer"] == ["SGD", "Adam"]
    [*_, b_batch] = [s for s in at.slider if s.label == "Batch size"]
    b_batch.set_value(25).run()
    assert at.query_params["b.batch"] == "25" and at.query_params["b.net"] == "3-ReLU,2-ReLU"
    assert at.query_params["net"] == "4-tanh" and not at.exception
    by_label(at.toggle, "Compare with a second network (B)").set_value(False).run()
    assert not any(k.startswith("b.") for k in at.query_params)  # B leaves the link with the comparison


def test_a_weight_edited_by_hand_is_used_and_drawn():
    at = open_app_page(PAGE)
    by_label(at.number_input, "Weight").set_value(7.5).run()
    by_label(at.button, "Set the weight").click().run()
    assert any("Now 7.500" in c.value for c in at.caption) and not at.exception
    [drawing] = drawings(at)
    first, *others = drawing.findall("svg:path", SVG)  # hidden 1's neuron 1 from x₁: the weight set
    assert (first.get("stroke-width"), first.get("stroke")) == ("6.00", charts.BLUE)  # the widest, blue: positive
    assert max(float(link.get("stroke-width")) for link in others) < 3  # the others, under 3.5 now: thinner


def test_two_networks_train_side_by_side_with_their_curves_overlaid():
    at = open_app_page(PAGE)
    by_label(at.toggle, "Compare with a second network (B)").set_value(True).run()
    assert len([w for w in at.get("button_group")]) == 2  # B has its own input features, x₁² and x₂² on
    for _ in range(5):
        by_label(at.button, "Step").click().run()
    assert sum("Epoch **5**" in m.value for m in at.markdown) == 2 and not at.exception
    assert surface_spec(at, 0)["data"][0]["z"] != surface_spec(at, 1)["data"][0]["z"]
    losses = next(json.loads(c.proto.spec) for c in at.get("plotly_chart") if '"A: training"' in c.proto.spec)
    assert [t["name"] for t in losses["data"]] == ["A: training", "A: test", "B: training", "B: test"]
    tests = {t["name"]: t["y"][-1] for t in losses["data"]}
    assert tests["B: test"] < tests["A: test"]  # on the circle, the squares make B learn faster


def test_a_new_learning_rate_goes_on_from_the_weights_and_regenerate_draws_new_points():
    at = open_app_page(PAGE)
    for _ in range(3):
        by_label(at.button, "Step").click().run()
    by_label(at.select_slider, "Learning rate").set_value(0.1).run()
    by_label(at.selectbox, "Optimizer").set_value("Adam").run()
    assert metric(at, "Epoch") == "3"  # training settings: the network is kept
    by_label(at.button, "Step").click().run()
    assert metric(at, "Epoch") == "4" and at.query_params["opt"] == "Adam"
    points = surface_spec(at)["data"][1]["x"]
    by_label(at.button, "Regenerate the points").click().run()
    assert by_label(at.number_input, "Seed").value == 1 and metric(at, "Epoch") == "0"
    assert surface_spec(at)["data"][1]["x"] != points and not at.exception


def loss_chart(at) -> dict:
    return next(json.loads(c.proto.spec) for c in at.get("plotly_chart")
                if json.loads(c.proto.spec)["layout"]["yaxis"]["title"]["text"].startswith("loss"))


def test_the_loss_is_named_beside_the_curves_and_the_penalty_is_a_term_of_its_own():
    at = open_app_page(PAGE)
    said = [c.value for c in at.caption if c.value.startswith("The loss is")]
    assert said == ["The loss is the cross-entropy of the softmax class probabilities, averaged over the points."]
    by_label(at.radio, "Regularization").set_value("L2").run()
    by_label(at.select_slider, "Regularization rate").set_value(0.01).run()
    for _ in range(3):
        by_label(at.button, "Step").click().run()
    [session] = at.session_state["playground_run.networks"]
    weights = [m.weight.detach() for m in session.model if isinstance(m, nn.Linear)]  # not the biases
    penalty = 0.01 * 0.5 * sum(float((w ** 2).sum()) for w in weights)
    training = next(m for m in at.metric if m.label == "Training loss")
    assert training.value == f"{session.train_losses[-1]:.3f}" and not at.exception  # the data loss alone...
    assert (training.delta, training.proto.delta_description) == (f"+{penalty:.3f}", "L2 penalty")  # ...+ the term
    [caption] = [c.value for c in at.caption if c.value.startswith("The loss is")]
    assert caption.endswith(" Training minimises the loss plus the L2 penalty 0.01 × ½Σw² on the weights (not the "
                            "biases); the penalty is drawn as its own curve, and the training and test losses leave it "
                            "out.")
    curves = {t["name"]: t["y"] for t in loss_chart(at)["data"]}
    assert list(curves) == ["training", "test", "L2 penalty"]
    assert curves["L2 penalty"][-1] == session.penalties[-1] and curves["L2 penalty"][-1] == pytest.approx(penalty)


def test_regression_names_half_the_squared_error_and_network_b_its_own_penalty():
    at = open_app_page(PAGE)
    by_label(at.selectbox, "Data").set_value("plane (regression)").run()
    by_label(at.toggle, "Compare with a second network (B)").set_value(True).run()
    at.radio(key="playground_b.regularizer").set_value("L1").run()
    by_label(at.button, "Step").click().run()
    [caption] = [c.value for c in at.caption if c.value.startswith("The loss is")]
    assert caption.startswith("The loss is half the mean squared error: ½·mean((ŷ − y)²) over the points. Network B's "
                              "training minimises the loss plus the L1 penalty 0.001 × Σ|w|")
    b = at.session_state["playground_run.networks"][1]
    assert sum(f"L1 penalty **{b.penalties[-1]:.3f}**" in m.value for m in at.markdown) == 1  # B's line only
    assert [t["name"] for t in loss_chart(at)["data"]] == ["A: training", "A: test", "B: training", "B: test",
                                                          "B: L1 penalty"]


def epochs_shown(at) -> list[int]:
    """The epoch each compared network shows, A first."""
    return [int(m.value.split("**")[1]) for m in at.markdown if m.value.startswith("Epoch **")]


def test_turning_the_comparison_on_keeps_as_training_and_b_catches_up():
    at = open_app_page(PAGE)
    for _ in range(3):
        by_label(at.button, "Step").click().run()
    [a] = at.session_state["playground_run.networks"]
    by_label(at.toggle, "Compare with a second network (B)").set_value(True).run()
    assert epochs_shown(at) == [3, 0] and at.session_state["playground_run.networks"][0] is a  # A kept, weights too
    assert any("until it reaches A's epoch 3" in c.value for c in at.caption) and not at.exception
    by_label(at.select_slider, "Look back: the network after epoch").set_value(0).run()  # an epoch both have
    assert epochs_shown(at) == [0, 0]
    by_label(at.select_slider, "Look back: the network after epoch").set_value("now").run()
    for _ in range(3):
        by_label(at.button, "Step").click().run()
    assert epochs_shown(at) == [3, 3]  # B alone caught up...
    by_label(at.button, "Step").click().run()
    assert epochs_shown(at) == [4, 4] and len(drawings(at)) == 2  # ...then both train, each drawn
    by_label(at.toggle, "Compare with a second network (B)").set_value(False).run()
    [kept] = at.session_state["playground_run.networks"]
    assert metric(at, "Epoch") == "4" and kept is a  # and turning it off keeps A


def test_the_regularization_rate_shows_only_with_a_regularizer_and_is_kept_meanwhile():
    at = open_app_page(PAGE)
    assert not [s for s in at.select_slider if s.label == "Regularization rate"]  # "none" has no rate to set
    by_label(at.radio, "Regularization").set_value("L2").run()
    by_label(at.select_slider, "Regularization rate").set_value(0.03).run()
    by_label(at.radio, "Regularization").set_value("none").run()
    assert not [s for s in at.select_slider if s.label == "Regularization rate"]
    by_label(at.button, "Step").click().run()  # a rerun without the slider drawn
    by_label(at.radio, "Regularization").set_value("L1").run()
    assert by_label(at.select_slider, "Regularization rate").value == 0.03
