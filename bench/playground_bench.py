"""The network playground's speed: updates a second in a real browser, seconds of play until a 2 × 8 tanh network
reaches 95% test accuracy on the spiral, and what one update costs the server.

Run: python bench/playground_bench.py [--runs 3]
- browser: `streamlit run app.py` and headless Chromium (as the browser tests run them) open a link to the spiral
  (5% noise) with x₁, x₂, sin x₁, sin x₂ into two tanh layers of 8, Adam at 0.03; press Play and read the page's
  Epoch and Test accuracy every 50 ms: updates/s is how often the epoch shown changes; seconds to 95% runs from
  the click.
- in process: the same update without a browser (train EPOCHS_PER_UPDATE epochs, then draw the surface and the
  points as a picture and the loss curves as a figure, as the page does while playing; the network drawing and
  neuron pictures wait for a pause), median of 30.
Medians over the runs. The machine is shared by server and browser, as in the crowd bench's co-located mode.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "browser")]
from playwright.sync_api import sync_playwright  # noqa: E402

from dlplay.lessons.playground import EPOCHS_PER_UPDATE, UPDATE_SECONDS, NetworkConfig, Session, make_points  # noqa: E402
from serving import launch_chromium, open_page, streamlit_server  # noqa: E402
from ui import charts  # noqa: E402

LINK = "playground?data=spiral&noise=5&features=x1,x2,sinx1,sinx2&net=8-tanh,8-tanh&opt=Adam&lr=0.03"
CONFIG = NetworkConfig(features=("x₁", "x₂", "sin x₁", "sin x₂"), hidden=(8, 8), activations=("tanh", "tanh"),
                       optimizer="Adam", lr=0.03)
PLAY_SECONDS = 30
TARGET = 0.95


def metric(page, label: str) -> str:
    """The value a metric shows now."""
    box = page.locator('[data-testid="stMetric"]').filter(has_text=label).locator('[data-testid="stMetricValue"]')
    return box.inner_text(timeout=5_000)


def browser_run(browser, url: str) -> tuple[float, float | None]:
    """One play of the spiral: (updates per second, seconds until 95% test accuracy or None)."""
    page = open_page(browser, f"{url}/{LINK}", height=1500)
    page.get_by_role("button", name="Play").click()
    start, changes, seen, reached = time.perf_counter(), [], "0", None
    while time.perf_counter() - start < PLAY_SECONDS:
        try:
            epoch, accuracy = metric(page, "Epoch"), metric(page, "Test accuracy")
        except Exception:  # noqa: BLE001  the metrics are being redrawn: read again
            continue
        now = time.perf_counter() - start
        if epoch != seen:
            changes.append(now)
            seen = epoch
        if reached is None and float(accuracy.rstrip("%")) / 100 >= TARGET:
            reached = now
        time.sleep(0.05)
    page.close()
    rate = (len(changes) - 1) / (changes[-1] - changes[0]) if len(changes) > 1 else 0.0
    return rate, reached


def update_cost(epochs: int) -> float:
    """Median seconds of one update computed in this process (no browser, no Streamlit)."""
    session = Session(make_points("spiral", 300, 0.05, 0.5, 0), CONFIG, seed=0)
    times = []
    for _ in range(30):
        begin = time.perf_counter()
        session.train(epochs)
        axis, values = session.surface()
        points = session.points
        charts.playground_picture(axis.tolist(), values, (points.train_x, points.train_y), None, points.task,
                                  points.classes, False)
        charts.lines({"training": session.train_losses, "test": session.test_losses}).to_json()
        times.append(time.perf_counter() - begin)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rates, reached = [], []
    with streamlit_server() as (url, _server), sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        for run in range(args.runs):
            rate, seconds = browser_run(browser, url)
            rates.append(rate)
            reached.append(seconds)
            after = f"not within {PLAY_SECONDS} s" if seconds is None else f"{seconds:.1f} s"
            print(f"  run {run + 1}: {rate:.1f} updates/s, 95% after {after}", flush=True)
        browser.close()
    done = [s for s in reached if s is not None]
    print(f"browser: {statistics.median(rates):.1f} updates/s ({EPOCHS_PER_UPDATE} epochs each, a tick every "
          f"{UPDATE_SECONDS} s); 95% test accuracy on the spiral after "
          f"{statistics.median(done):.1f} s of play (median of {len(done)} of {args.runs} runs that reached it)"
          if done else "the spiral never reached 95%")
    cost = update_cost(EPOCHS_PER_UPDATE)
    print(f"in process: one update ({EPOCHS_PER_UPDATE} epochs, the surface and the figures) takes "
          f"{cost * 1000:.0f} ms (median of 30): at most {1 / cost:.1f} updates/s from the server's side")


if __name__ == "__main__":
    main()
