"""Training throughput on the CNN trainer page vs the CLI, same settings, side by side in one run.

Run: python bench/trainer_page_bench.py [--repeats 3]
- page (live view): the page's code path as a browser drives it: a TrainingRun in its worker thread while the
  main thread does the live fragment's work once a second (snapshot, progress, Plotly figure serialised to JSON).
- page (AppTest, full reruns): press Train in Streamlit's AppTest and rerun the *whole* page once a second until
  the run ends. A browser reruns only the fragment, so this is a pessimistic bound.
- CLI: `python -m dlplay train` with the page's default settings.
All report per-epoch images/s; the script prints the medians and their ratios to the CLI.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from dlplay.augment import LIGHT  # noqa: E402
from dlplay.data import load_dataset  # noqa: E402
from dlplay.device import pick_device  # noqa: E402
from dlplay.models import build_model  # noqa: E402
from dlplay.train import Trainer, build_optimizer  # noqa: E402
from dlplay.runs import RunConfig, RunSlots, TrainingRun  # noqa: E402
from ui import charts  # noqa: E402

EPOCHS = 3
CLI = [sys.executable, "-m", "dlplay", "train", "--dataset", "mnist5k", "--model", "small-cnn", "--epochs",
       str(EPOCHS), "--batch-size", "64", "--lr", "3e-3", "--optimizer", "adamw", "--schedule", "onecycle",
       "--augment", "light"]


def live_view_epochs() -> list[float]:
    """Per-epoch images/s of a page-configured run while the main thread draws the live view each second."""
    run = TrainingRun(RunConfig(epochs=EPOCHS), load_dataset("mnist5k"), RunSlots(1)).start()
    while (snapshot := run.snapshot()).active:
        time.sleep(1.0)
        charts.training_curves([charts.Curves("this run", snapshot.batches, snapshot.epochs)]).to_json()
    return [e.images_per_sec for e in run.snapshot().epochs]


def trainer_epochs(on_worker_thread: bool) -> list[float]:
    """Per-epoch images/s of the CLI's Trainer setup, run on this process's main thread or on a worker thread."""
    data = load_dataset("mnist5k")
    mean, std = data.channel_stats()
    model = build_model("small-cnn", data.input_shape, data.num_classes, mean, std)
    trainer = Trainer(model, build_optimizer("adamw", model.parameters(), 3e-3, 5e-4), data.train, pick_device("cpu"),
                      batch_size=64, epochs=EPOCHS, schedule="onecycle", augmentation=LIGHT)
    result: list[float] = []
    work = lambda: result.extend(e.images_per_sec for e in trainer.fit().epochs)  # noqa: E731
    if on_worker_thread:
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
    else:
        work()
    return result


def main_thread_epochs() -> list[float]:
    return trainer_epochs(False)


def worker_thread_epochs() -> list[float]:
    return trainer_epochs(True)


def page_epochs() -> list[float]:
    """Per-epoch images/s of one run started from the page with its default settings."""
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120).run()
    at.switch_page("app_pages/trainer.py").run()
    next(w for w in at.number_input if w.label == "Epochs").set_value(EPOCHS).run()
    next(b for b in at.button if b.label == "Train").click().run()
    run = at.session_state["trainer.run"]
    while run.snapshot().active:
        time.sleep(1.0)
        at.run()  # the page's own work while training: what the live fragment costs
    return [e.images_per_sec for e in run.snapshot().epochs]


def cli_epochs() -> list[float]:
    """Per-epoch images/s printed by the CLI (run with the environment a user's shell has)."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    done = subprocess.run(CLI, cwd=REPO, capture_output=True, text=True, check=True, env=env)
    return [float(v.replace(",", "")) for v in re.findall(r"([\d,]+) img/s", done.stderr)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    results: dict = {cli_epochs: [], live_view_epochs: [], page_epochs: [], main_thread_epochs: [],
                     worker_thread_epochs: []}
    for r in range(args.repeats):
        order = list(results) if r % 2 == 0 else list(results)[::-1]  # alternate so no path always runs first
        for measure in order:
            results[measure].extend(measure())
    cli = statistics.median(results[cli_epochs])
    print(f"small-cnn on mnist5k, batch 64, light augmentation, {EPOCHS} epochs x {args.repeats} runs each")
    print(f"CLI                             {cli:7,.0f} img/s")
    for measure, label in ((live_view_epochs, "page (live view)"), (page_epochs, "page (AppTest, full reruns)")):
        value = statistics.median(results[measure])
        print(f"{label:31s} {value:7,.0f} img/s | ratio to CLI {value / cli:.3f} (median over epochs)")
    main, worker = (statistics.median(results[m]) for m in (main_thread_epochs, worker_thread_epochs))
    print(f"where the gap comes from: the same Trainer in this process on the main thread {main:,.0f} img/s, on a "
          f"worker thread (as the page must) {worker:,.0f} img/s: ratio {worker / main:.3f}")


if __name__ == "__main__":
    main()
