"""MLP VAEs read as numpy arrays, with their dataset's test digits encoded, for the pages that
draw before torch is imported (Home, Latent space): torch's import alone takes 1.5-2 s on a cold
server. The browser decodes for the explorer; what a page decodes itself, numpy does.

The test digits' codes are kept on disk (`CODES_FOLDER` under the data folder), named by the run's
and the test files' fingerprints: a cold server then sends an explorer without reading and
encoding 10,000 digits first (0.2-0.6 s here). The digits themselves are read when a page asks.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from vae_core.datafiles import CACHE_ERRORS, DataError, default_data_root, test_arrays, test_source
from vae_core.store import CheckpointError, run_fingerprint
from vae_core.vae.arrays import MLPArrays, read_mlp

from .common import data_mismatch, state_key

if TYPE_CHECKING:
    from vae_core.store import RunRecord

CODES_FOLDER = "codes"
KEPT_CODES = 32  # files kept, the most recently used: 0.1-0.9 MB each for 10,000 digits


@dataclass(frozen=True)
class ArrayModel:
    model: MLPArrays
    dataset: str
    labels: np.ndarray  # the dataset's test labels (N,)
    mu: np.ndarray      # the test digits' posterior means (N, D)
    record: RunRecord

    def images(self) -> np.ndarray:
        """The dataset's test digits (N, H, W) as grey values in [0, 1] (read once per server)."""
        return _test_digits(self.dataset, self.record)[0]


@st.cache_resource(show_spinner=False, max_entries=4)
def _test_digits(dataset: str, _record: RunRecord) -> tuple[np.ndarray, np.ndarray]:
    try:
        digits = test_arrays(dataset)
    except DataError:
        digits = None
    if digits is None:  # not cached as arrays yet (a first start): the loader, with torch, caches them
        from .models import test_set_grey
        digits = test_set_grey(_record)
    return digits


def _codes_file(path: str, dataset: str) -> Path | None:
    """Where the codes of the run at `path` on `dataset`'s test digits are kept, named by what
    they are computed from; None when the test digits come from no file (nothing to name them by)."""
    source = test_source(dataset)
    if source is None:
        return None
    name = hashlib.sha256(repr((path, run_fingerprint(Path(path)), dataset, source)).encode()).hexdigest()[:32]
    return default_data_root() / CODES_FOLDER / f"{name}.npz"


def _read_codes(file: Path, latent_dim: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The kept codes and labels, or None when the file is missing or is not what was written."""
    try:
        with np.load(file, allow_pickle=False) as f:
            mu, labels = f["mu"], f["labels"]
    except CACHE_ERRORS:
        return None
    if (mu.dtype != np.float32 or mu.ndim != 2 or mu.shape[1] != latent_dim or len(mu) == 0
            or labels.dtype != np.int64 or labels.shape != mu.shape[:1] or not np.isfinite(mu).all()):
        return None
    try:
        os.utime(file)  # used: the last to be removed
    except OSError:
        pass
    return mu, labels


def _write_codes(file: Path, mu: np.ndarray, labels: np.ndarray) -> None:
    """Keep the codes (written whole or not at all), and only the KEPT_CODES most recently used
    files; a folder that cannot be written is skipped."""
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=file.parent, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as f:
                np.savez(f, mu=mu, labels=labels)
            os.replace(temporary, file)
        except BaseException:
            os.unlink(temporary)
            raise
        kept = sorted(file.parent.glob("*.npz"), key=lambda f: f.stat().st_mtime_ns, reverse=True)
        for old in kept[KEPT_CODES:]:
            old.unlink()
    except OSError:
        pass


@st.cache_resource(show_spinner=False, max_entries=4)
def _read(path: str, key: str) -> ArrayModel | str:
    try:
        arrays, record = read_mlp(path)
    except CheckpointError as exc:
        return str(exc)
    dataset = record.train_config.dataset
    file = _codes_file(path, dataset)
    kept = None if file is None else _read_codes(file, arrays.config.latent_dim)
    if kept is not None:  # written only after the digits passed `data_mismatch`, for these very files
        return ArrayModel(arrays, dataset, kept[1], kept[0], record)
    images, labels = _test_digits(dataset, record)
    problem = data_mismatch(record, images, labels)
    if problem:
        return problem
    mu = arrays.encode_mean(images)  # float32
    labels = np.asarray(labels, np.int64)
    if file is not None:
        _write_codes(file, mu, labels)
    return ArrayModel(arrays, dataset, labels, mu, record)


def array_model(path: Path) -> ArrayModel | str:
    """An MLP VAE run read as arrays with its test digits' codes, cached until the run folder
    changes; or why it cannot be shown."""
    return _read(str(path), state_key(path))
