"""The server's job queue: at most N jobs train at once and the rest wait first come first served,
per-visitor and queue limits, the runs folder's quota, Cancel, and deleting one's own run."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from vae_core.config import ModelConfig, TrainConfig
from vae_core.jobs import JOB_NICENESS, JobManager, JobRefused, Limits
from vae_core.store import list_runs, read_record

ROOT = Path(__file__).resolve().parent.parent
TINY = ModelConfig(latent_dim=2, hidden_dim=8)


def quick(epochs: int = 1, **changes) -> TrainConfig:
    return TrainConfig(**{"dataset": "synthetic", "epochs": epochs, "num_threads": 1, **changes})


def wait_until(condition, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_limits_come_from_the_environment_and_bad_values_fall_back_with_a_note():
    cores = len(os.sched_getaffinity(0))
    default = Limits.from_env({})
    assert (default.threads_per_job, default.max_running, default.per_visitor) == (1, cores, 2)
    assert default.quota_bytes == 2048 * 2**20 and default.problems == ()
    two = Limits.from_env({"VAE_EXPLORER_THREADS_PER_JOB": "2"})
    assert two.max_running == max(1, cores // 2)
    env = {"VAE_EXPLORER_MAX_JOBS": "5", "VAE_EXPLORER_JOBS_PER_VISITOR": "0", "VAE_EXPLORER_RUNS_QUOTA_MB": "10",
           "VAE_EXPLORER_MAX_QUEUED": "3"}
    set_ = Limits.from_env(env)
    assert (set_.max_running, set_.per_visitor, set_.quota_bytes, set_.max_queued) == (5, 0, 10 * 2**20, 3)
    bad = Limits.from_env({"VAE_EXPLORER_MAX_JOBS": "0", "VAE_EXPLORER_THREADS_PER_JOB": "lots"})
    assert bad.max_running == cores and bad.threads_per_job == 1
    assert any("VAE_EXPLORER_MAX_JOBS='0'" in p for p in bad.problems)
    assert any("VAE_EXPLORER_THREADS_PER_JOB='lots'" in p for p in bad.problems)


def test_jobs_wait_their_turn_in_order_and_no_more_than_n_train_at_once(tmp_path):
    manager = JobManager(tmp_path, max_running=1, per_visitor=2)
    seen_running = []
    done = threading.Event()

    def watch():  # the most jobs that were ever training at the same moment
        while not done.is_set():
            seen_running.append(sum(j.status in ("starting", "running") for j in manager.jobs()))
            time.sleep(0.02)
    threading.Thread(target=watch, daemon=True).start()

    long = manager.start(TINY, quick(10_000), "long", visitor="ann")
    first = manager.start(TINY, quick(), "first", visitor="ann")
    second = manager.start(TINY, quick(), "second", visitor="bob")
    third = manager.start(TINY, quick(), "third", visitor="cy")
    assert [manager.queue_position(j) for j in (long, first, second, third)] == [None, 1, 2, 3]
    assert first.status == second.status == "queued" and manager.waiting() == 3
    with pytest.raises(JobRefused, match=r"you already have 2 jobs training or waiting.*\(2\)"):
        manager.start(TINY, quick(), "one too many", visitor="ann")
    with pytest.raises(JobRefused, match="only the visitor who started a job can stop it"):
        manager.stop(second, visitor="ann")
    manager.stop(first, visitor="ann")  # Cancel: it leaves the queue, the others move up
    assert first.status == "cancelled" and first.process is None
    assert [manager.queue_position(j) for j in (second, third)] == [1, 2]
    wait_until(lambda: long.status == "running" and len(long.epochs) >= 1)
    assert second.process is None and third.process is None  # still waiting behind the long job
    long.stop()
    for job in (long, second, third):
        assert manager.wait(job, 120), job
    done.set()
    assert long.status == "stopped" and second.status == third.status == "finished", (second.error, third.error)
    assert max(seen_running) == 1
    assert long.ended <= second.started <= second.ended <= third.started  # first come, first served
    assert read_record(third.run_dir).train_config.epochs == 1


def test_a_job_gets_at_most_the_threads_per_job(tmp_path):
    manager = JobManager(tmp_path, threads_per_job=1, max_running=2)
    job = manager.start(TINY, quick(num_threads=0), "all-threads")  # 0: torch's default, all cores
    # The job trains below the app's priority (torch's import alone outlasts this check).
    assert job.process.poll() is None
    assert os.getpriority(os.PRIO_PROCESS, job.process.pid) >= max(JOB_NICENESS, os.getpriority(os.PRIO_PROCESS, 0))
    assert manager.wait(job, 90) and job.status == "finished", job.error
    assert read_record(job.run_dir).train_config.num_threads == 1
    resumed = manager.resume(job.run_dir, epochs=2)
    assert resumed.argv[-2:] == ["--num-threads", "1"]
    assert manager.wait(resumed, 90) and resumed.status == "finished"
    assert len(resumed.epochs) == 2  # the card counts the run's epochs, not only the new one's


def test_a_full_queue_and_a_full_runs_folder_are_refused_with_a_message(tmp_path):
    manager = JobManager(tmp_path, max_running=1, max_queued=1, quota_bytes=2**20)
    long = manager.start(TINY, quick(10_000), "long")
    waiting = manager.start(TINY, quick(), "waiting")
    with pytest.raises(JobRefused, match=r"the queue is full \(1 jobs waiting\)"):
        manager.start(TINY, quick(), "no room")
    wait_until(lambda: len(long.epochs) >= 1)
    (tmp_path / "big.bin").write_bytes(b"\0" * (2**20 + 1))  # the folder fills while `waiting` waits
    long.stop()
    assert manager.wait(waiting, 60) and waiting.status == "failed" and waiting.process is None
    assert "the runs folder is full: 1 MB used of its 1 MB quota" in waiting.error
    with pytest.raises(JobRefused, match="the runs folder is full.*Delete a run you no longer need"):
        manager.start(TINY, quick(), "refused")
    assert [j.label for j in manager.jobs()] == ["waiting", "long"]


def test_a_visitor_deletes_only_their_own_runs_and_never_a_shipped_one_or_a_link(tmp_path):
    runs = tmp_path / "runs"
    manager = JobManager(runs, max_running=2)
    mine = manager.start(TINY, quick(), "mine", visitor="ann")
    theirs = manager.start(TINY, quick(), "theirs", visitor="bob")
    for job in (mine, theirs):
        assert manager.wait(job, 90) and job.status == "finished", job.error
    assert manager.owner_of(mine.run_dir) == "ann"
    assert "only the visitor who trained a run" in manager.can_delete(theirs.run_dir, "ann")
    with pytest.raises(JobRefused, match="theirs was not deleted: only the visitor who trained"):
        manager.delete(theirs.run_dir, "ann")
    shipped = ROOT / "checkpoints" / "mnist-mlp-z2"
    with pytest.raises(JobRefused, match="shipped models cannot be deleted"):
        manager.delete(shipped, "ann")
    assert (shipped / "run.json").exists()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    link = runs / "link"
    link.symlink_to(outside, target_is_directory=True)
    with pytest.raises(JobRefused, match="not deleted: only the visitor who trained"):
        manager.delete(link, "ann")  # nobody owns a link
    manager._owners[os.path.abspath(link)] = "ann"  # even were it owned, the store refuses it
    with pytest.raises(JobRefused, match="is a symbolic link, not a run folder"):
        manager.delete(link, "ann")
    assert (outside / "keep.txt").read_text() == "keep"
    with pytest.raises(JobRefused, match="only runs of this server's runs folder"):
        manager.delete(outside, "ann")

    manager.delete(mine.run_dir, "ann")
    assert not mine.run_dir.exists() and mine.deleted and manager.job_for_run(mine.run_dir) is None
    assert [r.name for r in list_runs(runs)] == ["theirs"]
    assert sorted(p.name for p in runs.iterdir()) == ["link", "theirs"]
    with pytest.raises(JobRefused, match="only the visitor who trained"):
        manager.delete(mine.run_dir, "ann")  # gone, and so is its owner


def test_a_run_in_training_cannot_be_deleted_or_resumed_twice(tmp_path):
    manager = JobManager(tmp_path, max_running=2)
    job = manager.start(TINY, quick(10_000), "busy", visitor="ann")
    wait_until(lambda: len(job.epochs) >= 1)
    assert "stop it first" in manager.can_delete(job.run_dir, "ann")
    with pytest.raises(JobRefused, match="busy is already training"):
        manager.resume(job.run_dir, epochs=20_000)
    other = JobManager(tmp_path)  # a second server on the same folder sees the process's lock
    with pytest.raises(JobRefused, match=r"busy is being trained by another process \(pid \d+\)"):
        other.resume(job.run_dir, epochs=20_000)
    job.stop()
    assert manager.wait(job, 60) and job.status == "stopped"
    assert manager.can_delete(job.run_dir, "ann") is None


def test_waiting_jobs_outlive_a_server_restart_in_their_order_and_a_bad_entry_is_dropped(tmp_path, monkeypatch,
                                                                                         trained_run):
    import shutil
    shutil.copytree(trained_run, tmp_path / "done")
    spawned = []

    def spawn(self, job):  # as if it started training: the slot stays taken
        spawned.append((self, job.label, job.argv))
        job.status = "running"
    monkeypatch.setattr(JobManager, "_spawn", spawn)

    before = JobManager(tmp_path, max_running=1)
    before.start(TINY, quick(), "training")
    alpha = before.start(TINY, quick(epochs=3), "alpha", visitor="ann")
    before.resume(tmp_path / "done", epochs=12, learning_rate=1e-3, visitor="bob")
    cancelled = before.start(TINY, quick(), "cancelled", visitor="cy")
    before.start(TINY, quick(), "gamma", visitor="cy")
    before.stop(cancelled, visitor="cy")
    assert before.waiting() == 3

    # A second server on the folder while the first lives takes nothing over.
    assert JobManager(tmp_path, max_running=1).jobs() == []
    # The first server ends (the kernel drops its lock, as when its process is killed).
    os.close(before._queue_lock)
    # A hand-edited entry and a free lock whose queue file is not JSON: one line each, nothing else lost.
    path = next(tmp_path.glob(".queue-*.json"))
    saved = path.read_text()
    path.write_text(saved.replace('{"waiting": [', '{"waiting": [{"do": "train", "name": "x", "config": '
                                  '{"kind": "vae", "model": {"latent_dim": -4}, "training": {}}}, "rm -rf /", '))
    (tmp_path / ".queue-bad.lock").touch()
    (tmp_path / ".queue-bad.json").write_text("{not json")

    after = JobManager(tmp_path, max_running=1)
    waiting = sorted(after.jobs(), key=lambda j: j.id)
    assert [j.label for j in waiting] == ["alpha", "done", "gamma"]  # in their order, the cancelled one gone
    assert all(j.restored and j.visitor is None for j in waiting)
    assert [label for manager, label, _ in spawned if manager is after] == ["alpha"]  # the free slot
    assert [after.queue_position(j) for j in waiting] == [None, 1, 2]
    assert waiting[0].argv == alpha.argv  # the same run folder, name and config
    assert waiting[1].argv[2:] == ["--epochs", "12", "--learning-rate", "0.001", "--num-threads", "1"]
    assert len(after.problems) == 3, after.problems
    assert any("x, waiting before the server restarted, was dropped" in p and "latent_dim" in p for p in after.problems)
    assert any("a job, waiting before the server restarted, was dropped" in p for p in after.problems)
    assert any(".queue-bad.json were dropped: not readable" in p for p in after.problems)
    # The old files are gone; the new server keeps its own two waiting jobs.
    assert sorted(p.name for p in tmp_path.glob(".queue-*")) == sorted(
        [after._queue_name + ".json", after._queue_name + ".lock"])
