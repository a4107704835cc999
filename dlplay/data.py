"""Dataset registry: embedded mnist5k and torchvision downloads, all held in memory as uint8 tensors."""
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save

ASSETS = Path(__file__).with_name("assets")
DIGIT_NAMES = tuple(str(d) for d in range(10))


@dataclass(frozen=True)
class ImageSet:
    """Images (N, C, H, W) uint8 and labels (N,) int64 on the CPU."""

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        assert self.images.dtype == torch.uint8 and self.images.ndim == 4, (self.images.dtype, self.images.shape)
        assert self.labels.dtype == torch.int64 and self.labels.shape == (len(self.images),)

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class Dataset:
    """A named train/test pair of ImageSets with class names."""

    name: str
    class_names: tuple[str, ...]
    train: ImageSet
    test: ImageSet

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one image."""
        return tuple(self.train.images.shape[1:])

    @property
    def num_classes(self) -> int:
        """How many classes the labels range over."""
        return len(self.class_names)

    def channel_stats(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and std of the training images on the 0..1 scale (for normalisation). A channel that
        never varies gets a std of MIN_STD: it is only centred, where dividing by 0 would turn every input to NaN."""
        x = self.train.images.float().div_(255)  # (N, C, H, W)
        return tuple(x.mean(dim=(0, 2, 3)).tolist()), tuple(x.std(dim=(0, 2, 3)).clamp_min(MIN_STD).tolist())


MIN_STD = 1 / 255  # one grey level: the smallest spread a channel is normalised by


def data_problem(class_names, train: ImageSet, test: ImageSet) -> str | None:
    """What makes these images unable to teach or test a classifier, in one sentence with what to do; None if
    nothing does."""
    if len(train) == 0:
        return "There are no training images to learn from: use more of the data."
    if len(test) == 0:
        counts = (torch.bincount(train.labels, minlength=len(class_names)) +
                  torch.bincount(test.labels, minlength=len(class_names))).tolist()
        few = [name for name, n in zip(class_names, counts, strict=True) if n < 2]
        return (f"There are no test images to measure the model with: every class needs at least 2 images (one to "
                f"learn from, one to test on), and {', '.join(repr(f) for f in few[:3]) or 'these classes'} "
                "have fewer.")
    if bool((train.images == train.images[:1]).all()):
        return ("Every training image is the very same picture, so nothing tells the classes apart: check what "
                "the images are.")
    return None


class DatasetUnavailable(RuntimeError):
    """A dataset could not be loaded or downloaded; the message is meant for the user."""


@dataclass(frozen=True)
class DatasetSpec:
    """How to get one registered dataset."""

    description: str
    downloads: bool
    load: Callable[[Path], Dataset]


def default_data_dir() -> Path:
    """Where downloads go: $DLPLAY_DATA_DIR, else the user's cache dir (~/.cache/dlplay/data)."""
    if os.environ.get("DLPLAY_DATA_DIR"):
        return Path(os.environ["DLPLAY_DATA_DIR"])
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "dlplay" / "data"


def _from_numpy(images: np.ndarray, labels) -> ImageSet:
    """Wrap (N, H, W) or (N, H, W, C) uint8 arrays as an ImageSet in (N, C, H, W)."""
    x = torch.as_tensor(np.ascontiguousarray(images), dtype=torch.uint8)
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2).contiguous()
    return ImageSet(x, torch.as_tensor(np.asarray(labels), dtype=torch.int64))


def load_mnist5k(_data_dir: Path | None = None) -> Dataset:
    """The embedded 5,000 real MNIST digits: a fixed stratified 4,000 train / 1,000 test split."""
    with np.load(ASSETS / "mnist5k.npz") as f:
        train = _from_numpy(f["x_train"], f["y_train"])
        test = _from_numpy(f["x_test"], f["y_test"])
    return Dataset("mnist5k", DIGIT_NAMES, train, test)


def _hand_placement_hint(name: str, folder: Path) -> str:
    """Where a user can put the files when the download cannot work."""
    files = {
        "mnist": f"the four MNIST .gz files in {folder / 'MNIST' / 'raw'}",
        "fashion-mnist": f"the four Fashion-MNIST .gz files in {folder / 'FashionMNIST' / 'raw'}",
        "cifar10": f"cifar-10-python.tar.gz in {folder}",
    }[name]
    return f"To use it offline, download it on another machine and place {files}"


def _torchvision_class(name: str):
    """The torchvision dataset class behind a registered name."""
    from torchvision import datasets  # imported here: torchvision is slow to import and only needed here

    return {"mnist": datasets.MNIST, "fashion-mnist": datasets.FashionMNIST, "cifar10": datasets.CIFAR10}[name]


def _archives(name: str, folder: Path) -> list[tuple[list[str], Path, str]]:
    """The files torchvision would download for `name`: (candidate URLs, destination, md5)."""
    cls = _torchvision_class(name)
    if name == "cifar10":
        return [([cls.url], folder / cls.filename, cls.tgz_md5)]
    raw = folder / cls.__name__ / "raw"
    return [([mirror + filename for mirror in cls.mirrors], raw / filename, md5) for filename, md5 in cls.resources]


def files_present(name: str, data_dir: Path | None = None) -> bool:
    """Whether a downloadable dataset's files are already in the data folder (downloaded or placed by hand)."""
    folder = Path(data_dir) if data_dir else default_data_dir()
    if name == "cifar10":
        return (folder / "cifar-10-batches-py" / "test_batch").exists()
    return all(dest.with_suffix("").exists() for _, dest, _ in _archives(name, folder))  # the extracted .gz files


def download_files(name: str, data_dir: Path | None = None,
                   progress: Callable[[float, str], None] | None = None) -> None:
    """Fetch a torchvision dataset's archives (skipping verified ones), reporting progress(fraction, text).

    torchvision then finds the verified archives in place and only extracts them. Failures raise
    DatasetUnavailable with the same advice as load_dataset().
    """
    from torchvision.datasets.utils import check_integrity

    folder = Path(data_dir) if data_dir else default_data_dir()
    archives = _archives(name, folder)
    for number, (urls, dest, md5) in enumerate(archives, start=1):
        if check_integrity(str(dest), md5):
            continue
        label = f"Downloading {name}: file {number} of {len(archives)} ({dest.name})"
        errors = []
        for url in urls:
            try:
                _fetch(url, dest, md5, lambda f, label=label, n=number: progress and progress(
                    ((n - 1) + f) / len(archives), label))
                break
            except (OSError, ValueError) as err:
                errors.append(err)
        else:
            raise DatasetUnavailable(
                f"Could not download the {name} dataset into {folder} ({type(errors[-1]).__name__}). "
                f"{_hand_placement_hint(name, folder)}, or use the embedded 'mnist5k' dataset, which needs no "
                "download.") from errors[-1]
    if progress:
        progress(1.0, f"{name}: downloaded")


def _fetch(url: str, dest: Path, md5: str, progress: Callable[[float], None]) -> None:
    """Stream url to dest.partial in chunks, check its md5, then move it into place."""
    import hashlib
    import urllib.request

    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    digest = hashlib.md5()
    with urllib.request.urlopen(url, timeout=30) as response, open(partial, "wb") as out:
        total, done = int(response.headers.get("Content-Length") or 0), 0
        while chunk := response.read(1 << 16):
            out.write(chunk)
            digest.update(chunk)
            done += len(chunk)
            progress(done / total if total else 0.0)
    if digest.hexdigest() != md5:
        partial.unlink()
        raise ValueError(f"{dest.name} arrived damaged (checksum mismatch)")
    os.replace(partial, dest)


def _torchvision_loader(name: str) -> Callable[[Path], Dataset]:
    """A loader that reads (or first downloads) a torchvision dataset into memory."""

    def load(data_dir: Path | None) -> Dataset:
        folder = Path(data_dir) if data_dir else default_data_dir()
        cls = _torchvision_class(name)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            splits = [cls(str(folder), train=train, download=True) for train in (True, False)]
        except (OSError, RuntimeError, ValueError, EOFError) as err:  # EOFError: a truncated file
            raise DatasetUnavailable(
                f"Could not load the {name} dataset into {folder} (download failed or files unreadable: "
                f"{type(err).__name__}). {_hand_placement_hint(name, folder)}, or use the embedded 'mnist5k' "
                "dataset, which needs no download."
            ) from err
        train, test = (_from_numpy(np.asarray(s.data), s.targets) for s in splits)
        return Dataset(name, tuple(splits[0].classes), train, test)

    return load


DATASETS: dict[str, DatasetSpec] = {
    "mnist5k": DatasetSpec("5,000 real MNIST digits, embedded (no download)", False, load_mnist5k),
    "mnist": DatasetSpec("MNIST, 70,000 handwritten digits (downloads ~12 MB)", True, _torchvision_loader("mnist")),
    "fashion-mnist": DatasetSpec(
        "Fashion-MNIST, 70,000 clothing images (downloads ~30 MB)", True, _torchvision_loader("fashion-mnist")
    ),
    "cifar10": DatasetSpec("CIFAR-10, 60,000 colour photos (downloads ~170 MB)", True, _torchvision_loader("cifar10")),
}


def load_dataset(name: str, data_dir: Path | None = None) -> Dataset:
    """Load a registered dataset by name; unknown names and failed downloads raise DatasetUnavailable."""
    if name not in DATASETS:
        raise DatasetUnavailable(f"Unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}.")
    return DATASETS[name].load(data_dir)


def sample_per_class(data: ImageSet, per_class: int, seed: int = 0) -> ImageSet:
    """A seeded pick of `per_class` images of each class, ordered by class."""
    generator = torch.Generator().manual_seed(seed)
    picks = []
    for c in data.labels.unique().tolist():
        idx = torch.nonzero(data.labels == c).flatten()
        picks.append(idx[torch.randperm(len(idx), generator=generator)[:per_class]])
    order = torch.cat(picks)
    return ImageSet(data.images[order], data.labels[order])


def to_display(images: torch.Tensor) -> list[np.ndarray]:
    """uint8 (N, C, H, W) -> list of (H, W) grayscale or (H, W, C) colour arrays for drawing."""
    arrays = images.permute(0, 2, 3, 1).numpy()
    return [a[..., 0] if a.shape[-1] == 1 else a for a in arrays]


def stratified_split(data: ImageSet, test_fraction: float, seed: int) -> tuple[ImageSet, ImageSet]:
    """Seeded per-class split; each class with 2+ images keeps at least one image on each side."""
    generator = torch.Generator().manual_seed(seed)
    train_idx, test_idx = [], []
    for c in data.labels.unique().tolist():
        idx = torch.nonzero(data.labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=generator)]
        n_test = min(max(1, round(len(idx) * test_fraction)), len(idx) - 1) if len(idx) > 1 else 0
        test_idx.append(idx[:n_test])
        train_idx.append(idx[n_test:])
    tr, te = torch.cat(train_idx).sort().values, torch.cat(test_idx).sort().values
    return ImageSet(data.images[tr], data.labels[tr]), ImageSet(data.images[te], data.labels[te])


def shrink_classes(data: ImageSet, classes: Sequence[int], keep: float, seed: int) -> ImageSet:
    """Keep a seeded `keep` share (at least one image) of each class in `classes`; other classes are untouched."""
    generator = torch.Generator().manual_seed(seed)
    kept = []
    for c in data.labels.unique().tolist():
        idx = torch.nonzero(data.labels == c).flatten()
        if c in classes:
            idx = idx[torch.randperm(len(idx), generator=generator)[:max(1, round(len(idx) * keep))]]
        kept.append(idx)
    order = torch.cat(kept).sort().values
    return ImageSet(data.images[order], data.labels[order])


def balanced_class_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Weights n / (k * count_c) over the k classes present, so each counts as much in total (absent ones: 0)."""
    counts = torch.bincount(labels, minlength=num_classes).double()
    weights = len(labels) / (int((counts > 0).sum()) * counts)
    return torch.where(counts > 0, weights, torch.zeros_like(weights)).float()


def dataset_bytes(dataset: Dataset) -> bytes:
    """A Dataset as .safetensors bytes: its four tensors, with its name and class names in the metadata."""
    tensors = {"train.images": dataset.train.images, "train.labels": dataset.train.labels,
               "test.images": dataset.test.images, "test.labels": dataset.test.labels}
    meta = {"name": dataset.name, "class_names": json.dumps(list(dataset.class_names))}
    return save({k: v.contiguous() for k, v in tensors.items()}, metadata=meta)


def read_dataset(path: Path) -> Dataset:
    """The Dataset that dataset_bytes() wrote into a file."""
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    t = load_file(str(path))
    return Dataset(meta["name"], tuple(json.loads(meta["class_names"])), ImageSet(t["train.images"], t["train.labels"]),
                   ImageSet(t["test.images"], t["test.labels"]))
