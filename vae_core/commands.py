"""The library's three entry points, for the command line, the app's jobs and scripts: train a
new run, resume one, evaluate one. Each works for every kind in the registry; `train` and
`resume` also run as one of the processes of a `torchrun` launch (`launch`), for the VAE."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

from . import checkpoints as ckpts
from .config.base import Config, ConfigError, with_changes
from .device import resolve_device
from .distributed import Launch, Replicas, check_batch_size, rank_device
from .config.kinds import kind_of
from .registry import KINDS, check_training_memory, load_model
from .store import read_record
from .trainer import Callback, Trainer


def check_launch(kind: str, config: Config, launch: Launch | None) -> None:
    """A `ConfigError` when this kind and config cannot train across the launch's processes."""
    if launch is None:
        return
    if kind != "vae":
        raise ConfigError(f"{kind}: trains in one process only (its labelled batches are drawn from the "
                          "whole training set at every step, which a process holding a shard of it cannot "
                          "serve); run it without torchrun")
    check_batch_size(config.batch_size, launch.world_size)


def _join(launch: Launch | None, device: torch.device) -> tuple[Replicas, torch.device]:
    if launch is None:
        return Replicas.alone(), device
    device = rank_device(device, launch)
    return Replicas.join(launch, device), device


def train(model_config: Config, config: Config, run_dir: str | Path | None = None,
          data_root: str | Path | None = None, callbacks: Iterable[Callback] = (),
          stop_event: threading.Event | None = None, launch: Launch | None = None) -> Trainer:
    """Build, train and checkpoint a model of the kind the configs are for (into `run_dir`,
    unless None); returns the finished Trainer (its model, history and summary). Under
    torchrun (`launch`) every process calls this; rank 0 alone writes into `run_dir` and
    calls `callbacks`, and its Trainer holds the result."""
    check_launch(kind_of(config), config, launch)
    kind = KINDS[kind_of(config)]
    replicas, device = _join(launch, resolve_device(config.device))
    try:
        if not replicas.lead:
            run_dir, callbacks = None, ()
        task = kind.make_task(model_config, config, data_root, device, run_dir)
        check_training_memory(kind_of(config), task.model_config, task.config)
        torch.manual_seed(config.seed)
        model = kind.build_model(task.model_config).to(device)
        trainer = Trainer(model, task, run_dir, callbacks, stop_event, replicas)
        trainer.fit()
    finally:
        replicas.leave()
    return trainer


def resume(run_dir: str | Path, epochs: int | None = None, data_root: str | Path | None = None,
           callbacks: Iterable[Callback] = (), stop_event: threading.Event | None = None,
           device: str | None = None, num_threads: int | None = None,
           learning_rate: float | None = None, launch: Launch | None = None) -> Trainer:
    """Continue a stopped run (or extend a finished one to `epochs`) in place, curves and all;
    `device` and `num_threads` may differ from the first session's (the results do not).
    A new `learning_rate` applies from the next step on (the optimiser keeps its moments); the
    config then holds it, and every epoch's record in the history holds the one it used.
    Under torchrun (`launch`) every process reads the run folder (so all of them must see it,
    e.g. on a shared file system) and rank 0 alone writes it; the number of processes may
    differ from the first session's."""
    changes = dict(epochs=epochs, device=device, num_threads=num_threads, learning_rate=learning_rate)
    changes = {k: v for k, v in changes.items() if v is not None}
    record = read_record(run_dir)
    check_training_memory(record.kind, record.model_config, with_changes(record.train_config, **changes))
    check_launch(record.kind, with_changes(record.train_config, **changes), launch)
    model, ckpt = load_model(run_dir, with_training_state=True)
    config = with_changes(ckpt.train_config, **changes)
    replicas, dev = _join(launch, resolve_device(config.device))
    try:
        writes = run_dir if replicas.lead else None
        model = model.to(dev)
        task = KINDS[ckpt.kind].make_task(ckpt.model_config, config, data_root, dev, writes)
        trainer = Trainer(model, task, writes, callbacks if replicas.lead else (), stop_event, replicas)
        trainer.restore(ckpt)
        for group in trainer.optimizer.param_groups:  # the saved state carries the old step size
            group["lr"] = config.learning_rate
        if trainer.epoch >= config.epochs:
            raise ConfigError(f"epochs: the run already has {trainer.epoch} epochs; ask for more to resume")
        trainer.fit()
    finally:
        replicas.leave()
    return trainer


def evaluate(run_dir: str | Path, data_root: str | Path | None = None, device: str = "auto", save: bool = True,
             num_importance_samples: int = 5000, batch_size: int = 100,
             progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """A run's test metrics: for a VAE the ELBO, the importance-sampled log p(x) (k =
    `num_importance_samples`), active units and KL per dimension; for M2 its accuracy, error,
    bound and generative accuracy. Recorded in the run's summary unless `save` is False."""
    dev = resolve_device(device)
    model, ckpt = load_model(run_dir, dev)
    result = KINDS[ckpt.kind].evaluate_test(model, ckpt, data_root, dev, num_importance_samples=num_importance_samples,
                                            batch_size=batch_size, progress=progress)
    if save:
        ckpts.update_summary(run_dir, **result)
    return result
