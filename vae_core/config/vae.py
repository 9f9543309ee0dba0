"""The VAE's configs: its architecture (`ModelConfig`) and how it is trained (`TrainConfig`).
Defaults are the AEVB paper's MNIST setting (Kingma & Welling 2013, sec. 5 and Appendix C)."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from .base import Config, LoopConfig, setting


class ModelConfig(Config):
    """The VAE's architecture."""

    architecture: Literal["mlp", "conv"] = setting(
        "mlp", "mlp: one hidden layer per network, as in the paper; conv: a small convolutional VAE for "
        "28x28 images", section="model")
    image_channels: int = setting(1, "channels of the input images", low=1, high=4)
    image_height: int = setting(28, "height of the input images in pixels", low=4, high=256)
    image_width: int = setting(28, "width of the input images in pixels", low=4, high=256)
    latent_dim: int = setting(20, "size of z; the paper shows 2 to 200 (Fig. 2)", low=1, high=1024,
                              label="latent size", section="model")
    hidden_dim: int = setting(500, "hidden units in the encoder and the decoder (paper: 500 for MNIST)",
                              low=1, high=8192, label="hidden units", section="model")
    hidden_layers: int = setting(1, "hidden layers in the MLP encoder and decoder (paper: 1; the "
                                 "semi-supervised paper's M1 used 2)", low=1, high=8, label="hidden layers",
                                 section="model")
    activation: Literal["tanh", "relu", "softplus"] = setting("tanh", "hidden non-linearity (paper: tanh)",
                                                              section="model")
    likelihood: Literal["bernoulli", "gaussian"] = setting(
        "bernoulli", "decoder p(x|z): bernoulli (logits, binary data) or gaussian (mean and log-variance, "
        "real-valued data)", section="model")

    @property
    def input_dim(self) -> int:
        return self.image_channels * self.image_height * self.image_width

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (self.image_channels, self.image_height, self.image_width)

    @model_validator(mode="after")
    def _conv_shape(self) -> ModelConfig:
        if self.architecture == "conv" and (self.image_height % 4 or self.image_width % 4):
            raise ValueError("architecture: the conv VAE needs image height and width divisible by 4")
        if self.architecture == "conv" and self.hidden_layers != 1:
            raise ValueError("hidden_layers: the conv VAE has one hidden layer; more are for the mlp")
        return self


class TrainConfig(LoopConfig):
    """How a VAE is trained: the shared loop settings, and the objective."""

    max_train_examples: int = setting(0, "use only the first N training images (0: all)", low=0, high=10**7,
                                      label="training images (0: all)", section="advanced")
    estimator: Literal["B", "A"] = setting("B", "SGVB estimator: B uses the analytic KL (paper eq. 7), A "
                                           "estimates it by Monte Carlo (eq. 6)", section="objective")
    objective: Literal["elbo", "iwae"] = setting(
        "elbo", "elbo: the SGVB lower bound; iwae: the importance-weighted bound", section="objective")
    num_samples: int = setting(1, "samples of z per datapoint, L in the paper (k for iwae)", low=1, high=5000,
                               label="samples of z", section="objective")
    beta: float = setting(1.0, "weight of the KL term (1: the ELBO)", low=0.0, high=1000.0,
                          label="KL weight beta", section="objective")
    warmup_epochs: float = setting(0.0, "epochs over which the KL weight grows linearly from 0 to beta",
                                   low=0.0, high=10000.0, label="KL warm-up epochs", section="objective")
    backward: Literal["auto", "fused", "autograd"] = setting(
        "auto", "how a step's gradients are computed. fused: the hand-derived backward of vae/fused.py "
        "(the fastest on a CPU; for the one-hidden-layer MLP with a bernoulli decoder, estimator B, one "
        "sample, the elbo objective, without compile); autograd: PyTorch's autograd through the "
        "readable ELBO; auto: fused where it applies, else autograd. The run records the one used",
        section="advanced")
