"""What Conv2D and pooling compute, by hand, number by number: the output-size formula, padding, one kernel
position's products and sums, whole output maps, max and average pooling (and which input won each max).

Everything here is plain NumPy index arithmetic in float64, written to be read; the tests check it against
torch.nn.functional. Arrays are (channels, height, width); kernels are (channels, k, k) for one output map, or
(out_channels, channels, k, k) for a whole layer.
"""
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image
from torch import nn

from dlplay.limits import limits

# Classic hand-made 3x3 kernels (image processing's, before CNNs learnt their own).
KERNELS: dict[str, list[list[float]]] = {
    "edge": [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]],
    "blur": [[1 / 9] * 3] * 3,
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "Sobel x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "Sobel y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
}
MAX_TYPED_KERNEL = 7


def output_size(n: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """⌊(n + 2p − d(k−1) − 1)/s⌋ + 1: how many positions a kernel takes along a side of n (0 if none fits)."""
    return max((n + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1, 0)


def same_pads(n: int, kernel: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """Keras' (and TensorFlow's) 'same' padding: the output has ⌈n/s⌉ positions; the zeros it needs go half
    before and half after, the odd one after."""
    total = max((math.ceil(n / stride) - 1) * stride + dilation * (kernel - 1) + 1 - n, 0)
    return total // 2, total - total // 2


def pads(n: int, kernel: int, stride: int, padding: int | str, dilation: int = 1) -> tuple[int, int]:
    """Zeros before and after a side of n for padding 'valid', 'same' or a number."""
    if padding == "valid":
        return 0, 0
    if padding == "same":
        return same_pads(n, kernel, stride, dilation)
    if isinstance(padding, int) and padding >= 0:
        return padding, padding
    raise ValueError(f"padding must be 'valid', 'same' or a whole number of pixels, not {padding!r}")


def padded_output_size(n: int, kernel: int, stride: int, before_after: tuple[int, int], dilation: int) -> int:
    """The output-size formula with the padding before and after given separately (n + p₁ + p₂ in place of
    n + 2p)."""
    return max((n + sum(before_after) - dilation * (kernel - 1) - 1) // stride + 1, 0)


def pad_input(x: np.ndarray, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
    """(C, H, W) with `rows` zeros above and below and `cols` zeros left and right."""
    return np.pad(np.asarray(x, dtype=np.float64), ((0, 0), rows, cols))


def window_indices(position: int, kernel: int, stride: int, dilation: int) -> np.ndarray:
    """The padded-input coordinates one kernel position covers along a side: i·s, i·s + d, … i·s + d(k−1)."""
    return position * stride + dilation * np.arange(kernel)


@dataclass(frozen=True)
class ConvStep:
    """One output pixel of one convolution: the window it sees, the products, the sums."""

    rows: np.ndarray  # (k,) padded-input rows of the window
    cols: np.ndarray  # (k,) padded-input columns
    window: np.ndarray  # (C, k, k) input values under the kernel
    products: np.ndarray  # (C, k, k) window × kernel, element by element
    channel_sums: np.ndarray  # (C,) the products summed per input channel
    bias: float
    total: float  # Σ channel sums + bias: the output pixel


def conv_step(padded: np.ndarray, kernel: np.ndarray, bias: float, row: int, col: int, stride: int = 1,
              dilation: int = 1) -> ConvStep:
    """Output pixel (row, col) of convolving an already padded (C, H, W) input with a (C, k, k) kernel."""
    size = kernel.shape[-1]
    rows, cols = window_indices(row, size, stride, dilation), window_indices(col, size, stride, dilation)
    window = padded[:, rows[:, None], cols[None, :]]
    products = window * kernel
    channel_sums = products.sum(axis=(1, 2))
    return ConvStep(rows, cols, window, products, channel_sums, float(bias), float(channel_sums.sum() + bias))


def strongest(output: np.ndarray) -> tuple[int, int]:
    """(row, column) of an output map's largest |value|, the first in reading order on a tie: where the kernel
    finds most, so where a learner's look at one position starts."""
    row, col = divmod(int(np.abs(output).argmax()), output.shape[1])
    return row, col


def conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, stride: int = 1,
           padding: int | str = 0, dilation: int = 1) -> np.ndarray:
    """A whole convolution (strictly, cross-correlation, as in every deep-learning library): (C, H, W) input,
    (O, C, k, k) weight → (O, H', W'). Each output pixel is Σ over channels and kernel cells of input × weight,
    plus the bias; the windows are gathered by index arithmetic, one per output pixel."""
    x, weight = np.asarray(x, dtype=np.float64), np.asarray(weight, dtype=np.float64)
    size = weight.shape[-1]
    row_pads, col_pads = (pads(n, size, stride, padding, dilation) for n in x.shape[1:])
    padded = pad_input(x, row_pads, col_pads)
    out_h, out_w = (padded_output_size(n, size, stride, p, dilation)
                    for n, p in zip(x.shape[1:], (row_pads, col_pads), strict=True))
    if out_h == 0 or out_w == 0:
        raise ValueError("the kernel (with its dilation) is larger than the padded input: no output pixel")
    rows = window_indices(np.arange(out_h)[:, None], size, stride, dilation)  # (H', k)
    cols = window_indices(np.arange(out_w)[:, None], size, stride, dilation)  # (W', k)
    windows = padded[:, rows[:, None, :, None], cols[None, :, None, :]]  # (C, H', W', k, k)
    out = np.einsum("chwij,ocij->ohw", windows, weight)
    return out if bias is None else out + np.asarray(bias, dtype=np.float64)[:, None, None]


def relu(x: np.ndarray) -> np.ndarray:
    """max(0, x), element by element."""
    return np.maximum(x, 0.0)


def _pool_windows(x: np.ndarray, window: int, stride: int) -> np.ndarray:
    """(C, H', W', window·window): the values under each pooling window ('valid': no padding), in reading
    order."""
    x = np.asarray(x)
    out_h, out_w = (output_size(n, window, stride) for n in x.shape[1:])
    if out_h == 0 or out_w == 0:
        raise ValueError("the pooling window is larger than the map: no output pixel")
    rows = window_indices(np.arange(out_h)[:, None], window, stride, 1)
    cols = window_indices(np.arange(out_w)[:, None], window, stride, 1)
    values = x[:, rows[:, None, :, None], cols[None, :, None, :]]
    return values.reshape(*values.shape[:3], -1)


def max_pool(x: np.ndarray, window: int = 2, stride: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Max pooling of a (C, H, W) map: the largest value in each window, and where it was (its flat index
    row·W + column in the input, as F.max_pool2d's return_indices gives). Ties go to the first in reading order."""
    stride, x = stride or window, np.asarray(x, dtype=np.float64)
    values = _pool_windows(x, window, stride)
    where = _pool_windows(np.arange(x.shape[1] * x.shape[2]).reshape(1, *x.shape[1:]), window, stride)
    best = values.argmax(axis=-1)
    return values.max(axis=-1), np.take_along_axis(where, best[..., None], axis=-1)[..., 0]


def avg_pool(x: np.ndarray, window: int = 2, stride: int | None = None) -> np.ndarray:
    """Average pooling of a (C, H, W) map: the mean of each window."""
    return _pool_windows(np.asarray(x, dtype=np.float64), window, stride or window).mean(axis=-1)


def parse_kernel(text: str) -> np.ndarray:
    """A square kernel typed as rows of numbers (rows on lines or split by ';', numbers by spaces or commas).
    Raises ValueError with one plain sentence; a text over the limit is refused before it is split."""
    if len(text) > limits().kernel_chars:
        raise ValueError(f"the kernel is {len(text):,} characters long; the limit is {limits().kernel_chars:,}")
    lines = [line for line in text.replace(";", "\n").splitlines() if line.strip()]
    try:
        rows = [[float(v) for v in line.replace(",", " ").split()] for line in lines]
    except ValueError:
        raise ValueError("the kernel must be numbers only, separated by spaces or commas") from None
    size = len(rows)
    if size == 0:
        raise ValueError("the kernel is empty: type its rows, one per line")
    if any(len(r) != size for r in rows):
        raise ValueError(f"the kernel must be square: {size} rows, so {size} numbers in every row")
    if size > MAX_TYPED_KERNEL:
        raise ValueError(f"the kernel may have at most {MAX_TYPED_KERNEL} rows")
    kernel = np.array(rows, dtype=np.float64)
    if not np.isfinite(kernel).all():
        raise ValueError("the kernel must hold finite numbers")
    return kernel


@dataclass(frozen=True)
class ModelFilters:
    """A model's first convolution: its filters and how it is applied, and the input normalisation before it."""

    weight: np.ndarray  # (O, C, k, k)
    bias: np.ndarray  # (O,), zeros when the layer has none (batch-norm follows)
    stride: int
    padding: int | str
    dilation: int
    mean: np.ndarray  # (C,) the model subtracts this from 0..1 pixels...
    std: np.ndarray  # ...and divides by this, before the convolution


def first_conv(model: nn.Module) -> ModelFilters:
    """The first Conv2d of a model built by dlplay (square kernel, same stride, padding and dilation both ways); read
    on the CPU before widening to float64, which Apple's GPU does not have."""
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None:
        raise ValueError("this model has no convolution layer")
    weight = conv.weight.detach().cpu().double().numpy()
    bias = (conv.bias.detach().cpu().double().numpy() if conv.bias is not None else np.zeros(weight.shape[0]))
    padding = conv.padding if isinstance(conv.padding, str) else conv.padding[0]
    norm = next((m for m in model.modules() if hasattr(m, "mean") and hasattr(m, "std")), None)
    channels = weight.shape[1]
    mean = norm.mean.cpu().double().numpy().ravel() if norm is not None else np.zeros(channels)
    std = norm.std.cpu().double().numpy().ravel() if norm is not None else np.ones(channels)
    return ModelFilters(weight, bias, conv.stride[0], padding, conv.dilation[0], mean, std)


@dataclass(frozen=True)
class ShapeRow:
    """One layer of a CNN's shape table: what it does to the shape, and the arithmetic that says so."""

    layer: str
    output_shape: tuple[int, ...]  # Keras' order: (height, width, channels), or (features,)
    params: int
    formula: str


def shape_table(model: nn.Module, input_shape: tuple[int, int, int]) -> list[ShapeRow]:
    """Every Conv2d, MaxPool2d, Flatten, Linear and Dropout of a plain Sequential CNN (the rows of Keras'
    model.summary(), where the ReLU is part of its layer), with its output shape and parameter count worked out from
    the formulas (not by running the model)."""
    channels, height, width = input_shape
    features = None
    rows = []
    for module in model:
        if isinstance(module, nn.Conv2d):
            k, s, d = module.kernel_size[0], module.stride[0], module.dilation[0]
            p = module.padding if isinstance(module.padding, str) else module.padding[0]
            (ph, pw) = pads(height, k, s, p, d), pads(width, k, s, p, d)
            new_h, new_w = padded_output_size(height, k, s, ph, d), padded_output_size(width, k, s, pw, d)
            params = k * k * channels * module.out_channels + (module.out_channels if module.bias is not None else 0)
            formula = (f"⌊({height} + 2·{ph[0]} − {d}·({k}−1) − 1)/{s}⌋ + 1 = {new_h}; "
                       f"params {k}·{k}·{channels}·{module.out_channels}"
                       + (f" + {module.out_channels}" if module.bias is not None else "") + f" = {params:,}")
            height, width, channels = new_h, new_w, module.out_channels
            rows.append(ShapeRow(f"Conv2D({channels}, {k}×{k})", (height, width, channels), params, formula))
        elif isinstance(module, nn.MaxPool2d):
            k = module.kernel_size if isinstance(module.kernel_size, int) else module.kernel_size[0]
            s = module.stride if isinstance(module.stride, int) else module.stride[0]
            new_h, new_w = output_size(height, k, s), output_size(width, k, s)
            formula = f"⌊({height} − {k})/{s}⌋ + 1 = {new_h}; no parameters"
            height, width = new_h, new_w
            rows.append(ShapeRow(f"MaxPooling2D({k})", (height, width, channels), 0, formula))
        elif isinstance(module, nn.Flatten):
            features = height * width * channels
            rows.append(ShapeRow("Flatten", (features,), 0, f"{height}·{width}·{channels} = {features:,}"))
        elif isinstance(module, nn.Linear):
            params = module.in_features * module.out_features + module.out_features
            formula = f"params {features}·{module.out_features} + {module.out_features} = {params:,}"
            features = module.out_features
            rows.append(ShapeRow(f"Dense({features})", (features,), params, formula))
        elif isinstance(module, nn.Dropout):
            shape = (features,) if features is not None else (height, width, channels)
            rows.append(ShapeRow(f"Dropout({module.p:g})", shape, 0, "shape unchanged; no parameters"))
    return rows


def picture_planes(picture: Image.Image, longest_side: int, channels: int) -> np.ndarray:
    """A picture as (channels, H, W) floats in 0..1 (1 channel: its grey levels; 3: red, green, blue), scaled so
    that its longer side has `longest_side` pixels."""
    scale = longest_side / max(picture.size)
    size = tuple(max(1, round(side * scale)) for side in picture.size)
    image = picture.convert("L" if channels == 1 else "RGB").resize(size, Image.Resampling.BOX if scale < 1 else
                                                                     Image.Resampling.BICUBIC)
    pixels = np.asarray(image, dtype=np.float64) / 255
    return pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)


def normalised(planes: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(x − mean) / std per channel: what a dlplay model does to its 0..1 input before its first convolution."""
    return (planes - mean[:, None, None]) / std[:, None, None]
