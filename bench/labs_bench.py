"""The After training page's two labs, as the page runs them with its default settings, with their wall times.

Run: python bench/labs_bench.py
- FedAvg: mnist5k's 4,000 training digits dealt to 10 clients, IID and skewed (Dirichlet α = 0.1), 5 rounds of one
  local epoch (SGD 0.05, batch 32), against the same training on the pooled images; test accuracy per round.
- Transfer: a small CNN pre-trained for 3 epochs on digits 0–4, then digits 5–9 from 10 / 50 / 200 images per class,
  from scratch and transferred, for each choice of what stays fixed; test accuracy on 5–9.
"""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dlplay.after_training.federated import federated_lab  # noqa: E402
from dlplay.after_training.transfer import FREEZE, transfer_lab  # noqa: E402
from dlplay.data import load_dataset  # noqa: E402
from dlplay.device import configure_threads, pick_device  # noqa: E402


def main() -> None:
    print(f"{configure_threads()} threads")
    data, device = load_dataset("mnist5k"), pick_device("auto")
    print("FedAvg, 10 clients, 5 rounds of 1 local epoch: test accuracy after each round")
    for alpha in (None, 0.1):  # the pooled arm does not depend on the split: it runs once
        start = time.perf_counter()
        lab = federated_lab(data, device, 10, alpha, 5, compare_pooled=alpha is None)
        arms = [("pooled (centralised)", lab.pooled)] if lab.pooled else []
        arms.append(("FedAvg IID" if alpha is None else f"FedAvg α = {alpha}", lab.federated))
        for name, history in arms:
            print(f"  {name:22s} {' '.join(f'{r.accuracy:.1%}' for r in history)}")
        print(f"  ({time.perf_counter() - start:.1f} s for {', '.join(name for name, _ in arms)})")
    print("Transfer lab: digits 5–9 from N images per class, scratch → transferred (test accuracy on 5–9)")
    for freeze in FREEZE:
        start = time.perf_counter()
        pretrained, results = transfer_lab(data, device, freeze=freeze, pretrain_epochs=3)
        cells = "  ".join(f"{r.per_class}: {r.scratch:.1%} → {r.transferred:.1%}" for r in results)
        print(f"  fixed: {freeze:17s} (0–4 net {pretrained:.1%})  {cells}  ({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
