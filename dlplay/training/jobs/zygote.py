"""Local worker processes: a zygote that imports torch once and forks a fresh process for each job; each job talks
to the server over its own socket in JSON messages (never pickles).

Why a zygote rather than multiprocessing: a job then starts in milliseconds instead of paying a multi-second
`import torch`, and nothing of the server is re-run in the worker (multiprocessing's spawn and forkserver re-execute
the server's `__main__`, which under Streamlit is the app script itself).
"""
import json
import logging
import os
import select
import signal
import socket
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path

import torch
import torch._dynamo  # noqa: F401  torch.optim imports it on first use (2-3 s): the zygote pays once for all jobs

from dlplay.checkpoint import write_atomically
from dlplay.data import load_dataset, read_dataset
from dlplay.training.jobs.labs import serve_lab  # the labs' imports (ONNX Runtime...) too: paid once, not per lab
from dlplay.training.jobs.runner import STATE_FILE, JobRunner, read_resume_point
from dlplay.training.jobs.spec import JobSpec, RunStatus

NICENESS = 10  # below the server: a page render preempts training, so pages stay quick under load
LOG_FILE = "worker.log"
MAX_REQUEST = 1 << 20  # bytes of one job request (the spec as JSON)


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
    if spec.gpu is not None:  # before anything touches CUDA
        os.environ["CUDA_VISIBLE_DEVICES"] = str(spec.gpu)
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


def zygote(control: socket.socket, server_alive) -> None:
    """Fork a worker for each job request (a training run, or a lab) that arrives on `control`; return when
    `server_alive` (the read end of a pipe the server holds open) reports end of file. Single-threaded on purpose:
    forking is then safe."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # finished workers are reaped by the system
    while True:
        readable, _, _ = select.select([control, server_alive], [], [])
        if server_alive in readable and not os.read(server_alive.fileno(), 1):
            return  # the server has gone
        if control not in readable:
            continue
        message, fds, _flags, _address = socket.recv_fds(control, MAX_REQUEST, 1)
        if os.fork() == 0:  # the worker: a copy of this process, torch already imported
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            control.close()
            try:
                request = json.loads(message)
                (serve_lab if "kind" in request else serve)(Connection(fds[0]), request)
            finally:
                os._exit(0)
        for fd in fds:
            os.close(fd)


def main() -> None:
    """`python -m dlplay.training.jobs.zygote FD`: the zygote; job requests arrive on the datagram socket FD, and its
    standard input is a pipe whose closing means the server has gone."""
    if hasattr(os, "nice"):
        os.nice(NICENESS)  # workers inherit it
    zygote(socket.socket(fileno=int(sys.argv[1])), sys.stdin)


if __name__ == "__main__":
    main()
