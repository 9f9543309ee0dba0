"""M2 as the trainer's task: each step sees an unlabelled batch and a labelled one, and the
loss is the paper's J^alpha (Kingma et al. 2014, eq. 9), per unlabelled example."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ..config.base import ConfigError
from ..config.m2 import M2Config, M2TrainConfig
from ..data import Dataset, Split, load_dataset, prepare
from ..store import RunRecord
from ..trainer import EVAL_SEED, Step, autograd_step
from .m1 import features_for
from .model import M2
from .objective import evaluate_split, labelled_bound, unlabelled_bound


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

    def kl_weight(self, global_step: int, steps_per_epoch: int) -> float:
        return self.config.beta

    def loss(self, model: M2, batch: M2Batch, beta: float):
        """mean(-U) over the unlabelled batch + labelled_weight * (mean(-L) + alpha *
        mean(-log q(y|x))) over the labelled batch, in nats per unlabelled example."""
        unlabelled = unlabelled_bound(model, batch.unlabelled, beta=beta).bound
        y = F.one_hot(batch.labels, model.config.num_classes).float()
        labelled = labelled_bound(model, batch.labelled, y, beta=beta)
        logits = model.classify_logits(batch.labelled)
        classification = F.cross_entropy(logits, batch.labels)
        loss = -unlabelled.mean() + self.labelled_weight * (self.alpha * classification - labelled.mean())
        accuracy = (logits.argmax(-1) == batch.labels).float().mean()
        return loss, {"elbo": unlabelled.mean().detach(), "labelled_elbo": labelled.mean().detach(),
                      "classification": classification.detach(), "labelled_accuracy": accuracy}

    def step(self, model: M2) -> Step:
        return autograd_step(self.loss, self.config.compile)

    def evaluate(self, model: M2, split: str) -> dict[str, float]:
        part: Split = getattr(self.data, split)
        generator = torch.Generator(device=part.images.device).manual_seed(EVAL_SEED)
        digits = getattr(self.digits, split).images if self.digits is not None else None
        return evaluate_split(model, part, generator, digits)


def step_values(model_config: M2Config, config: M2TrainConfig) -> int:
    """About how many values a training step computes, for the memory estimate: the classifier
    on every example, the encoder and decoder once per class for an unlabelled example (the
    bound sums over y) and once for a labelled one. An M1+M2 model's inputs are M1's features,
    which a new run has not chosen yet: counted as pixels, an upper bound."""
    c = model_config
    h, z, k, d = c.hidden_dim, c.latent_dim, c.num_classes, c.input_dim
    out = d if c.likelihood == "bernoulli" else 2 * d
    classifier = d + 2 * c.classifier_layers * h + k
    per_class = 2 * h + 4 * z + 2 * h + 2 * out
    return config.batch_size * (classifier + k * per_class) + config.labelled_batch_size * (classifier + per_class)


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
        model_config, data, train_std = features_for(model_config, config, data, run_dir, device)
    elif model_config.input_features or tuple(model_config.image_shape) != tuple(data.image_shape):
        raise ConfigError(f"image size: the model expects {model_config.image_shape} but {data.name} "
                          f"images are {data.image_shape}")
    return M2Task(data, model_config, config, train_std, digits)


def evaluate_test(model: M2, record: RunRecord, data_root: str | Path | None, device: torch.device,
                  **options: Any) -> dict[str, float]:
    """Test accuracy, error and marginal ELBO of an M2 run, and its generative accuracy (the
    importance-sampling `options` of a VAE's evaluation do not apply)."""
    task = make_task(record.model_config, record.train_config, data_root, device, record.path)
    return {f"test_{k}": v for k, v in task.evaluate(model, "test").items()}
