"""Restarts and crashes: a job whose process is killed mid-epoch shows as failed with the signal's
name, its last checkpoint loads and resumes losing at most the epoch in progress, and after the
server restarts (a new JobManager on the same runs folder) a run that was training is
"interrupted", with Resume, never "running"."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from vae_core.commands import train
from vae_core.config import ModelConfig, TrainConfig
from vae_core.jobs import JobManager
from vae_core.registry import load_model
from vae_core.store import TRAINING_MARK, list_runs, read_record, training_mark, training_pid

ROOT = Path(__file__).resolve().parent.parent
# Wide enough and in batches of 2 (256 steps) that an epoch takes about a second on a quiet
# CPU, with several progress lines inside it, so that a kill can land inside one.
MODEL = ModelConfig(latent_dim=2, hidden_dim=1000)
CONFIG = TrainConfig(dataset="synthetic", epochs=4, batch_size=2, num_threads=1, seed=5, device="cpu")


def wait_until(condition, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def alive(pid: int) -> bool:
    """True while the process runs (a zombie, ended but not yet reaped by its new parent, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def status_in_listing(runs: Path, run: Path) -> str:
    return next(r for r in list_runs(runs) if r.path == run).record.summary["status"]


def test_a_job_killed_mid_epoch_fails_with_its_signal_and_resumes_from_its_last_epoch(tmp_path):
    runs = tmp_path / "runs"
    manager = JobManager(runs, max_running=1)
    job = manager.start(MODEL, CONFIG, "killed", visitor="ann")
    # Mid-epoch 2: one epoch saved, the next one under way.
    wait_until(lambda: len(job.epochs) == 1 and (job.last_event or {}).get("kind") == "step"
               and 0 < job.last_event["step"] < job.last_event["steps_per_epoch"])
    completed = len(job.epochs)
    os.kill(job.process.pid, signal.SIGKILL)
    assert manager.wait(job, 30) and job.status == "failed"
    assert "killed by SIGKILL" in job.error and "out of memory" in job.error
    saved = len(read_record(job.run_dir).epochs)
    assert saved >= completed  # at most the epoch in progress is lost
    assert f"last checkpoint, after epoch {saved}, is kept and can be resumed" in job.error

    # The server restarts: a new manager on the same folder knows no job, and the run that was
    # training is interrupted, not running.
    restarted = JobManager(runs, max_running=1)
    assert restarted.jobs() == [] and restarted.interrupted_runs() == [job.run_dir]
    assert status_in_listing(runs, job.run_dir) == "interrupted"
    load_model(job.run_dir)  # the last checkpoint loads
    resumed = restarted.resume(job.run_dir, visitor="bob")
    assert restarted.wait(resumed, 120) and resumed.status == "finished", resumed.error
    assert restarted.interrupted_runs() == [] and status_in_listing(runs, job.run_dir) == "finished"

    # The same curve as a run that was never killed: resume starts from the saved epoch's state.
    reference = train(MODEL, CONFIG, tmp_path / "reference").history
    history = read_record(job.run_dir).epochs
    assert len(history) == CONFIG.epochs
    for got, want in zip(history, reference):
        assert got["val_elbo"] == pytest.approx(want["val_elbo"], rel=1e-5)
        assert got["train_elbo"] == pytest.approx(want["train_elbo"], rel=1e-5)


SERVER = textwrap.dedent("""
    import sys, time
    from vae_core.config import ModelConfig, TrainConfig
    from vae_core.jobs import JobManager
    manager = JobManager(sys.argv[1], max_running=1)
    job = manager.start(ModelConfig(latent_dim=2, hidden_dim=64),
                        TrainConfig(dataset="synthetic", epochs=10_000, batch_size=2, num_threads=1), "orphan")
    while not job.epochs:
        time.sleep(0.05)
    print(job.run_dir, job.process.pid, flush=True)
    time.sleep(600)
""")


def test_after_the_server_dies_its_jobs_end_and_their_runs_show_as_interrupted(tmp_path):
    runs = tmp_path / "runs"
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(runs)], stdout=subprocess.PIPE, text=True,
                              cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        run_text, pid = server.stdout.readline().split()
    finally:
        server.kill()  # the server dies without a word to its jobs
        server.wait()
    run = Path(run_text)
    # A server started meanwhile sees the job's process still holding the run: "running", and
    # not to be resumed twice.
    restarted = JobManager(runs)
    if training_pid(run) is not None:
        assert training_pid(run) == int(pid) and status_in_listing(runs, run) == "running"
        assert restarted.interrupted_runs() == []
    # With nobody reading its progress, the training process ends at its next progress line.
    wait_until(lambda: training_pid(run) is None and not alive(int(pid)), timeout=30)
    assert status_in_listing(runs, run) == "interrupted" and restarted.interrupted_runs() == [run]
    resumed = restarted.resume(run, epochs=len(read_record(run).epochs) + 1)
    assert restarted.wait(resumed, 120) and resumed.status == "finished", resumed.error


def test_the_training_mark_is_held_only_while_training_and_never_written_through_a_link(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    assert training_pid(run) is None
    with training_mark(run):
        assert training_pid(run) == os.getpid()
        assert json.loads((run / TRAINING_MARK).read_text())["pid"] == os.getpid()
    assert training_pid(run) is None
    # Something else in the mark's place: no process trains the run, and nothing is written
    # through it.
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    (run / TRAINING_MARK).unlink()
    os.link(outside, run / TRAINING_MARK)  # a hard link: replaced, never written through
    with training_mark(run):
        assert training_pid(run) == os.getpid()
    assert outside.read_text() == "keep"
    (run / TRAINING_MARK).unlink()
    (run / TRAINING_MARK).symlink_to(outside)
    assert training_pid(run) is None
    with pytest.raises(Exception, match="symbolic link"):
        with training_mark(run):
            pass
    (run / TRAINING_MARK).unlink()
    os.mkfifo(run / TRAINING_MARK)
    assert training_pid(run) is None  # a FIFO is not waited on
    assert outside.read_text() == "keep"


def test_a_run_saved_as_running_lists_as_interrupted_only_when_no_process_holds_it(trained_run, tmp_path):
    run = tmp_path / "runs" / "was-running"
    shutil.copytree(trained_run, run)
    history_file = next(run.glob("state-*/history.json"))
    history = json.loads(history_file.read_text())
    history["summary"]["status"] = "running"
    history_file.write_text(json.dumps(history))
    assert status_in_listing(run.parent, run) == "interrupted"
    assert read_record(run).summary["status"] == "running"  # the files are not changed
    with training_mark(run):
        assert status_in_listing(run.parent, run) == "running"
