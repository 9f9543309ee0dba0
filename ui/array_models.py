"""MLP VAEs read as numpy arrays, with their dataset's test digits encoded, for the pages that
draw before torch is imported (Home, Latent space): torch's import alone takes 1.5-2 s on a cold
server. The browser decodes for the explorer; what a page decodes itself, numpy does."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

from vae_core.datafiles import DataError, test_arrays
from vae_core.store import CheckpointError
from vae_core.vae.arrays import MLPArrays, read_mlp

from .common import data_mismatch, state_key


@dataclass(frozen=True)
class ArrayModel:
    model: MLPArrays
    dataset: str
    images: np.ndarray  # the dataset's test digits (N, H, W) as grey values in [0, 1]
    labels: np.ndarray  # (N,)
    mu: np.ndarray      # their posterior means (N, D)


@st.cache_resource(show_spinner=False, max_entries=4)
def _read(path: str, key: str) -> ArrayModel | str:
    try:
        arrays, record = read_mlp(path)
    except CheckpointError as exc:
        return str(exc)
    dataset = record.train_config.dataset
    try:
        digits = test_arrays(dataset)
    except DataError:
        digits = None
    if digits is None:  # not cached as arrays yet (a first start): the loader, with torch, caches them
        from .models import test_set_grey
        digits = test_set_grey(record)
    images, labels = digits
    problem = data_mismatch(record, images, labels)
    if problem:
        return problem
    return ArrayModel(arrays, dataset, images, labels, arrays.encode_mean(images))


def array_model(path: Path) -> ArrayModel | str:
    """An MLP VAE run read as arrays with its test digits and their codes, cached until the run
    folder changes; or why it cannot be shown."""
    return _read(str(path), state_key(path))
