"""Semi-supervised M2 and M1+M2 (Kingma et al. 2014)."""

import math
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vae_core import checkpoints as ckpts
from vae_core import trainer as trainer_module
from vae_core.cli import main
from vae_core.commands import evaluate, resume, train
from vae_core.config import ConfigError, with_changes
from vae_core.data import Split, synthetic_dataset
from vae_core.config import M2Config, M2TrainConfig
from vae_core.m2.explore import analogies, classify, generate, generative_posterior, generator_stages, run_generator
from vae_core.m2.m1 import check_m1, find_m1, find_m1_run, m1_of, weights_digest
from vae_core.m2.model import build_m2
from vae_core.m2.objective import class_bounds, evaluate_split, labelled_bound, unlabelled_bound
from vae_core.m2.task import balanced_labelled_subset, make_task
from vae_core.registry import load_model
from vae_core.trainer import Trainer
from vae_core.config import ModelConfig, TrainConfig

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def evaluate_m2_run(run_dir, device):
    return evaluate(run_dir, device=device, save=False)

TINY = M2Config(latent_dim=8, hidden_dim=64)


def _kl(posterior):
    """KL(q(z|x,y) || N(0, I)) by hand (AEVB eq. 10), summed over z."""
    return 0.5 * (posterior.mu ** 2 + posterior.logvar.exp() - 1 - posterior.logvar).sum(-1)


@pytest.mark.parametrize("beta", [1.0, 2.5])
def test_unlabelled_bound_is_the_enumerated_expectation_by_hand(beta):
    torch.manual_seed(0)
    model = build_m2(M2Config(image_height=4, image_width=4, num_classes=3, latent_dim=2, hidden_dim=8))
    x = torch.bernoulli(torch.full((5, 16), 0.4))
    u, logits, bounds = unlabelled_bound(model, x, torch.Generator().manual_seed(7), beta=beta)
    # By hand: the same noise, class by class, in the order the enumeration draws it.
    g = torch.Generator().manual_seed(7)
    eps = torch.randn((3, 5, 2), generator=g)
    q = logits.softmax(-1)
    expected = torch.zeros(5)
    for c in range(3):
        y = F.one_hot(torch.full((5,), c), 3).float()
        posterior = model.encode(x, y)
        z = posterior.mu + torch.exp(0.5 * posterior.logvar) * eps[c]
        logits_x = model.decode(z, y).loc
        log_px = (x * logits_x - F.softplus(logits_x)).sum(-1)
        kl = _kl(posterior)
        torch.testing.assert_close(bounds[:, c], log_px - math.log(3) - beta * kl)
        expected += q[:, c] * (log_px - math.log(3) - beta * kl)
    expected += -(q * q.log()).sum(-1)
    torch.testing.assert_close(u, expected)


def _halves_model():
    """A 4x4 M2 whose decoder draws class 0 as the top half of the image and class 1 as the
    bottom half, and images of both (top, bottom, top, bottom)."""
    torch.manual_seed(0)
    model = build_m2(M2Config(image_height=4, image_width=4, num_classes=2, latent_dim=1, hidden_dim=8))
    model.decoder = torch.nn.Linear(1 + 2, 16)
    with torch.no_grad():
        model.decoder.weight.zero_()
        model.decoder.bias.zero_()
        model.decoder.weight[:8, 1] = model.decoder.weight[8:, 2] = 10.0
        model.decoder.weight[8:, 1] = model.decoder.weight[:8, 2] = -10.0
    top = torch.cat([torch.ones(8), torch.zeros(8)])
    return model, torch.stack([top, 1 - top, top, 1 - top]).reshape(4, 1, 4, 4)


def test_generative_accuracy_is_how_often_the_true_class_explains_x_best():
    model, images = _halves_model()
    labels = torch.tensor([0, 1, 0, 1])
    g = torch.Generator().manual_seed(0)
    assert evaluate_split(model, Split(images, labels), g)["generative_accuracy"] == 1.0
    assert evaluate_split(model, Split(images, 1 - labels), g)["generative_accuracy"] == 0.0


def test_the_generative_posterior_prefers_the_class_whose_drawing_matches():
    model, images = _halves_model()
    posterior = torch.as_tensor(generative_posterior(model, images, samples=8))
    torch.testing.assert_close(posterior.sum(-1), torch.ones(4))
    assert (posterior[[0, 2], 0] > 0.99).all() and (posterior[[1, 3], 1] > 0.99).all()
    # the importance-sampled log p(x|y) of one class, by hand
    g = torch.Generator().manual_seed(0)
    x = images.reshape(4, -1)
    bounds = torch.stack([class_bounds(model, x, g) for _ in range(8)])
    log_px_y = bounds.logsumexp(0) - math.log(8)
    torch.testing.assert_close(posterior, (log_px_y - log_px_y.logsumexp(-1, keepdim=True)).exp())
    torch.testing.assert_close(torch.as_tensor(generative_posterior(model, images, samples=8)), posterior)  # reproducible


def test_labelled_subsets_are_balanced_and_reproducible():
    labels = synthetic_dataset(num_train=2000).train.labels
    a = balanced_labelled_subset(labels, 100, seed=1)
    assert len(a) == 100 and len(set(a.tolist())) == 100
    assert torch.bincount(labels[a], minlength=10).tolist() == [10] * 10
    assert torch.equal(a, balanced_labelled_subset(labels, 100, seed=1))
    assert not torch.equal(a, balanced_labelled_subset(labels, 100, seed=2))
    with pytest.raises(ConfigError, match="multiple"):
        balanced_labelled_subset(labels, 105, seed=1)


def test_tiny_training_beats_chance_and_checkpoints(tmp_path):
    # the paper's weighting (the default): 100 labelled digits weigh as 100 of the 512 unlabelled
    config = M2TrainConfig(dataset="synthetic", num_labels=100, epochs=10, learning_rate=1e-2, device="cpu",
                           patience=0)
    trainer = train(TINY, config, tmp_path / "m2")
    assert trainer.history[-1]["val_accuracy"] > 0.3
    assert trainer.summary["test_accuracy"] > 0.3 and "test_error" in trainer.summary
    # the generative accuracy is on every epoch's curve and in the summary
    assert all(0 <= r["val_generative_accuracy"] <= 1 for r in trainer.history)
    assert 0 <= trainer.summary["test_generative_accuracy"] <= 1
    model, ckpt = load_model(tmp_path / "m2")
    assert ckpt.kind == "m2" and isinstance(ckpt.train_config, M2TrainConfig)
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(value, model.state_dict()[key])


def test_a_deeper_classifier_trains_and_is_rebuilt_from_its_checkpoint(tmp_path):
    model_config = with_changes(TINY, classifier_layers=2)
    config = M2TrainConfig(dataset="synthetic", num_labels=100, epochs=1, device="cpu")
    trainer = train(model_config, config, tmp_path / "m2")
    # the deeper classifier has one more 64x64 layer; the encoder and decoder keep theirs
    sizes = {name: p.numel() for name, p in trainer.model.named_parameters()}
    shallow = {name: p.numel() for name, p in build_m2(TINY).named_parameters()}
    assert sum(sizes.values()) - sum(shallow.values()) == 64 * 64 + 64
    assert {k: v for k, v in sizes.items() if not k.startswith("classifier")} == \
        {k: v for k, v in shallow.items() if not k.startswith("classifier")}
    model, ckpt = load_model(tmp_path / "m2")
    assert ckpt.model_config.classifier_layers == 2
    images = synthetic_dataset().test.images[:5]
    torch.testing.assert_close(classify(model, images), classify(trainer.model.eval(), images))


def test_resume_after_a_stop_reproduces_the_uninterrupted_curve(tmp_path):
    config = M2TrainConfig(dataset="synthetic", num_labels=100, epochs=3, batch_size=64, device="cpu", patience=0)
    straight = train(TINY, config, tmp_path / "straight")
    stop = threading.Event()
    old, trainer_module.STEP_EVENT_SECONDS = trainer_module.STEP_EVENT_SECONDS, 0.0
    try:
        train(TINY, config, tmp_path / "split", callbacks=[lambda e: e.global_step >= 11 and stop.set()],
                 stop_event=stop)
    finally:
        trainer_module.STEP_EVENT_SECONDS = old
    assert ckpts.read_checkpoint(tmp_path / "split").summary["status"] == "stopped"
    resumed = resume(tmp_path / "split")
    keys = ["train_elbo", "train_classification", "val_accuracy", "val_elbo"]
    assert [[r[k] for k in keys] for r in resumed.history] == [[r[k] for k in keys] for r in straight.history]


def test_m1_plus_m2_trains_on_the_latent_codes_of_a_vae(tmp_path):
    train(ModelConfig(latent_dim=6, hidden_dim=32),
              TrainConfig(dataset="synthetic", epochs=2, device="cpu"), tmp_path / "m1")
    config = M2TrainConfig(dataset="synthetic", num_labels=100, epochs=2, device="cpu",
                           m1_run=str(tmp_path / "m1"), m1_units="all")
    trainer = train(TINY, config, tmp_path / "m1m2")
    assert trainer.model.config.input_features == 6 and trainer.model.config.likelihood == "gaussian"
    assert len(trainer.history) == 2 and "test_accuracy" in trainer.summary
    # M2's inputs are exactly M1's posterior means of the (grey) images
    m1, _ = load_model(tmp_path / "m1")
    task = make_task(trainer.model.config, config, None, torch.device("cpu"))
    with torch.no_grad():
        expected = m1.encode(synthetic_dataset().test.images).mu
    torch.testing.assert_close(task.data.test.images, expected)
    # ...and in training, fresh draws from q(z|x) (the paper's code), or the means if asked
    with torch.no_grad():
        posterior = m1.encode(synthetic_dataset().train.images[:4])
    g = torch.Generator().manual_seed(0)
    draws = torch.stack([task._x(torch.arange(4), g) for _ in range(2000)])
    assert not torch.equal(draws[0], draws[1])
    torch.testing.assert_close(draws.mean(0), posterior.mu, atol=0.1, rtol=0)
    torch.testing.assert_close(draws.std(0), torch.exp(0.5 * posterior.logvar), atol=0.1, rtol=0)
    means = make_task(trainer.model.config, with_changes(config, m1_features="mean"), None, torch.device("cpu"))
    torch.testing.assert_close(means._x(torch.arange(4), g), posterior.mu)
    with pytest.raises(ValueError, match="M1 features"):
        analogies(trainer.model, torch.zeros(1, 6))
    resumed = resume(tmp_path / "m1m2", epochs=3)  # resume rebuilds the features from the M1 run
    assert len(resumed.history) == 3


def test_classify_generate_and_analogies_shapes_and_ranges():
    torch.manual_seed(0)
    model = build_m2(TINY)
    images = synthetic_dataset().test.images[:3]
    probs = classify(model, images)
    assert probs.shape == (3, 10) and np.allclose(probs.sum(-1), 1.0)
    out = generate(model, [0, 5], np.zeros((2, 8)))
    assert out.shape == (2, 28, 28) and 0 <= out.min() and out.max() <= 1
    grid = analogies(model, images)
    assert grid.shape == (3, 10, 28, 28)
    # each row is that image's style drawn as classes 0-9
    z = np.asarray(model.encode(images.reshape(3, -1), F.one_hot(torch.as_tensor(probs.argmax(-1)), 10).float())
                   .mu.detach())
    np.testing.assert_allclose(grid[1], generate(model, np.arange(10), np.repeat(z[1:2], 10, axis=0)), atol=1e-6)


def test_cli_trains_and_evaluates_m2(tmp_path, capsys):
    assert main(["train", "--kind", "m2", "--dataset", "synthetic", "--num-labels", "50", "--epochs", "1",
                 "--latent-dim", "3", "--hidden-dim", "16", "--runs-dir", str(tmp_path), "--name", "m2",
                 "--progress", "none"]) == 0
    assert ckpts.read_checkpoint(tmp_path / "m2").model_config.latent_dim == 3
    assert main(["evaluate", str(tmp_path / "m2")]) == 0
    out = capsys.readouterr().out
    assert "test_accuracy:" in out and "test_generative_accuracy:" in out
    assert main(["train", "--kind", "m2", "--dataset", "synthetic", "--num-labels", "55", "--epochs", "1",
                 "--runs-dir", str(tmp_path), "--progress", "none"]) == 2
    assert "not a multiple" in capsys.readouterr().err


def test_m1_plus_m2_keeps_only_the_active_units_of_m1(tmp_path):
    train(ModelConfig(latent_dim=6, hidden_dim=32),
              TrainConfig(dataset="synthetic", epochs=2, device="cpu"), tmp_path / "m1")
    # Units 1 and 4 inactive (their posterior mean no longer depends on x), the others active.
    m1, ckpt = load_model(tmp_path / "m1")
    head = m1.encoder[-1]
    with torch.no_grad():
        head.weight[:6] = torch.randn(6, 32, generator=torch.Generator().manual_seed(0))
        head.weight[[1, 4]] = 0.0
        head.bias[[1, 4]] = 0.3
    ckpts.save_checkpoint(tmp_path / "m1", kind="vae", model_config=ckpt.model_config,
                          train_config=ckpt.train_config, weights=m1.state_dict(),
                          history={"epochs": ckpt.epochs, "summary": ckpt.summary})
    m1, _ = load_model(tmp_path / "m1")
    config = M2TrainConfig(dataset="synthetic", num_labels=100, epochs=1, device="cpu",
                           m1_run=str(tmp_path / "m1"))
    trainer = train(TINY, config, tmp_path / "m1m2")
    model = trainer.model
    assert model.config.input_units == (0, 2, 3, 5) and model.config.input_features == 4
    assert model.config.m1_digest == weights_digest(m1)  # which M1 it was trained on
    images = synthetic_dataset().test.images[:8]
    with torch.no_grad():
        expected = model.classify_logits(m1.encode(images).mu[:, [0, 2, 3, 5]]).softmax(-1)
    torch.testing.assert_close(torch.as_tensor(classify(model, images, m1)), expected)
    # the choice is part of the checkpoint's config
    loaded, _ = load_model(tmp_path / "m1m2")
    assert loaded.config.input_units == (0, 2, 3, 5)
    assert len(resume(tmp_path / "m1m2", epochs=2).history) == 2

    # Generation goes through M1: M2's mean on the kept units, the others at the prior mean 0.
    model, _ = load_model(tmp_path / "m1m2")
    labels, z = torch.tensor([1, 7]), torch.randn(2, TINY.latent_dim)
    with torch.no_grad():
        loc = model.decode(z, F.one_hot(labels, 10).float()).loc
        codes = torch.zeros(2, 6)
        codes[:, [0, 2, 3, 5]] = loc
        expected = m1.mean_image(codes)
    torch.testing.assert_close(torch.as_tensor(generate(model, labels, z, m1)), expected[:, 0])
    assert analogies(model, images[:3], m1).shape == (3, 10, 28, 28)
    with pytest.raises(ValueError, match="pass its M1 VAE"):
        generate(model, labels, z)

    # Copied elsewhere side by side (as shipped), the pair still works: the recorded M1 path is
    # gone, and the M1 run of that name beside the M2 run is used.
    (tmp_path / "shipped").mkdir()
    (tmp_path / "m1").rename(tmp_path / "shipped" / "m1")
    (tmp_path / "m1m2").rename(tmp_path / "shipped" / "m1m2")
    assert find_m1_run(str(tmp_path / "m1"), tmp_path / "shipped" / "m1m2") == tmp_path / "shipped" / "m1"
    assert find_m1_run(str(tmp_path / "m1")) == tmp_path / "m1"  # no M2 run given: as recorded
    assert 0.0 <= evaluate_m2_run(tmp_path / "shipped" / "m1m2", device="cpu")["test_accuracy"] <= 1.0
    # Another M1 of the same shape in its place is refused, by the digest of its weights.
    train(ModelConfig(latent_dim=6, hidden_dim=32), TrainConfig(dataset="synthetic", epochs=1, device="cpu",
                                                                    seed=1), tmp_path / "other")
    (tmp_path / "shipped" / "m1").rename(tmp_path / "m1-original")
    (tmp_path / "other").rename(tmp_path / "shipped" / "m1")
    with pytest.raises(ConfigError, match="not the M1 this model was trained on"):
        evaluate_m2_run(tmp_path / "shipped" / "m1m2", device="cpu")
    # An impostor at the recorded path does not shadow the true M1 beside the M2 run: identity
    # is the digest, not the name.
    (tmp_path / "shipped" / "m1").rename(tmp_path / "m1")
    (tmp_path / "m1-original").rename(tmp_path / "shipped" / "m1")
    assert find_m1_run(str(tmp_path / "m1"), tmp_path / "shipped" / "m1m2") == tmp_path / "m1"
    assert find_m1(model.config, str(tmp_path / "m1"), tmp_path / "shipped" / "m1m2")[1] == tmp_path / "shipped" / "m1"
    assert 0.0 <= evaluate_m2_run(tmp_path / "shipped" / "m1m2", device="cpu")["test_accuracy"] <= 1.0
    # A model that records no digest cannot tell its M1 from another: refused.
    other, _ = load_model(tmp_path / "m1")
    with pytest.raises(ConfigError, match="does not record which M1"):
        check_m1(with_changes(model.config, m1_digest=""), other, weights_digest(other), "other")
    # An M1 whose latent units the model's inputs do not fit is refused, as is no M1 at all.
    train(ModelConfig(latent_dim=3, hidden_dim=8), TrainConfig(dataset="synthetic", epochs=1, device="cpu"),
              tmp_path / "small")
    small, _ = load_model(tmp_path / "small")
    with pytest.raises(ConfigError, match="reads 4 of M1's latent units, which small does not have"):
        check_m1(with_changes(model.config, m1_digest=weights_digest(small)), small, weights_digest(small),
                 tmp_path / "small")
    (tmp_path / "shipped" / "m1").rename(tmp_path / "elsewhere")
    with pytest.raises(ConfigError, match="was not found: .*m1: no such run folder"):
        evaluate_m2_run(tmp_path / "shipped" / "m1m2", device="cpu")


def test_labelled_terms_weigh_as_in_the_papers_objective():
    model = build_m2(TINY)
    losses, batch = {}, None
    for repeats in (0.0, 1.0):
        config = M2TrainConfig(dataset="synthetic", num_labels=100, alpha_scale=0.1, labelled_repeats=repeats,
                               device="cpu")
        task = make_task(TINY, config, None, torch.device("cpu"))
        batch = batch or task.train_batch(torch.arange(100), torch.Generator().manual_seed(0))
        torch.manual_seed(1)
        losses[repeats] = task.loss(model, batch, 1.0)[0]
    n = task.num_train
    torch.manual_seed(1)
    u = unlabelled_bound(model, batch.unlabelled).bound.mean()
    lab = labelled_bound(model, batch.labelled, F.one_hot(batch.labels, 10).float()).mean()
    ce = F.cross_entropy(model.classify_logits(batch.labelled), batch.labels)
    alpha = 0.1 * n / 100  # the paper's alpha = 0.1 N spread over the 100 labelled examples
    # Paper: each labelled example counts once per epoch, as an unlabelled one does: per
    # unlabelled example, the labelled terms weigh N_l / N.
    torch.testing.assert_close(losses[1.0], -u + 100 / n * (alpha * ce - lab))
    # 0: a step's labelled batch weighs as much as its unlabelled batch
    torch.testing.assert_close(losses[0.0], -u + alpha * ce - lab)


def test_the_trainers_kl_weight_reaches_both_terms_of_the_loss():
    model = build_m2(TINY)
    config = M2TrainConfig(dataset="synthetic", num_labels=100, labelled_repeats=0.0, beta=3.0, device="cpu")
    task = make_task(TINY, config, None, torch.device("cpu"))
    assert Trainer(model, task).beta() == 3.0
    batch = task.train_batch(torch.arange(100), torch.Generator().manual_seed(0))
    y = F.one_hot(batch.labels, 10).float()
    losses, kls = {}, 0.0
    for beta in (1.0, 3.0):
        torch.manual_seed(1)
        losses[beta] = task.loss(model, batch, beta)[0]
    with torch.no_grad():  # the KL of q(z|x,y) is analytic: the same whatever the draw of z
        q = model.classify_logits(batch.unlabelled).softmax(-1)
        for c in range(10):
            kls = kls + q[:, c] * _kl(model.encode(batch.unlabelled, F.one_hot(torch.full((100,), c), 10).float()))
        labelled_kl = _kl(model.encode(batch.labelled, y))
    # Two more KLs in each term: -U grows by 2 E_q[KL], -L by 2 KL (labelled weight 1 here).
    # (A difference of two losses of several hundred nats: float rounding allows 1e-3.)
    torch.testing.assert_close(losses[3.0] - losses[1.0], 2 * kls.mean() + 2 * labelled_kl.mean(),
                               atol=1e-3, rtol=0)


def test_an_m1_run_of_another_dataset_is_refused(tmp_path):
    train(ModelConfig(latent_dim=2, hidden_dim=8), TrainConfig(dataset="synthetic", epochs=1, device="cpu"),
              tmp_path / "m1")
    with pytest.raises(ConfigError, match="was trained on synthetic, not on mnist"):
        train(TINY, M2TrainConfig(dataset="mnist", num_labels=100, epochs=1, device="cpu",
                                     m1_run=str(tmp_path / "m1")), tmp_path / "mixed")
    assert not (tmp_path / "mixed").exists()


class _LookupClassifier(torch.nn.Module):
    """Knows the label of each digit it was given, exactly as given; anything else is class 0."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        super().__init__()
        self.images, self.labels = images.reshape(len(images), -1), labels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        match = (x[:, None, :] == self.images[None]).all(-1)  # (B, N)
        label = torch.where(match.any(-1), self.labels[match.float().argmax(-1)], 0)
        return F.one_hot(label, 10).float() * 20


def test_the_classifier_is_scored_on_the_digits_as_they_are_and_the_bound_on_their_binarisation():
    config = M2TrainConfig(dataset="synthetic", num_labels=100, device="cpu")  # dynamic binarisation
    task = make_task(TINY, config, None, torch.device("cpu"))
    digits = synthetic_dataset().test
    binary = task.data.test
    assert set(binary.images.unique().tolist()) == {0.0, 1.0} and digits.images.unique().numel() > 2
    model = build_m2(TINY).eval()
    model.classifier = _LookupClassifier(digits.images, digits.labels)
    scores = task.evaluate(model, "test")
    assert scores["accuracy"] == 1.0
    g = torch.Generator().manual_seed(1234)
    on_binary = evaluate_split(model, binary, g)
    assert on_binary["accuracy"] < 0.5
    assert scores["elbo"] == pytest.approx(on_binary["elbo"])  # the bound of the binarised digits


@pytest.mark.parametrize("run", ["mnist-m2", "mnist-m1m2-100labels", "gaussian-pixels"])
def test_the_generators_plain_layers_draw_what_generate_draws(run):
    """The Generate tab decodes in the browser from `generator_stages`: the same images as
    `generate`, for M2 on pixels (Bernoulli, and Gaussian whose mean is clamped) and M1+M2
    (M2's mean placed on M1's units, M1's decoder after)."""
    from vae_core.store import read_record
    if run == "gaussian-pixels":
        model, m1 = build_m2(M2Config(latent_dim=3, hidden_dim=16, likelihood="gaussian")).eval(), None
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0, 0.5, generator=torch.Generator().manual_seed(p.numel()))
    else:
        path = ROOT / "checkpoints" / run
        model, _ = load_model(path)
        m1, _ = m1_of(read_record(path))
    stages = generator_stages(model, m1)
    assert len(stages) == (1 if m1 is None else 2)
    k = model.config.num_classes
    styles = np.random.default_rng(0).normal(size=(k, model.config.latent_dim)).astype(np.float32)
    want = generate(model, np.arange(k), styles, m1).reshape(k, -1)
    got = np.stack([run_generator(stages, y, styles[y], k) for y in range(k)])
    np.testing.assert_allclose(got, want, atol=1e-5)
    if run == "gaussian-pixels":
        assert got.min() == 0 and got.max() == 1  # clamped, as generate clamps the mean
