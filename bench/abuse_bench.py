"""What a hostile client costs a class on one server: a real `streamlit run app.py` on 127.0.0.1, two learners
training, a bystander opening pages, and one client sending everything issue 24 names.

Run: python bench/abuse_bench.py [--epochs 10] [--loads 5]

Phases, on one fresh server:
1. idle: the server's memory, and the bystander's page time (a new browser opening Home, median of --loads);
2. baseline: two learners (two browsers) press Train together (mnist5k, --epochs epochs); each one's seconds from
   the click to its test accuracy on the page, queue included;
3. attack: the same two learners press Train as the attacker starts; the bystander keeps opening pages until all
   are done. The attacker, in one browser (it keeps its cookie): a 308-byte model file describing a giant
   network, a zip of 1-bit 7000×7000 PNGs, a zip of 10,000 tiny PNGs, a 6 MB playground CSV, a 100,000-character
   kernel, the worst playground link, FedAvg at the page's maximum, and 20 tabs pressing Train; and a browser that
   blocks cookies opens 5 tabs pressing Train (counted by its address).
Printed: each hostile step's outcome (the page's first sentence) and seconds; the Streamlit process's peak memory
above idle (goal < 1.5 GB) and each worker's peak; the bystander's median page time against idle (goal ≤ 3×); the
learners' Train-to-done under attack against the baseline (goal ≤ 1.3×); and whether the server stayed up.
The browsers stand for learners' own machines: the server and its workers run on half of the cores, the three
Chromiums on the other half (with --one-machine they share every core, and the attacker's own tabs then take the
learners' CPU: on 2 cores, 10 epochs took 11 minutes instead of 17 s).
"""
import argparse
import io
import json
import os
import statistics
import struct
import sys
import tempfile
import threading
import time
import urllib.parse
import zipfile
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "browser"), str(REPO / "tests")]
import torch  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402
from safetensors.torch import save  # noqa: E402

from dlplay.checkpoint import ModelCard, card_metadata  # noqa: E402
from helpers import descendants  # noqa: E402
from serving import CHROMIUM, CHROMIUM_ARGS, SCRIPT_DONE, launch_chromium, streamlit_server  # noqa: E402

VIEW = {"width": 1300, "height": 1600}
WORST_LINK = ("playground?data=spiral&points=1000&share=90&batch=1&net=8-relu,8-relu,8-relu,8-relu,8-relu,8-relu"
              "&features=x1,x2,x1sq,x2sq,x1x2,sinx1,sinx2&opt=Adam&lr=0.03")
DONE_WATCH = """() => { window.__done = null; const t = setInterval(() => {
  if (document.body.innerText.includes('Test accuracy')) { window.__done = Date.now(); clearInterval(t); } }, 100); }"""


def rss_mb(pid: int) -> float:
    """A process's resident memory now, in MB (0 once it has gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:60]
    except OSError:
        return "?"


def cpu_seconds(pid: int) -> float | None:
    """A process's CPU time so far (user + system), in seconds; None once it has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def every_process() -> set[int]:
    """Every live process on the machine."""
    return {int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()}


def is_browser(pid: int) -> bool:
    """Whether a process is one of the bench's browsers (Chromium, or Playwright's driver)."""
    try:
        name = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return False
    return name.startswith(("chrom", "node"))


class Monitor(threading.Thread):
    """Samples the server's memory and its workers' every 0.2 s, and the CPU time of the server, of its workers
    (training and labs), of the browsers and of anything else; notes whether the server is alive."""

    def __init__(self, server):
        super().__init__(daemon=True)
        self.server, self.stop, self.server_peak, self.workers = server, threading.Event(), 0.0, {}
        self.died = False
        self.cpu_start = {pid: cpu_seconds(pid) or 0.0 for pid in every_process()}
        self.cpu_last: dict[int, tuple[str, float]] = {}

    def run(self) -> None:
        while not self.stop.wait(0.2):
            if self.server.poll() is not None:
                self.died = True
                return
            self.server_peak = max(self.server_peak, rss_mb(self.server.pid))
            workers = descendants(self.server.pid)
            for pid in workers:
                name, peak = self.workers.get(pid, (command(pid), 0.0))
                self.workers[pid] = (name, max(peak, rss_mb(pid)))
            for pid in every_process():
                if (seconds := cpu_seconds(pid)) is not None:
                    group = ("server" if pid == self.server.pid else "workers" if pid in workers
                             else "browsers" if is_browser(pid) else "other")
                    self.cpu_last[pid] = (group, seconds)

    def cpu_by_group(self) -> dict[str, float]:
        """CPU seconds spent since the monitor was made: by the server, its workers, the browsers, and the rest."""
        spent: dict[str, float] = {}
        for pid, (group, seconds) in self.cpu_last.items():
            spent[group] = spent.get(group, 0.0) + seconds - self.cpu_start.get(pid, 0.0)
        return spent


def page_seconds(browser, url: str) -> float:
    """A new browser (context) opening a page: seconds until its script has run."""
    context = browser.new_context(viewport=VIEW)
    page = context.new_page()
    start = time.monotonic()
    page.goto(url)
    page.wait_for_selector(SCRIPT_DONE, timeout=300_000)
    seconds = time.monotonic() - start
    context.close()
    return seconds


def open_learners(browser, url: str) -> list:
    """Two learners, each in a browser of their own, on the trainer page."""
    pages = []
    for _ in range(2):
        page = browser.new_context(viewport=VIEW).new_page()
        page.goto(f"{url}/trainer")
        page.wait_for_selector(SCRIPT_DONE, timeout=300_000)
        pages.append(page)
    return pages


def press_all(pages, epochs: int) -> list[float]:
    """Set each learner's epochs, then press Train in each; the click times (the pages' clocks, ms)."""
    for page in pages:
        for label, value in (("Epochs", epochs), ("Pause after epoch", 0)):
            field = page.get_by_role("spinbutton", name=label, exact=True)
            field.fill(str(value), timeout=300_000)
            field.press("Enter", timeout=300_000)
            page.wait_for_selector(SCRIPT_DONE, timeout=120_000)
    clicks = []
    for page in pages:
        page.evaluate(DONE_WATCH)
        clicks.append(page.evaluate("Date.now()"))
        page.get_by_role("button", name="Train", exact=True).click(timeout=300_000)
    return clicks


def learners_done(pages, clicks) -> list[float] | None:
    """Each learner's seconds from click to test accuracy, once all are done (else None)."""
    done = [page.evaluate("window.__done") for page in pages]
    return None if None in done else [(d - c) / 1000 for d, c in zip(done, clicks, strict=True)]


def most_at_once(runs: str) -> int:
    """The most runs one browser (one owner in the run store) had queued or training at the same moment: each run
    lives from its record's creation to its evaluation written (else its record's last change)."""
    lives: dict[str, list[tuple[float, int]]] = {}
    for record in Path(runs).glob("*/run.json"):
        run = json.loads(record.read_text())
        done = record.parent / "evaluation.safetensors"
        end = (done if done.exists() else record).stat().st_mtime
        lives.setdefault(run.get("owner", ""), []).extend([(run["created"], 1), (end, -1)])
    most = 0
    for events in lives.values():
        alive = 0
        for _, change in sorted(events, key=lambda event: (event[0], event[1])):  # an end before a start at a tie
            alive += change
            most = max(most, alive)
    return most


def server_seconds(runs: str, pages) -> list[float]:
    """Each learner's run as the server lived it: from the Train press reaching it (the run's record is created) to
    its evaluation written, queue included; what a learner on a machine of their own waits, give or take the
    page's 2-s refresh."""
    seconds = []
    for page in pages:
        folder = Path(runs) / urllib.parse.parse_qs(urllib.parse.urlparse(page.url).query)["run"][0]
        created = json.loads((folder / "run.json").read_text())["created"]
        seconds.append((folder / "evaluation.safetensors").stat().st_mtime - created)
    return seconds


# The attacker's inputs.

def giant_model() -> bytes:
    """308 bytes: one tiny tensor and metadata describing the article's CNN on 20,000 × 20,000 pictures."""
    card = ModelCard("article-150", ("a", "b"), (3, 20_000, 20_000), (0.5,) * 3, (0.5,) * 3)
    return save({"x": torch.zeros(1)}, metadata=card_metadata(card))


def bilevel_png(side: int, seed: int) -> bytes:
    from PIL import Image, ImageDraw
    picture = Image.new("1", (side, side), 0)
    ImageDraw.Draw(picture).rectangle((0, 0, 100 + seed, 300 + seed), fill=1)
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return buffer.getvalue()


def tiny_png(seed: int) -> bytes:
    """A distinct 8 × 8 grey PNG."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    rows = b"".join(b"\x00" + bytes((seed * 7 + 13 * r + c) % 256 for c in range(8)) for r in range(8))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def zip_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def big_csv() -> bytes:
    rows = [f"{(i % 997) / 100:.6f},{(i % 991) / 100:.6f},{i % 2}" for i in range(200_000)]
    return ("x1,x2,label\n" + "\n".join(rows) + "\n").encode()  # about 6 MB


def first_sentence(page) -> str:
    """What the page says after an action: its first error, warning or info box."""
    for kind in ("stAlertContentError", "stAlertContentWarning", "stAlertContentInfo"):
        boxes = page.locator(f'[data-testid="{kind}"]')
        if boxes.count():
            return boxes.first.inner_text().split("\n")[0][:110]
    return "(no message)"


def upload(page, data: bytes, name: str, nth: int = -1) -> None:
    inputs = page.locator('[data-testid="stFileUploaderDropzoneInput"]')
    (inputs.last if nth == -1 else inputs.nth(nth)).set_input_files(
        files=[{"name": name, "mimeType": "application/octet-stream", "buffer": data}])


def choose(page, box_label: str, option: str) -> None:
    page.get_by_label(box_label, exact=True).click()
    page.get_by_role("option", name=option).click()
    page.wait_for_selector(SCRIPT_DONE, timeout=120_000)


def settle(page, seconds: float = 1.0) -> None:
    """Wait until the page's script has run and stayed finished for a moment (a lab's fragment reruns it)."""
    page.wait_for_timeout(seconds * 1000)
    page.wait_for_selector(SCRIPT_DONE, timeout=300_000)


def step_model_file(context, url):
    page = context.new_page()
    page.goto(f"{url}/classify")
    page.wait_for_selector(SCRIPT_DONE, timeout=120_000)
    page.get_by_text("a model file I upload").click()
    page.wait_for_selector(SCRIPT_DONE, timeout=120_000)
    upload(page, giant_model(), "giant.safetensors", nth=0)
    page.get_by_text("cannot be used").wait_for(timeout=120_000)
    return page


def zip_step(data: bytes, wait_for: str):
    def step(context, url):
        page = context.new_page()
        page.goto(f"{url}/trainer")
        page.wait_for_selector(SCRIPT_DONE, timeout=120_000)
        choose(page, "Dataset", "your own images: a .zip of class folders")
        upload(page, data, "photos.zip")
        page.get_by_text(wait_for).first.wait_for(timeout=600_000)
        return page
    return step


def step_csv(context, url):
    page = context.new_page()
    page.goto(f"{url}/playground")
    page.wait_for_selector(SCRIPT_DONE, timeout=120_000)
    choose(page, "Data", "my points (CSV)")
    upload(page, big_csv(), "many.csv")
    page.get_by_text("takes at most").first.wait_for(timeout=120_000)
    return page


def step_kernel(context, url):
    page = context.new_page()
    page.goto(f"{url}/convolution")
    page.wait_for_selector(SCRIPT_DONE, timeout=120_000)
    page.get_by_text("typed", exact=True).click()
    page.wait_for_selector(SCRIPT_DONE, timeout=120_000)
    area = page.locator("textarea").first
    area.fill("9 " * 50_000)
    area.press("Control+Enter")
    settle(page)
    return (f"the field kept {len(area.input_value()):,} characters (it takes at most 2,000): the text never "
            f"reached the server")


def step_worst_link(context, url):
    page = context.new_page()
    page.goto(f"{url}/{WORST_LINK}")
    settle(page)
    return page


def step_fedavg(context, url):
    page = context.new_page()
    page.goto(f"{url}/after_training")
    page.wait_for_selector(SCRIPT_DONE, timeout=120_000)
    for label in ("Clients", "Rounds", "Local epochs per round"):
        page.get_by_role("slider", name=label).press("End")
        page.wait_for_selector(SCRIPT_DONE, timeout=120_000)
    page.get_by_role("button", name="Run FedAvg").click()
    progress = page.get_by_text("round 1 of 20").first
    progress.wait_for(timeout=300_000)
    return f"running in a lab worker: {progress.inner_text()}"


def tabs_press_train(context, url: str, tabs: int) -> int:
    """Open `tabs` trainer pages in one browser, then press Train in each in quick succession (as a learner who
    clicks through their tabs would: pressed one by one as each opens, a short run could finish before the next
    press, and then it is rightly no longer the browser's active run); how many were told the browser already has a
    run (every tab but the first is closed again)."""
    pages = []
    for _ in range(tabs):
        page = context.new_page()
        page.goto(f"{url}/trainer")
        page.wait_for_selector(SCRIPT_DONE, timeout=300_000)
        pages.append(page)
    for page in pages:
        page.get_by_role("button", name="Train", exact=True).click(timeout=300_000)
    for page in pages:
        settle(page)
    refused = sum("already has" in first_sentence(p) for p in pages)
    for page in pages[1:]:
        page.close()
    return refused


def step_tabs(context, url, tabs: int = 20) -> str:
    refused = tabs_press_train(context, url, tabs)
    return f"{tabs - refused} accepted, {refused} told the browser already has a run"


def step_cookieless(playwright, url, tabs: int = 5) -> str:
    """A browser that takes no cookies (Chromium's own "block all cookies" setting): every tab is a new identity,
    which quotas count by the address it comes from."""
    with tempfile.TemporaryDirectory() as profile:
        (Path(profile) / "Default").mkdir()
        (Path(profile) / "Default" / "Preferences").write_text(
            json.dumps({"profile": {"default_content_setting_values": {"cookies": 2}}}))
        context = playwright.chromium.launch_persistent_context(profile, executable_path=CHROMIUM,
                                                                args=CHROMIUM_ARGS, viewport=VIEW)
        refused = tabs_press_train(context, url, tabs)
        assert not context.cookies(), "a cookie got through"
        context.close()
    return f"{tabs - refused} accepted, {refused} told (counted by their address)"


def attack(url: str, log: list, done: threading.Event) -> None:
    """The hostile client's steps, in one browser; each step's outcome and seconds go to `log`."""
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        context = browser.new_context(viewport=VIEW)
        giants = zip_of({f"{c}/{i}.png": bilevel_png(7000, 10 * j + i) for j, c in enumerate("ab") for i in range(15)})
        tiny = zip_of({f"{c}/{i}.png": tiny_png(i * 2 + j) for j, c in enumerate("ab") for i in range(5000)})

        def on_a_page(step):
            return lambda: first_sentence(step(context, url))

        steps = [("20 tabs of one browser press Train", lambda: step_tabs(context, url)),
                 ("5 tabs of a browser that blocks cookies press Train", lambda: step_cookieless(playwright, url)),
                 ("a 308-byte model file describing a giant", on_a_page(step_model_file)),
                 (f"a zip of 30 1-bit 7000×7000 PNGs ({len(giants) // 1024} KB)",
                  on_a_page(zip_step(giants, "megapixels"))),
                 (f"a zip of 10,000 tiny PNGs ({len(tiny) // 1024} KB)", on_a_page(zip_step(tiny, "test images of"))),
                 ("a 6 MB playground CSV", on_a_page(step_csv)),
                 ("a 100,000-character kernel", lambda: step_kernel(context, url)),
                 ("the worst playground link", on_a_page(step_worst_link)),
                 ("FedAvg at the page's maximum (20 × 20 × 3)", lambda: step_fedavg(context, url))]
        for name, step in steps:
            start = time.monotonic()
            try:
                outcome = step()
            except Exception as err:  # the bench reports a step it could not drive, and goes on
                outcome = f"step not driven: {type(err).__name__}: {str(err)[:80]}"
            log.append((name, time.monotonic() - start, outcome))
            print(f"  attacker: {name}: {outcome}", flush=True)
        done.set()
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--one-machine", action="store_true",
                        help="let the browsers share every core with the server, instead of a core of their own")
    args = parser.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    split = not args.one_machine and len(cores) >= 2
    if split:  # the server and its workers on one half of the cores, every browser on the other half
        os.sched_setaffinity(0, cores[:len(cores) // 2])
    with tempfile.TemporaryDirectory() as runs, streamlit_server(env={"DLPLAY_RUNS_DIR": runs}) as (url, server):
        if split:
            os.sched_setaffinity(0, cores[len(cores) // 2:])
        print(f"the server on cores {sorted(os.sched_getaffinity(server.pid))}, the browsers on "
              f"{sorted(os.sched_getaffinity(0))}")
        measure(url, server, runs, args)


def measure(url: str, server, runs: str, args) -> None:
    """The three phases against one running server."""
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page_seconds(browser, url)  # the first page pays the imports
        time.sleep(3)
        idle_rss = rss_mb(server.pid)
        idle_page = statistics.median(page_seconds(browser, url) for _ in range(args.loads))
        print(f"idle: server {idle_rss:,.0f} MB; bystander's page {idle_page:.2f} s (median of {args.loads})")

        learners = open_learners(browser, url)
        clicks = press_all(learners, args.epochs)
        while (baseline := learners_done(learners, clicks)) is None:
            time.sleep(0.2)
        baseline_server = server_seconds(runs, learners)
        print(f"baseline: two learners, Train to done: {', '.join(f'{s:.1f} s' for s in baseline)} in their browsers, "
              f"{', '.join(f'{s:.1f} s' for s in baseline_server)} on the server")
        learners = open_learners(browser, url)  # two learners again, each in a fresh browser

        monitor = Monitor(server)  # from here on: the attack phase
        attack_start = time.monotonic()
        monitor.start()
        log, attacker_done = [], threading.Event()
        attacker = threading.Thread(target=attack, args=(url, log, attacker_done), daemon=True)
        attacker.start()
        clicks = press_all(learners, args.epochs)
        loads, rounds = [], []  # rounds: each pair of learners' runs, in their browsers and on the server
        while not rounds or not attacker_done.is_set():  # the learners train again and again while the attack lasts
            loads.append(page_seconds(browser, url))
            if (done := learners_done(learners, clicks)) is not None:
                rounds.append((done, server_seconds(runs, learners)))
                if not attacker_done.is_set():
                    learners = open_learners(browser, url)
                    clicks = press_all(learners, args.epochs)
            if server.poll() is not None:
                break
        attacker.join(60)
        monitor.stop.set()
        monitor.join()

        print("\nthe attacker's steps:")
        for name, seconds, outcome in log:
            print(f"  {name:52} {seconds:6.1f} s  {outcome}")
        print("\npeak memory of the server's other processes (workers are forked from the zygote, and named as it):")
        for pid, (name, peak) in sorted(monitor.workers.items(), key=lambda item: -item[1][1])[:8]:
            print(f"  {pid:>7} {peak:7,.0f} MB  {name}")
        spent = monitor.cpu_by_group()
        print(f"\nCPU seconds during the attack phase ({time.monotonic() - attack_start:.0f} s on "
              f"{os.cpu_count()} cores): " + ", ".join(f"{group} {seconds:,.0f}" for group, seconds in spent.items()))
        above = monitor.server_peak - idle_rss
        page_ratio = statistics.median(loads) / idle_page
        print(f"\nserver peak above idle: {above:,.0f} MB (goal < 1,500): {'met' if above < 1500 else 'NOT met'}")
        print(f"bystander's page: median {statistics.median(loads):.2f} s over {len(loads)} loads = "
              f"{page_ratio:.2f}× idle (goal ≤ 3×): {'met' if page_ratio <= 3 else 'NOT met'}")
        for where, index, base in (("in their browsers (which share the attacker's cores here)", 0, baseline),
                                   ("on the server, queue included", 1, baseline_server)):
            slowest = [max(pair[index]) for pair in rounds]
            ratio = statistics.median(slowest) / max(base) if slowest else float("inf")
            print(f"learners, Train to done under attack, {where}: {len(rounds)} rounds, the slower of two "
                  f"{', '.join(f'{s:.1f}' for s in slowest)} s; median {ratio:.2f}× baseline, worst "
                  f"{max(slowest, default=float('inf')) / max(base):.2f}×" + (" (goal ≤ 1.3×: "
                  f"{'met' if ratio <= 1.3 else 'NOT met'})" if index else ""))
        print(f"the most runs one browser had queued or training at once: {most_at_once(runs)} (goal: 1)")
        print(f"server stayed up: {'yes' if not monitor.died and server.poll() is None else 'NO'}")
        browser.close()


if __name__ == "__main__":
    main()
