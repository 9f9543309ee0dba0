"""What the app shows of an M2 or M1+M2 model, computed: class probabilities of a digit, digits
drawn in a chosen class and style, and a digit's style redrawn as every class (the paper's
Fig. 1). Inputs and outputs are numpy arrays, so that the pages stay free of tensor code; an
M1+M2 model takes its M1 VAE, through which every image passes."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..vae.arrays import ACTIVATIONS, mean_decoder
from ..vae.model import VAE
from .model import M2
from .objective import class_bounds


def _images(model: M2, images) -> torch.Tensor:
    return torch.as_tensor(np.asarray(images, dtype=np.float32), device=next(model.parameters()).device)


def _inputs(model: M2, images: torch.Tensor, m1: VAE | None) -> torch.Tensor:
    """M2's inputs for images (B, C, H, W) or (B, H, W): the flattened pixels, or for M1+M2 the
    posterior means of M1 on the units M2 was trained on."""
    if not model.config.input_features:
        return images.reshape(images.shape[0], -1)
    if m1 is None:
        raise ValueError("an M1+M2 model works on M1 features: pass its M1 VAE")
    codes = m1.encode(images.reshape(-1, *m1.config.image_shape)).mu
    return codes[:, list(model.config.input_units)] if model.config.input_units else codes


@torch.no_grad()
def classify(model: M2, images, m1: VAE | None = None) -> np.ndarray:
    """The classifier's q(y|x) for images (B, H, W): (B, K)."""
    return model.classify_logits(_inputs(model, _images(model, images), m1)).softmax(-1).cpu().numpy()


@torch.no_grad()
def generative_posterior(model: M2, images, m1: VAE | None = None, samples: int = 16, seed: int = 0) -> np.ndarray:
    """The generative model's own p(y|x) for images (B, H, W): log p(x|y) for each class,
    estimated by importance sampling with `samples` draws from q(z|x,y), normalised over the
    classes (p(y) is uniform): (B, K). How well each class explains the digit; on unlabelled
    digits the objective pulls q(y|x) towards softmax_y L(x, y), its one-sample cousin."""
    x = _inputs(model, _images(model, images), m1)
    g = torch.Generator(device=x.device).manual_seed(seed)
    bounds = torch.stack([class_bounds(model, x, g) for _ in range(samples)])  # (S, B, K)
    return (bounds.logsumexp(0) - math.log(samples)).softmax(-1).cpu().numpy()


def style(latent_dim: int, seed: int) -> np.ndarray:
    """A style z: the prior mean for seed 0, else a draw from the prior N(0, I): (Z,)."""
    if seed == 0:
        return np.zeros(latent_dim, dtype=np.float32)
    return torch.randn(latent_dim, generator=torch.Generator().manual_seed(int(seed))).numpy()


@torch.no_grad()
def _generate(model: M2, labels: torch.Tensor, z: torch.Tensor, m1: VAE | None) -> torch.Tensor:
    y = F.one_hot(labels, model.config.num_classes).float()
    loc = model.decode(z, y).loc
    if model.config.input_features:
        if m1 is None:
            raise ValueError("an M1+M2 model draws through M1: pass its M1 VAE")
        codes = loc.new_zeros(len(loc), m1.config.latent_dim)
        codes[:, list(model.config.input_units or range(m1.config.latent_dim))] = loc
        return m1.mean_image(codes)[:, 0]
    image = torch.sigmoid(loc) if model.config.likelihood == "bernoulli" else loc.clamp(0, 1)
    return image.reshape(-1, *model.config.image_shape)[:, 0]


def generate(model: M2, labels, styles, m1: VAE | None = None) -> np.ndarray:
    """Mean images of p(x|y,z) for classes (B,) and styles (B, Z): (B, H, W) in [0, 1]. For
    M1+M2, y and z give the mean of M1's latent code (the units M2 does not model at their prior
    mean 0), which M1's decoder draws."""
    device = next(model.parameters()).device
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.long, device=device)
    z = torch.as_tensor(np.asarray(styles, dtype=np.float32), device=device)
    return _generate(model, labels, z, m1).cpu().numpy()


def generator_stages(model: M2, m1: VAE | None = None) -> list[dict]:
    """The mean image of p(x|y, z) as plain affine layers, for a decoder that runs outside
    torch (the Generate tab's, in the browser). Each stage is {"layers": [(weight (out, in),
    bias (out,)) float32, ...], "activation": between its layers, "output": "sigmoid", "clamp"
    (to [0, 1]) or "none" after its last layer, "scatter": None or (units, size)}. The first
    stage takes [z, one-hot y]; a stage with a scatter first places its input at `units` of a
    zero vector of `size` (M1+M2: M2 draws the M1 units it models, M1's decoder the image).
    `run_generator` computes what the stages mean, as `generate` does in torch."""
    linears = [m for m in model.decoder if isinstance(m, torch.nn.Linear)]
    layers = [(m.weight.detach().cpu().numpy().astype(np.float32), m.bias.detach().cpu().numpy().astype(np.float32))
              for m in linears]
    d = model.config.input_dim
    weight, bias = layers[-1]
    layers[-1] = (weight[:d], bias[:d])  # Gaussian: the mean's half of [mean, log-variance]
    if not model.config.input_features:
        output = "sigmoid" if model.config.likelihood == "bernoulli" else "clamp"
        return [{"layers": layers, "activation": model.config.activation, "output": output, "scatter": None}]
    if m1 is None:
        raise ValueError("an M1+M2 model draws through M1: pass its M1 VAE")
    units = list(model.config.input_units or range(m1.config.latent_dim))
    return [{"layers": layers, "activation": model.config.activation, "output": "none", "scatter": None},
            {"layers": mean_decoder(m1), "activation": m1.config.activation, "output": "sigmoid",
             "scatter": (units, m1.config.latent_dim)}]


def run_generator(stages: list[dict], label: int, z, num_classes: int) -> np.ndarray:
    """What `generator_stages` describe, in numpy: the flat mean image for one class and style."""
    x = np.concatenate([np.asarray(z, np.float32), np.eye(num_classes, dtype=np.float32)[label]])
    for stage in stages:
        if stage["scatter"] is not None:
            units, size = stage["scatter"]
            placed = np.zeros(size, np.float32)
            placed[units] = x
            x = placed
        act = ACTIVATIONS[stage["activation"]]
        for i, (weight, bias) in enumerate(stage["layers"]):
            x = weight @ x + bias
            if i < len(stage["layers"]) - 1:
                x = act(x)
        x = {"sigmoid": lambda v: np.exp(-np.logaddexp(0, -v)), "clamp": lambda v: np.clip(v, 0, 1),
             "none": lambda v: v}[stage["output"]](x)
    return x


@torch.no_grad()
def infer_style(model: M2, images, m1: VAE | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The style z (posterior mean of q(z|x, y_hat)) and predicted class y_hat of each image."""
    x = _inputs(model, _images(model, images), m1)
    y_hat = model.classify_logits(x).argmax(-1)
    posterior = model.encode(x, F.one_hot(y_hat, model.config.num_classes).float())
    return posterior.mu.cpu().numpy(), y_hat.cpu().numpy()


def analogies(model: M2, images, m1: VAE | None = None) -> np.ndarray:
    """Each image's style drawn as every class (the paper's Fig. 1): (B, K, H, W)."""
    z, _ = infer_style(model, images, m1)
    k = model.config.num_classes
    labels = np.tile(np.arange(k), len(z))                          # (B*K,)
    drawn = generate(model, labels, np.repeat(z, k, axis=0), m1)    # (B*K, H, W)
    return drawn.reshape(len(z), k, *drawn.shape[1:])
