"""M2's configs: its networks (`M2Config`) and how it is trained (`M2TrainConfig`). Defaults are
the paper's MNIST setting (Kingma et al. 2014, sec. 4.1 and Appendix)."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from .base import Config, LoopConfig, setting


class M2Config(Config):
    """M2's networks: the classifier q(y|x), the encoder q(z|x,y) and the decoder p(x|y,z)."""

    input_features: int = setting(0, "0: images of image_channels x image_height x image_width; N > 0: "
                                  "feature vectors of size N (M1+M2)", low=0, high=100000)
    input_units: tuple[int, ...] = setting((), "M1+M2: which of M1's latent units are the features (empty: "
                                           "all); chosen when training starts", set_by_training=True)
    image_channels: int = setting(1, "channels of the input images", low=1, high=4)
    image_height: int = setting(28, "height of the input images", low=1, high=256)
    image_width: int = setting(28, "width of the input images", low=1, high=256)
    num_classes: int = setting(10, "number of classes y", low=2, high=1000)
    latent_dim: int = setting(50, "how many numbers the style z has: what codes a digit besides its class, "
                              "such as slant and thickness (paper: 50)", low=1, high=1024,
                              label="style size (numbers in z)", section="model")
    hidden_dim: int = setting(500, "hidden units of each network (paper: 500)", low=1, high=8192,
                              label="hidden units per layer", section="model")
    classifier_layers: int = setting(1, "hidden layers of the classifier q(y|x) (paper: 1); the encoder and "
                                     "the decoder keep one", low=1, high=8, label="classifier layers",
                                     section="model")
    activation: Literal["softplus", "tanh", "relu"] = setting("softplus", "the hidden units' non-linearity "
                                                              "(paper: softplus)", label="activation",
                                                              section="model")
    likelihood: Literal["bernoulli", "gaussian"] = setting(
        "bernoulli", "p(x|y,z): bernoulli for binary images, gaussian for M1 features")
    m1_digest: str = setting("", "M1+M2: SHA-256 of the M1 weights M2 was trained on, so that another M1 in "
                             "their place is refused (empty: not recorded)", set_by_training=True)

    @property
    def input_dim(self) -> int:
        return self.input_features or self.image_channels * self.image_height * self.image_width

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.image_channels, self.image_height, self.image_width)

    @model_validator(mode="after")
    def _units_match_features(self) -> M2Config:
        if any(u < 0 for u in self.input_units):
            raise ValueError("input_units: unit numbers must be >= 0")
        if self.input_units and len(self.input_units) != self.input_features:
            raise ValueError(f"input_units: {len(self.input_units)} units listed for "
                             f"{self.input_features} input features")
        return self


class M2TrainConfig(LoopConfig):
    """How M2 is trained: the shared loop settings (with M2's defaults) and the semi-supervised
    objective."""

    num_labels: int = setting(100, "how many training digits keep their label, the same number of each "
                              "class; the rest are used without (paper: 100, 600, 1000, 3000)", low=1,
                              high=60000, label="labelled digits", section="data")
    label_seed: int = setting(0, "seed for drawing the labelled subset", low=0, high=2**63 - 1,
                              label="label seed", section="data")
    labelled_batch_size: int = setting(100, "labelled examples per step", low=1, high=65536,
                                       label="labelled batch size", section="optimiser")
    labelled_repeats: float = setting(
        1.0, "how many times per epoch each labelled example counts in the objective. 1: the paper's "
        "J^alpha, where a labelled digit weighs as much as an unlabelled one; 0: each step's labelled batch "
        "weighs as much as its unlabelled batch (N_unlabelled / N_labelled repeats)", low=0.0, high=1e6,
        label="labelled weight (repeats)", section="objective")
    alpha_scale: float = setting(
        0.1, "classification weight: alpha = alpha_scale * N_unlabelled / N_labelled per labelled example "
        "(see M2Task.loss); 0.1 with labelled_repeats 1 is the paper's alpha = 0.1 N", low=0.0, high=1e6,
        label="classification weight (alpha scale)", section="objective")
    m1_run: str = setting("", "M1+M2: a trained VAE run whose latent codes are M2's inputs (empty: plain M2 "
                          "on pixels)")
    m1_features: Literal["sample", "mean"] = setting(
        "sample", "M1+M2 training inputs: sample draws a fresh z from M1's q(z|x) each time an example is "
        "seen (as the paper's code); mean uses its posterior mean. Evaluation always uses the mean",
        label="M1 features", section="advanced",
        choice_labels={"sample": "a fresh sample", "mean": "the posterior mean"})
    m1_units: Literal["active", "all"] = setting(
        "active", "M1+M2: active keeps only M1's active latent units (variance of the posterior means over "
        "the training set > 0.01, as the paper's code), whose draws are not pure noise; all keeps every "
        "unit", label="M1 units", section="advanced",
        choice_labels={"active": "active units", "all": "all units"})
    beta: float = setting(1.0, "weight of the KL term of q(z|x,y) in training (1: the paper's bound). Other "
                          "values make the training figures those of the weighted objective; validation and "
                          "test always use the bound", low=0.0, high=1000.0, label="KL weight on the style (beta)",
                          section="objective")
    epochs: int = setting(100, "maximum passes over the unlabelled training set", low=1, high=100000,
                          label="epochs (passes over the data)", section="optimiser")
    batch_size: int = setting(100, "unlabelled examples per step", low=1, high=65536,
                              label="unlabelled batch size", section="optimiser")
    learning_rate: float = setting(3e-4, "optimiser step size (paper: 3e-4)", low=1e-7, high=10.0,
                                   label="learning rate", section="optimiser")
    optimizer: Literal["adam", "adagrad"] = setting("adam", "adam or adagrad", label="optimiser",
                                                    section="optimiser",
                                                    choice_labels={"adam": "Adam", "adagrad": "Adagrad"})
    patience: int = setting(10, "stop after this many epochs in a row without a better validation accuracy "
                            "and keep the best weights (0: never stop early)", low=0, high=100000,
                            label="early-stopping patience", section="optimiser")
    compile: bool = setting(False, "compile the loss with torch.compile", label="compile",
                            section="advanced")
