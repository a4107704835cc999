"""The playground's configuration survives a trip through the URL, and a hand-edited link never breaks it."""
from ui.playground_link import from_query, to_query

STATE = {"data": "spiral", "noise": 25, "points": 450, "train_share": 70, "seed": 12,
         "features": ["x₁", "sin x₂", "x₁x₂"], "layers": 3, "neurons.0": 8, "activation.0": "ReLU", "neurons.1": 6,
         "activation.1": "tanh", "neurons.2": 2,
         "activation.2": "sigmoid", "optimizer": "Adam", "lr": 0.003, "batch": 16, "dropout": 0.2,
         "regularizer": "L2", "reg_rate": 0.01}


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
