"""Benchmark the Trainer against a minimal hand-written PyTorch loop, and the CLI recipe's time to accuracy.

Run: python bench/train_bench.py [--repeats 5]
Part 1 trains the same model on the same data with the same batch size, alternating the two loops, and prints
the median images/s of each and their ratio. Part 2 runs the CLI's default recipe on mnist5k and a plain Adam
loop (no schedule, no augmentation) for the same number of epochs, and prints test accuracy against seconds.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from dlplay.augment import LIGHT  # noqa: E402
from dlplay.data import Dataset, ImageSet, load_dataset  # noqa: E402
from dlplay.device import configure_threads, pick_device  # noqa: E402
from dlplay.evaluate import evaluate  # noqa: E402
from dlplay.models import build_model  # noqa: E402
from dlplay.train import Trainer, build_optimizer  # noqa: E402


def hand_loop(model, optimizer, train: ImageSet, device, batch_size: int, seed: int) -> float:
    """The reference: the plainest correct epoch loop; returns images/s."""
    dev = device.device
    images, labels = train.images.to(dev), train.labels.to(dev)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed)).to(dev)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    start = time.perf_counter()
    for i in range(0, len(labels), batch_size):
        idx = order[i:i + batch_size]
        x = images[idx].float().div_(255)
        if device.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        loss = loss_fn(model(x), labels[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return len(labels) / (time.perf_counter() - start)


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

    for r in range(repeats + 1):  # the first round warms up both and is not counted
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


def recipe(data, device, seed: int) -> None:
    """The CLI defaults (small-cnn, AdamW 3e-3 one-cycle, light augmentation, 10 epochs, batch 64)."""
    mean, std = data.channel_stats()
    model = build_model("small-cnn", data.input_shape, data.num_classes, mean, std, seed=seed)
    trainer = Trainer(model, build_optimizer("adamw", model.parameters(), 3e-3, 5e-4), data.train, device,
                      batch_size=64, epochs=10, schedule="onecycle", seed=seed, augmentation=LIGHT)
    h = trainer.fit()
    seconds = sum(e.seconds for e in h.epochs)
    print(f"  dlplay recipe  seed {seed}: test accuracy {evaluate(model, data.test, device).accuracy:.2%} "
          f"after {seconds:.1f}s of training")
    model, opt = fresh("small-cnn", data, device, seed)
    start = time.perf_counter()
    for epoch in range(10):
        hand_loop(model, opt, data.train, device, 64, seed + epoch)
    print(f"  plain Adam     seed {seed}: test accuracy {evaluate(model, data.test, device).accuracy:.2%} "
          f"after {time.perf_counter() - start:.1f}s of training")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {configure_threads()} threads")
    device = pick_device("auto")
    loads = []
    for _ in range(5):
        start = time.perf_counter()
        data = load_dataset("mnist5k")
        loads.append(time.perf_counter() - start)
    print(f"mnist5k load: median {statistics.median(loads) * 1000:.0f} ms; device {device.name}")
    print("\n1. Trainer vs hand-written loop (same model, data, batch size; no augmentation, constant lr)")
    for arch in ("small-cnn", "article-cifar10"):
        throughput(arch, data, device, 64, args.repeats)
    # CIFAR-10-shaped images (3x32x32, random pixels: throughput does not depend on content), the article's model.
    generator = torch.Generator().manual_seed(0)
    cifar_shaped = ImageSet(torch.randint(0, 256, (4000, 3, 32, 32), dtype=torch.uint8, generator=generator),
                            torch.randint(0, 10, (4000,), generator=generator))
    print("on CIFAR-10-shaped 3x32x32 images:", end=" ")
    throughput("article-cifar10", Dataset("cifar-shaped", data.class_names, cifar_shaped, cifar_shaped), device, 64,
               args.repeats)
    print("\n2. Time to accuracy on mnist5k (1,000 held-out test digits)")
    for seed in range(args.seeds):
        recipe(data, device, seed)


if __name__ == "__main__":
    main()
