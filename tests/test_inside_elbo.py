"""Inside the ELBO: the measurements of vae_core.vae.inside on the shipped models (estimators A
and B, the importance-weighted bounds, gradient variances, per-dimension KL), checked against
their references, and the page that shows them."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from apptest_helpers import errors, open_page, texts
from vae_core.config import ModelConfig
from vae_core.data import load_dataset
from vae_core.registry import load_model
from vae_core.store import read_record
from vae_core.vae import inside
from vae_core.vae.model import build_model
from vae_core.vae.objective import ACTIVE_THRESHOLD, elbo, gaussian_kl, log_likelihood, log_normal

ROOT = Path(__file__).resolve().parent.parent
CHECKPOINTS = ROOT / "checkpoints"
SHIPPED_VAES = sorted(p.name for p in CHECKPOINTS.iterdir() if (p / "run.json").is_file()
                      and read_record(p).kind == "vae")
BETA_RUNS = {0.5: "mnist-mlp-z20-beta0.5", 1.0: "mnist-mlp-z20", 2.0: "mnist-mlp-z20-beta2",
             4.0: "mnist-mlp-z20-beta4"}


@pytest.fixture(scope="module")
def mnist_test():
    """The MNIST test digits, grey (N, H, W), as the page's digit input gives them."""
    return load_dataset("mnist").test.images[:, 0].numpy()


@pytest.fixture(scope="module")
def shipped():
    return {name: load_model(CHECKPOINTS / name)[0] for name in ("mnist-mlp-z2", "mnist-mlp-z20")}


def test_estimator_draws_are_the_batch_terms_of_the_elbo():
    """The page's draws are the per-copy terms of objective.elbo on R copies of x, noise and all."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(latent_dim=3, hidden_dim=16, image_height=6, image_width=6)).eval()
    x = torch.bernoulli(torch.full((1, 1, 6, 6), 0.4))
    for estimator, index in (("A", 0), ("B", 1)):
        draws = inside.estimator_draws(model, x, 7, 5, torch.Generator().manual_seed(3))[index]
        with torch.no_grad():
            reference = elbo(model, x.expand(5, -1, -1, -1), estimator, 7, generator=torch.Generator().manual_seed(3))
        assert draws.mean().item() == pytest.approx(reference.elbo.item(), abs=1e-4)


@pytest.mark.parametrize("name", ["mnist-mlp-z2", "mnist-mlp-z20"])
def test_estimators_a_and_b_agree_within_their_standard_errors(shipped, mnist_test, name):
    result = inside.compare_estimators(shipped[name], mnist_test[3], seed=0)
    for d in result.draws:
        # A and B come from the same draws of eps: their difference has its own standard error
        diff = d.a - d.b
        assert abs(diff.mean()) < 3 * diff.std(ddof=1) / math.sqrt(len(diff)), d.num_samples
        assert abs(d.a_mean - result.elbo) < 3 * math.hypot(d.a_stderr, result.elbo_stderr)
        assert abs(d.b_mean - result.elbo) < 3 * math.hypot(d.b_stderr, result.elbo_stderr)
        assert d.a_stderr > 0 and d.b_stderr > 0 and d.variance_ratio > 0
    # each estimator's spread shrinks as 1/sqrt(L): a tenfold L, a tenfold smaller variance
    for estimator in ("a", "b"):
        variances = [getattr(d, estimator).var() for d in result.draws]
        assert all(0.04 < later / earlier < 0.25 for earlier, later in zip(variances, variances[1:]))
    assert result.kl == pytest.approx(
        gaussian_kl(shipped[name].encode(inside.model_input(shipped[name], mnist_test[3]))).sum().item())


def test_at_initialisation_estimator_b_is_the_narrower(shipped, mnist_test):
    """What the page says beside a trained model's ratio: with the encoder still far from the
    posterior, sampling the KL (A) adds variance."""
    torch.manual_seed(0)
    untrained = build_model(shipped["mnist-mlp-z20"].config).eval()
    ratios = [inside.compare_estimators(untrained, mnist_test[i], num_samples=(1,), samples_per_point=400).draws[0].variance_ratio
              for i in range(3)]
    assert min(ratios) > 1, ratios


def test_importance_weighted_bound_rises_with_k_and_stays_below_k5000(shipped, mnist_test):
    model, image = shipped["mnist-mlp-z20"], mnist_test[3]
    curve = inside.importance_weighted_bounds(model, image, (1, 10, 100, 1000), samples_per_point=1000, seed=0)
    top = inside.importance_weighted_bounds(model, image, (5000,), min_repeats=4, seed=1)
    means, errs = curve.mean, curve.stderr
    for k in range(len(means) - 1):  # non-decreasing in expectation: no drop beyond the noise
        assert means[k + 1] > means[k] - 3 * math.hypot(errs[k], errs[k + 1])
    assert means[-1] - means[0] > 3 * math.hypot(errs[0], errs[-1])  # and it does rise
    assert np.all(means < top.mean[0] + 3 * np.hypot(errs, top.stderr[0]))
    assert curve.gap > 0 and list(curve.repeats) == [1000, 100, 10, 4]
    # L_1 is estimator A with one sample: the ELBO
    elbo = inside.compare_estimators(model, image, num_samples=(100,), min_repeats=20).elbo
    assert means[0] == pytest.approx(elbo, abs=3 * errs[0] + 0.1)


def test_posterior_gradients_match_autograd_of_each_estimator():
    """Each one-sample gradient, mapped to the encoder's weights by J^T, is autograd's gradient
    of that estimator for the same eps."""
    torch.manual_seed(1)
    model = build_model(ModelConfig(latent_dim=3, hidden_dim=12, image_height=5, image_width=5)).eval()
    x = torch.bernoulli(torch.full((1, 1, 5, 5), 0.5))
    params = list(model.encoder.parameters())
    draws = inside.posterior_gradients(model, x, 4, torch.Generator().manual_seed(5))
    eps = torch.randn((4, 3), generator=torch.Generator().manual_seed(5))

    def autograd_gradient(objective) -> torch.Tensor:
        return torch.cat([g.reshape(-1) for g in torch.autograd.grad(objective, params, retain_graph=True)])

    def through_jacobian(g: torch.Tensor) -> torch.Tensor:
        posterior = model.encode(x)
        out = torch.cat([posterior.mu[0], posterior.logvar[0]])
        return torch.cat([v.reshape(-1) for v in torch.autograd.grad(out, params, grad_outputs=g)])

    for n in range(4):
        posterior = model.encode(x)
        z = posterior.mu + torch.exp(0.5 * posterior.logvar) * eps[n]  # (1, D), through phi
        f = log_likelihood(x, model.decode(z), "bernoulli")[0]
        log_q, log_p = log_normal(z, *posterior)[0], log_normal(z)[0]
        z_fixed = z.detach()
        expected = {
            "reparameterisation": autograd_gradient(f),
            "score_function": autograd_gradient(f.detach() * log_normal(z_fixed, *model.encode(x))[0]),
            "estimator_a": autograd_gradient(f + log_p - log_q),
            "estimator_b": autograd_gradient(f - gaussian_kl(model.encode(x)).sum()),
        }
        for name, reference in expected.items():
            torch.testing.assert_close(through_jacobian(getattr(draws, name)[n]), reference,
                                       rtol=1e-4, atol=1e-5, msg=name)


def test_hand_written_gram_and_total_variance_match_their_references():
    torch.manual_seed(2)
    for activation in ("tanh", "relu", "softplus"):
        config = ModelConfig(latent_dim=3, hidden_dim=12, hidden_layers=2, image_height=5, image_width=5,
                             activation=activation)
        model = build_model(config).eval()
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0, 0.3)
        x = torch.rand(1, 1, 5, 5)
        assert inside.is_plain_mlp(model.encoder)
        torch.testing.assert_close(inside.encoder_gram(model, x, "mlp"), inside.encoder_gram(model, x, "autograd"),
                                   rtol=1e-4, atol=1e-6)
    assert not inside.is_plain_mlp(build_model(ModelConfig(architecture="conv", latent_dim=2, hidden_dim=8)).encoder)
    # the summed variance of J^T g over parameters, against the variance of the explicit gradients
    jacobian = torch.randn(6, 40, dtype=torch.float64)
    draws = torch.randn(30, 6, dtype=torch.float64) * torch.linspace(0.5, 3, 6, dtype=torch.float64)
    explicit = (draws @ jacobian).var(0).sum()
    assert inside.total_variance(draws, jacobian @ jacobian.T) == pytest.approx(explicit.item(), rel=1e-9)
    pairs = draws.reshape(15, 2, 6).mean(1)
    assert inside.total_variance(draws, jacobian @ jacobian.T, 2) == pytest.approx(
        (pairs @ jacobian).var(0).sum().item(), rel=1e-9)


@pytest.mark.parametrize("name", SHIPPED_VAES)
def test_score_function_variance_exceeds_reparameterisation_on_the_shipped_models(mnist_test, name):
    model = load_model(CHECKPOINTS / name)[0]
    result = inside.gradient_variance(model, mnist_test[0], num_samples=(1, 10), num_draws=2000, seed=0)
    assert np.all(result.ratio > 10), result.ratio  # orders of magnitude, not a close call
    # both fall as 1/L
    for variances in (result.reparameterisation, result.score_function):
        assert 0.04 < variances[1] / variances[0] < 0.25
    assert result.num_parameters == sum(p.numel() for p in model.encoder.parameters())


def test_per_dimension_kl_sums_to_the_analytic_kl(shipped, mnist_test):
    model = shipped["mnist-mlp-z20"]
    images = prepare_binary(mnist_test[:500])
    usage = inside.latent_usage(model, images, batch_size=200)
    x = torch.as_tensor(images).unsqueeze(1)
    with torch.no_grad():
        posterior = model.encode(x)
    reference = kl_divergence(Normal(posterior.mu, torch.exp(0.5 * posterior.logvar)), Normal(0.0, 1.0))
    np.testing.assert_allclose(usage.kl_per_dim, reference.mean(0).numpy(), rtol=1e-4, atol=1e-6)
    assert usage.kl_per_dim.sum() == pytest.approx(usage.kl, rel=1e-5)
    assert usage.elbo == pytest.approx(usage.recon - usage.kl, rel=1e-6)
    np.testing.assert_array_equal(usage.active, usage.mean_variance > ACTIVE_THRESHOLD)
    np.testing.assert_allclose(usage.mean_variance, posterior.mu.var(0, unbiased=False).numpy(), rtol=1e-4)
    # a run's recorded test figures are used only when their KL is this model's on these images
    recorded = inside.latent_usage(model, images, {"test_kl": usage.kl, "test_recon": -1.0}, batch_size=200)
    assert recorded.recon == -1.0 and recorded.elbo == pytest.approx(-1.0 - usage.kl)
    stale = inside.latent_usage(model, images, {"test_kl": usage.kl + 0.5, "test_recon": -1.0}, batch_size=200)
    assert stale.recon == pytest.approx(usage.recon)


def prepare_binary(images: np.ndarray) -> np.ndarray:
    return (np.random.default_rng(0).random(images.shape) < images).astype(np.float32)


def test_the_shipped_beta_runs_trade_rate_for_distortion_and_collapse_units():
    """The shipped 20-D runs with KL weights 0.5, 1, 2 and 4, from their test evaluations."""
    records = {beta: read_record(CHECKPOINTS / name) for beta, name in BETA_RUNS.items()}
    assert all(records[b].train_config.beta == b and records[b].model_config.latent_dim == 20 for b in records)
    rates = [records[b].summary["test_kl"] for b in sorted(records)]
    distortions = [-records[b].summary["test_recon"] for b in sorted(records)]
    assert rates == sorted(rates, reverse=True) and distortions == sorted(distortions)
    assert records[4.0].summary["active_units"] < 20
    for beta in (0.5, 2.0, 4.0):
        assert sum(f.stat().st_size for f in (CHECKPOINTS / BETA_RUNS[beta]).rglob("*") if f.is_file()) <= 4 * 2**20


PAGE = "pages/7_Inside_the_ELBO.py"


def test_inside_the_elbo_page_shows_all_four_measurements_and_follows_the_digit():
    at = open_page(PAGE)
    assert not at.exception and not errors(at), (at.exception, errors(at))
    # Only the open tab runs: the first shows the estimators and nothing of the others
    assert [t.label for t in at.tabs] == ["1. Two estimators", "2. How tight", "3. Why reparameterise",
                                           "4. Where the nats go"]
    assert "Var A / Var B" in texts(at) and "Score-function variance" not in texts(at)
    assert len(at.get("plotly_chart")) == 1
    table = next(m.value for m in at.markdown if m.value.startswith("| L |"))
    shown = {}
    for label, words, charts in (("3. Why reparameterise", "Score-function variance", 1),
                                 ("4. Where the nats go", "active units", 2), ("2. How tight", "L_k", 1)):
        at.session_state["inside_section"] = label
        at.run()
        assert not at.exception and not errors(at), (label, at.exception, errors(at))
        shown[label] = texts(at)
        assert words in shown[label] and "Var A / Var B" not in shown[label], label
        assert len(at.get("plotly_chart")) == charts, label
    assert all(name in shown["4. Where the nats go"] for name in BETA_RUNS.values())
    # the k = 5000 point on request: a log p(x) line joins the bound chart
    button = next(b for b in at.button if "5000" in b.label)
    button.click().run()
    assert not at.exception and "log p(x) ≈ L_5000" in texts(at)
    assert "L_5000" in str(at.get("plotly_chart")[0].proto.spec)
    # a new digit: the open tab follows it, and so does the first tab's table
    at.number_input(key="inside_index").set_value(3).run()
    assert not at.exception and "test digit #3" in texts(at) and "log p(x) ≈ L_5000" not in texts(at)
    at.session_state["inside_section"] = "1. Two estimators"
    at.run()
    assert next(m.value for m in at.markdown if m.value.startswith("| L |")) != table
