"""Background training jobs for a server, in a queue: each job is a `python -m vae_core
train|resume` process whose JSON-lines progress events are read by a thread.

A separate process means a crash in training (even a segfault or running out of memory)
cannot take the server down, and the job does not depend on any browser session: whoever
holds the `JobManager` sees every job and its progress.

A server's limits, read from the environment when a `JobManager` is made (a value that is not
a whole number is ignored, with a note in `JobManager.limits.problems`):

  VAE_EXPLORER_THREADS_PER_JOB   torch threads a job may use (default 1); a job that asks for
                                 more, or for torch's default, gets this many
  VAE_EXPLORER_MAX_JOBS          jobs that train at once (default: the cores this process may use
                                 divided by the threads per job, at least 1); the others wait in a
                                 first-in, first-out queue
  VAE_EXPLORER_MAX_QUEUED        jobs that may wait at once (default 64)
  VAE_EXPLORER_JOBS_PER_VISITOR  jobs one visitor (a browser session) may have running or waiting
                                 (default 2; 0: no limit). Jobs started without a visitor (scripts,
                                 benchmarks) are not counted against anyone
  VAE_EXPLORER_RUNS_QUOTA_MB     the runs folder's size, in MB, beyond which no job starts
                                 (default 2048; 0: no quota)

Restarts and crashes: the training process holds a lock on its run's `training.json` while it
trains (`store.training_mark`), and the kernel releases it however the process ends. A run saved
as "running" whose lock is free is listed as "interrupted" and can be resumed from its last
checkpoint (the end of its last complete epoch). Jobs live in the server's memory: after a
restart the job list starts empty, and training processes end at their next progress line, as
nothing reads them any more. Jobs that wait are also written to the runs folder
(`.queue-<id>.json`, beside a `.queue-<id>.lock` the manager holds locked while it lives); a
manager that starts on the folder takes over the waiting jobs of every manager whose lock is free
(a server that ended or was killed), in their order, with no owner, so a restart loses no place in
the queue. Each entry is checked as a visitor's request would be; one that is not readable or no
longer valid is dropped with a line in `JobManager.problems`.

Ownership: a run belongs to the visitor whose job created it, for as long as this server runs.
Only its owner may stop its jobs or delete it. Runs from before a restart, trained on the command
line or copied in have no owner here: anyone may resume them, and only an administrator deletes
them (on disk). Shipped models are never deleted.
"""

from __future__ import annotations

import collections
import fcntl
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from .config.base import Config, ConfigError, from_dict, to_dict, with_changes
from .config.kinds import CONFIG_CLASSES, kind_of
from .store import (CheckpointError, check_run_name, delete_run, folder_size, list_runs, read_record, shown,
                    training_pid)

FINAL_STATES = ("finished", "early-stopped", "stopped", "failed", "cancelled")
PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHIPPED = PROJECT_ROOT / "checkpoints"
MAX_STEP_POINTS = 200  # running values kept for the epoch in progress
JOB_NICENESS = 10  # training processes run below the app's CPU priority (Unix)


class JobRefused(RuntimeError):
    """A job was not started or queued: a limit, the quota or a run's state; the message says
    which and what to do."""


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Limits:
    """What one server allows; `from_env` reads the VAE_EXPLORER_* variables."""
    threads_per_job: int = 1
    max_running: int = 1
    max_queued: int = 64
    per_visitor: int = 2          # 0: no limit
    quota_bytes: int = 2048 * 2**20  # 0: no quota
    problems: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: int) -> Limits:
        environ = os.environ if environ is None else environ
        problems = []

        def read(name: str, default: int, low: int) -> int:
            text = environ.get(name, "").strip()
            if not text:
                return default
            try:
                value = int(text)
            except ValueError:
                value = low - 1
            if value < low:
                problems.append(f"{name}={text!r} is not a whole number >= {low}; using {default}")
                return default
            return value

        threads = read("VAE_EXPLORER_THREADS_PER_JOB", 1, 1)
        values = dict(threads_per_job=threads,
                      max_running=read("VAE_EXPLORER_MAX_JOBS", max(1, _cores() // threads), 1),
                      max_queued=read("VAE_EXPLORER_MAX_QUEUED", 64, 0),
                      per_visitor=read("VAE_EXPLORER_JOBS_PER_VISITOR", 2, 0),
                      quota_bytes=read("VAE_EXPLORER_RUNS_QUOTA_MB", 2048, 0) * 2**20)
        return cls(**{**values, **overrides}, problems=tuple(problems))


@dataclass
class Job:
    id: int
    label: str
    argv: list[str]
    kind: str = "vae"
    visitor: str | None = None            # the browser session that asked for it
    status: str = "queued"                # queued, starting, running, then one of FINAL_STATES
    run_dir: Path | None = None
    error: str | None = None
    queued: float = field(default_factory=time.time)
    started: float | None = None
    ended: float | None = None
    last_event: dict[str, Any] | None = None
    epochs: list[dict[str, Any]] = field(default_factory=list)   # the run's, a resumed run's earlier ones too
    steps: list[dict[str, Any]] = field(default_factory=list)    # running values of the epoch in progress
    log: collections.deque = field(default_factory=lambda: collections.deque(maxlen=40))
    deleted: bool = False                 # its run folder was deleted from the app
    spec: dict[str, Any] | None = None    # what it asks for, as the queue file keeps it
    restored: bool = False                # it waited when an earlier server on this folder ended
    process: subprocess.Popen | None = field(default=None, repr=False)
    _log_reader: threading.Thread | None = field(default=None, repr=False)
    _stop: Callable[[Job], None] | None = field(default=None, repr=False)

    @property
    def active(self) -> bool:
        return self.status not in FINAL_STATES

    @property
    def fraction_done(self) -> float:
        e = self.last_event
        if self.status in ("finished", "early-stopped"):
            return 1.0
        if not e or not e.get("epochs"):
            return 0.0
        steps = e.get("steps_per_epoch") or 1
        done = e["epoch"] if e["kind"] in ("epoch", "end") else e["epoch"] - 1 + e["step"] / steps
        return min(1.0, max(0.0, done / e["epochs"]))

    def stop(self) -> None:
        """Cancel the job if it waits; if it trains, ask it to stop after its current step (it
        saves a resumable checkpoint)."""
        if self._stop is not None:
            self._stop(self)


def config_json(model_config: Config, train_config: Config) -> str:
    """The configs as the command line's --config-json takes them, exactly."""
    return json.dumps({"kind": kind_of(train_config), "model": to_dict(model_config),
                       "training": to_dict(train_config)})


def _same(a: Path, b: Path) -> bool:
    return os.path.abspath(a) == os.path.abspath(b)


def exit_reason(code: int) -> str:
    """Why a process ended, as a person reads it: a signal by name."""
    if code >= 0:
        return f"the training process exited with code {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {-code}"
    why = {"SIGKILL": " (the system may have run out of memory, or someone killed it)",
           "SIGSEGV": " (a crash in native code)", "SIGBUS": " (a crash in native code)"}.get(name, "")
    return f"the training process was killed by {name}{why}"


class JobManager:
    """Queues, starts, watches and stops training processes; safe to share between threads."""

    def __init__(self, runs_dir: str | Path, data_root: str | Path | None = None, limits: Limits | None = None,
                 **overrides: int):
        """`limits` (default: from the environment), or single limits overridden by keyword, e.g.
        `JobManager(runs, max_running=1)`."""
        self.runs_dir = Path(runs_dir)
        self.data_root = data_root
        self.limits = limits or Limits.from_env(**overrides)
        self._jobs: dict[int, Job] = {}
        self._queue: collections.deque[Job] = collections.deque()
        self._owners: dict[str, str] = {}  # run folder (absolute) -> the visitor whose job made it
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self.problems: list[str] = []       # waiting jobs of an earlier server that were dropped
        self._queue_name = f".queue-{os.getpid()}-{time.time_ns():x}"
        self._queue_lock: int | None = None  # the fd of our .lock, held while this manager lives
        self._restore_queues()

    # --- what there is ---

    def jobs(self) -> list[Job]:
        """Every job of this server's life, newest first."""
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.id, reverse=True)

    def active_jobs(self) -> list[Job]:
        return [j for j in self.jobs() if j.active]

    def jobs_of(self, visitor: str | None) -> list[Job]:
        return [j for j in self.jobs() if j.visitor == visitor]

    def running(self) -> int:
        with self._lock:
            return sum(j.status in ("starting", "running") for j in self._jobs.values())

    def waiting(self) -> int:
        with self._lock:
            return len(self._queue)

    def queue_position(self, job: Job) -> int | None:
        """1 for the next job to start, None for a job that does not wait."""
        with self._lock:
            for i, queued in enumerate(self._queue, 1):
                if queued is job:
                    return i
        return None

    def job_for_run(self, run_dir: str | Path) -> Job | None:
        """The newest job of a run folder."""
        for job in self.jobs():
            if job.run_dir is not None and not job.deleted and _same(job.run_dir, Path(run_dir)):
                return job
        return None

    def owner_of(self, run_dir: str | Path) -> str | None:
        with self._lock:
            return self._owners.get(os.path.abspath(run_dir))

    def runs_size(self) -> int:
        return folder_size(self.runs_dir)

    def interrupted_runs(self) -> list[Path]:
        """Runs of the runs folder saved as training that no process trains and no job waits for:
        left by a restart or a killed process, resumable."""
        return [r.path for r in list_runs(self.runs_dir)
                if r.record is not None and r.record.summary.get("status") == "interrupted"
                and not ((job := self.job_for_run(r.path)) is not None and job.active)]

    # --- starting ---

    def start(self, model_config: Config, train_config: Config, name: str, visitor: str | None = None) -> Job:
        """Queue training a new run named `name` (sanitised, made unique) in the runs folder; a
        name with control characters is a `ConfigError`, a limit or a full runs folder a
        `JobRefused`."""
        cap = self.limits.threads_per_job
        if not train_config.num_threads or train_config.num_threads > cap:
            train_config = with_changes(train_config, num_threads=cap)
        # --name=NAME: a name that starts with '-' is not taken for an option.
        argv = ["train", f"--runs-dir={self.runs_dir}", f"--name={check_run_name(name)}",
                "--config-json", config_json(model_config, train_config)]
        spec = {"do": "train", "name": name, "config": json.loads(argv[-1])}
        return self._enqueue(Job(0, name, argv, kind_of(train_config), visitor, spec=spec))

    def resume(self, run_dir: str | Path, epochs: int | None = None, learning_rate: float | None = None,
               visitor: str | None = None) -> Job:
        """Queue continuing a run to `epochs` in all, with a new step size if `learning_rate` is
        given."""
        run_dir = Path(run_dir)
        job = self.job_for_run(run_dir)
        if job is not None and job.active:
            raise JobRefused(f"{shown(run_dir.name)} is already training or waiting to")
        pid = training_pid(run_dir)
        if pid is not None:
            raise JobRefused(f"{shown(run_dir.name)} is being trained by another process"
                             + (f" (pid {pid})" if pid > 0 else ""))
        try:
            record = read_record(run_dir)
        except CheckpointError as exc:
            raise JobRefused(str(exc)) from None
        # An absolute path: a folder name that starts with '-' is not taken for an option.
        argv = ["resume", os.path.abspath(run_dir)] + (["--epochs", str(epochs)] if epochs else [])
        if learning_rate is not None:
            argv += ["--learning-rate", repr(float(learning_rate))]
        threads = record.train_config.num_threads
        argv += ["--num-threads", str(min(threads or self.limits.threads_per_job, self.limits.threads_per_job))]
        # kept on disk while it waits only when the run is in the runs folder, where a restart finds it
        spec = ({"do": "resume", "run": run_dir.name, "epochs": epochs, "learning_rate": learning_rate}
                if _same(run_dir.parent, self.runs_dir) else None)
        job = Job(0, run_dir.name, argv, record.kind, visitor, run_dir=run_dir, epochs=list(record.epochs), spec=spec)
        return self._enqueue(job)

    def _quota_problem(self) -> str | None:
        quota = self.limits.quota_bytes
        if not quota:
            return None
        used = self.runs_size()
        if used < quota:
            return None
        return (f"the runs folder is full: {used / 2**20:.0f} MB used of its {quota / 2**20:.0f} MB quota. "
                "Delete a run you no longer need (your finished jobs, below), or ask the administrator "
                "(VAE_EXPLORER_RUNS_QUOTA_MB)")

    def _enqueue(self, job: Job) -> Job:
        limits = self.limits
        with self._lock:
            if job.visitor is not None and limits.per_visitor:
                mine = sum(j.active and j.visitor == job.visitor for j in self._jobs.values())
                if mine >= limits.per_visitor:
                    raise JobRefused(f"you already have {mine} job{'s' if mine > 1 else ''} training or "
                                     f"waiting, the most one visitor may have here ({limits.per_visitor}); "
                                     "wait for one to end, or stop one")
            free = self.running() < limits.max_running and not self._queue
            if not free and len(self._queue) >= limits.max_queued:
                raise JobRefused(f"the queue is full ({len(self._queue)} jobs waiting); try again later")
            problem = self._quota_problem()
            if problem:
                raise JobRefused(problem)
            job.id = next(self._ids)
            job._stop = self.stop
            self._jobs[job.id] = job
            self._queue.append(job)
            self._dispatch()  # saves the queue
        return job

    def _dispatch(self) -> None:
        """Start waiting jobs, first come first served, while a training slot is free."""
        with self._lock:
            while self._queue and self.running() < self.limits.max_running:
                job = self._queue.popleft()
                problem = self._quota_problem()
                if problem:  # the folder filled up while the job waited
                    self._end(job, "failed", problem)
                    continue
                self._spawn(job)
            self._save_queue()

    def _spawn(self, job: Job) -> None:
        argv = list(job.argv)
        if self.data_root is not None:
            argv += [f"--data-root={self.data_root}"]
        argv = [sys.executable, "-m", "vae_core", *argv, "--progress", "jsonl"]
        threads = str(self.limits.threads_per_job)
        env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads,
                   PYTHONPATH=str(PROJECT_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        job.status, job.started = "starting", time.time()
        try:
            # A new session: Ctrl-C in the server's terminal does not reach the job; it is
            # stopped through `stop`, which lets it save first.
            job.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                           bufsize=1, env=env, cwd=PROJECT_ROOT, start_new_session=True)
        except OSError as exc:
            self._end(job, "failed", f"the training process could not be started ({exc})")
            return
        if hasattr(os, "setpriority"):
            # Below the server: a visitor's page rerun does not wait behind a training step.
            try:
                os.setpriority(os.PRIO_PROCESS, job.process.pid, JOB_NICENESS)
            except OSError:
                pass  # the job has already ended, or the system refuses: it trains at normal priority
        job._log_reader = threading.Thread(target=self._read_log, args=(job,), daemon=True)
        job._log_reader.start()
        threading.Thread(target=self._read_events, args=(job,), daemon=True).start()

    # --- the queue on disk: a restart loses no waiting job ---

    def _save_queue(self) -> None:
        """Write the waiting jobs to this manager's queue file (atomically), holding its lock."""
        with self._lock:
            specs = [job.spec for job in self._queue if job.spec is not None]
            try:
                if self._queue_lock is None:
                    if not specs:
                        return
                    self.runs_dir.mkdir(parents=True, exist_ok=True)
                    fd = os.open(self.runs_dir / f"{self._queue_name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    self._queue_lock = fd
                path = self.runs_dir / f"{self._queue_name}.json"
                temporary = path.with_suffix(".json.tmp")
                temporary.write_text(json.dumps({"waiting": specs}), encoding="utf-8")
                os.replace(temporary, path)
            except OSError as exc:  # a read-only or full disk: the queue still works, in memory
                note = f"the queue could not be saved in the runs folder ({exc.strerror or exc})"
                if note not in self.problems:
                    self.problems.append(note)

    def _restore_queues(self) -> None:
        """Take over the waiting jobs of earlier managers of this runs folder that have ended."""
        try:
            locks = sorted(self.runs_dir.glob(".queue-*.lock"), key=lambda p: p.stat().st_mtime)
        except OSError:
            return
        for lock in locks:
            try:
                fd = os.open(lock, os.O_RDWR)  # no O_CREAT: another manager may just have taken it
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # its manager lives (here or in another replica)
                os.close(fd)
                continue
            try:
                queue = lock.with_suffix(".json")
                specs = self._read_queue(queue)
                for f in (queue, queue.with_suffix(".json.tmp"), lock):
                    f.unlink(missing_ok=True)
            finally:
                os.close(fd)
            for spec in specs:
                self._restore(spec)

    def _read_queue(self, path: Path) -> list:
        try:
            if path.stat().st_size > 4 * 2**20:
                raise ValueError("over 4 MB")
            waiting = json.loads(path.read_text(encoding="utf-8"))["waiting"]
            if not isinstance(waiting, list):
                raise ValueError("no list of waiting jobs")
            return waiting
        except FileNotFoundError:
            return []
        except (OSError, ValueError, KeyError, TypeError) as exc:
            self.problems.append(f"the waiting jobs in {shown(path.name)} were dropped: not readable ({exc})")
            return []

    def _restore(self, spec: Any) -> None:
        """Queue again one waiting job of an earlier server, checked as a new request is."""
        try:
            if not isinstance(spec, dict) or spec.get("do") not in ("train", "resume"):
                raise ValueError("not a training or resuming job")
            if spec["do"] == "train":
                name, config = spec.get("name"), spec.get("config")
                if not (isinstance(name, str) and isinstance(config, dict) and config.get("kind") in CONFIG_CLASSES):
                    raise ValueError("no name or no readable config")
                model_cls, train_cls = CONFIG_CLASSES[config["kind"]]
                model_config = from_dict(model_cls, config.get("model"))
                job = self.start(model_config, from_dict(train_cls, config.get("training")), name)
            else:
                run, epochs, rate = spec.get("run"), spec.get("epochs"), spec.get("learning_rate")
                if not isinstance(run, str) or run in ("", ".", "..") or "/" in run or os.sep in run:
                    raise ValueError("no run folder of this runs folder")
                if not (epochs is None or (isinstance(epochs, int) and not isinstance(epochs, bool) and epochs > 0)):
                    raise ValueError("epochs is not a whole number > 0")
                if not (rate is None or (isinstance(rate, (int, float)) and not isinstance(rate, bool) and rate > 0)):
                    raise ValueError("the learning rate is not a number > 0")
                job = self.resume(self.runs_dir / run, epochs, rate)
            job.restored = True
        except (ValueError, TypeError, ConfigError, JobRefused) as exc:
            what = spec.get("name") or spec.get("run") if isinstance(spec, dict) else None
            label = shown(what) if isinstance(what, str) else "a job"
            self.problems.append(f"{label}, waiting before the server restarted, was dropped: {exc}")

    # --- stopping and deleting ---

    def stop(self, job: Job, visitor: str | None = None) -> None:
        """Cancel a waiting job, or ask a training one to stop after its current step (it saves a
        resumable checkpoint). With `visitor`, only that visitor's jobs."""
        if visitor is not None and job.visitor != visitor:
            raise JobRefused("only the visitor who started a job can stop it")
        with self._lock:
            if job in self._queue:
                self._queue.remove(job)
                self._end(job, "cancelled", None)
                self._save_queue()
                return
        if job.process is not None and job.process.poll() is None:
            job.process.send_signal(signal.SIGINT)

    def can_delete(self, run_dir: str | Path, visitor: str | None) -> str | None:
        """Why `visitor` may not delete a run, or None when they may."""
        run_dir = Path(run_dir)
        if _same(run_dir.parent, SHIPPED) or os.path.abspath(run_dir).startswith(os.path.abspath(SHIPPED) + os.sep):
            return "shipped models cannot be deleted"
        if not _same(run_dir.parent, self.runs_dir):
            return "only runs of this server's runs folder can be deleted"
        if visitor is None or self.owner_of(run_dir) != visitor:
            return ("only the visitor who trained a run can delete it from the app (runs from before "
                    "a restart are deleted by the administrator)")
        job = self.job_for_run(run_dir)
        if job is not None and job.active:
            return "it is training or waiting to; stop it first"
        return None

    def delete(self, run_dir: str | Path, visitor: str | None) -> None:
        """Delete a run folder its visitor trained here (see `can_delete`); links and paths
        outside the runs folder are refused by `store.delete_run` as well."""
        problem = self.can_delete(run_dir, visitor)
        if problem:
            raise JobRefused(f"{shown(Path(run_dir).name)} was not deleted: {problem}")
        try:
            delete_run(self.runs_dir, run_dir)
        except (CheckpointError, OSError) as exc:
            raise JobRefused(f"{shown(Path(run_dir).name)} was not deleted: {exc}") from None
        with self._lock:
            self._owners.pop(os.path.abspath(run_dir), None)
            for job in self._jobs.values():
                if job.run_dir is not None and _same(job.run_dir, Path(run_dir)):
                    job.deleted = True

    # --- watching ---

    def _end(self, job: Job, status: str, error: str | None) -> None:
        job.status, job.error, job.ended = status, error, time.time()

    def _set_run_dir(self, job: Job, run_dir: Path) -> None:
        with self._lock:
            job.run_dir = run_dir
            if job.visitor is not None and job.argv[0] == "train":
                self._owners.setdefault(os.path.abspath(run_dir), job.visitor)

    def _read_events(self, job: Job) -> None:
        for line in job.process.stdout:
            try:
                event = json.loads(line)
                kind = event["kind"]
            except (ValueError, KeyError, TypeError):
                job.log.append(line.rstrip())
                continue
            job.last_event = event
            if event.get("run_dir") and job.run_dir is None:
                self._set_run_dir(job, Path(event["run_dir"]))
            if kind in ("start", "step"):
                job.status = "running"
            if kind == "step":
                steps = event.get("steps_per_epoch") or 1
                job.steps.append({"epoch": event["epoch"] - 1 + event["step"] / steps, **event.get("metrics", {})})
                if len(job.steps) > MAX_STEP_POINTS:
                    job.steps = job.steps[::2]
            elif kind == "epoch":
                job.epochs.append(event["metrics"])
                job.steps = []
            elif kind == "end":
                job.status = event["status"]
        code = job.process.wait()
        job._log_reader.join(timeout=5)  # the error message, if any, is on stderr
        error = None
        if code != 0 or job.status not in FINAL_STATES:
            lines = list(job.log)
            starts = [i for i, line in enumerate(lines) if line.startswith("error: ")]
            if code < 0:
                error = exit_reason(code) + self._checkpoint_note(job)
            elif starts:  # the CLI's message, which may run over several lines
                error = " ".join(lines[starts[-1]:]).removeprefix("error: ")
            else:
                error = (lines[-1] if lines else exit_reason(code)) + self._checkpoint_note(job)
        with self._lock:
            self._end(job, "failed" if error else job.status, error)
            job.steps = []
            self._dispatch()

    @staticmethod
    def _checkpoint_note(job: Job) -> str:
        if job.run_dir is None:
            return ""
        try:
            done = len(read_record(job.run_dir).epochs)
        except CheckpointError:
            return "; nothing was saved"
        return f"; its last checkpoint, after epoch {done}, is kept and can be resumed"

    def _read_log(self, job: Job) -> None:
        for line in job.process.stderr:
            line = line.rstrip()
            if line.startswith("run folder: ") and job.run_dir is None:
                self._set_run_dir(job, Path(line.removeprefix("run folder: ")))
            if line:
                job.log.append(line)

    def wait(self, job: Job, timeout: float | None = None) -> bool:
        """Block until the job ends (for tests and scripts); True if it did."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while job.active or job.ended is None:
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True
