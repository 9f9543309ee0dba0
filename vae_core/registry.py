"""From a run's kind to what trains and loads it: config classes, model builder, training task,
test evaluation and the memory a training step takes. Adding a model family is adding an entry
here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from . import checkpoints as ckpts
from .budget import over_budget
from .config.base import Config, ConfigError
from .config.kinds import CONFIG_CLASSES
from .m2 import task as m2_task
from .m2.model import build_m2
from .store import RunRecord
from .trainer import Task
from .vae import task as vae_task
from .vae.model import build_model

# Training keeps, besides the weights, their gradients, Adam's two moments and a copy of the best
# weights; and for each value a step computes, the value and its gradient.
TRAINING_COPIES = 5
FLOAT_BYTES = 4


@dataclass(frozen=True)
class Kind:
    model_config: type[Config]
    train_config: type[Config]
    build_model: Callable[[Any], torch.nn.Module]
    # (model config, train config, data root, device, run folder or None) -> the training task
    make_task: Callable[..., Task]
    # (model, run record, data root, device, **options) -> test metrics for the run's summary
    evaluate_test: Callable[..., dict[str, Any]]
    # (model config, train config) -> values one training step computes (for the memory estimate)
    step_values: Callable[[Any, Any], int]


KINDS: dict[str, Kind] = {
    "vae": Kind(*CONFIG_CLASSES["vae"], build_model, vae_task.make_task, vae_task.evaluate_test,
                vae_task.step_values),
    "m2": Kind(*CONFIG_CLASSES["m2"], build_m2, m2_task.make_task, m2_task.evaluate_test, m2_task.step_values),
}


def build_record(record: RunRecord) -> torch.nn.Module:
    """The model of a run's kind and config (weights not loaded)."""
    return KINDS[record.kind].build_model(record.model_config)


def training_bytes(kind: str, model_config: Config, train_config: Config) -> int:
    """About the memory training takes, from the configs alone (the model is built on the meta
    device): the weights and what the optimiser keeps, and one step's values with their gradients."""
    with torch.device("meta"):
        weights = sum(p.numel() for p in KINDS[kind].build_model(model_config).parameters())
    values = KINDS[kind].step_values(model_config, train_config)
    return FLOAT_BYTES * (TRAINING_COPIES * weights + 2 * values)


def check_training_memory(kind: str, model_config: Config, train_config: Config) -> None:
    """A `ConfigError` when training these configs would not fit the memory budget."""
    problem = over_budget(training_bytes(kind, model_config, train_config), "training this model")
    if problem:
        raise ConfigError(f"{problem}; choose fewer or smaller hidden layers, a smaller batch or fewer samples")


def load_model(run_dir: str | Path, device: str | torch.device = "cpu",
               with_training_state: bool = False) -> tuple[torch.nn.Module, ckpts.Checkpoint]:
    """The trained model of a run, in eval mode, and its checkpoint, every file checked before
    use (see `checkpoints.load_checkpoint`)."""
    model, ckpt = ckpts.load_checkpoint(run_dir, build_record, with_training_state)
    return model.to(device).eval(), ckpt
