"""Builders for the small image and zip files the tests feed to dlplay, and helpers that watch processes."""
import io
import stat
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def image_bytes(value=128, size=(20, 20), mode="RGB", fmt="PNG", **save_args) -> bytes:
    """An image filled with `value` (an int, or a tuple per channel), encoded as `fmt`."""
    image = Image.new(mode, size, value)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save_args)
    return buffer.getvalue()


def noise_png(seed: int, size=(20, 20), gray=False) -> bytes:
    """A PNG of random pixels (so that classes differ and images are not all alike)."""
    rng = np.random.default_rng(seed)
    shape = size[::-1] if gray else (*size[::-1], 3)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


def zip_bytes(files: dict[str, bytes], symlinks: dict[str, str] | None = None) -> bytes:
    """A zip holding `files` (name -> content) and optional symbolic links (name -> target)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, target)
    return buffer.getvalue()


def class_folders_zip(classes: dict[str, int], prefix: str = "", gray: bool = False, extra=None) -> bytes:
    """A zip of class folders, `classes` mapping folder name -> image count, each image distinct."""
    files = {f"{prefix}{name}/{i}.png": noise_png(zlib.crc32(f"{name}/{i}".encode()), gray=gray)
             for name, count in classes.items() for i in range(count)}
    return zip_bytes({**files, **(extra or {})})


def open_app_page(page: str):
    """An AppTest of router.py switched to `page` (e.g. 'app_pages/trainer.py'), checked for exceptions."""
    from streamlit.testing.v1 import AppTest

    app = Path(__file__).resolve().parents[1] / "router.py"
    at = AppTest.from_file(str(app), default_timeout=120).run()  # a cold `import torch` outlasts the 3 s default
    at.switch_page(page).run()
    assert not at.exception
    return at


def unreadable_cells(at) -> list[str]:
    """The cells of the page's tables that a learner would read as "None" or "nan": empty cells in a table whose
    placeholder is not "—", and cells that hold one of those words."""
    found = []
    for number, table in enumerate(at.dataframe):
        frame = table.value
        if table.proto.placeholder != "—" and frame.isna().any().any():
            found.append(f"table {number}: empty cells shown as None")
        found += [f"table {number}: {value!r}" for value in frame.to_numpy().ravel()
                  if isinstance(value, str) and value.strip() in ("None", "nan", "NaN", "null")]
    return found


def wait_until(predicate, timeout: float = 90.0, every: float = 0.02) -> None:
    """Poll `predicate` until it is true; fail the test after `timeout` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(every)


def held(job, timeout: float = 90.0):
    """Wait until the job's worker reports that it holds (paused: its step no longer moves); its snapshot then."""
    wait_until(lambda: job.snapshot().held_at_step is not None or not job.snapshot().active, timeout)
    snapshot = job.snapshot()
    assert snapshot.held_at_step is not None, f"the run ended instead of pausing: {snapshot.message}"
    assert snapshot.status == "paused" and snapshot.step == snapshot.held_at_step
    return snapshot


def run_to_the_end(at, timeout: float = 180.0):
    """Rerun an AppTest until the session's training run has ended (AppTest does not tick st.fragment's timer),
    then once more so that the finished run joins the session's runs; if the page replays the run's curves (it
    finished between two refreshes), skip to the end of the replay, where the results are."""
    import time

    deadline = time.monotonic() + timeout
    while at.session_state["state.run"].snapshot().active:
        assert time.monotonic() < deadline, "timed out waiting for the run"
        time.sleep(0.5)
        at.run()
    at.run()
    for skip in [b for b in at.button if b.key == "trainer.skip_replay"]:
        skip.click().run()
    return at


def by_label(widgets, label: str):
    """The widget of a kind (at.button, at.slider, ...) with this label."""
    return next(w for w in widgets if w.label == label)


def descendants(pid: int) -> set[int]:
    """Every live process below `pid`, read from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields[0] != "Z":
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def labs_ended(at, timeout: float = 300.0):
    """Rerun an AppTest until none of its session's labs waits or runs (AppTest does not tick st.fragment's timer,
    which is what reruns a real page when a lab ends); then once more, so the page draws the results."""
    import time

    def running() -> bool:
        labs = []
        if "after_training.labs" in at.session_state:
            labs += [lab for _, lab in at.session_state["after_training.labs"].values()]
        if "trainer.zip_lab" in at.session_state and at.session_state["trainer.zip_lab"] is not None:
            labs.append(at.session_state["trainer.zip_lab"][1])
        return any(lab.snapshot().status.active for lab in labs)

    deadline = time.monotonic() + timeout
    while running():
        assert time.monotonic() < deadline, "timed out waiting for the lab"
        time.sleep(0.3)
        at.run()
    at.run()
    assert not at.exception
    return at
