"""The kinds of run and their config classes: what the run store validates a run's
`config.json` against. `registry` adds each kind's model builder and training task."""

from __future__ import annotations

from .base import Config
from .m2 import M2Config, M2TrainConfig
from .vae import ModelConfig, TrainConfig

CONFIG_CLASSES: dict[str, tuple[type[Config], type[Config]]] = {
    "vae": (ModelConfig, TrainConfig),
    "m2": (M2Config, M2TrainConfig),
}


def kind_of(train_config: Config) -> str:
    """The kind whose training config this is."""
    for kind, (_, train_cls) in CONFIG_CLASSES.items():
        if type(train_config) is train_cls:
            return kind
    raise TypeError(f"{type(train_config).__name__} is not the training config of any kind")
