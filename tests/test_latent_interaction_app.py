"""The Latent space page's reparameterisation-trick controls and map choice, and the Interpolate
scrubber, with AppTest: what each control sends to the in-browser components. (The pixels the
browser draws are checked in tests/test_browser_decoder.py.)"""

import base64
import json

import numpy as np
import pytest

from apptest_helpers import ROOT, component_data, errors, image_urls, open_page, texts, walk
from vae_core.commands import train
from vae_core.config import ModelConfig, TrainConfig
from vae_core.data import load_dataset, prepare
from vae_core.registry import load_model
from vae_core.vae import explore

SHIPPED_20D = "mnist-mlp-z20 (shipped)"


def floats(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=np.float32)


@pytest.fixture(scope="module")
def mnist_test():
    return prepare(load_dataset("mnist", None, download=False), "none", 0).test


def test_the_posterior_of_a_test_digit_and_draws_from_it(mnist_test):
    at = open_page("pages/2_Latent_space.py")
    assert component_data(at, "posterior")["posterior"] is None
    at.toggle(key="latent_posterior_on").set_value(True).run()
    assert not at.exception and not errors(at)
    model, _ = load_model(ROOT / "checkpoints" / "mnist-mlp-z2")
    mu, sigma = explore.encode(model, mnist_test.images[:1, 0].numpy())
    data = component_data(at, "posterior")
    overlay = data["posterior"]
    assert overlay["samples"] == [] and [e["k"] for e in overlay["ellipses"]] == [1, 2]
    np.testing.assert_allclose(overlay["ellipses"][0]["centre"], mu[0], atol=1e-5)
    np.testing.assert_allclose(sorted(overlay["ellipses"][1]["radii"]), sorted(2 * sigma[0]), rtol=1e-4)
    x0, x1, y0, y1 = data["view"]  # zoomed in around the mean
    assert x0 < mu[0, 0] < x1 and y0 < mu[0, 1] < y1 and x1 - x0 < 2
    assert "Press the button" in texts(at) and not at.get("latex")

    at.button(key="latent_draw_eps").click().run()
    assert not at.exception and not errors(at)
    draws = explore.reparameterised_draws(model, mnist_test.images[0, 0].numpy(), 5, seed=1)
    samples = np.array(component_data(at, "posterior")["posterior"]["samples"])
    np.testing.assert_allclose(samples, draws.z, atol=1e-5)
    latex = at.get("latex")[0].value
    for value in (draws.z[0, 0], draws.mu[1], draws.sigma[0], draws.eps[0, 1]):
        assert f"{value:.3f}" in latex
    shown = image_urls(at)
    at.button(key="latent_draw_eps").click().run()  # new eps, new points
    again = np.array(component_data(at, "posterior")["posterior"]["samples"])
    assert not np.allclose(again, samples) and image_urls(at)[0] != shown[0]

    at.toggle(key="latent_posterior_zoom").set_value(False).run()
    assert component_data(at, "posterior")["view"] is None
    at.number_input(key="latent_posterior_index").set_value(3).run()
    mu3, _ = explore.encode(model, mnist_test.images[3:4, 0].numpy())
    np.testing.assert_allclose(component_data(at, "posterior")["posterior"]["mean"], mu3[0], atol=1e-5)


def test_the_posterior_of_an_uploaded_digit():
    from test_app import drawn_digit, png_bytes
    at = open_page("pages/2_Latent_space.py")
    at.toggle(key="latent_posterior_on").set_value(True).run()
    before = component_data(at, "posterior")["posterior"]["mean"]
    at.radio(key="latent_posterior_source").set_value("upload").run()
    assert component_data(at, "posterior")["posterior"] is None  # nothing uploaded yet
    at.get("file_uploader")[0].upload("seven.png", png_bytes(drawn_digit()), "image/png").run()
    assert not at.exception and not errors(at) and "your image" in texts(at)
    assert component_data(at, "posterior")["posterior"]["mean"] != before


def test_the_2d_page_says_drag_and_the_20d_page_says_click():
    at = open_page("pages/2_Latent_space.py")
    assert "drag on the map" in texts(at) and "map's legend" in texts(at)
    assert component_data(at, "thumbnails_key")["thumbnails_key"] == "mnist"
    sheet = component_data(at, "columns")
    assert sheet["columns"] == 100 and sheet["key"] == "mnist" and sheet["src"].startswith("data:image/png;base64,")
    at.sidebar.selectbox[0].select(SHIPPED_20D).run()
    assert not at.exception and not errors(at)
    assert "drag on the map" not in texts(at) and "a click on it picks that test digit" in texts(at)
    assert at.radio(key="latent_map").options == ["PCA", "t-SNE"]
    data = component_data(at, "linear")
    assert data["linear"] and data["scatter_titles"][0].startswith("PC 1")
    at.toggle(key="latent_posterior_on").set_value(True).run()
    overlay = component_data(at, "posterior")["posterior"]
    assert len(overlay["ellipses"]) == 2 and len(overlay["mean"]) == 2  # projected onto the PCA map


@pytest.fixture(scope="module")
def run_4d():
    from ui.common import RUNS
    train(ModelConfig(latent_dim=4, hidden_dim=32), TrainConfig(dataset="synthetic", epochs=2, batch_size=64,
                                                                device="cpu"), RUNS / "tsne-apptest")
    return "tsne-apptest"


def test_a_tsne_map_above_2d(run_4d):
    at = open_page("pages/2_Latent_space.py")
    at.sidebar.selectbox[0].select(run_4d).run()
    at.radio(key="latent_map").set_value("t-SNE").run()
    assert not at.exception and not errors(at)
    data = component_data(at, "linear")
    indices = np.frombuffer(base64.b64decode(data["point_indices"]), dtype=np.int32)
    points = floats(data["points"]).reshape(-1, 2)
    assert not data["linear"] and data["scatter_titles"] == ["t-SNE 1", "t-SNE 2"]
    assert len(points) == len(indices) == 128 and np.all(np.diff(indices) > 0)  # the synthetic test set
    assert "t-SNE of 1,000 test codes" in " ".join(str(c) for c in at.radio(key="latent_map").proto.captions)
    at.session_state["latent_pending_click"] = int(indices[5])  # as the component reports a click
    at.run()
    assert at.number_input(key="latent_base_index").value == indices[5]
    at.toggle(key="latent_posterior_on").set_value(True).run()
    assert "no place for new points" in texts(at) and component_data(at, "linear")["posterior"] is None


def test_the_interpolate_scrubber_gets_both_codes_images_and_path(mnist_test):
    at = open_page("pages/3_Interpolate.py")
    assert not at.exception and not errors(at)
    model, _ = load_model(ROOT / "checkpoints" / "mnist-mlp-z2")
    codes, _ = explore.encode(model, mnist_test.images[:2, 0].numpy())
    data = component_data(at, "z_a")
    np.testing.assert_allclose([data["z_a"], data["z_b"]], codes, atol=1e-5)
    np.testing.assert_allclose(floats(data["x_b"]).reshape(28, 28), mnist_test.images[1, 0].numpy())
    assert data["method"] == "linear" and data["t"] == 0.5 and len(data["layers"]) == 2
    # The map: the first 2,000 test codes, the page's path through them, and the projection by
    # which the browser places z(t) (for a 2-D model, the codes themselves).
    mu, _ = explore.encode(model, mnist_test.images[:2000, 0].numpy())
    shown = data["map"]
    np.testing.assert_allclose(floats(shown["points"]).reshape(-1, 2), mu, atol=1e-4)
    assert list(np.frombuffer(base64.b64decode(shown["labels"]), np.uint8)) == mnist_test.labels[:2000].tolist()
    np.testing.assert_allclose(shown["path"], explore.interpolate(codes[0], codes[1], 10, "linear"), atol=1e-5)
    assert shown["projection_components"] == [1, 0, 0, 1] and shown["titles"] == ["z1", "z2"]
    at.radio(key="interpolate_method").set_value("spherical").run()
    assert component_data(at, "z_a")["method"] == "spherical"
    at.number_input(key="End_index").set_value(3).run()
    codes, _ = explore.encode(model, mnist_test.images[[0, 3], 0].numpy())
    np.testing.assert_allclose(component_data(at, "z_a")["z_b"], codes[1], atol=1e-5)
