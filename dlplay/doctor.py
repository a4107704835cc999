"""`python -m dlplay doctor`: the whole path, end to end, on whatever accelerator this machine has, one line per
check with pass, fail or skip and the figure that says how it went. On a machine without a GPU the same checks run
on the CPU, and the line says so; a check that needs a GPU (or two) says it was skipped for want of one.

Meant for the day a GPU is lent: one command that tells the truth about the GPU path (a run trained in a worker,
killed and resumed, an out-of-memory back-off, torchrun with NCCL, ONNX from a GPU model, the labs, Grad-CAM and
FGSM, the seed CNN's epoch time). Budget: under 5 minutes on one GPU. Output is for the operator, in English."""
import contextlib
import io
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from dlplay.augment import LIGHT
from dlplay.data import Dataset, ImageSet, load_dataset
from dlplay.device import configure_threads, has_kernels, pick_device, release_memory, synchronize

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
RUN = dict(model="small-cnn", epochs=2, seed=1, augmentation=LIGHT)  # the worker runs' recipe (RunConfig fields)
JOB_SECONDS = 240.0  # a worker run or a lab that takes longer has failed
CIFAR_EPOCH = 50_000  # images in an epoch of CIFAR-10's training set
CPU_EPOCH_SAMPLE = 2_000  # timed on a CPU, and scaled to a whole epoch (a whole one would take a minute or more)
MPS_DEFAULT_RATIO = 1.7  # MPS's own default limit, as a share of its recommended working set
OOM_CAP_BYTES = 256 * 1024**2  # the GPU memory the back-off check may use: its batch is made far too large for it
TORCHRUN_ARGS = ["train", "--dry-run", "--batch-size", "64", "--model", "article-150", "--optimizer", "sgd", "--lr",
                 "0.05", "--schedule", "constant", "--augment", "none", "--no-mixed-precision",
                 "--label-smoothing", "0"]  # no batch-norm, dropout or augmentation: the ranks must agree


@dataclass(frozen=True)
class Outcome:
    """How one check went: 'pass', 'fail' or 'skip', and its figure (or why it was skipped)."""

    status: str
    figure: str


def passed(figure: str, ok: bool = True) -> Outcome:
    """A pass when `ok`, else a fail, with the same figure."""
    return Outcome("pass" if ok else "fail", figure)


class Doctor:
    """The checks, in order, sharing a scratch folder, the worker processes and what earlier checks produced."""

    def __init__(self, folder: Path, say: Callable[[str], None] = lambda line: print(line, flush=True)):
        self.folder, self.say = folder, say
        self.device = pick_device("auto")
        self.accelerator = self.device.device.type != "cpu"
        self.where = "" if self.accelerator else " (on the CPU: no GPU here)"
        self.mnist = load_dataset("mnist5k")
        self.backend = self._scheduler = None  # local worker processes, from open() to close()
        self.reference = None  # check "a job in a worker": its job, the uninterrupted run the resume is held to
        self.outcomes: list[tuple[str, Outcome, float]] = []

    # ---- plumbing
    def open(self) -> None:
        """Start the worker processes' zygote (it imports torch while the first checks run)."""
        from dlplay.training.jobs.local_backend import LocalBackend
        self.backend = LocalBackend()

    def close(self) -> None:
        """End every worker process this doctor started."""
        if self._scheduler is not None:
            self._scheduler.shutdown()  # its backend's too
        elif self.backend is not None:
            self.backend.shutdown()
        self.backend = self._scheduler = None

    def run(self) -> int:
        """Run every check, printing a line as each ends; returns the exit code (1 if any failed)."""
        self.open()
        started = time.perf_counter()
        try:
            for name, check in [("device and precision", self.check_device), ("a job in a worker", self.check_job),
                                ("kill and resume", self.check_resume), ("out-of-memory back-off", self.check_oom),
                                ("torchrun", self.check_torchrun), ("ONNX export and parity", self.check_onnx),
                                ("labs in workers", self.check_labs), ("Grad-CAM and FGSM", self.check_explain),
                                ("seed CNN epoch time", self.check_epoch_time)]:
                self._one(name, check)
        finally:
            self.close()
        counts = {s: sum(o.status == s for _, o, _ in self.outcomes) for s in ("pass", "fail", "skip")}
        self.say(f"{counts['pass']} passed, {counts['fail']} failed, {counts['skip']} skipped in "
                 f"{time.perf_counter() - started:.0f} s on {self.device.name}")
        return 1 if counts["fail"] else 0

    def _one(self, name: str, check: Callable[[], Outcome]) -> None:
        start = time.perf_counter()
        try:
            outcome = check()
        except Exception as err:  # a check that breaks is a failed check, said in one line; details follow
            outcome = Outcome("fail", f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}")
            traceback.print_exc(file=sys.stderr)
        seconds = time.perf_counter() - start
        self.outcomes.append((name, outcome, seconds))
        self.say(f"{outcome.status.upper():4s}  {name:24s} {outcome.figure}  [{seconds:.1f} s]")

    @property
    def scheduler(self):
        """A scheduler over local worker processes, as the server runs one."""
        if self._scheduler is None:
            from dlplay.training.jobs import RunStore, Scheduler
            self._scheduler = Scheduler(self.backend, RunStore(self.folder / "runs"))
        return self._scheduler

    def _finish(self, job) -> object:
        deadline = time.monotonic() + JOB_SECONDS
        while job.snapshot().active:
            if time.monotonic() > deadline:
                job.stop()
                raise TimeoutError(f"the run took more than {JOB_SECONDS:.0f} s")
            time.sleep(0.1)
        return job.snapshot()

    # ---- the checks
    def check_device(self) -> Outcome:
        """What 'auto' picks, in what precision; on CUDA, whether this build has kernels for each GPU."""
        d = self.device
        parts = [f"{d.name}, {d.precision}", "channels_last" if d.channels_last else "NCHW"]
        ok = True
        if torch.cuda.is_available():
            archs = torch.cuda.get_arch_list()
            for index in range(torch.cuda.device_count()):
                capability = torch.cuda.get_device_capability(index)
                runs = has_kernels(capability, archs)
                ok &= runs
                parts.append(f"GPU {index}: sm_{capability[0]}{capability[1]} "
                             f"{'has kernels' if runs else 'HAS NO KERNELS'} in this build ({' '.join(archs)})")
        if d.note:
            parts.append(d.note)
        if not self.accelerator:
            parts.append("no GPU: the GPU checks below run on the CPU")
        return passed("; ".join(parts), ok)

    def check_job(self) -> Outcome:
        """A trainer-page run in a worker process: where it trained, how fast, how well."""
        from dlplay.training.jobs import RunConfig, RunStatus
        job = self.scheduler.submit(RunConfig(**RUN), self.mnist, "doctor-reference", registered=True)
        snap = self._finish(job)
        if snap.status is not RunStatus.FINISHED:
            return Outcome("fail", snap.message)
        self.reference = job
        speed = snap.batches[-1].images_per_sec
        on_device = snap.device_name == self.device.name
        return passed(f"worker pid {snap.worker_pid} trained on {snap.device_name}, {speed:,.0f} img/s, test accuracy "
                      f"{snap.evaluation.accuracy:.1%} after {len(snap.epochs)} epochs{self.where}",
                      on_device and snap.evaluation.accuracy > 0.9)

    def check_resume(self) -> Outcome:
        """A run killed (SIGKILL) mid-epoch 2 resumes from its epoch-1 checkpoint: its losses against the
        uninterrupted run's (exact on a CPU and on CUDA, whose kernels the workers make deterministic)."""
        from dlplay.training.jobs import RunConfig, RunStatus
        from dlplay.training.jobs.spec import steps_per_epoch
        if self.reference is None:
            return Outcome("skip", "needs the run of 'a job in a worker'")
        config = RunConfig(**RUN)
        pause = steps_per_epoch(config, self.mnist) + 3
        job = self.scheduler.submit(config, self.mnist, "doctor-resume", registered=True, pause_at_step=pause)
        deadline = time.monotonic() + JOB_SECONDS
        while job.snapshot().held_at_step is None:
            if not job.snapshot().active or time.monotonic() > deadline:
                job.stop()
                return Outcome("fail", f"the run did not hold at step {pause}: {job.snapshot().message}")
            time.sleep(0.05)
        os.kill(job.handle.pid, signal.SIGKILL)
        crashed = self._finish(job)
        point = self.scheduler.store.resume_point(job.run_id)
        if crashed.status is not RunStatus.CRASHED or point is None:
            return Outcome("fail", f"after the kill: {crashed.status}, {crashed.message}")
        resumed = self._finish(self.scheduler.submit(point.config, self.mnist, "doctor-resume", registered=True,
                                                     run_id=job.run_id, resume=point))
        ours, theirs = [b.loss for b in resumed.batches], [b.loss for b in self.reference.snapshot().batches]
        if resumed.status is not RunStatus.FINISHED or len(ours) != len(theirs):
            return Outcome("fail", f"the resumed run: {resumed.status}, {resumed.message}")
        worst = max(abs(a - b) for a, b in zip(ours, theirs, strict=True))
        promised = self.device.device.type in ("cpu", "cuda")
        figure = (f"killed at step {pause}, resumed from epoch {point.epochs[-1].epoch}: max |loss - uninterrupted| "
                  f"{worst:.1e} over {len(ours)} steps")
        if promised:
            return passed(figure + (" (exact)" if worst == 0 else " (NOT exact)") + self.where, worst == 0)
        return passed(figure + " (not promised exact on MPS)", worst < 1e-2)

    def check_oom(self) -> Outcome:
        """A batch made far too large for a capped share of the GPU's memory: the run halves it (and falls back to
        the CPU if it must), finishes, and leaves the GPU's memory free once it has left it."""
        from dlplay.training.jobs.runner import JobRunner
        from dlplay.training.jobs.spec import DataRef, JobSpec, RunConfig, RunStatus
        kind = self.device.device.type
        if kind == "cpu":
            return Outcome("skip", "needs a GPU (the back-off itself is tested on the CPU by the unit tests)")
        data = _cifar_shaped(4096, 256)
        config = RunConfig(model="article-cifar10", epochs=1, batch_size=len(data.train), validation_fraction=0.0,
                           augmentation=LIGHT)
        events: list[dict] = []
        with _memory_cap(kind, OOM_CAP_BYTES), _process_flags():
            JobRunner(JobSpec(uuid.uuid4().hex[:12], config, DataRef(data.name), threads=torch.get_num_threads()),
                      data, events.append, lambda _name, _data: None).run()
            release_memory(self.device.device)
            reserved = torch.cuda.memory_reserved() if kind == "cuda" else torch.mps.driver_allocated_memory()
        done, started = events[-1], [e for e in events if e["type"] == "started"][-1]
        backed_off = "Out of memory" in done["message"]
        figure = (f"batch {config.batch_size} under a {OOM_CAP_BYTES // 1024**2} MB cap: {done['message']} (last on "
                  f"{started['device']}, batch {started['batch_size']}); {kind} memory reserved after "
                  f"{reserved / 1024**2:.0f} MB")
        left_gpu = started["device"] == "CPU"
        return passed(figure, done["status"] == RunStatus.FINISHED and backed_off and (
            not left_gpu or kind != "cuda" or reserved == 0))

    def check_torchrun(self) -> Outcome:
        """torchrun over the GPUs (NCCL), or over two CPU processes (gloo) with fewer than two GPUs, against one
        process with the same global batch: the weights they end with."""
        from safetensors.torch import load_file
        gpus = torch.cuda.device_count() if self.device.device.type == "cuda" else 0
        processes, device = (gpus, "cuda") if gpus >= 2 else (2, "cpu")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PACKAGE_ROOT),
                                                                          os.environ.get("PYTHONPATH")]))}
        argv = [*TORCHRUN_ARGS, "--device", device]
        many, one = self.folder / "torchrun-many.safetensors", self.folder / "torchrun-one.safetensors"
        start = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                              f"--nproc_per_node={processes}", "-m", "dlplay", *argv, "--save", str(many)],
                             capture_output=True, text=True, timeout=JOB_SECONDS, env=env)
        seconds = time.perf_counter() - start
        if run.returncode != 0:
            return Outcome("fail", f"torchrun exited with {run.returncode}: {_last_line(run.stderr)}")
        single = subprocess.run([sys.executable, "-m", "dlplay", *argv, "--save", str(one)], capture_output=True,
                                text=True, timeout=JOB_SECONDS, env=env)
        if single.returncode != 0:
            return Outcome("fail", f"one process exited with {single.returncode}: {_last_line(single.stderr)}")
        ours, theirs = load_file(many), load_file(one)
        worst = max(float((ours[k] - v).abs().max()) for k, v in theirs.items())
        backend = "nccl" if device == "cuda" else "gloo"
        tolerance = 1e-3 if device == "cuda" else 1e-5  # TF32 convolutions on CUDA; float32 sums in another order
        figure = (f"{processes} processes ({backend}, {seconds:.1f} s) against 1: max |weight difference| {worst:.1e} "
                  f"(tolerance {tolerance:.0e})")
        if backend != "nccl":
            figure += "; NCCL skipped: needs 2 GPUs" + (f", this machine has {gpus}" if gpus else ", none here")
        return passed(figure, worst <= tolerance)

    def check_onnx(self) -> Outcome:
        """ONNX export from a model on the device: the model stays there, and ONNX Runtime's logits match its."""
        from dlplay.after_training.deploy import OnnxModel, export_onnx
        from dlplay.checkpoint import ModelCard
        from dlplay.models import build_model
        model = build_model("small-cnn", self.mnist.input_shape, 10, *self.mnist.channel_stats(), seed=0)
        model.to(self.device.device).train()
        card = ModelCard("small-cnn", self.mnist.class_names, self.mnist.input_shape, (0.5,), (0.5,), "mnist5k")
        path = export_onnx(model, card, self.folder / "doctor.onnx")
        stayed = next(model.parameters()).device.type == self.device.device.type and model.training
        images = self.mnist.test.images[:256].float() / 255
        with torch.no_grad():
            model.eval()
            ours = model(images.to(self.device.device)).float().cpu().numpy()
        theirs = OnnxModel(path)(images)
        worst = float(np.abs(ours - theirs).max())
        same = float((ours.argmax(1) == theirs.argmax(1)).mean())
        tolerance = 1e-4 if self.device.device.type == "cpu" else 1e-2
        return passed(f"exported from {self.device.device.type} (model left there: {'yes' if stayed else 'NO'}); "
                      f"max |logit difference| {worst:.1e} (tolerance {tolerance:.0e}), same class {same:.1%} on "
                      f"256 test digits{self.where}", stayed and worst <= tolerance and same >= 0.99)

    def check_labs(self) -> Outcome:
        """Every lab in a worker of the lab lane (they compute on the CPU unless given a GPU): seconds each."""
        from dlplay.after_training.federated import LocalTraining
        from dlplay.device import usable_cores
        from dlplay.training.jobs.labs import ZIP_FILE
        from dlplay.training.jobs.lane import LabLane
        from dlplay.training.jobs.spec import RunStatus
        if self.reference is None:
            return Outcome("skip", "needs the model of 'a job in a worker'")
        model_file = str(self.reference.model_file())
        labs = {"import_zip": ({"image_size": 28, "name": "digits"}, {ZIP_FILE: _digits_zip(self.mnist)}),
                "deploy": ({"model_file": model_file, "quantize": True}, None),
                "compress": ({"model_file": model_file, "sparsities": [0.5], "quantize": False,
                              "student_epochs": 1}, None),
                "federated": ({"clients": 3, "alpha": None, "rounds": 1,
                               "local": asdict(LocalTraining())}, None),
                "transfer": ({"freeze": "features", "pretrain_epochs": 1}, None)}
        lane = LabLane(self.backend, self.folder, lambda: usable_cores())
        seconds, failed = [], []
        try:
            for kind, (params, files) in labs.items():
                lab = lane.submit(kind, params, f"doctor-{kind}", files=files)  # each its own: no quota wait
                deadline = time.monotonic() + JOB_SECONDS
                while lab.snapshot().status.active and time.monotonic() < deadline:
                    time.sleep(0.1)
                snap = lab.snapshot()
                if snap.status is not RunStatus.FINISHED:
                    lab.cancel()
                    failed.append(f"{kind}: {snap.message or snap.status}")
                seconds.append(f"{kind} {snap.elapsed_seconds:.1f} s")
        finally:
            lane.shutdown()
        figure = ", ".join(seconds) + " (labs compute on the CPU)"
        return passed(figure + ("; " + "; ".join(failed) if failed else ""), not failed)

    def check_explain(self) -> Outcome:
        """Grad-CAM and FGSM on the trained model on the device, against the same on the CPU."""
        from dlplay.adversarial import fgsm
        from dlplay.checkpoint import load_model
        from dlplay.inside import grad_cam
        if self.reference is None:
            return Outcome("skip", "needs the model of 'a job in a worker'")
        cpu_model, _card = load_model(self.reference.model_file())
        image = self.mnist.test.images[:1].float() / 255
        label = int(self.mnist.test.labels[0])
        cam_cpu, moved_cpu = grad_cam(cpu_model, image, label), fgsm(cpu_model, image, label, 0.1)
        if not self.accelerator:
            ok = cam_cpu.shape == image.shape[-2:] and np.isfinite(cam_cpu).all() and 0 <= cam_cpu.min() <= \
                cam_cpu.max() <= 1
            peak = tuple(int(i) for i in np.unravel_index(cam_cpu.argmax(), cam_cpu.shape))
            return passed(f"Grad-CAM {cam_cpu.shape[0]}x{cam_cpu.shape[1]} peak at {peak}, FGSM ε=0.1 changed "
                          f"{float((moved_cpu - image).abs().max()):.2f} at most; no GPU to compare with",
                          bool(ok))
        device_model, _ = load_model(self.reference.model_file())
        device_model.to(self.device.device)
        cam, moved = grad_cam(device_model, image, label), fgsm(device_model, image, label, 0.1)
        cam_gap = float(np.abs(cam - cam_cpu).max())
        flipped = float((moved != moved_cpu).float().mean())  # a pixel whose gradient sign differs moves the other way
        return passed(f"on {self.device.device.type} against the CPU: max |Grad-CAM difference| {cam_gap:.1e}, FGSM "
                      f"pixels that differ {flipped:.2%}", cam_gap < 1e-2 and flipped < 0.01)

    def check_epoch_time(self) -> Outcome:
        """The seed's CIFAR-10 CNN (the article's §5.3), batch 64, AdamW, on CIFAR-shaped images in this process:
        one 50,000-image epoch's training time (timed on part of it on a CPU)."""
        from dlplay.models import build_model
        from dlplay.training.trainer import Trainer, build_optimizer
        count = CIFAR_EPOCH if self.accelerator else CPU_EPOCH_SAMPLE
        data = _cifar_shaped(count, 0)
        model = build_model("article-cifar10", (3, 32, 32), 10, seed=0)
        trainer = Trainer(model, build_optimizer("adamw", model.parameters(), 1e-3), data.train, self.device,
                          batch_size=64, epochs=1)
        synchronize(self.device.device)
        epoch = trainer.fit().epochs[0]
        whole = epoch.seconds * CIFAR_EPOCH / count
        timed = "" if count == CIFAR_EPOCH else f" (timed on {count:,} images)"
        return passed(f"{whole:.1f} s per 50,000-image epoch, {epoch.images_per_sec:,.0f} img/s on {self.device.name} "
                      f"({self.device.precision}){timed}")


def _cifar_shaped(train: int, test: int) -> Dataset:
    """Random 3x32x32 images in 10 classes (speed and memory do not depend on what the pictures show)."""
    generator = torch.Generator().manual_seed(0)

    def images(n: int) -> ImageSet:
        return ImageSet(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=generator),
                        torch.randint(0, 10, (n,), generator=generator))

    return Dataset("cifar-shaped", tuple(str(c) for c in range(10)), images(train), images(max(test, 1)))


def _digits_zip(mnist: Dataset, per_class: int = 6) -> bytes:
    """A zip of class folders holding a few real digits as PNGs (what a learner uploads)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for digit in (3, 7):
            for i, index in enumerate(torch.nonzero(mnist.train.labels == digit)[:per_class, 0].tolist()):
                picture = io.BytesIO()
                Image.fromarray(mnist.train.images[index, 0].numpy()).save(picture, "PNG")
                archive.writestr(f"{digit}/{i}.png", picture.getvalue())
    return buffer.getvalue()


@contextlib.contextmanager
def _memory_cap(kind: str, cap_bytes: int):
    """Let this process's allocator on the GPU hand out at most `cap_bytes` for a block."""
    if kind == "cuda":
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, cap_bytes / total))
    else:
        torch.mps.set_per_process_memory_fraction(min(1.0, cap_bytes / torch.mps.recommended_max_memory()))
    try:
        yield
    finally:
        if kind == "cuda":
            torch.cuda.set_per_process_memory_fraction(1.0)
        else:
            torch.mps.set_per_process_memory_fraction(float(os.environ.get("PYTORCH_MPS_HIGH_WATERMARK_RATIO",
                                                                           MPS_DEFAULT_RATIO)))
        release_memory(torch.device(kind))


@contextlib.contextmanager
def _process_flags():
    """Put back the process-wide kernel settings a job run in this process changes (make_deterministic)."""
    saved = (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic,
             torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = saved[:2]
        torch.use_deterministic_algorithms(saved[2], warn_only=saved[3])


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(nothing on stderr)"


def doctor_command() -> int:
    """Run every check on this machine, a line each; exit code 1 if any failed."""
    configure_threads()
    with tempfile.TemporaryDirectory(prefix="dlplay-doctor-") as folder:
        doctor = Doctor(Path(folder))
        print(f"dlplay doctor: torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
              f"{torch.cuda.device_count()} CUDA GPU(s){', Apple MPS' if doctor.device.device.type == 'mps' else ''}",
              flush=True)
        return doctor.run()

