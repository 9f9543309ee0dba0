"""Configuration dataclasses for models and training, with validation and JSON round trips.

Every checkpoint stores these as JSON; a model is rebuilt from its `ModelConfig` alone.
Each field carries its help text (and choices or bounds) as dataclass metadata, which the
command line and the app's Train form read, so the three never disagree.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, TypeVar


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range; the message names the field."""


def config_field(default: Any, help: str, choices: tuple | None = None,
           low: float | None = None, high: float | None = None, set_by_training: bool = False) -> Any:
    """A config field with its help text and bounds; `set_by_training`: recorded when training
    starts, not chosen (no command-line flag)."""
    return field(default=default, metadata={"help": help, "choices": choices, "low": low, "high": high,
                                            "set_by_training": set_by_training})


def same_as(cls: type, name: str, **changes: Any) -> Any:
    """`cls`'s field `name` (default, help, choices, bounds), with `changes` applied."""
    original = next(f for f in dataclasses.fields(cls) if f.name == name)
    metadata = {**original.metadata, **{k: v for k, v in changes.items() if k != "default"}}
    return field(default=changes.get("default", original.default), metadata=metadata)


@dataclass(frozen=True)
class ModelConfig:
    """The VAE's architecture. Defaults are the AEVB paper's MNIST model (Kingma & Welling 2013, sec. 5)."""

    architecture: str = config_field("mlp", "mlp: one hidden layer per network, as in the paper; "
                               "conv: a small convolutional VAE for 28x28 images",
                               choices=("mlp", "conv"))
    image_channels: int = config_field(1, "channels of the input images", low=1, high=4)
    image_height: int = config_field(28, "height of the input images in pixels", low=4, high=256)
    image_width: int = config_field(28, "width of the input images in pixels", low=4, high=256)
    latent_dim: int = config_field(20, "size of z; the paper shows 2 to 200 (Fig. 2)", low=1, high=1024)
    hidden_dim: int = config_field(500, "hidden units in the encoder and the decoder (paper: 500 for MNIST)",
                             low=1, high=8192)
    hidden_layers: int = config_field(1, "hidden layers in the MLP encoder and decoder (paper: 1; "
                                "the semi-supervised paper's M1 used 2)", low=1, high=8)
    activation: str = config_field("tanh", "hidden non-linearity (paper: tanh)", choices=("tanh", "relu", "softplus"))
    likelihood: str = config_field("bernoulli", "decoder p(x|z): bernoulli (logits, binary data) or "
                             "gaussian (mean and log-variance, real-valued data)",
                             choices=("bernoulli", "gaussian"))

    @property
    def input_dim(self) -> int:
        return self.image_channels * self.image_height * self.image_width

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.image_channels, self.image_height, self.image_width)

    def __post_init__(self) -> None:
        validate(self)
        if self.architecture == "conv" and (self.image_height % 4 or self.image_width % 4):
            raise ConfigError("architecture: the conv VAE needs image height and width divisible by 4")
        if self.architecture == "conv" and self.hidden_layers != 1:
            raise ConfigError("hidden_layers: the conv VAE has one hidden layer; more are for the mlp")


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained: data, objective, optimiser and stopping."""

    dataset: str = config_field("mnist", "training data", choices=("mnist", "fashion-mnist", "synthetic"))
    binarization: str = config_field("dynamic", "dynamic: a fresh Bernoulli sample of each image every time it is "
                               "seen (a true bound in nats); static: one fixed sample; none: grey values",
                               choices=("dynamic", "static", "none"))
    max_train_examples: int = config_field(0, "use only the first N training images (0: all)", low=0, high=10**7)
    estimator: str = config_field("B", "SGVB estimator: B uses the analytic KL (paper eq. 7), "
                            "A estimates it by Monte Carlo (eq. 6)", choices=("A", "B"))
    objective: str = config_field("elbo", "elbo: the SGVB lower bound; iwae: the importance-weighted bound",
                            choices=("elbo", "iwae"))
    num_samples: int = config_field(1, "samples of z per datapoint, L in the paper (k for iwae)", low=1, high=5000)
    beta: float = config_field(1.0, "weight of the KL term (1: the ELBO)", low=0.0, high=1000.0)
    warmup_epochs: float = config_field(0.0, "epochs over which the KL weight grows linearly from 0 to beta",
                                  low=0.0, high=10000.0)
    epochs: int = config_field(50, "maximum number of passes over the training set", low=1, high=100000)
    batch_size: int = config_field(100, "minibatch size M (paper: 100)", low=1, high=65536)
    learning_rate: float = config_field(1e-3, "optimiser step size", low=1e-7, high=10.0)
    optimizer: str = config_field("adam", "adam, or adagrad as in the paper", choices=("adam", "adagrad"))
    patience: int = config_field(3, "stop after this many epochs without a better validation ELBO and "
                           "restore the best weights (0: never stop early)", low=0, high=100000)
    device: str = config_field("auto", "auto picks cuda, then mps, then cpu", choices=("auto", "cpu", "cuda", "mps"))
    seed: int = config_field(0, "random seed for initialisation, shuffling, binarisation and sampling",
                       low=0, high=2**63 - 1)
    num_threads: int = config_field(0, "CPU threads for torch (0: torch's default)", low=0, high=1024)
    compile: bool = config_field(False, "compile the training step with torch.compile "
                           "(faster per epoch after a one-off compile of about 20 s)")

    def __post_init__(self) -> None:
        validate(self)


@dataclass(frozen=True)
class M2Config:
    """M2's networks; defaults are the paper's MNIST setting (sec. 4.1 and Appendix)."""

    input_features: int = config_field(0, "0: images of image_channels x image_height x image_width; "
                                 "N > 0: feature vectors of size N (M1+M2)", low=0, high=100000)
    input_units: tuple[int, ...] = config_field((), "M1+M2: which of M1's latent units are the "
                                          "features (empty: all); chosen when training starts",
                                          set_by_training=True)
    image_channels: int = config_field(1, "channels of the input images", low=1, high=4)
    image_height: int = config_field(28, "height of the input images", low=1, high=256)
    image_width: int = config_field(28, "width of the input images", low=1, high=256)
    num_classes: int = config_field(10, "number of classes y", low=2, high=1000)
    latent_dim: int = config_field(50, "size of the style z (paper: 50)", low=1, high=1024)
    hidden_dim: int = config_field(500, "hidden units of each network (paper: 500)", low=1, high=8192)
    classifier_layers: int = config_field(1, "hidden layers of the classifier q(y|x) (paper: 1); the "
                                          "encoder and the decoder keep one", low=1, high=8)
    activation: str = config_field("softplus", "hidden non-linearity (paper: softplus)",
                             choices=("softplus", "tanh", "relu"))
    likelihood: str = config_field("bernoulli", "p(x|y,z): bernoulli for binary images, gaussian for "
                             "M1 features", choices=("bernoulli", "gaussian"))
    m1_digest: str = config_field("", "M1+M2: SHA-256 of the M1 weights M2 was trained on, so that another "
                                  "M1 in their place is refused (empty: not recorded)", set_by_training=True)

    @property
    def input_dim(self) -> int:
        return self.input_features or self.image_channels * self.image_height * self.image_width

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.image_channels, self.image_height, self.image_width)

    def __post_init__(self) -> None:
        validate(self)
        if self.input_units and len(self.input_units) != self.input_features:
            raise ConfigError(f"input_units: {len(self.input_units)} units listed for "
                              f"{self.input_features} input features")


@dataclass(frozen=True)
class M2TrainConfig:
    """How M2 is trained. Fields shared with `TrainConfig` take their help, choices and bounds from it."""

    dataset: str = same_as(TrainConfig, "dataset")
    binarization: str = same_as(TrainConfig, "binarization")
    num_labels: int = config_field(100, "labelled training examples, the same number per class "
                             "(paper: 100, 600, 1000, 3000)", low=1, high=60000)
    label_seed: int = config_field(0, "seed for drawing the labelled subset", low=0, high=2**63 - 1)
    labelled_batch_size: int = config_field(100, "labelled examples per step", low=1, high=65536)
    labelled_repeats: float = config_field(1.0, "how many times per epoch each labelled example counts in "
                                     "the objective. 1: the paper's J^alpha, where a labelled digit weighs "
                                     "as much as an unlabelled one; 0: each step's labelled batch weighs as "
                                     "much as its unlabelled batch (N_unlabelled / N_labelled repeats)",
                                     low=0.0, high=1e6)
    alpha_scale: float = config_field(0.1, "classification weight: alpha = alpha_scale * N_unlabelled / "
                                "N_labelled per labelled example (see M2Task.loss); 0.1 with "
                                "labelled_repeats 1 is the paper's alpha = 0.1 N", low=0.0, high=1e6)
    m1_run: str = config_field("", "M1+M2: a trained VAE run whose latent codes are M2's inputs "
                         "(empty: plain M2 on pixels)")
    m1_features: str = config_field("sample", "M1+M2 training inputs: sample draws a fresh z from M1's "
                                    "q(z|x) each time an example is seen (as the paper's code); mean uses "
                                    "its posterior mean. Evaluation always uses the mean",
                                    choices=("sample", "mean"))
    m1_units: str = config_field("active", "M1+M2: active keeps only M1's active latent units (variance "
                                 "of the posterior means over the training set > 0.01, as the paper's "
                                 "code), whose draws are not pure noise; all keeps every unit",
                                 choices=("active", "all"))
    beta: float = same_as(TrainConfig, "beta", help="weight of the KL term of q(z|x,y) in training (1: the "
                          "paper's bound). Other values make the training figures those of the weighted "
                          "objective; validation and test always use the bound")
    epochs: int = same_as(TrainConfig, "epochs", default=100, help="maximum passes over the unlabelled training set")
    batch_size: int = same_as(TrainConfig, "batch_size", help="unlabelled examples per step")
    learning_rate: float = same_as(TrainConfig, "learning_rate", default=3e-4,
                                   help="optimiser step size (paper: 3e-4)")
    optimizer: str = same_as(TrainConfig, "optimizer", help="adam or adagrad")
    patience: int = same_as(TrainConfig, "patience", default=10, help="stop after this many epochs without a "
                            "better validation accuracy and restore the best weights (0: never)")
    device: str = same_as(TrainConfig, "device")
    seed: int = same_as(TrainConfig, "seed")
    num_threads: int = same_as(TrainConfig, "num_threads")
    compile: bool = same_as(TrainConfig, "compile", help="compile the loss with torch.compile")

    def __post_init__(self) -> None:
        validate(self)


def validate(config: Any) -> None:
    """Check types, choices and bounds of every field; raise `ConfigError` naming the first bad one."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        kind = f.type if isinstance(f.type, type) else {"int": int, "float": float, "str": str,
                                                          "bool": bool}.get(str(f.type))
        if kind is bool:
            if not isinstance(value, bool):
                raise ConfigError(f"{f.name}: expected true or false, got {value!r}")
            continue
        if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigError(f"{f.name}: expected a whole number, got {value!r}")
        if kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"{f.name}: expected a finite number, got {value!r}")
        if kind is str and not isinstance(value, str):
            raise ConfigError(f"{f.name}: expected text, got {value!r}")
        if str(f.type).startswith("tuple") and not (
                isinstance(value, tuple) and all(isinstance(v, int) and not isinstance(v, bool)
                                                 and v >= 0 for v in value)):
            raise ConfigError(f"{f.name}: expected a list of whole numbers >= 0, got {value!r}")
        meta = f.metadata
        if meta.get("choices") and value not in meta["choices"]:
            raise ConfigError(f"{f.name}: {value!r} is not one of {', '.join(map(str, meta['choices']))}")
        if meta.get("low") is not None and value < meta["low"]:
            raise ConfigError(f"{f.name}: {value} is below the minimum {meta['low']}")
        if meta.get("high") is not None and value > meta["high"]:
            raise ConfigError(f"{f.name}: {value} is above the maximum {meta['high']}")


C = TypeVar("C")


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def from_dict(cls: type[C], data: Any) -> C:
    """Rebuild a config from JSON data; unknown or wrongly typed fields raise `ConfigError`."""
    if not isinstance(data, dict):
        raise ConfigError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown field(s) {', '.join(unknown)}")
    values = dict(data)
    for f in dataclasses.fields(cls):
        # JSON has one number type: accept 3 for a float field, not 3.0 for an int field.
        if f.name in values and f.type in (float, "float") and isinstance(values[f.name], int) \
                and not isinstance(values[f.name], bool):
            values[f.name] = float(values[f.name])
        if f.name in values and str(f.type).startswith("tuple") and isinstance(values[f.name], list):
            values[f.name] = tuple(values[f.name])
    return cls(**values)


def field_specs(cls: type) -> list[dataclasses.Field]:
    """The dataclass fields, for building command-line flags and forms."""
    return list(dataclasses.fields(cls))


def flag_fields(cls: type) -> list[dataclasses.Field]:
    """The fields the command line has a flag for: all but those training sets (M2's input units
    and its M1's digest)."""
    return [f for f in dataclasses.fields(cls) if not f.metadata.get("set_by_training")]
