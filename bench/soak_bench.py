"""A long-lived server: 50 learners, one after another, each import a zip of their own photos and train one short
run on it, then close the tab. Prints the server's disk use (run store and temporary folders) and memory before and
after: both should come back near where they started.

Run: python bench/soak_bench.py [--sessions 50]
The server runs with --server.disconnectedSessionTTL 5, so a closed tab's session is dropped 5 s later instead of
Streamlit's default 120 s (what is measured is whether anything outlives the session, not how long Streamlit waits);
"after" is read once the server's once-a-minute garbage collection (ui/state.py) has run.
"""
import argparse
import io
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "tests" / "browser")]
from helpers import descendants  # noqa: E402
from serving import SCRIPT_DONE, launch_chromium, press_train, streamlit_server  # noqa: E402
from ui.state import GC_SECONDS  # noqa: E402

TTL_SECONDS = 5


def photos_zip(seed: int) -> bytes:
    """A zip of two class folders with 30 random 32x32 photos each, different for every seed."""
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for label in ("cats", "dogs"):
            for i in range(30):
                picture = io.BytesIO()
                Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(picture, "PNG")
                archive.writestr(f"{label}/{i}.png", picture.getvalue())
    return buffer.getvalue()


def disk_bytes(runs_dir: Path) -> int:
    """The run store plus any dlplay folder in the temporary directory."""
    folders = [runs_dir, *Path(tempfile.gettempdir()).glob("dlplay-*")]
    return sum(f.stat().st_size for folder in folders if folder.exists() for f in folder.rglob("*") if f.is_file())


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def learner(browser, url: str, zip_path: Path) -> None:
    """One session: upload the zip, train one epoch on it, wait for the result, close the tab."""
    context = browser.new_context(viewport={"width": 1300, "height": 1600})
    page = context.new_page()
    page.goto(f"{url}/trainer")
    page.wait_for_selector(SCRIPT_DONE, timeout=120_000)
    page.locator('[data-testid="stSelectbox"]').first.click()
    page.get_by_text("your own images: a .zip of class folders").click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(zip_path))
    page.get_by_text("2 classes").first.wait_for(timeout=120_000)
    press_train(page, epochs=1)
    try:
        page.get_by_text("Test accuracy", exact=True).wait_for(timeout=120_000)
    except Exception:
        page.screenshot(path=str(Path(tempfile.gettempdir()) / "soak-failure.png"), full_page=True)
        raise
    context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=50)
    args = parser.parse_args()
    runs_dir = Path(tempfile.mkdtemp(prefix="dlplay-soak-runs-"))
    work = Path(tempfile.mkdtemp(prefix="soak-zips-"))
    with streamlit_server(env={"DLPLAY_RUNS_DIR": str(runs_dir)},
                          options=("--server.disconnectedSessionTTL", str(TTL_SECONDS))) as (url, server), \
            sync_playwright() as p:
        browser = launch_chromium(p)
        (work / "warm.zip").write_bytes(photos_zip(-1 % 2**32))
        learner(browser, url, work / "warm.zip")  # warm-up: imports, caches, the worker pool
        time.sleep(TTL_SECONDS + 2)
        learner_done = time.perf_counter()
        disk0, rss0 = disk_bytes(runs_dir), rss_mb(server.pid)
        children0 = sum(rss_mb(pid) for pid in descendants(server.pid))
        for i in range(args.sessions):
            path = work / f"photos-{i}.zip"
            path.write_bytes(photos_zip(i))
            learner(browser, url, path)
            if (i + 1) % 10 == 0:
                print(f"{i + 1} sessions: disk {disk_bytes(runs_dir) / 1e6:.1f} MB, server {rss_mb(server.pid):.0f} MB",
                      flush=True)
        seconds = time.perf_counter() - learner_done
        time.sleep(TTL_SECONDS + 2)
        context = browser.new_context()  # a new visitor: Streamlit drops the expired sessions it still stores
        context.new_page().goto(url)
        time.sleep(3)
        context.close()
        time.sleep(GC_SECONDS + 5)
        disk1, rss1 = disk_bytes(runs_dir), rss_mb(server.pid)
        children1 = sum(rss_mb(pid) for pid in descendants(server.pid))
        browser.close()
    print(f"{args.sessions} sessions in {seconds:.0f} s, each importing a zip of 60 photos and training one run")
    print(f"disk (run store + temporary folders): {disk0 / 1e6:.2f} MB before, {disk1 / 1e6:.2f} MB after")
    print(f"server memory (RSS): {rss0:.0f} MB before, {rss1:.0f} MB after ({rss1 - rss0:+.0f} MB); "
          f"its worker pool: {children0:.0f} MB before, {children1:.0f} MB after")


if __name__ == "__main__":
    main()
