"""The pages' MLP VAEs read as arrays (ui/array_models.py): the test digits' codes are kept on
disk, so that a cold server sends an explorer without reading and encoding the test set; a
damaged, foreign or stale file is computed again, and a folder that cannot be written is skipped."""

import os

import numpy as np
import pytest
import streamlit as st

from test_arrays import saved
from test_data import write_idx
from ui import array_models
from vae_core.config import ModelConfig
from vae_core.vae.arrays import read_mlp

CONFIG = ModelConfig(latent_dim=2, hidden_dim=16)


def save_run(run_dir, seed: int) -> None:
    saved(run_dir, CONFIG, seed, dataset="mnist")


@pytest.fixture
def setting(tmp_path, monkeypatch):
    """A data folder holding a small MNIST in IDX files, and a run of an MLP VAE on it."""
    rng = np.random.default_rng(0)
    data = tmp_path / "data"
    data.mkdir()
    for prefix, n in (("train", 30), ("t10k", 40)):
        write_idx(data / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)).astype(np.uint8))
        write_idx(data / f"{prefix}-labels-idx1-ubyte", (np.arange(n) % 10).astype(np.uint8))
    monkeypatch.setenv("VAE_DATA_ROOT", str(data))
    run = tmp_path / "run"
    save_run(run, seed=0)
    st.cache_resource.clear()
    yield data, run
    st.cache_resource.clear()


def expected_codes(run, data) -> np.ndarray:
    from vae_core.datafiles import test_arrays
    return read_mlp(run)[0].encode_mean(test_arrays("mnist", data)[0])


def kept_files(data) -> list:
    return sorted((data / array_models.CODES_FOLDER).glob("*.npz"))


def no_digits(*args):
    raise AssertionError("the test digits were read")


def test_codes_are_kept_and_read_back_without_the_test_digits(setting, monkeypatch):
    data, run = setting
    first = array_models.array_model(run)
    assert np.allclose(first.mu, expected_codes(run, data), atol=1e-6)
    assert list(first.labels) == [i % 10 for i in range(40)]
    assert len(kept_files(data)) == 1

    (file,) = kept_files(data)
    os.utime(file, ns=(10**18, 10**18))  # long ago
    st.cache_resource.clear()  # a new server
    monkeypatch.setattr(array_models, "test_arrays", no_digits)
    again = array_models.array_model(run)
    assert np.array_equal(again.mu, first.mu) and np.array_equal(again.labels, first.labels)
    assert file.stat().st_mtime_ns > 10**18  # marked as used, the last to be removed
    with pytest.raises(AssertionError, match="test digits were read"):
        again.images()  # the digits only when a page asks for them


@pytest.mark.parametrize("damage", ["garbage", "truncated", "other latent size", "not finite", "other count",
                                    "labels as floats"])
def test_a_damaged_or_foreign_codes_file_is_computed_again(setting, damage):
    data, run = setting
    array_models.array_model(run)
    (file,) = kept_files(data)
    mu, labels = np.random.default_rng(1).normal(size=(40, 2)).astype(np.float32), np.arange(40) % 10
    if damage == "garbage":
        file.write_bytes(b"\x00not a zip file" * 100)
    elif damage == "truncated":
        file.write_bytes(file.read_bytes()[:200])
    else:
        if damage == "other latent size":
            mu = np.zeros((40, 3), np.float32)
        elif damage == "not finite":
            mu[3, 1] = np.nan
        elif damage == "other count":
            labels = labels[:39]
        else:
            labels = labels.astype(np.float64)
        with open(file, "wb") as f:
            np.savez(f, mu=mu, labels=labels)
    st.cache_resource.clear()
    shown = array_models.array_model(run)
    assert np.allclose(shown.mu, expected_codes(run, data), atol=1e-6)
    with np.load(file) as kept:  # written again, whole
        assert np.array_equal(kept["mu"], shown.mu) and np.array_equal(kept["labels"], shown.labels)


def test_new_weights_get_new_codes(setting):
    data, run = setting
    old = array_models.array_model(run).mu
    save_run(run, seed=1)  # training saved a new state
    new = array_models.array_model(run).mu
    assert np.allclose(new, expected_codes(run, data), atol=1e-6) and not np.allclose(new, old)
    assert len(kept_files(data)) == 2


def test_a_folder_that_cannot_be_written_is_skipped(setting):
    data, run = setting
    (data / array_models.CODES_FOLDER).write_text("a file where the folder would be")
    shown = array_models.array_model(run)
    assert np.allclose(shown.mu, expected_codes(run, data), atol=1e-6)


def test_only_the_most_recently_used_codes_are_kept(setting, monkeypatch):
    data, run = setting
    monkeypatch.setattr(array_models, "KEPT_CODES", 3)
    folder = data / array_models.CODES_FOLDER
    folder.mkdir()
    for i in range(4):  # older files of other runs, the first used last
        (folder / f"other{i}.npz").write_bytes(b"")
        os.utime(folder / f"other{i}.npz", ns=(10**18, 10**18 + (10 if i == 0 else i)))  # long ago
    array_models.array_model(run)
    names = {f.name for f in kept_files(data)}
    assert len(names) == 3 and {"other0.npz", "other3.npz"} <= names  # the new file and the two last used
