"""A classroom on one server: K learners press Train at once on a real `streamlit run` server, while one more
opens another page. Each learner is a Chromium session driven by Playwright (browsers on the same machine).

Run: python bench/crowd_bench.py [--crowds 1 2 4 8] [--bystander-repeats 3]
For each K it prints, side by side: the time until all K default runs (small-cnn, mnist5k, 3 epochs) have finished
against K x the solo run / slots; the slowest run's images/s against the solo run's / slots; and the time the
bystander waits for the Neuron math page against its time on an idle server. Targets at K = 4 (issue 9): total
within 1.3x, no run below 0.5x, bystander within 3x. Runs' figures come from their checkpoint files.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "tests" / "browser")]
from dlplay.jobs.runner import MODEL_FILE, STATE_FILE, read_resume_point  # noqa: E402
from dlplay.jobs.scheduler import default_capacity  # noqa: E402
from serving import SCRIPT_DONE, launch_chromium, streamlit_server  # noqa: E402


def open_session(browser, url: str):
    """A new browser session (its own Streamlit session) on `url`, loaded."""
    context = browser.new_context(viewport={"width": 1300, "height": 1400})
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector(SCRIPT_DONE, timeout=180_000)
    return context, page


def bystander_seconds(browser, url: str) -> float:
    """Seconds until the Neuron math page has run and shows its worked example."""
    start = time.perf_counter()
    context, page = open_session(browser, f"{url}/neuron")
    page.get_by_text("Forward pass, layer by layer").first.wait_for(timeout=180_000)
    seconds = time.perf_counter() - start
    context.close()
    return seconds


def crowd(browser, url: str, runs_dir: Path, k: int) -> dict:
    """K sessions press Train at once; the bystander arrives while they train."""
    sessions = [open_session(browser, f"{url}/trainer") for _ in range(k)]
    before = set(runs_dir.glob("*"))
    clock_start = time.time()
    for _, page in sessions:
        page.get_by_role("button", name="Train", exact=True).click()
    time.sleep(1.5)  # every run is queued or training
    bystander = bystander_seconds(browser, url)
    deadline = time.monotonic() + 1200
    while True:
        new = [d for d in runs_dir.glob("*") if d not in before and d.name != "_datasets"]
        if len(new) == k and all((d / MODEL_FILE).exists() for d in new):
            break
        assert time.monotonic() < deadline, "the runs did not finish"
        time.sleep(0.5)
    total = max((d / MODEL_FILE).stat().st_mtime for d in new) - clock_start
    speeds = [statistics.median(e.images_per_sec for e in read_resume_point(d / STATE_FILE).epochs) for d in new]
    for context, _ in sessions:
        context.close()
    return {"total": total, "speeds": speeds, "bystander": bystander}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crowds", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--bystander-repeats", type=int, default=3)
    args = parser.parse_args()
    runs_dir = Path(tempfile.mkdtemp(prefix="dlplay-crowd-runs-"))
    with streamlit_server(env={"DLPLAY_RUNS_DIR": str(runs_dir)}) as (url, _server), sync_playwright() as p:
        browser = launch_chromium(p)
        bystander_seconds(browser, url)  # warm-up: the first page load compiles and caches
        idle = statistics.median(bystander_seconds(browser, url) for _ in range(args.bystander_repeats))
        results = {k: crowd(browser, url, runs_dir, k) for k in sorted(set([1, *args.crowds]))}
        browser.close()
    slots = default_capacity(os.cpu_count() or 1, 0)
    solo = results[1]
    solo_speed = solo["speeds"][0]
    print(f"{os.cpu_count()} cores, {slots} slot(s); solo run {solo['total']:.1f} s at {solo_speed:,.0f} images/s; "
          f"bystander alone {idle:.2f} s")
    print(" K | all runs done | K x solo / slots | ratio | slowest run img/s | vs solo/slots | bystander | vs alone")
    for k, r in results.items():
        ideal = k * solo["total"] / slots
        slowest = min(r["speeds"])
        print(f"{k:2d} | {r['total']:11.1f} s | {ideal:14.1f} s | {r['total'] / ideal:5.2f} | {slowest:17,.0f} | "
              f"{slowest / (solo_speed / slots):13.2f} | {r['bystander']:7.2f} s | {r['bystander'] / idle:8.2f}")


if __name__ == "__main__":
    main()
