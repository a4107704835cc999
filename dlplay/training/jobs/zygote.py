"""Local worker processes: a zygote that imports torch once and forks a fresh process for each job; each job talks
to the server over its own socket in JSON messages (never pickles).

Why a zygote rather than multiprocessing: a job then starts in milliseconds instead of paying a multi-second
`import torch`, and nothing of the server is re-run in the worker (multiprocessing's spawn and forkserver re-execute
the server's `__main__`, which under Streamlit is the app script itself).

On macOS a forked child may not use Metal (Apple's GPU) nor, safely, the Objective-C runtime its parent loaded, so
there the zygote starts each job in a fresh interpreter instead (`--job`: a second or two for the imports).
DLPLAY_WORKER_START=fork|spawn chooses by hand.
"""
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from multiprocessing.connection import Connection
from pathlib import Path

import torch
import torch._dynamo  # noqa: F401  torch.optim imports it on first use (2-3 s): the zygote pays once for all jobs

from dlplay.checkpoint import write_atomically
from dlplay.data import load_dataset, read_dataset
from dlplay.training.jobs.gpus import worker_visible_devices
from dlplay.training.jobs.labs import serve_lab  # the labs' imports (ONNX Runtime...) too: paid once, not per lab
from dlplay.training.jobs.runner import STATE_FILE, JobRunner, read_resume_point
from dlplay.training.jobs.spec import JobSpec, RunStatus

NICENESS = 10  # below the server: a page render preempts training, so pages stay quick under load
LOG_FILE = "worker.log"
MAX_REQUEST = 1 << 20  # bytes of one job request (the spec as JSON)


def start_method(platform: str = sys.platform, env=os.environ) -> str:
    """How the zygote starts a job: 'fork' (a copy of itself, torch already imported), or 'spawn' (a fresh
    interpreter: on macOS, where a forked child may not use Metal); DLPLAY_WORKER_START overrides."""
    chosen = env.get("DLPLAY_WORKER_START") or ("spawn" if platform == "darwin" else "fork")
    if chosen not in ("fork", "spawn"):
        raise ValueError(f"DLPLAY_WORKER_START must be 'fork' or 'spawn', not {chosen!r}")
    return chosen


def listen(conn: Connection, runner: JobRunner) -> None:
    """Apply the server's commands until the connection closes; a closed connection means the server is gone."""
    while True:
        try:
            command = json.loads(conn.recv_bytes())
        except (EOFError, OSError):
            os._exit(1)  # no server to report to: leave at once (the last checkpoint stays on disk)
        action = command["cmd"]
        if action == "threads":
            runner.set_threads(command["n"])
        elif action in ("pause", "resume", "stop"):
            getattr(runner, action)()


def serve(conn: Connection, request: dict) -> None:
    """Run the job in `request` (spec, run folder, dataset file) in this process, reporting over `conn`."""
    folder = Path(request["run_dir"])
    folder.mkdir(parents=True, exist_ok=True)
    log = open(folder / LOG_FILE, "a", buffering=1)
    os.dup2(log.fileno(), 1)  # stray prints and warnings go to the run's log, not the server's terminal
    os.dup2(log.fileno(), 2)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO)
    spec = JobSpec.from_plain(request["spec"])
    # Before anything touches CUDA: the GPU the scheduler chose, named as the server's own setting names it (the
    # server's GPU 0 under CUDA_VISIBLE_DEVICES=2,3 is the machine's GPU 2), or none for a run on the CPU.
    os.environ["CUDA_VISIBLE_DEVICES"] = worker_visible_devices(spec.gpu, os.environ.get("CUDA_VISIBLE_DEVICES"))
    torch.set_num_threads(spec.threads)
    lock = threading.Lock()

    def emit(event: dict) -> None:
        with lock:
            conn.send_bytes(json.dumps(event).encode())

    emit({"type": "hello", "pid": os.getpid()})
    try:
        dataset_file = request["dataset_file"]
        dataset = read_dataset(Path(dataset_file)) if dataset_file else load_dataset(spec.data.name)
        resume = read_resume_point(folder / STATE_FILE) if spec.resume else None
        runner = JobRunner(spec, dataset, emit, lambda name, data: write_atomically(folder / name, data), resume)
    except Exception as err:  # the data or the model could not be prepared: one sentence for the page
        logging.exception("job could not start")
        emit({"type": "done", "status": RunStatus.FAILED.value, "message": f"Training could not start: {err}"})
        return
    threading.Thread(target=listen, args=(conn, runner), daemon=True, name="dlplay-commands").start()
    runner.run()


def run_job(conn: Connection, request: dict) -> None:
    """Run one job request, a training run or a lab, in this process."""
    (serve_lab if "kind" in request else serve)(conn, request)


def _spawn(message: bytes, fd: int) -> None:
    """Start a fresh interpreter for a job request; the request goes in a file it reads and removes."""
    handle, path = tempfile.mkstemp(prefix="dlplay-job-", suffix=".json")
    with os.fdopen(handle, "wb") as request:
        request.write(message)
    subprocess.Popen([sys.executable, "-m", "dlplay.training.jobs.zygote", "--job", str(fd), path],
                     stdin=subprocess.DEVNULL, pass_fds=(fd,))


def zygote(control: socket.socket, server_alive) -> None:
    """Start a worker for each job request (a training run, or a lab) that arrives on `control`, forked or spawned
    (see start_method); return when `server_alive` (the read end of a pipe the server holds open) reports end of
    file. Single-threaded on purpose: forking is then safe."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # finished workers are reaped by the system
    spawn = start_method() == "spawn"
    while True:
        readable, _, _ = select.select([control, server_alive], [], [])
        if server_alive in readable and not os.read(server_alive.fileno(), 1):
            return  # the server has gone
        if control not in readable:
            continue
        message, fds, _flags, _address = socket.recv_fds(control, MAX_REQUEST, 1)
        if spawn:
            _spawn(message, fds[0])
        elif os.fork() == 0:  # the worker: a copy of this process, torch already imported
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            control.close()
            try:
                run_job(Connection(fds[0]), json.loads(message))
            finally:
                os._exit(0)
        for fd in fds:
            os.close(fd)


def main() -> None:
    """`python -m dlplay.training.jobs.zygote FD`: the zygote; job requests arrive on the datagram socket FD, and its
    standard input is a pipe whose closing means the server has gone. `... --job FD FILE`: one spawned worker, which
    reports on the socket FD and reads its request from FILE (and removes it)."""
    if sys.argv[1] == "--job":
        path = Path(sys.argv[3])
        request = json.loads(path.read_bytes())
        path.unlink()
        try:
            run_job(Connection(int(sys.argv[2])), request)
        finally:
            os._exit(0)
    if hasattr(os, "nice"):
        os.nice(NICENESS)  # workers inherit it
    zygote(socket.socket(fileno=int(sys.argv[1])), sys.stdin)


if __name__ == "__main__":
    main()
