"""The cores dlplay may use are the process's, not the machine's: its affinity mask (taskset) and a cgroup CPU
quota (a container's --cpus) lower the count that sizes the training slots, the thread pools and torchrun's split."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dlplay.device import cgroup_cpu_quota, usable_cores

REPO = Path(__file__).resolve().parents[2]


def cgroups(tmp_path: Path, membership: str, files: dict[str, str]) -> tuple[Path, Path]:
    """A /proc/self/cgroup text and a cgroup file tree (relative path -> contents) under tmp_path."""
    proc = tmp_path / "cgroup"
    proc.write_text(membership)
    root = tmp_path / "fs"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return proc, root


def test_a_cgroup_v2_quota_is_the_tightest_along_the_path(tmp_path):
    proc, root = cgroups(tmp_path, "0::/machine/app\n", {"machine/app/cpu.max": "max 100000\n",
                                                          "machine/cpu.max": "150000 100000\n",
                                                          "cpu.max": "400000 100000\n"})
    assert cgroup_cpu_quota(proc, root) == 1.5


def test_a_cgroup_v1_quota_is_read_from_the_cpu_controller(tmp_path):
    proc, root = cgroups(tmp_path, "4:memory:/x\n3:cpu,cpuacct:/docker/abc\n",
                         {"cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "200000\n",
                          "cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000\n"})
    assert cgroup_cpu_quota(proc, root) == 2.0


@pytest.mark.parametrize("membership, files", [
    ("0::/\n", {"cpu.max": "max 100000\n"}),  # v2, no limit
    ("1:cpu:/\n", {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}),  # v1, no limit
    ("0::/\n", {}),  # nothing readable
    ("0::/\n", {"cpu.max": "garbage\n"}),
])
def test_no_quota_is_none(tmp_path, membership, files):
    assert cgroup_cpu_quota(*cgroups(tmp_path, membership, files)) is None


def test_no_cgroup_file_at_all_is_none(tmp_path):
    assert cgroup_cpu_quota(tmp_path / "missing", tmp_path) is None


def test_this_process_counts_the_cores_it_may_run_on():
    assert 1 <= usable_cores() <= len(os.sched_getaffinity(0)) <= (os.cpu_count() or 1)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="affinity masks are a Linux call")
def test_a_process_pinned_to_one_core_uses_one_thread_and_one_slot():
    """As under `taskset -c N`: a real child process whose affinity is one core."""
    one = min(os.sched_getaffinity(0))
    code = ("from dlplay.device import configure_threads, usable_cores; "
            "from dlplay.training.jobs.scheduler import Scheduler, default_capacity; "
            "print(usable_cores(), configure_threads(), default_capacity(usable_cores(), 0))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)},
                          preexec_fn=lambda: os.sched_setaffinity(0, {one}))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "1", "1"]
