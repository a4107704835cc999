"""The embedded dataset, the torchvision loaders on fixture files, and the offline-download message."""
import os
import pickle
import struct

import numpy as np
import pytest
import torch
from torchvision import datasets

from dlplay.data import (
    DATASETS,
    DatasetUnavailable,
    ImageSet,
    default_data_dir,
    load_dataset,
    sample_per_class,
    to_display,
)


def test_mnist5k_is_a_fixed_stratified_split(mnist5k):
    assert mnist5k.input_shape == (1, 28, 28)
    assert (len(mnist5k.train), len(mnist5k.test)) == (4000, 1000)
    assert torch.bincount(mnist5k.train.labels).tolist() == [400] * 10
    assert torch.bincount(mnist5k.test.labels).tolist() == [100] * 10
    assert mnist5k.train.images.dtype == torch.uint8 and int(mnist5k.train.images.max()) == 255
    again = load_dataset("mnist5k")
    assert torch.equal(again.test.images, mnist5k.test.images)


def test_mnist5k_train_and_test_do_not_overlap(mnist5k):
    train = {bytes(img.numpy()) for img in mnist5k.train.images}
    assert not any(bytes(img.numpy()) in train for img in mnist5k.test.images)


def test_channel_stats_match_numpy(mnist5k):
    mean, std = mnist5k.channel_stats()
    pixels = mnist5k.train.images.numpy().astype(np.float64) / 255
    assert mean[0] == pytest.approx(pixels.mean(), abs=1e-5)
    assert std[0] == pytest.approx(pixels.std(ddof=1), abs=1e-5)


def test_sample_per_class_and_display(mnist5k):
    sample = sample_per_class(mnist5k.train, per_class=3, seed=1)
    assert sample.labels.tolist() == [c for c in range(10) for _ in range(3)]
    pictures = to_display(sample.images)
    assert pictures[0].shape == (28, 28) and pictures[0].dtype == np.uint8
    colour = to_display(torch.zeros(2, 3, 5, 4, dtype=torch.uint8))
    assert colour[0].shape == (5, 4, 3)


def test_unknown_dataset_lists_the_choices():
    with pytest.raises(DatasetUnavailable, match="mnist5k"):
        load_dataset("imagenet")


def test_data_dir_defaults_to_cache_and_is_configurable(monkeypatch, tmp_path):
    monkeypatch.delenv("DLPLAY_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_data_dir() == tmp_path / "dlplay" / "data"
    monkeypatch.setenv("DLPLAY_DATA_DIR", str(tmp_path / "mine"))
    assert default_data_dir() == tmp_path / "mine"


def write_idx_images(path, images: np.ndarray) -> None:
    """IDX3: magic 2051, count, rows, cols, then uint8 pixels (big-endian header)."""
    path.write_bytes(struct.pack(">IIII", 2051, *images.shape) + images.tobytes())


def write_idx_labels(path, labels: np.ndarray) -> None:
    """IDX1: magic 2049, count, then uint8 labels."""
    path.write_bytes(struct.pack(">II", 2049, len(labels)) + labels.astype(np.uint8).tobytes())


@pytest.mark.parametrize("name, folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_mnist_family_reads_idx_files(tmp_path, name, folder):
    rng = np.random.default_rng(0)
    raw = tmp_path / folder / "raw"
    raw.mkdir(parents=True)
    expected = {}
    for split, n in (("train", 12), ("t10k", 5)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n)
        write_idx_images(raw / f"{split}-images-idx3-ubyte", images)
        write_idx_labels(raw / f"{split}-labels-idx1-ubyte", labels)
        expected[split] = (images, labels)
    data = load_dataset(name, tmp_path)
    assert data.input_shape == (1, 28, 28) and data.num_classes == 10
    assert np.array_equal(data.train.images[:, 0].numpy(), expected["train"][0])
    assert data.test.labels.tolist() == expected["t10k"][1].tolist()
    if name == "fashion-mnist":
        assert data.class_names[0] == "T-shirt/top"


def test_cifar10_reads_pickled_batches(tmp_path, monkeypatch):
    # The fixture batches cannot match CIFAR-10's published md5 sums, so check only that the files exist.
    monkeypatch.setattr(datasets.cifar, "check_integrity", lambda path, md5=None: os.path.isfile(path))
    rng = np.random.default_rng(0)
    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        rows = rng.integers(0, 256, (4, 3 * 32 * 32), dtype=np.uint8)  # CIFAR rows: R plane, G plane, B plane
        labels = rng.integers(0, 10, 4).tolist()
        (base / name).write_bytes(pickle.dumps({"data": rows, "labels": labels}))
        batches[name] = (rows, labels)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    (base / "batches.meta").write_bytes(pickle.dumps({"label_names": names}))
    data = load_dataset("cifar10", tmp_path)
    assert data.input_shape == (3, 32, 32) and len(data.train) == 20 and len(data.test) == 4
    rows, labels = batches["test_batch"]
    assert torch.equal(data.test.images, torch.from_numpy(rows.reshape(4, 3, 32, 32)))
    assert data.test.labels.tolist() == labels
    assert data.class_names == tuple(names)


def test_failed_download_names_dataset_folder_and_fallback(tmp_path, monkeypatch):
    # Point the mirrors at a closed loopback port: a real download failure without touching the network.
    monkeypatch.setattr(datasets.MNIST, "mirrors", ["http://127.0.0.1:9/"])
    with pytest.raises(DatasetUnavailable) as info:
        load_dataset("mnist", tmp_path)
    message = str(info.value)
    assert "mnist" in message and str(tmp_path / "MNIST" / "raw") in message and "'mnist5k'" in message
    assert "Traceback" not in message and "\n" not in message


def test_failed_cifar_download_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets.CIFAR10, "url", "http://127.0.0.1:9/cifar-10-python.tar.gz")
    with pytest.raises(DatasetUnavailable, match=r"cifar10.*cifar-10-python\.tar\.gz.*mnist5k"):
        load_dataset("cifar10", tmp_path)


def test_every_registered_dataset_has_a_description():
    assert set(DATASETS) == {"mnist5k", "mnist", "fashion-mnist", "cifar10"}
    assert not DATASETS["mnist5k"].downloads and all(DATASETS[n].downloads for n in ("mnist", "cifar10"))


def test_imageset_rejects_wrong_dtypes():
    with pytest.raises(AssertionError):
        ImageSet(torch.zeros(2, 1, 4, 4), torch.zeros(2, dtype=torch.int64))


def test_download_with_progress_from_a_local_server(tmp_path, monkeypatch):
    """The real download path (HTTP, chunks, md5, then torchvision's extraction) against a loopback server."""
    import gzip
    import hashlib
    import http.server
    import threading
    from functools import partial

    from dlplay.data import download_files, files_present

    served = tmp_path / "served"
    served.mkdir()
    rng = np.random.default_rng(1)
    for split, n in (("train", 30), ("t10k", 10)):
        write_idx_images(served / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx_labels(served / f"{split}-labels-idx1-ubyte", rng.integers(0, 10, n))
    resources = []
    for raw in sorted(served.iterdir()):
        packed = served / (raw.name + ".gz")
        packed.write_bytes(gzip.compress(raw.read_bytes()))
        resources.append((packed.name, hashlib.md5(packed.read_bytes()).hexdigest()))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(http.server.SimpleHTTPRequestHandler,
                                                                        directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(datasets.MNIST, "mirrors", ["http://127.0.0.1:9/", f"http://127.0.0.1:{server.server_port}/"])
        monkeypatch.setattr(datasets.MNIST, "resources", resources)
        home = tmp_path / "data"
        assert not files_present("mnist", home)
        reports = []
        download_files("mnist", home, lambda fraction, text: reports.append((fraction, text)))
        fractions = [f for f, _ in reports]
        assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(reports) >= 5
        assert "file 1 of 4" in reports[0][1]
        data = load_dataset("mnist", home)  # torchvision finds the verified archives and only extracts them
        assert (len(data.train), len(data.test)) == (30, 10) and files_present("mnist", home)
    finally:
        server.shutdown()


def test_a_damaged_download_is_refused(tmp_path, monkeypatch):
    import http.server
    import threading
    from functools import partial

    from dlplay.data import download_files

    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"not the real archive")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(http.server.SimpleHTTPRequestHandler,
                                                                        directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(datasets.CIFAR10, "url", f"http://127.0.0.1:{server.server_port}/cifar-10-python.tar.gz")
        with pytest.raises(DatasetUnavailable, match="ValueError.*cifar-10-python.tar.gz in"):
            download_files("cifar10", tmp_path / "data")
        assert not list((tmp_path / "data").glob("*.partial"))
    finally:
        server.shutdown()
