"""The base of every config: a frozen, strictly typed pydantic model whose fields carry their
help text, bounds, choices, a label and the Train form's section.

Configs are stored as JSON in every run; a model is rebuilt from its config alone. The command
line's flags, the Train form and the jobs' hand-over to a training process are all built from
these declarations (`settings`), so the three never disagree and validation lives here only.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

SECTIONS = ("model", "data", "objective", "optimiser", "advanced")


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range; the message names the field."""


def setting(default: Any, help: str, *, low: float | None = None, high: float | None = None,
            label: str | None = None, section: str | None = None, set_by_training: bool = False,
            choice_labels: dict[str, str] | None = None) -> Any:
    """A config field: its default, help text and bounds; `label` and `section` place it on the
    Train form (no section: not on the form, e.g. the image size, which follows the dataset), and
    `choice_labels` says in plain words what each of its choices is there;
    `set_by_training`: recorded when training starts, never chosen (no flag, no widget)."""
    assert section is None or section in SECTIONS, section
    return Field(default, description=help, ge=low, le=high,
                 json_schema_extra={"label": label, "section": section, "set_by_training": set_by_training,
                                    "choice_labels": choice_labels})


class Config(BaseModel):
    """Frozen and strict: 3 is accepted for a float, but not 3.0 for an int, "3" for a number or
    true for a number; unknown fields are refused. Errors are `ConfigError`s naming the field."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True, allow_inf_nan=False,
                              validate_default=True)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise ConfigError(_first_problem(type(self), exc)) from None


def _first_problem(cls: type, exc: ValidationError) -> str:
    error = exc.errors()[0]
    message = error["msg"].removeprefix("Value error, ")
    if not error["loc"]:
        return message
    name = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"{cls.__name__}: unknown field {name}"
    return f"{name}: {message[0].lower()}{message[1:]}, got {error['input']!r}"


C = TypeVar("C", bound=Config)


@dataclass(frozen=True)
class Setting:
    """What the command line and the Train form need to know of one field."""
    name: str
    kind: type                    # bool, int, float, str or tuple
    default: Any
    help: str
    choices: tuple | None
    low: float | None
    high: float | None
    label: str
    section: str | None
    set_by_training: bool
    choice_labels: dict[str, str] | None = None  # the form's words for each choice


def settings(cls: type[Config]) -> list[Setting]:
    """The fields of a config class, in declaration order (inherited fields first)."""
    out = []
    for name, info in cls.model_fields.items():
        extra = info.json_schema_extra or {}
        choices = typing.get_args(info.annotation) if typing.get_origin(info.annotation) is Literal else None
        kind = type(choices[0]) if choices else (typing.get_origin(info.annotation) or info.annotation)
        low = next((m.ge for m in info.metadata if getattr(m, "ge", None) is not None), None)
        high = next((m.le for m in info.metadata if getattr(m, "le", None) is not None), None)
        out.append(Setting(name, kind, info.default, info.description or "", choices, low, high,
                           extra.get("label") or name.replace("_", " "), extra.get("section"),
                           bool(extra.get("set_by_training")), extra.get("choice_labels")))
    return out


def flag_settings(cls: type[Config]) -> list[Setting]:
    """The fields the command line has a flag for: all but those training records."""
    return [s for s in settings(cls) if not s.set_by_training]


def to_dict(config: Config) -> dict[str, Any]:
    return config.model_dump()


def from_dict(cls: type[C], data: Any) -> C:
    """Rebuild a config from JSON data; unknown or wrongly typed fields raise `ConfigError`."""
    if not isinstance(data, dict):
        raise ConfigError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
    values = dict(data)
    for s in settings(cls):  # JSON has no tuples
        if s.kind is tuple and isinstance(values.get(s.name), list):
            values[s.name] = tuple(values[s.name])
    return cls(**{str(k): v for k, v in values.items()})


def with_changes(config: C, **changes: Any) -> C:
    """A copy of `config` with some fields changed, validated like a new one."""
    return from_dict(type(config), {**to_dict(config), **changes})


class LoopConfig(Config):
    """The training settings every kind of model shares: data, optimiser, stopping, hardware.
    A kind's training config adds its objective's fields; where its default or help differs it
    declares the field again."""

    dataset: Literal["mnist", "fashion-mnist", "synthetic"] = setting(
        "mnist", "the images to learn from: MNIST's handwritten digits, Fashion-MNIST's clothes, or a tiny "
        "synthetic set made for tests", label="training data", section="data",
        choice_labels={"mnist": "MNIST digits", "fashion-mnist": "Fashion-MNIST", "synthetic": "synthetic (tests)"})
    binarization: Literal["dynamic", "static", "none"] = setting(
        "dynamic", "turning grey pixels black or white, which a Bernoulli decoder expects. dynamic: every time "
        "an image is used, each pixel is drawn black with its grey level as the chance (a true bound in nats); "
        "static: one such drawing, kept; none: the grey values as they are", label="black-and-white pixels",
        section="data", choice_labels={"dynamic": "dynamic (fresh draws)", "static": "static (drawn once)",
                                       "none": "none (grey values)"})
    epochs: int = setting(50, "maximum number of passes over the training images", low=1, high=100000,
                          label="epochs (passes over the data)", section="optimiser")
    batch_size: int = setting(100, "images per gradient step, the minibatch size M (paper: 100)", low=1,
                              high=65536, label="batch size", section="optimiser")
    learning_rate: float = setting(1e-3, "the size of each optimiser step", low=1e-7, high=10.0,
                                   label="learning rate", section="optimiser")
    optimizer: Literal["adam", "adagrad"] = setting("adam", "adam, or adagrad as in the paper", label="optimiser",
                                                    section="optimiser",
                                                    choice_labels={"adam": "Adam", "adagrad": "Adagrad (paper)"})
    patience: int = setting(3, "stop after this many epochs in a row without a better validation ELBO and keep "
                            "the best weights (0: never stop early)", low=0, high=100000,
                            label="early-stopping patience", section="optimiser")
    device: Literal["auto", "cpu", "cuda", "mps"] = setting("auto", "where to compute: auto picks a CUDA GPU, "
                                                            "then Apple's MPS, then the CPU", section="advanced")
    seed: int = setting(0, "random seed for initialisation, shuffling, binarisation and sampling: the same "
                        "seed gives the same run", low=0, high=2**63 - 1, label="random seed", section="advanced")
    num_threads: int = setting(0, "CPU threads for torch (0: torch's default, every core; 1 leaves a core "
                               "for the app)", low=0, high=1024, label="CPU threads", section="advanced")
    compile: bool = setting(False, "compile the training step with torch.compile (faster per epoch after "
                            "a one-off compile of about 20 s)", label="compile", section="advanced")
