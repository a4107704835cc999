"""One run across processes: `torchrun` starts two CPU processes (gloo) here, no mocks of torch.distributed. The
shards cover each epoch once; two processes give a single process's weights and metrics for the same global batch;
only rank 0 talks and writes; a process that dies ends the whole run."""
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from dlplay.data import ImageSet
from dlplay.device import pick_device
from dlplay.training.distributed import Ranks, shard
from dlplay.training.trainer import Trainer
from helpers import descendants

REPO = Path(__file__).resolve().parents[3]
EXACT = ["--model", "article-150", "--optimizer", "sgd", "--lr", "0.05", "--schedule", "constant", "--augment",
         "none", "--no-mixed-precision", "--label-smoothing", "0"]  # no batch-norm, dropout or augmentation draws
TOLERANCE = 1e-5  # float32 sums in another order (per-rank means averaged by DDP)


def torchrun(processes: int, *argv: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}", "-m",
            "dlplay", *argv]  # --standalone: a rendezvous on a free local port


@pytest.mark.parametrize("size", [1, 7, 64, 65, 1000])
@pytest.mark.parametrize("world", [1, 2, 3, 8])
def test_shards_are_disjoint_cover_the_epoch_and_are_equal_in_length(size, world):
    order = torch.randperm(size, generator=torch.Generator().manual_seed(size))
    parts = [shard(order, Ranks(rank, world, rank)) for rank in range(world)]
    assert len({len(p) for p in parts}) == 1  # every rank takes the same number of steps
    together = torch.cat(parts)
    assert set(together.tolist()) == set(range(size))  # the whole epoch
    padding = len(together) - size
    assert padding < world  # at most a few images twice, to even the shards out
    if padding == 0:
        assert sorted(together.tolist()) == list(range(size))  # nothing twice
    padded = torch.cat([order, order.repeat(world)[:padding]])
    batch = 2  # rank r's k-th batch of 2 is its part of the k-th global batch of 2 × world
    for k in range(len(parts[0]) // batch):
        step = torch.cat([p[k * batch:(k + 1) * batch] for p in parts])
        assert set(step.tolist()) == set(padded[k * batch * world:(k + 1) * batch * world].tolist())


def test_the_global_batch_must_split_evenly_across_processes():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    images = ImageSet(torch.zeros(8, 1, 2, 2, dtype=torch.uint8), torch.zeros(8, dtype=torch.int64))
    with pytest.raises(ValueError, match="multiple of the number of processes"):
        Trainer(model, torch.optim.SGD(model.parameters(), 0.1), images, pick_device("cpu"), batch_size=64,
                ranks=Ranks(0, 3, 0))


@pytest.mark.slow
def test_two_processes_give_one_process_weights_and_metrics_and_only_rank_0_talks(tmp_path):
    argv = ["train", "--dry-run", "--batch-size", "64", *EXACT]
    two = subprocess.run(torchrun(2, *argv, "--save", str(tmp_path / "two.safetensors")), cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stdout + two.stderr
    one = subprocess.run([sys.executable, "-m", "dlplay", *argv, "--save", str(tmp_path / "one.safetensors")],
                         cwd=REPO, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr
    ours, theirs = load_file(tmp_path / "two.safetensors"), load_file(tmp_path / "one.safetensors")
    for key, value in theirs.items():
        torch.testing.assert_close(ours[key], value, rtol=0, atol=TOLERANCE, msg=key)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.safetensors", "two.safetensors"]  # one file each
    assert two.stdout.count("distributed: 2 processes (gloo); batch size 64") == 1
    assert two.stdout.count("saved ") == 1 and two.stdout.count("test accuracy") == 1  # rank 0 alone
    epoch = re.compile(r"epoch 1/1 \[#+\] loss ([\d.]+) acc ([\d.]+)")
    assert epoch.findall(two.stderr) == epoch.findall(one.stderr)  # the whole epoch's metrics, summed over ranks


@pytest.mark.slow
def test_a_process_that_dies_ends_the_whole_run_with_an_error():
    run = subprocess.Popen(torchrun(2, "train", "--epochs", "30", "--batch-size", "64"), cwd=REPO,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        for line in run.stdout:  # wait until the run is training: its first epoch is done
            lines.append(line)
            if line.startswith("epoch 1/30"):
                break
        workers = [p for p in descendants(run.pid) if b"dlplay" in Path(f"/proc/{p}/cmdline").read_bytes()]
        assert len(workers) == 2, lines
        os.kill(max(workers), signal.SIGKILL)
        output, _ = run.communicate(timeout=120)  # the run ends: it does not hang on the dead peer
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode != 0
    assert "FAILED" in output and "Signal 9 (SIGKILL)" in output
    assert "epoch 30/30" not in output


@pytest.mark.slow
def test_a_checkpoint_resumes_on_another_number_of_processes(tmp_path):
    small = ["--train-images", "256", "--batch-size", "64", *EXACT]

    def start(processes: int, *args: str) -> subprocess.Popen:
        command = torchrun(2, *args) if processes == 2 else [sys.executable, "-m", "dlplay", *args]
        return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def finish(process: subprocess.Popen) -> tuple[str, str]:
        out, err = process.communicate(timeout=300)
        assert process.returncode == 0, out + err
        return out, err

    # The runs that do not depend on each other go side by side: each spends most of its time importing torch.
    pairs = ((2, 1), (1, 2))  # written by 2 processes, resumed by 1; and the other way round
    checkpoints = {first: tmp_path / f"after-1-of-{first}.safetensors" for first, _ in pairs}
    started = [start(1, "train", "--epochs", "2", *small, "--save", str(tmp_path / "straight.safetensors")),
               *(start(first, "train", "--epochs", "1", *small, "--checkpoint", str(checkpoints[first]))
                 for first, _ in pairs)]
    for process in started:
        finish(process)
    expected = load_file(tmp_path / "straight.safetensors")
    resuming = [(checkpoints[first], tmp_path / f"resumed-on-{then}.safetensors", then) for first, then in pairs]
    started = [start(then, "train", "--epochs", "2", *small, "--resume", str(checkpoint), "--save", str(out))
               for checkpoint, out, then in resuming]
    for process, (checkpoint, out, _) in zip(started, resuming, strict=True):
        stdout, stderr = finish(process)
        assert f"resumed from {checkpoint} after epoch 1" in stdout and "epoch 1/2" not in stderr
        resumed = load_file(out)
        for key, value in expected.items():
            torch.testing.assert_close(resumed[key], value, rtol=0, atol=TOLERANCE, msg=key)


def test_resuming_the_wrong_checkpoint_is_exit_2_and_one_sentence(tmp_path, capsys):
    from dlplay.cli import main

    checkpoint = tmp_path / "small.safetensors"
    assert main(["train", "--dry-run", "--batch-size", "16", "--checkpoint", str(checkpoint)]) == 0
    capsys.readouterr()
    assert main(["train", "--model", "article-150", "--resume", str(checkpoint)]) == 2
    assert "was written by a strided-cnn run on mnist5k" in capsys.readouterr().err
    assert main(["train", "--dry-run", "--batch-size", "16", "--resume", str(checkpoint)]) == 2
    assert "has already trained 1 epoch(s)" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "missing.safetensors")]) == 2


def test_torchrun_refuses_apples_gpu_in_one_sentence(monkeypatch, capsys):
    """A process as torchrun starts it (its environment), asked for MPS: refused before any process group."""
    from dlplay.cli import main
    from dlplay.training.distributed import MPS_REFUSED
    for name, value in {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "2"}.items():
        monkeypatch.setenv(name, value)
    assert main(["train", "--device", "mps", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {MPS_REFUSED}\n" and "Traceback" not in err
    assert not torch.distributed.is_initialized()


def test_a_torchrun_process_never_lands_on_mps():
    from dlplay.device import DeviceInfo
    from dlplay.training.distributed import MPS_REFUSED, join, rank_device
    assert rank_device("auto", True).device.type in ("cuda", "cpu")  # 'auto' skips MPS here, whatever the machine
    with pytest.raises(ValueError) as refused:
        join(Ranks(0, 2, 0), DeviceInfo(torch.device("mps"), "Apple GPU (MPS)", None, False))
    assert str(refused.value) == MPS_REFUSED and not torch.distributed.is_initialized()
