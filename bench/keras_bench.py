"""dlplay against the article's own Keras code: the §5.3 CIFAR-10 CNN trained on the same data, side by side.

Run: python bench/keras_bench.py [--rounds 5] [--images 6400] [--venv bench/.keras-venv]

TensorFlow is not a dependency of dlplay. This bench creates (first run, a few minutes; later runs reuse it) a
virtual environment of its own with tensorflow-cpu, and runs the Keras side there in a subprocess
(bench/keras_worker.py), which waits for commands so that the two alternate: a Keras epoch, a dlplay epoch, and so
on, each round's order swapped, a warm-up round first. Same CIFAR-shaped images (random pixels: speed does not
depend on content), batch 64, Adam at Keras' default learning rate, no augmentation, constant learning rate.
dlplay trains with its Trainer and the device's fast path (pick_device("auto")); Keras prepares its data as the
article does (float32 / 255 once, before fit) while dlplay converts each uint8 batch as it goes.
It prints each side's median images/s and their ratio, then the latency of one image: Keras' model.predict and
model(x), dlplay's Upload & classify path (preprocess a picture, then probabilities) and a bare model call.
"""
import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from timing import median_seconds  # noqa: E402  (bench/, this script's folder)

from dlplay.checkpoint import ModelCard  # noqa: E402
from dlplay.classify import preprocess, probabilities  # noqa: E402
from dlplay.data import ImageSet  # noqa: E402
from dlplay.device import configure_threads, pick_device  # noqa: E402
from dlplay.models import build_model  # noqa: E402
from dlplay.training.trainer import Trainer, build_optimizer  # noqa: E402

TENSORFLOW = "tensorflow-cpu==2.21.0"
KERAS_LR = 1e-3  # Keras' Adam default
BATCH_SIZE = 64


def keras_python(venv: Path) -> Path:
    """The TensorFlow environment's Python, created on first use."""
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"creating {venv} with {TENSORFLOW} (once; later runs reuse it)...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", TENSORFLOW], check=True)
    return python


class KerasSide:
    """The Keras worker process, driven line by line."""

    def __init__(self, python: Path, data_file: Path):
        self.process = subprocess.Popen([str(python), str(REPO / "bench" / "keras_worker.py"), str(data_file)],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.version = self._read().removeprefix("ready ")

    def _read(self) -> str:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the Keras worker ended; run it by hand to see why")
        return line.strip()

    def ask(self, command: str) -> list[float]:
        """Send a command and return the numbers it printed."""
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return [float(v) for v in self._read().split()]

    def close(self) -> None:
        """Let the worker end."""
        self.process.stdin.write("quit\n")
        self.process.stdin.close()
        self.process.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds (after one warm-up round)")
    parser.add_argument("--images", type=int, default=6400)
    parser.add_argument("--venv", type=Path, default=REPO / "bench" / ".keras-venv")
    args = parser.parse_args()

    generator = np.random.default_rng(0)
    images_nhwc = generator.integers(0, 256, (args.images, 32, 32, 3), dtype=np.uint8)
    labels = generator.integers(0, 10, args.images)
    threads = configure_threads()
    device = pick_device("auto")
    model = build_model("article-cifar10", (3, 32, 32), 10, seed=0)
    optimizer = build_optimizer("adam", model.parameters(), KERAS_LR)
    train = ImageSet(torch.from_numpy(images_nhwc).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(labels))

    def dlplay_epoch(round_: int) -> float:
        trainer = Trainer(model, optimizer, train, device, batch_size=BATCH_SIZE, epochs=1, seed=round_)
        return trainer.fit().epochs[0].images_per_sec

    with tempfile.TemporaryDirectory() as folder:
        data_file = Path(folder) / "data.npz"
        np.savez(data_file, images_nhwc=images_nhwc, labels=labels)
        keras = KerasSide(keras_python(args.venv), data_file)
    precision = f"autocast {device.autocast}" if device.autocast else "float32"
    print(f"dlplay: torch {torch.__version__}, {threads} threads, {device.name}, {precision}, "
          f"{'channels_last' if device.channels_last else 'NCHW'} | keras: {keras.version}")
    ours, theirs = [], []
    try:
        for round_ in range(args.rounds + 1):  # round 0 warms both up (Keras traces its graph) and is not counted
            if round_ % 2:
                mine, other = dlplay_epoch(round_), keras.ask("train")[0]
            else:
                other, mine = keras.ask("train")[0], dlplay_epoch(round_)
            if round_:
                ours.append(mine)
                theirs.append(other)
            print(f"  round {round_}{' (warm-up)' if not round_ else ''}: dlplay {mine:7,.0f} img/s, "
                  f"keras {other:7,.0f} img/s", flush=True)
        predict, call = keras.ask("latency")
    finally:
        keras.close()
    m_ours, m_theirs = statistics.median(ours), statistics.median(theirs)
    print(f"\ntraining, article-cifar10, {args.images} images, batch {BATCH_SIZE}, Adam: dlplay {m_ours:,.0f} img/s | "
          f"keras {m_theirs:,.0f} img/s | ratio {m_ours / m_theirs:.2f} (medians of {args.rounds})")
    print(f"best rounds: dlplay {max(ours):,.0f} img/s | keras {max(theirs):,.0f} img/s | ratio "
          f"{max(ours) / max(theirs):.2f}")

    model = model.cpu().eval()
    card = ModelCard("article-cifar10", tuple(str(i) for i in range(10)), (3, 32, 32), (0.5,) * 3, (0.5,) * 3)
    picture = Image.fromarray(images_nhwc[0])
    classify = median_seconds(lambda: probabilities(model, preprocess(picture, card).batch))
    one = train.images[:1].float() / 255
    with torch.no_grad():
        bare = median_seconds(lambda: model(one))
    print(f"1-image latency (median of 50): keras predict {predict * 1e3:.2f} ms, keras model(x) "
          f"{call * 1e3:.2f} ms | dlplay classify (preprocess + probabilities) {classify * 1e3:.2f} ms, "
          f"model(x) {bare * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
