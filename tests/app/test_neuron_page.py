"""AppTest drives Neuron math: edit an input, take one SGD step, see the loss fall; the checks agree."""
import torch

from dlplay.lessons.neuron import ARTICLE_INPUT, backward, forward, one_hot, random_network, sgd_step
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
    assert any(r"z_1 &= W_1 x + b_1" in block.value for block in at.latex)
    by_label(at.radio, "Step through the loop").set_value("backward").run()
    assert any(r"\delta_1 = (W_2^\top \delta_2)" in block.value for block in at.latex)
    by_label(at.selectbox, "Loss").set_value("mse").run()
    assert not at.exception and any("J_{" in block.value for block in at.latex)


def test_the_loss_and_update_steps_show_their_own_numbers():
    at = open_neuron()
    by_label(at.radio, "Step through the loop").set_value("loss").run()
    blocks = [block.value for block in at.latex]
    assert any("L = -1 \\cdot \\log" in value for value in blocks)  # −y₁ log ŷ₁ with the numbers
    assert not any(r"z_1 = W_1 x + b_1" in value for value in blocks)  # the loss step is not the forward step
    by_label(at.selectbox, "Output activation").set_value("sigmoid").run()
    assert any(r"(1 - y_k) \log(1 - \hat y_k)" in block.value for block in at.latex)  # binary cross-entropy
    by_label(at.radio, "Step through the loop").set_value("update").run()
    by_label(at.select_slider, "Learning rate α").set_value(0.1).run()
    updates = [block.value for block in at.latex if "W_2 &\\leftarrow" in block.value]
    assert updates and "0.10 \\cdot" in updates[0]
    assert not at.exception


def test_the_slips_quote_the_article():
    at = open_neuron()
    slips = next(d.value for d in at.dataframe if "the article writes" in d.value.columns)
    written = " | ".join(slips["the article writes"])
    assert "tanh: ∂L/∂zᵢ = aᵢ(1 − aᵢ²)" in written and "∂L/∂z₄ = a₄(ŷ₁ − y₁) + a₅(ŷ₂ − y₂)" in written
    assert "momentum" in written and "1 − aᵢ² (no upstream" not in written


def stage(at) -> str:
    return by_label(at.radio, "Step through the loop").value


def test_next_walks_the_loop_and_its_last_step_is_the_sgd_step():
    at = open_neuron()
    net, x, y = random_network(seed=0), torch.tensor([ARTICLE_INPUT], dtype=torch.float64), one_hot([0], 2)
    losses = [float(forward(net, x, y).loss)]
    for _ in range(2):  # the same step twice over: once by the loop's Next, once by the SGD button
        net = sgd_step(net, backward(net, x, y, forward(net, x, y)), 0.3)
        losses.append(float(forward(net, x, y).loss))
    assert loss_shown(at) == round(losses[0], 4)
    for expected in ("loss", "backward", "update"):
        by_label(at.button, "Next ▶").click().run()
        assert stage(at) == expected and loss_shown(at) == round(losses[0], 4)  # looking changes nothing
    assert any("Next takes this step" in c.value for c in at.caption)
    by_label(at.button, "Next ▶").click().run()  # after the update: the step, and the loop starts again
    assert stage(at) == "forward" and loss_shown(at) == round(losses[1], 4)
    assert by_label(at.metric, "Loss").delta == f"{losses[1] - losses[0]:+.4f} after the last step"
    by_label(at.radio, "Step through the loop").set_value("backward").run()
    by_label(at.button, "Take one SGD step: θ ← θ − α ∂L/∂θ").click().run()
    assert stage(at) == "forward" and loss_shown(at) == round(losses[2], 4) and not at.exception
