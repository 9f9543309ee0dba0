"""The ELBO, its estimators and the importance-sampled log-likelihood."""


import pytest
import torch
from torch.distributions import Normal, kl_divergence

from vae_core.registry import load_model
from vae_core.config import ModelConfig
from vae_core.data import synthetic_dataset, prepare
from vae_core.vae.model import Posterior, build_model
from vae_core.vae.objective import (elbo, gaussian_kl, importance_sampled_log_likelihood, iwae_bound,
                                 log_likelihood, log_normal, posterior_statistics)


def test_analytic_kl_matches_torch_distributions():
    mu, logvar = torch.randn(16, 5), torch.randn(16, 5)
    ours = gaussian_kl(Posterior(mu, logvar))
    reference = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0))
    torch.testing.assert_close(ours, reference)


def test_log_normal_matches_torch_distributions():
    z, mu, logvar = torch.randn(3, 4, 6), torch.randn(4, 6), torch.randn(4, 6)
    expected = Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(-1)
    torch.testing.assert_close(log_normal(z, mu, logvar), expected)
    torch.testing.assert_close(log_normal(z), Normal(0.0, 1.0).log_prob(z).sum(-1))


def test_bernoulli_log_likelihood_matches_bce():
    from vae_core.vae.model import Likelihood
    x = torch.randint(0, 2, (5, 1, 4, 4)).float()
    logits = torch.randn(5, 1, 4, 4) * 5
    expected = -torch.nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((1, 2, 3))
    torch.testing.assert_close(log_likelihood(x, Likelihood(logits), "bernoulli"), expected)


def test_gaussian_log_likelihood_matches_normal():
    from vae_core.vae.model import Likelihood
    x, mean, logvar = torch.rand(2, 1, 3, 3), torch.rand(2, 1, 3, 3), torch.randn(2, 1, 3, 3)
    expected = Normal(mean, torch.exp(0.5 * logvar)).log_prob(x).sum((1, 2, 3))
    torch.testing.assert_close(log_likelihood(x, Likelihood(mean, logvar), "gaussian"), expected)


def test_estimators_a_and_b_agree_in_expectation():
    torch.manual_seed(0)
    model = build_model(ModelConfig(latent_dim=4, hidden_dim=16, image_height=8, image_width=8))
    with torch.no_grad():  # a posterior far from the prior, so the KL is large and A's noise visible
        model.encoder[-1].bias.copy_(torch.tensor([1.0, -0.5, 0.3, 2.0, -1.0, 0.5, -2.0, 0.0]))
    x = torch.bernoulli(torch.full((8, 1, 8, 8), 0.3))
    with torch.no_grad():
        b = elbo(model, x, "B", num_samples=1)
        a = elbo(model, x, "A", num_samples=20000)
        a_single = elbo(model, x, "A", num_samples=1)
    assert a.kl.item() == pytest.approx(b.kl.item(), rel=0.02)
    assert a.elbo.item() == pytest.approx(b.elbo.item(), rel=0.01)
    assert a_single.kl.item() != pytest.approx(b.kl.item(), rel=1e-3)  # A is a noisy estimate


def test_elbo_terms_add_up_and_beta_weights_kl():
    torch.manual_seed(1)
    model = build_model(ModelConfig(latent_dim=2, hidden_dim=8, image_height=8, image_width=8))
    x = torch.bernoulli(torch.full((4, 1, 8, 8), 0.5))
    g = lambda: torch.Generator().manual_seed(0)
    t1 = elbo(model, x, "B", 1, beta=1.0, generator=g())
    t0 = elbo(model, x, "B", 1, beta=0.0, generator=g())
    torch.testing.assert_close(t1.elbo, t1.recon - t1.kl)
    torch.testing.assert_close(t1.loss, -t1.elbo)
    torch.testing.assert_close(t0.loss, -t0.recon)


def test_importance_sampled_log_likelihood_bounds_elbo_and_tightens(trained_run):
    model, _ = load_model(trained_run)
    x = prepare(synthetic_dataset(), "dynamic").test.images[:64]
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        elbo_value = elbo(model, x, "B", num_samples=100, generator=g).elbo.item()
        ll = {k: importance_sampled_log_likelihood(model, x, k, chunk_size=64, generator=g).mean().item()
              for k in (1, 10, 1000)}
    assert ll[1] == pytest.approx(elbo_value, abs=1.0)  # k = 1 is an ELBO estimate
    assert elbo_value < ll[10] < ll[1000]


def test_importance_sampling_chunking_gives_the_same_estimate():
    torch.manual_seed(2)
    model = build_model(ModelConfig(latent_dim=3, hidden_dim=8, image_height=8, image_width=8))
    x = torch.bernoulli(torch.full((5, 1, 8, 8), 0.4))
    one = importance_sampled_log_likelihood(model, x, 120, chunk_size=120, generator=torch.Generator().manual_seed(5))
    many = importance_sampled_log_likelihood(model, x, 120, chunk_size=7, generator=torch.Generator().manual_seed(5))
    # same total samples, different chunk boundaries: different draws, same estimate to MC error
    assert torch.allclose(one, many, atol=0.5)
    assert one.shape == (5,)


def test_iwae_bound_with_one_sample_is_the_elbo_estimate():
    torch.manual_seed(3)
    model = build_model(ModelConfig(latent_dim=2, hidden_dim=8, image_height=8, image_width=8))
    x = torch.bernoulli(torch.full((6, 1, 8, 8), 0.4))
    a = elbo(model, x, "A", 1, generator=torch.Generator().manual_seed(9))
    w = iwae_bound(model, x, 1, generator=torch.Generator().manual_seed(9))
    torch.testing.assert_close(w.mean(), a.elbo)


def test_active_units_count_only_dimensions_that_vary(trained_run):
    model, _ = load_model(trained_run)
    x = synthetic_dataset().test.images
    stats = posterior_statistics(model, x)
    assert stats["kl_per_dim"].shape == (2,)
    assert torch.equal(stats["active"], stats["mean_variance"] > 0.01)
    with torch.no_grad():  # a unit whose posterior mean ignores x is inactive
        model.encoder[-1].weight[0].zero_()
    assert not posterior_statistics(model, x)["active"][0]
