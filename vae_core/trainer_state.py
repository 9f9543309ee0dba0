"""The optimizer and the random number generators as a checkpoint stores them: tensors for a
safetensors file and JSON-ready metadata, never a pickle.

Two kinds of randomness drive training. The order of the data (each epoch's permutation) comes
from one generator seeded with the run's seed; a checkpoint stores its state (`rng.data`), the
same on every process of a distributed run, so that a resumed run meets the same global batches
in the same order whether it runs in one process or in N. The noise of a step (dynamic
binarisation, the samples of z) is drawn afresh from `noise_seed(seed, global_step, rank, ...)`: it
needs no saved state, a run stopped anywhere and resumed with the same number of processes
repeats the uninterrupted run exactly, and with a different number of processes the same
batches get other (equally valid) noise. `rng.cpu` (and `rng.cuda`) are the process's global
generators at the save, kept so that checkpoints stay readable by earlier versions.
"""

from __future__ import annotations

import json
from typing import Any

import torch

from .config.base import LoopConfig
from .store import is_number


def make_optimizer(model: torch.nn.Module, config: LoopConfig) -> torch.optim.Optimizer:
    """Adam or Adagrad, fused into one kernel per step where torch supports it; the arithmetic
    is the same."""
    cls = torch.optim.Adagrad if config.optimizer == "adagrad" else torch.optim.Adam
    try:
        return cls(model.parameters(), lr=config.learning_rate, fused=True)
    except (RuntimeError, TypeError, ValueError):  # an older torch or a device without a fused kernel
        return cls(model.parameters(), lr=config.learning_rate)


_MASK64 = (1 << 64) - 1


def noise_seed(seed: int, global_step: int, rank: int = 0, stream: int = 0) -> int:
    """The seed of one step's noise on one process: splitmix64 of (seed, step, rank, stream), so
    that nearby steps and ranks get unrelated streams. `stream` tells apart the generators of one
    step (the data's noise and the model's), which must not start from the same seed: two
    Mersenne twisters seeded alike draw the same numbers."""
    x = (seed * 0x9E3779B97F4A7C15 + global_step * 0xD1B54A32D192ED03 + rank * 0x8CB92BA72F3D8DD7
         + stream * 0xA0761D6478BD642F + 1) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return (x ^ (x >> 31)) & ((1 << 63) - 1)


def seed_default_generator(device: torch.device, seed: int) -> None:
    """Seed the generator that random operations on `device` use by default. Cheaper than
    `torch.manual_seed`, which also queues a seeding of every GPU, at each call, until CUDA starts."""
    if device.type == "cuda":
        torch.cuda.default_generators[device.index if device.index is not None
                                      else torch.cuda.current_device()].manual_seed(seed)
    elif device.type == "mps":
        torch.mps.manual_seed(seed)
    else:
        torch.default_generator.manual_seed(seed)


def rng_tensors(generator: torch.Generator) -> dict[str, torch.Tensor]:
    """The global RNG states and the data generator's."""
    out = {"rng.cpu": torch.get_rng_state(), "rng.data": generator.get_state()}
    if torch.cuda.is_available():
        out["rng.cuda"] = torch.cuda.get_rng_state()
    return out


def restore_rng(tensors: dict[str, torch.Tensor], generator: torch.Generator) -> None:
    torch.set_rng_state(tensors["rng.cpu"])
    generator.set_state(tensors["rng.data"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])


def flatten_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    """Optimizer state_dict -> safetensors-ready tensors and JSON-ready rest."""
    tensors, scalars = {}, {}
    for idx, values in state["state"].items():
        for key, value in values.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{idx}.{key}"] = value
            else:
                scalars[f"{idx}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    """The inverse of `flatten_optimizer`: an optimizer state_dict."""
    state: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, idx, key = name.split(".", 2)
            state.setdefault(int(idx), {})[key] = value
    for name, value in meta.get("scalars", {}).items():
        idx, key = name.split(".", 1)
        state.setdefault(int(idx), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _same_kind(saved: Any, fresh: Any) -> bool:
    """A saved hyper-parameter of the kind the fresh optimizer has (JSON turns tuples to lists)."""
    if isinstance(fresh, bool) or fresh is None:
        return saved is None or isinstance(saved, bool)
    if isinstance(fresh, (int, float)):
        return is_number(saved)
    if isinstance(fresh, (tuple, list)):
        return isinstance(saved, list) and len(saved) == len(fresh) and all(is_number(v) for v in saved)
    return type(saved) is type(fresh)


def check_training_state(meta: Any, tensors: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer,
                         generator: torch.Generator, num_train: int, steps_per_epoch: int,
                         epochs_recorded: int) -> str | None:
    """Why a checkpoint's training state (trainer.safetensors: its metadata and tensors) cannot
    resume this optimizer and this training set, naming the field; None when it can."""
    if not isinstance(meta, dict):
        return "training metadata: expected a JSON object"
    for key in ("epoch", "step_in_epoch", "global_step", "best_epoch", "bad_epochs"):
        if not _whole(meta.get(key)):
            return f"{key}: expected a whole number >= 0, got {json.dumps(meta.get(key))[:40]}"
    for key in ("best_metric", "wall_seconds"):
        if not is_number(meta.get(key)):
            return f"{key}: expected a number, got {json.dumps(meta.get(key))[:40]}"
    if meta["epoch"] != epochs_recorded:
        return f"epoch: {meta['epoch']}, but history.json records {epochs_recorded} epochs"
    if meta["best_epoch"] > meta["epoch"]:
        return f"best_epoch: {meta['best_epoch']} is after the last epoch, {meta['epoch']}"
    if meta["step_in_epoch"] >= steps_per_epoch:
        return f"step_in_epoch: {meta['step_in_epoch']}, but an epoch has {steps_per_epoch} steps"
    sums = meta.get("epoch_sums")
    if not isinstance(sums, dict) or not all(is_number(v) for v in sums.values()):
        return "epoch_sums: expected an object of numbers"
    saved = meta.get("optimizer")
    if not isinstance(saved, dict) or not isinstance(saved.get("param_groups"), list) \
            or not isinstance(saved.get("scalars", {}), dict):
        return "optimizer: expected {\"param_groups\": [...], \"scalars\": {...}}"
    fresh_groups = optimizer.state_dict()["param_groups"]
    if len(saved["param_groups"]) != len(fresh_groups):
        return f"optimizer.param_groups: {len(saved['param_groups'])} groups, the model has {len(fresh_groups)}"
    for group, fresh in zip(saved["param_groups"], fresh_groups):
        # Keys a newer torch added may be absent (the optimizer fills in their defaults).
        if not isinstance(group, dict) or not set(group) <= set(fresh) or group.get("params") != fresh["params"]:
            return "optimizer.param_groups: not those of this model's optimizer"
        for key, value in group.items():
            if key != "params" and not _same_kind(value, fresh[key]):
                return f"optimizer.param_groups.{key}: got {json.dumps(value)[:40]}"
    if saved.get("scalars"):
        return "optimizer.scalars: this optimizer keeps no scalars"
    params = [p for group in optimizer.param_groups for p in group["params"]]
    # The state a step gives each parameter, e.g. Adam: step (a scalar), exp_avg and exp_avg_sq.
    probe = {"adam": ("step", "exp_avg", "exp_avg_sq"), "adagrad": ("step", "sum")}
    names = probe["adagrad" if isinstance(optimizer, torch.optim.Adagrad) else "adam"]
    state = {name: t for name, t in tensors.items() if name.startswith("optimizer.")}
    if state:
        expected = {f"optimizer.{i}.{key}": (() if key == "step" else tuple(p.shape))
                    for i, p in enumerate(params) for key in names}
        if set(state) != set(expected):
            odd = sorted(set(state) ^ set(expected))[:3]
            return f"optimizer state: does not match this model's parameters ({', '.join(odd)})"
        for name, shape in expected.items():
            if tuple(state[name].shape) != shape or state[name].dtype != torch.float32:
                return f"{name}: expected float32 of shape {shape}"
            if not torch.isfinite(state[name]).all():
                return f"{name}: contains NaN or infinite values"
    for name, reference in (("rng.cpu", torch.get_rng_state()), ("rng.data", generator.get_state())):
        value = tensors.get(name)
        if value is None:
            return f"{name}: missing"
        if value.dtype != torch.uint8 or value.shape != reference.shape:
            return f"{name}: expected uint8 of shape {tuple(reference.shape)}"
    permutation = tensors.get("permutation")
    if meta["step_in_epoch"] and permutation is None:
        return "permutation: missing, but the run stopped inside an epoch"
    if permutation is not None and (permutation.dtype != torch.int64 or permutation.shape != (num_train,)
                                    or not torch.equal(permutation.sort().values, torch.arange(num_train))):
        return f"permutation: expected a permutation of the {num_train} training examples"
    unknown = sorted(set(tensors) - set(state) - {"rng.cpu", "rng.data", "rng.cuda", "permutation"})
    if unknown:
        return f"unexpected tensors {', '.join(unknown[:3])}"
    return None
