"""The VAE as the trainer's task: unsupervised SGVB on images with the ELBO (estimator A or B) or
the IWAE bound, and a trained VAE's test scores."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import torch

from ..config.base import ConfigError, with_changes
from ..config.vae import ModelConfig, TrainConfig
from ..data import Dataset, Split, load_dataset, prepare
from ..store import RunRecord
from ..trainer import EVAL_BATCH, EVAL_SEED, Step, StepResult, autograd_step
from . import fused
from .model import VAE
from .objective import (elbo, evaluate_elbo, evaluate_log_likelihood, iwae_terms,
                        posterior_statistics)


def resolve_backward(model_config: ModelConfig, config: TrainConfig) -> TrainConfig:
    """The config with `backward` settled: auto becomes fused where the fused backward applies
    and autograd elsewhere; fused where it does not apply is a `ConfigError`."""
    applies = fused.applies(model_config, config)
    if config.backward == "fused" and not applies:
        raise ConfigError("backward: the fused backward covers the one-hidden-layer MLP with a bernoulli "
                          "decoder, estimator B, one sample of z and the elbo objective, without compile; "
                          "use --backward autograd (or auto) for this model")
    if config.backward == "auto":
        return with_changes(config, backward="fused" if applies else "autograd")
    return config


class VAETask:
    """Unsupervised SGVB on images: the ELBO (estimator A or B) or the IWAE bound."""

    kind = "vae"
    monitor = "elbo"

    def __init__(self, data: Dataset, model_config: ModelConfig, config: TrainConfig):
        if tuple(model_config.image_shape) != tuple(data.image_shape):
            raise ConfigError(f"image size: the model expects {model_config.image_shape} but {data.name} "
                              f"images are {data.image_shape}")
        self.data = data
        self.model_config = model_config
        self.config = resolve_backward(model_config, config)
        self.num_train = len(data.train)

    def train_batch(self, indices: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        x = self.data.train.images.index_select(0, indices)
        if self.config.binarization == "dynamic":
            x = torch.bernoulli(x, generator=generator)
        return x

    def kl_weight(self, global_step: int, steps_per_epoch: int) -> float:
        """beta, grown linearly from 0 over the warm-up epochs."""
        warmup_steps = self.config.warmup_epochs * steps_per_epoch
        if warmup_steps <= 0:
            return self.config.beta
        return self.config.beta * min(1.0, (global_step + 1) / warmup_steps)

    def loss(self, model: VAE, batch: torch.Tensor, beta: float):
        c = self.config
        if c.objective == "iwae":
            terms = iwae_terms(model, batch, c.num_samples)
        else:
            terms = elbo(model, batch, c.estimator, c.num_samples, beta)
        return terms.loss, {"elbo": terms.elbo, "recon": terms.recon, "kl": terms.kl}

    def step(self, model: VAE) -> Step:
        if self.config.backward == "autograd":
            return autograd_step(self.loss, self.config.compile)
        gradients = fused.ElboGradients(model)

        def fused_step(model: VAE, batch: torch.Tensor, beta: float) -> StepResult:
            terms = gradients(batch, beta)
            return StepResult(terms.loss, {"elbo": terms.elbo, "recon": terms.recon, "kl": terms.kl}, True)
        return fused_step

    def evaluate(self, model: VAE, split: str) -> dict[str, float]:
        return evaluate_elbo(model, getattr(self.data, split).images, EVAL_BATCH, EVAL_SEED)


def load_training_data(config: TrainConfig, data_root: str | Path | None, device: torch.device) -> Dataset:
    """The config's dataset, binarised as it asks, cut to `max_train_examples`, on `device`."""
    data = prepare(load_dataset(config.dataset, data_root), config.binarization, config.seed)
    if config.max_train_examples:
        n = config.max_train_examples
        data = replace(data, train=Split(data.train.images[:n], data.train.labels[:n]))
    return data.to(device)


def step_values(model_config: ModelConfig, config: TrainConfig) -> int:
    """About how many values a training step computes (each layer's output and activation), for
    the memory estimate: the encoder once per image, the decoder once per sample of z."""
    c = model_config
    h, z, d = c.hidden_dim, c.latent_dim, c.input_dim
    out = d if c.likelihood == "bernoulli" else 2 * d
    if c.architecture == "conv":
        pixels = c.image_height * c.image_width
        convs = 2 * (32 * pixels // 4 + 64 * pixels // 16)  # the two stride-2 layers, and their activations
        encoder, decoder = d + convs + 2 * h + 2 * z, 2 * h + convs + 2 * out
    else:
        encoder, decoder = d + 2 * c.hidden_layers * h + 2 * z, 2 * c.hidden_layers * h + 2 * out
    per_image = encoder + config.num_samples * (2 * z + decoder)
    return config.batch_size * per_image


def make_task(model_config: ModelConfig, config: TrainConfig, data_root: str | Path | None,
              device: torch.device, run_dir: str | Path | None = None) -> VAETask:
    """The training task of a VAE config (`run_dir` is not needed: the data say it all)."""
    return VAETask(load_training_data(config, data_root, device), model_config, config)


def evaluate_test(model: VAE, record: RunRecord, data_root: str | Path | None, device: torch.device,
                  num_importance_samples: int = 5000, batch_size: int = 100,
                  progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Test ELBO, importance-sampled log-likelihood (k = `num_importance_samples`; 0: skipped),
    active units (Var_x E[z_u|x] > 0.01) and per-dimension KL on the dataset's test split."""
    config = record.train_config
    test = prepare(load_dataset(config.dataset, data_root), config.binarization, config.seed).test
    if tuple(record.model_config.image_shape) != tuple(test.images.shape[1:]):
        raise ConfigError(f"image size: the model takes {record.model_config.image_shape} images but "
                          f"{config.dataset} images are {tuple(test.images.shape[1:])}, so it cannot be tested on them")
    images = test.images.to(device)
    start = time.perf_counter()
    result: dict[str, Any] = {f"test_{k}": v for k, v in evaluate_elbo(model, images).items()}
    stats = posterior_statistics(model, images)
    result["active_units"] = int(stats["active"].sum())
    result["kl_per_dim"] = [round(v, 4) for v in stats["kl_per_dim"].tolist()]
    if num_importance_samples > 0:
        result["test_log_likelihood"] = evaluate_log_likelihood(
            model, images, num_importance_samples, batch_size, progress=progress)
        result["importance_samples"] = num_importance_samples
    result["evaluation_seconds"] = time.perf_counter() - start
    return result
