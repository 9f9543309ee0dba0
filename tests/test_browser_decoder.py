"""The Latent space page's in-browser decoder on MLP decoders deeper than the paper's single
hidden layer (issue 16, item 6): the pixels the browser draws are the model's decoder mean.

The payload test needs no browser: it runs the layers sent to the browser through numpy for
every depth, activation and likelihood. The browser tests serve the app on a folder of runs
with deep decoders, pick one in the sidebar and compare the canvas with `explore.decode`.
Screenshots go to artifacts/ for a human to look at.
"""

import base64

import numpy as np
import pytest
import torch

from browser import (ARTIFACTS, browser_page, choose_option, decode_four_steps_right, error_boxes, needs_browser,
                     served_app, wait_idle)
from vae_core.checkpoints import save_checkpoint
from vae_core.config import ModelConfig, TrainConfig
from vae_core.vae import explore
from vae_core.vae.model import build_model

# Run folder name -> (ModelConfig changes, weight std). The weights are drawn large enough that
# the decoded image has structure instead of the flat grey of a freshly initialised model.
DEEP_RUNS = {
    "deep-relu-bernoulli": (dict(hidden_layers=2, activation="relu"), 0.3),
    "deep-softplus-gaussian": (dict(hidden_layers=3, activation="softplus", likelihood="gaussian"), 0.15),
}


def structured_model(config: ModelConfig, std: float, seed: int = 0):
    """`config`'s model with every Linear weight drawn from N(0, std^2) (zero biases)."""
    model = build_model(config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Linear):
                module.weight.copy_(std * torch.randn(module.weight.shape, generator=generator))
    return model.eval()


def _array(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=np.float32)


def payload_forward(payload: dict, z) -> np.ndarray:
    """What latent_explorer.js's `decode` computes, in numpy: the activation between the layers
    sent and a sigmoid after the last."""
    act = {"tanh": np.tanh, "relu": lambda v: np.maximum(v, 0),
           "softplus": lambda v: np.logaddexp(0, v)}[payload["activation"]]
    x = np.asarray(z, dtype=np.float32)
    layers = payload["layers"]
    for i, layer in enumerate(layers):
        x = _array(layer["weight"]).reshape(layer["out"], layer["in"]) @ x + _array(layer["bias"])
        x = act(x) if i < len(layers) - 1 else 1 / (1 + np.exp(-x))
    return x.reshape(payload["height"], payload["width"])


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
@pytest.mark.parametrize("activation", ["tanh", "relu", "softplus"])
@pytest.mark.parametrize("hidden_layers", [1, 2, 3])
def test_the_payload_is_the_whole_decoder(hidden_layers, activation, likelihood):
    from ui import latent_explorer
    config = ModelConfig(latent_dim=2, hidden_dim=16, hidden_layers=hidden_layers,
                         activation=activation, likelihood=likelihood)
    model = structured_model(config, 0.3)
    assert latent_explorer.supports(model)
    payload = latent_explorer.decoder_payload(model, f"payload-test:{hidden_layers}:{activation}:{likelihood}")
    assert [(layer["in"], layer["out"]) for layer in payload["layers"]] == \
        [(2, 16)] + [(16, 16)] * (hidden_layers - 1) + [(16, 784)]
    for z in ([0.2, 0.0], [-1.5, 2.5]):
        expected = explore.decode(model, np.array([z], dtype=np.float32))[0]
        np.testing.assert_allclose(payload_forward(payload, z), expected, atol=1e-5)


def test_only_one_channel_mlps_decode_in_the_browser():
    from ui import latent_explorer
    assert not latent_explorer.supports(build_model(ModelConfig(architecture="conv", latent_dim=2, hidden_dim=16)))
    assert not latent_explorer.supports(build_model(ModelConfig(image_channels=3, latent_dim=2, hidden_dim=16)))


@pytest.fixture(scope="module")
def deep_runs(tmp_path_factory):
    """A runs folder with one run per DEEP_RUNS entry; yields (folder, {name: model})."""
    root = tmp_path_factory.mktemp("deep-runs")
    models = {}
    for name, (changes, std) in DEEP_RUNS.items():
        config = ModelConfig(latent_dim=2, hidden_dim=64, **changes)
        models[name] = structured_model(config, std)
        save_checkpoint(root / name, kind="vae", model_config=config, train_config=TrainConfig(dataset="mnist"),
                        weights=models[name].state_dict(), history={"epochs": [], "summary": {"status": "finished"}})
    return root, models


@pytest.fixture(scope="module")
def deep_app(deep_runs):
    with served_app(env={"VAE_EXPLORER_RUNS": str(deep_runs[0])}) as (url, _):
        yield url


@needs_browser
@pytest.mark.parametrize("name", list(DEEP_RUNS))
def test_the_browser_draws_a_deep_decoders_mean(name, deep_runs, deep_app):
    model = deep_runs[1][name]
    c = model.config
    z = np.array([[0.2, 0.0]], dtype=np.float32)
    expected = explore.decode(model, z)[0]
    assert expected.std() > 0.05, "the test model's image is too flat to tell a wrong decoder apart"
    ARTIFACTS.mkdir(exist_ok=True)
    with browser_page() as page:
        page.goto(deep_app + "/Latent_space")
        wait_idle(page)
        page.get_by_text("decoder mean at z = (0.00, 0.00)").wait_for()
        choose_option(page, "Model", name)
        widths = "-".join(map(str, [c.input_dim, *[c.hidden_dim] * c.hidden_layers, c.latent_dim]))
        page.get_by_test_id("stSidebar").get_by_text(
            f"{widths}, {c.activation}, {c.likelihood} decoder").wait_for()
        wait_idle(page)
        drawn = decode_four_steps_right(page)
        page.screenshot(path=str(ARTIFACTS / f"browser-latent-{name}.png"), full_page=True)
        assert error_boxes(page) == 0
        np.testing.assert_allclose(drawn, expected, atol=2 / 255)
