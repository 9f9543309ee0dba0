"""Checkpoints: a run's record (`store`) together with its tensors, as safetensors files.

    weights.safetensors    the model
    best.safetensors       best-validation weights, while they differ from the model's
    trainer.safetensors    optimizer tensors, RNG states, the current epoch's permutation; its
                           metadata holds counters and the optimizer's hyper-parameters

Nothing is ever unpickled, so a checkpoint from an untrusted source cannot run code. Loading
weights into a model checks every name, shape and value against the model its config builds.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from .config.base import Config
from .store import (WEIGHTS, CheckpointError, RunRecord, current_state_name, new_state_folder,
                    read_state_record, state_folder, switch_to)

Tensors = dict[str, torch.Tensor]


@dataclass
class Checkpoint(RunRecord):
    """A run's record with its weights, and for resuming its training state."""
    weights: Tensors = field(default_factory=dict, repr=False)
    best_weights: Tensors | None = field(default=None, repr=False)
    trainer_tensors: Tensors | None = field(default=None, repr=False)
    trainer_meta: dict | None = None


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _contiguous_cpu(tensors: Tensors) -> Tensors:
    return {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}


def save_checkpoint(run_dir: str | Path, *, kind: str, model_config: Config, train_config: Config,
                    weights: Tensors, history: dict, best_weights: Tensors | None = None,
                    trainer_tensors: Tensors | None = None, trainer_meta: dict | None = None) -> Path:
    """Write a complete checkpoint into a new state folder, then switch `run.json` to it."""
    run_dir = Path(run_dir)
    state = new_state_folder(run_dir, RunRecord(run_dir, kind, model_config, train_config, history))
    files = {WEIGHTS: weights, "best.safetensors": best_weights, "trainer.safetensors": trainer_tensors}
    for filename, tensors in files.items():
        if tensors is None:
            continue
        meta = {"trainer": json.dumps(trainer_meta)} if filename == "trainer.safetensors" else None
        save_file(_contiguous_cpu(tensors), str(state / filename), metadata=meta)
        _fsync_file(state / filename)
    switch_to(run_dir, state)
    return state


def _read_tensors(path: Path) -> tuple[Tensors, dict[str, str]]:
    if not path.is_file():
        raise CheckpointError(path, "file is missing")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        return load_file(str(path)), meta
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(path, f"not a readable safetensors file ({exc}); "
                                    "it is corrupt or truncated") from None


def _read_state(run_dir: Path, folder: Path, with_training_state: bool) -> Checkpoint:
    record = read_state_record(run_dir, folder)
    ckpt = Checkpoint(record.path, record.kind, record.model_config, record.train_config, record.history)
    ckpt.weights, _ = _read_tensors(folder / WEIGHTS)
    if with_training_state:
        if (folder / "best.safetensors").is_file():
            ckpt.best_weights, _ = _read_tensors(folder / "best.safetensors")
        if (folder / "trainer.safetensors").is_file():
            ckpt.trainer_tensors, meta = _read_tensors(folder / "trainer.safetensors")
            try:
                ckpt.trainer_meta = json.loads(meta["trainer"])
            except (KeyError, ValueError):
                raise CheckpointError(folder / "trainer.safetensors", "training metadata is missing "
                                                                      "or corrupt") from None
    return ckpt


def read_checkpoint(run_dir: str | Path, with_training_state: bool = False) -> Checkpoint:
    """Read and validate a run's configs, history and weights (and optimizer state if asked)."""
    run_dir = Path(run_dir)
    for _ in range(3):
        folder = state_folder(run_dir)
        try:
            return _read_state(run_dir, folder, with_training_state)
        except CheckpointError:
            # A training process may have saved a newer state and removed this one meanwhile.
            if current_state_name(run_dir) == folder.name:
                raise
    return _read_state(run_dir, state_folder(run_dir), with_training_state)


def load_weights(model: torch.nn.Module, ckpt: Checkpoint, weights: Tensors | None = None) -> torch.nn.Module:
    """Load a checkpoint's weights (or `weights`) into the model its config built, checking that
    every name and shape matches and every value is finite."""
    weights = ckpt.weights if weights is None else weights
    expected = model.state_dict()
    path = state_folder(ckpt.path) / WEIGHTS
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    if missing or unexpected:
        raise CheckpointError(path, "weights do not match the config: "
                              + (f"missing {', '.join(missing[:5])}" if missing else "")
                              + ("; " if missing and unexpected else "")
                              + (f"unexpected {', '.join(unexpected[:5])}" if unexpected else ""))
    for key, tensor in expected.items():
        if tuple(weights[key].shape) != tuple(tensor.shape):
            raise CheckpointError(path, f"weight {key} has shape {tuple(weights[key].shape)} but the "
                                        f"config needs {tuple(tensor.shape)}")
        if not torch.isfinite(weights[key]).all():
            raise CheckpointError(path, f"weight {key} contains NaN or infinite values")
    model.load_state_dict(weights)
    return model


def update_summary(run_dir: str | Path, **values: Any) -> None:
    """Add results (e.g. an evaluation) to a run's summary, keeping everything else as it was."""
    ckpt = read_checkpoint(run_dir, with_training_state=True)
    history = {"epochs": ckpt.epochs, "summary": {**ckpt.summary, **values}}
    save_checkpoint(ckpt.path, kind=ckpt.kind, model_config=ckpt.model_config,
                    train_config=ckpt.train_config, weights=ckpt.weights, history=history,
                    best_weights=ckpt.best_weights, trainer_tensors=ckpt.trainer_tensors,
                    trainer_meta=ckpt.trainer_meta)


def drop_training_state(run_dir: str | Path) -> None:
    """Remove optimizer and best-weights files from a finished run (smaller, no longer resumable)."""
    ckpt = read_checkpoint(run_dir)
    save_checkpoint(ckpt.path, kind=ckpt.kind, model_config=ckpt.model_config,
                    train_config=ckpt.train_config, weights=ckpt.weights, history=ckpt.history)
