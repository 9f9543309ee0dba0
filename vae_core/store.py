"""Run folders on disk: names, the `run.json` pointer, configs and histories as JSON.

A run folder (docs/RUN_FORMAT.md has the whole format):

    run-name/
      run.json                 {"format": "vae-explorer-run", "version": 1, "state": "state-000007"}
      state-000007/
        config.json            kind, model and training configs
        history.json           per-epoch metrics and a summary (status, best epoch, test metrics)
        weights.safetensors    ... and the other tensor files of `checkpoints`

This module reads and writes everything but the tensors, so listing runs needs neither torch nor
the model classes. A save writes a complete new state folder and then atomically replaces the
small `run.json` pointer, so a process killed at any moment leaves the previous state readable.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config.base import Config, ConfigError, from_dict, to_dict
from .config.kinds import CONFIG_CLASSES

FORMAT = "vae-explorer-run"
VERSION = 1
POINTER = "run.json"
WEIGHTS = "weights.safetensors"
_STATE_RE = re.compile(r"^state-(\d{6})$")
_MAX_NAME = 64


class CheckpointError(RuntimeError):
    """A run is missing, corrupt, truncated or does not match its config; names the file."""

    def __init__(self, path: Path | str, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


@dataclass
class RunRecord:
    """A run's configs and history, as its current state folder holds them."""
    path: Path                       # the run folder
    kind: str
    model_config: Config
    train_config: Config
    history: dict                    # {"epochs": [...], "summary": {...}}

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

def write_json(path: Path, data: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, allow_nan=True)
        f.flush()
        os.fsync(f.fileno())


def new_state_folder(run_dir: Path, record: RunRecord) -> Path:
    """A new state folder numbered after every existing one, holding the record's JSON files;
    the caller adds the tensor files and then calls `switch_to`."""
    run_dir.mkdir(parents=True, exist_ok=True)
    numbers = [int(m.group(1)) for p in run_dir.iterdir() if (m := _STATE_RE.match(p.name))]
    state = run_dir / f"state-{max(numbers, default=0) + 1:06d}"
    state.mkdir()
    write_json(state / "config.json", {"kind": record.kind, "model": to_dict(record.model_config),
                                       "training": to_dict(record.train_config)})
    write_json(state / "history.json", record.history)
    return state


def switch_to(run_dir: Path, state: Path) -> None:
    """Point `run.json` at a complete state folder, then remove every other state folder (the
    old one, and any left by a killed save)."""
    tmp = run_dir / f".{POINTER}.tmp-{os.getpid()}"
    write_json(tmp, {"format": FORMAT, "version": VERSION, "state": state.name})
    os.replace(tmp, run_dir / POINTER)
    for p in run_dir.iterdir():
        if _STATE_RE.match(p.name) and p.name != state.name:
            shutil.rmtree(p, ignore_errors=True)


# --- reading ---------------------------------------------------------------------------------

def read_json(path: Path) -> Any:
    if not path.is_file():
        raise CheckpointError(path, "file is missing")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise CheckpointError(path, "not UTF-8 text: the file is corrupt") from None
    except ValueError as exc:
        raise CheckpointError(path, f"not valid JSON ({exc}); the file is corrupt or truncated") from None


def current_state_name(run_dir: Path) -> str | None:
    """The state folder `run.json` names now, or None if it cannot be read."""
    try:
        pointer = json.loads((run_dir / POINTER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    state = pointer.get("state") if isinstance(pointer, dict) else None
    return state if isinstance(state, str) and _STATE_RE.match(state) else None


def state_folder(run_dir: str | Path) -> Path:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(run_dir, "no such run folder")
    pointer = read_json(run_dir / POINTER)
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


def read_state_record(run_dir: Path, folder: Path) -> RunRecord:
    """The configs and history of one state folder, validated."""
    config = read_json(folder / "config.json")
    if not isinstance(config, dict) or not {"kind", "model", "training"} <= set(config):
        raise CheckpointError(folder / "config.json", "needs the keys kind, model and training")
    try:
        model_cls, train_cls = CONFIG_CLASSES[config["kind"]]
    except (KeyError, TypeError):
        raise CheckpointError(folder / "config.json", f"unknown model kind {config['kind']!r}") from None
    try:
        model_config = from_dict(model_cls, config["model"])
        train_config = from_dict(train_cls, config["training"])
    except ConfigError as exc:
        raise CheckpointError(folder / "config.json", f"invalid config: {exc}") from None
    history = read_json(folder / "history.json")
    if not isinstance(history, dict) or not isinstance(history.get("epochs"), list):
        raise CheckpointError(folder / "history.json", "needs an 'epochs' list")
    if not (folder / WEIGHTS).is_file():
        raise CheckpointError(folder / WEIGHTS, "file is missing")
    return RunRecord(run_dir, config["kind"], model_config, train_config, history)


def read_record(run_dir: str | Path) -> RunRecord:
    """A run's configs and history (no tensors), from its current state folder."""
    run_dir = Path(run_dir)
    for _ in range(3):
        folder = state_folder(run_dir)
        try:
            return read_state_record(run_dir, folder)
        except CheckpointError:
            # A training process may have saved a newer state and removed this one meanwhile.
            if current_state_name(run_dir) == folder.name:
                raise
    return read_state_record(run_dir, state_folder(run_dir))


@dataclass
class RunInfo:
    """A run folder found by `list_runs`: its record, or why it cannot be read."""
    path: Path
    record: RunRecord | None = None
    error: str | None = None

    @property
    def name(self) -> str:
        return self.path.name


def list_runs(*roots: str | Path) -> list[RunInfo]:
    """Every run folder directly under the roots, sorted by name; unreadable runs carry their
    error."""
    runs = []
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            continue
        for path in sorted(root.iterdir()):
            if not (path / POINTER).exists():
                continue
            try:
                runs.append(RunInfo(path, read_record(path)))
            except CheckpointError as exc:
                runs.append(RunInfo(path, error=str(exc)))
    return runs
