"""What the app shows, computed: decoding latent points, manifold grids, encodings and their
projection, a posterior's ellipse and reparameterised draws from it,
interpolation paths, and the analysis of one image under a trained VAE.

Inputs and outputs are numpy arrays so that the pages stay free of tensor code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .model import VAE, reparameterize
from .objective import elbo, gaussian_kl, importance_sampled_log_likelihood, log_likelihood
from .grid import gaussian_quantiles, grid_points, latent_vector, tile  # noqa: F401 (the pages' names)
from .projection import Projection, coordinate_projection, pca_projection  # noqa: F401 (the pages' names)


def _tensor(model: VAE, array) -> torch.Tensor:
    return torch.as_tensor(np.asarray(array, dtype=np.float32), device=next(model.parameters()).device)


@torch.no_grad()
def decode(model: VAE, z) -> np.ndarray:
    """Decoder means for latent points z (N, D) -> images (N, H, W) in [0, 1] (first channel)."""
    return model.mean_image(_tensor(model, z).reshape(-1, model.config.latent_dim))[:, 0].cpu().numpy()


def manifold_grid(model: VAE, n: int = 15, dims: tuple[int, int] = (0, 1), base=None) -> np.ndarray:
    """Decode an n x n grid over the Gaussian quantiles of two latent dimensions, tiled into one
    image (n*H, n*W); z_dims[0] grows left to right, z_dims[1] bottom to top (AEVB Fig. 4)."""
    return tile(decode(model, grid_points(model.config.latent_dim, n, dims, base)), n)


@torch.no_grad()
def encode(model: VAE, images, batch_size: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Posterior means and standard deviations of images (N, H, W) or (N, C, H, W): (N, D) each."""
    x = _tensor(model, images)
    if x.dim() == 3:
        x = x.unsqueeze(1)
    mus, stds = [], []
    for i in range(0, len(x), batch_size):
        posterior = model.encode(x[i:i + batch_size])
        mus.append(posterior.mu)
        stds.append(torch.exp(0.5 * posterior.logvar))
    return torch.cat(mus).cpu().numpy(), torch.cat(stds).cpu().numpy()


@dataclass(frozen=True)
class Ellipse:
    """A level set of a 2-D Gaussian: centre, the two half-axes and the first one's angle."""
    centre: np.ndarray          # (2,)
    radii: tuple[float, float]  # half-axis lengths, the longer first
    angle: float                # radians, of the first half-axis from the horizontal axis


def posterior_ellipse(mu, sigma, projection: Projection, k: float = 1.0) -> Ellipse:
    """The k-standard-deviation ellipse of q(z|x) = N(mu, diag(sigma^2)) seen through a linear
    projection: the projected Gaussian has covariance C^T diag(sigma^2) C, and its points at
    Mahalanobis distance k form the ellipse."""
    mu, sigma = np.asarray(mu, np.float64), np.asarray(sigma, np.float64)
    c = np.asarray(projection.components, np.float64)   # (D, 2)
    covariance = c.T @ (sigma[:, None] ** 2 * c)         # (2, 2)
    variances, vectors = np.linalg.eigh(covariance)      # ascending
    major = vectors[:, 1]
    return Ellipse(projection(mu).astype(np.float64),
                   (k * float(np.sqrt(max(variances[1], 0.0))), k * float(np.sqrt(max(variances[0], 0.0)))),
                   float(np.arctan2(major[1], major[0])))


def mahalanobis_2d(points, ellipse: Ellipse) -> np.ndarray:
    """Distance of 2-D points (N, 2) from the ellipse's centre in units of its half-axes: 1 on
    the ellipse itself, below 1 inside."""
    d = np.asarray(points, np.float64) - ellipse.centre
    cos, sin = np.cos(ellipse.angle), np.sin(ellipse.angle)
    along, across = d[:, 0] * cos + d[:, 1] * sin, -d[:, 0] * sin + d[:, 1] * cos
    return np.sqrt((along / ellipse.radii[0]) ** 2 + (across / ellipse.radii[1]) ** 2)


@dataclass(frozen=True)
class ReparameterisedDraws:
    """Draws from q(z|x) made as the reparameterisation trick makes them (AEVB sec. 2.4)."""
    mu: np.ndarray      # (D,) the posterior mean
    sigma: np.ndarray   # (D,) the posterior standard deviation
    eps: np.ndarray     # (n, D) eps ~ N(0, I)
    z: np.ndarray       # (n, D) = mu + sigma * eps
    images: np.ndarray  # (n, H, W) the decoder's mean at each z


@torch.no_grad()
def reparameterised_draws(model: VAE, image, n: int = 5, seed: int = 0) -> ReparameterisedDraws:
    """Encode one image (H, W), draw n times eps ~ N(0, I) with a seeded generator, form
    z = mu + sigma * eps with the model's own `reparameterize`, and decode each z."""
    x = _tensor(model, image).reshape(1, *model.config.image_shape)
    posterior = model.encode(x)
    g = torch.Generator(device=x.device).manual_seed(seed)
    eps = torch.randn((n, 1, model.config.latent_dim), dtype=x.dtype, device=x.device, generator=g)
    z = reparameterize(posterior, n, torch.Generator(device=x.device).manual_seed(seed))[:, 0]  # (n, D)
    return ReparameterisedDraws(
        mu=posterior.mu[0].cpu().numpy(), sigma=torch.exp(0.5 * posterior.logvar[0]).cpu().numpy(),
        eps=eps[:, 0].cpu().numpy(), z=z.cpu().numpy(), images=model.mean_image(z)[:, 0].cpu().numpy())


def interpolate(z0, z1, steps: int, method: str = "linear") -> np.ndarray:
    """Points from z0 to z1 inclusive: (steps, D). `spherical` follows the great circle between
    them (slerp), which keeps the norm typical of Gaussian samples in high dimensions."""
    z0, z1 = np.asarray(z0, dtype=np.float64), np.asarray(z1, dtype=np.float64)
    t = np.linspace(0.0, 1.0, steps)[:, None]
    if method == "linear":
        return ((1 - t) * z0 + t * z1).astype(np.float32)
    if method != "spherical":
        raise ValueError(f"unknown interpolation {method!r}")
    cos = np.dot(z0, z1) / max(np.linalg.norm(z0) * np.linalg.norm(z1), 1e-12)
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if omega < 1e-6:
        return ((1 - t) * z0 + t * z1).astype(np.float32)
    return ((np.sin((1 - t) * omega) * z0 + np.sin(t * omega) * z1) / np.sin(omega)).astype(np.float32)


def crossfade(x0, x1, steps: int) -> np.ndarray:
    """The pixel-space blend (1-t) x0 + t x1: (steps, H, W)."""
    t = np.linspace(0.0, 1.0, steps)[:, None, None]
    return ((1 - t) * np.asarray(x0, dtype=np.float32) + t * np.asarray(x1, dtype=np.float32)).astype(np.float32)


@torch.no_grad()
def sample_prior(model: VAE, n: int, seed: int) -> np.ndarray:
    """Decoder means of n draws z ~ p(z) = N(0, I): (n, H, W)."""
    g = torch.Generator(device=next(model.parameters()).device).manual_seed(seed)
    return model.mean_image(model.sample_prior(n, g))[:, 0].cpu().numpy()


@dataclass(frozen=True)
class ImageAnalysis:
    reconstruction: np.ndarray  # (H, W) decoder mean at the posterior mean
    mu: np.ndarray              # (D,)
    std: np.ndarray             # (D,)
    kl_per_dim: np.ndarray      # (D,)
    elbo: float                 # nats, averaged over binarisations
    binarized: bool


def _scored_batch(model: VAE, x: torch.Tensor, num_binarizations: int, g: torch.Generator) -> torch.Tensor:
    """A Bernoulli model is a density over binary images, so a grey image is scored as the
    average over Bernoulli samples of it, as MNIST test digits are."""
    if model.config.likelihood != "bernoulli":
        return x
    return torch.bernoulli(x.expand(num_binarizations, *x.shape[1:]), generator=g)


@torch.no_grad()
def analyse_image(model: VAE, image, num_binarizations: int = 8, seed: int = 0) -> ImageAnalysis:
    """Encode one image (H, W) in [0, 1], reconstruct it, and give its ELBO in nats (estimator
    B, 10 samples of z per binarisation)."""
    x = _tensor(model, image).reshape(1, *model.config.image_shape)
    g = torch.Generator(device=x.device).manual_seed(seed)
    terms = elbo(model, _scored_batch(model, x, num_binarizations, g), "B", num_samples=10, generator=g)
    posterior = model.encode(x)
    return ImageAnalysis(
        reconstruction=model.mean_image(posterior.mu)[0, 0].cpu().numpy(),
        mu=posterior.mu[0].cpu().numpy(), std=torch.exp(0.5 * posterior.logvar[0]).cpu().numpy(),
        kl_per_dim=gaussian_kl(posterior)[0].cpu().numpy(), elbo=terms.elbo.item(),
        binarized=model.config.likelihood == "bernoulli")


@torch.no_grad()
def image_log_likelihood(model: VAE, image, num_importance_samples: int = 1000, num_binarizations: int = 8,
                         seed: int = 0) -> float:
    """The importance-sampled log p(x) of one image (H, W) in nats, k samples of q(z|x) as the
    proposal, averaged over binarisations as `analyse_image`."""
    x = _tensor(model, image).reshape(1, *model.config.image_shape)
    g = torch.Generator(device=x.device).manual_seed(seed)
    batch = _scored_batch(model, x, num_binarizations, g)
    return importance_sampled_log_likelihood(model, batch, num_importance_samples,
                                             chunk_size=min(500, num_importance_samples), generator=g).mean().item()


@torch.no_grad()
def per_image_elbo(model: VAE, images, batch_size: int = 1000, seed: int = 0) -> np.ndarray:
    """ELBO of each image (N, ...) in nats (estimator B, one sample): for percentiles."""
    x = _tensor(model, images).reshape(-1, *model.config.image_shape)
    g = torch.Generator(device=x.device).manual_seed(seed)
    out = []
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size]
        output = model(xb, 1, g)
        recon = log_likelihood(xb, output.likelihood, model.config.likelihood)[0]
        out.append(recon - gaussian_kl(output.posterior).sum(-1))
    return torch.cat(out).cpu().numpy()


@torch.no_grad()
def per_image_log_likelihood(model: VAE, images, num_importance_samples: int = 200, seed: int = 0) -> np.ndarray:
    """Importance-sampled log p(x) of each image (N, ...) in nats: for percentiles."""
    x = _tensor(model, images).reshape(-1, *model.config.image_shape)
    g = torch.Generator(device=x.device).manual_seed(seed)
    return torch.cat([importance_sampled_log_likelihood(model, x[i:i + 100], num_importance_samples,
                                                        chunk_size=min(200, num_importance_samples), generator=g)
                      for i in range(0, len(x), 100)]).cpu().numpy()


def percentile_among(value: float, reference: np.ndarray) -> float:
    """The share of `reference` below `value`, in percent."""
    return float((np.asarray(reference) < value).mean() * 100)


def score_sentence(what: str, value: float, reference: np.ndarray) -> str:
    """Where a score stands among the test digits', in one sentence and nothing more."""
    return (f"{what} {value:.1f} nats: higher than {percentile_among(value, reference):.0f}% of the test "
            f"digits (their median: {np.median(reference):.1f}).")


@dataclass(frozen=True)
class Surprise:
    name: str
    image: np.ndarray   # (H, W)
    elbo: float


def likelihood_surprises(model: VAE, digit) -> list[Surprise]:
    """A real digit beside images that are no digit at all (a blank page, a single thin stroke),
    each with its ELBO: the blank ones often score higher, because a likelihood measures how
    easy an image is to encode, not how much it looks like the training data."""
    h, w = model.config.image_height, model.config.image_width
    blank = np.zeros((h, w), np.float32)
    stroke = blank.copy()
    stroke[h // 4:3 * h // 4, w // 2] = 1.0
    dot = blank.copy()
    dot[h // 2 - 1:h // 2 + 1, w // 2 - 1:w // 2 + 1] = 1.0
    shown = [("this digit", np.asarray(digit, np.float32)), ("a blank image", blank),
             ("one thin stroke", stroke), ("a dot", dot)]
    return [Surprise(name, image, analyse_image(model, image).elbo) for name, image in shown]
