"""AppTest drives Activations: changing the activation, initialisation or temperature changes what is shown."""
import json

from helpers import by_label, open_app_page


def test_sigmoid_vanishes_and_relu_with_he_init_flows():
    at = open_app_page("app_pages/activations.py")
    assert at.info[0].value.startswith("Vanishing gradients: with sigmoid")
    by_label(at.selectbox, "Activation").set_value("ReLU").run()
    by_label(at.selectbox, "Initialisation").set_value("He").run()
    assert not at.exception and at.info[0].value.startswith("Healthy flow: with ReLU")


def test_reading_values_and_temperature_change_with_the_controls():
    at = open_app_page("app_pages/activations.py")
    table = next(d.value for d in at.dataframe if "f′(x)" in d.value.columns)
    relu = table[table["activation"] == "ReLU"].iloc[0]
    assert (relu["f(x)"], relu["f′(x)"]) == (1.0, 1.0)
    by_label(at.slider, "Read off at x").set_value(-2.0).run()
    table = next(d.value for d in at.dataframe if "f′(x)" in d.value.columns)
    relu = table[table["activation"] == "ReLU"].iloc[0]
    assert (relu["f(x)"], relu["f′(x)"]) == (0.0, 0.0)
    by_label(at.select_slider, "Temperature T").set_value(0.1).run()
    assert not at.exception


def test_the_race_ranks_the_activations():
    at = open_app_page("app_pages/activations.py")
    by_label(at.multiselect, "Race these").set_value(["ReLU", "sigmoid"]).run()
    by_label(at.button, "Race").click().run()
    table = next(d.value for d in at.dataframe if "test accuracy" in d.value.columns)
    assert sorted(table["activation"]) == ["ReLU", "sigmoid"] and table["test accuracy"].max() > 0.85


def test_leaky_relu_is_dashed_over_relu_so_both_are_seen():
    at = open_app_page("app_pages/activations.py")
    by_label(at.multiselect, "Activations").set_value(["ReLU", "LeakyReLU", "tanh"]).run()
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    for title in ("f(x)", "f′(x), from autograd"):
        spec = next(s for s in specs if s["layout"].get("title", {}).get("text") == title)
        dashes = {trace["name"]: trace.get("line", {}).get("dash") for trace in spec["data"]}
        assert dashes == {"ReLU": None, "LeakyReLU": "dash", "tanh": None}, (title, dashes)
        assert [trace["name"] for trace in spec["data"]][:2] == ["ReLU", "LeakyReLU"]  # the dashes drawn on top
    assert any("LeakyReLU is dashed: at this scale it lies on ReLU" in c.value for c in at.caption)
