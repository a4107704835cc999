"""Time one picture through Upload & classify's path: decode + preprocess + predict + Grad-CAM (CPU).

Run: python bench/classify_bench.py [--repeats 15]
Pictures are made here: a 12-megapixel JPEG (4000x3000) and a 1-megapixel PNG (1000x1000) of a real photo
scaled up. The reference is the same path with a plain full-size Pillow decode (no JPEG draft mode), measured
side by side; medians are printed with the ratio. Targets from the issue: under 150 ms and 40 ms.
"""
import argparse
import io
import statistics
import sys
import time
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dlplay.classify import SAMPLE_PHOTOS, load_bundled_model, preprocess, probabilities  # noqa: E402
from dlplay.device import configure_threads  # noqa: E402
from dlplay.images import decode_image, to_standard_mode  # noqa: E402
from dlplay.inside import grad_cam  # noqa: E402


def encoded(size, fmt: str) -> bytes:
    photo = Image.open(SAMPLE_PHOTOS / "chelsea.png").convert("RGB").resize(size, Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    photo.save(buffer, fmt, quality=90) if fmt == "JPEG" else photo.save(buffer, fmt)
    return buffer.getvalue()


def classify(data: bytes, model, card, draft: bool) -> None:
    """The page's path for one picture; draft=False decodes the full-size image first (the reference)."""
    image = decode_image(data, draft_size=(448, 448)) if draft else to_standard_mode(Image.open(io.BytesIO(data)))
    prepared = preprocess(image, card)
    target = int(probabilities(model, prepared.batch)[0].argmax())
    grad_cam(model, prepared.batch, target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    configure_threads()
    model, card = load_bundled_model()
    for label, data, target in (("12 MP JPEG", encoded((4000, 3000), "JPEG"), 150),
                                ("1 MP PNG", encoded((1000, 1000), "PNG"), 40)):
        ours, ref = [], []
        for r in range(args.repeats + 1):
            for draft, out in ((True, ours), (False, ref)) if r % 2 else ((False, ref), (True, ours)):
                start = time.perf_counter()
                classify(data, model, card, draft)
                if r:
                    out.append((time.perf_counter() - start) * 1000)
        a, b = statistics.median(ours), statistics.median(ref)
        print(f"{label:11s} ({len(data) / 1e6:.1f} MB): dlplay {a:6.1f} ms | full decode {b:6.1f} ms | "
              f"ratio {a / b:.2f} | target < {target} ms: {'met' if a < target else 'NOT met'}")


if __name__ == "__main__":
    main()
