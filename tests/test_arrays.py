"""An MLP VAE read as numpy arrays without torch (vae_core/vae/arrays.py): the same weights and
posterior means as the torch model, every config the app trains, and a damaged or hostile run
refused as `load_model` refuses it."""

import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from vae_core.checkpoints import expected_weights as torch_weights
from vae_core.checkpoints import meta_model, save_checkpoint
from vae_core.config import ModelConfig, TrainConfig
from vae_core.registry import build_record as build, load_model
from vae_core.store import CheckpointError, RunRecord, state_folder
from vae_core.vae.arrays import expected_weights, read_mlp
from vae_core.vae.explore import encode, manifold_grid
from vae_core.vae.grid import gaussian_quantiles, grid_points, tile
from test_checkpoints import _rewrite_config

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent
CONFIGS = [ModelConfig(latent_dim=2, hidden_dim=16),
           ModelConfig(latent_dim=3, hidden_dim=8, hidden_layers=3, activation="relu", likelihood="gaussian"),
           ModelConfig(latent_dim=5, hidden_dim=12, hidden_layers=2, activation="softplus")]


def saved(run_dir, config: ModelConfig, seed: int = 0, dataset: str = "synthetic"):
    """A run of `config` with random weights (of a trained model's size), saved as training saves it."""
    torch.manual_seed(seed)
    record = RunRecord(run_dir, "vae", config, TrainConfig(dataset=dataset), {"epochs": [], "summary": {}})
    model = build(record)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.3)
    save_checkpoint(run_dir, kind="vae", model_config=config, train_config=record.train_config,
                    weights=model.state_dict(), history=record.history)
    return model


@pytest.mark.parametrize("config", CONFIGS, ids=["paper", "deep-relu-gaussian", "softplus"])
def test_the_arrays_are_the_models_weights_and_encode_as_it_does(tmp_path, config):
    record = RunRecord(tmp_path, "vae", config, TrainConfig(dataset="synthetic"), {})
    assert expected_weights(config) == {k: s for k, (s, _) in torch_weights(meta_model(build, record)).items()}
    model = saved(tmp_path / "run", config)
    arrays, read = read_mlp(tmp_path / "run")
    assert read.model_config == config
    # The decoder's mean, read from the torch model's own Linear modules: a Gaussian decoder's last
    # layer keeps only the mean's rows (its output stacks mean and log-variance).
    linears = [m for m in model.decoder.modules() if isinstance(m, torch.nn.Linear)]
    pixels = config.image_height * config.image_width
    layers = [(m.weight.detach().numpy(), m.bias.detach().numpy()) for m in linears]
    layers[-1] = (layers[-1][0][:pixels], layers[-1][1][:pixels])
    for (w, b), (tw, tb) in zip(arrays.decoder, layers, strict=True):
        np.testing.assert_array_equal(w, tw)
        np.testing.assert_array_equal(b, tb)
    images = np.random.default_rng(0).random((50, 28, 28), dtype=np.float32)
    np.testing.assert_allclose(arrays.encode_mean(images, batch_size=16), encode(model, images)[0], atol=1e-5)
    # The manifold grid decoded with numpy is the one torch decodes (Latent space draws it without torch).
    base = np.random.default_rng(1).normal(size=config.latent_dim).astype(np.float32)
    points = grid_points(config.latent_dim, 4, (config.latent_dim - 1, 0), base)
    np.testing.assert_allclose(tile(arrays.decode_mean(points), 4), manifold_grid(model, 4, (config.latent_dim - 1, 0),
                                                                                 base), atol=1e-5)


def test_the_grids_quantiles_are_the_normals():
    q = gaussian_quantiles(7)
    np.testing.assert_allclose(q, torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(0.05, 0.95, 7)), atol=1e-6)
    assert q[0] == pytest.approx(-1.64485, abs=1e-5) and q[3] == pytest.approx(0, abs=1e-7)


def test_reading_the_shipped_2d_model_imports_no_torch():
    code = ("import sys; from vae_core.vae.arrays import read_mlp; a, _ = read_mlp('checkpoints/mnist-mlp-z2'); "
            "assert 'torch' not in sys.modules, 'torch was imported'; print(a.config.latent_dim)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "2", result.stderr[-2000:]
    arrays, _ = read_mlp(ROOT / "checkpoints" / "mnist-mlp-z2")
    model, _ = load_model(ROOT / "checkpoints" / "mnist-mlp-z2")
    z = np.random.default_rng(1).random((20, 28, 28), dtype=np.float32)
    np.testing.assert_allclose(arrays.encode_mean(z), encode(model, z)[0], atol=1e-4)


def test_a_damaged_or_foreign_run_is_refused_with_the_reason(tmp_path, trained_run):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    _rewrite_config(run, latent_dim=3)
    with pytest.raises(CheckpointError, match=r"encoder.3.weight has shape \(4, 64\) but the config needs \(6, 64\)"):
        read_mlp(run)
    _rewrite_config(run, latent_dim=2, hidden_layers=2)
    with pytest.raises(CheckpointError, match="weights do not match the config: missing decoder.4.bias"):
        read_mlp(run)
    _rewrite_config(run, hidden_layers=1, architecture="conv")
    with pytest.raises(CheckpointError, match="not an MLP VAE on one-channel images"):
        read_mlp(run)
    _rewrite_config(run, architecture="mlp")
    weights = state_folder(run) / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:500])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        read_mlp(run)

    nan = tmp_path / "nan"
    model = saved(nan, CONFIGS[0])
    state = model.state_dict()
    state["decoder.2.bias"][3] = float("nan")
    save_checkpoint(nan, kind="vae", model_config=CONFIGS[0], train_config=TrainConfig(dataset="synthetic"),
                    weights=state, history={"epochs": [], "summary": {}})
    with pytest.raises(CheckpointError, match="decoder.2.bias contains NaN"):
        read_mlp(nan)
