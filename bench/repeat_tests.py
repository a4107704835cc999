"""Run the tests that train in other processes many times over, on one core and on all of them, and count the
failures: evidence that no test depends on how fast the machine is (issue 22).

    python bench/repeat_tests.py                  # the full plan below (about an hour on 2 cores)
    python bench/repeat_tests.py --scale 0.2      # a fifth of the rounds (at least one each)

Each round is a fresh `python -m pytest` of the group's files, pinned to its cores with the process's affinity mask
(what `taskset -c` sets), so the app counts them as its own (dlplay.device.usable_cores). One-core rounds run side
by side on different cores (each its own core), except Ray's, which starts one local cluster at a time. A --tiny-runs
round trains on a tenth of the images, so epochs take milliseconds: a test that raced the clock would fail there.
Prints one line per group and setting: rounds, failures, and the median and worst time of a round.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# group: (files, one-core rounds, all-core rounds, whether one-core rounds may run side by side)
PLAN = {
    "jobs": (["tests/unit/training/jobs/test_jobs.py"], 10, 5, True),
    "ray": (["tests/unit/training/jobs/test_ray_backend.py"], 10, 5, False),
    "trainer page": (["tests/app/test_trainer_page.py"], 3, 3, True),
    "torchrun": (["tests/unit/training/test_distributed.py"], 3, 3, True),
    "jobs --tiny-runs": (["tests/unit/training/jobs/test_jobs.py", "--tiny-runs"], 2, 2, True),
    "ray --tiny-runs": (["tests/unit/training/jobs/test_ray_backend.py", "--tiny-runs"], 2, 2, False),
}


def one_round(args: list[str], cores: set[int]) -> tuple[bool, float, str]:
    """One pytest run pinned to `cores`: (passed, seconds, its closing line)."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=REPO,
                          capture_output=True, text=True, preexec_fn=lambda: os.sched_setaffinity(0, cores))
    lines = [line for line in done.stdout.splitlines() if re.search(r"\d+ (passed|failed|error)", line)]
    closing = lines[-1].strip("= ") if lines else done.stdout[-300:]
    if done.returncode != 0:
        (REPO / "bench" / "repeat_failures.log").open("a").write(f"\n=== {args} on {cores}\n{done.stdout[-20000:]}")
    return done.returncode == 0, time.monotonic() - started, closing


def rounds(args: list[str], count: int, core_sets: list[set[int]]) -> list[tuple[bool, float, str]]:
    """`count` rounds, spread over `core_sets` side by side (one lane per set)."""
    lanes = len(core_sets)
    with ThreadPoolExecutor(lanes) as pool:
        return list(pool.map(lambda i: one_round(args, core_sets[i % lanes]), range(count)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="share of the planned rounds (at least one each)")
    parser.add_argument("--only", help="run only the groups whose name contains this")
    options = parser.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    print(f"{len(cores)} core(s): {cores}; Python {sys.version.split()[0]}", flush=True)
    total_failures = 0
    for name, (args, one_core, all_cores, side_by_side) in PLAN.items():
        if options.only and options.only not in name:
            continue
        for label, count, core_sets in (
                ("1 core", one_core, [{c} for c in cores] if side_by_side else [{cores[0]}]),
                (f"{len(cores)} cores", all_cores, [set(cores)])):
            count = max(1, round(count * options.scale))
            results = rounds(args, count, core_sets)
            failures = sum(not ok for ok, _, _ in results)
            total_failures += failures
            times = [seconds for _, seconds, _ in results]
            print(f"{name:18} {label:8} {count:3} rounds, {failures} failed; a round {statistics.median(times):6.1f} s "
                  f"median, {max(times):6.1f} s worst; last: {results[-1][2]}", flush=True)
    print(f"total failures: {total_failures}")
    sys.exit(1 if total_failures else 0)


if __name__ == "__main__":
    main()
