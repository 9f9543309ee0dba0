"""M1+M2's first stage: M1 is a plain VAE, trained without labels, whose posterior means are
M2's inputs (Kingma et al. 2014, sec. 3.2). Finding, loading and checking an M1 run, and
turning a data set into M1's features."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from ..checkpoints import load_weights, read_checkpoint
from ..config.base import ConfigError, with_changes
from ..config.m2 import M2Config, M2TrainConfig
from ..data import Dataset, Split
from ..store import POINTER, CheckpointError, RunRecord
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


def check_m1(model_config: M2Config, digest: str, m1_run: str | Path) -> None:
    """Refuse an M1 (by its `weights_digest`) other than the one the M1+M2 model was trained on,
    when that was recorded."""
    if model_config.m1_digest and digest != model_config.m1_digest:
        raise ConfigError(f"m1_run: the VAE in {m1_run} is not the M1 this model was trained on (its "
                          "weights differ); put that M1 back there, or train the M1+M2 model again")


def find_m1_run(m1_run: str, m2_run: str | Path | None = None) -> Path:
    """The folder of an M1+M2 model's M1 VAE: `m1_run` as recorded when M2 was trained or,
    when no run is there (the pair was copied elsewhere, as the shipped checkpoints were), the
    folder of the same name beside the M2 run `m2_run`."""
    recorded = Path(m1_run)
    if m2_run is None or (recorded / POINTER).is_file():
        return recorded
    beside = Path(m2_run).parent / recorded.name
    return beside if (beside / POINTER).is_file() else recorded


def load_m1(m1_run: str | Path, device: torch.device | str = "cpu") -> tuple[VAE, RunRecord]:
    """The trained VAE of an M1 run, in eval mode, and its record."""
    ckpt = read_checkpoint(m1_run)
    if ckpt.kind != "vae":
        raise CheckpointError(ckpt.path, f"M1 must be a VAE run, this one is {ckpt.kind}")
    model = load_weights(build_model(ckpt.model_config), ckpt)
    return model.to(device).eval(), ckpt


def m1_of(record: RunRecord) -> Path | None:
    """The M1 run folder of an M1+M2 run (None for M2 on pixels)."""
    if not record.train_config.m1_run:
        return None
    return find_m1_run(record.train_config.m1_run, record.path)


@torch.no_grad()
def m1_features(data: Dataset, m1_run: str | Path, device: torch.device) -> tuple[Dataset, torch.Tensor, str]:
    """Replace every split's images by the posterior means of the M1 VAE, (N, Z) features;
    also return the posterior standard deviations of the training split, (N, Z), and the
    `weights_digest` of M1."""
    m1, record = load_m1(m1_run, device)
    if record.train_config.dataset != data.name:
        raise ConfigError(f"m1_run: the M1 run {m1_run} was trained on {record.train_config.dataset}, "
                          f"not on {data.name}")

    def encode(split: Split) -> tuple[Split, torch.Tensor]:
        posteriors = [m1.encode(split.images[i:i + EVAL_BATCH].to(device)) for i in range(0, len(split), EVAL_BATCH)]
        std = torch.cat([torch.exp(0.5 * p.logvar) for p in posteriors])
        return Split(torch.cat([p.mu for p in posteriors]), split.labels.to(device)), std
    train, train_std = encode(data.train)
    data = replace(data, train=train, validation=encode(data.validation)[0], test=encode(data.test)[0],
                   source=f"{data.source}, encoded by {Path(m1_run).name}")
    return data, train_std, weights_digest(m1)


def active_units(features: torch.Tensor, m1_run: str) -> tuple[int, ...]:
    """M1's active latent units, Var_x E_q[z_u|x] > ACTIVE_THRESHOLD over the posterior means
    `features` (N, Z). An inactive unit's posterior is the prior: its draws are pure noise."""
    active = (features.var(0) > ACTIVE_THRESHOLD).nonzero().flatten().tolist()
    if not active:
        raise ConfigError(f"m1_units: the M1 run {m1_run} has no active latent unit; use --m1-units all")
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
    new run, the units are chosen here among M1's active ones and recorded with M1's digest),
    and the standard deviations to sample training features with (None: posterior means)."""
    m1_run = find_m1_run(config.m1_run, run_dir)
    data, std, digest = m1_features(data, m1_run, device)
    width = data.train.images.shape[1]
    if model_config.input_features == 0:
        units = active_units(data.train.images, config.m1_run) if config.m1_units == "active" else ()
        model_config = with_changes(model_config, input_features=len(units) or width, input_units=units,
                                    likelihood="gaussian", m1_digest=digest)
    if model_config.input_units and max(model_config.input_units) >= width:
        raise ConfigError(f"input_units: the model reads M1's unit {max(model_config.input_units)}, but "
                          f"the M1 run has {width} latent units")
    data, std = keep_units(data, std, model_config.input_units)
    if model_config.input_features != data.train.images.shape[1]:
        raise ConfigError(f"input_features: the M1 run gives {data.train.images.shape[1]} features, "
                          f"the model expects {model_config.input_features}")
    check_m1(model_config, digest, m1_run)
    return model_config, data, std if config.m1_features == "sample" else None
