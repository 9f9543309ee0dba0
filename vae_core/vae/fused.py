"""The fused backward: hand-derived gradients of the ELBO for the paper's MLP VAE.

A training step of the default model (one hidden layer, Bernoulli decoder, estimator B with
L = 1) is a handful of small matrix products; written out, with no autograd graph and no
temporaries, it is the fastest path on a CPU. It is chosen by `TrainConfig.backward` ("fused");
`objective.elbo` stays the readable reference, and the tests compare the two. The noise eps
comes from the same global generator in the same order, so a run does not depend on which
path computed it.

With h1 = act(x W1' + b1), [mu, logvar] = h1 W2' + b2, z = mu + exp(logvar / 2) eps,
h2 = act(z W3' + b3), logits = h2 W4' + b4, the minimised loss per batch of B images is

    (1/B) sum_b [ sum_pixels (softplus(logits) - x logits) + beta * KL_b ],
    KL_b = 1/2 sum_j (mu^2 + exp(logvar) - 1 - logvar)      (AEVB eq. 10)

so d loss / d logits = (sigmoid(logits) - x) / B, d KL / d mu = mu, d KL / d logvar =
(exp(logvar) - 1) / 2, and d z / d logvar = eps * exp(logvar / 2) / 2. Each layer's backward
is then the usual d W = d out' in, d b = sum d out, d in = d out W, times act'(a) through an
activation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..config.vae import ModelConfig, TrainConfig
from .model import MLPVAE
from .objective import ElboTerms


def applies(model_config: ModelConfig, config: TrainConfig) -> bool:
    """True when `ElboGradients` computes this model's and objective's training gradients."""
    return (model_config.architecture == "mlp" and model_config.likelihood == "bernoulli"
            and model_config.hidden_layers == 1 and model_config.activation in _BACKWARD
            and config.estimator == "B" and config.num_samples == 1 and config.objective == "elbo"
            and not config.compile)


# Each activation in place on its pre-activation buffer, and its backward pass, grad * act'(a),
# written in place into `grad` in terms of the output h = act(a). For relu and tanh these are
# the single kernels autograd itself uses (several times faster on CPU than a mask or 1 - h^2
# and a multiplication). Softplus has no in-place kernel and returns a new tensor.
_FORWARD = {
    "relu": torch.relu_,
    "tanh": torch.tanh_,
    "softplus": F.softplus,
}
_BACKWARD = {
    "relu": lambda grad, h: torch.ops.aten.threshold_backward.grad_input(grad, h, 0, grad_input=grad),
    "tanh": lambda grad, h: torch.ops.aten.tanh_backward.grad_input(grad, h, grad_input=grad),
    "softplus": lambda grad, h: grad.mul_(-torch.expm1(-h)),  # sigmoid(a) = 1 - exp(-softplus(a))
}


class ElboGradients:
    """A training step's terms and gradients for one model, with every intermediate written
    into buffers kept from one call to the next (one set per batch shape) and each gradient
    into the parameter's existing `.grad`, so that a step works in the same memory each time.
    Across processes those `.grad` tensors are views of the buffer one all-reduce averages
    (`distributed.Replicas`), so the hand-derived gradients are averaged like autograd's."""

    def __init__(self, model: MLPVAE):
        self.model = model
        self._buffers: dict[tuple, dict[str, torch.Tensor]] = {}

    def _workspace(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        key = (x.shape, x.dtype, x.device)
        if key not in self._buffers:
            if len(self._buffers) >= 4:  # a full and a last partial batch are the usual two
                self._buffers.clear()
            _, enc, _, head = self.model.encoder
            n, hidden, latent = x.shape[0], enc.out_features, head.out_features // 2
            shapes = {"a1": (n, hidden), "head": (n, 2 * latent), "std": (n, latent), "eps": (n, latent),
                      "z": (n, latent), "var": (n, latent), "a2": (n, hidden), "logits": x.shape,
                      "pixels": x.shape, "recon": (n,), "d_a2": (n, hidden), "d_z": (n, latent),
                      "d_head": (n, 2 * latent), "d_a1": (n, hidden)}
            self._buffers[key] = {name: x.new_empty(shape) for name, shape in shapes.items()}
        return self._buffers[key]

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, beta: float = 1.0) -> ElboTerms:
        """The training terms of `objectives.elbo(model, x, "B", 1, beta)`, with the loss's
        gradient stored in each parameter's `.grad` (replacing what was there)."""
        model = self.model
        activation, backward = _FORWARD[model.config.activation], _BACKWARD[model.config.activation]
        _, enc, _, head = model.encoder  # Flatten, Linear, activation, Linear
        dec, _, out = model.decoder      # Linear, activation, Linear
        n = x.shape[0]
        x = x.reshape(n, -1)
        w = self._workspace(x)
        scale = 1.0 / n

        # Forward pass.
        h1 = activation(torch.addmm(enc.bias, x, enc.weight.t(), out=w["a1"]))
        mu, logvar = torch.addmm(head.bias, h1, head.weight.t(), out=w["head"]).chunk(2, dim=1)
        std = torch.mul(logvar, 0.5, out=w["std"]).exp_()
        eps = w["eps"].normal_()  # the global generator, as randn_like would use it
        z = torch.addcmul(mu, std, eps, out=w["z"])
        h2 = activation(torch.addmm(dec.bias, z, dec.weight.t(), out=w["a2"]))
        logits = torch.addmm(out.bias, h2, out.weight.t(), out=w["logits"])

        # Per image: recon = sum over pixels of x * logits - softplus(logits).
        softplus = torch.logaddexp(logits, logits.new_zeros(()), out=w["pixels"])
        nll = torch.addcmul(softplus, x, logits, value=-1.0, out=softplus)
        recon = torch.sum(nll, 1, out=w["recon"]).neg_()
        var = torch.mul(std, std, out=w["var"])
        kl = 0.5 * (mu * mu + var - 1.0 - logvar).sum(1)

        # Backward pass, layer by layer from the output.
        d_logits = torch.sigmoid(logits, out=w["pixels"]).sub_(x).mul_(scale)
        d_h2 = backward(torch.mm(d_logits, out.weight, out=w["d_a2"]), h2)
        d_z = torch.mm(d_h2, dec.weight, out=w["d_z"])
        d_head = w["d_head"]
        d_mu, d_logvar = d_head.chunk(2, dim=1)
        torch.add(d_z, mu, alpha=scale * beta, out=d_mu)
        torch.mul(d_z, eps, out=d_logvar).mul_(std).mul_(0.5).add_((var - 1.0).mul_(0.5 * scale * beta))
        d_h1 = backward(torch.mm(d_head, head.weight, out=w["d_a1"]), h1)

        for param, a, b in ((out.weight, d_logits, h2), (dec.weight, d_h2, z),
                            (head.weight, d_head, h1), (enc.weight, d_h1, x)):
            torch.mm(a.t(), b, out=_grad_buffer(param))
        for param, d in ((out.bias, d_logits), (dec.bias, d_h2), (head.bias, d_head), (enc.bias, d_h1)):
            torch.sum(d, 0, out=_grad_buffer(param))

        recon, kl = recon.mean(), kl.mean()
        return ElboTerms(loss=-(recon - beta * kl), elbo=recon - kl, recon=recon, kl=kl)


def _grad_buffer(param: torch.Tensor) -> torch.Tensor:
    """The parameter's `.grad`, made a contiguous tensor of its shape if it is not one."""
    grad = param.grad
    if (grad is None or grad.shape != param.shape or grad.dtype != param.dtype
            or grad.device != param.device or not grad.is_contiguous()):
        grad = param.grad = torch.empty_like(param, memory_format=torch.contiguous_format)
    return grad

