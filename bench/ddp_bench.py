"""Images/s of one training process against two under torchrun (DistributedDataParallel), on this machine.

Run: python bench/ddp_bench.py [--rounds 3] [--processes 2] [--epochs 3] [--model small-cnn]
Each round runs `python -m dlplay train` and then `torchrun --standalone --nproc_per_node=N -m dlplay train` with
the same global batch, alternating which goes first; images/s is read from each run's epoch lines (all processes
together; the first epoch is left out as warm-up), and the medians over rounds are printed with their ratio.
On a GPU box the same command compares one GPU with N (NCCL); on this 2-core CPU the two processes share the cores,
so expect little or no gain.
"""
import argparse
import re
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EPOCH = re.compile(r"^epoch (\d+)/\d+ .* ([\d,]+) img/s", re.MULTILINE)


def images_per_second(command: list[str]) -> float:
    """The median images/s over a run's epochs after the first."""
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
    speeds = [float(rate.replace(",", "")) for epoch, rate in EPOCH.findall(done.stderr) if int(epoch) > 1]
    return statistics.median(speeds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--model", default="small-cnn")
    args = parser.parse_args()
    train = ["-m", "dlplay", "train", "--epochs", str(args.epochs), "--model", args.model, "--batch-size", "256"]
    commands = {"1 process": [sys.executable, *train],
                f"{args.processes} processes": [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                f"--nproc_per_node={args.processes}", *train]}
    speeds: dict[str, list[float]] = {name: [] for name in commands}
    for r in range(args.rounds):
        for name, command in (commands.items() if r % 2 == 0 else reversed(commands.items())):
            speeds[name].append(images_per_second(command))
            print(f"  round {r + 1}, {name}: {speeds[name][-1]:,.0f} img/s", flush=True)
    one, many = (statistics.median(v) for v in speeds.values())
    print(f"{args.model}, global batch 256: 1 process {one:,.0f} img/s | {args.processes} processes {many:,.0f} "
          f"img/s | ratio {many / one:.2f} (medians of {args.rounds})")


if __name__ == "__main__":
    main()
