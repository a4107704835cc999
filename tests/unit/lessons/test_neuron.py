"""Hand-written forward and backward passes against torch.autograd and central finite differences (float64)."""
import itertools
import zlib

import pytest
import torch

from dlplay.lessons.neuron import (
    ARTICLE_INPUT,
    HIDDEN_ACTIVATIONS,
    OUTPUT_ACTIVATIONS,
    activate,
    autograd_gradients,
    backward,
    derivative,
    finite_difference_gradients,
    forward,
    one_hot,
    random_network,
    sgd_step,
    train,
)

COMBINATIONS = [(h, o, loss) for h, o, loss in itertools.product(HIDDEN_ACTIVATIONS, OUTPUT_ACTIVATIONS,
                                                                  ("cross-entropy", "mse"))
                if not (loss == "cross-entropy" and o in ("tanh", "identity"))]


@pytest.mark.parametrize("hidden, output, loss", COMBINATIONS)
@pytest.mark.parametrize("sizes, n", [((3, 3, 2), 1), ((4, 5, 3), 6), ((7, 2, 4), 3)])
def test_backward_matches_autograd_and_finite_differences(hidden, output, loss, sizes, n):
    inputs, width, outputs = sizes
    net = random_network(inputs, width, outputs, seed=zlib.crc32(f"{hidden}{output}{loss}{n}".encode()), hidden=hidden,
                         output=output, loss=loss)
    g = torch.Generator().manual_seed(n)
    x = torch.randn(n, inputs, generator=g, dtype=torch.float64)
    y = one_hot(torch.randint(0, outputs, (n,), generator=g).tolist(), outputs)
    ours = backward(net, x, y, forward(net, x, y))
    oracle = autograd_gradients(net, x, y)
    numeric = finite_difference_gradients(net, x, y)
    for name in ("dz2", "dw2", "db2", "dz1", "dw1", "db1"):
        assert torch.allclose(getattr(ours, name), getattr(oracle, name), atol=1e-6, rtol=0), name
    for name in ("dw2", "db2", "dw1", "db1"):
        assert torch.allclose(getattr(ours, name), getattr(numeric, name), atol=1e-6, rtol=0), name


def test_the_articles_example_forward_values():
    net = random_network(seed=0)
    x = torch.tensor([ARTICLE_INPUT], dtype=torch.float64)
    f = forward(net, x, one_hot([0], 2))
    assert torch.allclose(f.z1, x @ net.w1.T + net.b1) and torch.equal(f.a1, f.z1.clamp_min(0))
    assert torch.allclose(f.a2, torch.softmax(f.z2, dim=1)) and abs(float(f.a2.sum()) - 1) < 1e-12
    assert float(f.loss) == pytest.approx(-float(torch.log(f.a2[0, 0])))


def test_activation_derivatives_match_autograd():
    z = torch.linspace(-3, 3, 61, dtype=torch.float64).requires_grad_(True)
    for name in HIDDEN_ACTIVATIONS:
        a = activate(name, z)
        grad, = torch.autograd.grad(a.sum(), z)
        mask = z.detach() != 0  # ReLU has no derivative at 0
        assert torch.allclose(derivative(name, z.detach(), a.detach())[mask], grad[mask], atol=1e-12), name


def test_a_small_step_lowers_the_loss_and_training_learns():
    net = random_network(seed=3)
    x, y = torch.tensor([ARTICLE_INPUT], dtype=torch.float64), one_hot([1], 2)
    f = forward(net, x, y)
    stepped = sgd_step(net, backward(net, x, y, f), lr=0.1)
    assert float(forward(stepped, x, y).loss) < float(f.loss)
    torch_net = torch.nn.Parameter(net.w1.clone())  # the same update as torch.optim.SGD
    optimizer = torch.optim.SGD([torch_net], lr=0.1)
    torch_net.grad = autograd_gradients(net, x, y).dw1.clone()
    optimizer.step()
    assert torch.allclose(torch_net.detach(), stepped.w1, atol=1e-12)
    _, losses = train(net, x, y, lr=0.5, steps=50)
    assert losses[-1] < 0.05 * losses[0]


def test_cross_entropy_needs_probabilities():
    with pytest.raises(ValueError, match="softmax or sigmoid"):
        random_network(output="identity", loss="cross-entropy")


def test_a_sigmoid_output_learns_from_both_outputs_with_binary_cross_entropy():
    net = random_network(seed=4, output="sigmoid", loss="cross-entropy")
    x, y = torch.tensor([ARTICLE_INPUT], dtype=torch.float64), one_hot([0], 2)
    f = forward(net, x, y)
    assert float(f.loss) == pytest.approx(float(torch.nn.functional.binary_cross_entropy(f.a2, y)), abs=1e-12)
    grads = backward(net, x, y, f)
    assert grads.dz2[0, 1] > 0  # the wrong-class output is pushed down, not ignored (−Σ y log ŷ gave it 0)


@pytest.mark.parametrize("output, loss", [("softmax", "cross-entropy"), ("sigmoid", "cross-entropy"),
                                          ("softmax", "mse"), ("tanh", "mse")])
def test_the_loss_terms_add_up_to_the_loss(output, loss):
    from dlplay.lessons.neuron import loss_terms
    net = random_network(4, 5, 3, seed=5, output=output, loss=loss)
    x = torch.randn(4, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = one_hot([0, 2, 1, 1], 3)
    f = forward(net, x, y)
    terms = loss_terms(loss, output, f.a2, y)
    assert terms.shape == (4, 3) and float(terms.sum(dim=1).mean()) == pytest.approx(float(f.loss), abs=1e-12)


def test_numbers_are_shown_with_a_real_minus_sign():
    from ui.latex import matrix, number
    assert number(-1.5) == "\u22121.500" and number(2.25, 1) == "2.2" and "-" not in matrix(-torch.ones(2))
    assert number(-0.0004) == "0.000" and number(-0.0) == "0.000"  # never −0.000


@pytest.mark.parametrize("loss", ["cross-entropy", "mse"])
def test_the_loss_on_logits_and_its_gradient_match_autograd(loss):
    from dlplay.lessons.neuron import loss_on_logits
    logits = torch.tensor([[2.0, 0.5, -1.0]], dtype=torch.float64, requires_grad=True)
    y = one_hot([1], 3)
    value, gradient = loss_on_logits(loss, logits.detach(), y)
    F = torch.nn.functional
    oracle = F.cross_entropy(logits, y) if loss == "cross-entropy" else F.mse_loss(logits.softmax(1), y)
    oracle.backward()
    assert value == pytest.approx(oracle.item(), abs=1e-12)
    assert torch.allclose(gradient, logits.grad[0], atol=1e-12)
