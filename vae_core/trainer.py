"""The training loop: minibatch stochastic gradient ascent on a bound, with early stopping,
checkpoints, resume and progress events.

The loop knows nothing of what is trained: a `Task` (`vae.task.VAETask`, `m2.task.M2Task`)
turns indices into a batch, a batch into a loss and its gradients, and a model into validation
metrics. Progress goes out through callbacks that receive `TrainingEvent`s, so a command-line
progress bar and the app show the same thing; a `threading.Event` (or `stop()`) ends training
cleanly after the current step and leaves a resumable checkpoint.

Under `torchrun` one Trainer runs in each process with a `distributed.Replicas`: every rank
draws the same permutation, trains on its slice of each global batch and averages gradients
with the others; rank 0 alone validates, reports and writes checkpoints (see distributed.py).
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, NamedTuple, Protocol

import torch

from . import checkpoints as ckpts
from .config.base import Config, ConfigError, LoopConfig
from .distributed import Replicas, check_batch_size
from .trainer_state import (check_training_state, flatten_optimizer, make_optimizer, noise_seed, restore_rng,
                            rng_tensors, seed_default_generator, unflatten_optimizer)

# Validation and test scores use batches of this size and noise from this seed, the same every
# epoch, so that epochs compare fairly.
EVAL_BATCH = 1000
EVAL_SEED = 1234
STEP_EVENT_SECONDS = 0.25


class NonFiniteLossError(ArithmeticError):
    """The loss became NaN or infinite; training stopped and the last good checkpoint is kept."""


class SanityCheckError(RuntimeError):
    """The model failed a forward pass on real data before training started."""


@dataclass
class TrainingEvent:
    kind: str                 # "start", "step", "epoch" or "end"
    epoch: int                # the epoch in progress (1-based); on "epoch", the one just finished
    epochs: int               # the configured number of epochs
    step: int                 # steps done in this epoch
    steps_per_epoch: int
    global_step: int
    metrics: dict[str, float] = field(default_factory=dict)
    eta_seconds: float | None = None
    status: str = ""          # on "end": finished, early-stopped or stopped
    run_dir: str | None = None

    def to_json(self) -> str:
        return json.dumps(self.__dict__)


Callback = Callable[[TrainingEvent], None]
Terms = dict[str, torch.Tensor]


class StepResult(NamedTuple):
    loss: torch.Tensor
    terms: Terms             # batch means to report (elbo, recon, kl, ...)
    has_gradients: bool      # True when the step filled the parameters' .grad itself


Step = Callable[[torch.nn.Module, Any, float], StepResult]


class Task(Protocol):
    """What the loop trains: the data, the objective and the validation metric of one kind."""

    kind: str                # the registry's name for it: "vae", "m2"
    num_train: int           # training examples per epoch
    monitor: str             # the validation metric early stopping maximises
    model_config: Config
    config: LoopConfig

    def train_batch(self, indices: torch.Tensor, generator: torch.Generator) -> Any:
        """The batch of the training examples at `indices`; its len() is their number."""

    def kl_weight(self, global_step: int, steps_per_epoch: int) -> float:
        """The weight of the KL term at this step (1: the bound itself)."""

    def loss(self, model: torch.nn.Module, batch: Any, beta: float) -> tuple[torch.Tensor, Terms]:
        """The loss to minimise and the terms to report, through autograd."""

    def step(self, model: torch.nn.Module) -> Step:
        """The training step: `autograd_step(self.loss)` or a path that fills .grad itself."""

    def evaluate(self, model: torch.nn.Module, split: str) -> dict[str, float]:
        """Metrics on "validation" or "test", with EVAL_BATCH and EVAL_SEED."""


def autograd_step(loss: Callable[[torch.nn.Module, Any, float], tuple[torch.Tensor, Terms]],
                  compile: bool = False) -> Step:
    """A step whose gradients autograd computes from `loss`, optionally under torch.compile."""
    loss_fn = torch.compile(loss) if compile else loss

    def step(model: torch.nn.Module, batch: Any, beta: float) -> StepResult:
        value, terms = loss_fn(model, batch, beta)
        return StepResult(value, terms, False)
    return step


class Trainer:
    """Runs a task's training loop on one model; one `fit()` per Trainer."""

    def __init__(self, model: torch.nn.Module, task: Task, run_dir: str | Path | None = None,
                 callbacks: Iterable[Callback] = (), stop_event: threading.Event | None = None,
                 replicas: Replicas | None = None):
        self.replicas = replicas or Replicas.alone()
        if self.replicas.together:
            check_batch_size(task.config.batch_size, self.replicas.world_size)
            if not hasattr(task, "data"):
                raise ConfigError(f"{task.kind}: this kind of model trains in one process only")
        self.model = model
        self.task = task
        self.model_config = task.model_config
        self.config = config = task.config
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.callbacks = list(callbacks)
        self.stop_event = stop_event or threading.Event()
        self.device = next(model.parameters()).device
        self.optimizer = make_optimizer(model, config)
        self.generator = torch.Generator(device=self.device).manual_seed(config.seed)  # the data's order
        self.noise = torch.Generator(device=self.device)  # a step's noise, reseeded every step
        self._term_keys: list[str] = []
        self._group_stop = False
        self.steps_per_epoch = math.ceil(task.num_train / config.batch_size)
        # Progress, all of it saved in checkpoints so that resume continues exactly.
        self.epoch = 0              # completed epochs
        self.step_in_epoch = 0
        self.global_step = 0
        self.permutation: torch.Tensor | None = None
        self.epoch_sums: dict[str, float] = {}
        self.history: list[dict] = []
        self.summary: dict[str, Any] = {"status": "new"}
        self.best_metric = -math.inf
        self.best_epoch = 0
        self.bad_epochs = 0
        self.best_weights: dict[str, torch.Tensor] | None = None
        self.wall_seconds = 0.0

    # --- control ---

    def stop(self) -> None:
        """Ask training to end after the current step (thread-safe)."""
        self.stop_event.set()

    def _emit(self, kind: str, metrics: dict | None = None, eta: float | None = None, status: str = "") -> None:
        if not self.replicas.lead:
            return
        in_progress = kind in ("start", "step")
        event = TrainingEvent(kind, min(self.epoch + in_progress, self.config.epochs),
                              self.config.epochs, self.step_in_epoch, self.steps_per_epoch,
                              self.global_step, metrics or {}, eta, status,
                              str(self.run_dir) if self.run_dir else None)
        for callback in self.callbacks:
            callback(event)

    # --- the loop ---

    def beta(self) -> float:
        return self.task.kl_weight(self.global_step, self.steps_per_epoch)

    def sanity_check(self) -> None:
        """One forward pass on a few training examples, with its own noise so RNG state is untouched."""
        g = torch.Generator(device=self.device).manual_seed(0)
        idx = torch.arange(min(8, self.task.num_train), device=self.device)
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        try:
            with torch.no_grad(), torch.random.fork_rng(devices=devices):
                loss, terms = self.task.loss(self.model, self.task.train_batch(idx, g), self.beta())
        except Exception as exc:
            raise SanityCheckError(f"the model failed on a first batch of training data: {exc}") from exc
        if not torch.isfinite(loss):
            raise SanityCheckError(f"the loss on a first batch is {loss.item()} before any training; "
                                   "check the data range and the learning rate")
        self._term_keys = list(terms)

    def fit(self) -> dict[str, Any]:
        """Train until the epoch budget, early stopping or a stop request; return the summary."""
        if self.config.num_threads:
            torch.set_num_threads(self.config.num_threads)
        self.sanity_check()
        step = self.task.step(self.model)
        self.replicas.broadcast_parameters(self.model)
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        self.replicas.gradient_views(params, len(self._term_keys) + 3)
        self.model.train()
        self.summary["status"] = "running"
        self._emit("start")
        session_start, session_steps = time.perf_counter(), 0
        last_event = 0.0
        while self.epoch < self.config.epochs:
            epoch_start = time.perf_counter()
            if self.step_in_epoch == 0:
                self.permutation = torch.randperm(self.task.num_train, generator=self.generator,
                                                  device=self.device)
                self.epoch_sums = {}
            bs = self.config.batch_size
            self.replicas.shard(self.task, self.permutation, bs)
            while self.step_in_epoch < self.steps_per_epoch:
                # Across processes, a stop asked of any of them arrives with a step's all-reduce.
                if self._group_stop if self.replicas.together else self.stop_event.is_set():
                    return self._finish("stopped")
                start = self.step_in_epoch * bs
                global_batch = self.permutation[start:start + bs]
                rank = self.replicas.rank
                self.noise.manual_seed(noise_seed(self.config.seed, self.global_step, rank, 0))
                # the noise the model draws itself, e.g. the samples of z
                seed_default_generator(self.device, noise_seed(self.config.seed, self.global_step, rank, 1))
                if self.replicas.together:
                    loss, sums, n = self._step_together(step, params, global_batch)
                else:
                    loss, sums, n = self._step_alone(step, global_batch)
                if not math.isfinite(loss):
                    raise NonFiniteLossError(
                        f"loss is {loss} at epoch {self.epoch + 1}, step {self.step_in_epoch + 1} "
                        f"(global step {self.global_step + 1}); training stopped and the last "
                        "checkpoint was kept. Try a smaller learning rate.")
                self.optimizer.step()
                for key, value in sums.items():
                    self.epoch_sums[key] = self.epoch_sums.get(key, 0.0) + value
                self.epoch_sums["n"] = self.epoch_sums.get("n", 0.0) + n
                self.step_in_epoch += 1
                self.global_step += 1
                session_steps += 1
                now = time.perf_counter()
                if now - last_event > STEP_EVENT_SECONDS or self.step_in_epoch == self.steps_per_epoch:
                    last_event = now
                    per_step = (now - session_start) / session_steps
                    self._emit("step", self._running_metrics(), per_step * self._steps_left())
            self.wall_seconds += time.perf_counter() - epoch_start
            if self._end_epoch():
                return self._finish("early-stopped")
        return self._finish("finished")

    def _step_alone(self, step: Step, indices: torch.Tensor) -> tuple[float, dict[str, float], int]:
        """One process's step on the whole batch: gradients in .grad; the loss, the batch's
        sums of the reported terms and its size."""
        batch = self.task.train_batch(indices, self.noise)
        loss, terms, has_gradients = step(self.model, batch, self.beta())
        value = loss.item()
        if not math.isfinite(value):
            return value, {}, 0
        if not has_gradients:
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
        n = len(batch)
        return value, {key: term.item() * n for key, term in terms.items()}, n

    def _step_together(self, step: Step, params: list[torch.Tensor],
                       global_batch: torch.Tensor) -> tuple[float, dict[str, float], int]:
        """This rank's step on its slice of the global batch, then one all-reduce that averages
        the gradients and sums the terms, the sizes and the stop requests of all ranks: the
        loss and the sums are the whole global batch's, the same on every rank."""
        indices = self.replicas.local_indices(self.step_in_epoch, global_batch, self.config.batch_size)
        n = len(indices)
        extras = torch.zeros(len(self._term_keys) + 3, device=self.device)
        if n:
            batch = self.task.train_batch(indices, self.noise)
            loss, terms, has_gradients = step(self.model, batch, self.beta())
            if not has_gradients:
                self.optimizer.zero_grad(set_to_none=False)  # .grad stays a view of the reduced buffer
                loss.backward()
            values = [loss.detach()] + [terms[key].detach() for key in self._term_keys]
            extras[:-2] = torch.stack([v.float().reshape(()) for v in values]) * n
        else:
            self.replicas.zero_gradients()
        extras[-2] = n
        extras[-1] = float(self.stop_event.is_set())
        # A rank's gradients are the mean over its n examples; weighted by n * N / (global
        # batch), their average over the N ranks is the mean over the global batch.
        total = self.replicas.reduce_step(params, n * self.replicas.world_size / len(global_batch), extras)
        self._group_stop = total[-1] > 0
        count = int(round(total[-2]))
        sums = {key: value for key, value in zip(self._term_keys, total[1:-2])}
        return total[0] / count, sums, count

    def _steps_left(self) -> int:
        return (self.config.epochs - self.epoch) * self.steps_per_epoch - self.step_in_epoch

    def _running_metrics(self) -> dict[str, float]:
        n = self.epoch_sums.get("n", 0.0) or 1.0
        return {f"train_{k}": v / n for k, v in self.epoch_sums.items() if k != "n"}

    def _end_epoch(self) -> bool:
        """Validate, record, checkpoint; return True when early stopping says stop (rank 0
        decides for all ranks)."""
        if not self.replicas.lead:
            self.epoch += 1
            self.step_in_epoch = 0
            return self.replicas.broadcast_flag(False)
        t0 = time.perf_counter()
        self.model.eval()
        val = self.task.evaluate(self.model, "validation")
        self.model.train()
        self.epoch += 1
        self.step_in_epoch = 0
        self.wall_seconds += time.perf_counter() - t0
        record = {"epoch": self.epoch, **self._running_metrics(),
                  **{f"val_{k}": v for k, v in val.items()},
                  "beta": self.beta(), "learning_rate": self.optimizer.param_groups[0]["lr"],
                  "examples_seen": self.global_step * self.config.batch_size,
                  "wall_seconds": self.wall_seconds}
        self.history.append(record)
        monitor = val[self.task.monitor]
        if monitor > self.best_metric:
            self.best_metric, self.best_epoch, self.bad_epochs = monitor, self.epoch, 0
            self.best_weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        else:
            self.bad_epochs += 1
        stop = 0 < self.config.patience <= self.bad_epochs
        self.summary.update(status="running", best_epoch=self.best_epoch)
        if not stop:
            self.save()
        self._emit("epoch", record, None)
        return self.replicas.broadcast_flag(stop)

    def _finish(self, status: str) -> dict[str, Any]:
        if not self.replicas.lead:
            self.summary.update(status=status, epochs_done=self.epoch)
            return dict(self.summary)
        if status != "stopped":
            if self.best_weights is not None:
                self.model.load_state_dict(self.best_weights)
            self.model.eval()
            test = self.task.evaluate(self.model, "test")
            self.summary.update({f"test_{k}": v for k, v in test.items()})
            val = {k: v for k, v in self.history[self.best_epoch - 1].items() if k.startswith("val_")} \
                if self.best_epoch else {}
            self.summary.update(val)
        self.summary.update(status=status, best_epoch=self.best_epoch, epochs_done=self.epoch,
                            wall_seconds=self.wall_seconds)
        self.save()
        self._emit("end", dict(self.summary), 0.0, status)
        return dict(self.summary)

    # --- checkpoints ---

    def save(self) -> None:
        if self.run_dir is None or not self.replicas.lead:
            return
        opt_tensors, opt_meta = flatten_optimizer(self.optimizer.state_dict())
        tensors = {**opt_tensors, **rng_tensors(self.generator)}
        if self.permutation is not None and self.step_in_epoch > 0:
            tensors["permutation"] = self.permutation
        meta = {"epoch": self.epoch, "step_in_epoch": self.step_in_epoch, "global_step": self.global_step,
                "epoch_sums": self.epoch_sums, "best_metric": self.best_metric, "best_epoch": self.best_epoch,
                "bad_epochs": self.bad_epochs, "wall_seconds": self.wall_seconds, "optimizer": opt_meta}
        ckpts.save_checkpoint(self.run_dir, kind=self.task.kind, model_config=self.model_config,
                              train_config=self.config, weights=self.model.state_dict(),
                              history={"epochs": self.history, "summary": self.summary},
                              best_weights=None if self._model_is_best() else self.best_weights,
                              trainer_tensors=tensors, trainer_meta=meta)

    def _model_is_best(self) -> bool:
        """True when the model's weights are the best-validation ones, so they need no copy."""
        return self.best_epoch == self.epoch and self.step_in_epoch == 0 \
            or self.summary.get("status") in ("finished", "early-stopped")

    def restore(self, ckpt: ckpts.Checkpoint) -> None:
        """Continue from a checkpoint's optimizer, RNG and progress counters."""
        if ckpt.trainer_meta is None or ckpt.trainer_tensors is None:
            raise ckpts.CheckpointError(ckpt.path, "has no training state to resume from "
                                                   "(it was saved without the optimizer)", ckpt.path)
        meta, tensors = ckpt.trainer_meta, ckpt.trainer_tensors
        problem = check_training_state(meta, tensors, self.optimizer, self.generator, self.task.num_train,
                                       self.steps_per_epoch, len(ckpt.epochs))
        if problem:
            state = ckpt.state or ckpt.path
            raise ckpts.CheckpointError(state / "trainer.safetensors", problem, ckpt.path)
        self.optimizer.load_state_dict(unflatten_optimizer(
            {k: v.to(self.device) for k, v in tensors.items()}, meta["optimizer"]))
        restore_rng(tensors, self.generator)
        self.epoch, self.step_in_epoch = meta["epoch"], meta["step_in_epoch"]
        self.global_step, self.epoch_sums = meta["global_step"], meta["epoch_sums"]
        self.best_metric, self.best_epoch = meta["best_metric"], meta["best_epoch"]
        self.bad_epochs, self.wall_seconds = meta["bad_epochs"], meta["wall_seconds"]
        self.permutation = tensors["permutation"].to(self.device) if "permutation" in tensors else None
        self.history = list(ckpt.epochs)
        self.summary = dict(ckpt.summary)
        self.best_weights = ckpt.best_weights
        if self.best_weights is None and self.best_epoch > 0:
            self.best_weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        if self.summary.get("status") in ("finished", "early-stopped"):
            self.bad_epochs = 0  # an explicit resume of a finished run gets a fresh patience
