"""Semi-supervised deep generative models (Kingma, Rezende, Mohamed & Welling 2014): M2, and
M1+M2 (M2 fitted to the posterior means of a trained M1 VAE).

M2 generates x from a class y and a style z: p(y) uniform, p(z) = N(0, I), p(x|y, z). Its
inference networks are a classifier q(y|x) and an encoder q(z|x, y). Training uses the
`training.Trainer` loop through `M2Task`, so checkpoints, resume, events, early stopping and
the command line are those of the plain VAE.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from .config import ConfigError, M2Config, M2TrainConfig
from .data import Dataset, Split, load_dataset, prepare
from .models import MIN_DECODER_LOGVAR, Posterior, _activation
from .objectives import ACTIVE_THRESHOLD, LOG_2PI, gaussian_kl

EVAL_BATCH = 1000
EVAL_SEED = 1234


class M2Output(NamedTuple):
    posterior: Posterior   # q(z|x,y): (..., B, Z)
    z: torch.Tensor        # (..., B, Z)
    loc: torch.Tensor      # p(x|y,z): logits or mean, (..., B, D)
    logvar: torch.Tensor | None


class Unlabelled(NamedTuple):
    bound: torch.Tensor         # U(x), (B,)
    logits: torch.Tensor        # the classifier's q(y|x) as logits, (B, K)
    class_bounds: torch.Tensor  # L(x, y) for every class, (B, K)


class M2(nn.Module):
    def __init__(self, config: M2Config):
        super().__init__()
        self.config = config
        d, h, k, z = config.input_dim, config.hidden_dim, config.num_classes, config.latent_dim
        out = d if config.likelihood == "bernoulli" else 2 * d
        act = config.activation
        hidden = [layer for i in range(config.classifier_layers)
                  for layer in (nn.Linear(h if i else d, h), _activation(act))]
        self.classifier = nn.Sequential(*hidden, nn.Linear(h, k))
        self.encoder = nn.Sequential(nn.Linear(d + k, h), _activation(act), nn.Linear(h, 2 * z))
        self.decoder = nn.Sequential(nn.Linear(z + k, h), _activation(act), nn.Linear(h, out))

    def flat(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1)  # (B, D)

    def classify_logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.flat(x))  # (B, K)

    def encode(self, x: torch.Tensor, y: torch.Tensor) -> Posterior:
        """q(z|x,y) for flat x (..., D) and one-hot y (..., K); they broadcast, so x (B, D)
        with y (K, B, K) encodes every class of each example.

        The first layer acts on [x, y] as W_x x + W_y y: written so, W_x x is computed once
        per example, not once per enumerated class (the larger part of an M2 step on pixels)."""
        first, rest = self.encoder[0], self.encoder[1:]
        d = x.shape[-1]
        hidden = F.linear(x, first.weight[:, :d], first.bias) + F.linear(y, first.weight[:, d:])
        mu, logvar = rest(hidden).chunk(2, -1)
        return Posterior(mu, logvar)

    def decode(self, z: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = self.decoder(torch.cat([z, y], -1))
        if self.config.likelihood == "bernoulli":
            return out, None
        mean, logvar = out.chunk(2, -1)
        return mean, MIN_DECODER_LOGVAR + F.softplus(logvar - MIN_DECODER_LOGVAR)

    def forward(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None) -> M2Output:
        posterior = self.encode(x, y)
        eps = torch.randn(posterior.mu.shape, device=x.device, generator=generator)
        z = posterior.mu + torch.exp(0.5 * posterior.logvar) * eps
        loc, logvar = self.decode(z, y)
        return M2Output(posterior, z, loc, logvar)

    def log_likelihood(self, x: torch.Tensor, loc: torch.Tensor, logvar: torch.Tensor | None) -> torch.Tensor:
        """log p(x|y,z) summed over the input: (..., B)."""
        if self.config.likelihood == "bernoulli":
            return (x * loc - F.softplus(loc)).sum(-1)
        return (-0.5 * ((x - loc).pow(2) * torch.exp(-logvar) + logvar + LOG_2PI)).sum(-1)

    def labelled_bound(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None,
                       beta: float = 1.0) -> torch.Tensor:
        """L(x, y) = E_q(z|x,y)[log p(x|y,z)] + log p(y) - KL(q(z|x,y) || p(z)) (paper eq. 6),
        one sample of z; x flat (..., B, D), y one-hot (..., B, K); returns (..., B). `beta`
        weighs the KL term (1: the bound; only training uses another weight)."""
        out = self(x, y, generator)
        log_prior_y = -math.log(self.config.num_classes)
        return self.log_likelihood(x, out.loc, out.logvar) + log_prior_y - beta * gaussian_kl(out.posterior).sum(-1)

    def class_bounds(self, x: torch.Tensor, generator: torch.Generator | None = None,
                     beta: float = 1.0) -> torch.Tensor:
        """L(x, y) for every class y, one sample of z each: flat x (B, D) -> (B, K)."""
        k = self.config.num_classes
        ys = torch.eye(k, device=x.device)[:, None, :].expand(k, x.shape[0], k)  # (K, B, K)
        return self.labelled_bound(x, ys, generator, beta).T

    def unlabelled_bound(self, x: torch.Tensor, generator: torch.Generator | None = None,
                         beta: float = 1.0) -> Unlabelled:
        """U(x) = sum_y q(y|x) L(x, y) + H(q(y|x)) (paper eq. 7), every class enumerated."""
        x = self.flat(x)
        logits = self.classifier(x)                                       # (B, K)
        q = logits.softmax(-1)
        bounds = self.class_bounds(x, generator, beta)                    # (B, K)
        entropy = -(q * logits.log_softmax(-1)).sum(-1)                   # (B,)
        return Unlabelled((q * bounds).sum(-1) + entropy, logits, bounds)


def build_m2(config: M2Config) -> M2:
    return M2(config)


def balanced_labelled_subset(labels: torch.Tensor, num_labels: int, seed: int,
                             num_classes: int = 10) -> torch.Tensor:
    """Indices of `num_labels / num_classes` examples of each class, drawn with `seed`."""
    if num_labels % num_classes:
        raise ConfigError(f"num_labels: {num_labels} is not a multiple of the {num_classes} classes")
    per_class = num_labels // num_classes
    g = torch.Generator().manual_seed(seed)
    chosen = []
    for c in range(num_classes):
        members = torch.nonzero(labels.cpu() == c).flatten()
        if len(members) < per_class:
            raise ConfigError(f"num_labels: class {c} has only {len(members)} training examples, "
                              f"{per_class} are needed")
        chosen.append(members[torch.randperm(len(members), generator=g)[:per_class]])
    return torch.cat(chosen).sort().values


@dataclass
class M2Batch:
    unlabelled: torch.Tensor  # (B, D)
    labelled: torch.Tensor    # (L, D)
    labels: torch.Tensor      # (L,)

    def __len__(self) -> int:
        return len(self.unlabelled)


class M2Task:
    """M2 for the Trainer: one step sees an unlabelled batch (a slice of the epoch's
    permutation of the whole training split) and a labelled batch drawn from the labelled
    subset; labelled examples are also part of the unlabelled data, as in the paper."""

    kind = "m2"
    monitor = "accuracy"

    def __init__(self, data: Dataset, model_config: M2Config, config: M2TrainConfig,
                 train_std: torch.Tensor | None = None, digits: Dataset | None = None):
        self.config = config
        self.model_config = model_config
        self.data = data
        self.digits = digits  # the evaluation digits as they are, when `data` holds binarised ones
        self.num_train = len(data.train)
        self.labelled_index = balanced_labelled_subset(data.train.labels, config.num_labels, config.label_seed,
                                                       model_config.num_classes).to(data.train.images.device)
        # Paper (eq. 9): J^alpha = sum_l L + sum_u U + alpha * mean_l(-log q(y|x)), alpha = 0.1 N:
        # each labelled example counts once in the sums, and with weight alpha / N_l in the
        # classification term. A step's loss is such an objective per unlabelled example:
        # mean(-U) over the unlabelled batch + labelled_weight * [mean(-L) + alpha * mean(-log q)]
        # over the labelled batch, alpha here being the weight per labelled example, alpha_scale
        # N / N_l, and labelled_weight = repeats * N_l / N (1 when repeats = N / N_l).
        self.alpha = config.alpha_scale * self.num_train / config.num_labels
        repeats = config.labelled_repeats or self.num_train / config.num_labels
        self.labelled_weight = repeats * config.num_labels / self.num_train
        self.dynamic = config.binarization == "dynamic" and model_config.input_features == 0
        self.train_std = train_std  # M1+M2 with sampled features: q(z|x)'s std of each example

    def _x(self, index: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        x = self.data.train.images.index_select(0, index)
        if self.dynamic:
            x = torch.bernoulli(x, generator=generator)
        if self.train_std is not None:  # a fresh draw from q(z|x) of M1, as dynamic binarisation
            noise = torch.randn(x.shape, generator=generator, device=generator.device).to(x.device)
            x = x + self.train_std.index_select(0, index) * noise
        return x.reshape(len(index), -1)

    def train_batch(self, indices: torch.Tensor, generator: torch.Generator) -> M2Batch:
        pick = torch.randint(len(self.labelled_index), (self.config.labelled_batch_size,),
                             generator=generator, device=generator.device)
        labelled = self.labelled_index[pick.to(self.labelled_index.device)]
        return M2Batch(self._x(indices, generator), self._x(labelled, generator),
                       self.data.train.labels.index_select(0, labelled))

    def loss(self, model: M2, batch: M2Batch, beta: float):
        """mean(-U) over the unlabelled batch + labelled_weight * (mean(-L) + alpha *
        mean(-log q(y|x))) over the labelled batch, in nats per unlabelled example."""
        unlabelled = model.unlabelled_bound(batch.unlabelled, beta=beta).bound
        y = F.one_hot(batch.labels, model.config.num_classes).float()
        labelled = model.labelled_bound(batch.labelled, y, beta=beta)
        logits = model.classify_logits(batch.labelled)
        classification = F.cross_entropy(logits, batch.labels)
        loss = -unlabelled.mean() + self.labelled_weight * (self.alpha * classification - labelled.mean())
        accuracy = (logits.argmax(-1) == batch.labels).float().mean()
        return loss, {"elbo": unlabelled.mean().detach(), "labelled_elbo": labelled.mean().detach(),
                      "classification": classification.detach(), "labelled_accuracy": accuracy}

    def evaluate(self, model: M2, split: str) -> dict[str, float]:
        part: Split = getattr(self.data, split)
        generator = torch.Generator(device=part.images.device).manual_seed(EVAL_SEED)
        digits = getattr(self.digits, split).images if self.digits is not None else None
        return evaluate_split(model, part, generator, digits)


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
        out = model.unlabelled_bound(x, generator)
        bound += out.bound.sum().item()
        if digits is not None:
            out = model.unlabelled_bound(digits[i:i + EVAL_BATCH].reshape(-1, model.config.input_dim), generator)
        correct += (out.logits.argmax(-1) == labels).sum().item()
        generative += (out.class_bounds.argmax(-1) == labels).sum().item()
    n = len(split)
    return {"elbo": bound / n, "accuracy": correct / n, "error": 1.0 - correct / n,
            "generative_accuracy": generative / n}


# --- data and one-call entry points ---------------------------------------------------------

def weights_digest(model: nn.Module) -> str:
    """SHA-256 of a model's weights (names, shapes, dtypes and values), independent of the file
    they were read from."""
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def check_m1(model_config: M2Config, digest: str, m1_run: str | Path) -> None:
    """Refuse an M1 (by its `weights_digest`) other than the one the M1+M2 model was trained on,
    when that was recorded."""
    if model_config.m1_digest and digest != model_config.m1_digest:
        raise ConfigError(f"m1_run: the VAE in {m1_run} is not the M1 this model was trained on (its "
                          "weights differ); put that M1 back there, or train the M1+M2 model again")


@torch.no_grad()
def m1_features(data: Dataset, m1_run: str | Path, device: torch.device) -> tuple[Dataset, torch.Tensor, str]:
    """Replace every split's images by the posterior means of the M1 VAE, (N, Z) features;
    also return the posterior standard deviations of the training split, (N, Z), and the
    `weights_digest` of M1."""
    from .checkpoints import load_model
    m1, ckpt = load_model(m1_run, device)
    if ckpt.train_config.dataset != data.name:
        raise ConfigError(f"m1_run: the M1 run {m1_run} was trained on {ckpt.train_config.dataset}, "
                          f"not on {data.name}")

    def encode(split: Split) -> tuple[Split, torch.Tensor]:
        posteriors = [m1.encode(split.images[i:i + EVAL_BATCH].to(device)) for i in range(0, len(split), EVAL_BATCH)]
        std = torch.cat([torch.exp(0.5 * p.logvar) for p in posteriors])
        return Split(torch.cat([p.mu for p in posteriors]), split.labels.to(device)), std
    train, train_std = encode(data.train)
    data = replace(data, train=train, validation=encode(data.validation)[0], test=encode(data.test)[0],
                   source=f"{data.source}, encoded by {Path(m1_run).name}")
    return data, train_std, weights_digest(m1)


def active_units(features: torch.Tensor, m1_run: str) -> tuple[int, ...]:
    """M1's active latent units, Var_x E_q[z_u|x] > ACTIVE_THRESHOLD over the posterior means
    `features` (N, Z). An inactive unit's posterior is the prior: its draws are pure noise."""
    active = (features.var(0) > ACTIVE_THRESHOLD).nonzero().flatten().tolist()
    if not active:
        raise ConfigError(f"m1_units: the M1 run {m1_run} has no active latent unit; use --m1-units all")
    return tuple(active)


def _keep_units(data: Dataset, std: torch.Tensor, units: tuple[int, ...]) -> tuple[Dataset, torch.Tensor]:
    if not units:
        return data, std
    keep = torch.tensor(units, dtype=torch.long, device=std.device)

    def pick(split: Split) -> Split:
        return Split(split.images.index_select(1, keep), split.labels)
    return (replace(data, train=pick(data.train), validation=pick(data.validation), test=pick(data.test)),
            std.index_select(1, keep))


def find_m1_run(m1_run: str, m2_run: str | Path | None = None) -> Path:
    """The folder of an M1+M2 model's M1 VAE: `m1_run` as recorded when M2 was trained or,
    when no run is there (the pair was copied elsewhere, as the shipped checkpoints were), the
    folder of the same name beside the M2 run `m2_run`."""
    from .checkpoints import POINTER
    recorded = Path(m1_run)
    if m2_run is None or (recorded / POINTER).is_file():
        return recorded
    beside = Path(m2_run).parent / recorded.name
    return beside if (beside / POINTER).is_file() else recorded


def make_task(model_config: M2Config, config: M2TrainConfig, data_root, device: torch.device,
              run_dir: str | Path | None = None) -> M2Task:
    """The task for a model config (of the run in `run_dir`, if it exists already). For a new
    M1+M2 run (input_features 0) this also chooses M2's inputs among M1's latent units; the
    task's `model_config` then records them."""
    raw = load_dataset(config.dataset, data_root)
    binarization = config.binarization if not config.m1_run else "none"
    data = prepare(raw, binarization, config.seed).to(device)
    digits = None  # the evaluation digits as they are, when `data` holds binarised ones
    if binarization != "none":
        digits = replace(data, validation=raw.validation.to(device), test=raw.test.to(device))
    train_std = None
    if config.m1_run:
        m1_run = find_m1_run(config.m1_run, run_dir)
        data, std, digest = m1_features(data, m1_run, device)
        if model_config.input_features == 0:
            units = active_units(data.train.images, config.m1_run) if config.m1_units == "active" else ()
            model_config = replace(model_config, input_features=len(units) or data.train.images.shape[1],
                                   input_units=units, likelihood="gaussian", m1_digest=digest)
        if model_config.input_units and max(model_config.input_units) >= data.train.images.shape[1]:
            raise ConfigError(f"input_units: the model reads M1's unit {max(model_config.input_units)}, but "
                              f"the M1 run has {data.train.images.shape[1]} latent units")
        data, std = _keep_units(data, std, model_config.input_units)
        train_std = std if config.m1_features == "sample" else None
        if model_config.input_features != data.train.images.shape[1]:
            raise ConfigError(f"input_features: the M1 run gives {data.train.images.shape[1]} features, "
                              f"the model expects {model_config.input_features}")
        check_m1(model_config, digest, m1_run)
    elif model_config.input_features or tuple(model_config.image_shape) != tuple(data.image_shape):
        raise ConfigError(f"image size: the model expects {model_config.image_shape} but {data.name} "
                          f"images are {data.image_shape}")
    return M2Task(data, model_config, config, train_std, digits)


def train_m2(model_config: M2Config, config: M2TrainConfig, run_dir=None, data_root=None,
             callbacks=(), stop_event=None):
    """Build, train and checkpoint an M2 (or M1+M2) model; returns the finished Trainer."""
    from .training import Trainer, resolve_device
    device = resolve_device(config.device)
    task = make_task(model_config, config, data_root, device)
    torch.manual_seed(config.seed)
    model = build_m2(task.model_config).to(device)
    trainer = Trainer(model, task.model_config, config, task, run_dir, callbacks, stop_event)
    trainer.fit()
    return trainer


# --- what the app shows -----------------------------------------------------------------------

def _require_m1(model: M2, m1: torch.nn.Module | None) -> None:
    if model.config.input_features and m1 is None:
        raise ValueError("an M1+M2 model works on M1 features: pass its M1 VAE")


def _inputs(model: M2, images: torch.Tensor, m1: torch.nn.Module | None) -> torch.Tensor:
    """M2's inputs for images (B, C, H, W) or (B, H, W): the flattened pixels, or for M1+M2 the
    posterior means of M1 on the units M2 was trained on."""
    _require_m1(model, m1)
    if not model.config.input_features:
        return images.reshape(images.shape[0], -1)
    codes = m1.encode(images.reshape(-1, *m1.config.image_shape)).mu
    return codes[:, list(model.config.input_units)] if model.config.input_units else codes


@torch.no_grad()
def classify(model: M2, images: torch.Tensor, m1: torch.nn.Module | None = None) -> torch.Tensor:
    """q(y|x) for images (B, C, H, W) or (B, H, W): (B, K). An M1+M2 model needs its M1 VAE."""
    return model.classify_logits(_inputs(model, images, m1)).softmax(-1)


@torch.no_grad()
def generative_posterior(model: M2, images: torch.Tensor, m1: torch.nn.Module | None = None,
                         samples: int = 16, seed: int = 0) -> torch.Tensor:
    """The generative model's own p(y|x) for images: log p(x|y) for each class, estimated by
    importance sampling with `samples` draws from q(z|x,y), normalised over the classes (p(y)
    is uniform): (B, K). How well each class explains the digit; on unlabelled digits the
    objective pulls q(y|x) towards softmax_y L(x, y), its one-sample cousin."""
    x = _inputs(model, images, m1)
    g = torch.Generator(device=x.device).manual_seed(seed)
    bounds = torch.stack([model.class_bounds(x, g) for _ in range(samples)])  # (S, B, K)
    return (bounds.logsumexp(0) - math.log(samples)).softmax(-1)


@torch.no_grad()
def generate(model: M2, labels: torch.Tensor, z: torch.Tensor, m1: torch.nn.Module | None = None) -> torch.Tensor:
    """Mean images of p(x|y,z) for classes (B,) and styles (B, Z): (B, C, H, W) in [0, 1]. For
    M1+M2, y and z give the mean of M1's latent code (the units M2 does not model at their prior
    mean 0), which M1's decoder draws."""
    _require_m1(model, m1)
    y = F.one_hot(labels, model.config.num_classes).float()
    loc, _ = model.decode(z, y)
    if model.config.input_features:
        codes = loc.new_zeros(len(loc), m1.config.latent_dim)
        codes[:, list(model.config.input_units or range(m1.config.latent_dim))] = loc
        return m1.mean_image(codes)
    image = torch.sigmoid(loc) if model.config.likelihood == "bernoulli" else loc.clamp(0, 1)
    return image.reshape(-1, *model.config.image_shape)


@torch.no_grad()
def infer_style(model: M2, images: torch.Tensor, m1: torch.nn.Module | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """The style z (posterior mean of q(z|x, y_hat)) and predicted class y_hat of each image."""
    x = _inputs(model, images, m1)
    y_hat = model.classify_logits(x).argmax(-1)
    posterior = model.encode(x, F.one_hot(y_hat, model.config.num_classes).float())
    return posterior.mu, y_hat


@torch.no_grad()
def analogies(model: M2, images: torch.Tensor, m1: torch.nn.Module | None = None) -> torch.Tensor:
    """Each image's style drawn as every class (the paper's Fig. 1): (B, K, C, H, W)."""
    z, _ = infer_style(model, images, m1)
    k = model.config.num_classes
    labels = torch.arange(k, device=z.device).repeat(len(z))       # (B*K,)
    styles = z.repeat_interleave(k, dim=0)                          # (B*K, Z)
    drawn = generate(model, labels, styles, m1)
    return drawn.reshape(len(z), k, *drawn.shape[1:])


def evaluate_m2_run(run_dir, data_root=None, device: str = "auto") -> dict[str, float]:
    """Test accuracy, error and marginal ELBO of an M2 run, and its generative accuracy."""
    from .checkpoints import load_model
    from .training import resolve_device
    dev = resolve_device(device)
    model, ckpt = load_model(run_dir, dev)
    task = make_task(ckpt.model_config, ckpt.train_config, data_root, dev, run_dir)
    return {f"test_{k}": v for k, v in task.evaluate(model, "test").items()}
