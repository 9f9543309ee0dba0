"""The fused backward (hand-derived gradients) against autograd through the readable ELBO."""

import pytest
import torch

from vae_core.commands import train
from vae_core.config import ConfigError
from vae_core.data import prepare, synthetic_dataset
from vae_core.report import run_summary
from vae_core.store import read_record
from vae_core.trainer import Trainer
from vae_core.vae import fused
from vae_core.config import ModelConfig, TrainConfig
from vae_core.vae.model import build_model
from vae_core.vae.objective import elbo
from vae_core.vae.task import VAETask


@pytest.mark.parametrize("activation", ["tanh", "relu", "softplus"])
def test_gradients_and_terms_match_autograd(activation):
    config = ModelConfig(latent_dim=3, hidden_dim=16, activation=activation, image_height=8, image_width=8)
    torch.manual_seed(0)
    model = build_model(config)
    for p in model.parameters():  # away from the paper's tiny initialisation, so every term matters
        torch.nn.init.normal_(p, std=0.3)
    x = torch.bernoulli(torch.rand(5, 1, 8, 8))
    beta = 0.7

    torch.manual_seed(1)
    reference = elbo(model, x, "B", 1, beta)
    reference.loss.backward()
    expected = {name: p.grad.clone() for name, p in model.named_parameters()}

    torch.manual_seed(1)  # the same eps
    terms = fused.ElboGradients(model)(x, beta)
    for field in ("loss", "elbo", "recon", "kl"):
        torch.testing.assert_close(getattr(terms, field), getattr(reference, field).detach())
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad, expected[name], msg=name)


def test_a_reused_step_matches_autograd_on_every_call():
    """The buffers kept between calls (one set per batch size) and the `.grad` tensors written
    in place must give each call its own numbers: nothing left over from the call before."""
    config = ModelConfig(latent_dim=2, hidden_dim=8, activation="tanh", image_height=4, image_width=4)
    torch.manual_seed(0)
    model = build_model(config)
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.3)
    step = fused.ElboGradients(model)
    for call, n in enumerate([6, 6, 3, 6]):
        x = torch.bernoulli(torch.rand(n, 1, 4, 4))
        model.zero_grad(set_to_none=True)
        torch.manual_seed(call)
        reference = elbo(model, x, "B", 1, 1.0)
        reference.loss.backward()
        expected = {name: p.grad.clone() for name, p in model.named_parameters()}
        if call == 0:  # a transposed (non-contiguous) gradient is replaced, not written through
            model.encoder[1].weight.grad = torch.ones(16, 8).t()
        torch.manual_seed(call)
        terms = step(x, 1.0)
        torch.testing.assert_close(terms.elbo, reference.elbo.detach())
        for name, p in model.named_parameters():
            torch.testing.assert_close(p.grad, expected[name], msg=f"call {call}: {name}")


@pytest.mark.parametrize("model_changes, train_changes", [
    ({}, {"estimator": "A"}), ({}, {"num_samples": 2}), ({}, {"objective": "iwae"}), ({}, {"compile": True}),
    ({"likelihood": "gaussian"}, {}), ({"architecture": "conv"}, {}), ({"hidden_layers": 2}, {})])
def test_auto_picks_autograd_where_the_fused_backward_does_not_apply_and_fused_is_refused_there(
        model_changes, train_changes):
    data = prepare(synthetic_dataset(), "dynamic")
    model_config = ModelConfig(latent_dim=2, hidden_dim=8, **model_changes)
    assert VAETask(data, ModelConfig(latent_dim=2, hidden_dim=8), TrainConfig(**train_changes)).config.backward \
        == ("autograd" if train_changes else "fused")
    assert VAETask(data, model_config, TrainConfig(**train_changes)).config.backward == "autograd"
    with pytest.raises(ConfigError, match="backward: the fused backward covers"):
        VAETask(data, model_config, TrainConfig(backward="fused", **train_changes))


def test_the_run_records_the_backward_it_used(tiny_model_config, tmp_path):
    train(tiny_model_config, TrainConfig(dataset="synthetic", epochs=1, device="cpu"), tmp_path / "auto")
    record = read_record(tmp_path / "auto")
    assert record.train_config.backward == "fused"
    assert "fused backward" in run_summary(record).training


def test_training_with_either_backward_gives_the_same_run(tiny_model_config):
    data = prepare(synthetic_dataset(), "dynamic")
    runs = []
    for backward in ("fused", "autograd"):
        config = TrainConfig(dataset="synthetic", epochs=2, batch_size=64, seed=3, device="cpu", warmup_epochs=1.0,
                             backward=backward)
        torch.manual_seed(0)
        trainer = Trainer(build_model(tiny_model_config), VAETask(data, tiny_model_config, config))
        trainer.fit()
        runs.append(trainer)
    for a, b in zip(runs[0].history, runs[1].history):
        assert a["train_elbo"] == pytest.approx(b["train_elbo"], rel=1e-4)
        assert a["val_elbo"] == pytest.approx(b["val_elbo"], rel=1e-4)
    for key, value in runs[0].model.state_dict().items():
        torch.testing.assert_close(value, runs[1].model.state_dict()[key], rtol=1e-3, atol=1e-5)
