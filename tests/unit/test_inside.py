"""Look-inside tools checked against direct computation: feature maps, filters, gradient norms, dead ReLUs."""
import torch
from torch import nn
from torch.nn import functional as F

from dlplay.data import ImageSet
from dlplay.inside import dead_relus, feature_maps, first_layer_filters, gradient_norms, to_uint8
from dlplay.models import build_model, summary


def test_feature_maps_match_the_summary_and_a_manual_forward(mnist5k, cpu):
    model = build_model("small-cnn", (1, 28, 28), 10, seed=1)
    maps = feature_maps(model, mnist5k.test.images[0], cpu)
    assert model.training  # the caller's mode is restored
    relu_rows = [r for r in summary(model, (1, 28, 28)) if r.kind == "ReLU" and len(r.output_shape) == 3]
    assert [tuple(m.shape) for _, m in maps] == [r.output_shape for r in relu_rows]
    model.eval()
    index = int(maps[1][0])  # the Sequential index of the second conv block's ReLU
    manual = model[: index + 1](mnist5k.test.images[:1].float() / 255)[0]
    assert torch.allclose(maps[1][1], manual, atol=1e-6)


def test_first_layer_filters_are_the_first_conv_weights():
    model = build_model("article-cifar10", (3, 32, 32), 10)
    assert torch.equal(first_layer_filters(model), model[1].weight.detach())
    shown = to_uint8(first_layer_filters(model))
    assert shown.dtype == torch.uint8
    assert shown.flatten(1).amax(1).eq(255).all() and shown.flatten(1).amin(1).eq(0).all()


def test_gradient_norms_equal_autograd_layer_by_layer(mnist5k, cpu):
    model = build_model("article-cifar10", (1, 28, 28), 10, seed=2)
    batch = ImageSet(mnist5k.train.images[:32], mnist5k.train.labels[:32])
    norms = gradient_norms(model, batch, cpu)
    model.eval()
    loss = F.cross_entropy(model(batch.images.float() / 255), batch.labels)
    loss.backward()
    expected = [m.weight.grad.norm().item() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert [round(n.value, 6) for n in norms] == [round(e, 6) for e in expected]
    assert [n.name.split()[1] for n in norms] == ["Conv2d"] * 3 + ["Linear"] * 2


def test_dead_relus_counts_channels_that_never_fire(mnist5k, cpu):
    model = build_model("article-cifar10", (1, 28, 28), 10, seed=3)
    with torch.no_grad():
        model[1].bias[:4] = -1e6  # 4 of the first conv's 32 channels can never be positive
    fractions = dead_relus(model, mnist5k.test.images[:100], cpu)
    assert fractions[0].value == 4 / 32
    assert len(fractions) == 4  # three conv ReLUs and the dense one
