"""VAE models behind one interface: `encode` gives the posterior q(z|x), `decode` the
likelihood parameters of p(x|z), `sample_prior` draws z ~ p(z) = N(0, I).

`MLPVAE` is the AEVB paper's model (Kingma & Welling 2013, Appendix C.2): one hidden layer in
the encoder and in the decoder. `ConvVAE` is a small convolutional VAE for 28x28 images.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn
import torch.nn.functional as F

from ..config.vae import ModelConfig

# A Gaussian decoder's log-variance is softly floored here: on pixels that are always 0 the
# variance would otherwise collapse and the density diverge.
MIN_DECODER_LOGVAR = -6.0


class Posterior(NamedTuple):
    """Diagonal Gaussian q(z|x)."""
    mu: torch.Tensor      # (B, D)
    logvar: torch.Tensor  # (B, D)


class Likelihood(NamedTuple):
    """Parameters of p(x|z): Bernoulli logits, or a Gaussian mean and log-variance."""
    loc: torch.Tensor                    # (..., C, H, W) or (..., D): logits (bernoulli) or mean (gaussian)
    logvar: torch.Tensor | None = None   # the same shape, gaussian only


class VAEOutput(NamedTuple):
    posterior: Posterior
    z: torch.Tensor          # (L, B, D) samples from the posterior
    likelihood: Likelihood   # parameters with leading (L, B)


def activation(name: str) -> nn.Module:
    return {"tanh": nn.Tanh, "relu": nn.ReLU, "softplus": nn.Softplus}[name]()


def floor_logvar(logvar: torch.Tensor) -> torch.Tensor:
    """A Gaussian decoder's log-variance, softly kept above MIN_DECODER_LOGVAR."""
    return MIN_DECODER_LOGVAR + F.softplus(logvar - MIN_DECODER_LOGVAR)


def reparameterize(posterior: Posterior, num_samples: int = 1,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """z = mu + sigma * eps with eps ~ N(0, I) (the reparameterisation trick, AEVB sec. 2.4):
    (L, ..., D) for a posterior of shape (..., D)."""
    mu, logvar = posterior
    shape = (num_samples, *mu.shape)  # (L, B, D)
    if generator is None:  # randn_like keeps the training step traceable by torch.compile
        eps = torch.randn_like(mu.expand(shape))
    else:
        eps = torch.randn(shape, dtype=mu.dtype, device=mu.device, generator=generator)
    return mu + torch.exp(0.5 * logvar) * eps


class VAE(nn.Module):
    """Shared behaviour; subclasses define `encoder` (x -> 2D features) and `decoder` (z -> params)."""

    config: ModelConfig

    def encode(self, x: torch.Tensor) -> Posterior:
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        return Posterior(mu, logvar)

    def decode(self, z: torch.Tensor) -> Likelihood:
        lead = z.shape[:-1]
        out = self.decoder(z.reshape(-1, z.shape[-1]))
        c, h, w = self.config.image_shape
        if self.config.likelihood == "bernoulli":
            return Likelihood(out.reshape(*lead, c, h, w))
        mean, logvar = out.chunk(2, dim=1)
        logvar = floor_logvar(logvar)
        return Likelihood(torch.sigmoid(mean).reshape(*lead, c, h, w), logvar.reshape(*lead, c, h, w))

    def forward(self, x: torch.Tensor, num_samples: int = 1,
                generator: torch.Generator | None = None) -> VAEOutput:
        posterior = self.encode(x)
        z = reparameterize(posterior, num_samples, generator)
        return VAEOutput(posterior, z, self.decode(z))

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        device = next(self.parameters()).device
        return torch.randn((n, self.config.latent_dim), device=device, generator=generator)

    @torch.no_grad()
    def mean_image(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's mean E[x|z] in [0, 1], for display: (..., C, H, W)."""
        likelihood = self.decode(z)
        if self.config.likelihood == "bernoulli":
            return torch.sigmoid(likelihood.loc)
        return likelihood.loc.clamp(0, 1)


class MLPVAE(VAE):
    """x -> hidden -> (mu, logvar); z -> hidden -> likelihood parameters (AEVB Appendix C.2).
    With `hidden_layers` > 1 each network stacks that many hidden layers of the same width."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        d, h, z = config.input_dim, config.hidden_dim, config.latent_dim
        out = d if config.likelihood == "bernoulli" else 2 * d

        def hidden(width_in: int) -> list[nn.Module]:
            layers = []
            for i in range(config.hidden_layers):
                layers += [nn.Linear(width_in if i == 0 else h, h), activation(config.activation)]
            return layers
        self.encoder = nn.Sequential(nn.Flatten(), *hidden(d), nn.Linear(h, 2 * z))
        self.decoder = nn.Sequential(*hidden(z), nn.Linear(h, out))
        self.apply(_paper_init)


class ConvVAE(VAE):
    """Two stride-2 convolutions down to (64, H/4, W/4), a hidden layer, and the mirror image up."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        c, hgt, wid = config.image_shape
        h, z = config.hidden_dim, config.latent_dim
        out_c = c if config.likelihood == "bernoulli" else 2 * c
        flat = 64 * (hgt // 4) * (wid // 4)
        act = config.activation
        self.encoder = nn.Sequential(
            nn.Conv2d(c, 32, 4, 2, 1), activation(act),    # (B, 32, H/2, W/2)
            nn.Conv2d(32, 64, 4, 2, 1), activation(act),   # (B, 64, H/4, W/4)
            nn.Flatten(), nn.Linear(flat, h), activation(act), nn.Linear(h, 2 * z))
        self.decoder = nn.Sequential(
            nn.Linear(z, h), activation(act), nn.Linear(h, flat), activation(act),
            nn.Unflatten(1, (64, hgt // 4, wid // 4)),
            nn.ConvTranspose2d(64, 32, 4, 2, 1), activation(act),  # (B, 32, H/2, W/2)
            nn.ConvTranspose2d(32, out_c, 4, 2, 1),                 # (B, out_c, H, W)
            nn.Flatten())


def _paper_init(module: nn.Module) -> None:
    """Weights from N(0, 0.01^2) and zero biases, as the AEVB experiments (sec. 5). Nothing on the
    meta device (shapes only), where an initialiser would import torch's compiler (2 s)."""
    if isinstance(module, nn.Linear) and not module.weight.is_meta:
        nn.init.normal_(module.weight, std=0.01)
        nn.init.zeros_(module.bias)


def build_model(config: ModelConfig) -> VAE:
    return {"mlp": MLPVAE, "conv": ConvVAE}[config.architecture](config)
