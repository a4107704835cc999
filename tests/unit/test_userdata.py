"""Importing a user's zip of class folders: layouts that must work and archives that must be refused."""
import io
import tempfile

import pytest
import torch

from dlplay.userdata import ZipLimits, ZipRejected, extract_zip, import_zip
from helpers import class_folders_zip, image_bytes, noise_png, zip_bytes


def load(data: bytes, **kwargs):
    return import_zip(io.BytesIO(data), **kwargs)


def test_class_folders_with_wrapper_macos_and_hidden_files():
    data = class_folders_zip({"cats": 10, "dogs": 10}, prefix="pets/",
                             extra={"__MACOSX/pets/cats/._0.png": b"junk", "pets/.DS_Store": b"junk",
                                    "pets/cats/.hidden.png": b"junk", "pets/readme.txt": b"hello"})
    result = load(data, image_size=32)
    data_set = result.dataset
    assert data_set.class_names == ("cats", "dogs") and data_set.input_shape == (3, 32, 32)
    assert (len(data_set.train), len(data_set.test)) == (16, 4)  # 20% of each class held out
    assert torch.bincount(data_set.test.labels).tolist() == [2, 2]
    assert result.skipped == [("pets/readme.txt", "not inside a class folder")]


def test_train_and_test_folders_are_used_as_given():
    files = {f"train/{c}/{i}.png": noise_png(i + 10 * k) for k, c in enumerate("ab") for i in range(5)}
    files |= {f"test/{c}/{i}.png": noise_png(100 + i + 10 * k) for k, c in enumerate("ab") for i in range(2)}
    result = load(zip_bytes(files))
    assert (len(result.dataset.train), len(result.dataset.test)) == (10, 4)
    assert result.dataset.class_names == ("a", "b")


def test_grayscale_images_give_one_channel():
    result = load(class_folders_zip({"0": 3, "1": 3}, gray=True), image_size=28)
    assert result.dataset.input_shape == (1, 28, 28)


def test_corrupt_images_are_listed_and_skipped():
    data = class_folders_zip({"cats": 4, "dogs": 4}, extra={"cats/broken.png": b"\x89PNG\r\n\x1a\nnot really",
                                                              "dogs/empty.jpg": b""})
    result = load(data)
    assert len(result.dataset.train) + len(result.dataset.test) == 8
    reasons = dict(result.skipped)
    assert "truncated or corrupt" in reasons["cats/broken.png"] and "empty" in reasons["dogs/empty.jpg"]


def test_html_like_class_names_are_kept_verbatim():
    name = "<img src=x onerror=alert(1)> <b>bold"  # no "/": that would be a sub-folder
    result = load(zip_bytes({f"{name}/{i}.png": noise_png(i) for i in range(3)} |
                            {f"plain/{i}.png": noise_png(9 + i) for i in range(3)}))
    assert name in result.dataset.class_names


@pytest.mark.parametrize("member", ["../evil.png", "a/../../evil.png", "/etc/evil.png", "C:/evil.png"])
def test_paths_escaping_the_folder_are_refused(tmp_path, member):
    data = zip_bytes({"cats/0.png": noise_png(0), "dogs/0.png": noise_png(1), member: noise_png(2)})
    with pytest.raises(ZipRejected, match="escapes its folder"):
        extract_zip(io.BytesIO(data), tmp_path / "session" / "upload")
    assert not list(tmp_path.rglob("evil.png"))
    with pytest.raises(ZipRejected, match="escapes its folder"):
        load(data)


def test_symlinks_are_refused():
    data = zip_bytes({"cats/0.png": noise_png(0), "dogs/0.png": noise_png(1)},
                     symlinks={"cats/link.png": "/etc/passwd"})
    with pytest.raises(ZipRejected, match="symbolic link"):
        load(data)


@pytest.mark.parametrize("names", [
    ["cats/x.png", "cats/x.png/y.png"],  # a file, then a folder of the same name
    ["cats/x.png/y.png", "cats/x.png"],  # a folder, then a file of the same name
    ["cats/" + "a" * 300 + ".png"],  # longer than a file name may be
])
def test_names_that_cannot_be_unpacked_are_one_sentence(names):
    data = zip_bytes({**{name: noise_png(i) for i, name in enumerate(names)}, "dogs/0.png": noise_png(9)})
    with pytest.raises(ZipRejected, match=r"cannot be unpacked \('cats/.*Rename it and try again\.$"):
        load(data)


def bilevel_png(side: int, seed: int) -> bytes:
    """A 1-bit PNG of a few kilobytes that decodes to side × side pixels (a white block tells it apart)."""
    from PIL import Image, ImageDraw
    picture = Image.new("1", (side, side), 0)
    ImageDraw.Draw(picture).rectangle((0, 0, 100 + 80 * seed, 300 + 40 * seed), fill=1)
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return buffer.getvalue()


def test_what_the_images_decode_to_together_is_costed_from_their_headers():
    data = zip_bytes({f"{c}/{i}.png": bilevel_png(2000, 10 * j + i) for j, c in enumerate("ab") for i in range(3)})
    assert len(data) < 50_000  # six pictures of 4 megapixels each
    with pytest.raises(ZipRejected, match=r"^The zip's images decode to 24 megapixels together; the limit is 10\. "
                                          r"Use fewer or smaller pictures\.$"):
        load(data, limits=ZipLimits(max_megapixels=10))
    assert load(data, limits=ZipLimits(max_megapixels=100)).dataset.num_classes == 2


def test_what_the_images_take_once_resized_is_costed_before_any_is_decoded():
    data = class_folders_zip({"a": 3, "b": 3})  # 6 images × 150 × 150 × 3 bytes = 0.39 MB
    with pytest.raises(ZipRejected, match=r"^The zip's 6 images at 150×150 would take 0\.4 MB; the limit is "
                                          r"0\.3 MB\. "):
        load(data, image_size=150, limits=ZipLimits(max_dataset_mb=0.3, max_seconds=0))  # refused before reading
    assert load(data, image_size=150, limits=ZipLimits(max_dataset_mb=0.4)).dataset.input_shape[1:] == (150, 150)


def test_reading_the_images_has_a_time_budget_for_the_whole_zip():
    data = class_folders_zip({"a": 3, "b": 3})
    with pytest.raises(ZipRejected, match=r"^Reading the zip's images took longer than 0 s \(0 of 6 read\)\. "):
        load(data, limits=ZipLimits(max_seconds=0))  # a budget already spent: refused before the first decode
    assert load(data, limits=ZipLimits(max_seconds=600)).dataset.num_classes == 2


def test_too_many_files_is_refused():
    with pytest.raises(ZipRejected, match="12 entries; the limit is 10"):
        load(class_folders_zip({"a": 6, "b": 6}), limits=ZipLimits(max_entries=10))


def test_a_zip_bomb_is_stopped_while_extracting():
    bomb = zip_bytes({"a/0.png": b"\x00" * (5 * 1024 * 1024), "b/0.png": noise_png(0)})
    assert len(bomb) < 50_000
    with pytest.raises(ZipRejected, match="zip bomb"):
        load(bomb)
    with pytest.raises(ZipRejected, match="larger than"):
        load(bomb, limits=ZipLimits(max_member_bytes=1024 * 1024, max_ratio=1e9))


def test_one_class_is_a_clear_error():
    with pytest.raises(ZipRejected, match="at least 2 are needed"):
        load(class_folders_zip({"cats": 5}))


def test_not_a_zip_is_a_clear_error():
    with pytest.raises(ZipRejected, match="not a readable .zip"):
        load(image_bytes())


def test_nothing_extracted_stays_on_disk_after_an_import_or_a_refusal(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where import_zip's scratch folder goes
    load(class_folders_zip({"a": 3, "b": 3}))
    with pytest.raises(ZipRejected):
        load(class_folders_zip({"only": 3}))
    assert list(tmp_path.iterdir()) == []


def test_a_zip_of_identical_pictures_or_single_images_gets_a_sentence_not_a_wrong_lesson():
    same = image_bytes((120, 30, 200))
    with pytest.raises(ZipRejected, match="the very same picture"):
        load(zip_bytes({f"{c}/{i}.png": same for c in ("cats", "dogs") for i in range(5)}))
    with pytest.raises(ZipRejected, match="no test images.*at least 2 images.*'cats'"):
        load(class_folders_zip({"cats": 1, "dogs": 1}))


def test_a_channel_that_never_varies_is_centred_not_divided_by_zero():
    from dlplay.data import MIN_STD
    from dlplay.models import build_model
    red = load(zip_bytes({f"{c}/{i}.png": image_bytes((200, 10 * i, 30 * (c == "b"))) for c in "ab"
                          for i in range(6)})).dataset  # red is 200 everywhere
    mean, std = red.channel_stats()
    assert std[0] == pytest.approx(MIN_STD) and std[1] > MIN_STD
    model = build_model("small-cnn", red.input_shape, 2, mean, std)
    assert torch.isfinite(model(red.train.images.float() / 255)).all()
