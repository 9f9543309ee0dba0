"""Trained models and their data for the pages, cached: models are loaded once per server
process (`st.cache_resource`), keyed by the run folder's fingerprint so that a run that trains
further (or whose files are replaced) is reloaded; derived data (test encodings and scores) is
cached too, and so is a run's failure to load."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import streamlit as st

from vae_core.config import ConfigError
from vae_core.data import DataError, load_dataset, prepare
from vae_core.m2.m1 import load_m1_with_digest, m1_of
from vae_core.registry import load_model
from vae_core.store import CheckpointError, RunRecord, shown
from vae_core.vae.explore import encode, per_image_elbo, per_image_log_likelihood

from .common import data_mismatch, plain, sidebar_run_picker, state_key


LOAD_ERRORS = (CheckpointError, ConfigError)


@st.cache_resource(show_spinner="Loading the model...", max_entries=8)
def _load(path: str, key: str):
    """(model, checkpoint, None), or (None, None, why not): a failure is kept too, so that a
    broken run is not read again at every rerun (`key` changes when the run folder does)."""
    try:
        model, ckpt = load_model(path)
    except LOAD_ERRORS as exc:
        return None, None, str(exc)
    return model, ckpt, None


def load_run(path: Path):
    """(model, checkpoint) of a run, cached until the run folder changes; a run that cannot be
    loaded, or whose images are not its dataset's, stops the page with a message."""
    model, ckpt, error = _load(str(path), state_key(path))
    if error:
        st.error(f"This run cannot be loaded: {plain(error)}")
        st.caption("Pick another model in the sidebar, or fix or remove the run's folder.")
        st.stop()
    return model, ckpt


def shown_model(path: Path):
    """(model, checkpoint) of a run that the pages can show on its dataset's test digits; else
    the page stops with a message."""
    model, ckpt = load_run(path)
    problem = data_mismatch(ckpt, *test_set_grey(ckpt))
    if problem:
        st.error(f"This run cannot be shown: {problem}.")
        st.stop()
    return model, ckpt


def sidebar_model_picker(kind: str = "vae", min_latent: int = 1):
    """The sidebar's run chooser and the chosen run's model: (run folder, model, checkpoint)."""
    path, _ = sidebar_run_picker(kind, min_latent)
    return (path, *shown_model(path))


@st.cache_resource(show_spinner="Loading the M1 encoder...", max_entries=4)
def _load_m1(path: str, key: str):
    try:
        return load_m1_with_digest(path), None
    except LOAD_ERRORS as exc:
        return None, exc


def _cached_m1(path: Path):
    result, error = _load_m1(str(path), state_key(path))
    if error is not None:
        raise error
    return result


def m1_encoder(record: RunRecord):
    """(M1 VAE, its run folder) of an M1+M2 run, (None, None) for M2 on pixels. The M1 is the
    one M2 was trained on, found by the digest of its weights (never just by its name), and
    cached until its run folder changes, so a replaced M1 is seen. Raises CheckpointError or
    ConfigError with a message for the page."""
    m1, path = m1_of(record, _cached_m1)
    if m1 is not None:
        images, _ = test_set_grey(record)
        if tuple(m1.config.image_shape) != (1, *images.shape[1:]):
            raise ConfigError(f"the M1 run {shown(path.name)} takes {m1.config.image_shape} images, not "
                              f"those of {record.train_config.dataset}")
    return m1, path


M1_ERRORS = LOAD_ERRORS


@st.cache_resource(show_spinner="Loading the test set...", max_entries=4)
def _load_test_split(dataset: str, binarization: str, seed: int):
    """(images, labels), or None when the dataset is not on this server (kept too, so that it is
    not looked for at every rerun). Pages never download: training does."""
    try:
        data = prepare(load_dataset(dataset, os.environ.get("VAE_DATA_ROOT"), download=False), binarization, seed)
    except DataError:
        return None
    return data.test.images[:, 0].numpy(), data.test.labels.numpy()


def _test_split(dataset: str, binarization: str, seed: int):
    """A dataset's test split, or a message and a stopped page when it is not on this server."""
    split = _load_test_split(dataset, binarization, seed)
    if split is None:
        st.error(f"The test digits of this run's dataset, {dataset}, cannot be loaded: it is not on this "
                 "server. Training a model on it here downloads it.")
        st.stop()
    return split


def test_set(record: RunRecord) -> tuple[np.ndarray, np.ndarray]:
    """The run's test images (N, H, W), binarised as in training, and labels (N,)."""
    c = record.train_config
    return _test_split(c.dataset, c.binarization, c.seed)


def test_set_grey(record: RunRecord) -> tuple[np.ndarray, np.ndarray]:
    """The run's test images as grey values, for showing and encoding digits."""
    return _test_split(record.train_config.dataset, "none", 0)


@st.cache_data(show_spinner="Encoding the test set...", max_entries=8)
def _encodings(path: str, state: str) -> tuple[np.ndarray, np.ndarray]:
    model, ckpt, _ = _load(path, state)
    images, labels = test_set_grey(ckpt)
    mu, _ = encode(model, images)
    return mu, labels


def test_encodings(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means of the test set (N, D) and the labels (N,)."""
    return _encodings(str(path), state_key(path))


@st.cache_data(show_spinner="Scoring the test set...", max_entries=8)
def _test_elbos(path: str, state: str) -> np.ndarray:
    model, ckpt, _ = _load(path, state)
    images, _ = test_set(ckpt)
    return per_image_elbo(model, images)


def test_elbos(path: Path) -> np.ndarray:
    return _test_elbos(str(path), state_key(path))


@st.cache_data(show_spinner="Scoring test digits...", max_entries=8)
def _test_log_likelihoods(path: str, state: str) -> np.ndarray:
    model, ckpt, _ = _load(path, state)
    images, _ = test_set(ckpt)
    return per_image_log_likelihood(model, images[:500], num_importance_samples=200)


def test_log_likelihoods(path: Path) -> np.ndarray:
    """Importance-sampled log p(x) (k = 200) of the first 500 test digits: for percentiles."""
    return _test_log_likelihoods(str(path), state_key(path))

