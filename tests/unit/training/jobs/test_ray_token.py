"""A real Ray cluster with token authentication, started as the README says (`ray get-auth-token --generate`, then
`ray start --head` with RAY_AUTH_MODE=token) in a subprocess on 127.0.0.1, its files in a private folder: the server's
settings (DLPLAY_RAY_ADDRESS) and the CLI's --ray train on it with the token, and a missing or wrong token is one
sentence that says what to set. Each client is a fresh process, as the app and the CLI are (Ray reads its token once
per process), with a home of its own, so that no ~/.ray/auth_token of the machine's takes part."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from dlplay.checkpoint import load_model
from dlplay.training.jobs.ray_backend import refusal, unreachable
from helpers import alive, descendants, wait_until

pytestmark = pytest.mark.slow  # a Ray cluster

REPO = Path(__file__).resolve().parents[4]
RAY = str(Path(sys.executable).parent / "ray")
RAY_SETTINGS = ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")
# Ray tries a refused connection for 20 s, and waits 40 s for an address where nothing answers: a second tells here.
GIVE_UP_SOON = {"RAY_gcs_server_port_wait_time_s": "1", "RAY_gcs_rpc_server_connect_timeout_s": "1",
                "RAY_py_gcs_connect_timeout_s": "1"}


@dataclass(frozen=True)
class Cluster:
    address: str
    token_file: Path  # the head's ~/.ray/auth_token
    env: dict[str, str]  # no Ray settings, and a home without a token


@pytest.fixture(scope="module")
def cluster():
    """A one-node cluster that asks for a token, as the README starts it; ended with all its processes."""
    folder = Path(tempfile.mkdtemp(prefix="dlplay-ray-"))  # short: Ray's sockets live under it
    head_home, client_home = folder / "head", folder / "client"
    client_home.mkdir()
    clean = {name: value for name, value in os.environ.items() if name not in RAY_SETTINGS}
    subprocess.run([RAY, "get-auth-token", "--generate"], env={**clean, "HOME": str(head_home)}, check=True,
                   capture_output=True, timeout=60)
    port = free_port()
    log = folder / "head.log"
    with log.open("w") as out:
        head = subprocess.Popen(
            [RAY, "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
             "--include-dashboard=false", f"--dashboard-port={free_port()}",
             f"--dashboard-agent-listen-port={free_port()}", f"--temp-dir={folder / 'ray'}", "--disable-usage-stats"],
            env={**clean, "HOME": str(head_home), "RAY_AUTH_MODE": "token"}, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)  # its own process group: the finalizer ends all of it
    try:
        wait_until(lambda: head.poll() is not None or "Ray runtime started" in log.read_text(), timeout=120)
        assert head.poll() is None, log.read_text()
        yield Cluster(f"127.0.0.1:{port}", head_home / ".ray" / "auth_token", {**clean, "HOME": str(client_home)})
    finally:
        stop(head)
        shutil.rmtree(folder, ignore_errors=True)


def free_port() -> int:
    """A TCP port that is free on localhost now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(head: subprocess.Popen) -> None:
    """End the head and every process it started, and wait until none is left."""
    family = descendants(head.pid) | {head.pid}
    os.killpg(head.pid, signal.SIGKILL)
    head.wait(30)
    wait_until(lambda: not any(alive(pid) for pid in family), timeout=30)
    for pid in family:  # those orphaned to this process (a subreaper, see conftest) are reaped here
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass


def dlplay(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """`python -m dlplay ARGS` in a fresh process with exactly `env`."""
    return subprocess.run([sys.executable, "-m", "dlplay", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)


SERVER = textwrap.dedent("""
    import json, os, sys, time
    from dlplay.data import Dataset, ImageSet, load_dataset
    from dlplay.training.jobs import RunConfig, ServerSettings, SettingError, start_scheduler
    try:
        scheduler = start_scheduler(ServerSettings.from_env())  # what the app's trainer page asks for
    except SettingError as err:
        sys.exit(f"Training is not available: {err}.")  # what the page shows
    digits = load_dataset("mnist5k")
    train = ImageSet(digits.train.images[:512], digits.train.labels[:512])
    job = scheduler.submit(RunConfig(epochs=1), Dataset("digits", digits.class_names, train, digits.test), "alice",
                           registered=False)
    deadline = time.monotonic() + 240
    while job.snapshot().active and time.monotonic() < deadline:
        time.sleep(0.1)
    snap = job.snapshot()
    print(json.dumps({"status": snap.status.value, "message": snap.message, "worker": snap.worker_pid,
                      "server": os.getpid(), "model": job.model_file().exists()}))
    scheduler.shutdown()
""")


def server(env: dict[str, str]) -> subprocess.CompletedProcess:
    """SERVER in a fresh process with exactly `env`."""
    return subprocess.run([sys.executable, "-c", SERVER], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)


def test_the_servers_settings_train_on_the_cluster_with_its_token_file(cluster):
    done = server({**cluster.env, "DLPLAY_RAY_ADDRESS": cluster.address, "RAY_AUTH_MODE": "token",
                   "RAY_AUTH_TOKEN_PATH": str(cluster.token_file)})
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["status"] == "finished" and result["model"], result["message"]
    assert result["worker"] not in (0, result["server"])  # trained in a Ray worker process


def test_the_cli_trains_on_the_cluster_with_its_token(cluster, tmp_path):
    path = tmp_path / "ray.safetensors"
    done = dlplay(["train", "--ray", cluster.address, "--dry-run", "--save", str(path)],
                  {**cluster.env, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": cluster.token_file.read_text()})
    assert done.returncode == 0, done.stderr
    assert "as a Ray job on 2 CPU(s)" in done.stdout and "Trained 1 epoch(s)" in done.stdout
    _, card = load_model(path)
    assert card.dataset == "mnist5k"


@pytest.mark.parametrize("case", ["no token", "wrong token", "no cluster"])
def test_the_cli_says_in_one_sentence_what_to_set(cluster, case):
    address = f"127.0.0.1:{free_port()}" if case == "no cluster" else cluster.address
    env = {**cluster.env, **GIVE_UP_SOON, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": cluster.token_file.read_text()}
    if case == "no token":
        del env["RAY_AUTH_TOKEN"]
        expected = refusal(address, token_mode=True, token_found=False)
    elif case == "wrong token":
        env["RAY_AUTH_TOKEN"] = "0" * 64
        expected = refusal(address, token_mode=True)
    else:
        expected = unreachable(address)
    done = dlplay(["train", "--ray", address, "--dry-run"], env)
    assert done.returncode == 2 and done.stderr.splitlines()[-1] == f"error: {expected}", done.stderr
    assert "Traceback" not in done.stderr


def test_the_page_says_what_to_set_when_the_server_has_the_token_but_not_the_mode(cluster):
    done = server({**cluster.env, **GIVE_UP_SOON, "DLPLAY_RAY_ADDRESS": cluster.address,
                   "HOME": str(cluster.token_file.parents[1])})  # the token in ~/.ray/auth_token, as in issue 24
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == \
        f"Training is not available: {refusal(cluster.address, token_mode=False)}.", done.stderr
