"""Every deployable and compressed form of the bundled digit model side by side: file size, 1-image and batch
latency on this machine, and test accuracy on mnist5k's 1,000 held-out digits.

Run: python bench/deploy_bench.py [--rounds 3]
Part 1 (deployment): each round exports the model to ONNX (opset 18), quantizes it with ONNX Runtime (static int8,
256 calibration images) and times PyTorch (float32, eager, this process's threads) and ONNX Runtime (CPU) on the
same images, one after the other. Part 2 (compression): the original, pruned at 50/75/90%, int8 and a student
distilled for 5 epochs, as the After training page measures them. Latencies are medians of 30 calls in a round,
then the median over rounds.
"""
import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dlplay.after_training.compress import compression_report  # noqa: E402
from dlplay.after_training.deploy import LATENCY_BATCH, deployment_report  # noqa: E402
from dlplay.classify import load_bundled_model  # noqa: E402
from dlplay.data import load_dataset  # noqa: E402
from dlplay.device import configure_threads, pick_device  # noqa: E402


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
    compression = [compression_report(model, card, data, pick_device("auto"), [0.5, 0.75, 0.9], True, 5)
                   for _ in range(args.rounds)]
    print(f"\n{'form':34s} {'file KB':>8s} {'gzip KB':>8s} {'parameters':>10s} {'1 image ms':>10s} "
          f"{LATENCY_BATCH:>3d} images ms {'accuracy':>8s}  (accuracy: median over rounds)")
    for i, first in enumerate(compression[0]):
        print(f"{first.name:34s} {first.file_bytes / 1024:8.1f} {first.gzip_bytes / 1024:8.1f} {first.parameters:10,d} "
              f"{statistics.median(r[i].latency_one for r in compression) * 1000:10.3f} "
              f"{statistics.median(r[i].latency_batch for r in compression) * 1000:13.2f} "
              f"{statistics.median(r[i].accuracy for r in compression):8.2%}")


if __name__ == "__main__":
    main()
