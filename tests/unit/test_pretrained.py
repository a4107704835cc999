"""Pre-trained weights are only our own bytes: a cached or downloaded file is checked against the SHA-256 prefix in
its name and loaded with weights_only=True, so a file that would run code when unpickled never does. Downloads
come from a loopback HTTP server (tests never touch the network)."""
import hashlib
import http.server
import threading
from pathlib import Path

import pytest
import torch

from dlplay.pretrained import WeightsUnavailable, checked_weights


def weights_file(folder: Path, state, prefix: str | None = None) -> tuple[Path, str]:
    """`state` saved under torch.hub's naming (name-<SHA-256 prefix>.pth); returns (path, prefix)."""
    folder.mkdir(parents=True, exist_ok=True)
    scratch = folder / "scratch.pth"
    torch.save(state, scratch)
    prefix = prefix or hashlib.sha256(scratch.read_bytes()).hexdigest()[:8]
    path = scratch.rename(folder / f"tiny-{prefix}.pth")
    return path, prefix


@pytest.fixture
def server(tmp_path):
    """A loopback HTTP server over tmp_path/served; yields its base URL."""
    served = tmp_path / "served"
    served.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(served), **kwargs)

        def log_message(self, *_args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", served
    httpd.shutdown()
    thread.join(10)


STATE = {"layer.weight": torch.arange(6.0).reshape(2, 3), "layer.bias": torch.tensor([1.0, -1.0])}


def test_a_cached_file_whose_hash_matches_its_name_loads(tmp_path):
    path, _ = weights_file(tmp_path / "cache", STATE)
    loaded = checked_weights(f"http://127.0.0.1:9/{path.name}", path.parent, "tiny weights")  # never fetched
    assert all(torch.equal(loaded[k], v) for k, v in STATE.items())


def test_a_cached_file_that_is_not_the_published_one_is_one_sentence(tmp_path):
    path, _ = weights_file(tmp_path / "cache", STATE, prefix="047dcff4")  # someone else's bytes under the name
    with pytest.raises(WeightsUnavailable, match=r"is not the file that was published: its SHA-256 begins "
                                                 r"[0-9a-f]{8}, not 047dcff4; delete it and download it again"):
        checked_weights(f"http://127.0.0.1:9/{path.name}", path.parent, "tiny weights")


class Trap:
    """Unpickling this runs code: it would create `marker`."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_file_that_would_run_code_is_refused_and_the_code_never_runs(tmp_path):
    marker = tmp_path / "ran"
    path, _ = weights_file(tmp_path / "cache", {"weight": Trap(marker)})  # its hash matches: only the load guards
    with pytest.raises(WeightsUnavailable, match="could not be read as weights"):
        checked_weights(f"http://127.0.0.1:9/{path.name}", path.parent, "tiny weights")
    assert not marker.exists()


def test_a_download_is_checked_against_the_prefix_and_loaded(tmp_path, server):
    url, served = server
    path, _ = weights_file(served, STATE)
    cache = tmp_path / "cache"
    loaded = checked_weights(f"{url}/{path.name}", cache, "tiny weights")
    assert (cache / path.name).read_bytes() == path.read_bytes()
    assert torch.equal(loaded["layer.weight"], STATE["layer.weight"])


def test_a_download_whose_bytes_do_not_match_is_refused_and_not_kept(tmp_path, server):
    url, served = server
    path, _ = weights_file(served, STATE, prefix="00000000")
    cache = tmp_path / "cache"
    with pytest.raises(WeightsUnavailable, match=r"^the tiny weights could not be downloaded from .*tiny-00000000"
                                                 r"\.pth \(RuntimeError\); download that file on a machine online "
                                                 r"and put it in "):
        checked_weights(f"{url}/{path.name}", cache, "tiny weights")
    assert not (cache / path.name).exists()


def test_offline_is_one_sentence_naming_the_file_and_the_folder(tmp_path):
    with pytest.raises(WeightsUnavailable, match=r"tiny-0123abcd\.pth \(URLError\); .* put it in .*cache"):
        checked_weights("http://127.0.0.1:9/tiny-0123abcd.pth", tmp_path / "cache", "tiny weights")
