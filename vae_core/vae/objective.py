"""The ELBO and its relatives, in nats per image.

Reduction, everywhere: log-densities are summed over pixels and latent dimensions, averaged
over the L samples of z, and averaged over the minibatch. Equation numbers are those of
Kingma & Welling (2013), "Auto-Encoding Variational Bayes".
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F

from .model import VAE, Likelihood, Posterior, reparameterize

# A latent unit is active if Var_x E_q[z_u|x] exceeds this (Burda et al. 2015).
ACTIVE_THRESHOLD = 0.01

LOG_2PI = math.log(2 * math.pi)


class ElboTerms(NamedTuple):
    """Batch means, in nats per image: elbo = recon - kl; loss is what the optimiser minimises."""
    loss: torch.Tensor
    elbo: torch.Tensor
    recon: torch.Tensor  # E_q[log p(x|z)]
    kl: torch.Tensor     # KL(q(z|x) || p(z)), or its Monte Carlo estimate (estimator A)


def gaussian_kl(posterior: Posterior) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, 1)) per dimension, (B, D): the negative of the
    -1/2 (1 + log sigma^2 - mu^2 - sigma^2) term of eq. 10 (Appendix B)."""
    mu, logvar = posterior
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def log_normal(z: torch.Tensor, mu: torch.Tensor | None = None, logvar: torch.Tensor | None = None) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))) summed over the last dimension; standard normal by default."""
    if mu is None:
        return -0.5 * (z.pow(2) + LOG_2PI).sum(-1)
    return -0.5 * ((z - mu).pow(2) * torch.exp(-logvar) + logvar + LOG_2PI).sum(-1)


def log_likelihood(x: torch.Tensor, likelihood: Likelihood, kind: str, event_dims: int = 3) -> torch.Tensor:
    """log p(x|z) summed over the last `event_dims` dimensions, the pixels: x is (B, C, H, W) and
    the parameters (..., B, C, H, W); returns (..., B). M2 passes flat inputs, (..., B, D) with
    `event_dims` 1."""
    if kind == "bernoulli":
        # x log sigmoid(l) + (1-x) log(1-sigmoid(l)) = x l - softplus(l), stable for large |l|
        logits = likelihood.loc
        log_p = x * logits - F.softplus(logits)
    else:
        mean, logvar = likelihood
        log_p = -0.5 * ((x - mean).pow(2) * torch.exp(-logvar) + logvar + LOG_2PI)
    return log_p.flatten(start_dim=-event_dims).sum(-1)


def elbo(model: VAE, x: torch.Tensor, estimator: str = "B", num_samples: int = 1, beta: float = 1.0,
         generator: torch.Generator | None = None) -> ElboTerms:
    """The SGVB estimate of the ELBO (eq. 3) for a minibatch.

    Estimator B (eq. 7) uses the analytic KL (eq. 10); estimator A (eq. 6) estimates
    log q(z|x) - log p(z) from the same L samples that estimate the reconstruction term.
    """
    out = model(x, num_samples, generator)
    recon = log_likelihood(x, out.likelihood, model.config.likelihood)  # (L, B)
    if estimator == "B":
        kl = gaussian_kl(out.posterior).sum(-1)  # (B,)
    elif estimator == "A":
        mu, logvar = out.posterior
        kl = (log_normal(out.z, mu, logvar) - log_normal(out.z)).mean(0)  # (B,)
    else:
        raise ValueError(f"unknown estimator {estimator!r}")
    recon = recon.mean(0)  # (B,)
    return ElboTerms(loss=-(recon - beta * kl).mean(), elbo=(recon - kl).mean(), recon=recon.mean(), kl=kl.mean())


def log_importance_weights(model: VAE, x: torch.Tensor, num_samples: int,
                           generator: torch.Generator | None = None) -> torch.Tensor:
    """log p(x, z_k) - log q(z_k|x) for z_k ~ q(z|x): (K, B)."""
    out = model(x, num_samples, generator)
    mu, logvar = out.posterior
    return (log_likelihood(x, out.likelihood, model.config.likelihood)
            + log_normal(out.z) - log_normal(out.z, mu, logvar))


def iwae_bound(model: VAE, x: torch.Tensor, num_samples: int,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """The importance-weighted bound log (1/K) sum_k w_k (Burda et al. 2015), per image: (B,).
    With K = 1 it is the ELBO (estimator A); it tightens towards log p(x) as K grows."""
    log_w = log_importance_weights(model, x, num_samples, generator)
    return torch.logsumexp(log_w, dim=0) - math.log(num_samples)


def iwae_terms(model: VAE, x: torch.Tensor, num_samples: int,
               generator: torch.Generator | None = None) -> ElboTerms:
    """The IWAE training objective, with the ELBO's parts reported beside it from one posterior."""
    bound = iwae_bound(model, x, num_samples, generator).mean()
    with torch.no_grad():
        out = model(x, 1, generator)
        recon = log_likelihood(x, out.likelihood, model.config.likelihood).mean()
        kl = gaussian_kl(out.posterior).sum(-1).mean()
    return ElboTerms(loss=-bound, elbo=bound.detach(), recon=recon, kl=kl)


@torch.no_grad()
def importance_sampled_log_likelihood(
        model: VAE, x: torch.Tensor, num_samples: int = 5000, chunk_size: int = 500,
        generator: torch.Generator | None = None,
        progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Estimate log p(x) by importance sampling with q(z|x) as the proposal, per image: (B,).

    The K samples are drawn in chunks and combined with a running logsumexp, so memory stays
    at (chunk_size, B) whatever K is. `progress(done, total)` is called after each chunk.
    """
    posterior = model.encode(x)
    running = torch.full((x.shape[0],), -math.inf, device=x.device)
    done = 0
    while done < num_samples:
        k = min(chunk_size, num_samples - done)
        z = reparameterize(posterior, k, generator)  # (k, B, D)
        log_w = (log_likelihood(x, model.decode(z), model.config.likelihood)
                 + log_normal(z) - log_normal(z, posterior.mu, posterior.logvar))  # (k, B)
        running = torch.logaddexp(running, torch.logsumexp(log_w, dim=0))
        done += k
        if progress is not None:
            progress(done, num_samples)
    return running - math.log(num_samples)


@torch.no_grad()
def posterior_statistics(model: VAE, x: torch.Tensor, batch_size: int = 1000,
                         active_threshold: float = ACTIVE_THRESHOLD) -> dict[str, torch.Tensor]:
    """Per-dimension KL and activity over a data set.

    A unit u is active if Var_x E_q[z_u|x] > `active_threshold` (Burda et al. 2015).
    Returns `kl_per_dim` (D,), `mean_variance` (D,) and `active` (D,) bool.
    """
    mus, kls = [], []
    for i in range(0, x.shape[0], batch_size):
        posterior = model.encode(x[i:i + batch_size])
        mus.append(posterior.mu)
        kls.append(gaussian_kl(posterior))
    mu = torch.cat(mus)
    variance = mu.var(dim=0, unbiased=False)
    return {"kl_per_dim": torch.cat(kls).mean(0), "mean_variance": variance,
            "active": variance > active_threshold}


@torch.no_grad()
def evaluate_elbo(model: VAE, images: torch.Tensor, batch_size: int = 1000, seed: int = 0) -> dict[str, float]:
    """ELBO, reconstruction and KL over a data set (estimator B, one sample per image), in nats
    per image; the noise comes from `seed`, so repeated evaluations compare fairly."""
    g = torch.Generator(device=images.device).manual_seed(seed)
    sums = {"elbo": 0.0, "recon": 0.0, "kl": 0.0}
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size]
        terms = elbo(model, x, "B", 1, 1.0, generator=g)
        for key in sums:
            sums[key] += getattr(terms, key).item() * len(x)
    return {key: value / len(images) for key, value in sums.items()}


@torch.no_grad()
def evaluate_log_likelihood(model: VAE, images: torch.Tensor, num_importance_samples: int = 5000,
                            batch_size: int = 100, seed: int = 0,
                            progress: Callable[[int, int], None] | None = None) -> float:
    """Mean importance-sampled log p(x) over `images`, k = `num_importance_samples` per image."""
    g = torch.Generator(device=images.device).manual_seed(seed)
    chunk = max(1, min(num_importance_samples, 50_000 // batch_size))
    total = 0.0
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size]
        total += importance_sampled_log_likelihood(model, x, num_importance_samples, chunk, g).sum().item()
        if progress is not None:
            progress(min(i + batch_size, len(images)), len(images))
    return total / len(images)
