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

Run folders come from anyone who copies one in, so every file is untrusted: files are opened
inside their run folder without following links, only regular files are read, JSON files have a
size and a nesting limit, and every field is checked before use. New files are created
exclusively (never through a planted link) and renamed into place. Errors name the run and the
file inside it, never the server's absolute path.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
import re
import secrets
import shutil
import socket
import stat
import tempfile
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, TypeVar

from .config.base import Config, ConfigError, from_dict, to_dict
from .config.kinds import CONFIG_CLASSES

T = TypeVar("T")
FORMAT = "vae-explorer-run"
VERSION = 1
POINTER = "run.json"
TRAINING_MARK = "training.json"  # held locked by the process that trains the run
WEIGHTS = "weights.safetensors"
STATE_FILES = ("config.json", "history.json", WEIGHTS, "best.safetensors", "trainer.safetensors")
_STATE_RE = re.compile(r"^state-(\d{6})$")
_MAX_NAME = 64
# Limits on every JSON file of a run (the largest shipped one is about 0.1 MB and 3 levels deep);
# read at call time, so a test can lower them.
MAX_JSON_BYTES = 10 * 2**20
MAX_JSON_DEPTH = 16
MAX_EPOCHS = 100_000  # the configs' bound on epochs

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO must not wait for a writer (it is then refused as not a regular file).
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def shown(text: str) -> str:
    """A name as it is safe to print: control and invisible characters escaped."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def where(path: Path, run: Path | None) -> str:
    """A file as messages name it: the run's name and the path inside the run folder."""
    if run is None:
        return shown(path.name)
    try:
        inside = path.relative_to(run)
    except ValueError:
        return shown(path.name)
    return shown(run.name if inside == Path(".") else f"{run.name}/{inside.as_posix()}")


class CheckpointError(RuntimeError):
    """A run is missing, corrupt, truncated, unsafe or does not match its config. The message
    names the run and the file inside it (`path` keeps the full path for programs)."""

    def __init__(self, path: Path | str, problem: str, run: Path | str | None = None):
        self.path = Path(path)
        self.run = Path(run) if run is not None else None
        self.problem = problem
        super().__init__(f"{where(self.path, self.run)}: {problem}")


@dataclass
class RunRecord:
    """A run's configs and history, as its current state folder holds them."""
    path: Path                       # the run folder
    kind: str
    model_config: Config
    train_config: Config
    history: dict                    # {"epochs": [...], "summary": {...}}, checked by `check_history`

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

def check_run_name(name: str) -> str:
    """A run name as typed, refused with a `ConfigError` if it holds control or invisible
    characters (a NUL byte cannot even be passed to a training process)."""
    bad = [ch for ch in name if unicodedata.category(ch) in ("Cc", "Cf", "Cs")]
    if bad:
        raise ConfigError(f"run name: control or invisible characters are not allowed (found "
                          f"{', '.join(sorted({f'U+{ord(ch):04X}' for ch in bad}))})")
    return name


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
    raise RuntimeError(f"no free run name for {base!r} in {root.name}")


# --- opening files inside a run folder -------------------------------------------------------

def _os_problem(exc: OSError, path: Path) -> str:
    try:
        if stat.S_ISLNK(os.lstat(path).st_mode):
            return "is a symbolic link; run folders may not hold links"
    except OSError:
        pass
    if exc.errno == errno.ENOENT:
        return "is missing"
    if exc.errno == errno.ENOTDIR:
        return "is not a folder"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "cannot be read (permission denied)"
    return f"cannot be read ({exc.strerror or type(exc).__name__})"


def open_in_run(run_dir: Path, *parts: str) -> BinaryIO:
    """A regular file inside a run folder, opened for reading without following any link: the
    run folder, each folder on the way and the file itself must be what they seem. Anything
    else (a link, a FIFO, a device, a folder) is refused with a `CheckpointError`."""
    path = run_dir.joinpath(*parts)
    try:
        fd = os.open(run_dir, _DIR_FLAGS)
    except OSError as exc:
        raise CheckpointError(run_dir, "no such run folder" if exc.errno == errno.ENOENT
                              else _os_problem(exc, run_dir), run_dir) from None
    try:
        for i, part in enumerate(parts):
            flags = _FILE_FLAGS if i == len(parts) - 1 else _DIR_FLAGS
            try:
                inner = os.open(part, flags, dir_fd=fd)
            except OSError as exc:
                raise CheckpointError(run_dir.joinpath(*parts[:i + 1]),
                                      _os_problem(exc, run_dir.joinpath(*parts[:i + 1])), run_dir) from None
            os.close(fd)
            fd = inner
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise CheckpointError(path, "is not a regular file (a folder, FIFO or device); refused", run_dir)
        os.set_blocking(fd, True)
        file = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    return file


def _kind_of(value: Any) -> str:
    text = json.dumps(value, allow_nan=True)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_json(data: bytes, path: Path, run: Path | None) -> Any:
    """JSON from untrusted bytes: UTF-8, valid, and nested at most MAX_JSON_DEPTH deep."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise CheckpointError(path, "not UTF-8 text: the file is corrupt", run) from None
    try:
        value = json.loads(text)
    except RecursionError:
        value = None
        depth = math.inf
    except ValueError as exc:
        raise CheckpointError(path, f"not valid JSON ({exc}); the file is corrupt or truncated", run) from None
    else:
        depth = _depth(value)
    if depth > MAX_JSON_DEPTH:
        raise CheckpointError(path, f"JSON nested more than {MAX_JSON_DEPTH} levels deep; refused", run)
    return value


def _depth(value: Any) -> int:
    """How deep objects and arrays nest in a JSON value, counted without recursion."""
    deepest, stack = 0, [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack and deepest <= MAX_JSON_DEPTH:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        children = item.values() if isinstance(item, dict) else item
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return deepest


def read_json(run_dir: Path, *parts: str) -> Any:
    """A JSON file inside a run folder, within the size and nesting limits."""
    path = run_dir.joinpath(*parts)
    limit = MAX_JSON_BYTES
    with open_in_run(run_dir, *parts) as f:
        size = os.fstat(f.fileno()).st_size
        data = f.read(limit + 1) if size <= limit else b""
    if size > limit or len(data) > limit:
        raise CheckpointError(path, f"is {max(size, len(data)) / 2**20:.1f} MB, over the "
                                    f"{limit / 2**20:g} MB limit for a run's JSON files; refused", run_dir)
    return parse_json(data, path, run_dir)


# --- checking what was read ------------------------------------------------------------------

def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_history(data: Any, path: Path, run: Path | None) -> dict:
    """history.json: {"epochs": [{name: number}, ...], "summary": {name: number, a list of
    numbers, or the status text}}. Anything else is refused, naming the field."""
    def fail(field: str, problem: str):
        raise CheckpointError(path, f"{field}: {problem}", run)

    if not isinstance(data, dict):
        fail("history", f"expected a JSON object, got {_kind_of(data)}")
    epochs = data.get("epochs")
    if not isinstance(epochs, list):
        fail("epochs", f"expected a list of per-epoch records, got {_kind_of(epochs)}")
    if len(epochs) > MAX_EPOCHS:
        fail("epochs", f"{len(epochs)} records, more than the {MAX_EPOCHS} epochs a run can have")
    for i, row in enumerate(epochs):
        if not isinstance(row, dict):
            fail(f"epochs[{i}]", f"expected an object of numbers, got {_kind_of(row)}")
        for key, value in row.items():
            if not is_number(value):
                fail(f"epochs[{i}].{key}", f"expected a number, got {_kind_of(value)}")
    summary = data.get("summary", {})
    if not isinstance(summary, dict):
        fail("summary", f"expected a JSON object, got {_kind_of(summary)}")
    for key, value in summary.items():
        if key == "status":
            if not isinstance(value, str) or len(value) > 40:
                fail("summary.status", f"expected a short text, got {_kind_of(value)}")
        elif isinstance(value, list):
            if not all(is_number(v) for v in value):
                fail(f"summary.{key}", "expected a list of numbers")
        elif not is_number(value):
            fail(f"summary.{key}", f"expected a number, got {_kind_of(value)}")
    return {"epochs": epochs, "summary": summary}


# --- writing ---------------------------------------------------------------------------------

def write_new_file(path: Path, data: bytes) -> None:
    """Create `path`, which must not exist (so never through a planted link), write `data` and
    flush it to disk."""
    with os.fdopen(os.open(path, _NEW_FILE_FLAGS, 0o644), "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def json_bytes(data: Any) -> bytes:
    return json.dumps(data, indent=1, allow_nan=True).encode("utf-8")


def writable_run_dir(run_dir: Path) -> Path:
    """The run folder to save into, made if new; a link or a file in its place is refused."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        mode = os.lstat(run_dir).st_mode
    except OSError as exc:
        raise CheckpointError(run_dir, f"cannot be written ({exc.strerror or type(exc).__name__})",
                              run_dir) from None
    if not stat.S_ISDIR(mode):
        raise CheckpointError(run_dir, "is a symbolic link; a save would write elsewhere, so it is refused"
                              if stat.S_ISLNK(mode) else "is not a folder", run_dir)
    return run_dir


def new_state_folder(run_dir: Path, record: RunRecord) -> Path:
    """A new state folder numbered after every existing one, holding the record's JSON files;
    the caller adds the tensor files and then calls `switch_to`."""
    writable_run_dir(run_dir)
    numbers = {int(m.group(1)) for p in run_dir.iterdir() if (m := _STATE_RE.match(p.name))}
    number = max(numbers, default=0) + 1
    if number > 999_999:  # only after a folder of that number was planted: take a free one
        number = min(set(range(1, len(numbers) + 2)) - numbers)
    state = run_dir / f"state-{number:06d}"
    state.mkdir()  # fails if anything, a link included, has the name meanwhile
    write_new_file(state / "config.json", json_bytes({"kind": record.kind, "model": to_dict(record.model_config),
                                                      "training": to_dict(record.train_config)}))
    write_new_file(state / "history.json", json_bytes(record.history))
    return state


def switch_to(run_dir: Path, state: Path) -> None:
    """Point `run.json` at a complete state folder, then remove every other state folder (the
    old one, and any left by a killed save). The new pointer is written to a temporary file
    created exclusively under an unpredictable name, then renamed over the old one."""
    fd, tmp = tempfile.mkstemp(prefix=f".{POINTER}.", suffix=".tmp", dir=run_dir)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(json_bytes({"format": FORMAT, "version": VERSION, "state": state.name}))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, run_dir / POINTER)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    for entry in os.scandir(run_dir):
        if _STATE_RE.match(entry.name) and entry.name != state.name:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:  # a link or a file planted under a state's name: removed, never followed
                Path(entry.path).unlink(missing_ok=True)


# --- reading ---------------------------------------------------------------------------------

def _check_pointer(pointer: Any, path: Path, run_dir: Path) -> str:
    if not isinstance(pointer, dict) or pointer.get("format") != FORMAT:
        raise CheckpointError(path, f"not a {FORMAT} pointer file", run_dir)
    version = pointer.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version != VERSION:
        raise CheckpointError(path, f"format version {_kind_of(version)} is not supported (this version "
                                    f"reads {VERSION})", run_dir)
    state = pointer.get("state")
    if not isinstance(state, str) or not _STATE_RE.match(state):
        raise CheckpointError(path, f"bad state folder name {_kind_of(state)}", run_dir)
    return state


def current_state_name(run_dir: Path) -> str | None:
    """The state folder `run.json` names now, or None if it cannot be read."""
    try:
        return _check_pointer(read_json(run_dir, POINTER), run_dir / POINTER, run_dir)
    except CheckpointError:
        return None


def state_folder(run_dir: str | Path) -> Path:
    """The run's current state folder, as `run.json` names it: a real folder inside the run."""
    run_dir = Path(run_dir)
    state = _check_pointer(read_json(run_dir, POINTER), run_dir / POINTER, run_dir)
    folder = run_dir / state
    try:
        mode = os.lstat(folder).st_mode
    except OSError:
        raise CheckpointError(folder, "state folder named by run.json is missing", run_dir) from None
    if stat.S_ISLNK(mode):
        raise CheckpointError(folder, "is a symbolic link; run folders may not hold links", run_dir)
    if not stat.S_ISDIR(mode):
        raise CheckpointError(folder, "is not a folder", run_dir)
    return folder


def read_state_record(run_dir: Path, folder: Path) -> RunRecord:
    """The configs and history of one state folder, validated."""
    config_path = folder / "config.json"
    config = read_json(run_dir, folder.name, "config.json")
    if not isinstance(config, dict) or not {"kind", "model", "training"} <= set(config):
        raise CheckpointError(config_path, "needs the keys kind, model and training", run_dir)
    kind = config["kind"]
    if not isinstance(kind, str) or kind not in CONFIG_CLASSES:
        raise CheckpointError(config_path, f"unknown model kind {_kind_of(kind)}", run_dir)
    model_cls, train_cls = CONFIG_CLASSES[kind]
    try:
        model_config = from_dict(model_cls, config["model"])
        train_config = from_dict(train_cls, config["training"])
    except ConfigError as exc:
        raise CheckpointError(config_path, f"invalid config: {exc}", run_dir) from None
    history = check_history(read_json(run_dir, folder.name, "history.json"), folder / "history.json", run_dir)
    with open_in_run(run_dir, folder.name, WEIGHTS):
        pass  # there, and a regular file; `checkpoints` reads it
    return RunRecord(run_dir, kind, model_config, train_config, history)


def read_current_state(run_dir: str | Path, read: Callable[[Path, Path], T]) -> T:
    """`read(run_dir, folder)` of the run's current state folder; read again from the new one if
    a training process saved a newer state and removed this one meanwhile."""
    run_dir = Path(run_dir)
    for _ in range(3):
        folder = state_folder(run_dir)
        try:
            return read(run_dir, folder)
        except CheckpointError:
            if current_state_name(run_dir) == folder.name:
                raise
    return read(run_dir, state_folder(run_dir))


def read_record(run_dir: str | Path) -> RunRecord:
    """A run's configs and history (no tensors), from its current state folder."""
    return read_current_state(run_dir, read_state_record)


@dataclass
class RunInfo:
    """A run folder found by `list_runs`: its record, or why it cannot be read."""
    path: Path
    record: RunRecord | None = None
    error: str | None = None

    @property
    def name(self) -> str:
        return self.path.name


def _entries(root: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(root) as it:
            return sorted(it, key=lambda e: e.name)
    except OSError:
        return []


def list_runs(*roots: str | Path) -> list[RunInfo]:
    """Every run folder directly under the roots, sorted by name. Each is read on its own: an
    unreadable one carries its error and never hides another. A run saved as "running" that no
    process trains any more is listed as "interrupted". Names that start with '.' are never runs
    (a run being deleted is renamed to one first)."""
    runs = []
    for root in roots:
        for entry in _entries(Path(root)):
            path = Path(entry.path)
            if entry.name.startswith(".") or not os.path.lexists(path / POINTER):
                continue
            try:
                runs.append(RunInfo(path, with_live_status(read_record(path))))
            except CheckpointError as exc:
                runs.append(RunInfo(path, error=str(exc)))
            except Exception as exc:  # noqa: BLE001 - whatever else a hostile folder causes stays with it
                runs.append(RunInfo(path, error=f"{shown(path.name)}: cannot be read ({type(exc).__name__})"))
    return runs


def saved_at(run_dir: str | Path) -> float:
    """When a run was last saved (its pointer's modification time; 0 if it cannot be seen)."""
    try:
        return os.lstat(Path(run_dir) / POINTER).st_mtime
    except OSError:
        return 0.0


def _stat_key(path: Path) -> tuple:
    try:
        st = os.lstat(path)
    except OSError:
        return (path.name,)
    return (path.name, st.st_mode, st.st_ino, st.st_size, st.st_mtime_ns)


def run_fingerprint(run_dir: Path) -> tuple:
    """What changes whenever a run folder changes: the size, time and inode of its pointer, of
    its state folders and of their files (a few `lstat` calls, no reading)."""
    key = [_stat_key(run_dir), _stat_key(run_dir / POINTER)]
    if os.path.lexists(run_dir / TRAINING_MARK):  # a training process that dies changes no file
        key.append(("training", training_pid(run_dir) is not None))
    for entry in _entries(run_dir):
        if _STATE_RE.match(entry.name):
            key.append(_stat_key(Path(entry.path)))
            key.extend(_stat_key(Path(entry.path) / name) for name in STATE_FILES)
    return tuple(key)


def runs_fingerprint(*roots: str | Path) -> tuple:
    """`run_fingerprint` of every run folder under the roots: a listing is current while this
    is unchanged."""
    return tuple((str(root), tuple(run_fingerprint(Path(e.path)) for e in _entries(Path(root))))
                 for root in roots)


# --- which process trains a run ----------------------------------------------------------------
#
# The process that trains a run holds an exclusive `flock` on the run's `training.json` (which
# names its pid and host) while it trains; the kernel drops the lock when the process ends,
# however it ends (SIGKILL and running out of memory included). So a run whose lock is free
# is trained by no one, whatever its files say: no heartbeat to go stale, no pid to be reused.

MARK_WAIT_SECONDS = 2.0  # readers take the lock for microseconds; a trainer waits this long at most


def _open_mark(run_dir: Path, flags: int) -> int:
    """A descriptor of the run's training.json, opened without following links; a regular file
    (one with other hard links is replaced when it is opened for writing)."""
    dir_fd = os.open(run_dir, _DIR_FLAGS)
    try:
        flags |= os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        fd = os.open(TRAINING_MARK, flags, 0o644, dir_fd=dir_fd)
        st = os.fstat(fd)
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1 and flags & os.O_RDWR:
            os.close(fd)  # a hard link to a file elsewhere: never written through
            os.unlink(TRAINING_MARK, dir_fd=dir_fd)
            fd = os.open(TRAINING_MARK, flags | os.O_EXCL, 0o644, dir_fd=dir_fd)
    finally:
        os.close(dir_fd)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file")
    return fd


@contextlib.contextmanager
def training_mark(run_dir: str | Path) -> Iterator[None]:
    """Mark this process as the one training `run_dir` while the block runs (the command line's
    train and resume run in one). A run another live process trains is refused with a
    `CheckpointError`, so two processes never train one run at once."""
    run_dir = Path(run_dir)
    try:
        fd = _open_mark(run_dir, os.O_RDWR | os.O_CREAT)
    except OSError as exc:
        try:
            os.close(os.open(run_dir, _DIR_FLAGS))
        except OSError as outer:  # the run folder itself is missing or a link
            raise CheckpointError(run_dir, "no such run folder" if outer.errno == errno.ENOENT
                                  else _os_problem(outer, run_dir), run_dir) from None
        raise CheckpointError(run_dir / TRAINING_MARK, _os_problem(exc, run_dir / TRAINING_MARK), run_dir) from None
    try:
        deadline = time.monotonic() + MARK_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pid = training_pid(run_dir)
                    raise CheckpointError(run_dir, "is being trained by another process"
                                          + (f" (pid {pid})" if pid and pid > 0 else "") + "; stop it first",
                                          run_dir) from None
                time.sleep(0.05)
        os.set_blocking(fd, True)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json_bytes({"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}), 0)
        os.fsync(fd)
        yield
    finally:
        os.close(fd)  # releases the lock; a killed process's lock is released by the kernel


def training_pid(run_dir: str | Path) -> int | None:
    """The pid of the live process that trains `run_dir` (-1 if it cannot be read, e.g. on
    another host), or None when no process does."""
    run_dir = Path(run_dir)
    try:
        fd = _open_mark(run_dir, os.O_RDONLY)
    except OSError:
        return None  # no mark, or a link, FIFO or folder in its place: no trainer holds it
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                mark = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
                pid = mark.get("pid") if isinstance(mark, dict) else None
                same_host = mark.get("host") == socket.gethostname()
            except (OSError, ValueError, AttributeError):
                pid, same_host = None, False
            return pid if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 and same_host else -1
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def with_live_status(record: RunRecord) -> RunRecord:
    """The record, with the status "interrupted" if it was saved as "running" but no process
    trains it now (the server restarted, or its process was killed): it can be resumed."""
    if record.summary.get("status") != "running" or training_pid(record.path) is not None:
        return record
    history = {"epochs": record.epochs, "summary": {**record.summary, "status": "interrupted"}}
    return RunRecord(record.path, record.kind, record.model_config, record.train_config, history)


# --- the size of a runs folder, and deleting a run ---------------------------------------------

def folder_size(root: str | Path) -> int:
    """The bytes of the regular files under `root`, links not followed, unreadable parts skipped."""
    total, stack = 0, [Path(root)]
    while stack:
        for entry in _entries(stack.pop()):
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(Path(entry.path))
                elif entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
            except OSError:
                continue
    return total


def delete_run(root: str | Path, run_dir: str | Path) -> None:
    """Delete the run folder `run_dir`, which must be a real folder directly inside `root` (never a
    link, never a path elsewhere) and trained by no process. It is first renamed to a hidden name,
    so it leaves every listing at once, then removed without following any link inside it."""
    root, run_dir = Path(root), Path(run_dir)
    name = run_dir.name
    try:
        inside = os.path.samefile(run_dir.parent, root) and name not in ("", ".", "..") and "/" not in name
    except OSError:
        inside = False
    if not inside:
        raise CheckpointError(run_dir, "is not a run folder of this runs folder; only those can be deleted")
    path = root / name
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        raise CheckpointError(path, "no such run folder", path) from None
    if stat.S_ISLNK(mode) or not stat.S_ISDIR(mode):
        raise CheckpointError(path, "is a symbolic link, not a run folder; it is not deleted"
                              if stat.S_ISLNK(mode) else "is not a folder; it is not deleted", path)
    pid = training_pid(path)
    if pid is not None:
        raise CheckpointError(path, "is being trained" + (f" (pid {pid})" if pid > 0 else "")
                              + "; stop it before deleting it", path)
    hidden = root / f".deleting-{secrets.token_hex(6)}"
    os.rename(path, hidden)  # if a link took the folder's place meanwhile, the link is what moves
    if os.path.islink(hidden):
        os.unlink(hidden)    # the link only, never what it points to
    else:
        shutil.rmtree(hidden)  # removes the links inside without following them
