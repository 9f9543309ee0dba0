"""The reparameterisation trick as the Latent space page shows it (a posterior's ellipse and
draws z = mu + sigma * eps from it) and the t-SNE map of codes above 2-D, computed in vae_core."""

import numpy as np
import pytest
import torch

from vae_core.config import ModelConfig
from vae_core.vae import explore
from vae_core.vae.model import build_model
from vae_core.vae.neighbours import tsne_map


def small_model(latent_dim=2, seed=0):
    torch.manual_seed(seed)
    return build_model(ModelConfig(latent_dim=latent_dim, hidden_dim=32)).eval()


def test_draws_are_mu_plus_sigma_times_eps_from_the_encoder():
    model = small_model(3)
    image = np.random.default_rng(0).random((28, 28)).astype(np.float32)
    draws = explore.reparameterised_draws(model, image, n=6, seed=4)
    posterior = model.encode(torch.as_tensor(image).reshape(1, 1, 28, 28))
    np.testing.assert_allclose(draws.mu, posterior.mu[0].detach().numpy(), atol=1e-6)
    np.testing.assert_allclose(draws.sigma, torch.exp(0.5 * posterior.logvar[0]).detach().numpy(), rtol=1e-6)
    assert draws.eps.shape == draws.z.shape == (6, 3) and draws.images.shape == (6, 28, 28)
    np.testing.assert_allclose(draws.z, draws.mu + draws.sigma * draws.eps, atol=1e-6)
    np.testing.assert_allclose(draws.images, explore.decode(model, draws.z), atol=1e-6)
    again = explore.reparameterised_draws(model, image, n=6, seed=4)
    other = explore.reparameterised_draws(model, image, n=6, seed=5)
    np.testing.assert_array_equal(again.z, draws.z)  # a seed gives the same draws
    assert not np.allclose(other.eps, draws.eps)


def test_eps_is_standard_normal():
    draws = explore.reparameterised_draws(small_model(2), np.zeros((28, 28), np.float32), n=20_000, seed=1)
    assert abs(draws.eps.mean()) < 0.03 and abs(draws.eps.std() - 1) < 0.03
    assert abs(np.corrcoef(draws.eps.T)[0, 1]) < 0.03


def test_the_ellipse_of_a_coordinate_projection_is_sigma_along_the_axes():
    projection = explore.coordinate_projection(2, (0, 1))
    ellipse = explore.posterior_ellipse([0.5, -1.0], [0.1, 0.3], projection, k=2)
    np.testing.assert_allclose(ellipse.centre, [0.5, -1.0])
    assert ellipse.radii == pytest.approx((0.6, 0.2))
    assert abs(np.sin(ellipse.angle)) == pytest.approx(1.0)  # the long axis is vertical


@pytest.mark.parametrize("latent_dim", [2, 5])
def test_draws_fall_inside_the_1_and_2_sigma_ellipses_as_a_2d_gaussian_says(latent_dim):
    # Through any linear projection the draws are a 2-D Gaussian, so P(inside k) = 1 - exp(-k^2 / 2):
    # 39.3% inside 1 sigma, 86.5% inside 2.
    model = small_model(latent_dim, seed=2)
    draws = explore.reparameterised_draws(model, np.random.default_rng(1).random((28, 28)), n=20_000, seed=0)
    codes = np.random.default_rng(3).normal(size=(200, latent_dim)) * np.arange(1, latent_dim + 1)
    projection = explore.coordinate_projection(2, (0, 1)) if latent_dim == 2 else explore.pca_projection(codes)
    for k, share in ((1, 1 - np.exp(-0.5)), (2, 1 - np.exp(-2))):
        ellipse = explore.posterior_ellipse(draws.mu, draws.sigma, projection, k)
        inside = (explore.mahalanobis_2d(projection(draws.z), ellipse) < 1).mean()
        assert inside == pytest.approx(share, abs=0.015)


def test_tsne_keeps_clusters_that_pca_mixes():
    # Ten tight clusters placed on the vertices of a simplex in 12-D: no two principal
    # components separate them all, a t-SNE map does.
    rng = np.random.default_rng(0)
    centres = 3 * np.eye(12)[:10]
    labels = rng.integers(0, 10, 600)
    z = centres[labels] + 0.1 * rng.normal(size=(600, 12))
    result = tsne_map(z, n=400, seed=0)
    assert result.points.shape == (400, 2) and len(set(result.indices)) == 400
    assert np.all(np.diff(result.indices) > 0)

    def neighbour_agreement(points):
        d = ((points[:, None] - points[None]) ** 2).sum(-1)
        np.fill_diagonal(d, np.inf)
        return (labels[result.indices][d.argmin(1)] == labels[result.indices]).mean()
    pca = explore.pca_projection(z)(z[result.indices])
    assert neighbour_agreement(result.points) > 0.98
    assert neighbour_agreement(pca) < 0.9
    np.testing.assert_array_equal(tsne_map(z, n=400, seed=0).points, result.points)  # cached maps stay valid
