"""Command line: `python -m dlplay train ...` trains a model on a registered dataset and can save it; `python -m
dlplay export MODEL --onnx OUT.onnx` deploys a saved one; `python -m dlplay doctor` checks the whole path on this
machine's accelerator."""
import argparse
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from dlplay.augment import LIGHT, Augmentation
from dlplay.checkpoint import (
    ModelCard,
    ModelFileError,
    load_model,
    read_training_state,
    save_model,
    training_state_bytes,
    write_atomically,
)
from dlplay.data import DATASETS, Dataset, DatasetUnavailable, ImageSet, load_dataset
from dlplay.device import DEVICE_CHOICES, configure_threads, make_deterministic, pick_device
from dlplay.evaluate import evaluate
from dlplay.models import MODELS, build_model
from dlplay.training import distributed
from dlplay.training.schedules import SCHEDULES
from dlplay.training.trainer import OPTIMIZERS, BatchEvent, EpochEvent, Trainer, build_optimizer

AUGMENTATIONS = {"none": Augmentation(), "light": LIGHT}
BAR_WIDTH = 30


def _positive(kind):
    """An argparse type accepting values of `kind` greater than zero."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
        return value

    return parse


def _fraction(text: str) -> float:
    value = _non_negative_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be below 1, got {text}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for `python -m dlplay`."""
    parser = argparse.ArgumentParser(prog="python -m dlplay", description="dlplay: train real CNNs on real images.")
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train a model and report its test accuracy")
    train.add_argument("--dataset", choices=list(DATASETS), default="mnist5k")
    train.add_argument("--model", choices=list(MODELS), default="strided-cnn")
    # The default recipe (bench/train_bench.py): 98.8% on mnist5k (seeds 0-2) in about 8 s of training on 2 CPU cores.
    train.add_argument("--epochs", type=_positive(int), default=11)
    train.add_argument("--batch-size", type=_positive(int), default=256)
    train.add_argument("--lr", type=_positive(float), default=1e-2, help="(peak) learning rate")
    train.add_argument("--label-smoothing", type=_fraction, default=0.1,
                       help="train towards 1 - e on the true class instead of 1 (0 turns it off)")
    train.add_argument("--optimizer", choices=OPTIMIZERS, default="adamw")
    train.add_argument("--weight-decay", type=_non_negative_float, default=5e-4)
    train.add_argument("--schedule", choices=list(SCHEDULES), default="onecycle")
    train.add_argument("--augment", choices=list(AUGMENTATIONS), default="light")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", choices=DEVICE_CHOICES, default="auto")
    train.add_argument("--mixed-precision", action=argparse.BooleanOptionalAction, default=True,
                       help="float16 autocast on CUDA, bfloat16 on CPUs with native bf16; float32 elsewhere")
    train.add_argument("--data-dir", type=Path, default=None, help="where downloaded datasets live")
    train.add_argument("--save", type=Path, default=None, metavar="PATH", help="write the model as .safetensors")
    train.add_argument("--dry-run", action="store_true", help="train on two batches only (a quick smoke test)")
    train.add_argument("--train-images", type=_positive(int), default=None, metavar="N",
                       help="train on the first N training images only")
    train.add_argument("--checkpoint", type=Path, default=None, metavar="PATH",
                       help="write the training state here after every epoch (any number of processes)")
    train.add_argument("--resume", type=Path, default=None, metavar="PATH",
                       help="continue from a --checkpoint file up to --epochs, with any number of processes (past "
                            "the epochs the run was started with only on a constant schedule: the others end there)")
    train.add_argument("--ray", metavar="ADDRESS", default=None,
                       help="train as a job on the Ray cluster at ADDRESS (e.g. 10.0.0.5:6379, or 'local' to start "
                            "Ray on this machine) instead of in this process; a cluster with token authentication "
                            "needs RAY_AUTH_MODE=token and its token in RAY_AUTH_TOKEN (or a file named by "
                            "RAY_AUTH_TOKEN_PATH)")
    export = commands.add_parser("export", help="export a saved model to ONNX, check it, and compare ONNX Runtime's "
                                 "outputs and speed with PyTorch's")
    export.add_argument("model", type=Path, help="a .safetensors model saved by dlplay (train --save, or the page)")
    export.add_argument("--onnx", type=Path, required=True, metavar="OUT.onnx", help="where to write the ONNX model")
    export.add_argument("--quantize", action="store_true",
                        help="also write an int8 model beside it (OUT.int8.onnx), quantized by ONNX Runtime with "
                             "training images of the model's dataset for calibration")
    export.add_argument("--data-dir", type=Path, default=None, help="where downloaded datasets live")
    commands.add_parser("doctor", help="check the whole path on this machine's GPU (or its CPU): device, a job in a "
                        "worker, kill and resume, out-of-memory back-off, torchrun, ONNX, the labs, Grad-CAM and "
                        "FGSM, an epoch's time; one line per check")
    return parser


class ProgressBar:
    """One line per epoch: redrawn after each batch on a terminal, written once per epoch otherwise."""

    def __init__(self, epochs: int, stream=sys.stderr):
        self.epochs, self.stream, self.live = epochs, stream, stream.isatty()

    def batch(self, e: BatchEvent) -> None:
        if not self.live:
            return
        done = (e.step - 1) % e.steps_per_epoch + 1
        filled = BAR_WIDTH * done // e.steps_per_epoch
        self.stream.write(f"\repoch {e.epoch}/{self.epochs} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] "
                          f"{done}/{e.steps_per_epoch} loss {e.loss:.3f} acc {e.accuracy:.3f} "
                          f"{e.images_per_sec:,.0f} img/s")
        self.stream.flush()

    def epoch(self, e: EpochEvent) -> None:
        carriage_return = "\r" if self.live else ""
        self.stream.write(f"{carriage_return}epoch {e.epoch}/{self.epochs} [{'#' * BAR_WIDTH}] loss {e.train_loss:.4f} "
                          f"acc {e.train_accuracy:.4f} {e.images_per_sec:,.0f} img/s {e.seconds:.1f}s\n")
        self.stream.flush()


def ray_train_command(args: argparse.Namespace, dataset: Dataset, registered: bool) -> int:
    """`train --ray ADDRESS`: the same training as a job on a Ray cluster, its progress printed as it arrives."""
    import ray

    from dlplay.training.jobs import RunConfig, RunStatus, RunStore, Scheduler, SettingError
    from dlplay.training.jobs.ray_backend import RayBackend
    config = RunConfig(model=args.model, optimizer=args.optimizer, lr=args.lr, weight_decay=args.weight_decay,
                       schedule=args.schedule, batch_size=args.batch_size, epochs=args.epochs, seed=args.seed,
                       label_smoothing=args.label_smoothing,
                       device=args.device, mixed_precision=args.mixed_precision,
                       augmentation=AUGMENTATIONS[args.augment], validation_fraction=0.0)
    try:
        backend = RayBackend(args.ray)
    except SettingError as err:  # no cluster there, or it refused this process's token: the sentence says what to set
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (ValueError, RuntimeError) as err:
        print(f"error: could not connect to the Ray cluster at {args.ray!r}: {err}", file=sys.stderr)
        return 2
    bar = ProgressBar(args.epochs)
    with tempfile.TemporaryDirectory(prefix="dlplay-ray-run-") as folder:
        scheduler = Scheduler(backend, RunStore(Path(folder)), capacity=1)
        try:
            job = scheduler.submit(config, dataset, "cli", registered=registered)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            scheduler.shutdown()
            return 2
        print(f"{dataset.name}: {args.model} as a Ray job on {ray.cluster_resources().get('CPU', 0):.0f} CPU(s), "
              f"{ray.cluster_resources().get('GPU', 0):.0f} GPU(s)")
        shown = 0
        try:
            while (snapshot := job.snapshot()).active:
                for event in snapshot.epochs[shown:]:
                    bar.epoch(event)
                shown = len(snapshot.epochs)
                if snapshot.batches and snapshot.batches[-1].epoch > shown:  # within an unfinished epoch
                    bar.batch(snapshot.batches[-1])
                time.sleep(0.2)
        except KeyboardInterrupt:
            job.stop()
            while (snapshot := job.snapshot()).active:
                time.sleep(0.2)
        for event in snapshot.epochs[shown:]:
            bar.epoch(event)
        print(snapshot.message)
        if args.save and snapshot.evaluation is not None:
            args.save.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(job.model_file(), args.save)
            print(f"saved {args.save}")
        scheduler.shutdown()
    return 0 if snapshot.status is RunStatus.FINISHED else 1


def train_command(args: argparse.Namespace) -> int:
    """Run `train`, alone or as one process of a `torchrun` job; returns the process exit code."""
    ranks = distributed.from_environment()
    if ranks is not None and args.ray:
        print("error: --ray runs the training as a Ray job; start it without torchrun", file=sys.stderr)
        return 2
    configure_threads(distributed.threads_per_process() if ranks is not None else None)
    try:
        # A Ray job picks its device on its node; a torchrun process never picks MPS (refused if asked for).
        if args.ray:
            device = None
        elif ranks is not None:
            device = distributed.join(ranks, distributed.rank_device(args.device, args.mixed_precision))
        else:
            device = pick_device(args.device, args.mixed_precision)
        dataset = load_dataset(args.dataset, args.data_dir)
    except (ValueError, DatasetUnavailable) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2 if isinstance(err, ValueError) else 1
    try:
        return _train(args, dataset, device, ranks)
    except torch.distributed.DistBackendError as err:  # a peer process died or hung: end this one too
        print(f"error: another process of this distributed run stopped ({str(err).splitlines()[0]}); the run is "
              "ended", file=sys.stderr)
        return 1
    finally:
        distributed.leave()


def _train(args: argparse.Namespace, dataset: Dataset, device, ranks: distributed.Ranks | None) -> int:
    leader = ranks is None or ranks.leader
    report = print if leader else (lambda *_args, **_kwargs: None)  # only rank 0 talks
    train = dataset.train
    if args.train_images:
        train = ImageSet(train.images[:args.train_images], train.labels[:args.train_images])
    if args.dry_run:
        n = 2 * args.batch_size
        train, args.epochs = ImageSet(train.images[:n], train.labels[:n]), 1
    if args.ray:  # a registered dataset is loaded by name on the node; a dry run's slice travels as a file
        return ray_train_command(args, Dataset(dataset.name, dataset.class_names, train, dataset.test),
                                 registered=not args.dry_run)
    report(f"{dataset.name}: {len(train):,} train / {len(dataset.test):,} test images, {args.model} on {device.name} "
           f"({device.precision})")
    if device.note:
        report(f"note: {device.note}")
    if args.checkpoint or args.resume:  # asked for an exact resume: CUDA's kernels must repeat themselves
        make_deterministic(device)
    if ranks is not None:
        report(f"distributed: {ranks.world} processes ({torch.distributed.get_backend()}); batch size "
               f"{args.batch_size} for all of them together, {args.batch_size // ranks.world} per process and step")
    mean, std = dataset.channel_stats()
    card = ModelCard(args.model, dataset.class_names, dataset.input_shape, mean, std, dataset.name)
    try:
        model = build_model(args.model, dataset.input_shape, dataset.num_classes, mean, std, seed=args.seed)
        resumed = _read_checkpoint(args.resume, card) if args.resume else None
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if resumed is not None:
        model.load_state_dict(resumed[0])
    optimizer = build_optimizer(args.optimizer, model.parameters(), args.lr, args.weight_decay)
    trained = model
    if ranks is not None:  # every rank starts from the same seed; DDP also broadcasts rank 0's weights
        model.to(device.device, memory_format=device.memory_format)
        trained = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.device.index] if device.device.type == "cuda" else None)
    try:
        trainer = Trainer(trained, optimizer, train, device, batch_size=args.batch_size, epochs=args.epochs,
                          schedule=args.schedule, seed=args.seed, augmentation=AUGMENTATIONS[args.augment],
                          label_smoothing=args.label_smoothing, ranks=ranks)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if resumed is not None:
        trainer.load_state(*resumed[1:])
        if trainer.epochs_done >= args.epochs:
            print(f"error: {args.resume.name} has already trained {trainer.epochs_done} epoch(s); ask for more with "
                  "--epochs", file=sys.stderr)
            return 2
        report(f"resumed from {args.resume} after epoch {trainer.epochs_done}")
    if leader:
        bar = ProgressBar(args.epochs)
        trainer.on("batch_end", bar.batch)
        trainer.on("epoch_end", bar.epoch)
        if args.checkpoint:
            trainer.on("epoch_end", lambda _event: write_atomically(
                args.checkpoint, training_state_bytes(model, card, *trainer.state())))
    start = time.perf_counter()
    trainer.fit()
    seconds = time.perf_counter() - start
    if leader:
        result = evaluate(model, dataset.test, device)
        report(f"trained in {seconds:.1f}s; test accuracy {result.accuracy:.4f} ({result.accuracy:.2%}), "
               f"test loss {result.loss:.4f}")
        if args.save:
            report(f"saved {save_model(args.save, model, replace(card, test_accuracy=result.accuracy))}")
    if ranks is not None:
        torch.distributed.barrier()  # the others wait while rank 0 evaluates and saves
    return 0


def _read_checkpoint(path: Path, card: ModelCard) -> tuple[dict, dict, dict]:
    """(weights, trainer tensors, trainer data) from a --checkpoint file written for this model and data;
    ValueError (ModelFileError) otherwise."""
    weights, tensors, plain, saved = read_training_state(path)
    if (saved.architecture, saved.input_shape, saved.class_names) != (card.architecture, card.input_shape,
                                                                       card.class_names):
        raise ModelFileError(f"{path.name} was written by a {saved.architecture} run on {saved.dataset}, not a "
                             f"{card.architecture} run on {card.dataset}")
    return weights, tensors, plain


def export_command(args: argparse.Namespace) -> int:
    """Run `export`; returns the process exit code (2 for a model file or a dataset that cannot be used)."""
    from dlplay.after_training.deploy import (
        INPUT,
        LATENCY_BATCH,
        OPSET,
        OUTPUT,
        RANDOM_IMAGES,
        deployment_report,
        report_images,
    )

    configure_threads()
    if args.onnx.suffix != ".onnx":
        print(f"error: the output must be a .onnx file, not {args.onnx.name!r}", file=sys.stderr)
        return 2
    try:
        model, card = load_model(args.model)
    except ModelFileError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        dataset = load_dataset(card.dataset, args.data_dir) if card.dataset in DATASETS else None
    except (ValueError, DatasetUnavailable):
        dataset = None
    if dataset is None and args.quantize:
        print(f"error: --quantize calibrates on training images of the model's dataset ({card.dataset or 'unknown'}), "
              "and they are not on this machine", file=sys.stderr)
        return 2
    if dataset is None:
        print(f"the model's test images are not on this machine: comparing on {RANDOM_IMAGES} random images")
    images, labels, calibration = report_images(card, dataset, args.quantize)
    with tempfile.TemporaryDirectory(prefix="dlplay-export-") as folder:
        variants = deployment_report(model, card, folder, images, labels, calibration)
        targets = [args.onnx, args.onnx.with_suffix(".int8.onnx")]
        args.onnx.parent.mkdir(parents=True, exist_ok=True)
        for variant, target in zip(variants[1:], targets, strict=False):
            shutil.copyfile(variant.path, target)
    shape = "×".join(map(str, card.input_shape))
    print(f"wrote {args.onnx} (ONNX opset {OPSET}; input '{INPUT}': N×{shape} images in 0..1, any N; output "
          f"'{OUTPUT}'); the onnx checker passed" + (f". Also wrote {targets[1]}" if args.quantize else ""))
    for v in variants:
        accuracy = f"accuracy {v.accuracy:.2%}, " if v.accuracy is not None else ""
        print(f"  {v.name:42s} {v.size_bytes / 1024:8.1f} KB  {accuracy}1 image {v.latency_one * 1000:.2f} ms, "
              f"{LATENCY_BATCH} images {v.latency_batch * 1000:.1f} ms; max |logit - PyTorch's| "
              f"{v.agreement.max_difference:.2e}, same class {v.agreement.same_prediction:.1%}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point; argparse exits with code 2 on invalid arguments."""
    args = build_parser().parse_args(argv)
    if args.command == "doctor":
        from dlplay.doctor import doctor_command
        return doctor_command()
    return export_command(args) if args.command == "export" else train_command(args)
