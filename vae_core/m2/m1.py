"""M1+M2's first stage: M1 is a plain VAE, trained without labels, whose posterior means are
M2's inputs (Kingma et al. 2014, sec. 3.2). Finding, loading and checking an M1 run, and
turning a data set into M1's features."""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from ..checkpoints import Checkpoint, load_checkpoint
from ..config.base import ConfigError, with_changes
from ..config.m2 import M2Config, M2TrainConfig
from ..data import Dataset, Split
from ..store import POINTER, CheckpointError, RunRecord, shown
from ..trainer import EVAL_BATCH
from ..vae.model import VAE, build_model
from ..vae.objective import ACTIVE_THRESHOLD


def weights_digest(model: nn.Module) -> str:
    """SHA-256 of a model's weights (names, shapes, dtypes and values), independent of the file
    they were read from."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _vae_only(record: RunRecord) -> VAE:
    if record.kind != "vae":
        raise CheckpointError(record.path, f"M1 must be a VAE run, this one is {record.kind}", record.path)
    return build_model(record.model_config)


def load_m1(m1_run: str | Path, device: torch.device | str = "cpu") -> tuple[VAE, Checkpoint]:
    """The trained VAE of an M1 run, in eval mode, and its checkpoint."""
    model, ckpt = load_checkpoint(m1_run, _vae_only)
    return model.to(device).eval(), ckpt


def load_m1_with_digest(m1_run: str | Path) -> tuple[VAE, str]:
    """An M1 run's VAE and the `weights_digest` that identifies it."""
    model = load_m1(m1_run)[0]
    return model, weights_digest(model)


def check_m1(model_config: M2Config, m1: VAE, digest: str, m1_run: str | Path) -> None:
    """Refuse an M1 other than the one the M1+M2 model was trained on (by its `weights_digest`),
    or one whose codes do not fit the model's inputs."""
    name = shown(Path(m1_run).name)
    if not model_config.m1_digest:
        raise ConfigError("m1_digest: this M1+M2 run does not record which M1 it was trained on (the "
                          "digest of its weights), so another VAE in its M1's place could not be told "
                          "apart; train it again to use it")
    if digest != model_config.m1_digest:
        raise ConfigError(f"m1_run: the VAE {name} is not the M1 this model was trained on (its "
                          "weights differ); put that M1 back, or train the M1+M2 model again")
    units, latent = model_config.input_units, m1.config.latent_dim
    if (max(units) >= latent) if units else (model_config.input_features != latent):
        raise ConfigError(f"input_units: the model reads {model_config.input_features} of M1's latent "
                          f"units, which {name} does not have")


def m1_candidates(m1_run: str, m2_run: str | Path | None = None) -> list[Path]:
    """Where an M1+M2 model's M1 VAE may be, in order: `m1_run` as recorded when M2 was trained
    and, for a pair copied elsewhere (as the shipped checkpoints were), the run of the same name
    beside the M2 run `m2_run`."""
    recorded = Path(m1_run)
    beside = Path(m2_run).parent / recorded.name if m2_run is not None else recorded
    return [recorded] if beside == recorded else [recorded, beside]


def find_m1_run(m1_run: str, m2_run: str | Path | None = None) -> Path:
    """The first of `m1_candidates` that holds a run (the one to train a new M1+M2 on)."""
    candidates = m1_candidates(m1_run, m2_run)
    return next((p for p in candidates if os.path.lexists(p / POINTER)), candidates[0])


def find_m1(model_config: M2Config, m1_run: str, m2_run: str | Path | None,
            load: Callable[[Path], tuple[VAE, str]] = load_m1_with_digest) -> tuple[VAE, Path]:
    """The M1 VAE an M1+M2 model was trained on, and its folder: among `m1_candidates`, the run
    whose weights have the digest the model recorded, never merely one of the recorded name.
    `load` gives a run's VAE and digest (the app passes a cached one). Raises `ConfigError` or
    `CheckpointError` saying why no candidate will do."""
    problems = []
    for path in m1_candidates(m1_run, m2_run):
        try:
            m1, digest = load(path)
            check_m1(model_config, m1, digest, path)
            return m1, path
        except (CheckpointError, ConfigError) as exc:
            if not model_config.m1_digest:
                raise
            problems.append(str(exc))
    raise ConfigError(f"m1_run: the M1 VAE this model was trained on (weights digest "
                      f"{model_config.m1_digest[:12]}...) was not found: " + "; ".join(problems))


def m1_of(record: RunRecord, load: Callable[[Path], tuple[VAE, str]] = load_m1_with_digest
          ) -> tuple[VAE, Path] | tuple[None, None]:
    """The M1 VAE of an M1+M2 run and its folder, found by digest; (None, None) for M2 on pixels."""
    if not record.train_config.m1_run:
        return None, None
    return find_m1(record.model_config, record.train_config.m1_run, record.path, load)


@torch.no_grad()
def m1_features(data: Dataset, m1: VAE, name: str, device: torch.device) -> tuple[Dataset, torch.Tensor]:
    """Replace every split's images by the posterior means of the M1 VAE, (N, Z) features;
    also return the posterior standard deviations of the training split, (N, Z)."""
    if tuple(m1.config.image_shape) != tuple(data.image_shape):
        raise ConfigError(f"m1_run: the M1 run {name} takes {m1.config.image_shape} images, but "
                          f"{data.name} images are {data.image_shape}")
    m1 = m1.to(device)

    def encode(split: Split) -> tuple[Split, torch.Tensor]:
        posteriors = [m1.encode(split.images[i:i + EVAL_BATCH].to(device)) for i in range(0, len(split), EVAL_BATCH)]
        std = torch.cat([torch.exp(0.5 * p.logvar) for p in posteriors])
        return Split(torch.cat([p.mu for p in posteriors]), split.labels.to(device)), std
    train, train_std = encode(data.train)
    data = replace(data, train=train, validation=encode(data.validation)[0], test=encode(data.test)[0],
                   source=f"{data.source}, encoded by {name}")
    return data, train_std


def active_units(features: torch.Tensor, m1_run: str) -> tuple[int, ...]:
    """M1's active latent units, Var_x E_q[z_u|x] > ACTIVE_THRESHOLD over the posterior means
    `features` (N, Z). An inactive unit's posterior is the prior: its draws are pure noise."""
    active = (features.var(0) > ACTIVE_THRESHOLD).nonzero().flatten().tolist()
    if not active:
        raise ConfigError(f"m1_units: the M1 run {shown(Path(m1_run).name)} has no active latent unit; use --m1-units all")
    return tuple(active)


def keep_units(data: Dataset, std: torch.Tensor, units: tuple[int, ...]) -> tuple[Dataset, torch.Tensor]:
    """The features (and their standard deviations) of the chosen units only (empty: all)."""
    if not units:
        return data, std
    keep = torch.tensor(units, dtype=torch.long, device=std.device)

    def pick(split: Split) -> Split:
        return Split(split.images.index_select(1, keep), split.labels)
    return (replace(data, train=pick(data.train), validation=pick(data.validation), test=pick(data.test)),
            std.index_select(1, keep))


def features_for(model_config: M2Config, config: M2TrainConfig, data: Dataset, run_dir: str | Path | None,
                 device: torch.device) -> tuple[M2Config, Dataset, torch.Tensor | None]:
    """M1+M2's inputs: the data as M1's features on the units M2 reads, the model config (for a
    new run, M1 is the run `m1_run` names, and the units are chosen here among its active ones
    and recorded with its digest; an existing run finds its M1 by that digest), and the standard
    deviations to sample training features with (None: posterior means)."""
    if model_config.input_features == 0:
        m1_run = find_m1_run(config.m1_run, run_dir)
        m1, record = load_m1(m1_run)
        if record.train_config.dataset != data.name:
            raise ConfigError(f"m1_run: the M1 run {shown(m1_run.name)} was trained on "
                              f"{record.train_config.dataset}, not on {data.name}")
        data, std = m1_features(data, m1, shown(m1_run.name), device)
        units = active_units(data.train.images, config.m1_run) if config.m1_units == "active" else ()
        model_config = with_changes(model_config, input_features=len(units) or data.train.images.shape[1],
                                    input_units=units, likelihood="gaussian", m1_digest=weights_digest(m1))
    else:
        m1, m1_run = find_m1(model_config, config.m1_run, run_dir)
        data, std = m1_features(data, m1, shown(m1_run.name), device)
    check_m1(model_config, m1, model_config.m1_digest, m1_run)
    data, std = keep_units(data, std, model_config.input_units)
    return model_config, data, std if config.m1_features == "sample" else None
