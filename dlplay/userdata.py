"""Import a user's .zip of class folders (Keras' flow_from_directory layout) safely into an in-memory Dataset."""
import stat
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from dlplay.data import Dataset, ImageSet, data_problem, stratified_split
from dlplay.images import ImageRejected, decode_image, decoded_pixels
from dlplay.limits import limits as server_limits

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif"}
TEST_FOLDERS = ("test", "validation", "val")


@dataclass(frozen=True)
class ZipLimits:
    """Caps checked while extracting, against the bytes actually written (not the sizes the zip declares)."""

    max_entries: int = 20_000
    max_member_bytes: int = 25 * 1024 * 1024
    max_total_bytes: int = 1024 * 1024 * 1024
    max_ratio: float = 200.0  # uncompressed / compressed, per member
    max_megapixels: float | None = None  # what the images decode to, all together (None: DLPLAY_MAX_ZIP_MEGAPIXELS)
    max_seconds: float | None = None  # reading the images, all together (None: DLPLAY_MAX_ZIP_SECONDS)
    max_dataset_mb: float | None = None  # the images resized, all together (None: DLPLAY_MAX_ZIP_DATASET_MB)


class ZipRejected(ValueError):
    """The zip as a whole cannot be used; the message is one plain sentence for the user."""


@dataclass
class ZipImport:
    """The dataset built from a zip, and the files that were skipped with the reason for each."""

    dataset: Dataset
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _safe_parts(name: str) -> tuple[str, ...]:
    """The path components of a member name; refuses absolute paths and '..' (paths escaping the folder)."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise ZipRejected(f"The zip contains a path that escapes its folder ({name!r}); it was not imported.")
    return path.parts


def _ignored(parts: tuple[str, ...]) -> bool:
    """macOS resource forks and hidden files or folders are not data."""
    return parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts)


def extract_zip(source, folder: Path, limits: ZipLimits = ZipLimits()) -> list[tuple[str, ...]]:
    """Extract regular files member by member into `folder`; returns their relative path parts."""
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError):
        raise ZipRejected("This file is not a readable .zip archive.") from None
    with archive:
        members = archive.infolist()
        if len(members) > limits.max_entries:
            raise ZipRejected(f"The zip has {len(members):,} entries; the limit is {limits.max_entries:,}.")
        folder.mkdir(parents=True, exist_ok=True)
        written, total = [], 0
        for info in members:
            parts = _safe_parts(info.filename)
            if stat.S_ISLNK(info.external_attr >> 16):
                raise ZipRejected(f"The zip contains a symbolic link ({info.filename!r}); it was not imported.")
            if info.is_dir() or not parts or _ignored(parts):
                continue
            if info.flag_bits & 0x1:
                raise ZipRejected("The zip is encrypted; please upload an unencrypted zip.")
            target = folder.joinpath(*parts)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                out = open(target, "wb")  # closed by the with below
            except OSError:  # a name too long for the disk, or a file and a folder of the same name
                raise ZipRejected(f"The zip contains a name that cannot be unpacked ({info.filename[:80]!r}): it is "
                                  "too long, or a file and a folder share it. Rename it and try again.") from None
            size = 0
            with archive.open(info) as src, out as dst:
                while chunk := src.read(1 << 16):
                    size += len(chunk)
                    total += len(chunk)
                    if size > limits.max_member_bytes:
                        raise ZipRejected(f"{info.filename!r} is larger than {limits.max_member_bytes / 1e6:.0f} MB.")
                    if size > limits.max_ratio * max(info.compress_size, 1) and size > 1 << 20:
                        raise ZipRejected(f"{info.filename!r} is compressed suspiciously well (a zip bomb?).")
                    if total > limits.max_total_bytes:
                        raise ZipRejected(f"The zip unpacks to more than {limits.max_total_bytes / 1e9:.0f} GB.")
                    dst.write(chunk)
            written.append(parts)
    return written


@dataclass(frozen=True)
class _Entry:
    """One extracted file: its path parts in the folder, its split and its class (None when loose)."""

    parts: tuple[str, ...]
    split: str
    label: str | None


def _class_layout(files: list[tuple[str, ...]]) -> list[_Entry]:
    """Assign files to split ('train'/'test') and class folder, looking inside a single wrapping folder."""
    depth = 0
    while files and len({f[depth] for f in files}) == 1 and any(len(f) > depth + 2 for f in files):
        depth += 1  # one folder wraps everything: look inside it
    rel = [f[depth:] for f in files]
    has_splits = any(r[0].lower() == "train" and len(r) > 2 for r in rel)
    entries = []
    for full, r in zip(files, rel, strict=True):
        split = "train"
        if has_splits:
            if r[0].lower() != "train" and r[0].lower() not in TEST_FOLDERS:
                entries.append(_Entry(full, split, None))  # beside train/ and test/: not in a class folder
                continue
            split, r = ("train" if r[0].lower() == "train" else "test"), r[1:]
        entries.append(_Entry(full, split, r[0] if len(r) >= 2 else None))
    return entries


def _is_image(entry: _Entry) -> bool:
    return PurePosixPath(entry.parts[-1]).suffix.lower() in IMAGE_SUFFIXES


def _check_dataset_bytes(images: int, size: int, limit_mb: float) -> None:
    """Refuse a zip whose images, resized (and counted as RGB, the most they can take), would hold too much."""
    megabytes = images * size * size * 3 / 1024**2
    if megabytes > limit_mb:
        raise ZipRejected(f"The zip's {images:,} images at {size}×{size} would take {megabytes:,.1f} MB; the limit is "
                          f"{limit_mb:,.1f} MB. Choose a smaller size or use fewer pictures.")


def _check_decoded_pixels(folder: Path, images: list[_Entry], size: int, limit_megapixels: float) -> None:
    """Refuse, from the images' headers alone, a zip whose images together decode to more than the limit."""
    total = sum(decoded_pixels(folder.joinpath(*e.parts), (size, size)) for e in images)
    if total > limit_megapixels * 1e6:
        raise ZipRejected(f"The zip's images decode to {total / 1e6:,.0f} megapixels together; the limit is "
                          f"{limit_megapixels:,.0f}. Use fewer or smaller pictures.")


class _ReadingBudget:
    """The time the whole import may spend reading its images, and how many it has read so far."""

    def __init__(self, seconds: float, images: int):
        self.seconds, self.images, self.read = seconds, images, 0
        self.ends = time.monotonic() + seconds

    def check(self) -> None:
        """ZipRejected once the time is spent (so a budget of 0 refuses before the first image)."""
        if time.monotonic() >= self.ends:
            raise ZipRejected(f"Reading the zip's images took longer than {self.seconds:,.0f} s ({self.read:,} of "
                              f"{self.images:,} read). Use fewer or smaller pictures.")


def _load_split(folder: Path, entries: list[_Entry], size: int, skipped: list,
                budget: _ReadingBudget) -> dict[str, list[np.ndarray]]:
    """Decode every image once, resized to size x size RGB, within the import's time budget; unreadable files go to
    `skipped`."""
    by_class: dict[str, list[np.ndarray]] = {}
    for entry in sorted(entries, key=lambda e: e.parts):
        name = "/".join(entry.parts)
        if not _is_image(entry):
            skipped.append((name, "not an image file (PNG, JPEG, WebP, BMP or GIF)"))
            continue
        budget.check()
        budget.read += 1
        try:
            image = decode_image(folder.joinpath(*entry.parts).read_bytes(), draft_size=(size, size))
        except ImageRejected as err:
            skipped.append((name, str(err)))
            continue
        by_class.setdefault(entry.label, []).append(np.asarray(image.convert("RGB").resize((size, size))))
    return by_class


def _to_imageset(by_class: dict[str, list[np.ndarray]], classes: list[str], gray: bool) -> ImageSet:
    """Stack decoded (H, W, 3) arrays into an ImageSet, one channel when every image is gray."""
    arrays = [(a, i) for i, c in enumerate(classes) for a in by_class.get(c, [])]
    images = torch.from_numpy(np.stack([a for a, _ in arrays])).permute(0, 3, 1, 2).contiguous()  # (N, 3, H, W)
    images = images[:, :1].contiguous() if gray else images
    return ImageSet(images, torch.tensor([i for _, i in arrays], dtype=torch.int64))


def import_zip(source, *, image_size: int = 64, test_fraction: float = 0.2, seed: int = 0,
               limits: ZipLimits = ZipLimits(), name: str = "my images") -> ZipImport:
    """Build a Dataset from a zip of class folders (optionally train/ and test/).

    The zip is extracted into a temporary folder that is gone when this returns (or raises): the images live on
    in memory only, so nothing a user uploads piles up on the server's disk.
    """
    with tempfile.TemporaryDirectory(prefix="dlplay-zip-") as scratch:
        folder = Path(scratch)
        entries = _class_layout(extract_zip(source, folder, limits))
        images = [e for e in entries if e.label and _is_image(e)]
        megapixels = limits.max_megapixels if limits.max_megapixels is not None else server_limits().zip_megapixels
        _check_dataset_bytes(len(images), image_size, limits.max_dataset_mb if limits.max_dataset_mb is not None
                             else server_limits().zip_dataset_mb)
        _check_decoded_pixels(folder, images, image_size, megapixels)
        seconds = limits.max_seconds if limits.max_seconds is not None else server_limits().zip_seconds
        budget = _ReadingBudget(seconds, len(images))
        skipped = [("/".join(e.parts), "not inside a class folder") for e in entries if e.label is None]
        train = _load_split(folder, [e for e in entries if e.label and e.split == "train"], image_size, skipped,
                            budget)
        test = _load_split(folder, [e for e in entries if e.label and e.split == "test"], image_size, skipped,
                           budget)
    classes = sorted(train)
    if len(classes) < 2:
        raise ZipRejected(f"Found {len(classes)} class folder(s) with readable images; at least 2 are needed "
                          "(one folder per class, e.g. cats/ and dogs/).")
    unknown = sorted(set(test) - set(classes))
    skipped += [(f"test/{c}", "this test class has no training folder") for c in unknown]
    gray = all((a[..., 0] == a[..., 1]).all() and (a[..., 1] == a[..., 2]).all()
               for group in (*train.values(), *test.values()) for a in group)
    if any(test.get(c) for c in classes):
        train_set, test_set = _to_imageset(train, classes, gray), _to_imageset(test, classes, gray)
    else:
        train_set, test_set = stratified_split(_to_imageset(train, classes, gray), test_fraction, seed)
    problem = data_problem(classes, train_set, test_set)
    if problem:
        raise ZipRejected(problem)
    return ZipImport(Dataset(name, tuple(classes), train_set, test_set), skipped)
