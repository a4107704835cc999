"""The playground's configuration survives a trip through the URL, and a hand-edited link never breaks it."""
from ui.playground_link import from_query, to_query

STATE = {"data": "spiral", "noise": 25, "points": 450, "train_share": 70, "seed": 12,
         "features": ["x₁", "sin x₂", "x₁x₂"], "layers": 3, "neurons.0": 8, "activation.0": "ReLU", "neurons.1": 6,
         "activation.1": "tanh", "neurons.2": 2,
         "activation.2": "sigmoid", "optimizer": "Adam", "lr": 0.003, "batch": 16, "dropout": 0.2,
         "regularizer": "L2", "reg_rate": 0.01}
NETWORK_KEYS = ("features", "layers", "optimizer", "lr", "batch", "dropout", "regularizer", "reg_rate")


def test_every_setting_comes_back_from_the_query_string():
    query = to_query(STATE)
    assert query["net"] == "8-ReLU,6-tanh,2-sigmoid" and query["features"] == "x1,sinx2,x1x2"
    assert from_query(query) == {f"playground.{k}": v for k, v in STATE.items()}


def test_no_hidden_layers_and_no_features_round_trip_too():
    state = {**STATE, "layers": 0, "features": []}
    back = from_query(to_query(state))
    assert back["playground.layers"] == 0 and back["playground.features"] == []


def test_values_a_link_cannot_set_are_left_out():
    query = {**to_query(STATE), "noise": "7", "lr": "0.5", "opt": "LBFGS", "data": "<script>", "points": "lots",
             "net": "99-ReLU", "batch": "0"}
    back = from_query(query)
    for key in ("noise", "lr", "optimizer", "data", "points", "layers", "batch"):
        assert f"playground.{key}" not in back
    assert back["playground.seed"] == 12 and back["playground.dropout"] == 0.2
    assert from_query({}) == {}


def test_network_b_travels_under_its_own_prefix_and_turns_comparison_on():
    state_b = {**STATE, "features": ["x₁", "x₂", "x₁²", "x₂²"], "layers": 1, "neurons.0": 3, "activation.0": "ReLU",
               "optimizer": "SGD", "lr": 0.1}
    query = to_query(STATE, {k: v for k, v in state_b.items() if k in NETWORK_KEYS or "." in k})
    assert query["b.net"] == "3-ReLU" and query["b.features"] == "x1,x2,x1sq,x2sq" and query["net"].count(",") == 2
    back = from_query(query)
    assert back["playground_run.compare"] is True
    assert {k.removeprefix("playground_b."): v for k, v in back.items() if k.startswith("playground_b.")} == {
        k: v for k, v in state_b.items() if k in NETWORK_KEYS or k in ("neurons.0", "activation.0")}
    assert "playground_run.compare" not in from_query(to_query(STATE))  # no B in the link: no comparison


def test_a_bad_network_b_is_left_out_but_a_comes_back():
    query = {**to_query(STATE), "b.net": "99-ReLU", "b.lr": "7"}
    back = from_query(query)
    assert back["playground.layers"] == 3 and "playground_b.layers" not in back and "playground_b.lr" not in back
    assert back["playground_run.compare"] is True

