"""Shared fixtures: restored RNG state, tiny configs and a tiny trained run."""

from __future__ import annotations

import os
import random
import tempfile

import numpy as np
import pytest
import torch

from vae_core.commands import train
from vae_core.config import ModelConfig, TrainConfig

# Runs trained from the app during tests go to a scratch folder, never into the project.
os.environ.setdefault("VAE_EXPLORER_RUNS", tempfile.mkdtemp(prefix="vae-explorer-test-runs-"))


@pytest.fixture(autouse=True)
def _restore_rng():
    torch_state, np_state, py_state = torch.get_rng_state(), np.random.get_state(), random.getstate()
    threads = torch.get_num_threads()
    yield
    torch.set_rng_state(torch_state)
    np.random.set_state(np_state)
    random.setstate(py_state)
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_model_config() -> ModelConfig:
    return ModelConfig(latent_dim=2, hidden_dim=32)


@pytest.fixture
def tiny_train_config() -> TrainConfig:
    return TrainConfig(dataset="synthetic", epochs=3, batch_size=64, seed=3, device="cpu")


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A small VAE trained for a few epochs on the synthetic data, saved as a run folder."""
    run_dir = tmp_path_factory.mktemp("runs") / "tiny"
    train(ModelConfig(latent_dim=2, hidden_dim=64),
              TrainConfig(dataset="synthetic", epochs=8, batch_size=32, seed=0, device="cpu",
                          learning_rate=3e-3), run_dir)
    return run_dir
