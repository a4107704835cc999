"""Time a full optimizer race (8 torch.optim optimizers x 500 steps on a 2-D surface) against a bare loop.

Run: python bench/optim_race_bench.py [--repeats 7]
The reference is the same 4,000 optimizer steps as a bare loop, one optimizer after another, without recording
anything; dlplay's race runs the optimizers side by side (one surface evaluation and backward pass per step for
all of them), records every point and loss and checks for divergence. Medians and their ratio are printed; the
target is under 0.5 s.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dlplay.lessons.optimizers import RACE_OPTIMIZERS, SURFACES, race  # noqa: E402


def bare(surface, steps: int) -> None:
    for cls, hyper in RACE_OPTIMIZERS.values():
        point = torch.tensor(surface.start, dtype=torch.float64, requires_grad=True)
        optimizer = cls([point], **hyper)
        for _ in range(steps):
            optimizer.zero_grad()
            surface.f(point[0], point[1]).backward()
            optimizer.step()


def dlplay_race(surface, steps: int) -> None:
    race(surface, list(RACE_OPTIMIZERS), surface.start, steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)  # two-element tensors: threads only add overhead
    for name in ("Rosenbrock", "Rastrigin"):
        ours, ref = [], []
        for r in range(args.repeats + 1):
            for fn, out in ((dlplay_race, ours), (bare, ref)) if r % 2 else ((bare, ref), (dlplay_race, ours)):
                start = time.perf_counter()
                fn(SURFACES[name], 500)
                if r:
                    out.append(time.perf_counter() - start)
        a, b = statistics.median(ours), statistics.median(ref)
        print(f"{name:11s}: race of 8 x 500 steps {a:.3f} s | bare loop {b:.3f} s | ratio {a / b:.2f} | "
              f"target < 0.5 s: {'met' if a < 0.5 else 'NOT met'}")


if __name__ == "__main__":
    main()
