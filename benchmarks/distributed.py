"""Training time per epoch in 1 and in N processes (torchrun, gloo on the CPU), same global batch.

    python benchmarks/distributed.py [--processes 2] [--examples 10000] [--epochs 2]

Each setting trains a fresh 784-400-20 VAE (the fused backward, batch 100) on the first
`--examples` MNIST training images into a scratch folder and reads the wall time of its last
epoch (training steps and rank 0's validation) from the run's history. Threads: one per process,
so N processes use N cores; run it when the machine is otherwise idle (`uptime`).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def epoch_seconds(processes: int, examples: int, epochs: int, runs: Path) -> list[float]:
    name = f"n{processes}"
    train = ["-m", "vae_core", "train", f"--name={name}", f"--runs-dir={runs}", "--progress=none",
             "--device=cpu", "--num-threads=1", "--latent-dim=20", "--batch-size=100", f"--epochs={epochs}",
             f"--max-train-examples={examples}", "--patience=0", "--backward=fused"]
    launcher = [sys.executable] if processes == 1 else [
        sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}",
        "--master_addr=127.0.0.1", f"--master_port={free_port()}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    subprocess.run(launcher + train, env=env, check=True, capture_output=True, cwd=ROOT)
    state = json.loads((runs / name / "run.json").read_text())["state"]
    history = json.loads((runs / name / state / "history.json").read_text())
    walls = [0.0] + [record["wall_seconds"] for record in history["epochs"]]
    return [b - a for a, b in zip(walls, walls[1:])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--examples", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1, args.processes):
            seconds = epoch_seconds(n, args.examples, args.epochs, Path(tmp))
            print(f"{n} process(es): epoch seconds {', '.join(f'{s:.2f}' for s in seconds)} "
                  f"({args.examples} examples, global batch 100)")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
