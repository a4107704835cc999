"""A classroom on one server: K learners press Train at once on a real `streamlit run` server, while one more
opens another page.

Run: python bench/crowd_bench.py [--crowds 1 2 4 8] [--client protocol|chromium]
- protocol (default): each learner is a real server session driven by bench/streamlit_client.py, which speaks
  Streamlit's websocket protocol as the frontend does (fragment reruns on the server's timers included) but renders
  nothing: as in a classroom, where every browser runs on its learner's own computer.
- chromium: each learner is a headless Chromium page (Playwright) on this same machine, so the server shares its
  cores with K browsers rendering the live curves.
For each K it prints, side by side: the time until all K default runs (small-cnn, mnist5k, 3 epochs) have finished
against K x the solo run / slots; the slowest run's images/s against the solo run's / slots; and the time the
bystander waits for the Neuron math page against its time on an idle server. Targets at K = 4 (issue 9): total
within 1.3x, no run below 0.5x, bystander within 3x. Runs' figures come from their checkpoint files.
"""
import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "tests" / "browser")]
from dlplay.device import usable_cores  # noqa: E402
from dlplay.training.jobs.runner import MODEL_FILE, STATE_FILE, read_resume_point  # noqa: E402
from dlplay.training.jobs.scheduler import default_capacity  # noqa: E402
from serving import SCRIPT_DONE, launch_chromium, streamlit_server  # noqa: E402
from streamlit_client import Session  # noqa: E402


class ProtocolLearners:
    """Learners as browser-less protocol sessions."""

    def __init__(self, url: str):
        self.url = url

    def open(self, page: str) -> Session:
        session = Session(self.url, page)
        session.run()
        return session

    def click_train(self, session: Session) -> None:
        session.run(click="Train")

    def close(self, session: Session) -> None:
        session.close()

    def bystander_seconds(self) -> float:
        """Seconds from connecting to the Neuron math page's script having run."""
        start = time.perf_counter()
        session = Session(self.url, "neuron")
        session.run(timeout=300)
        seconds = time.perf_counter() - start
        session.close()
        return seconds


class ChromiumLearners:
    """Learners as headless Chromium pages on this machine."""

    def __init__(self, url: str, browser):
        self.url, self.browser = url, browser

    def open(self, page: str):
        context = self.browser.new_context(viewport={"width": 1300, "height": 1400})
        tab = context.new_page()
        tab.goto(f"{self.url}/{page}")
        tab.wait_for_selector(SCRIPT_DONE, timeout=180_000)
        return tab

    def click_train(self, tab) -> None:
        tab.get_by_role("button", name="Train", exact=True).click()

    def close(self, tab) -> None:
        tab.context.close()

    def bystander_seconds(self) -> float:
        """Seconds until the Neuron math page has run and shows its worked example."""
        start = time.perf_counter()
        tab = self.open("neuron")
        tab.get_by_text("Forward pass, layer by layer").first.wait_for(timeout=180_000)
        seconds = time.perf_counter() - start
        self.close(tab)
        return seconds


def crowd(learners, runs_dir: Path, k: int, bystander: bool = True) -> dict:
    """K sessions press Train at once; the bystander (if any) arrives while they train."""
    sessions = [learners.open("trainer") for _ in range(k)]
    before = set(runs_dir.glob("*"))
    clock_start = time.time()
    for session in sessions:
        learners.click_train(session)
    time.sleep(1.5)  # every run is queued or training
    waited = learners.bystander_seconds() if bystander else None
    deadline = time.monotonic() + 1200
    while True:
        new = [d for d in runs_dir.glob("*") if d not in before and d.name != "_datasets"]
        if len(new) == k and all((d / MODEL_FILE).exists() for d in new):
            break
        assert time.monotonic() < deadline, "the runs did not finish"
        time.sleep(0.5)
    total = max((d / MODEL_FILE).stat().st_mtime for d in new) - clock_start
    speeds = [statistics.median(e.images_per_sec for e in read_resume_point(d / STATE_FILE).epochs) for d in new]
    for session in sessions:
        learners.close(session)
    return {"total": total, "speeds": speeds, "bystander": waited}


def measure(learners, runs_dir: Path, crowds: list[int], repeats: int) -> tuple[float, dict, dict]:
    """(the bystander's time on an idle server, the solo run, each crowd's results)."""
    learners.bystander_seconds()  # warm-up: the first page load compiles and caches...
    crowd(learners, runs_dir, 1, bystander=False)  # ...and the first run warms the worker pool
    idle = statistics.median(learners.bystander_seconds() for _ in range(repeats))
    solo = crowd(learners, runs_dir, 1, bystander=False)  # the reference: one run on a quiet server
    return idle, solo, {k: crowd(learners, runs_dir, k) for k in crowds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crowds", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--client", choices=["protocol", "chromium"], default="protocol")
    parser.add_argument("--bystander-repeats", type=int, default=3)
    args = parser.parse_args()
    runs_dir = Path(tempfile.mkdtemp(prefix="dlplay-crowd-runs-"))
    with streamlit_server(env={"DLPLAY_RUNS_DIR": str(runs_dir)}) as (url, _server):
        if args.client == "protocol":
            idle, solo, results = measure(ProtocolLearners(url), runs_dir, args.crowds, args.bystander_repeats)
        else:
            with sync_playwright() as p:
                browser = launch_chromium(p)
                idle, solo, results = measure(ChromiumLearners(url, browser), runs_dir, args.crowds,
                                              args.bystander_repeats)
                browser.close()
    slots = default_capacity(usable_cores(), 0)
    solo_speed = solo["speeds"][0]
    print(f"learners: {args.client}; {usable_cores()} cores, {slots} slot(s); solo run (click to model saved) "
          f"{solo['total']:.1f} s at {solo_speed:,.0f} images/s; bystander on an idle server {idle:.2f} s")
    print(" K | all runs done | K x solo / slots | ratio | slowest run img/s | vs solo/slots | bystander | vs alone")
    for k, r in results.items():
        ideal = k * solo["total"] / slots
        slowest = min(r["speeds"])
        print(f"{k:2d} | {r['total']:11.1f} s | {ideal:14.1f} s | {r['total'] / ideal:5.2f} | {slowest:17,.0f} | "
              f"{slowest / (solo_speed / slots):13.2f} | {r['bystander']:7.2f} s | {r['bystander'] / idle:8.2f}")


if __name__ == "__main__":
    main()
