"""Latent snapshots: a 2-D VAE's training process records them without changing its training,
keeps the file under its size cap, continues it on resume, and a damaged file is refused with a
one-line message."""

import os

import numpy as np
import pytest
import torch
from safetensors.numpy import save

from vae_core import snapshots
from vae_core.commands import resume, train
from vae_core.config import M2Config, M2TrainConfig, ModelConfig, TrainConfig
from vae_core.data import synthetic_dataset
from vae_core.snapshots import (FILENAME, MAX_FILE_BYTES, MAX_POINTS, MAX_SNAPSHOTS, SnapshotError, Snapshots,
                                SnapshotWriter, read_snapshots)


@pytest.fixture
def often(monkeypatch):
    """A snapshot at every step within an epoch, so that a tiny run has some."""
    monkeypatch.setattr(snapshots, "INTERVAL_SECONDS", 0.0)


def tiny(**changes):
    return (ModelConfig(latent_dim=2, hidden_dim=32),
            TrainConfig(**{"dataset": "synthetic", "epochs": 2, "batch_size": 128, "seed": 1, "device": "cpu",
                           **changes}))


def test_a_2d_vae_records_its_map_at_every_snapshot_and_epoch_end(tmp_path, often):
    run = tmp_path / "run"
    trainer = train(*tiny(), run)
    snaps = read_snapshots(run)
    steps_per_epoch = trainer.steps_per_epoch  # 512 synthetic images, batches of 128: 4
    assert snaps.steps.tolist() == list(range(2 * steps_per_epoch + 1))  # before each step, and the end
    assert snaps.epochs.tolist() == pytest.approx([s / steps_per_epoch for s in range(2 * steps_per_epoch + 1)])
    validation = synthetic_dataset().validation
    assert snaps.labels.tolist() == validation.labels.tolist()  # all 128 synthetic validation digits
    # the last snapshot is the trained model's posterior means (float16) and its decoded grid
    model = trainer.model.eval()
    binary = torch.bernoulli(validation.images, generator=torch.Generator().manual_seed(1 + 2))
    with torch.no_grad():
        mu = model.encode(binary).mu.numpy()
    np.testing.assert_allclose(snaps.means[-1].astype(np.float32), mu, rtol=2e-3, atol=2e-3)
    assert snaps.manifold.shape == (10, 10, 28, 28) and snaps.manifold_image().shape == (280, 280)
    with torch.no_grad():
        corner = model.mean_image(torch.tensor([[-1.6449, 1.6449]]))[0, 0].numpy()  # top left: z1 low, z2 high
    np.testing.assert_allclose(snaps.manifold_image()[:28, :28], corner, atol=1 / 255 + 1e-3)
    assert not np.array_equal(snaps.means[0], snaps.means[-1])  # the map moved as it learned


def test_recording_snapshots_leaves_training_exactly_as_it_was(tmp_path, often):
    with_snapshots = train(*tiny(), tmp_path / "run")
    without = train(*tiny())  # no run folder: nothing recorded
    assert (tmp_path / "run" / FILENAME).is_file()
    assert [h["val_elbo"] for h in with_snapshots.history] == [h["val_elbo"] for h in without.history]
    for name, tensor in with_snapshots.model.state_dict().items():
        assert torch.equal(tensor, without.model.state_dict()[name]), name


def test_other_models_record_nothing(tmp_path, often):
    model_config, train_config = tiny(epochs=1)
    train(model_config.model_copy(update={"latent_dim": 3}), train_config, tmp_path / "z3")
    train(M2Config(latent_dim=2, hidden_dim=16), M2TrainConfig(dataset="synthetic", epochs=1, num_labels=20,
                                                               device="cpu"), tmp_path / "m2")
    assert not (tmp_path / "z3" / FILENAME).exists() and not (tmp_path / "m2" / FILENAME).exists()
    assert read_snapshots(tmp_path / "z3") is None  # an old run, or another kind: simply none


def test_only_the_process_that_saves_records_under_torchrun(tmp_path, often, monkeypatch):
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_rank", lambda: 1)
    train(*tiny(epochs=1), tmp_path / "rank1")
    assert not (tmp_path / "rank1" / FILENAME).exists()


def test_a_resumed_run_continues_its_snapshots(tmp_path, often):
    run = tmp_path / "run"
    train(*tiny(), run)
    first = read_snapshots(run)
    resume(run, epochs=3)
    snaps = read_snapshots(run)
    assert snaps.steps[:len(first)].tolist() == first.steps.tolist()
    assert snaps.epochs[-1] == 3.0 and (np.diff(snaps.steps) > 0).all()


def test_a_snapshot_that_cannot_be_written_stops_recording_not_training(tmp_path, often, capfd):
    run = tmp_path / "run"
    (run / FILENAME).mkdir(parents=True)  # a folder where the file would go: every write fails
    trainer = train(*tiny(), run)
    assert trainer.summary["status"] == "finished"
    assert capfd.readouterr().err.count("latent snapshots: not recorded any more") == 1


def _writer(tmp_path, points=MAX_POINTS, interval=0.0):
    labels = np.arange(points) % 10
    return SnapshotWriter(tmp_path, labels, interval=interval), labels


def test_the_file_stays_under_its_cap_at_the_most_digits_and_snapshots(tmp_path, monkeypatch):
    monkeypatch.setattr(snapshots.os, "fsync", lambda fd: None)  # hundreds of 2 MB writes: skip the disk flush
    writer, labels = _writer(tmp_path)
    rng = np.random.default_rng(0)
    manifold = rng.random((10, 10, 28, 28))
    steps_per_epoch = 7
    total = MAX_SNAPSHOTS + 20
    for step in range(total):
        writer.add(rng.normal(size=(len(labels), 2)) * 1e6, step, step / steps_per_epoch, manifold)
    assert (tmp_path / FILENAME).stat().st_size <= MAX_FILE_BYTES
    snaps = read_snapshots(tmp_path)
    assert len(snaps) <= MAX_SNAPSHOTS and len(snaps.labels) == MAX_POINTS
    assert snaps.steps[0] == 0 and snaps.steps[-1] == total - 1  # the first and the latest stay
    epoch_ends = [s for s in range(total) if s % steps_per_epoch == 0]
    assert set(epoch_ends) <= set(snaps.steps.tolist())  # snapshots within an epoch went first
    assert np.isfinite(snaps.means).all()  # values beyond float16's range are clipped, not infinite


def test_thinning_drops_within_epoch_snapshots_first_then_every_other_epoch_end():
    epochs = np.array([0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4], dtype=np.float32)
    assert snapshots.thin(list(range(9)), epochs, limit=9) == list(range(9))
    kept = snapshots.thin(list(range(9)), epochs, limit=6)
    assert epochs[kept].tolist() == [0, 1, 2, 3, 3.5, 4]  # within epochs: every other, twice
    kept = snapshots.thin(list(range(9)), epochs, limit=4)
    assert epochs[kept].tolist() == [0, 2, 4]  # then every other epoch end, never the first or the last
    ends = np.arange(1000, dtype=np.float32)  # a long run: epoch ends only
    kept = snapshots.thin(list(range(1000)), ends, limit=MAX_SNAPSHOTS)
    assert len(kept) <= MAX_SNAPSHOTS and kept[0] == 0 and kept[-1] == 999
    assert len(set(np.diff(kept)[:-1])) == 1  # evenly spread


def test_snapshots_are_due_every_interval(tmp_path):
    now = [100.0]
    writer = SnapshotWriter(tmp_path, np.zeros(5), interval=3.0, clock=lambda: now[0])
    assert not writer.due()
    now[0] += 3.0
    assert writer.due()
    writer.add(np.zeros((5, 2)), 1, 0.5, np.zeros((2, 2, 4, 4)))
    assert not writer.due()


def _valid(tmp_path) -> Snapshots:
    writer, labels = _writer(tmp_path, points=20)
    writer.add(np.ones((20, 2)), 0, 0.0, np.zeros((3, 3, 28, 28)))
    return writer.add(np.ones((20, 2)), 5, 1.0, np.zeros((3, 3, 28, 28)))


def _tensors(snaps: Snapshots) -> dict:
    return {name: getattr(snaps, name) for name in ("labels", "means", "steps", "epochs", "manifold")}


META = {"format": snapshots.FORMAT, "version": snapshots.VERSION}


@pytest.mark.parametrize("damage, message", [
    (lambda data, t: data[:len(data) // 2], "not a readable safetensors file"),
    (lambda data, t: b"\x00" * 7, "truncated"),
    (lambda data, t: b"not a snapshot file at all, just words", "truncated"),
    (lambda data, t: data[:8] + b"x" + data[9:], "not a readable safetensors file"),
    (lambda data, t: save({**t, "extra": np.zeros(1, np.uint8)}, metadata=META), "expected ['epochs'"),
    (lambda data, t: save({**t, "means": t["means"].astype(np.float32)}, metadata=META), "means is float32"),
    (lambda data, t: save({**t, "means": np.full_like(t["means"], np.nan)}, metadata=META), "NaN"),
    (lambda data, t: save({**t, "epochs": t["epochs"][::-1].copy()}, metadata=META), "never decrease"),
    (lambda data, t: save({**t, "steps": t["steps"][:1].copy()}, metadata=META), "do not match"),
    (lambda data, t: save({**t, "means": t["means"][:, :5].copy()}, metadata=META), "means has shape"),
    (lambda data, t: save(t, metadata={**META, "version": "7"}), "version '7' is not supported"),
    (lambda data, t: save(t), "not a vae-explorer-latent-snapshots file"),
    (lambda data, t: data + b" " * (MAX_FILE_BYTES + 1 - len(data)), "more than the"),
], ids=["half", "seven-bytes", "text", "bad-header", "extra-tensor", "float32", "nan", "decreasing", "short-steps",
        "wrong-shape", "version", "no-metadata", "oversized"])
def test_a_damaged_file_is_refused_with_one_line_naming_it(tmp_path, damage, message):
    run = tmp_path / "my-run"
    valid = _valid(run)
    path = run / FILENAME
    path.write_bytes(damage(path.read_bytes(), _tensors(valid)))
    with pytest.raises(SnapshotError) as error:
        read_snapshots(run)
    text = str(error.value)
    assert message in text and "\n" not in text and text.startswith(f"my-run/{FILENAME}: ")
    assert str(tmp_path) not in text  # never the server's path


def test_a_link_in_place_of_the_file_is_refused_and_a_writer_replaces_it_not_its_target(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    target = tmp_path / "elsewhere.bin"
    target.write_bytes(_valid(tmp_path / "other").to_bytes())
    os.symlink(target, run / FILENAME)
    with pytest.raises(SnapshotError, match="run/latent-snapshots.safetensors: "):
        read_snapshots(run)
    before = target.read_bytes()
    _valid(run)
    assert target.read_bytes() == before and not (run / FILENAME).is_symlink()
    assert len(read_snapshots(run)) == 2
