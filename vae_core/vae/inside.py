"""The claims of Kingma & Welling (2013) measured on one trained VAE and one digit: the two SGVB
estimators of the ELBO, the importance-weighted bounds between the ELBO and log p(x), the
variance of the reparameterised and the score-function gradient, and where a model's KL goes.

Inputs are numpy images, outputs named results of numpy arrays and floats, for the "Inside the
ELBO" page. Every figure is in nats per image; noise comes from an explicit seed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, NamedTuple

import numpy as np
import torch

from .model import VAE, Posterior, reparameterize
from .objective import (ACTIVE_THRESHOLD, evaluate_elbo, gaussian_kl, importance_sampled_log_likelihood,
                        log_likelihood, log_normal, posterior_statistics)

# The numbers of importance samples k of the bound L_k (Burda et al. 2015) drawn by default;
# k = 5000, the project's log p(x) estimate, is computed on request (it costs as much as the rest).
BOUND_SAMPLES = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
LOG_LIKELIHOOD_SAMPLES = 5000

# A grey digit is binarised once, with this seed, for a Bernoulli decoder; the draws of each
# measurement have their own seeds.
BINARISATION_SEED = 0


def model_input(model: VAE, image) -> torch.Tensor:
    """One image (H, W) in [0, 1] as the model's input (1, C, H, W). A Bernoulli decoder is a
    density over binary images, so a grey image is binarised once, with BINARISATION_SEED, as
    the test set is; a Gaussian decoder takes the grey values."""
    x = torch.as_tensor(np.asarray(image, dtype=np.float32),
                        device=next(model.parameters()).device).reshape(1, *model.config.image_shape)
    if model.config.likelihood == "bernoulli":
        g = torch.Generator(device=x.device).manual_seed(BINARISATION_SEED)
        x = torch.bernoulli(x, generator=g)
    return x


def binarised(model: VAE, image) -> np.ndarray:
    """The image the numbers of this module are about, (H, W): `model_input` for display."""
    return model_input(model, image)[0, 0].cpu().numpy()


# --- 1. Two estimators of one bound (AEVB eqs. 6 and 7) ---

@dataclass(frozen=True)
class EstimatorDraws:
    """Repeated draws of the SGVB estimators with L samples each, from the same draws of eps."""
    num_samples: int   # L
    a: np.ndarray      # (R,) estimator A: (1/L) sum_l log p(x, z_l) - log q(z_l|x)
    b: np.ndarray      # (R,) estimator B: (1/L) sum_l log p(x|z_l) - KL(q(z|x) || p(z))

    @property
    def a_mean(self) -> float:
        return float(self.a.mean())

    @property
    def b_mean(self) -> float:
        return float(self.b.mean())

    @property
    def a_stderr(self) -> float:
        return float(self.a.std(ddof=1) / math.sqrt(len(self.a)))

    @property
    def b_stderr(self) -> float:
        return float(self.b.std(ddof=1) / math.sqrt(len(self.b)))

    @property
    def variance_ratio(self) -> float:
        """Var(A) / Var(B): above 1 where the analytic KL narrows the estimate, below 1 where
        sampling the KL cancels part of the reconstruction's noise (a posterior close to the true one)."""
        return float(self.a.var(ddof=1) / self.b.var(ddof=1))


@dataclass(frozen=True)
class EstimatorComparison:
    draws: list[EstimatorDraws]   # one per L, in increasing L
    kl: float                     # the analytic KL(q(z|x) || p(z)) of estimator B
    elbo: float                   # the best estimate of the ELBO: estimator B over every draw
    elbo_stderr: float


@torch.no_grad()
def estimator_draws(model: VAE, x: torch.Tensor, num_samples: int, repeats: int,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """`repeats` draws of estimators A and B with `num_samples` samples each for one input x
    (1, C, H, W): two (R,) tensors. The layout of the noise, (L, R, D), is that of
    `objective.elbo` on R copies of x, so the means are its batch means."""
    posterior = model.encode(x)
    mu, logvar = (t.expand(repeats, -1) for t in posterior)  # (R, D)
    z = reparameterize(Posterior(mu, logvar), num_samples, generator)  # (L, R, D)
    recon = log_likelihood(x, model.decode(z), model.config.likelihood)  # (L, R)
    log_ratio = log_normal(z, mu, logvar) - log_normal(z)  # (L, R): log q(z|x) - log p(z)
    kl = gaussian_kl(posterior).sum()
    return (recon - log_ratio).mean(0), recon.mean(0) - kl


def compare_estimators(model: VAE, image, num_samples=(1, 10, 100), samples_per_point: int = 2000,
                       min_repeats: int = 40, seed: int = 0) -> EstimatorComparison:
    """Estimators A (Monte Carlo KL, eq. 6) and B (analytic KL, eq. 7), each drawn
    max(`min_repeats`, `samples_per_point` // L) times at each L, from the same draws of eps:
    both are unbiased for the same ELBO."""
    x = model_input(model, image)
    g = torch.Generator(device=x.device).manual_seed(seed)
    draws = []
    for L in num_samples:
        a, b = estimator_draws(model, x, L, max(min_repeats, samples_per_point // L), g)
        draws.append(EstimatorDraws(L, a.cpu().numpy().astype(np.float64), b.cpu().numpy().astype(np.float64)))
    with torch.no_grad():
        kl = gaussian_kl(model.encode(x)).sum().item()
    # Each B draw averages L samples: weigh them by L, so that the pooled mean is over all samples.
    weights = np.concatenate([np.full(len(d.b), d.num_samples, dtype=np.float64) for d in draws])
    values = np.concatenate([d.b for d in draws])
    elbo = float((weights * values).sum() / weights.sum())
    # Var of one draw with L samples is sigma^2 / L, so the pooled mean's variance is sigma^2 / sum(L).
    sigma2 = float(np.mean([d.b.var(ddof=1) * d.num_samples for d in draws]))
    return EstimatorComparison(draws, kl, elbo, math.sqrt(sigma2 / weights.sum()))


# --- 2. How tight is the bound (Burda et al. 2015) ---

@dataclass(frozen=True)
class BoundCurve:
    """The importance-weighted bound L_k = log (1/k) sum_i p(x, z_i) / q(z_i|x), z_i ~ q(z|x),
    drawn repeatedly at each k. L_1 is the ELBO; L_k rises towards log p(x) as k grows."""
    num_samples: np.ndarray   # (K,) the k's
    mean: np.ndarray          # (K,) mean of the draws of L_k
    stderr: np.ndarray        # (K,) its standard error
    repeats: np.ndarray       # (K,) draws of L_k behind each point

    @property
    def gap(self) -> float:
        """L_k at the largest k minus L_1: a lower estimate of log p(x) - ELBO, which is
        KL(q(z|x) || p(z|x))."""
        return float(self.mean[-1] - self.mean[0])


def importance_weighted_bounds(model: VAE, image, num_samples=BOUND_SAMPLES, samples_per_point: int = 300,
                               min_repeats: int = 4, seed: int = 0, chunk_size: int = 1000) -> BoundCurve:
    """L_k for each k in `num_samples`, by the project's importance-sampled log-likelihood
    estimator (which is L_k at k samples), drawn max(`min_repeats`, `samples_per_point` // k)
    times: small k, whose draws spread most, get the most draws for about the same cost."""
    x = model_input(model, image)
    g = torch.Generator(device=x.device).manual_seed(seed)
    means, stderrs, repeats = [], [], []
    for k in num_samples:
        r = max(min_repeats, samples_per_point // k)
        batch = x.expand(r, *x.shape[1:])  # (R, C, H, W): R independent draws of L_k
        draws = importance_sampled_log_likelihood(model, batch, k, chunk_size=max(1, chunk_size // r),
                                                  generator=g).double()
        means.append(draws.mean().item())
        stderrs.append((draws.std() / math.sqrt(r)).item())
        repeats.append(r)
    return BoundCurve(np.asarray(num_samples), np.asarray(means), np.asarray(stderrs), np.asarray(repeats))


# --- 3. Why reparameterise (AEVB sections 2.2-2.4) ---

class GradientDraws(NamedTuple):
    """One-sample gradient estimates with respect to the posterior's parameters (mu, logvar) at
    one x, one row per draw of eps: (N, 2D) each. A gradient with respect to the encoder's
    weights phi is J^T g, with J the Jacobian of (mu, logvar) with respect to phi."""
    reparameterisation: torch.Tensor  # of E_q[log p(x|z)], through z = mu + sigma * eps (eq. 4)
    score_function: torch.Tensor      # of E_q[log p(x|z)], as log p(x|z) * grad log q(z|x) (REINFORCE)
    estimator_a: torch.Tensor         # of estimator A of the ELBO (eq. 6), reparameterised
    estimator_b: torch.Tensor         # of estimator B of the ELBO (eq. 7), reparameterised


def posterior_gradients(model: VAE, x: torch.Tensor, num_draws: int,
                        generator: torch.Generator | None = None) -> GradientDraws:
    """One-sample gradient estimates at x (1, C, H, W) for `num_draws` draws of eps.

    With f(z) = log p(x|z), z = mu + sigma * eps and sigma = exp(logvar / 2):
    reparameterisation: d/dmu = f'(z), d/dlogvar = f'(z) * eps * sigma / 2;
    score function: f(z) * (d/dmu, d/dlogvar) log q(z|x) = f(z) * (eps / sigma, (eps^2 - 1) / 2);
    estimator A adds log p(z) - log q(z|x) along the path: -z to d/dmu, -z * eps * sigma / 2 + 1/2
    to d/dlogvar; estimator B adds the analytic -KL: -mu and (1 - sigma^2) / 2.
    """
    with torch.no_grad():
        posterior = model.encode(x)
    mu, logvar = posterior.mu[0], posterior.logvar[0]  # (D,)
    sigma = torch.exp(0.5 * logvar)
    eps = torch.randn((num_draws, len(mu)), device=x.device, generator=generator)  # (N, D)
    with torch.enable_grad():
        z = (mu + sigma * eps).requires_grad_(True)
        f = log_likelihood(x, model.decode(z), model.config.likelihood)  # (N,)
        (f_z,) = torch.autograd.grad(f.sum(), z)  # (N, D): each row depends on its own z only
    z, f = z.detach(), f.detach()[:, None]
    half_path = eps * sigma / 2  # d z / d logvar
    prior_path = f_z - z         # d/dz of log p(x|z) + log p(z)
    return GradientDraws(
        reparameterisation=torch.cat([f_z, f_z * half_path], dim=1),
        score_function=torch.cat([f * eps / sigma, f * (eps.pow(2) - 1) / 2], dim=1),
        estimator_a=torch.cat([prior_path, prior_path * half_path + 0.5], dim=1),
        estimator_b=torch.cat([f_z - mu, f_z * half_path + (1 - sigma.pow(2)) / 2], dim=1))


def encoder_gram_autograd(model: VAE, x: torch.Tensor) -> torch.Tensor:
    """J J^T (2D, 2D) for the Jacobian J (2D, P) of the posterior's (mu, logvar) with respect to
    the encoder's P parameters at x (1, C, H, W), one backward pass per output: the reference."""
    params = list(model.encoder.parameters())
    with torch.enable_grad():
        posterior = model.encode(x)
        out = torch.cat([posterior.mu[0], posterior.logvar[0]])  # (2D,)
        rows = [torch.cat([g.reshape(-1) for g in torch.autograd.grad(o, params, retain_graph=True)])
                for o in out]
    jacobian = torch.stack(rows)  # (2D, P)
    return jacobian @ jacobian.T


ACTIVATION_DERIVATIVES = {
    torch.nn.Tanh: lambda pre, post: 1 - post.pow(2),
    torch.nn.ReLU: lambda pre, post: (pre > 0).to(pre.dtype),
    torch.nn.Softplus: lambda pre, post: torch.sigmoid(pre),
}


def is_plain_mlp(encoder: torch.nn.Module) -> bool:
    """An encoder the hand-written Gram handles: Flatten, then Linear layers with the activations
    of ACTIVATION_DERIVATIVES between them."""
    kinds = (torch.nn.Flatten, torch.nn.Linear, *ACTIVATION_DERIVATIVES)
    return isinstance(encoder, torch.nn.Sequential) and all(type(m) in kinds for m in encoder)


@torch.no_grad()
def encoder_gram_mlp(model: VAE, x: torch.Tensor) -> torch.Tensor:
    """J J^T for a plain MLP encoder by hand, without forming J. For a Linear layer with input a
    and the outputs' gradients Delta (2D, out) at its output, the weight's rows of J are
    Delta_i a^T and the bias's Delta_i, so the layer adds (Delta Delta^T)(a.a + 1)."""
    linears, inputs, derivatives = [], [], []
    h = x
    for module in model.encoder:
        if isinstance(module, torch.nn.Linear):
            linears.append(module)
            inputs.append(h[0])
            h = module(h)
        elif isinstance(module, torch.nn.Flatten):
            h = module(h)
        else:
            pre, h = h, module(h)
            derivatives.append(ACTIVATION_DERIVATIVES[type(module)](pre[0], h[0]))
    delta = torch.eye(linears[-1].out_features, device=x.device)  # (2D, out) at the last layer
    gram = torch.zeros_like(delta)
    for i in range(len(linears) - 1, -1, -1):
        a = inputs[i]
        gram += (delta @ delta.T) * (a @ a + 1)
        if i > 0:
            delta = (delta @ linears[i].weight) * derivatives[i - 1]  # (2D, in)
    return gram


def encoder_gram(model: VAE, x: torch.Tensor, method: str = "auto") -> torch.Tensor:
    """J J^T of the encoder at x: "mlp" by hand (plain MLP encoders), "autograd" the reference,
    "auto" the hand-written one where it applies."""
    if method == "auto":
        method = "mlp" if is_plain_mlp(model.encoder) else "autograd"
    return encoder_gram_mlp(model, x) if method == "mlp" else encoder_gram_autograd(model, x)


def total_variance(per_draw: torch.Tensor, gram: torch.Tensor, group: int = 1) -> float:
    """The variance of the mean of `group` one-sample gradients, summed over the encoder's
    parameters: the draws (N, 2D) are split into N // group disjoint groups, and
    tr(J^T Cov(mean) J) = tr(Cov(mean) J J^T) is estimated from the group means."""
    n = per_draw.shape[0] // group
    means = per_draw[:n * group].reshape(n, group, -1).mean(1).double()  # (n, 2D)
    centred = means - means.mean(0)
    return float(torch.einsum("ni,ij,nj->", centred, gram.double(), centred) / (n - 1))


@dataclass(frozen=True)
class GradientVariance:
    """The variance of two estimators of the gradient of E_q[log p(x|z)] with respect to every
    parameter phi of the encoder, summed over the parameters, with L samples each: the
    reparameterised and the score-function (REINFORCE) gradient. Both estimate the same
    gradient; the KL term's gradient is exact in estimator B and adds nothing to the variance."""
    num_samples: np.ndarray         # (K,) the L's
    reparameterisation: np.ndarray  # (K,) total variance
    score_function: np.ndarray      # (K,)
    num_draws: int                  # one-sample gradients behind every point
    num_parameters: int
    gradient_norm: float            # |mean reparameterised gradient| over all draws
    difference_norm: float          # |mean score-function - mean reparameterised gradient|
    difference_noise: float         # the norm that difference has from noise alone, sqrt(E|.|^2)
    estimator_a_over_b: float       # Var of the ELBO's one-sample gradient, estimator A over B

    @property
    def ratio(self) -> np.ndarray:
        """Score-function variance over reparameterisation variance, at each L."""
        return self.score_function / self.reparameterisation


def gradient_variance(model: VAE, image, num_samples=(1, 3, 10, 30, 100),
                      num_draws: int = 2500, seed: int = 0) -> GradientVariance:
    """The summed variance over the encoder's parameters of the reparameterised and the
    score-function gradient with L samples, for each L in `num_samples`, from `num_draws`
    one-sample gradients split into disjoint groups of L (the largest L should leave at least
    twenty-five groups, for a variance good to about 30%)."""
    x = model_input(model, image)
    g = torch.Generator(device=x.device).manual_seed(seed)
    gram = encoder_gram(model, x)
    draws = posterior_gradients(model, x, num_draws, g)
    rp, sf = draws.reparameterisation, draws.score_function

    def norm(v: torch.Tensor) -> float:
        v = v.double()
        return float(torch.sqrt(v @ gram.double() @ v))
    difference = sf.mean(0) - rp.mean(0)
    return GradientVariance(
        num_samples=np.asarray(num_samples),
        reparameterisation=np.asarray([total_variance(rp, gram, L) for L in num_samples]),
        score_function=np.asarray([total_variance(sf, gram, L) for L in num_samples]),
        num_draws=num_draws,
        num_parameters=sum(p.numel() for p in model.encoder.parameters()),
        gradient_norm=norm(rp.mean(0)), difference_norm=norm(difference),
        difference_noise=math.sqrt(total_variance(sf - rp, gram) / num_draws),
        estimator_a_over_b=total_variance(draws.estimator_a, gram) / total_variance(draws.estimator_b, gram))


# --- 4. Where the nats go ---

@dataclass(frozen=True)
class LatentUsage:
    """How a model spends its KL over a data set, in nats per image."""
    kl_per_dim: np.ndarray     # (D,) mean over the images of KL(q(z_u|x) || p(z_u))
    mean_variance: np.ndarray  # (D,) Var_x E_q[z_u|x]
    active: np.ndarray         # (D,) bool: mean_variance > ACTIVE_THRESHOLD
    kl: float                  # the rate, KL(q(z|x) || p(z)) (sum of kl_per_dim)
    recon: float               # E_q[log p(x|z)], minus the distortion
    elbo: float                # recon - kl

    @property
    def num_active(self) -> int:
        return int(self.active.sum())


def latent_usage(model: VAE, images, evaluation: Mapping | None = None, batch_size: int = 1000,
                 seed: int = 0) -> LatentUsage:
    """Per-dimension KL, active units (Burda et al. 2015) and the ELBO's two terms of a model over
    images (N, H, W), given as the model was trained on them (binary for a Bernoulli decoder).

    `evaluation` may hold the run's own test figures (`test_recon`, `test_kl`, as `evaluate`
    records them: estimator B, one sample per image). Its reconstruction term is used when its
    KL is the one computed here, which the analytic KL makes an exact check that it belongs to
    this model and these images; otherwise the decoder is run, one sample per image too.
    """
    x = torch.as_tensor(np.asarray(images, dtype=np.float32),
                        device=next(model.parameters()).device).reshape(-1, *model.config.image_shape)
    stats = posterior_statistics(model, x, batch_size, ACTIVE_THRESHOLD)
    kl_per_dim = stats["kl_per_dim"].cpu().numpy()
    kl = float(kl_per_dim.sum(dtype=np.float64))
    evaluation = evaluation or {}
    recorded_kl, recorded_recon = evaluation.get("test_kl"), evaluation.get("test_recon")
    if (isinstance(recorded_kl, (int, float)) and isinstance(recorded_recon, (int, float))
            and abs(recorded_kl - kl) <= 1e-4 * max(1.0, abs(kl))):
        recon = float(recorded_recon)
    else:
        recon = evaluate_elbo(model, x, batch_size, seed)["recon"]
    return LatentUsage(kl_per_dim, stats["mean_variance"].cpu().numpy(), stats["active"].cpu().numpy(),
                       kl, recon, recon - kl)
