"""Evaluating trained runs: test ELBO and the importance-sampled log-likelihood log p(x)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import torch

from . import checkpoints as ckpts
from .data import prepare, load_dataset
from .objectives import evaluate_elbo, importance_sampled_log_likelihood, posterior_statistics
from .training import resolve_device


@torch.no_grad()
def evaluate_log_likelihood(model, images: torch.Tensor, num_importance_samples: int = 5000,
                            batch_size: int = 100, seed: int = 0,
                            progress: Callable[[int, int], None] | None = None) -> float:
    """Mean importance-sampled log p(x) over `images`, k = `num_importance_samples` per image."""
    g = torch.Generator(device=images.device).manual_seed(seed)
    chunk = max(1, min(num_importance_samples, 50_000 // batch_size))
    total = 0.0
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size]
        total += importance_sampled_log_likelihood(model, x, num_importance_samples, chunk, g).sum().item()
        if progress is not None:
            progress(min(i + batch_size, len(images)), len(images))
    return total / len(images)


def evaluate_run(run_dir: str | Path, num_importance_samples: int = 5000, data_root=None,
                 batch_size: int = 100, device: str = "auto", save: bool = True,
                 progress: Callable[[int, int], None] | None = None) -> dict[str, float]:
    """Test ELBO, log-likelihood, active units (Var_x E[z_u|x] > 0.01) and per-dimension KL of a
    VAE run on its dataset's test split; recorded in the run's summary."""
    dev = resolve_device(device)
    model, ckpt = ckpts.load_model(run_dir, dev)
    if ckpt.kind != "vae":
        raise ckpts.CheckpointError(ckpt.path, f"evaluate works on VAE runs, this one is {ckpt.kind}")
    config = ckpt.train_config
    test = prepare(load_dataset(config.dataset, data_root), config.binarization, config.seed).test
    images = test.images.to(dev)
    start = time.perf_counter()
    result = {f"test_{k}": v for k, v in evaluate_elbo(model, images).items()}
    stats = posterior_statistics(model, images)
    result["active_units"] = int(stats["active"].sum())
    result["kl_per_dim"] = [round(v, 4) for v in stats["kl_per_dim"].tolist()]
    if num_importance_samples > 0:
        result["test_log_likelihood"] = evaluate_log_likelihood(
            model, images, num_importance_samples, batch_size, progress=progress)
        result["importance_samples"] = num_importance_samples
    result["evaluation_seconds"] = time.perf_counter() - start
    if save:
        ckpts.update_summary(run_dir, **result)
    return result
