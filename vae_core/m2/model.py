"""M2's networks (Kingma et al. 2014, sec. 3.1.2): the generative model p(y) p(z) p(x|y, z),
with p(y) uniform and p(z) = N(0, I), and its inference networks, a classifier q(y|x) and an
encoder q(z|x, y). The posterior, the reparameterisation and the likelihoods are the VAE's."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from ..vae.model import Likelihood, Posterior, activation, floor_logvar, reparameterize
from ..config.m2 import M2Config


class M2Output(NamedTuple):
    posterior: Posterior     # q(z|x,y): (..., B, Z)
    z: torch.Tensor          # one sample of z: (..., B, Z)
    likelihood: Likelihood   # p(x|y,z): logits or mean (and log-variance), (..., B, D)


class M2(nn.Module):
    def __init__(self, config: M2Config):
        super().__init__()
        self.config = config
        d, h, k, z = config.input_dim, config.hidden_dim, config.num_classes, config.latent_dim
        out = d if config.likelihood == "bernoulli" else 2 * d
        act = config.activation
        hidden = [layer for i in range(config.classifier_layers)
                  for layer in (nn.Linear(h if i else d, h), activation(act))]
        self.classifier = nn.Sequential(*hidden, nn.Linear(h, k))
        self.encoder = nn.Sequential(nn.Linear(d + k, h), activation(act), nn.Linear(h, 2 * z))
        self.decoder = nn.Sequential(nn.Linear(z + k, h), activation(act), nn.Linear(h, out))

    def classify_logits(self, x: torch.Tensor) -> torch.Tensor:
        """q(y|x) as logits: x (B, ...) -> (B, K)."""
        return self.classifier(x.reshape(x.shape[0], -1))

    def encode(self, x: torch.Tensor, y: torch.Tensor) -> Posterior:
        """q(z|x,y) for flat x (..., D) and one-hot y (..., K); they broadcast, so x (B, D)
        with y (K, B, K) encodes every class of each example.

        The first layer acts on [x, y] as W_x x + W_y y: written so, W_x x is computed once
        per example, not once per enumerated class (the larger part of an M2 step on pixels)."""
        first, rest = self.encoder[0], self.encoder[1:]
        d = x.shape[-1]
        hidden = F.linear(x, first.weight[:, :d], first.bias) + F.linear(y, first.weight[:, d:])
        mu, logvar = rest(hidden).chunk(2, -1)
        return Posterior(mu, logvar)

    def decode(self, z: torch.Tensor, y: torch.Tensor) -> Likelihood:
        """p(x|y,z) for z (..., Z) and one-hot y (..., K): parameters (..., D)."""
        out = self.decoder(torch.cat([z, y], -1))
        if self.config.likelihood == "bernoulli":
            return Likelihood(out)
        mean, logvar = out.chunk(2, -1)
        return Likelihood(mean, floor_logvar(logvar))

    def forward(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None) -> M2Output:
        posterior = self.encode(x, y)
        z = reparameterize(posterior, 1, generator)[0]
        return M2Output(posterior, z, self.decode(z, y))


def build_m2(config: M2Config) -> M2:
    return M2(config)
