"""decode_image: the one safe way to open an image, on every kind of file a user may bring."""
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from dlplay.classify import SAMPLE_PHOTOS
from dlplay.images import ImageRejected, decode_image
from helpers import image_bytes


def test_real_photos_decode_to_rgb():
    photos = sorted(SAMPLE_PHOTOS.glob("*"))  # the photos the package ships (the repository stands alone)
    assert len(photos) == 5
    for photo in photos:
        image = decode_image(photo.read_bytes())
        assert image.mode in ("RGB", "L") and min(image.size) >= 8


@pytest.mark.parametrize("data, message", [
    (b"", "empty"),
    (b"hello, I am text pretending to be a PNG", "not an image"),
    (b"<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'/>", "not an image"),
])
def test_non_images_are_refused(data, message):
    with pytest.raises(ImageRejected, match=message):
        decode_image(data)


def test_truncated_jpeg_is_refused():
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, "JPEG")
    data = buffer.getvalue()
    for cut in (len(data) // 2, 200):  # cut inside the pixel data, and inside the header
        with pytest.raises(ImageRejected, match="truncated or corrupt"):
            decode_image(data[:cut])


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels (a decompression bomb's calling card)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = chunk(b"IDAT", zlib.compress(b"\x00" * 10))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + pixels + chunk(b"IEND", b"")


def test_huge_declared_size_is_refused_before_decoding():
    with pytest.raises(ImageRejected, match="too many pixels; the limit is 50 megapixels"):
        decode_image(png_declaring(20000, 20000))  # Pillow's own bomb check fires first
    with pytest.raises(ImageRejected, match="9000×9000 pixels; the limit is 50 megapixels"):
        decode_image(png_declaring(9000, 9000))  # under Pillow's limit, over dlplay's: refused before decoding


def test_caps_on_bytes_and_sides():
    with pytest.raises(ImageRejected, match="limit is"):
        decode_image(image_bytes(), max_bytes=10)
    with pytest.raises(ImageRejected, match="at least 8"):
        decode_image(image_bytes(size=(4, 30)))


def test_sixteen_bit_grayscale_keeps_its_tonal_range():
    values = np.array([[0, 16384, 32768, 65535] * 2] * 8, dtype=np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(values).save(buffer, "PNG")
    image = decode_image(buffer.getvalue())
    assert image.mode == "L"
    assert np.asarray(image)[0, :4].tolist() == [0, 64, 128, 255]


def test_cmyk_jpeg_becomes_rgb():
    image = decode_image(image_bytes((0, 255, 255, 0), size=(16, 16), mode="CMYK", fmt="JPEG", quality=100))
    assert image.mode == "RGB"
    r, g, b = np.asarray(image)[8, 8].tolist()
    assert r > 200 and g < 60 and b < 60  # cyan 0, magenta 100%, yellow 100% = red


def test_transparency_is_flattened_onto_white():
    rgba = decode_image(image_bytes((255, 0, 0, 0), mode="RGBA"))
    assert rgba.mode == "RGB" and np.asarray(rgba)[0, 0].tolist() == [255, 255, 255]
    half = decode_image(image_bytes((0, 0, 0, 128), mode="RGBA"))
    assert 120 <= np.asarray(half)[0, 0, 0] <= 135
    palette = Image.new("P", (16, 16), 1)
    palette.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    buffer = io.BytesIO()
    palette.save(buffer, "PNG", transparency=1)
    assert np.asarray(decode_image(buffer.getvalue()))[0, 0].tolist() == [255, 255, 255]
    gray_alpha = decode_image(image_bytes((0, 255), mode="LA"))
    assert gray_alpha.mode == "L" and np.asarray(gray_alpha)[0, 0] == 0


def test_bilevel_and_palette_images_convert():
    assert decode_image(image_bytes(1, mode="1")).mode == "L"
    assert decode_image(image_bytes(3, mode="P")).mode == "RGB"


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    assert decode_image(buffer.getvalue()).size == (20, 40)


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("L", (16, 16), value) for value in (10, 250)]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100)
    image = decode_image(buffer.getvalue())
    assert abs(int(np.asarray(image.convert("L"))[0, 0]) - 10) < 8


def test_jpeg_draft_mode_decodes_smaller():
    data = image_bytes((90, 120, 30), size=(1600, 1200), fmt="JPEG")
    assert decode_image(data, draft_size=(200, 200)).size[0] <= 400


@pytest.mark.parametrize("mode, side, refused", [
    ("1", 3000, True),  # a few kilobytes of 1-bit PNG: 9 megapixels that decode to 18 MB
    ("RGBA", 1000, True),  # transparency: the RGBA copies and the composite, 19 MB
    ("L", 1000, False),  # 1 MB
    ("RGB", 1500, False),  # 6.75 MB
])
def test_the_memory_a_decode_takes_is_costed_from_the_header_by_mode(mode, side, refused):
    data = image_bytes(0, size=(side, side), mode=mode)
    assert len(data) < 200_000  # small files all
    if refused:
        with pytest.raises(ImageRejected, match=rf"^Decoding this {side}×{side} image \({mode}\) would take "
                                                r"\d+ MB of memory; the limit is 10 MB\.$"):
            decode_image(data, max_decoded_mb=10)
    else:
        assert decode_image(data, max_decoded_mb=10).size == (side, side)
    assert decode_image(data, max_decoded_mb=100).mode in ("L", "RGB")  # an operator can raise the limit
