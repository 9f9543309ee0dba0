"""Trained models and their data for the pages, cached: models are loaded once per server
process (`st.cache_resource`), keyed by the run's current state folder so that a run that trains
further is reloaded; derived data (test encodings and scores) is cached too."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import streamlit as st

from vae_core.config import ConfigError
from vae_core.data import load_dataset, prepare
from vae_core.m2.m1 import check_m1, load_m1, m1_of, weights_digest
from vae_core.registry import load_model
from vae_core.store import CheckpointError, RunRecord
from vae_core.vae.explore import encode, per_image_elbo, per_image_log_likelihood

from .common import sidebar_run_picker, state_key


@st.cache_resource(show_spinner="Loading the model...", max_entries=8)
def _load(path: str, state: str):
    return load_model(path)


def load_run(path: Path):
    """(model, checkpoint) of a run, cached until the run saves a newer state; a run that cannot
    be loaded stops the page with a message."""
    try:
        return _load(str(path), state_key(path))
    except CheckpointError as exc:
        st.error(f"This run cannot be loaded: {exc}")
        st.stop()


def sidebar_model_picker(kind: str = "vae", min_latent: int = 1):
    """The sidebar's run chooser and the chosen run's model: (run folder, model, checkpoint)."""
    path, _ = sidebar_run_picker(kind, min_latent)
    model, ckpt = load_run(path)
    return path, model, ckpt


@st.cache_resource(show_spinner="Loading the M1 encoder...", max_entries=4)
def _load_m1(path: str, state: str):
    model = load_m1(path)[0]
    return model, weights_digest(model)


def m1_encoder(record: RunRecord):
    """(M1 VAE, its run folder) of an M1+M2 run, (None, None) for M2 on pixels; the M1 is checked
    to be the one M2 was trained on, and cached until its run saves a newer state, so a replaced
    M1 is seen. Raises CheckpointError or ConfigError with a message for the page."""
    path = m1_of(record)
    if path is None:
        return None, None
    model, digest = _load_m1(str(path), state_key(path))
    check_m1(record.model_config, digest, path)
    return model, path


M1_ERRORS = (CheckpointError, ConfigError)


@st.cache_resource(show_spinner="Loading the test set...", max_entries=4)
def _test_split(dataset: str, binarization: str, seed: int):
    data = prepare(load_dataset(dataset, os.environ.get("VAE_DATA_ROOT")), binarization, seed)
    return data.test.images[:, 0].numpy(), data.test.labels.numpy()


def test_set(record: RunRecord) -> tuple[np.ndarray, np.ndarray]:
    """The run's test images (N, H, W), binarised as in training, and labels (N,)."""
    c = record.train_config
    return _test_split(c.dataset, c.binarization, c.seed)


def test_set_grey(record: RunRecord) -> tuple[np.ndarray, np.ndarray]:
    """The run's test images as grey values, for showing and encoding digits."""
    return _test_split(record.train_config.dataset, "none", 0)


@st.cache_data(show_spinner="Encoding the test set...", max_entries=8)
def _encodings(path: str, state: str) -> tuple[np.ndarray, np.ndarray]:
    model, ckpt = _load(path, state)
    images, labels = test_set_grey(ckpt)
    mu, _ = encode(model, images)
    return mu, labels


def test_encodings(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means of the test set (N, D) and the labels (N,)."""
    return _encodings(str(path), state_key(path))


@st.cache_data(show_spinner="Scoring the test set...", max_entries=8)
def _test_elbos(path: str, state: str) -> np.ndarray:
    model, ckpt = _load(path, state)
    images, _ = test_set(ckpt)
    return per_image_elbo(model, images)


def test_elbos(path: Path) -> np.ndarray:
    return _test_elbos(str(path), state_key(path))


@st.cache_data(show_spinner="Scoring test digits...", max_entries=8)
def _test_log_likelihoods(path: str, state: str) -> np.ndarray:
    model, ckpt = _load(path, state)
    images, _ = test_set(ckpt)
    return per_image_log_likelihood(model, images[:500], num_importance_samples=200)


def test_log_likelihoods(path: Path) -> np.ndarray:
    """Importance-sampled log p(x) (k = 200) of the first 500 test digits: for percentiles."""
    return _test_log_likelihoods(str(path), state_key(path))
