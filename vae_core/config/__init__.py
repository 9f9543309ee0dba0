"""Configuration: the validated base every config is built on (`base`), each kind's model and
training configs (`vae`, `m2`), and the map from a run's kind to them (`kinds`). None of it
imports torch, so the run store, the command line's flags and the Train form use it freely.

The names are also importable from here: `from vae_core.config import ModelConfig`.
"""

from .base import (Config, ConfigError, LoopConfig, Setting, flag_settings, from_dict, setting, settings,
                   to_dict, with_changes)
from .kinds import CONFIG_CLASSES, kind_of
from .m2 import M2Config, M2TrainConfig
from .vae import ModelConfig, TrainConfig

__all__ = ["CONFIG_CLASSES", "Config", "ConfigError", "LoopConfig", "M2Config", "M2TrainConfig", "ModelConfig",
           "Setting", "TrainConfig", "flag_settings", "from_dict", "kind_of", "setting", "settings", "to_dict",
           "with_changes"]
