"""The VAE's configs: its architecture (`ModelConfig`) and how it is trained (`TrainConfig`).
Defaults are the AEVB paper's MNIST setting (Kingma & Welling 2013, sec. 5 and Appendix C)."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from .base import Config, LoopConfig, setting


class ModelConfig(Config):
    """The VAE's architecture."""

    architecture: Literal["mlp", "conv"] = setting(
        "mlp", "mlp: fully connected layers, as in the paper; conv: a small convolutional VAE for 28x28 "
        "images", label="network type", section="model",
        choice_labels={"mlp": "MLP (paper)", "conv": "convolutional"})
    image_channels: int = setting(1, "channels of the input images", low=1, high=4)
    image_height: int = setting(28, "height of the input images in pixels", low=4, high=256)
    image_width: int = setting(28, "width of the input images in pixels", low=4, high=256)
    latent_dim: int = setting(20, "how many numbers z codes each image with. 2 can be drawn as a map "
                              "(the Latent space page); more rebuild images better; the paper shows 2 to 200 "
                              "(Fig. 2)", low=1, high=1024, label="latent size (numbers in z)", section="model")
    hidden_dim: int = setting(500, "hidden units in each layer of the encoder and the decoder (paper: 500 "
                              "for MNIST)", low=1, high=8192, label="hidden units per layer", section="model")
    hidden_layers: int = setting(1, "hidden layers in the MLP encoder and decoder (paper: 1; the "
                                 "semi-supervised paper's M1 used 2)", low=1, high=8, label="hidden layers",
                                 section="model")
    activation: Literal["tanh", "relu", "softplus"] = setting("tanh", "the hidden units' non-linearity "
                                                              "(paper: tanh)", label="activation",
                                                              section="model")
    likelihood: Literal["bernoulli", "gaussian"] = setting(
        "bernoulli", "the decoder's p(x|z): bernoulli, each pixel black or white with a probability (for "
        "digits); gaussian, grey values with a mean and a variance", label="decoder's pixel model",
        section="model", choice_labels={"bernoulli": "Bernoulli", "gaussian": "Gaussian"})

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

    max_train_examples: int = setting(0, "train on the first N training images only, for a quick run "
                                      "(0: all of them); validation and test use all of theirs", low=0,
                                      high=10**7, label="training images (0: all)", section="data")
    estimator: Literal["B", "A"] = setting(
        "B", "the paper's two SGVB estimators of the ELBO. B computes the KL between q(z|x) and the prior "
        "exactly (eq. 7) and samples only the reconstruction; A estimates both terms from the sampled z "
        "(eq. 6): simpler, but noisier", label="ELBO estimator", section="objective",
        choice_labels={"B": "B: exact KL (eq. 7)", "A": "A: sampled KL (eq. 6)"})
    objective: Literal["elbo", "iwae"] = setting(
        "elbo", "the bound training maximises. elbo: the paper's variational lower bound; iwae: the "
        "importance-weighted bound of Burda et al., tighter as k grows", label="bound to maximise",
        section="objective", choice_labels={"elbo": "ELBO (paper)", "iwae": "IWAE bound"})
    num_samples: int = setting(1, "how many z are drawn from q(z|x) for each image in a step: L in the paper "
                               "(1 is enough with batches of 100), k for the IWAE bound (larger: tighter, and "
                               "k times the decoder's work)", low=1, high=5000,
                               label="samples of z per image (L or k)", section="objective")
    beta: float = setting(1.0, "multiplies the KL term in training: 1 is the ELBO itself; above 1 (a "
                          "beta-VAE) pulls the codes towards the prior at the cost of reconstruction",
                          low=0.0, high=1000.0, label="KL weight (beta)", section="objective")
    warmup_epochs: float = setting(0.0, "KL warm-up: the KL weight starts at 0 and grows in a straight line to "
                                   "beta over this many epochs, so the decoder learns to use z before the KL "
                                   "term pulls the codes to the prior (0: no warm-up)", low=0.0, high=10000.0,
                                   label="KL warm-up (epochs)", section="objective")
    backward: Literal["auto", "fused", "autograd"] = setting(
        "auto", "how a step's gradients are computed. fused: the hand-derived backward of vae/fused.py "
        "(the fastest on a CPU; for the one-hidden-layer MLP with a bernoulli decoder, estimator B, one "
        "sample, the elbo objective, without compile); autograd: PyTorch's autograd through the "
        "readable ELBO; auto: fused where it applies, else autograd. The run records the one used",
        label="gradient code", section="advanced")
