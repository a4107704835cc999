"""Run jobs in local worker processes: one fresh process per job, forked by a zygote process that imported torch
once (see worker.py), talking to the server over a socket of its own."""
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

from dlplay.training.jobs.progress import Progress
from dlplay.training.jobs.spec import JobSpec

log = logging.getLogger(__name__)

PACKAGE_ROOT = Path(__file__).resolve().parents[3]  # the folder that holds dlplay/, for the zygote's imports
# The zygote must never start CUDA (a forked child cannot use a parent's CUDA): if anything asks whether CUDA is
# there, NVML answers without touching the CUDA runtime.
ZYGOTE_ENV = {"PYTORCH_NVML_BASED_CUDA_CHECK": "1"}


class LocalHandle:
    """The server's end of one local job: commands out, events in on a reader thread."""

    def __init__(self, conn: Connection, progress: Progress, on_exit: Callable[["LocalHandle"], None]):
        self._conn, self._progress, self._on_exit = conn, progress, on_exit
        self._lock = threading.Lock()
        self.pid: int | None = None  # the worker's process id, once it has said hello
        self.done = False
        self._doomed = False  # killed before it said hello: killed as soon as it does
        self._reader = threading.Thread(target=self._read, daemon=True, name="dlplay-job-reader")
        self._reader.start()

    def command(self, cmd: str, **args) -> None:
        """Send a command (pause, resume, stop, threads); a worker that already left ignores it."""
        with self._lock:
            try:
                self._conn.send_bytes(json.dumps({"cmd": cmd, **args}).encode())
            except OSError:
                pass

    def _read(self) -> None:
        try:
            while True:
                try:
                    message = self._conn.recv_bytes()
                except (EOFError, OSError):
                    break  # the worker has gone: its socket closed with it
                event = json.loads(message)
                if event["type"] == "hello":
                    self.pid = event["pid"]
                    if self._doomed:
                        self.kill()
                    continue
                self._progress.apply(event)
                self.done = self.done or event["type"] == "done"
        except Exception:  # a message the server cannot read: end that worker rather than leak its slot silently
            log.exception("unreadable message from training worker %s", self.pid)
            self.kill()
        finally:
            self._conn.close()
            if not self.done:
                self._progress.crashed()
            self._on_exit(self)

    def kill(self) -> None:
        """End the worker at once (a cancel, the server's shutdown); before its hello, as soon as it says it."""
        self._doomed = True
        if self.pid and not self.done:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class LocalBackend:
    """Starts each job in a new local worker process, forked by the zygote."""

    name = "local processes"
    shares_cores = True  # the scheduler splits this machine's cores between the running workers

    def __init__(self):
        if not hasattr(os, "fork"):
            raise RuntimeError("local training workers need Linux or macOS; on this system set "
                               "DLPLAY_RAY_ADDRESS=local to train through Ray instead")
        self._lock = threading.Lock()
        self._start_zygote()  # it imports torch in the background: ready before the first learner presses Train

    def _start_zygote(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)  # one datagram per job request
        path = os.pathsep.join([str(PACKAGE_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
        self._zygote = subprocess.Popen([sys.executable, "-m", "dlplay.training.jobs.zygote", str(theirs.fileno())],
                                        stdin=subprocess.PIPE, pass_fds=(theirs.fileno(),),
                                        env={**os.environ, "PYTHONPATH": path, **ZYGOTE_ENV})
        theirs.close()
        self._control = ours

    def capacity(self) -> None:
        """No capacity of its own: the scheduler computes it from this machine's cores and GPUs."""
        return None

    def launch(self, spec: JobSpec, run_dir: Path, dataset_file: Path | None, progress: Progress,
               on_exit: Callable[[LocalHandle], None]) -> LocalHandle:
        """Ask the zygote for a worker for this job; events flow into `progress`, and `on_exit` is called when the
        worker has gone (finished, or died)."""
        return self._fork({"spec": spec.to_plain(), "run_dir": str(run_dir),
                           "dataset_file": str(dataset_file) if dataset_file else None}, progress, on_exit)

    def launch_lab(self, request: dict, progress, on_exit: Callable[[LocalHandle], None]) -> LocalHandle:
        """Ask the zygote for a worker for a lab (see labs.serve_lab); as `launch`."""
        return self._fork(request, progress, on_exit)

    def _fork(self, request: dict, progress, on_exit: Callable[[LocalHandle], None]) -> LocalHandle:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with self._lock:
            if self._zygote.poll() is not None:  # it died (killed by hand?): a new one takes over
                self._start_zygote()
            socket.send_fds(self._control, [json.dumps(request).encode()], [theirs.fileno()])
        theirs.close()  # the worker holds the only other end: when it dies, our reads end
        return LocalHandle(Connection(ours.detach()), progress, on_exit)

    def shutdown(self) -> None:
        """Stop the zygote (workers end on their own when their server socket closes)."""
        self._zygote.stdin.close()
        try:
            self._zygote.wait(10)
        except subprocess.TimeoutExpired:
            self._zygote.kill()
        self._control.close()
