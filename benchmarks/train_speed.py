"""Training speed: vae_core against the common reference loop, side by side in one run.

Both train the same 784-400-20 ReLU VAE with batch 128, Adam 1e-3 and a Bernoulli likelihood
on grey values (the usual "BCE" VAE example) over the 60k MNIST training images. The reference
is the usual PyTorch example loop: torchvision's MNIST dataset, `ToTensor`, a `DataLoader`.
Prints seconds per epoch for each, the ratio, and vae_core's achieved GFLOP/s against this
machine's measured fp32 matmul peak.

    python benchmarks/train_speed.py [--epochs 3] [--threads N] [--skip-compile]
"""

from __future__ import annotations

import argparse
import struct
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vae_core import trainer as trainer_module  # noqa: E402
from vae_core.data import Dataset, Split, load_dataset  # noqa: E402
from vae_core.trainer import Trainer  # noqa: E402
from vae_core.config import ModelConfig, TrainConfig  # noqa: E402
from vae_core.vae.model import build_model  # noqa: E402
from vae_core.vae.task import VAETask  # noqa: E402

HIDDEN, LATENT, BATCH = 400, 20, 128


def matmul_peak_gflops(sizes=(512, 1024, 2048), seconds_each: float = 1.0) -> float:
    """The best fp32 GFLOP/s of square matrix products over several sizes, each timed for
    about `seconds_each`: on a shared machine a single size and few repeats read low."""
    peak = 0.0
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        for _ in range(3):
            a @ b
        best, start = float("inf"), time.perf_counter()
        while time.perf_counter() - start < seconds_each:
            t0 = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - t0)
        peak = max(peak, 2 * n ** 3 / best / 1e9)
    return peak


def training_flops_per_image() -> float:
    """Matmul FLOPs of one training step per image: forward, plus weight and input gradients
    (no input gradient for the first layer)."""
    layers = [(784, HIDDEN), (HIDDEN, 2 * LATENT), (LATENT, HIDDEN), (HIDDEN, 784)]
    forward = sum(2 * i * o for i, o in layers)
    return 3 * forward - 2 * 784 * HIDDEN


def write_idx_folder(images: np.ndarray, labels: np.ndarray, root: Path) -> None:
    """The 60k training images as torchvision's MNIST expects them on disk (raw IDX files)."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)

    def write(name, array):
        header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", n) for n in array.shape)
        (raw / name).write_bytes(header + array.astype(np.uint8).tobytes())
    pixels = np.round(images * 255).astype(np.uint8)
    write("train-images-idx3-ubyte", pixels)
    write("train-labels-idx1-ubyte", labels)
    write("t10k-images-idx3-ubyte", pixels[:10])
    write("t10k-labels-idx1-ubyte", labels[:10])


class ReferenceVAE(nn.Module):
    """The usual example VAE: fc1, fc21/fc22, fc3, fc4."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, HIDDEN), nn.Linear(HIDDEN, LATENT), nn.Linear(HIDDEN, LATENT)
        self.fc3, self.fc4 = nn.Linear(LATENT, HIDDEN), nn.Linear(HIDDEN, 784)

    def forward(self, x):
        h = F.relu(self.fc1(x.view(-1, 784)))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar


def reference_epoch_seconds(root: Path, epochs: int) -> list[float]:
    from torchvision import datasets, transforms
    loader = torch.utils.data.DataLoader(
        datasets.MNIST(str(root), train=True, download=False, transform=transforms.ToTensor()),
        batch_size=BATCH, shuffle=True)
    model = ReferenceVAE()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        for x, _ in loader:
            recon, mu, logvar = model(x)
            loss = F.binary_cross_entropy(recon, x.view(-1, 784), reduction="sum") \
                - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        times.append(time.perf_counter() - t0)
    return times


def vae_core_epoch_seconds(data: Dataset, epochs: int, compile: bool = False, backward: str = "fused") -> list[float]:
    """Seconds of each epoch's training steps (validation excluded); when compiling, the
    first epoch (which includes compilation) is left out. `backward`: fused (the hand-derived
    gradients) or autograd."""
    model_config = ModelConfig(latent_dim=LATENT, hidden_dim=HIDDEN, activation="relu")
    config = TrainConfig(dataset="mnist", binarization="none", batch_size=BATCH, learning_rate=1e-3,
                         epochs=epochs + compile, patience=0, device="cpu", compile=compile,
                         backward="autograd" if compile else backward)
    torch.manual_seed(0)
    task = VAETask(data, model_config, config)
    times: list[float] = []

    class Timer:
        def __call__(self, event):
            if event.kind in ("start", "epoch"):
                self.t0 = time.perf_counter()
            elif event.kind == "step" and event.step == event.steps_per_epoch:
                times.append(time.perf_counter() - self.t0)
    trainer_module.STEP_EVENT_SECONDS = 1e9  # only the end-of-epoch step event, no per-step overhead
    Trainer(build_model(model_config), task, callbacks=[Timer()]).fit()
    return times[compile:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3, help="rounds: epochs of each loop (default: 3)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--skip-compile", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    mnist = load_dataset("mnist")
    train = Split(torch.cat([mnist.train.images, mnist.validation.images]),
                  torch.cat([mnist.train.labels, mnist.validation.labels]))
    n = len(train)
    print(f"784-{HIDDEN}-{LATENT} VAE, batch {BATCH}, Adam 1e-3, {n} images, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    flops = training_flops_per_image() * n
    print(f"training matmul work: {flops / 1e9:.0f} GFLOP per epoch")

    # The loops take turns, one epoch each per round, so that a slow spell on a shared machine
    # slows all of them alike; each figure is its best epoch, the peak the best of all rounds.
    data = replace(mnist, train=train)
    loops = {"reference loop (Dataset + ToTensor + DataLoader)": None,
             "vae_core, --backward fused (hand-derived)": "fused",
             "vae_core, --backward autograd": "autograd"}
    times: dict[str, list[float]] = {name: [] for name in loops}
    peak = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        write_idx_folder(train.images[:, 0].numpy(), train.labels.numpy(), Path(tmp))
        for round_ in range(args.epochs):
            peak = max(peak, matmul_peak_gflops())
            for name, backward in loops.items():
                times[name] += (reference_epoch_seconds(Path(tmp), 1) if backward is None
                                else vae_core_epoch_seconds(data, 1, backward=backward))
            print(f"round {round_ + 1}: " + ", ".join(f"{t[-1]:.2f} s" for t in times.values()), flush=True)
    if not args.skip_compile:
        times["vae_core, autograd + torch.compile"] = vae_core_epoch_seconds(data, args.epochs, compile=True)
    print(f"fp32 matmul peak: {peak:.0f} GFLOP/s (best of {args.epochs} rounds over three sizes)")
    rows = [(name, min(t)) for name, t in times.items()]
    reference = rows[0][1]
    print(f"\n{'loop':50s} {'s/epoch':>8s} {'speed-up':>9s} {'GFLOP/s':>8s} {'% of peak':>9s}")
    for name, seconds in rows:
        achieved = flops / seconds / 1e9
        print(f"{name:50s} {seconds:8.2f} {reference / seconds:8.1f}x {achieved:8.0f} {100 * achieved / peak:8.0f}%")


if __name__ == "__main__":
    main()
