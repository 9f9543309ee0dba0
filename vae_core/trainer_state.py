"""The optimizer and the random number generators as a checkpoint stores them: tensors for a
safetensors file and JSON-ready metadata, never a pickle."""

from __future__ import annotations

import torch

from .config.base import LoopConfig


def make_optimizer(model: torch.nn.Module, config: LoopConfig) -> torch.optim.Optimizer:
    """Adam or Adagrad, fused into one kernel per step where torch supports it; the arithmetic
    is the same."""
    cls = torch.optim.Adagrad if config.optimizer == "adagrad" else torch.optim.Adam
    try:
        return cls(model.parameters(), lr=config.learning_rate, fused=True)
    except (RuntimeError, TypeError, ValueError):  # an older torch or a device without a fused kernel
        return cls(model.parameters(), lr=config.learning_rate)


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
