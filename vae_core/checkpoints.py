"""Run folders: weights as safetensors, config and history as JSON, optimizer state for resuming.

Nothing is ever unpickled, so a checkpoint from an untrusted source cannot run code. Reading
configs and histories (listing runs) does not import torch. A save
writes a complete new state folder and then atomically replaces the small `run.json` pointer,
so a process killed at any moment leaves the previous checkpoint loadable:

    run-name/
      run.json                 {"format": "vae-explorer-run", "version": 1, "state": "state-000007"}
      state-000007/
        config.json            kind, model and training configs
        history.json           per-epoch metrics and a summary (status, best epoch, test metrics)
        weights.safetensors    the model
        best.safetensors       best-validation weights, while they differ from the model's
        trainer.safetensors    optimizer tensors, RNG states, the current epoch's permutation;
                               its metadata holds counters and the optimizer's hyper-parameters
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safetensors import SafetensorError

from . import config as cfg

FORMAT = "vae-explorer-run"
VERSION = 1
POINTER = "run.json"
_STATE_RE = re.compile(r"^state-(\d{6})$")
_MAX_NAME = 64


class CheckpointError(RuntimeError):
    """A checkpoint is missing, corrupt, truncated or does not match its config; names the file."""

    def __init__(self, path: Path | str, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


CONFIG_CLASSES = {"vae": (cfg.ModelConfig, cfg.TrainConfig), "m2": (cfg.M2Config, cfg.M2TrainConfig)}


def build_model_for(kind: str, model_config: Any):
    """The untrained model of a checkpoint kind (imports torch only when a model is needed)."""
    if kind == "m2":
        from .semisupervised import build_m2
        return build_m2(model_config)
    from .models import build_model
    return build_model(model_config)


def save_file(tensors: dict, path: str, metadata: dict | None = None) -> None:
    from safetensors.torch import save_file as save
    save(tensors, path, metadata=metadata)


def load_file(path: str) -> dict:
    from safetensors.torch import load_file as load
    return load(path)


@dataclass
class Checkpoint:
    path: Path                       # the run folder
    kind: str
    model_config: Any
    train_config: Any
    history: dict                    # {"epochs": [...], "summary": {...}}
    weights: dict[str, torch.Tensor] = field(repr=False)
    best_weights: dict[str, torch.Tensor] | None = field(default=None, repr=False)
    trainer_tensors: dict[str, torch.Tensor] | None = field(default=None, repr=False)
    trainer_meta: dict | None = None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def epochs(self) -> list[dict]:
        return self.history.get("epochs", [])

    @property
    def summary(self) -> dict:
        return self.history.get("summary", {})


# --- names and folders -----------------------------------------------------------------------

def sanitize_run_name(name: str) -> str:
    """Letters, digits, '.', '_' and '-' only, no leading dot: a name can never leave its folder."""
    clean = re.sub(r"[^A-Za-z0-9._-]+", "-", name)
    clean = re.sub(r"-*\.{2,}-*", "-", clean)  # no ".." anywhere, even though no "/" survives
    clean = re.sub(r"-{2,}", "-", clean).strip(".-")[:_MAX_NAME].strip(".-")
    return clean or "run"


def create_run_dir(root: str | Path, name: str) -> Path:
    """Make a new, empty run folder; `mkdir` is atomic, so concurrent callers never share one."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    base = sanitize_run_name(name)
    for i in range(1, 10_000):
        path = root / (base if i == 1 else f"{base}-{i}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"no free run name for {base!r} in {root}")


# --- writing ---------------------------------------------------------------------------------

def _write_json(path: Path, data: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, allow_nan=True)
        f.flush()
        os.fsync(f.fileno())


def _replace_atomically(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    _write_json(tmp, data)
    os.replace(tmp, path)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _contiguous_cpu(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}


def _current_state_name(run_dir: Path) -> str | None:
    try:
        pointer = json.loads((run_dir / POINTER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    state = pointer.get("state") if isinstance(pointer, dict) else None
    return state if isinstance(state, str) and _STATE_RE.match(state) else None


def save_checkpoint(run_dir: str | Path, *, kind: str, model_config: Any, train_config: Any,
                    weights: dict[str, torch.Tensor], history: dict,
                    best_weights: dict[str, torch.Tensor] | None = None,
                    trainer_tensors: dict[str, torch.Tensor] | None = None,
                    trainer_meta: dict | None = None) -> Path:
    """Write a complete checkpoint into a new state folder, then switch `run.json` to it."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    numbers = [int(m.group(1)) for p in run_dir.iterdir() if (m := _STATE_RE.match(p.name))]
    state_name = f"state-{max(numbers, default=0) + 1:06d}"
    state = run_dir / state_name
    state.mkdir()
    _write_json(state / "config.json", {"kind": kind, "model": cfg.to_dict(model_config),
                                        "training": cfg.to_dict(train_config)})
    _write_json(state / "history.json", history)
    files = {"weights.safetensors": weights, "best.safetensors": best_weights,
             "trainer.safetensors": trainer_tensors}
    for filename, tensors in files.items():
        if tensors is None:
            continue
        meta = {"trainer": json.dumps(trainer_meta)} if filename == "trainer.safetensors" else None
        save_file(_contiguous_cpu(tensors), str(state / filename), metadata=meta)
        _fsync_file(state / filename)
    _replace_atomically(run_dir / POINTER, {"format": FORMAT, "version": VERSION, "state": state_name})
    # Only now is the old state unreferenced; also sweep folders left by a killed save.
    for p in run_dir.iterdir():
        if _STATE_RE.match(p.name) and p.name != state_name:
            shutil.rmtree(p, ignore_errors=True)
    return state


def drop_training_state(run_dir: str | Path) -> None:
    """Remove optimizer and best-weights files from a finished run (smaller, no longer resumable)."""
    ckpt = read_checkpoint(run_dir)
    save_checkpoint(ckpt.path, kind=ckpt.kind, model_config=ckpt.model_config,
                    train_config=ckpt.train_config, weights=ckpt.weights, history=ckpt.history)


# --- reading ---------------------------------------------------------------------------------

def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise CheckpointError(path, "file is missing")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise CheckpointError(path, "not UTF-8 text: the file is corrupt") from None
    except ValueError as exc:
        raise CheckpointError(path, f"not valid JSON ({exc}); the file is corrupt or truncated") from None


def _read_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    if not path.is_file():
        raise CheckpointError(path, "file is missing")
    try:
        from safetensors import safe_open
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        return load_file(str(path)), meta
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(path, f"not a readable safetensors file ({exc}); "
                                    "it is corrupt or truncated") from None


def state_folder(run_dir: str | Path) -> Path:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(run_dir, "no such run folder")
    pointer = _read_json(run_dir / POINTER)
    if not isinstance(pointer, dict) or pointer.get("format") != FORMAT:
        raise CheckpointError(run_dir / POINTER, f"not a {FORMAT} pointer file")
    if pointer.get("version") != VERSION:
        raise CheckpointError(run_dir / POINTER, f"format version {pointer.get('version')!r} is not "
                                                 f"supported (this version reads {VERSION})")
    state = pointer.get("state")
    if not isinstance(state, str) or not _STATE_RE.match(state):
        raise CheckpointError(run_dir / POINTER, f"bad state folder name {state!r}")
    folder = run_dir / state
    if not folder.is_dir():
        raise CheckpointError(folder, "state folder named by run.json is missing")
    return folder


def read_checkpoint(run_dir: str | Path, with_training_state: bool = False,
                    with_weights: bool = True) -> Checkpoint:
    """Read and validate a run's configs, history and weights (and optimizer state if asked).

    Without weights (`with_weights=False`, for listing runs) `Checkpoint.weights` is empty.
    """
    run_dir = Path(run_dir)
    for _ in range(3):
        folder = state_folder(run_dir)
        try:
            return _read_state(run_dir, folder, with_training_state, with_weights)
        except CheckpointError:
            # A training process may have saved a newer state and removed this one meanwhile.
            if _current_state_name(run_dir) == folder.name:
                raise
    return _read_state(run_dir, state_folder(run_dir), with_training_state, with_weights)


def _read_state(run_dir: Path, folder: Path, with_training_state: bool, with_weights: bool) -> Checkpoint:
    config = _read_json(folder / "config.json")
    if not isinstance(config, dict) or not {"kind", "model", "training"} <= set(config):
        raise CheckpointError(folder / "config.json", "needs the keys kind, model and training")
    try:
        model_cls, train_cls = CONFIG_CLASSES[config["kind"]]
    except (KeyError, TypeError):
        raise CheckpointError(folder / "config.json", f"unknown model kind {config['kind']!r}") from None
    try:
        model_config = cfg.from_dict(model_cls, config["model"])
        train_config = cfg.from_dict(train_cls, config["training"])
    except (cfg.ConfigError, TypeError) as exc:
        raise CheckpointError(folder / "config.json", f"invalid config: {exc}") from None
    history = _read_json(folder / "history.json")
    if not isinstance(history, dict) or not isinstance(history.get("epochs"), list):
        raise CheckpointError(folder / "history.json", "needs an 'epochs' list")
    if with_weights:
        weights, _ = _read_tensors(folder / "weights.safetensors")
    elif (folder / "weights.safetensors").is_file():
        weights = {}
    else:
        raise CheckpointError(folder / "weights.safetensors", "file is missing")
    ckpt = Checkpoint(run_dir, config["kind"], model_config, train_config, history, weights)
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


def build_from_checkpoint(ckpt: Checkpoint, weights: dict[str, torch.Tensor] | None = None,
                          device: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild the model from its config and load weights, checking every name and shape."""
    import torch
    model = build_model_for(ckpt.kind, ckpt.model_config)
    weights = ckpt.weights if weights is None else weights
    expected = model.state_dict()
    path = state_folder(ckpt.path) / "weights.safetensors"
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
    return model.to(device).eval()


def load_model(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, Checkpoint]:
    """The trained model of a run, in eval mode, and its checkpoint record."""
    ckpt = read_checkpoint(run_dir)
    return build_from_checkpoint(ckpt, device=device), ckpt


@dataclass
class RunInfo:
    path: Path
    checkpoint: Checkpoint | None = None
    error: str | None = None

    @property
    def name(self) -> str:
        return self.path.name


def list_runs(*roots: str | Path) -> list[RunInfo]:
    """Every run folder directly under the roots, sorted by name, read without their weights;
    unreadable runs carry their error."""
    runs = []
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            continue
        for path in sorted(root.iterdir()):
            if not (path / POINTER).exists():
                continue
            try:
                runs.append(RunInfo(path, read_checkpoint(path, with_weights=False)))
            except CheckpointError as exc:
                runs.append(RunInfo(path, error=str(exc)))
    return runs


def update_summary(run_dir: str | Path, **values: Any) -> None:
    """Add results (e.g. an evaluation) to a run's summary, keeping everything else as it was."""
    ckpt = read_checkpoint(run_dir, with_training_state=True)
    history = {"epochs": ckpt.epochs, "summary": {**ckpt.summary, **values}}
    save_checkpoint(ckpt.path, kind=ckpt.kind, model_config=ckpt.model_config,
                    train_config=ckpt.train_config, weights=ckpt.weights, history=history,
                    best_weights=ckpt.best_weights, trainer_tensors=ckpt.trainer_tensors,
                    trainer_meta=ckpt.trainer_meta)
