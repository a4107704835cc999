"""The hand-written convolution and pooling against torch.nn.functional (float64, 1e-9), over random shapes,
strides, paddings and dilations; the output-size formula against the shape F.conv2d really gives."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dlplay.lessons.convolution import (
    KERNELS,
    avg_pool,
    conv2d,
    conv_step,
    first_conv,
    max_pool,
    output_size,
    pad_input,
    pads,
    parse_kernel,
    relu,
    shape_table,
    strongest,
)
from dlplay.models import build_model, summary

TOL = 1e-9


def random_case(rng: np.random.Generator):
    """A random convolution that has at least one output pixel."""
    while True:
        channels, out_channels = rng.integers(1, 4), rng.integers(1, 4)
        height, width = rng.integers(1, 14, size=2)
        kernel, stride, dilation = rng.integers(1, 6), rng.integers(1, 4), rng.integers(1, 4)
        padding = rng.choice(["valid", "same", 0, 1, 2, 3])
        padding = padding if padding in ("valid", "same") else int(padding)
        reach = dilation * (kernel - 1) + 1
        extra = 0 if padding in ("valid", "same") else 2 * padding
        if padding == "same" or min(height, width) + extra >= reach:
            weight = rng.normal(size=(out_channels, channels, kernel, kernel))
            return (rng.normal(size=(channels, height, width)), weight, rng.normal(size=out_channels), int(stride),
                    padding, int(dilation))


def same_by_search(n: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """Keras' 'same' found without its formula: the smallest padding, split before and after (the extra one after),
    whose F.conv2d output has ⌈n/s⌉ positions."""
    for total in range(dilation * (kernel - 1) + stride + 1):
        if n + total < dilation * (kernel - 1) + 1:
            continue  # no output position at all
        out = F.conv2d(torch.zeros(1, 1, 1, n + total), torch.zeros(1, 1, 1, kernel), stride=stride,
                       dilation=dilation)
        if out.shape[-1] == -(-n // stride):
            return total // 2, total - total // 2
    raise AssertionError("no padding gives ⌈n/s⌉ outputs")


def oracle_pads(n: int, kernel: int, stride: int, padding, dilation: int) -> tuple[int, int]:
    """The zeros before and after a side, worked out independently of dlplay.lessons.convolution.pads."""
    if padding == "valid":
        return 0, 0
    return same_by_search(n, kernel, stride, dilation) if padding == "same" else (padding, padding)


def torch_conv(x, weight, bias, stride, padding, dilation):
    """The oracle: F.conv2d on an input padded by F.pad with the oracle's zeros before and after."""
    k = weight.shape[-1]
    (top, bottom), (left, right) = (oracle_pads(n, k, stride, padding, dilation) for n in x.shape[1:])
    padded = F.pad(torch.from_numpy(x)[None], (left, right, top, bottom))
    return F.conv2d(padded, torch.from_numpy(weight), torch.from_numpy(bias), stride=stride, dilation=dilation)[0]


@pytest.mark.parametrize("seed", range(200))
def test_conv2d_equals_torch_over_random_shapes(seed):
    x, weight, bias, stride, padding, dilation = random_case(np.random.default_rng(seed))
    ours = conv2d(x, weight, bias, stride, padding, dilation)
    expected = torch_conv(x, weight, bias, stride, padding, dilation).numpy()
    assert ours.shape == expected.shape
    np.testing.assert_allclose(ours, expected, rtol=0, atol=TOL)


@pytest.mark.parametrize("seed", range(50))
def test_symmetric_padding_and_same_agree_with_torchs_own_padding_argument(seed):
    rng = np.random.default_rng(1000 + seed)
    x, w, b = rng.normal(size=(2, 9, 11)), rng.normal(size=(3, 2, 3, 3)), rng.normal(size=3)
    dilation, padding = int(rng.integers(1, 3)), int(rng.integers(0, 3))
    expected = F.conv2d(torch.from_numpy(x)[None], torch.from_numpy(w), torch.from_numpy(b), padding=padding,
                        dilation=dilation)[0].numpy()
    np.testing.assert_allclose(conv2d(x, w, b, 1, padding, dilation), expected, atol=TOL, rtol=0)
    same = F.conv2d(torch.from_numpy(x)[None], torch.from_numpy(w), torch.from_numpy(b), padding="same",
                    dilation=dilation)[0].numpy()
    np.testing.assert_allclose(conv2d(x, w, b, 1, "same", dilation), same, atol=TOL, rtol=0)


@pytest.mark.parametrize("seed", range(100))
def test_same_pads_are_the_smallest_that_give_ceil_n_over_s_outputs(seed):
    rng = np.random.default_rng(5000 + seed)
    n, k, s, d = (int(v) for v in (rng.integers(1, 30), rng.integers(1, 8), rng.integers(1, 5), rng.integers(1, 4)))
    assert pads(n, k, s, "same", d) == same_by_search(n, k, s, d)


@pytest.mark.parametrize("seed", range(300))
def test_output_size_formula_is_the_shape_torch_gives(seed):
    rng = np.random.default_rng(seed)
    n, k, s, p, d = (int(v) for v in (rng.integers(1, 40), rng.integers(1, 8), rng.integers(1, 5),
                                      rng.integers(0, 4), rng.integers(1, 4)))
    if n + 2 * p < d * (k - 1) + 1:
        assert output_size(n, k, s, p, d) == 0
        return
    out = F.conv2d(torch.zeros(1, 1, n, n), torch.zeros(1, 1, k, k), stride=s, padding=p, dilation=d)
    assert out.shape[-1] == output_size(n, k, s, p, d)


@pytest.mark.parametrize("n, stride", [(7, 1), (8, 2), (9, 2), (10, 3), (5, 4)])
def test_same_padding_gives_ceil_n_over_s_outputs_like_keras(n, stride):
    (before, after) = pads(n, 3, stride, "same")
    assert (before, after) == same_by_search(n, 3, stride, 1)
    out = F.conv2d(F.pad(torch.zeros(1, 1, n, n), (before, after, before, after)), torch.zeros(1, 1, 3, 3),
                   stride=stride)
    assert out.shape[-1] == -(-n // stride)
    assert after - before in (0, 1)


def test_one_step_is_the_output_pixel_and_its_sums_add_up():
    rng = np.random.default_rng(7)
    x, w, b = rng.normal(size=(3, 8, 8)), rng.normal(size=(3, 3, 3)), 0.25
    stride, dilation = 2, 2
    padded = pad_input(x, (1, 1), (1, 1))
    full = torch_conv(x, w[None], np.array([b]), stride, 1, dilation).numpy()[0]
    for row in range(full.shape[0]):
        for col in range(full.shape[1]):
            step = conv_step(padded, w, b, row, col, stride, dilation)
            assert step.total == pytest.approx(full[row, col], abs=TOL)
            assert step.channel_sums.sum() + step.bias == pytest.approx(step.total, abs=TOL)
            np.testing.assert_allclose(step.products, step.window * w)
    step = conv_step(padded, w, b, 1, 2, stride, dilation)
    assert step.rows.tolist() == [2, 4, 6] and step.cols.tolist() == [4, 6, 8]
    np.testing.assert_array_equal(step.window, padded[:, 2:7:2, 4:9:2])


@pytest.mark.parametrize("seed", range(100))
def test_pooling_equals_torch(seed):
    rng = np.random.default_rng(seed)
    channels, height, width = int(rng.integers(1, 4)), int(rng.integers(2, 15)), int(rng.integers(2, 15))
    window = int(rng.integers(1, min(height, width) + 1))
    stride = int(rng.integers(1, 4))
    x = rng.normal(size=(channels, height, width))
    values, where = max_pool(x, window, stride)
    expected, indices = F.max_pool2d(torch.from_numpy(x)[None], window, stride, return_indices=True)
    np.testing.assert_allclose(values, expected[0].numpy(), atol=TOL, rtol=0)
    np.testing.assert_array_equal(where, indices[0].numpy())
    np.testing.assert_allclose(avg_pool(x, window, stride),
                               F.avg_pool2d(torch.from_numpy(x)[None], window, stride)[0].numpy(), atol=TOL, rtol=0)
    np.testing.assert_array_equal(relu(x), F.relu(torch.from_numpy(x)).numpy())


def test_the_max_pool_winner_holds_the_max():
    x = np.arange(16, dtype=float).reshape(1, 4, 4)[:, ::-1]
    values, where = max_pool(x)
    assert values[0].tolist() == [[13, 15], [5, 7]]  # rows reversed: 12..15 on top
    assert x.ravel()[where[0]].tolist() == values[0].tolist()


def test_pool_or_kernel_bigger_than_the_map_is_a_clear_error():
    with pytest.raises(ValueError, match="larger than the map"):
        max_pool(np.zeros((1, 2, 2)), 3)
    with pytest.raises(ValueError, match="larger than the padded input"):
        conv2d(np.zeros((1, 2, 2)), np.zeros((1, 1, 3, 3)))


def test_typed_kernels_parse_or_say_what_is_wrong():
    np.testing.assert_array_equal(parse_kernel("-1 0 1\n-2, 0, 2; -1 0 1"), np.array(KERNELS["Sobel x"]))
    assert parse_kernel("1 2 3 4 5\n" * 5).shape == (5, 5)
    for text, message in [("", "empty"), ("1 2\n3", "square"), ("1 a\n2 3", "numbers only"),
                          ("1 nan\n1 1", "finite"), ("1 " * 9 + "\n" * 1, "square"),
                          ("1 " * 10_000, "20,000 characters long; the limit is 2,000")]:  # refused before splitting
        with pytest.raises(ValueError, match=message):
            parse_kernel(text)


def test_classic_kernels_do_what_their_names_say():
    flat = np.full((1, 6, 6), 0.5)
    step = np.zeros((1, 6, 6))
    step[:, :, 3:] = 1.0
    assert np.allclose(conv2d(flat, np.array(KERNELS["edge"])[None, None]), 0)  # no edges in a flat picture
    assert np.allclose(conv2d(flat, np.array(KERNELS["blur"])[None, None]), 0.5)  # blur keeps a flat picture
    sobel_x = conv2d(step, np.array(KERNELS["Sobel x"])[None, None])[0]
    assert (sobel_x[:, 1:3] > 0).all() and np.allclose(sobel_x[:, [0, 3]], 0)  # a vertical edge, seen by Sobel x
    assert np.allclose(conv2d(step, np.array(KERNELS["Sobel y"])[None, None]), 0)  # ...and not by Sobel y


def test_first_conv_reads_a_models_filters_and_normalisation():
    model = build_model("small-cnn", (1, 28, 28), 10, mean=[0.13], std=[0.31])
    filters = first_conv(model)
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    np.testing.assert_array_equal(filters.weight, conv.weight.detach().double().numpy())
    assert filters.padding == 1 and filters.stride == 1 and (filters.bias == 0).all()
    assert filters.mean.tolist() == pytest.approx([0.13]) and filters.std.tolist() == pytest.approx([0.31])
    x = np.random.default_rng(0).random((1, 28, 28))
    ours = conv2d((x - filters.mean[:, None, None]) / filters.std[:, None, None], filters.weight, filters.bias,
                  filters.stride, filters.padding, filters.dilation)
    with torch.no_grad():
        theirs = model[:2].double()(torch.from_numpy(x)[None])[0].numpy()  # Normalize, then the first Conv2d
    np.testing.assert_allclose(ours, theirs, atol=1e-9, rtol=0)


@pytest.mark.parametrize("name, shape", [("article-cifar10", (3, 32, 32)), ("article-150", (3, 150, 150))])
def test_shape_tables_match_the_models_real_shapes_and_keras_parameter_counts(name, shape):
    model = build_model(name, shape, 10)
    table = shape_table(model, shape)
    real = [r for r in summary(model, shape) if r.kind in ("Conv2d", "MaxPool2d", "Flatten", "Linear", "Dropout")]
    assert len(table) == len(real)
    for ours, theirs in zip(table, real, strict=True):
        keras_order = theirs.output_shape if len(theirs.output_shape) == 1 else (*theirs.output_shape[1:],
                                                                                theirs.output_shape[0])
        assert ours.output_shape == keras_order
        assert ours.params == theirs.params
    assert sum(r.params for r in table) == {"article-cifar10": 160_202, "article-150": 3_457_738}[name]
    # Keras' summary() rows: the ReLUs are inside Conv2D and Dense; the §5.3 model's Dropout(0.5) is a row of its own.
    assert [r.layer for r in table if r.layer.startswith("Dropout")] == (["Dropout(0.5)"] if name == "article-cifar10"
                                                                         else [])
    assert len(table) == {"article-cifar10": 10, "article-150": 11}[name]
    assert table[0].formula.startswith(f"⌊({shape[1]} + 2·0 − 1·(3−1) − 1)/1⌋ + 1 = {shape[1] - 2}")


@pytest.mark.parametrize("seed", range(20))
def test_strongest_is_the_first_largest_magnitude_in_reading_order(seed):
    rng = np.random.default_rng(seed)
    output = rng.integers(-3, 4, size=rng.integers(1, 8, size=2)).astype(np.float64)  # ties are common
    cells = [(r, c) for r in range(output.shape[0]) for c in range(output.shape[1])]
    expected = next(cell for cell in cells if abs(output[cell]) == np.abs(output).max())
    assert strongest(output) == expected and all(isinstance(i, int) for i in strongest(output))
