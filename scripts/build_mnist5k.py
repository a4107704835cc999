"""Build dlplay/assets/mnist5k.npz from the 5,000-digit MNIST CSV (run once; the output is committed).

MNIST (Y. LeCun, C. Cortes, C. J. C. Burges) is distributed under CC BY-SA 3.0.
Usage: python scripts/build_mnist5k.py [path/to/mnist_5k.csv.gz]
"""
import gzip
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CSV = REPO.parent / "shared" / "data" / "mnist_5k.csv.gz"
OUT = REPO / "dlplay" / "assets" / "mnist5k.npz"
TEST_PER_CLASS = 100  # 10 classes x 100 = 1,000 test digits; the other 4,000 train
SPLIT_SEED = 0


def read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read rows of 784 pixels then the label; return images (N, 28, 28) uint8 and labels (N,) uint8."""
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    assert table.shape[1] == 785, table.shape
    assert table.min() >= 0 and table[:, :784].max() <= 255
    return table[:, :784].reshape(-1, 28, 28).astype(np.uint8), table[:, 784].astype(np.uint8)


def stratified_split(labels: np.ndarray, test_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Fixed split: for each class, a seeded shuffle puts `test_per_class` indices in test, the rest in train."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        test.append(idx[:test_per_class])
        train.append(idx[test_per_class:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def main() -> None:
    csv = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_CSV
    if not csv.exists():
        sys.exit(f"error: {csv} not found. The CSV (5,000 MNIST digits, one per row: 784 pixels, then the label) lives "
                 "in the project's shared data folder beside this repository (../shared/data/mnist_5k.csv.gz); give "
                 "its path as the argument. The built file, dlplay/assets/mnist5k.npz, is already in the repository.")
    images, labels = read_csv(csv)
    train, test = stratified_split(labels, TEST_PER_CLASS, SPLIT_SEED)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, x_train=images[train], y_train=labels[train], x_test=images[test], y_test=labels[test])
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.2f} MB): {len(train)} train, {len(test)} test")


if __name__ == "__main__":
    main()
