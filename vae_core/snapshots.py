"""Latent snapshots: how a 2-D VAE's map of validation digits changes while it trains.

A training process records, every few seconds and at each epoch's end, the posterior means of a
fixed set of validation digits, and keeps the latest decoded manifold; the app shows the newest
snapshot live and replays them all afterwards. They live in one file per run,
`latent-snapshots.safetensors` beside `run.json` (see docs/RUN_FORMAT.md), rewritten atomically
and kept under `MAX_FILE_BYTES` by thinning old snapshots. Reading it checks everything and needs
neither torch nor pickle.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load as load_safetensors
from safetensors.numpy import save as save_safetensors

from .store import CheckpointError, open_in_run, writable_run_dir

FILENAME = "latent-snapshots.safetensors"
FORMAT = "vae-explorer-latent-snapshots"
VERSION = "1"
MAX_FILE_BYTES = 2 * 2**20
MAX_POINTS = 2000             # validation digits on the map
MAX_SNAPSHOTS = 200           # then older ones are thinned
MAX_MANIFOLD_BYTES = 100_000  # the latest decoded grid, as bytes of grey levels
INTERVAL_SECONDS = 3.0        # between snapshots within an epoch
FLOAT16_MAX = 65504.0
_TENSORS = {"labels": np.uint8, "means": np.float16, "steps": np.int64, "epochs": np.float32,
            "manifold": np.uint8}




class SnapshotError(CheckpointError):
    """A snapshot file is damaged, too large or not one this version reads; the message is one
    line naming the run and the file."""

    def __init__(self, problem: str, run: Path | str | None = None):
        run = Path(run) if run is not None else None
        super().__init__(run / FILENAME if run is not None else FILENAME, problem, run)


@dataclass(frozen=True)
class Snapshots:
    """A run's snapshots, oldest first."""
    labels: np.ndarray    # (N,) uint8: the digits' classes
    means: np.ndarray     # (S, N, 2) float16: posterior means of the same N validation digits
    steps: np.ndarray     # (S,) int64: optimiser steps done at each snapshot
    epochs: np.ndarray    # (S,) float32: epochs done at each snapshot (steps / steps per epoch)
    manifold: np.ndarray  # (G, G, H, W) uint8: decoder means on a G x G grid, at the latest snapshot

    def __len__(self) -> int:
        return len(self.steps)

    def manifold_image(self) -> np.ndarray:
        """The manifold tiled into one image (G*H, G*W) in [0, 1]: z1 grows left to right, z2
        bottom to top, as on the Latent space page."""
        g, _, h, w = self.manifold.shape
        return self.manifold.transpose(0, 2, 1, 3).reshape(g * h, g * w).astype(np.float32) / 255

    def to_bytes(self) -> bytes:
        return save_safetensors({name: getattr(self, name) for name in _TENSORS},
                                metadata={"format": FORMAT, "version": VERSION})


def manifold_side(height: int, width: int) -> int:
    """Images per side of the decoded grid: as many as fit `MAX_MANIFOLD_BYTES`, at most 10."""
    return max(1, min(10, math.isqrt(MAX_MANIFOLD_BYTES // (height * width))))


def check(snapshots: Snapshots) -> None:
    """Raise `SnapshotError` unless every array is what the format says."""
    labels, means, steps, epochs, manifold = (getattr(snapshots, name) for name in _TENSORS)
    for name, dtype in _TENSORS.items():
        if getattr(snapshots, name).dtype != dtype:
            raise SnapshotError(f"{name} is {getattr(snapshots, name).dtype}, not {np.dtype(dtype)}")
    if labels.ndim != 1 or not 1 <= len(labels) <= MAX_POINTS:
        raise SnapshotError(f"labels has shape {labels.shape}; expected 1 to {MAX_POINTS} digits")
    if means.ndim != 3 or means.shape[1:] != (len(labels), 2):
        raise SnapshotError(f"means has shape {means.shape}; expected (snapshots, {len(labels)}, 2)")
    if not 1 <= len(means) <= MAX_SNAPSHOTS:
        raise SnapshotError(f"{len(means)} snapshots; expected 1 to {MAX_SNAPSHOTS}")
    if steps.shape != (len(means),) or epochs.shape != (len(means),):
        raise SnapshotError(f"steps {steps.shape} and epochs {epochs.shape} do not match {len(means)} snapshots")
    if not np.isfinite(means).all():
        raise SnapshotError("means holds NaN or infinite values")
    if not np.isfinite(epochs).all() or (epochs < 0).any() or (np.diff(epochs) < 0).any():
        raise SnapshotError("epochs must be finite, at least 0 and never decrease")
    if (steps < 0).any() or (np.diff(steps) < 0).any():
        raise SnapshotError("steps must be at least 0 and never decrease")
    if manifold.ndim != 4 or manifold.shape[0] != manifold.shape[1] or not 0 < manifold.size <= MAX_MANIFOLD_BYTES:
        raise SnapshotError(f"manifold has shape {manifold.shape}; expected a square grid of images "
                            f"of at most {MAX_MANIFOLD_BYTES} bytes")


def parse(data: bytes) -> Snapshots:
    """Snapshots from the bytes of a snapshot file, every field checked (`SnapshotError` if not)."""
    if len(data) > MAX_FILE_BYTES:
        raise SnapshotError(f"more than the {MAX_FILE_BYTES} bytes a snapshot file may have")
    if len(data) < 8 or int.from_bytes(data[:8], "little") > len(data) - 8:
        raise SnapshotError("truncated: its header runs past the end of the file")
    try:
        tensors = load_safetensors(data)
        header = json.loads(data[8:8 + int.from_bytes(data[:8], "little")])
    except (SafetensorError, ValueError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:100]
        raise SnapshotError(f"not a readable safetensors file ({reason})") from None
    metadata = header.get("__metadata__") or {}
    if metadata.get("format") != FORMAT:
        raise SnapshotError(f"not a {FORMAT} file")
    if metadata.get("version") != VERSION:
        raise SnapshotError(f"format version {str(metadata.get('version'))[:20]!r} is not supported "
                            f"(this version reads {VERSION})")
    if set(tensors) != set(_TENSORS):
        raise SnapshotError(f"holds the tensors {sorted(tensors)[:8]}; expected {sorted(_TENSORS)}")
    snapshots = Snapshots(**tensors)
    check(snapshots)
    return snapshots


def read_snapshots(run_dir: str | Path) -> Snapshots | None:
    """A run's snapshots; None when it has no snapshot file (runs of other kinds and sizes, and
    runs trained before snapshots existed). A damaged, unsafe or oversized file is a
    `SnapshotError` whose message names the run and the file."""
    run_dir = Path(run_dir)
    if not os.path.lexists(run_dir / FILENAME):
        return None
    try:
        with open_in_run(run_dir, FILENAME) as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except CheckpointError as exc:
        raise SnapshotError(exc.problem, run_dir) from None
    except OSError as exc:
        raise SnapshotError(f"cannot be read ({exc.strerror or type(exc).__name__})", run_dir) from None
    try:
        return parse(data)
    except SnapshotError as exc:
        raise SnapshotError(exc.problem, run_dir) from None


def _is_epoch_end(epochs: np.ndarray) -> np.ndarray:
    return epochs == np.round(epochs)


def thin(keep: list[int], epochs: np.ndarray, limit: int = MAX_SNAPSHOTS) -> list[int]:
    """Indices of the snapshots to keep when there are more than `limit`: every other snapshot
    taken within an epoch goes first, then every other epoch's end; the first and the last
    snapshot always stay."""
    while len(keep) > limit:
        inner = [i for i in keep[1:-1] if not _is_epoch_end(epochs[i:i + 1])[0]]
        candidates = inner or keep[1:-1]
        if not candidates:
            break
        drop = set(candidates[::2])
        keep = [i for i in keep if i not in drop]
    return keep


class SnapshotWriter:
    """Records the snapshots of one training process into its run folder.

    `due()` says whether a snapshot within an epoch is wanted (one every `interval` seconds);
    `add()` appends one (and drops any recorded after `step`, left by a process that stopped
    without saving, so that a resumed run's snapshots stay in order) and rewrites the file
    atomically. A resumed run continues the file it finds when it holds the same digits.
    """

    def __init__(self, run_dir: str | Path, labels: np.ndarray, interval: float | None = None,
                 clock=time.monotonic):
        self.run_dir = writable_run_dir(Path(run_dir))
        self.labels = np.asarray(labels, dtype=np.uint8)
        self.interval = INTERVAL_SECONDS if interval is None else interval
        self.clock = clock
        self.last = clock()  # the first snapshot within an epoch comes `interval` after the start
        self.means: list[np.ndarray] = []
        self.steps: list[int] = []
        self.epochs: list[float] = []
        try:
            old = read_snapshots(self.run_dir)
        except SnapshotError:
            old = None  # a damaged file is replaced
        if old is not None and np.array_equal(old.labels, self.labels):
            self.means, self.steps, self.epochs = list(old.means), old.steps.tolist(), old.epochs.tolist()

    def due(self) -> bool:
        return self.clock() - self.last >= self.interval

    def add(self, means: np.ndarray, step: int, epoch: float, manifold: np.ndarray) -> Snapshots:
        """Record the posterior means (N, 2) and the decoded grid (G, G, H, W) in [0, 1] after
        `step` optimiser steps (`epoch` epochs); write the file and return what it holds."""
        while self.steps and self.steps[-1] >= step:
            self.means.pop(), self.steps.pop(), self.epochs.pop()
        self.means.append(np.clip(np.nan_to_num(means, nan=0.0), -FLOAT16_MAX, FLOAT16_MAX).astype(np.float16))
        self.steps.append(int(step))
        self.epochs.append(float(epoch))
        keep = thin(list(range(len(self.steps))), np.asarray(self.epochs, dtype=np.float32))
        self.means = [self.means[i] for i in keep]
        self.steps = [self.steps[i] for i in keep]
        self.epochs = [self.epochs[i] for i in keep]
        snapshots = Snapshots(self.labels, np.stack(self.means), np.asarray(self.steps, dtype=np.int64),
                              np.asarray(self.epochs, dtype=np.float32),
                              np.round(np.clip(manifold, 0, 1) * 255).astype(np.uint8))
        check(snapshots)
        self._write(snapshots.to_bytes())
        self.last = self.clock()
        return snapshots

    def _write(self, data: bytes) -> None:
        if len(data) > MAX_FILE_BYTES:
            raise SnapshotError(f"{len(data)} bytes would be written, more than {MAX_FILE_BYTES}", self.run_dir)
        fd, tmp = tempfile.mkstemp(prefix=f".{FILENAME}.", suffix=".tmp", dir=self.run_dir)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.run_dir / FILENAME)  # replaces a planted link itself, never its target
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
