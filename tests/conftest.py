"""Shared fixtures: the CPU device and the embedded dataset, loaded once per test session."""
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
