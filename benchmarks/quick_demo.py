"""The Train page's "Quick demo" preset: how soon does its latent map visibly learn?

Starts the preset's training exactly as the app does (a `python -m vae_core train` process with
its JSON config and JSON-lines progress), follows the latent snapshots the process writes, and
scores each map by how well it separates the digits: the leave-one-out accuracy of a 10-nearest-
neighbour vote among the snapshot's validation digits (chance is about 10%). The shipped 2-D
model (trained on all 50k digits for 300 epochs), scored the same way on the same digits, is the
reference for a map that has learned. Prints a line per snapshot and a summary, with the wall
time since the process started and the CPU time it had used by then (on a busy machine the CPU
time is what a quiet core would have taken, about).

    python benchmarks/quick_demo.py [--preset quick-demo] [--set hidden_dim=256 ...] [--data-root DIR]

Measured 2026-12-02 on MNIST, one thread, with the machine's 2 cores shared by other work: the
shipped model's map scores 74.5%. At load 4.5 the Quick demo's map passed 80% of that (59.6%)
24.3 s after the process started (13.4 s of CPU time), and its 8 epochs ended after 57.5 s
(27.7 s of CPU). At load 11-20 the same took 14.1 s of CPU (seed 0) and 19.8 s (seed 1), the 8
epochs 31.7 s and 29.9 s of CPU, and 4-8 times as long on the clock. The untrained encoder's map
(step 0, the first snapshot) scores 19.2% (seed 0) and 16.4% (seed 1).
Steps per score, other settings (in-process, seed 0, 10,000 digits): tanh with Adam 1e-3 48% after
1200 steps, 3e-3 54%; ReLU 3e-3 56%, 6e-3 59%, 1e-2 62% (68% after 2400).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ui.train_form import PRESETS  # noqa: E402
from vae_core import snapshots  # noqa: E402
from vae_core.config import CONFIG_CLASSES, from_dict  # noqa: E402
from vae_core.data import load_dataset, prepare  # noqa: E402
from vae_core.jobs import config_json  # noqa: E402
from vae_core.registry import load_model  # noqa: E402
from vae_core.vae import explore  # noqa: E402

NEIGHBOURS = 10


def cpu_seconds(pid: int) -> float | None:
    """User and system CPU time a process has used so far (Linux), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def knn_accuracy(points: np.ndarray, labels: np.ndarray, k: int = NEIGHBOURS) -> float:
    """Leave-one-out accuracy of a k-nearest-neighbour majority vote on 2-D points."""
    points = points.astype(np.float64)
    d = ((points[:, None, :] - points[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    nearest = np.argsort(d, axis=1)[:, :k]
    votes = np.apply_along_axis(lambda row: np.bincount(row, minlength=10).argmax(), 1, labels[nearest])
    return float((votes == labels).mean())


def reference_accuracy(labels: np.ndarray, data_root: str | None) -> float:
    """The shipped 2-D model's map of the same validation digits, scored the same way."""
    model, ckpt = load_model(ROOT / "checkpoints" / "mnist-mlp-z2")
    config = ckpt.train_config
    validation = prepare(load_dataset("mnist", data_root), config.binarization, config.seed).validation
    means, _ = explore.encode(model, validation.images[:len(labels)])
    assert np.array_equal(validation.labels[:len(labels)].numpy(), labels)
    return knn_accuracy(means, labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick-demo", choices=[p.key for p in PRESETS])
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                        help="change preset fields, e.g. hidden_dim=256 learning_rate=0.003")
    parser.add_argument("--data-root", default=os.environ.get("VAE_DATA_ROOT"))
    args = parser.parse_args()
    preset = next(p for p in PRESETS if p.key == args.preset)
    model_values, train_values = dict(preset.model), dict(preset.training)
    model_cls, train_cls = CONFIG_CLASSES[preset.kind]
    for item in args.set:
        name, value = item.split("=", 1)
        target = model_values if name in model_cls.model_fields else train_values
        target[name] = json.loads(value) if value[:1] in "0123456789-[" or value in ("true", "false") else value
    model_config, train_config = from_dict(model_cls, model_values), from_dict(train_cls, train_values)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores; {preset.title}: "
          f"{json.dumps(model_values)} {json.dumps(train_values)}")

    with tempfile.TemporaryDirectory() as runs:
        argv = [sys.executable, "-m", "vae_core", "train", f"--runs-dir={runs}", "--name=demo",
                "--config-json", config_json(model_config, train_config), "--progress", "jsonl"]
        if args.data_root:
            argv.append(f"--data-root={args.data_root}")
        start = time.perf_counter()
        process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        run_dir, seen, scores = Path(runs) / "demo", 0, []
        while True:
            done = process.poll() is not None
            try:
                snaps = snapshots.read_snapshots(run_dir)
            except snapshots.SnapshotError as exc:
                print("unreadable:", exc)
                snaps = None
            if snaps is not None and snaps.steps[-1] != seen:
                seen = int(snaps.steps[-1])
                elapsed, cpu = time.perf_counter() - start, cpu_seconds(process.pid) or float("nan")
                accuracy = knn_accuracy(snaps.means[-1], snaps.labels)
                scores.append((elapsed, cpu, float(snaps.epochs[-1]), accuracy))
                print(f"{elapsed:6.1f} s ({cpu:5.1f} s CPU)  epoch {snaps.epochs[-1]:6.2f}  step {seen:6d}  "
                      f"{NEIGHBOURS}-NN accuracy of the map {100 * accuracy:5.1f}%")
            if done:
                break
            time.sleep(0.2)
        total = time.perf_counter() - start
        if process.returncode != 0:
            sys.exit(f"training failed: {process.stderr.read()[-2000:]}")
        size = (run_dir / snapshots.FILENAME).stat().st_size
        final = snapshots.read_snapshots(run_dir)
        labels = final.labels
    reference = reference_accuracy(labels, args.data_root)
    print(f"process start to the end of training: {total:.1f} s; snapshot file {size / 1e6:.2f} MB")
    print(f"the shipped 2-D model's map of the same digits: {100 * reference:.1f}%")
    print(f"the untrained map (step {final.steps[0]}): {100 * knn_accuracy(final.means[0], labels):.1f}%")
    for share in (0.7, 0.8, 0.9):
        hit = next(((t, c, e, a) for t, c, e, a in scores if a >= share * reference), None)
        if hit:
            print(f"first map at >= {share:.0%} of it ({100 * share * reference:.1f}%): {hit[0]:.1f} s after "
                  f"start, {hit[1]:.1f} s of CPU (epoch {hit[2]:.2f}, {100 * hit[3]:.1f}%)")
        else:
            print(f"no map reached {share:.0%} of it")


if __name__ == "__main__":
    main()
