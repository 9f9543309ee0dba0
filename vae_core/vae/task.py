"""The VAE as the trainer's task: unsupervised SGVB on images with the ELBO (estimator A or B) or
the IWAE bound, and a trained VAE's test scores. A 2-D VAE trained into a run folder also
records latent snapshots (`vae_core.snapshots`) as it learns."""

from __future__ import annotations

import math
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .. import snapshots
from ..config.base import ConfigError, with_changes
from ..config.vae import ModelConfig, TrainConfig
from ..data import Dataset, Split, load_dataset, prepare
from ..store import CheckpointError, RunRecord
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


def writes_checkpoints() -> bool:
    """False in the processes of a distributed run other than rank 0, which saves for all."""
    return not (torch.distributed.is_available() and torch.distributed.is_initialized()
                and torch.distributed.get_rank() != 0)


class LatentSnapshots:
    """The hook that records a 2-D VAE's snapshots: the posterior means of the first
    `snapshots.MAX_POINTS` validation digits and the decoded manifold, every
    `snapshots.INTERVAL_SECONDS` within an epoch and at each epoch's end. Encoding and decoding
    draw no random numbers and leave the model's mode as they found it, so training goes exactly
    as it would without them. A snapshot that cannot be written is reported once and recording
    stops; training goes on."""

    def __init__(self, run_dir: str | Path, validation: Split, image_shape: tuple[int, int, int]):
        self.run_dir = Path(run_dir)
        self.images = validation.images[:snapshots.MAX_POINTS]  # (N, C, H, W)
        self.labels = validation.labels[:snapshots.MAX_POINTS].cpu().numpy().astype(np.uint8)
        side = snapshots.manifold_side(*image_shape[1:])
        # The grid of AEVB Fig. 4: z1 left to right and z2 top to bottom over N(0, 1)'s quantiles 0.05..0.95.
        q = torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(0.05, 0.95, side)).to(self.images.device)
        self.grid = torch.stack([q.repeat(side), q.flip(0).repeat_interleave(side)], dim=1)  # (G*G, 2)
        self.writer: snapshots.SnapshotWriter | None = None
        self.failed = False

    def due(self) -> bool:
        return not self.failed and (self.writer is None or self.writer.due())

    @torch.no_grad()
    def record(self, model: torch.nn.Module, step: int, steps_per_epoch: int) -> None:
        if self.failed or not writes_checkpoints():
            return
        vae = getattr(model, "module", model)  # the model itself under DistributedDataParallel
        was_training = vae.training
        vae.eval()
        try:
            means = torch.cat([vae.encode(x).mu for x in self.images.split(1000)])  # (N, 2)
            side = math.isqrt(len(self.grid))
            manifold = vae.mean_image(self.grid).mean(dim=1)  # (G*G, H, W)
        finally:
            vae.train(was_training)
        try:
            if self.writer is None:
                self.writer = snapshots.SnapshotWriter(self.run_dir, self.labels)
            self.writer.add(means.cpu().numpy(), step, step / steps_per_epoch,
                            manifold.reshape(side, side, *manifold.shape[1:]).cpu().numpy())
        except (OSError, CheckpointError) as exc:
            self.failed = True
            print(f"latent snapshots: not recorded any more ({exc})", file=sys.stderr)


class VAETask:
    """Unsupervised SGVB on images: the ELBO (estimator A or B) or the IWAE bound."""

    kind = "vae"
    monitor = "elbo"

    def __init__(self, data: Dataset, model_config: ModelConfig, config: TrainConfig,
                 run_dir: str | Path | None = None):
        if tuple(model_config.image_shape) != tuple(data.image_shape):
            raise ConfigError(f"image size: the model expects {model_config.image_shape} but {data.name} "
                              f"images are {data.image_shape}")
        self.data = data
        self.model_config = model_config
        self.config = resolve_backward(model_config, config)
        self.num_train = len(data.train)
        self.snapshots = (LatentSnapshots(run_dir, data.validation, model_config.image_shape)
                          if run_dir is not None and model_config.latent_dim == 2 else None)
        self.position = (0, 1)  # (global step, steps per epoch), as the trainer last gave them

    def train_batch(self, indices: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        x = self.data.train.images.index_select(0, indices)
        if self.config.binarization == "dynamic":
            x = torch.bernoulli(x, generator=generator)
        return x

    def kl_weight(self, global_step: int, steps_per_epoch: int) -> float:
        """beta, grown linearly from 0 over the warm-up epochs. The trainer asks before each step,
        with the number of steps done; the snapshots take their position from it."""
        self.position = (global_step, steps_per_epoch)
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
            step = autograd_step(self.loss, self.config.compile)
        else:
            gradients = fused.ElboGradients(model)

            def step(model: VAE, batch: torch.Tensor, beta: float) -> StepResult:
                terms = gradients(batch, beta)
                return StepResult(terms.loss, {"elbo": terms.elbo, "recon": terms.recon, "kl": terms.kl}, True)
        if self.snapshots is None:
            return step

        def step_with_snapshots(model: VAE, batch: torch.Tensor, beta: float) -> StepResult:
            if self.snapshots.due():  # the model as it is after `global step` steps, before this one
                self.snapshots.record(model, *self.position)
            return step(model, batch, beta)
        return step_with_snapshots

    def evaluate(self, model: VAE, split: str) -> dict[str, float]:
        if split == "validation" and self.snapshots is not None:  # an epoch has just ended
            global_step, steps_per_epoch = self.position
            self.snapshots.record(model, global_step + 1, steps_per_epoch)
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
    """The training task of a VAE config; a 2-D VAE records its latent snapshots in `run_dir`."""
    return VAETask(load_training_data(config, data_root, device), model_config, config, run_dir)


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
