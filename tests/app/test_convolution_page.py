"""AppTest drives the Convolution page: stepping the kernel, the numbers it shows against F.conv2d, every kernel
source, the shape formula, pooling, and one sentence for each bad input."""
import base64
import json
import re

import numpy as np
import torch
import torch.nn.functional as F

from dlplay.classify import load_bundled_model
from dlplay.data import load_dataset
from helpers import by_label, image_bytes, open_app_page

PAGE = "app_pages/convolution.py"


def charts(at) -> dict[str, dict]:
    """The page's Plotly figures by title."""
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return {spec["layout"].get("title", {}).get("text", ""): spec for spec in specs}


def values(z) -> np.ndarray:
    """A figure's z: a list of lists, or Plotly's typed array {dtype, bdata (base64), shape}."""
    if isinstance(z, dict):
        shape = [int(n) for n in str(z["shape"]).split(",")]
        return np.frombuffer(base64.b64decode(z["bdata"]), dtype=z["dtype"]).reshape(shape)
    return np.array(z)


def picture(at, title_start: str) -> np.ndarray:
    """The values of the figure whose title starts so."""
    return values(next(s for t, s in charts(at).items() if t.startswith(title_start))["data"][0]["z"])


def output_map(at) -> np.ndarray:
    return picture(at, "output map")


def highlighted(spec) -> list[tuple[int, int]]:
    """The (row, column) cells outlined on a figure."""
    return [(round((s["y0"] + s["y1"]) / 2), round((s["x0"] + s["x1"]) / 2)) for s in spec["layout"].get("shapes", [])
            if s.get("line", {}).get("dash") is None]


def total(at) -> float:
    """The output pixel's value, the right-hand side of the sum shown under the tables."""
    return float(re.findall(r"= (-?[\d.]+)", at.latex[0].value)[-1])


def test_default_is_an_edge_kernel_on_a_digit_and_the_map_equals_torch():
    at = open_app_page(PAGE)
    digit = load_dataset("mnist5k").test.images[7].double() / 255
    expected = F.conv2d(digit[None], torch.tensor([[[[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]]], dtype=torch.float64))
    np.testing.assert_allclose(output_map(at), expected[0, 0].numpy(), atol=1e-9)
    assert output_map(at).shape == (26, 26)  # 'valid' padding: 28 − 3 + 1
    row, col = by_label(at.slider, "Output row").value, by_label(at.slider, "Output column").value
    assert abs(output_map(at)[row, col]) == np.abs(output_map(at)).max()  # it starts where the output is strongest
    assert total(at) == round(float(expected[0, 0, row, col]), 4)


def test_step_moves_the_kernel_and_the_highlights_follow():
    at = open_app_page(PAGE)
    by_label(at.slider, "Output row").set_value(12).run()
    by_label(at.slider, "Output column").set_value(25).run()
    by_label(at.button, "Step ▶").click().run()  # past the end of a row: the next row's first pixel
    assert by_label(at.slider, "Output row").value == 13 and by_label(at.slider, "Output column").value == 0
    out = next(s for t, s in charts(at).items() if t.startswith("output map"))
    assert highlighted(out) == [(13, 0)]
    picture = next(s for t, s in charts(at).items() if t.startswith("test digit"))
    assert sorted(highlighted(picture)) == [(r, c) for r in (13, 14, 15) for c in (0, 1, 2)]
    assert total(at) == round(float(output_map(at)[13, 0]), 4)
    by_label(at.button, "◀ Step").click().run()
    assert (by_label(at.slider, "Output row").value, by_label(at.slider, "Output column").value) == (12, 25)


def test_padding_stride_and_dilation_change_the_output_size():
    at = open_app_page(PAGE)
    by_label(at.radio, "Padding").set_value("same").run()
    assert output_map(at).shape == (28, 28)
    by_label(at.radio, "Stride").set_value(2).run()
    assert output_map(at).shape == (14, 14)
    by_label(at.radio, "Dilation").set_value(3).run()
    assert output_map(at).shape == (14, 14) and not at.exception
    by_label(at.radio, "Padding").set_value(1).run()
    assert output_map(at).shape == ((28 + 2 - 3 * 2 - 1) // 2 + 1,) * 2


def test_a_colour_photo_sums_three_channels():
    at = open_app_page(PAGE)
    by_label(at.radio, "Input").set_value("a sample photo").run()
    by_label(at.radio, "Channels").set_value(3).run()
    assert not at.exception
    assert len(at.dataframe) >= 3  # one products table per channel
    sums = at.latex[0].value
    assert r"\text{red}" in sums and r"\text{green}" in sums and r"\text{blue}" in sums


def test_a_typed_kernel_and_its_mistakes():
    at = open_app_page(PAGE)
    by_label(at.radio, "Kernel").set_value("typed").run()
    at.text_area[0].set_value("0 0 0 0 0\n0 0 0 0 0\n0 0 1 0 0\n0 0 0 0 0\n0 0 0 0 0").run()
    by_label(at.number_input, "Bias").set_value(0.5).run()
    digit = load_dataset("mnist5k").test.images[7].double().numpy()[0] / 255
    np.testing.assert_allclose(output_map(at), digit[2:-2, 2:-2] + 0.5, atol=1e-9)  # identity 5×5 plus the bias
    for text, words in (("1 2\n3", "square"), ("1 x\n1 1", "numbers only")):
        at.text_area[0].set_value(text).run()
        controls = next(c for c in at.columns if c.text_area)  # the column of the kernel's field
        assert not at.exception and [e.value for e in controls.error if words in e.value]  # said beside the field
        assert len(at.error) == 1  # one sentence, nothing else
        np.testing.assert_allclose(output_map(at), digit[2:-2, 2:-2] + 0.5, atol=1e-9)  # the last usable kernel
        assert any("Kernel: **your last usable kernel**, 5×5" in m.value for m in at.markdown)
        assert at.latex and at.dataframe  # the products and the sum are still there
    at.text_area[0].set_value("0 0 0\n0 2 0\n0 0 0").run()
    assert not at.error and any("Kernel: **your kernel**, 3×3" in m.value for m in at.markdown)
    np.testing.assert_allclose(output_map(at), 2 * digit[1:-1, 1:-1] + 0.5, atol=1e-9)
    assert at.text_area[0].proto.max_chars == 2_000  # the browser stops typing there


def test_a_new_stride_or_padding_starts_the_window_where_the_output_is_strongest():
    at = open_app_page(PAGE)
    by_label(at.slider, "Output row").set_value(0).run()
    by_label(at.slider, "Output column").set_value(0).run()
    for radio, value in (("Padding", 3), ("Stride", 2), ("Padding", "same")):
        by_label(at.radio, radio).set_value(value).run()
        row, col = by_label(at.slider, "Output row").value, by_label(at.slider, "Output column").value
        assert abs(output_map(at)[row, col]) == np.abs(output_map(at)).max() > 0  # not on all-zero padding
        assert total(at) == round(float(output_map(at)[row, col]), 4)
    by_label(at.button, "Step ▶").click().run()  # the learner's own moves are kept while the layout stays
    width = output_map(at).shape[1]
    assert ((by_label(at.slider, "Output row").value, by_label(at.slider, "Output column").value)
            == divmod(row * width + col + 1, width))


def test_a_sample_photo_is_also_shown_as_a_photo():
    at = open_app_page(PAGE)
    assert not at.get("image")  # a digit is its own 28×28 pixels
    by_label(at.radio, "Input").set_value("a sample photo").run()
    by_label(at.selectbox, "Photo").set_value("chelsea.png").run()
    [photo] = at.get("image")
    assert "scaled down to the picture size" in photo.proto.imgs[0].caption
    assert photo.proto.imgs[0].alt == "Chelsea the cat (CC0, photo by Stefan van der Walt)"
    assert picture(at, "chelsea.png").shape == (21, 32)  # beside the 32-pixel grid the convolution works on


def test_a_filter_of_the_bundled_model_on_its_normalised_input():
    at = open_app_page(PAGE)
    by_label(at.radio, "Kernel").set_value("from a trained model").run()
    by_label(at.slider, "Filter of its first convolution").set_value(3).run()
    assert any("stride 1, padding 1" in c.value for c in at.caption)  # how the model applies it
    by_label(at.radio, "Padding").set_value(1).run()
    model, card = load_bundled_model()
    digit = load_dataset("mnist5k").test.images[7].float()[None] / 255
    with torch.no_grad():
        expected = model[:2](digit)[0, 3]  # Normalize, then the first convolution: its fourth map
    np.testing.assert_allclose(output_map(at), expected.numpy(), atol=1e-4)
    assert any("normalises its input" in c.value for c in at.caption)


def test_upload_bad_and_good_pictures():
    at = open_app_page(PAGE)
    by_label(at.radio, "Input").set_value("my picture").run()
    assert any("Upload a picture" in i.value for i in at.info)
    at.get("file_uploader")[0].upload("notes.txt", b"not a picture").run()
    assert not at.exception and at.error and "notes.txt" in at.error[0].value
    at.get("file_uploader")[0].upload("grey.png", image_bytes(200, size=(40, 20))).run()
    assert not at.exception
    assert output_map(at).shape == (14, 30)  # scaled to 32 on the longer side: 32×16, then 'valid' 3×3


def test_a_kernel_that_does_not_fit_says_so():
    at = open_app_page(PAGE)
    by_label(at.radio, "Input").set_value("a sample photo").run()
    by_label(at.slider, "Picture size (longer side, pixels)").set_value(8).run()
    by_label(at.radio, "Dilation").set_value(3).run()
    by_label(at.radio, "Kernel").set_value("typed").run()
    at.text_area[0].set_value("\n".join(["1 1 1 1 1"] * 5)).run()
    assert not at.exception and any("reaches over 13 pixels" in w.value for w in at.warning)
    by_label(at.radio, "Padding").set_value(2).run()  # the padded picture: 2 zeros on every side
    [warning] = [w.value for w in at.warning]
    assert "more than the padded 12×12 picture has" in warning  # the 8×8 photo padded, not the photo itself


def test_shape_formula_with_the_users_numbers():
    at = open_app_page(PAGE)
    by_label(at.slider, "Input size n").set_value(9).run()
    by_label(at.slider, "Stride s").set_value(2).run()
    by_label(at.selectbox, "Padding p").set_value(1).run()
    formula = at.latex[-1].value
    assert r"{9 + 2\cdot1 - 1(3-1) - 1}{2}" in formula and formula.rstrip("$\n").endswith("= 5")
    by_label(at.selectbox, "Padding p").set_value("same").run()
    assert any("⌈9/2⌉ = 5" in m.value for m in at.markdown)
    by_label(at.selectbox, "Padding p").set_value("valid").run()
    by_label(at.slider, "Input size n").set_value(2).run()
    by_label(at.slider, "Dilation d").set_value(3).run()
    assert any("no output at all" in w.value for w in at.warning)


def test_article_shape_tables():
    at = open_app_page(PAGE)
    text = " ".join(m.value for m in at.markdown)
    assert "160,202 parameters" in text and "3,457,738 parameters" in text
    first = at.dataframe[-2].value
    assert first["output shape"].tolist()[:2] == ["30 × 30 × 32", "15 × 15 × 32"]
    assert first["layer"].tolist()[-3:] == ["Dense(128)", "Dropout(0.5)", "Dense(10)"]  # as Keras' summary() lists it
    assert first["output shape"].tolist()[-2] == "128"


def test_pooling_marks_the_winners_and_halves_the_map():
    at = open_app_page(PAGE)
    assert picture(at, "after max pooling").shape == (13, 13)
    relu_map = next(s for t, s in charts(at).items() if t.startswith("after ReLU"))
    conv = output_map(at)
    expected = F.max_pool2d(torch.from_numpy(np.maximum(conv, 0))[None], 2)[0].numpy()
    np.testing.assert_allclose(picture(at, "after max pooling"), expected, atol=1e-9)
    pooled, indices = F.max_pool2d(torch.from_numpy(np.maximum(conv, 0))[None], 2, return_indices=True)
    won = {divmod(int(i), conv.shape[1]) for i in indices[pooled > 0]}  # windows of zeros are not marked
    crosses = relu_map["data"][1]
    assert set(zip(values(crosses["y"]).tolist(), values(crosses["x"]).tolist(), strict=True)) == won
    by_label(at.radio, "Pooling").set_value("average").run()
    by_label(at.slider, "Window").set_value(3).run()
    expected = F.avg_pool2d(torch.from_numpy(np.maximum(conv, 0))[None], 3)[0].numpy()
    np.testing.assert_allclose(picture(at, "after average pooling"), expected, atol=1e-9)
