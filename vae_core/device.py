"""Choosing the torch device a config asks for."""

from __future__ import annotations

import torch

from .config.base import ConfigError


def resolve_device(name: str) -> torch.device:
    """`auto` picks cuda, then mps, then cpu; a device that is asked for but absent is a
    `ConfigError`."""
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: cuda was asked for but no CUDA GPU is available")
    if name == "mps" and not mps:
        raise ConfigError("device: mps was asked for but is not available")
    return torch.device(name)
