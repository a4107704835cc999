"""Every deployable form of the bundled digit model side by side: file size, 1-image and batch latency on this
machine, and test accuracy on mnist5k's 1,000 held-out digits.

Run: python bench/deploy_bench.py [--rounds 3]
Each round exports the model to ONNX (opset 18), quantizes it with ONNX Runtime (static int8, 256 calibration
images) and times PyTorch (float32, eager, this process's threads) and ONNX Runtime (CPU) on the same images, one
after the other; latencies are medians of 30 calls in a round, then the median over rounds.
"""
import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dlplay.classify import load_bundled_model  # noqa: E402
from dlplay.data import load_dataset  # noqa: E402
from dlplay.deploy import LATENCY_BATCH, deployment_report  # noqa: E402
from dlplay.device import configure_threads  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {configure_threads()} threads")
    model, card = load_bundled_model()
    data = load_dataset("mnist5k")
    images, labels = data.test.images.float() / 255, data.test.labels
    rounds = []
    for _ in range(args.rounds):
        with tempfile.TemporaryDirectory() as folder:
            rounds.append(deployment_report(model, card, folder, images, labels, data.train.images[:256].float() / 255))
    reference = statistics.median(r[0].latency_one for r in rounds)
    print(f"{'form':42s} {'size KB':>8s} {'accuracy':>8s} {'1 image ms':>10s} {LATENCY_BATCH:>3d} images ms "
          f"{'speed-up (1 image)':>18s} {'max |dlogit|':>12s} {'same class':>10s}")
    for i, first in enumerate(rounds[0]):
        one = statistics.median(r[i].latency_one for r in rounds)
        batch = statistics.median(r[i].latency_batch for r in rounds)
        print(f"{first.name:42s} {first.size_bytes / 1024:8.1f} {first.accuracy:8.2%} {one * 1000:10.3f} "
              f"{batch * 1000:13.2f} {reference / one:17.2f}x {first.agreement.max_difference:12.1e} "
              f"{first.agreement.same_prediction:10.1%}")


if __name__ == "__main__":
    main()
