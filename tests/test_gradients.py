"""The hand-derived training gradients against autograd."""

import pytest
import torch

from vae_core import gradients
from vae_core.config import ModelConfig, TrainConfig
from vae_core.data import prepare, synthetic_dataset
from vae_core.models import build_model
from vae_core.objectives import elbo
from vae_core.training import Trainer, VAETask


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
    terms = gradients.ElboGradients(model)(x, beta)
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
    step = gradients.ElboGradients(model)
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


def test_only_the_covered_configurations_use_hand_derived_gradients():
    mlp = build_model(ModelConfig(latent_dim=2, hidden_dim=8))
    assert gradients.supported(mlp, "B", 1, "elbo")
    assert not gradients.supported(mlp, "A", 1, "elbo")
    assert not gradients.supported(mlp, "B", 2, "elbo")
    assert not gradients.supported(mlp, "B", 1, "iwae")
    assert not gradients.supported(build_model(ModelConfig(latent_dim=2, hidden_dim=8, likelihood="gaussian")),
                                   "B", 1, "elbo")
    assert not gradients.supported(build_model(ModelConfig(latent_dim=2, hidden_dim=8, architecture="conv")),
                                   "B", 1, "elbo")
    assert not gradients.supported(build_model(ModelConfig(latent_dim=2, hidden_dim=8, hidden_layers=2)),
                                   "B", 1, "elbo")


def test_training_with_either_gradient_gives_the_same_run(tiny_model_config):
    config = TrainConfig(dataset="synthetic", epochs=2, batch_size=64, seed=3, device="cpu", warmup_epochs=1.0)
    data = prepare(synthetic_dataset(), "dynamic")
    runs = []
    for manual in (True, False):
        torch.manual_seed(0)
        task = VAETask(data, config, manual_gradients=manual)
        trainer = Trainer(build_model(tiny_model_config), tiny_model_config, config, task)
        assert (task.gradient_step(trainer.model) is not None) == manual
        trainer.fit()
        runs.append(trainer)
    for a, b in zip(runs[0].history, runs[1].history):
        assert a["train_elbo"] == pytest.approx(b["train_elbo"], rel=1e-4)
        assert a["val_elbo"] == pytest.approx(b["val_elbo"], rel=1e-4)
    for key, value in runs[0].model.state_dict().items():
        torch.testing.assert_close(value, runs[1].model.state_dict()[key], rtol=1e-3, atol=1e-5)
