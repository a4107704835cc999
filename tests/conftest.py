"""Shared fixtures: the CPU device and the embedded dataset, loaded once per test session; --tiny-runs; and a
check at the end that no process the tests started outlives them."""
import ctypes
import os
import sys
import time

import pytest

from dlplay.data import Dataset, load_dataset
from dlplay.device import DeviceInfo, configure_threads, pick_device


@pytest.fixture(scope="session")
def cpu() -> DeviceInfo:
    configure_threads()
    return pick_device("cpu")


@pytest.fixture(scope="session")
def mnist5k() -> Dataset:
    return load_dataset("mnist5k")


@pytest.fixture(autouse=True, scope="session")
def runs_dir(tmp_path_factory):
    """Run checkpoints and downloads go to temporary folders, never the user's cache."""
    import os
    folder = tmp_path_factory.mktemp("runs")
    os.environ["DLPLAY_RUNS_DIR"] = str(folder)
    os.environ["DLPLAY_DATA_DIR"] = str(tmp_path_factory.mktemp("data"))  # downloads too: never the user's cache
    return folder


def pytest_addoption(parser):
    parser.addoption("--tiny-runs", action="store_true",
                     help="train the job tests' runs on a tenth of their images, so that epochs take milliseconds: "
                          "shows that no test depends on the machine being slow")


@pytest.fixture(scope="session")
def tiny_runs(request) -> bool:
    """Whether --tiny-runs was given."""
    return request.config.getoption("--tiny-runs")


PR_SET_CHILD_SUBREAPER = 36
LEAK_GRACE_SECONDS = 30.0


def pytest_configure(config):
    """Adopt every orphan of the tests (a worker whose zygote has gone), so the end-of-session check sees it."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session, exitstatus):
    """Fail the run if a process the tests started (a zygote, a training worker, Ray, torchrun, a server, Chromium)
    is still alive once every test and fixture has ended. The pages' schedulers are the server's: end them first,
    as the server does when it stops."""
    if "ui.state" in sys.modules:
        sys.modules["ui.state"].shutdown_schedulers()
    from helpers import descendants

    deadline = time.monotonic() + LEAK_GRACE_SECONDS
    while (left := descendants(os.getpid())) and time.monotonic() < deadline:
        time.sleep(0.2)
    if left:
        names = "\n  ".join(sorted(_command_line(pid) for pid in left))
        sys.stderr.write(f"\n{len(left)} process(es) started by the tests outlived them:\n  {names}\n")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _command_line(pid: int) -> str:
    try:
        return f"{pid}: " + open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()[:200]
    except OSError:
        return str(pid)
