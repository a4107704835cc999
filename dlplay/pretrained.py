"""Pre-trained weights from torchvision: fetched once into torch's cache, checked against the SHA-256 prefix that
torchvision publishes in each file's name, and loaded with `weights_only=True`, so that no file, downloaded or put
in the cache by hand, can run code when it is read (torch.hub's own loader unpickles cached files unchecked)."""
import hashlib
import pickle
import re
from pathlib import Path
from urllib.parse import urlparse

import torch

HASH_PREFIX = re.compile(r"-([0-9a-f]{6,64})\.")  # torch.hub's convention: name-<first hex digits of SHA-256>.pth
CHUNK = 1 << 20


class WeightsUnavailable(ValueError):
    """Pre-trained weights that could not be had; the message says where to put the file by hand."""


def sha256_of(path: Path) -> str:
    """The file's SHA-256 as hex, read a megabyte at a time."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def checked_weights(url: str, folder: Path, what: str) -> dict[str, torch.Tensor]:
    """The state dict at `url`, from `folder` (downloaded into it first when absent), its SHA-256 checked against
    the prefix in its file name; `what` names the weights in messages. WeightsUnavailable says what went wrong."""
    name = Path(urlparse(url).path).name
    found = HASH_PREFIX.search(name)
    if found is None:
        raise WeightsUnavailable(f"{name} carries no SHA-256 prefix in its name, so it cannot be checked")
    prefix, path = found.group(1), folder / name
    if not path.exists():
        try:
            folder.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(url, str(path), hash_prefix=prefix, progress=False)
        except (OSError, RuntimeError) as err:  # URLError is an OSError; a wrong download a RuntimeError
            raise WeightsUnavailable(f"the {what} could not be downloaded from {url} ({err.__class__.__name__}); "
                                     f"download that file on a machine online and put it in {folder}") from err
    digest = sha256_of(path)
    if not digest.startswith(prefix):
        raise WeightsUnavailable(f"{path} is not the file that was published: its SHA-256 begins "
                                 f"{digest[:len(prefix)]}, not {prefix}; delete it and download it again")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError) as err:
        raise WeightsUnavailable(f"{path} could not be read as weights ({err.__class__.__name__})") from err
