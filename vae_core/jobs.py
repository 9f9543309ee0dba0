"""Background training jobs for a server: each job is a `python -m vae_core train|resume`
process whose JSON-lines progress events are read by a thread.

A separate process means a crash in training (even a segfault or running out of memory)
cannot take the server down, and the job does not depend on any browser session: whoever
holds the `JobManager` sees every job and its progress.
"""

from __future__ import annotations

import collections
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
from typing import Any

from .config.base import Config, to_dict
from .config.kinds import kind_of
from .store import check_run_name

FINAL_STATES = ("finished", "early-stopped", "stopped", "failed")
PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Job:
    id: int
    label: str
    argv: list[str]
    status: str = "starting"              # starting, running, then one of FINAL_STATES
    run_dir: Path | None = None
    error: str | None = None
    started: float = field(default_factory=time.time)
    ended: float | None = None
    last_event: dict[str, Any] | None = None
    epochs: list[dict[str, Any]] = field(default_factory=list)
    log: collections.deque = field(default_factory=lambda: collections.deque(maxlen=40))
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def active(self) -> bool:
        return self.status not in FINAL_STATES

    @property
    def fraction_done(self) -> float:
        e = self.last_event
        if not e or not e.get("epochs"):
            return 0.0
        if self.status in ("finished", "early-stopped"):
            return 1.0
        done_epochs = len(self.epochs)
        steps = e.get("steps_per_epoch") or 1
        within = e["step"] / steps if e["kind"] == "step" else 0.0
        return min(1.0, (done_epochs + within) / e["epochs"])

    def stop(self) -> None:
        """Ask the job to stop after its current step; it saves a resumable checkpoint."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)


def config_json(model_config: Config, train_config: Config) -> str:
    """The configs as the command line's --config-json takes them, exactly."""
    return json.dumps({"kind": kind_of(train_config), "model": to_dict(model_config),
                       "training": to_dict(train_config)})


class JobManager:
    """Starts, watches and stops training processes; safe to share between threads."""

    def __init__(self, runs_dir: str | Path, data_root: str | Path | None = None, max_active: int = 2):
        self.runs_dir = Path(runs_dir)
        self.data_root = data_root
        self.max_active = max_active
        self._jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def jobs(self) -> list[Job]:
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.id, reverse=True)

    def active_jobs(self) -> list[Job]:
        return [j for j in self.jobs() if j.active]

    def job_for_run(self, run_dir: str | Path) -> Job | None:
        run_dir = Path(run_dir).resolve()
        for job in self.jobs():
            if job.run_dir is not None and job.run_dir.resolve() == run_dir:
                return job
        return None

    def start(self, model_config: Config, train_config: Config, name: str) -> Job:
        """Train a new run named `name` (sanitised, made unique) in the runs folder; a name with
        control characters is a `ConfigError`."""
        # --name=NAME: a name that starts with '-' is not taken for an option.
        argv = ["train", f"--runs-dir={self.runs_dir}", f"--name={check_run_name(name)}",
                "--config-json", config_json(model_config, train_config)]
        return self._launch(name, argv)

    def resume(self, run_dir: str | Path, epochs: int | None = None, learning_rate: float | None = None) -> Job:
        """Continue a run to `epochs` in all, with a new step size if `learning_rate` is given."""
        running = self.job_for_run(run_dir)
        if running is not None and running.active:
            raise RuntimeError(f"{Path(run_dir).name} is already training")
        # An absolute path: a folder name that starts with '-' is not taken for an option.
        argv = ["resume", os.path.abspath(run_dir)] + (["--epochs", str(epochs)] if epochs else [])
        if learning_rate is not None:
            argv += ["--learning-rate", repr(float(learning_rate))]
        job = self._launch(Path(run_dir).name, argv)
        job.run_dir = Path(run_dir)
        return job

    def _launch(self, label: str, argv: list[str]) -> Job:
        if len(self.active_jobs()) >= self.max_active:
            raise RuntimeError(f"{self.max_active} jobs are already training on this server; "
                               "wait for one to finish or stop it")
        if self.data_root is not None:
            argv += [f"--data-root={self.data_root}"]
        argv = [sys.executable, "-m", "vae_core", *argv, "--progress", "jsonl"]
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(PROJECT_ROOT) + os.pathsep
                   + os.environ.get("PYTHONPATH", ""))
        job = Job(next(self._ids), label, argv)
        # A new session: Ctrl-C in the server's terminal does not reach the job; it is stopped
        # through `Job.stop`, which lets it save first.
        job.process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                       bufsize=1, env=env, cwd=PROJECT_ROOT, start_new_session=True)
        with self._lock:
            self._jobs[job.id] = job
        threading.Thread(target=self._read_events, args=(job,), daemon=True).start()
        threading.Thread(target=self._read_log, args=(job,), daemon=True).start()
        return job

    def _read_events(self, job: Job) -> None:
        for line in job.process.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                job.log.append(line.rstrip())
                continue
            job.last_event = event
            if event.get("run_dir"):
                job.run_dir = Path(event["run_dir"])
            if event["kind"] in ("start", "step"):
                job.status = "running"
            elif event["kind"] == "epoch":
                job.epochs.append(event["metrics"])
            elif event["kind"] == "end":
                job.status = event["status"]
        code = job.process.wait()
        job.ended = time.time()
        if code != 0 or job.status not in FINAL_STATES:
            lines = list(job.log)
            starts = [i for i, line in enumerate(lines) if line.startswith("error: ")]
            if starts:  # the CLI's message, which may run over several lines
                job.error = " ".join(lines[starts[-1]:]).removeprefix("error: ")
            else:
                job.error = lines[-1] if lines else f"the training process exited with code {code}"
            job.status = "failed"

    def _read_log(self, job: Job) -> None:
        for line in job.process.stderr:
            line = line.rstrip()
            if line.startswith("run folder: "):
                job.run_dir = Path(line.removeprefix("run folder: "))
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
