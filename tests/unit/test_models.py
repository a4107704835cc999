"""Every model's output shape, the Keras parameter counts of the article's models, and the summary."""
import pytest
import torch
from torch.nn import functional as F

from dlplay.layers import Upsample
from dlplay.models import MODELS, build_model, format_summary, summary


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("shape, classes", [((1, 28, 28), 10), ((3, 32, 32), 10), ((3, 64, 48), 2), ((1, 150, 150), 5)])
def test_output_shape_for_any_input(name, shape, classes):
    model = build_model(name, shape, classes).eval()
    with torch.no_grad():
        out = model(torch.rand(3, *shape))
    assert out.shape == (3, classes)
    assert torch.isfinite(out).all()


def keras_params(rows) -> int:
    return sum(r.params for r in rows)


def test_article_cifar10_cnn_matches_keras_parameter_count():
    # Keras model.summary() of §5.3 on 32x32x3: 896 + 18,496 + 73,856 + 65,664 + 1,290.
    rows = summary(build_model("article-cifar10", (3, 32, 32), 10), (3, 32, 32))
    assert keras_params(rows) == 160_202
    convs = [r for r in rows if r.kind == "Conv2d"]
    assert [r.output_shape for r in convs] == [(32, 30, 30), (64, 13, 13), (128, 4, 4)]


def test_article_150_cnn_matches_keras_parameter_count():
    # §5.2 on 150x150x3 with 10 classes: 896 + 18,496 + 73,856 + 147,584 + 3,211,776 + 5,130.
    rows = summary(build_model("article-150", (3, 150, 150), 10), (3, 150, 150))
    assert keras_params(rows) == 3_457_738
    assert rows[-1].output_shape == (10,)


def test_small_images_are_upsampled_for_the_valid_convolution_stack():
    model = build_model("article-150", (1, 28, 28), 10)
    assert isinstance(model[1], Upsample) and model[1].size == 46
    assert not any(isinstance(m, Upsample) for m in build_model("article-cifar10", (3, 32, 32), 10))


def test_strided_cnn_pools_before_batch_norm_yet_computes_the_usual_block():
    """Its first block (conv, max-pool, BN, ReLU) gives what conv, BN, ReLU, max-pool give, for BN in eval mode with
    positive scales; the stride-2 blocks halve the map."""
    torch.manual_seed(0)
    model = build_model("strided-cnn", (1, 28, 28), 10).eval()
    conv, bn = model[1], model[3]
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2.0)
        bn.bias.normal_()
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
        x = torch.rand(4, 1, 28, 28)
        usual = F.max_pool2d(F.relu(bn(conv(x))), 2)
        torch.testing.assert_close(model[1:5](x), usual)
        shapes = [tuple(model[1:i](x).shape[1:]) for i in (5, 8, 11)]
    assert shapes == [(16, 14, 14), (32, 7, 7), (64, 4, 4)]


def test_summary_rows_and_text():
    model = build_model("small-cnn", (1, 28, 28), 10)
    rows = summary(model, (1, 28, 28))
    assert rows[0].kind == "Normalize" and rows[-1].output_shape == (10,)
    assert keras_params(rows) == sum(p.numel() for p in model.parameters())
    text = format_summary(rows)
    assert "Conv2d" in text and f"Total params: {keras_params(rows):,}" in text
    assert model.training  # summary restores the mode


def test_too_small_input_and_unknown_name_are_clear_errors():
    with pytest.raises(ValueError, match="too small"):
        build_model("small-cnn", (1, 4, 4), 10)
    with pytest.raises(ValueError, match="small-cnn"):
        build_model("resnet9000", (1, 28, 28), 10)


def test_normalize_layer_uses_the_given_statistics():
    model = build_model("small-cnn", (1, 28, 28), 10, mean=[0.25], std=[0.5])
    x = torch.full((1, 1, 28, 28), 0.75)
    assert torch.allclose(model[0](x), torch.ones_like(x))
