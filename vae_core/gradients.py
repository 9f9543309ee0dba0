"""Hand-derived gradients of the ELBO for the paper's MLP VAE.

For the default model (one hidden layer, Bernoulli decoder, estimator B with L = 1) a training
step is a handful of small matrix products. On a CPU, autograd's graph bookkeeping and the
extra temporaries cost about as much as those products, so the trainer computes the
gradients directly (backpropagation written out below) and leaves them in `.grad` for the
optimiser. The numbers are the ones autograd gives, to float rounding (tests compare them);
the noise eps comes from the same global generator in the same order, so a run does not
depend on which path computed it.

With h1 = act(x W1' + b1), [mu, logvar] = h1 W2' + b2, z = mu + exp(logvar / 2) eps,
h2 = act(z W3' + b3), logits = h2 W4' + b4, the minimised loss per batch of B images is

    (1/B) sum_b [ sum_pixels (softplus(logits) - x logits) + beta * KL_b ],
    KL_b = 1/2 sum_j (mu^2 + exp(logvar) - 1 - logvar)      (AEVB eq. 10)

so d loss / d logits = (sigmoid(logits) - x) / B, d KL / d mu = mu, d KL / d logvar =
(exp(logvar) - 1) / 2, and d z / d logvar = eps * exp(logvar / 2) / 2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .models import MLPVAE, VAE
from .objectives import ElboTerms


def supported(model: VAE, estimator: str, num_samples: int, objective: str) -> bool:
    """True when `elbo_with_gradients` computes this configuration's training gradients."""
    return (isinstance(model, MLPVAE) and model.config.likelihood == "bernoulli"
            and model.config.hidden_layers == 1
            and model.config.activation in _BACKWARD
            and estimator == "B" and num_samples == 1 and objective == "elbo")


# Each activation's backward pass, grad * act'(a), written in terms of its output h = act(a).
# For relu and tanh these are the single kernels autograd itself uses (several times faster on
# CPU than a mask or 1 - h^2 and a multiplication).
_BACKWARD = {
    "relu": lambda grad, h: torch.ops.aten.threshold_backward(grad, h, 0),
    "tanh": lambda grad, h: torch.ops.aten.tanh_backward(grad, h),
    "softplus": lambda grad, h: grad.mul_(-torch.expm1(-h)),  # sigmoid(a) = 1 - exp(-softplus(a))
}


@torch.no_grad()
def elbo_with_gradients(model: MLPVAE, x: torch.Tensor, beta: float = 1.0) -> ElboTerms:
    """The training terms of `objectives.elbo(model, x, "B", 1, beta)`, with the loss's
    gradient stored in each parameter's `.grad` (replacing what was there)."""
    backward = _BACKWARD[model.config.activation]
    _, enc, enc_act, head = model.encoder  # Flatten, Linear, activation, Linear
    dec, dec_act, out = model.decoder      # Linear, activation, Linear
    n = x.shape[0]
    x = x.reshape(n, -1)
    scale = 1.0 / n

    # Forward pass.
    h1 = enc_act(torch.addmm(enc.bias, x, enc.weight.t()))
    mu, logvar = torch.addmm(head.bias, h1, head.weight.t()).chunk(2, dim=1)
    std = torch.exp(0.5 * logvar)
    eps = torch.randn_like(std)
    z = torch.addcmul(mu, std, eps)
    h2 = dec_act(torch.addmm(dec.bias, z, dec.weight.t()))
    logits = torch.addmm(out.bias, h2, out.weight.t())

    recon = (x * logits - F.softplus(logits)).sum(1)
    var = std * std
    kl = 0.5 * (mu * mu + var - 1.0 - logvar).sum(1)

    # Backward pass, layer by layer from the output.
    d_logits = torch.sigmoid(logits).sub_(x).mul_(scale)
    d_h2 = backward(d_logits @ out.weight, h2)
    d_z = d_h2 @ dec.weight
    d_mu = d_z + (scale * beta) * mu
    d_logvar = (d_z * eps).mul_(0.5 * std).add_((var - 1.0).mul_(0.5 * scale * beta))
    d_head = torch.cat([d_mu, d_logvar], dim=1)
    d_h1 = backward(d_head @ head.weight, h1)

    grads = ((out.weight, d_logits.t() @ h2), (out.bias, d_logits.sum(0)),
             (dec.weight, d_h2.t() @ z), (dec.bias, d_h2.sum(0)),
             (head.weight, d_head.t() @ h1), (head.bias, d_head.sum(0)),
             (enc.weight, d_h1.t() @ x), (enc.bias, d_h1.sum(0)))
    for param, grad in grads:
        param.grad = grad

    recon, kl = recon.mean(), kl.mean()
    return ElboTerms(loss=-(recon - beta * kl), elbo=recon - kl, recon=recon, kl=kl)
