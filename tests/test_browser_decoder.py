"""The in-browser decoder and what the browser draws with it: on MLP decoders deeper than the
paper's single hidden layer (issue 16, item 6) the pixels are the model's decoder mean; on the
shipped 2-D model, the Latent space map's hover thumbnail is the test digit under the pointer,
its posterior overlay puts the draws z = mu + sigma * eps where vae_core computes them, and the
Interpolate scrubber draws the decoder's mean at z(t) (issue 18, items 6 and 7).

The payload test needs no browser: it runs the layers sent to the browser through numpy for
every depth, activation and likelihood. The browser tests serve the app, drive it as a person
would and compare the canvases with `explore`. Screenshots go to artifacts/ for a human to
look at.
"""

import base64
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from browser import (ARTIFACTS, ROOT, browser_page, choose_option, decode_four_steps_right, error_boxes, needs_browser,
                     served_app, wait_idle)
from vae_core.checkpoints import save_checkpoint
from vae_core.config import ModelConfig, TrainConfig
from vae_core.data import load_dataset, prepare
from vae_core.registry import load_model
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


# The shipped 2-D model on the Latent space and Interpolate pages: the hover thumbnail, the
# posterior overlay and the scrubber, read back from the canvases the browser drew.

def canvas_pixels(locator, cell: int) -> np.ndarray:
    """A canvas's RGB image sampled at the centre of each `cell` x `cell` block, in [0, 1]."""
    data_url = locator.evaluate("c => c.toDataURL('image/png')")
    image = np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",")[1]))).convert("RGB"), np.float32)
    return image[cell // 2::cell, cell // 2::cell] / 255


@pytest.fixture(scope="module")
def shipped_app():
    with served_app() as (url, _):
        yield url


@pytest.fixture(scope="module")
def shipped_2d():
    model, _ = load_model(ROOT / "checkpoints" / "mnist-mlp-z2")
    test = prepare(load_dataset("mnist", None, download=False), "none", 0).test
    return model, test.images[:, 0].numpy(), test.labels.numpy()


@needs_browser
def test_hovering_a_point_shows_that_test_digit(shipped_app, shipped_2d):
    _, images, labels = shipped_2d
    ARTIFACTS.mkdir(exist_ok=True)
    with browser_page(1024, 768) as page:
        page.goto(shipped_app + "/Latent_space")
        wait_idle(page)
        page.get_by_text("decoder mean at z = (0.00, 0.00)").wait_for()
        page.wait_for_timeout(1500)  # the sprite sheet of the test digits loads
        box = page.locator("canvas.scatter").bounding_box()
        thumb = page.locator(".thumb")
        shown = []
        for fx, fy in ((0.45, 0.45), (0.55, 0.5), (0.5, 0.62), (0.4, 0.35)):
            page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
            if thumb.evaluate("t => t.hidden"):
                continue
            index = int(thumb.get_attribute("data-index"))
            assert thumb.locator("span").inner_text() == f"test #{index}: a {labels[index]}"
            drawn = canvas_pixels(thumb.locator("canvas"), 3)[..., 0]  # 84 px: 3 per digit pixel
            np.testing.assert_allclose(drawn, np.round(images[index] * 15) * 17 / 255, atol=1.5 / 255)
            shown.append(index)
        assert len(set(shown)) >= 2, "the pointer found fewer than two distinct digits"
        # side by side at a projector's size, the sidebar open
        image_box, map_box = page.locator("canvas.decoded").bounding_box(), box
        assert image_box["x"] + image_box["width"] <= map_box["x"] and abs(image_box["y"] - map_box["y"]) < 200
        page.screenshot(path=str(ARTIFACTS / "browser-latent-hover-1024.png"))
        page.mouse.move(5, 5)
        assert thumb.evaluate("t => t.hidden")
        assert error_boxes(page) == 0


@needs_browser
def test_the_posterior_ellipse_and_the_draws_of_eps(shipped_app, shipped_2d):
    model, images, _ = shipped_2d
    draws = explore.reparameterised_draws(model, images[0], 5, seed=1)  # the first press of the button
    with browser_page(1024, 768) as page:
        page.goto(shipped_app + "/Latent_space")
        wait_idle(page)
        page.get_by_text("Show a digit's q(z|x) on the map").click()
        page.get_by_role("button", name="Draw ε ~ N(0, I)").click()
        page.get_by_text("the decoder's mean at draws 1 to 5").wait_for()
        wait_idle(page)
        scatter = page.locator("canvas.scatter")
        for _ in range(100):  # the component redraws once the page run that made the draws reaches it
            overlay = json.loads(scatter.get_attribute("data-overlay") or '{"samples": []}')
            if len(overlay["samples"]) == 5:
                break
            page.wait_for_timeout(100)
        # The ellipses' half-axes in pixels are k * sigma times the map's scale: both ellipses agree.
        (a1, b1), (a2, b2) = overlay["radii"]
        assert a2 == pytest.approx(2 * a1) and b2 == pytest.approx(2 * b1)
        scale = a1 / draws.sigma.max()  # a diagonal q: the longer half-axis is the larger sigma
        assert b1 / draws.sigma.min() == pytest.approx(scale, rel=1e-3)
        offsets = (np.array(overlay["samples"]) - overlay["mean"]) * [1, -1] / scale
        np.testing.assert_allclose(offsets, draws.z - draws.mu, atol=0.5 / scale)  # within half a pixel
        ratio = page.evaluate("window.devicePixelRatio")
        pixels = canvas_pixels(scatter, 1)
        for x, y in overlay["samples"]:
            r, g, b = pixels[int(round(y * ratio)), int(round(x * ratio))]
            assert r > 0.9 and 0.7 < g < 0.9 and b < 0.2, "no yellow marker where a draw should be"
        katex = page.locator(".katex-display").inner_text()
        assert f"{draws.z[0, 0]:.3f}" in katex and f"{draws.eps[0, 1]:.3f}" in katex
        page.locator(".latent-explorer").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "browser-latent-posterior-1024.png"))
        assert error_boxes(page) == 0


@needs_browser
def test_the_interpolate_scrubber_decodes_the_path_in_the_browser(shipped_app, shipped_2d):
    model, images, _ = shipped_2d
    codes, _ = explore.encode(model, images[:2])
    with browser_page(1024, 768) as page:
        page.goto(shipped_app + "/Interpolate")
        wait_idle(page)
        page.locator("[data-scrub-caption][data-t='0.50']").wait_for()
        page.wait_for_timeout(500)
        page.locator("input[data-t]").focus()
        for _ in range(20):
            page.keyboard.press("ArrowLeft")
        page.locator("[data-scrub-caption][data-t='0.30']").wait_for()
        expected = explore.decode(model, (0.7 * codes[0] + 0.3 * codes[1])[None])[0]
        np.testing.assert_allclose(canvas_pixels(page.locator("canvas.latent"), 6)[..., 0], expected, atol=2 / 255)
        np.testing.assert_allclose(canvas_pixels(page.locator("canvas.pixels"), 6)[..., 0],
                                   0.7 * images[0] + 0.3 * images[1], atol=2 / 255)
        # The map's cross follows z(t): for the 2-D model the map's axes are z itself.
        marker = [float(v) for v in page.locator("canvas.path-map").get_attribute("data-marker").split(",")]
        np.testing.assert_allclose(marker, 0.7 * codes[0] + 0.3 * codes[1], atol=2e-3)
        page.locator("canvas.latent").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "browser-interpolate-scrubber-1024.png"))
        assert error_boxes(page) == 0


@needs_browser
def test_the_generate_tab_draws_m2s_class_and_style_in_the_browser(shipped_app):
    """Semi-supervised, Generate: a slider moved with the keyboard and a class button pressed
    redraw the chosen digit and the strip of every class with the shipped M2's decoder mean."""
    from vae_core.m2.explore import generate
    model, _ = load_model(ROOT / "checkpoints" / "mnist-m2")
    with browser_page(1024, 768) as page:
        page.goto(shipped_app + "/Semi-supervised")
        wait_idle(page)
        choose_option(page, "Model", "mnist-m2 (shipped)")
        wait_idle(page)
        page.get_by_role("tab", name="Generate").click()
        page.locator("[data-style-caption][data-label='3']").wait_for()
        page.wait_for_timeout(500)
        page.locator("input[data-dim='0']").focus()
        for _ in range(5):
            page.keyboard.press("ArrowRight")
        page.locator("[data-style-caption][data-z^='0.5,']").wait_for()
        page.locator("[data-classes] button[data-label='7']").click()
        page.locator("[data-style-caption][data-label='7']").wait_for()
        z = np.zeros((10, model.config.latent_dim), np.float32)
        z[:, 0] = 0.5
        expected = generate(model, np.arange(10), z)
        np.testing.assert_allclose(canvas_pixels(page.locator("canvas.one"), 6)[..., 0], expected[7], atol=2 / 255)
        strip = canvas_pixels(page.locator("canvas.strip"), 2)[..., 0]  # (28, 280): the classes side by side
        np.testing.assert_allclose(strip, np.concatenate(list(expected), axis=1), atol=2 / 255)
        page.locator("canvas.strip").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "browser-semi-supervised-generate-1024.png"))
        assert error_boxes(page) == 0
