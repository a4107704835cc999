"""Benchmark the Trainer against a minimal hand-written PyTorch loop, and the CLI recipe's time to accuracy.

Run: python bench/train_bench.py [--repeats 5] [--seeds 3] [--part all|throughput|recipes]
Part 1 trains the same model on the same data with the same batch size, precision and memory format,
alternating the two loops, and prints the median images/s of each and their ratio. Part 2 trains the CLI's
default recipe on mnist5k, the previous defaults and each change since, for every seed, and prints test
accuracy against seconds of training.
"""
import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dlplay.cli import AUGMENTATIONS, build_parser  # noqa: E402
from dlplay.data import Dataset, ImageSet, load_dataset  # noqa: E402
from dlplay.device import configure_threads, pick_device, synchronize  # noqa: E402
from dlplay.evaluate import evaluate  # noqa: E402
from dlplay.models import build_model  # noqa: E402
from dlplay.training.trainer import Trainer, build_optimizer  # noqa: E402


def hand_loop(model, optimizer, train: ImageSet, device, batch_size: int, seed: int) -> float:
    """The reference: the plainest correct epoch loop, in the device's precision and memory format; returns
    images/s."""
    dev = device.device
    images, labels = train.images.to(dev), train.labels.to(dev)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed)).to(dev)
    loss_fn = nn.CrossEntropyLoss()
    scaler = torch.amp.GradScaler(dev.type, enabled=device.autocast is torch.float16)
    model.train()
    synchronize(dev)  # the copies above are done before the clock starts...
    start = time.perf_counter()
    for i in range(0, len(labels), batch_size):
        idx = order[i:i + batch_size]
        x = images[idx].float().div_(255)
        if device.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(dev.type, dtype=device.autocast or torch.float32, enabled=device.autocast is not None):
            loss = loss_fn(model(x), labels[idx])
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    synchronize(dev)  # ...and the GPU's queued steps before it stops (the Trainer's epoch time waits for them too)
    return len(labels) / (time.perf_counter() - start)


def memory_formats(data, device, repeats: int) -> None:
    """The hand loop on the article's CIFAR-10 CNN in NCHW and in channels_last, alternating: median images/s."""
    formats = {"NCHW": replace(device, channels_last=False), "channels_last": replace(device, channels_last=True)}
    speeds: dict[str, list[float]] = {name: [] for name in formats}
    for r in range(max(repeats, 1) + 1):
        for name, chosen in (formats.items() if r % 2 else reversed(formats.items())):
            model, opt = fresh("article-cifar10", data, chosen)
            speed = hand_loop(model, opt, data.train, chosen, 64, r)
            if r:
                speeds[name].append(speed)
    nchw, last = (statistics.median(speeds[name]) for name in formats)
    print(f"article-cifar10, hand loop: NCHW {nchw:7,.0f} img/s | channels_last {last:7,.0f} img/s | "
          f"ratio {last / nchw:.3f} (median of {max(repeats, 1)})")


def fresh(arch, data, device, seed=0, lr=1e-3):
    model = build_model(arch, data.input_shape, data.num_classes, seed=seed).to(device.device)
    if device.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model, build_optimizer("adam", model.parameters(), lr)


def throughput(arch: str, data, device, batch_size: int, repeats: int) -> None:
    """Median images/s of the Trainer and the hand loop; the order alternates so neither always runs first."""
    ours, ref = [], []

    def trainer_epoch(r):
        model, opt = fresh(arch, data, device)
        trainer = Trainer(model, opt, data.train, device, batch_size=batch_size, epochs=1, seed=r)
        return trainer.fit().epochs[0].images_per_sec

    def hand_epoch(r):
        model, opt = fresh(arch, data, device)
        return hand_loop(model, opt, data.train, device, batch_size, r)

    for r in range(max(repeats, 1) + 1):  # the first round warms up both and is not counted
        if r % 2:
            t, h = trainer_epoch(r), hand_epoch(r)
        else:
            h, t = hand_epoch(r), trainer_epoch(r)
        if r:
            ours.append(t)
            ref.append(h)
    m_ours, m_ref = statistics.median(ours), statistics.median(ref)
    print(f"{arch:16s} batch {batch_size}: Trainer {m_ours:7,.0f} img/s | hand loop {m_ref:7,.0f} img/s | "
          f"ratio {m_ours / m_ref:.3f} (median of {repeats})")


def cli_defaults() -> dict:
    """The CLI's default recipe, read from its parser (so this bench measures what `python -m dlplay train` does)."""
    args = build_parser().parse_args(["train"])
    return dict(model=args.model, optimizer=args.optimizer, lr=args.lr, weight_decay=args.weight_decay,
                schedule=args.schedule, augment=args.augment, epochs=args.epochs, batch_size=args.batch_size,
                label_smoothing=args.label_smoothing)


def recipes() -> dict[str, dict]:
    """The two previous defaults, each change since on its own, and today's default."""
    now = cli_defaults()
    first = {**now, "model": "small-cnn", "epochs": 10, "batch_size": 64, "lr": 3e-3, "label_smoothing": 0.0}
    second = {**now, "model": "small-cnn", "epochs": 7}
    return {"first: small-cnn, 10 epochs, batch 64, lr 3e-3": first,
            "second: batch 256, lr 1e-2, 7 ep, smoothing 0.1": second,
            "second with strided-cnn (same 7 epochs)": {**second, "model": "strided-cnn"},
            f"now (the CLI default): that, {now['epochs']} epochs": now}


def run_recipe(data, device, seed: int, recipe: dict) -> tuple[float, float]:
    """Train one recipe from `seed`; returns (test accuracy, seconds of training)."""
    mean, std = data.channel_stats()
    model = build_model(recipe["model"], data.input_shape, data.num_classes, mean, std, seed=seed)
    optimizer = build_optimizer(recipe["optimizer"], model.parameters(), recipe["lr"], recipe["weight_decay"])
    trainer = Trainer(model, optimizer, data.train, device, batch_size=recipe["batch_size"], epochs=recipe["epochs"],
                      schedule=recipe["schedule"], seed=seed, augmentation=AUGMENTATIONS[recipe["augment"]],
                      label_smoothing=recipe["label_smoothing"])
    seconds = sum(e.seconds for e in trainer.fit().epochs)
    return evaluate(model, data.test, device).accuracy, seconds


def time_to_accuracy(data, device, seeds: int) -> None:
    """Each recipe over seeds 0..seeds-1: every seed's test accuracy and training seconds, and their means."""
    for name, recipe in recipes().items():
        results = [run_recipe(data, device, seed, recipe) for seed in range(seeds)]
        accuracies = ", ".join(f"{a:.1%}" for a, _ in results)
        times = ", ".join(f"{s:.1f}" for _, s in results)
        print(f"  {name:48s} mean {statistics.mean(a for a, _ in results):.2%} ({accuracies}) after "
              f"{statistics.mean(s for _, s in results):.1f} s ({times})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--part", choices=("all", "throughput", "recipes"), default="all",
                        help="run part 1 (throughput), part 2 (time to accuracy) or both")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {configure_threads()} threads")
    device = pick_device("auto")
    loads = []
    for _ in range(5):
        start = time.perf_counter()
        data = load_dataset("mnist5k")
        loads.append(time.perf_counter() - start)
    print(f"mnist5k load: median {statistics.median(loads) * 1000:.0f} ms; device {device.name}, {device.precision}, "
          f"{'channels_last' if device.channels_last else 'NCHW'}")
    if args.part != "recipes":
        throughputs(data, device, args.repeats)
    if args.part != "throughput":
        print(f"\n2. Time to accuracy on mnist5k (1,000 held-out test digits), seeds 0-{args.seeds - 1}")
        time_to_accuracy(data, device, args.seeds)


def throughputs(data, device, repeats: int) -> None:
    """Part 1: the Trainer against the hand loop on two models and two image shapes, and the memory formats."""
    print("\n1. Trainer vs hand-written loop (same model, data, batch size; no augmentation, constant lr)")
    for arch in ("small-cnn", "article-cifar10"):
        throughput(arch, data, device, 64, repeats)
    # CIFAR-10-shaped images (3x32x32, random pixels: throughput does not depend on content), the article's model.
    generator = torch.Generator().manual_seed(0)
    cifar_shaped = ImageSet(torch.randint(0, 256, (4000, 3, 32, 32), dtype=torch.uint8, generator=generator),
                            torch.randint(0, 10, (4000,), generator=generator))
    print("on CIFAR-10-shaped 3x32x32 images:", end=" ")
    throughput("article-cifar10", Dataset("cifar-shaped", data.class_names, cifar_shaped, cifar_shaped), device, 64,
               repeats)
    memory_formats(data, device, repeats)


if __name__ == "__main__":
    main()
