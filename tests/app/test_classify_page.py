"""AppTest drives Upload & classify: sample photos, a drawn digit, many files, and every kind of bad file."""
import io
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from dlplay.checkpoint import ModelCard, save_model
from dlplay.models import build_model
from helpers import by_label, image_bytes, open_app_page, run_to_the_end

REPO = Path(__file__).resolve().parents[2]


def open_classify() -> AppTest:
    return open_app_page("app_pages/classify.py")


def uploader(at, key):
    return next(u for u in at.get("file_uploader") if u.proto.id.endswith(key) or key in u.proto.id)


def upload_pictures(at, files):
    by_label(at.radio, "Picture from").set_value("my files").run()
    widget = uploader(at, "classify.pictures")
    for name, data in files:
        widget.upload(name, data, "application/octet-stream")
    at.run()
    assert not at.exception
    return at


def prediction(at) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("**") and "probability" in m.value)


def test_sample_photos_get_a_prediction_and_maps():
    at = open_classify()
    for photo in ["chelsea.png", "rocket.jpg"]:
        by_label(at.selectbox, "Sample photo").set_value(photo).run()
        assert not at.exception and "with probability" in prediction(at)
        assert any("Grad-CAM" in (img.proto.imgs[0].caption or "") for img in at.get("image"))


def drawn_digit(mnist5k, index) -> bytes:
    """A test digit as a drawing app would save it: dark ink on white, larger, RGB."""
    paper = Image.fromarray(255 - mnist5k.test.images[index, 0].numpy()).resize((200, 200)).convert("RGB")
    buffer = io.BytesIO()
    paper.save(buffer, "PNG")
    return buffer.getvalue()


def test_a_drawn_digit_is_inverted_and_read(mnist5k):
    at = upload_pictures(open_classify(), [("digit.png", drawn_digit(mnist5k, 3))])
    assert prediction(at).startswith(f"**{int(mnist5k.test.labels[3])}**")
    assert any("flips at" in m.value or "No ε" in m.value for m in at.markdown)  # the FGSM section
    by_label(at.slider, "ε (how far each pixel may move, on a 0..1 scale)").set_value(0.3).run()
    assert not at.exception and any(m.value.startswith("Now read as") for m in at.markdown)
    assert any("inverted" in (img.proto.imgs[0].caption or "") for img in at.get("image"))


def test_many_pictures_give_a_table_and_a_csv(mnist5k):
    at = upload_pictures(open_classify(), [(f"d{i}.png", drawn_digit(mnist5k, i)) for i in range(4)])
    table = at.dataframe[0].value
    assert list(table["file"]) == ["d0.png", "d1.png", "d2.png", "d3.png"]
    assert list(table["prediction"]) == [str(int(v)) for v in mnist5k.test.labels[:4]]
    assert any(b.label == "Predictions (.csv)" for b in at.get("download_button"))


def png_declaring(width, height) -> bytes:
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 10)) + chunk(b"IEND", b""))


def sixteen_bit_png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.arange(64 * 64, dtype=np.uint16).reshape(64, 64) * 16).save(buffer, "PNG")
    return buffer.getvalue()


def exif_rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    Image.new("RGB", (80, 40), (200, 30, 30)).save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


def animated_gif() -> bytes:
    frames = [Image.new("L", (32, 32), v) for v in (20, 230)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    return buffer.getvalue()


def palette_with_transparency() -> bytes:
    image = Image.new("P", (32, 32), 1)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", transparency=1)
    return buffer.getvalue()


JPEG = image_bytes((10, 200, 10), size=(64, 64), fmt="JPEG")


@pytest.mark.parametrize("name, data, message", [
    ("empty.png", b"", "The file is empty."),
    ("notes.png", b"just some text, renamed", "not an image dlplay can read"),
    ("cut.jpg", JPEG[:200], "truncated or corrupt"),
    ("bomb.png", png_declaring(20000, 20000), "too many pixels"),
    ("drawing.svg", b"<svg xmlns='http://www.w3.org/2000/svg' width='20' height='20'/>",
     "not an image dlplay can read"),
])
def test_bad_pictures_get_one_sentence_and_the_page_keeps_working(name, data, message, mnist5k):
    at = upload_pictures(open_classify(), [(name, data), ("digit.png", drawn_digit(mnist5k, 0))])
    assert any(e.value.startswith(f"{name}: ") and message in e.value for e in at.error)
    assert prediction(at)  # the good picture beside it is still classified


@pytest.mark.parametrize("name, data", [
    ("gray16.png", sixteen_bit_png()), ("cmyk.jpg", image_bytes((0, 255, 255, 0), (40, 40), "CMYK", "JPEG")),
    ("rgba.png", image_bytes((255, 0, 0, 128), (40, 40), "RGBA")), ("palette.png", palette_with_transparency()),
    ("rotated.jpg", exif_rotated_jpeg()), ("animated.gif", animated_gif()),
])
def test_every_image_mode_is_classified(name, data):
    at = upload_pictures(open_classify(), [(name, data)])
    assert not at.error and "with probability" in prediction(at)


class RunsCode:
    """A pickle payload: unpickling it would create a file (proof that code ran)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def upload_model(at, name, data):
    by_label(at.radio, "Model").set_value("upload").run()
    uploader(at, "classify.model_file").upload(name, data).run()
    assert not at.exception
    return at


def test_a_pickle_model_is_refused_and_its_code_never_runs(tmp_path):
    marker = tmp_path / "code-ran"
    at = upload_model(open_classify(), "model.pt", pickle.dumps(RunsCode(marker)))
    assert any("never opens one" in e.value for e in at.error)
    assert not marker.exists()


def test_a_safetensors_for_another_architecture_is_refused(tmp_path):
    card = ModelCard("small-cnn", tuple("0123456789"), (1, 28, 28), (0.13,), (0.3,))
    path = save_model(tmp_path / "wrong.safetensors", build_model("article-cifar10", (1, 28, 28), 10), card)
    at = upload_model(open_classify(), "wrong.safetensors", path.read_bytes())
    assert any("cannot be used: weights do not fit small-cnn" in e.value for e in at.error)


@pytest.mark.parametrize("data, message", [
    (b"not a safetensors file at all", "my-digits.safetensors is not a readable .safetensors file"),
    (b"version https://git-lfs.github.com/spec/v1\noid sha256:4d7a2146\nsize 409600\n",
     "my-digits.safetensors is a Git LFS pointer, not the model itself: run `git lfs pull`"),
])
def test_a_broken_model_file_is_named_as_the_user_named_it(data, message):
    at = upload_model(open_classify(), "my-digits.safetensors", data)
    assert any(message in e.value for e in at.error)
    assert not any("upload.safetensors" in e.value for e in at.error)


def test_an_uploaded_good_model_is_used(tmp_path):
    card = ModelCard("article-cifar10", ("cat", "dog"), (3, 32, 32), (0.5,) * 3, (0.25,) * 3)
    path = save_model(tmp_path / "pets.safetensors", build_model("article-cifar10", (3, 32, 32), 2), card)
    at = upload_model(open_classify(), "pets.safetensors", path.read_bytes())
    assert not at.error and prediction(at).split("**")[1] in ("cat", "dog")


def test_a_drawing_sent_from_the_pad_is_classified(mnist5k):
    at = open_classify()
    by_label(at.radio, "Picture from").set_value("drawing").run()
    assert not at.exception and "with probability" not in " ".join(m.value for m in at.markdown)
    at.session_state["classify.pad.png"] = drawn_digit(mnist5k, 7)  # what the pad's "Classify my drawing" sends
    at.run()
    assert prediction(at).startswith(f"**{int(mnist5k.test.labels[7])}**")


@pytest.mark.slow
def test_a_model_trained_on_the_trainer_page_classifies_here_and_lends_its_filters(mnist5k):
    at = open_app_page("app_pages/trainer.py")
    by_label(at.number_input, "Epochs").set_value(1).run()
    by_label(at.button, "Train").click().run()
    run_to_the_end(at)
    at.switch_page("app_pages/classify.py").run()
    model_choice = by_label(at.radio, "Model")
    run_id = at.session_state["state.runs"][0].run_id  # the choice's value, which does not change with the language
    assert "run #1 from the CNN trainer: small-cnn on mnist5k" in model_choice.options
    model_choice.set_value(run_id).run()
    by_label(at.radio, "Picture from").set_value("drawing").run()
    at.session_state["classify.pad.png"] = drawn_digit(mnist5k, 3)
    at.run()
    assert not at.exception and prediction(at).startswith(f"**{int(mnist5k.test.labels[3])}**")
    at.switch_page("app_pages/convolution.py").run()  # its first convolution's filters, on the Convolution page
    by_label(at.radio, "Kernel").set_value("from a trained model").run()
    by_label(at.selectbox, "Model").set_value(run_id).run()
    by_label(at.slider, "Filter of its first convolution").set_value(5).run()
    model, _ = at.session_state["state.runs"][0].model()
    weights = model[1].weight[5, 0].detach().double().numpy()  # after Normalize, the first Conv2d
    table = at.dataframe[0].value  # input × weight = product, cell by cell
    shown = [[float(cell.split(" × ")[1].split(" = ")[0].replace("−", "-")) for cell in row] for row in table.values]
    assert shown == [[round(float(w), 3) + 0.0 for w in row] for row in weights] and not at.exception
