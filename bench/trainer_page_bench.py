"""Training throughput on the CNN trainer page vs the CLI, same settings, side by side in one run; and what one
rerun of the page's live view costs the server.

Run: python bench/trainer_page_bench.py [--repeats 3]
- CLI: `python -m dlplay train` with the page's default settings (small-cnn on mnist5k, batch 64, AdamW 3e-3,
  one-cycle, light augmentation, 3 epochs).
- page (live view): the page's code path as a browser drives it: the run goes to the scheduler, a worker process
  trains, and this process (the server) does the live fragment's work every LIVE_REFRESH_SECONDS (snapshot; the
  figure, rebuilt only when new data came; its Plotly JSON, as st.plotly_chart sends it).
- page (AppTest, full reruns): press Train in Streamlit's AppTest and rerun the *whole* page as often until the
  run ends (a browser reruns only the fragment, so this is a pessimistic bound).
All report per-epoch images/s; the script prints the medians and their ratios to the CLI. Then the cost of one
live-view rerun for a long run (1,710 batches): with new data (figure rebuilt) and without (figure reused).
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import plotly.io
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from dlplay.data import load_dataset  # noqa: E402
from dlplay.training.jobs import RunConfig, RunStore, Scheduler  # noqa: E402
from dlplay.training.jobs.local_backend import LocalBackend  # noqa: E402
from dlplay.training.trainer import BatchEvent  # noqa: E402
from ui import charts  # noqa: E402
from ui.trainer_views import LIVE_REFRESH_SECONDS  # noqa: E402

EPOCHS = 3
CLI = [sys.executable, "-m", "dlplay", "train", "--dataset", "mnist5k", "--model", "small-cnn", "--epochs",
       str(EPOCHS), "--batch-size", "64", "--lr", "3e-3", "--optimizer", "adamw", "--schedule", "onecycle",
       "--augment", "light", "--label-smoothing", "0"]


def live_view_epochs(scheduler: Scheduler) -> list[float]:
    """Per-epoch images/s of a page-configured run while this process draws the live view each second."""
    job = scheduler.submit(RunConfig(epochs=EPOCHS), load_dataset("mnist5k"), "bench", registered=True)
    drawn = None
    while (snapshot := job.snapshot()).active:
        time.sleep(LIVE_REFRESH_SECONDS)
        if snapshot.version != drawn:  # as views.live_figure: rebuild only on new data
            figure, drawn = charts.training_curves([charts.Curves("this run", snapshot.batches, snapshot.epochs)]), \
                snapshot.version
        plotly.io.to_json(figure, validate=False)
    return [e.images_per_sec for e in job.snapshot().epochs]


def page_epochs() -> list[float]:
    """Per-epoch images/s of one run started from the page with its default settings, whole page rerun each second."""
    at = AppTest.from_file(str(REPO / "router.py"), default_timeout=120).run()
    at.switch_page("app_pages/trainer.py").run()
    next(w for w in at.number_input if w.label == "Epochs").set_value(EPOCHS).run()
    next(b for b in at.button if b.label == "Train").click().run()
    job = at.session_state["state.run"]
    while job.snapshot().active:
        time.sleep(LIVE_REFRESH_SECONDS)
        at.run()
    return [e.images_per_sec for e in job.snapshot().epochs]


def cli_epochs() -> list[float]:
    """Per-epoch images/s printed by the CLI."""
    done = subprocess.run(CLI, cwd=REPO, capture_output=True, text=True, check=True)
    return [float(v.replace(",", "")) for v in re.findall(r"([\d,]+) img/s", done.stderr)]


def live_view_cost(repeats: int = 50) -> tuple[float, float]:
    """Milliseconds of one live-view rerun's work for a 30-epoch run: (new data: build + JSON, no news: JSON)."""
    batches = [BatchEvent(1 + i // 57, i + 1, 57, 2.3 / (1 + i / 50), min(1.0, i / 500), 2000.0, 3e-3)
               for i in range(30 * 57)]

    def timed(work) -> float:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            work()
            times.append(time.perf_counter() - start)
        return 1000 * statistics.median(times)

    build = lambda: charts.training_curves([charts.Curves("this run", batches, [])])  # noqa: E731
    figure = build()
    return timed(lambda: plotly.io.to_json(build(), validate=False)), timed(lambda: plotly.io.to_json(figure,
                                                                                                       validate=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ["DLPLAY_RUNS_DIR"] = tempfile.mkdtemp(prefix="dlplay-bench-runs-")
    scheduler = Scheduler(LocalBackend(), RunStore())
    results: dict = {"cli": [], "live": [], "apptest": []}
    measures = {"cli": cli_epochs, "live": lambda: live_view_epochs(scheduler), "apptest": page_epochs}
    for r in range(args.repeats):
        order = list(measures) if r % 2 == 0 else list(measures)[::-1]  # alternate so no path always runs first
        for name in order:
            results[name].extend(measures[name]())
    scheduler.shutdown()
    cli = statistics.median(results["cli"])
    print(f"small-cnn on mnist5k, batch 64, light augmentation, {EPOCHS} epochs x {args.repeats} runs each")
    print(f"CLI                             {cli:7,.0f} img/s")
    for name, label in (("live", "page (live view)"), ("apptest", "page (AppTest, full reruns)")):
        value = statistics.median(results[name])
        print(f"{label:31s} {value:7,.0f} img/s | ratio to CLI {value / cli:.3f} (median over epochs)")
    new, same = live_view_cost()
    print(f"one live-view rerun (1,710 batches, capped to {charts.MAX_BATCH_POINTS} points): {new:.1f} ms with new "
          f"data, {same:.1f} ms without (figure reused) - median of 50")


if __name__ == "__main__":
    main()
