"""From a run's kind to what trains and loads it: config classes, model builder, training task
and test evaluation. Adding a model family is adding an entry here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from . import checkpoints as ckpts
from .config.base import Config
from .config.kinds import CONFIG_CLASSES
from .m2 import task as m2_task
from .m2.model import build_m2
from .trainer import Task
from .vae import task as vae_task
from .vae.model import build_model


@dataclass(frozen=True)
class Kind:
    model_config: type[Config]
    train_config: type[Config]
    build_model: Callable[[Any], torch.nn.Module]
    # (model config, train config, data root, device, run folder or None) -> the training task
    make_task: Callable[..., Task]
    # (model, run record, data root, device, **options) -> test metrics for the run's summary
    evaluate_test: Callable[..., dict[str, Any]]


KINDS: dict[str, Kind] = {
    "vae": Kind(*CONFIG_CLASSES["vae"], build_model, vae_task.make_task, vae_task.evaluate_test),
    "m2": Kind(*CONFIG_CLASSES["m2"], build_m2, m2_task.make_task, m2_task.evaluate_test),
}


def build_from_checkpoint(ckpt: ckpts.Checkpoint, weights: ckpts.Tensors | None = None,
                          device: str | torch.device = "cpu") -> torch.nn.Module:
    """Rebuild a checkpoint's model from its config and load its weights (or `weights`),
    checked against the model; in eval mode on `device`."""
    model = KINDS[ckpt.kind].build_model(ckpt.model_config)
    return ckpts.load_weights(model, ckpt, weights).to(device).eval()


def load_model(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, ckpts.Checkpoint]:
    """The trained model of a run, in eval mode, and its checkpoint."""
    ckpt = ckpts.read_checkpoint(run_dir)
    return build_from_checkpoint(ckpt, device=device), ckpt
