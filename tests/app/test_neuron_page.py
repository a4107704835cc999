"""AppTest drives Neuron math: edit an input, take one SGD step, see the loss fall; the checks agree."""
from helpers import by_label, open_app_page


def open_neuron():
    return open_app_page("app_pages/neuron.py")


def loss_shown(at) -> float:
    return float(by_label(at.metric, "Loss").value)


def test_edit_an_input_take_one_step_and_the_loss_falls():
    at = open_neuron()
    by_label(at.slider, "x2").set_value(1.5).run()
    assert any("(1.5)" in block.value and r"\sum_i w_i x_i" in block.value for block in at.latex)
    by_label(at.radio, "Target class y").set_value(1).run()
    before = loss_shown(at)
    by_label(at.button, "Take one SGD step: θ ← θ − α ∂L/∂θ").click().run()
    after = loss_shown(at)
    assert not at.exception and after < before
    assert by_label(at.metric, "Loss").delta.startswith("-")


def test_the_page_agrees_with_autograd_and_finite_differences():
    at = open_neuron()
    for hidden in ("relu", "sigmoid", "tanh"):
        by_label(at.selectbox, "Hidden activation").set_value(hidden).run()
        table = next(d.value for d in at.dataframe if "max |hand − autograd|" in d.value.columns)
        assert (table["max |hand − autograd|"] < 1e-6).all()
        assert (table["max |hand − finite differences|"] < 1e-6).all()


def test_stepping_through_the_loop_shows_forward_then_backward():
    at = open_neuron()
    assert any(r"z_1 = W_1 x + b_1" in block.value for block in at.latex)
    by_label(at.radio, "Step through the loop").set_value("backward").run()
    assert any(r"\delta_1 = (W_2^\top \delta_2)" in block.value for block in at.latex)
    by_label(at.selectbox, "Loss").set_value("mse").run()
    assert not at.exception and any("J_{" in block.value for block in at.latex)
