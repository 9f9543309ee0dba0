"""Checkpoints: a run's record (`store`) together with its tensors, as safetensors files.

    weights.safetensors    the model
    best.safetensors       best-validation weights, while they differ from the model's
    trainer.safetensors    optimizer tensors, RNG states, the current epoch's permutation; its
                           metadata holds counters and the optimizer's hyper-parameters

Nothing is ever unpickled, so a checkpoint from an untrusted source cannot run code. Each file's
header is read and checked first (every tensor's dtype, shape and place in the file); the
model is built on the meta device, so its config's size is weighed against the memory budget
and its weights' names, shapes and dtypes are compared with the header before any tensor is
allocated; values are then read into place and checked to be finite.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors.torch import save as safetensors_bytes

from .budget import over_budget
from .config.base import Config
from .tensorfile import check_against, open_tensors, read_finite
from .store import (WEIGHTS, CheckpointError, RunRecord, new_state_folder, parse_json, read_current_state,
                    read_state_record, state_folder, switch_to, write_new_file)
from . import store

Tensors = dict[str, torch.Tensor]
BEST, TRAINER = "best.safetensors", "trainer.safetensors"
# A loaded model takes its weights and room to compute with them.
LOAD_FACTOR = 2
# The torch dtypes of the safetensors dtypes a checkpoint may hold (`tensorfile.DTYPES`).
DTYPE_NAMES = {torch.float32: "F32", torch.uint8: "U8", torch.int64: "I64"}


@dataclass
class Checkpoint(RunRecord):
    """A run's record with its weights, and for resuming its training state."""
    weights: Tensors = field(default_factory=dict, repr=False)
    best_weights: Tensors | None = field(default=None, repr=False)
    trainer_tensors: Tensors | None = field(default=None, repr=False)
    trainer_meta: dict | None = None
    state: Path | None = None        # the state folder it was read from


# --- writing ---------------------------------------------------------------------------------

def _contiguous_cpu(tensors: Tensors) -> Tensors:
    return {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}


def save_checkpoint(run_dir: str | Path, *, kind: str, model_config: Config, train_config: Config,
                    weights: Tensors, history: dict, best_weights: Tensors | None = None,
                    trainer_tensors: Tensors | None = None, trainer_meta: dict | None = None) -> Path:
    """Write a complete checkpoint into a new state folder, then switch `run.json` to it."""
    run_dir = Path(run_dir)
    try:
        state = new_state_folder(run_dir, RunRecord(run_dir, kind, model_config, train_config, history))
        files = {WEIGHTS: weights, BEST: best_weights, TRAINER: trainer_tensors}
        for filename, tensors in files.items():
            if tensors is None:
                continue
            meta = {"trainer": json.dumps(trainer_meta)} if filename == TRAINER else None
            write_new_file(state / filename, safetensors_bytes(_contiguous_cpu(tensors), metadata=meta))
        switch_to(run_dir, state)
    except OSError as exc:
        raise CheckpointError(run_dir, f"cannot be written ({exc.strerror or type(exc).__name__})", run_dir) from None
    return state


# --- reading ---------------------------------------------------------------------------------

def _tensors(values: dict) -> Tensors:
    """Torch tensors over the arrays read (no copy)."""
    return {name: torch.from_numpy(array) for name, array in values.items()}


def meta_model(build: Callable[[RunRecord], torch.nn.Module], record: RunRecord) -> torch.nn.Module:
    """The model a record's config builds, on the meta device: shapes without memory."""
    with torch.device("meta"):
        return build(record)


def expected_weights(model: torch.nn.Module) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    return {name: (tuple(t.shape), t.dtype) for name, t in model.state_dict().items()}


def weights_bytes(model: torch.nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


Build = Callable[[RunRecord], torch.nn.Module]


def _read_state(run_dir: Path, folder: Path, with_training_state: bool,
                build: Build | None) -> tuple[torch.nn.Module | None, Checkpoint]:
    record = read_state_record(run_dir, folder)
    ckpt = Checkpoint(record.path, record.kind, record.model_config, record.train_config, record.history,
                      state=folder)
    names = [WEIGHTS] + [name for name in (BEST, TRAINER) if with_training_state
                         and os.path.lexists(folder / name)]
    files = {}
    try:
        for name in names:
            files[name] = open_tensors(run_dir, folder, name)
        meta = meta_model(build, record) if build is not None else None
        need = sum(f.nbytes for f in files.values()) + (LOAD_FACTOR - 1) * files[WEIGHTS].nbytes
        if meta is not None:
            need = max(need, LOAD_FACTOR * weights_bytes(meta))
        problem = over_budget(need, "this model")
        if problem:
            raise CheckpointError(folder / "config.json", problem, run_dir)
        for name in (WEIGHTS, BEST):
            if name in files and meta is not None:
                check_against(files[name], {weight: (shape, DTYPE_NAMES.get(dtype, str(dtype)))
                                            for weight, (shape, dtype) in expected_weights(meta).items()})
        ckpt.weights = _tensors(read_finite(files[WEIGHTS]))
        if BEST in files:
            ckpt.best_weights = _tensors(read_finite(files[BEST]))
        if TRAINER in files:
            trainer = files[TRAINER]
            ckpt.trainer_tensors = _tensors(trainer.read_all())
            if "trainer" not in trainer.metadata:
                raise trainer.fail("training metadata is missing")
            ckpt.trainer_meta = parse_json(trainer.metadata["trainer"].encode("utf-8"), trainer.path, run_dir)
            if not isinstance(ckpt.trainer_meta, dict):
                raise trainer.fail("training metadata is not a JSON object")
    finally:
        for f in files.values():
            f.file.close()
    if meta is None:
        return None, ckpt
    # The meta model takes the weights just read as its own: no second copy, no initialisation
    # (and no `to_empty`, whose meta-device path imports sympy: half a second on a cold server).
    meta.load_state_dict(ckpt.weights, assign=True)
    if any(t.is_meta for t in (*meta.parameters(), *meta.buffers())):  # a tensor kept out of the state dict
        meta = meta.to_empty(device="cpu")
        meta.load_state_dict(ckpt.weights, assign=True)
    return meta, ckpt


def _read(run_dir: str | Path, with_training_state: bool, build: Build | None):
    return read_current_state(run_dir, lambda run, folder: _read_state(run, folder, with_training_state, build))


def read_checkpoint(run_dir: str | Path, with_training_state: bool = False) -> Checkpoint:
    """Read and validate a run's configs, history and weights (and optimizer state if asked),
    without a model: every file's header is checked and its size weighed against the budget."""
    return _read(run_dir, with_training_state, None)[1]


def load_checkpoint(run_dir: str | Path, build: Build,
                    with_training_state: bool = False) -> tuple[torch.nn.Module, Checkpoint]:
    """A run's model, as `build` makes it from the record, with its weights, and its checkpoint.
    The model is first built on the meta device: its size is weighed against the memory budget
    and its weights' names, shapes and dtypes are compared with the files' headers before any
    tensor is allocated; the weights must be finite."""
    return _read(run_dir, with_training_state, build)


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


def run_size(run_dir: str | Path) -> int:
    """The bytes of a run's current state: its files, as they are (links are not followed)."""
    folder = state_folder(run_dir)
    return sum(os.lstat(p).st_size for p in folder.iterdir()) + os.lstat(Path(run_dir) / store.POINTER).st_size

