"""Activation curves, softmax temperature, and gradient flow in deep MLPs against direct computation."""
import pytest
import torch
from torch.nn import functional as F

from dlplay.data import ImageSet
from dlplay.lessons.activations import (
    ACTIVATIONS,
    INITS,
    covering,
    curve,
    curves,
    deep_mlp,
    gradient_flow,
    read_flow,
    softmax_with_temperature,
)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_derivative_matches_finite_differences(name):
    xs = torch.tensor([-2.5, -0.7, 0.3, 1.9], dtype=torch.float64)
    _, derivative = curve(name, xs)
    f = ACTIVATIONS[name][0]
    numeric = (f(xs + 1e-6) - f(xs - 1e-6)) / 2e-6
    assert torch.allclose(derivative, numeric, atol=1e-6)


def test_known_derivatives():
    xs = torch.linspace(-3, 3, 13, dtype=torch.float64)
    s, ds = curve("sigmoid", xs)
    assert torch.allclose(ds, s * (1 - s))
    t, dt = curve("tanh", xs)
    assert torch.allclose(dt, 1 - t ** 2)


def test_softmax_temperature():
    z = torch.tensor([2.0, 1.0, 0.1])
    assert torch.allclose(softmax_with_temperature(z, 1.0), torch.softmax(z, 0))
    sharp, flat = softmax_with_temperature(z, 0.1), softmax_with_temperature(z, 10.0)
    assert sharp[0] > 0.99 and float(flat.max() - flat.min()) < 0.1
    assert abs(float(flat.sum()) - 1) < 1e-6


def test_gradient_flow_matches_autograd_and_reads_vanishing_sigmoid(mnist5k):
    batch = ImageSet(mnist5k.train.images[:64], mnist5k.train.labels[:64])
    model = deep_mlp([64] * 20, "sigmoid", "PyTorch default", seed=0)
    flow = gradient_flow(model, batch)
    loss = F.cross_entropy(model(batch.images.float() / 255), batch.labels)
    loss.backward()
    hidden = [m for m in model if isinstance(m, torch.nn.Linear)][:-1]
    assert flow.gradient_norms == pytest.approx([float(m.weight.grad.norm()) for m in hidden], rel=1e-5)
    assert len(flow.activations) == 20 and len(flow.dead_fraction) == 20
    assert flow.gradient_norms[-1] / flow.gradient_norms[0] > 1000  # sigmoid: vanishing
    reading = read_flow(flow.gradient_norms)
    assert reading.kind == "vanishing" and reading.factor > 1000 and reading.layers == 20
    assert 1 < reading.thousandfold_at < 20


def test_he_init_keeps_relu_gradients_healthy_and_dead_units_are_counted(mnist5k):
    batch = ImageSet(mnist5k.train.images[:64], mnist5k.train.labels[:64])
    flow = gradient_flow(deep_mlp([64] * 10, "ReLU", "He", seed=0), batch)
    assert read_flow(flow.gradient_norms).kind == "healthy"
    model = deep_mlp([16, 16], "ReLU", "He", seed=0)
    with torch.no_grad():
        model[1].bias[:4] = -1e6  # four units of the first hidden layer can never fire
    assert gradient_flow(model, batch).dead_fraction[0] == 4 / 16
    assert set(INITS) == {"PyTorch default", "Xavier", "He"}


def test_the_activation_race_trains_each_activation_the_same_way(mnist5k, cpu):
    from dlplay.lessons.activations import activation_race
    results = activation_race(["ReLU", "sigmoid"], mnist5k, cpu, epochs=3)
    assert set(results) == {"ReLU", "sigmoid"}
    assert all(len(r.losses) == 3 * 63 for r in results.values())  # 4,000 images / batch 64, same schedule
    assert results["ReLU"].test_accuracy > 0.85
    assert results["ReLU"].losses[-1] < results["ReLU"].losses[0]


def test_flow_readings_cover_shallow_and_exploding_networks():
    assert read_flow([1.0]).kind == "shallow"
    healthy = read_flow([1.0, 8.2, 2.0])  # first and last 2× apart, the middle layer 8.2× the first
    assert (healthy.kind, healthy.factor) == ("healthy", 8.2)  # "within 8.2× across the layers", all of them
    exploding = read_flow([500.0, 5.0, 1.0])
    assert exploding.kind == "exploding" and exploding.factor == pytest.approx(500.0)


def test_leaky_relu_is_found_lying_on_relu_and_distinct_curves_are_not():
    xs, shapes = curves(["ReLU", "sigmoid", "LeakyReLU", "GELU", "ELU"])
    values, slopes = ({n: pair[i] for n, pair in shapes.items()} for i in (0, 1))
    assert covering(values) == {"LeakyReLU": "ReLU"}  # within 0.05 of it everywhere on [−5, 5]
    assert covering(slopes) == {"LeakyReLU": "ReLU"}  # slopes 0.01 and 0 left of zero, 1 and 1 right of it
    assert covering({"ReLU": values["ReLU"]}) == {} and covering({}) == {}
    assert covering({"a": [0.0, 1.0], "b": [0.0, 1.05]}, within=0.02) == {}  # 5% of the height apart: both seen
