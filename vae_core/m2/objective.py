"""M2's bounds, in nats per example (Kingma et al. 2014, sec. 3.1.2): L(x, y) for a labelled
example (eq. 6) and U(x) for an unlabelled one (eq. 7), each with one sample of z per class,
and the scores of a split."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from ..data import Split
from ..trainer import EVAL_BATCH
from ..vae.objective import gaussian_kl, log_likelihood
from .model import M2


class Unlabelled(NamedTuple):
    bound: torch.Tensor         # U(x), (B,)
    logits: torch.Tensor        # the classifier's q(y|x) as logits, (B, K)
    class_bounds: torch.Tensor  # L(x, y) for every class, (B, K)


def labelled_bound(model: M2, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None,
                   beta: float = 1.0) -> torch.Tensor:
    """L(x, y) = E_q(z|x,y)[log p(x|y,z)] + log p(y) - KL(q(z|x,y) || p(z)) (eq. 6), one sample
    of z; x flat (..., B, D), y one-hot (..., B, K); returns (..., B). `beta` weighs the KL term
    (1: the bound; only training uses another weight)."""
    out = model(x, y, generator)
    log_prior_y = -math.log(model.config.num_classes)
    log_px = log_likelihood(x, out.likelihood, model.config.likelihood, event_dims=1)
    return log_px + log_prior_y - beta * gaussian_kl(out.posterior).sum(-1)


def class_bounds(model: M2, x: torch.Tensor, generator: torch.Generator | None = None,
                 beta: float = 1.0) -> torch.Tensor:
    """L(x, y) for every class y, one sample of z each: flat x (B, D) -> (B, K)."""
    k = model.config.num_classes
    ys = torch.eye(k, device=x.device)[:, None, :].expand(k, x.shape[0], k)  # (K, B, K)
    return labelled_bound(model, x, ys, generator, beta).T


def unlabelled_bound(model: M2, x: torch.Tensor, generator: torch.Generator | None = None,
                     beta: float = 1.0) -> Unlabelled:
    """U(x) = sum_y q(y|x) L(x, y) + H(q(y|x)) (eq. 7), every class enumerated."""
    x = x.reshape(x.shape[0], -1)                                         # (B, D)
    logits = model.classify_logits(x)                                     # (B, K)
    q = logits.softmax(-1)
    bounds = class_bounds(model, x, generator, beta)                      # (B, K)
    entropy = -(q * logits.log_softmax(-1)).sum(-1)                       # (B,)
    return Unlabelled((q * bounds).sum(-1) + entropy, logits, bounds)


@torch.no_grad()
def evaluate_split(model: M2, split: Split, generator: torch.Generator,
                   digits: torch.Tensor | None = None) -> dict[str, float]:
    """The marginal bound U(x) in nats, the classifier's accuracy and error, and the
    generative accuracy: how often the model itself prefers the true class, argmax_y L(x, y).

    The unlabelled term pulls q(y|x) towards softmax_y L(x, y), so when the generative accuracy
    is below the classifier's, unlabelled data make the classifier worse: the style z, not y,
    carries the class.

    `digits`, when given, are the split's images as they are (grey), `split` holding their
    binarised sample: the bound needs binary pixels, while both accuracies are scored on the
    digits themselves, as the app classifies them. For a Bernoulli p(x|y,z), log p(x|y,z) is
    linear in x, so L(x, y) of a grey digit is the mean of L over its binarisations (for the
    encoder's input held at the grey digit)."""
    correct, generative, bound = 0, 0, 0.0
    for i in range(0, len(split), EVAL_BATCH):
        x = split.images[i:i + EVAL_BATCH].reshape(-1, model.config.input_dim)
        labels = split.labels[i:i + EVAL_BATCH]
        out = unlabelled_bound(model, x, generator)
        bound += out.bound.sum().item()
        if digits is not None:
            out = unlabelled_bound(model, digits[i:i + EVAL_BATCH].reshape(-1, model.config.input_dim), generator)
        correct += (out.logits.argmax(-1) == labels).sum().item()
        generative += (out.class_bounds.argmax(-1) == labels).sum().item()
    n = len(split)
    return {"elbo": bound / n, "accuracy": correct / n, "error": 1.0 - correct / n,
            "generative_accuracy": generative / n}
