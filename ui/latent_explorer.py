"""The Latent space explorer as a Streamlit component: the MLP decoder runs in the browser.

A slider move or a drag on the scatter redraws the decoded image and the marker at once,
with no server round trip (a plain Streamlit slider only sends its value on release, and a
Plotly chart redrawn on every move took 300-500 ms here). The decoder's weights and the
projected test encodings are sent once per full page run.
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import streamlit as st

from vae_core.vae.explore import Projection, mean_decoder_layers
from vae_core.vae.model import MLPVAE

_HERE = Path(__file__).resolve().parent
HTML = """
<div class="latent-explorer">
  <div class="controls">
    <label><span data-label="0"></span><input type="range" data-axis="0"></label>
    <label><span data-label="1"></span><input type="range" data-axis="1"></label>
    <canvas class="decoded" width="280" height="280"></canvas>
    <div class="caption" data-latent-caption></div>
  </div>
  <div class="map">
    <canvas class="scatter"></canvas>
    <div class="caption axes"></div>
    <div class="legend">
      <span style="color:#1f77b4">● 0</span> <span style="color:#ff7f0e">● 1</span>
      <span style="color:#2ca02c">● 2</span> <span style="color:#d62728">● 3</span>
      <span style="color:#9467bd">● 4</span> <span style="color:#8c564b">● 5</span>
      <span style="color:#e377c2">● 6</span> <span style="color:#7f7f7f">● 7</span>
      <span style="color:#bcbd22">● 8</span> <span style="color:#17becf">● 9</span>
    </div>
  </div>
</div>
"""
CSS = """
.latent-explorer { display: flex; gap: 2rem; flex-wrap: wrap; align-items: flex-start;
                   font-family: var(--st-font); color: var(--st-text-color); }
.controls { display: flex; flex-direction: column; gap: 0.6rem; width: 280px; }
.controls label { display: flex; flex-direction: column; font-size: 0.9rem; gap: 0.2rem; }
.controls input[type=range] { width: 100%; accent-color: var(--st-primary-color); }
canvas.decoded { width: 280px; height: 280px; image-rendering: pixelated; border-radius: 4px; }
canvas.scatter { cursor: crosshair; border: 1px solid #ddd; border-radius: 4px; touch-action: none; }
.caption { font-size: 0.85rem; opacity: 0.7; text-align: center; }
.legend { font-size: 0.9rem; text-align: center; margin-top: 0.3rem; }
.legend span { margin: 0 0.25rem; white-space: nowrap; }
"""
_component = st.components.v2.component(
    "latent_explorer", html=HTML, css=CSS, js=(_HERE / "latent_explorer.js").read_text(encoding="utf-8"))


def supports(model) -> bool:
    """The browser decoder covers the MLP VAE (any number of hidden layers, any of its
    activations) with a Bernoulli or Gaussian decoder, on one-channel images."""
    return isinstance(model, MLPVAE) and model.config.image_channels == 1


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


@st.cache_data(show_spinner=False, max_entries=8)
def decoder_payload(_model, model_key: str) -> dict:
    """The decoder's Linear layers in order, each {weight, bias, in, out} with the weight
    base64 float32 (out, in) row-major; the activation runs between them and a sigmoid after
    the last (Bernoulli logits, or the Gaussian mean as `VAE.decode` makes it). For a Gaussian
    decoder only the mean's half of the output layer is sent (the image shown is the mean)."""
    c = _model.config
    layers = [{"weight": _b64(weight), "bias": _b64(bias), "in": int(weight.shape[1]), "out": int(weight.shape[0])}
              for weight, bias in mean_decoder_layers(_model)]
    return {"layers": layers, "latent_dim": c.latent_dim, "activation": c.activation,
            "height": c.image_height, "width": c.image_width, "model_key": model_key}


def latent_explorer(model, model_key: str, points: np.ndarray, labels: np.ndarray, projection: Projection,
                    dims: tuple[int, int], base: np.ndarray | None, z: tuple[float, float],
                    titles: tuple[str, str], key: str):
    """Mount the explorer; returns the component's result (`.z` after a move, `.clicked`)."""
    latent_dim = model.config.latent_dim
    data = {
        **decoder_payload(model, model_key),
        "points": _b64(points.astype(np.float32)), "labels": _b64(labels.astype(np.uint8)),
        "points_key": f"{model_key}:{dims}:{len(points)}",
        "projection_mean": projection.mean.tolist(), "projection_components": projection.components.ravel().tolist(),
        "dims": list(dims), "base": (np.zeros(latent_dim) if base is None else base).astype(float).tolist(),
        "z": list(z), "range": [-4.0, 4.0], "step": 0.05,
        "axis_names": [f"z{dims[0] + 1}", f"z{dims[1] + 1}"], "scatter_titles": list(titles),
        "slider_axes": latent_dim <= 2, "scatter_size": 460,
    }
    return _component(key=key, data=data, default={"z": list(z)}, on_z_change=lambda: None,
                      on_clicked_change=lambda: None)
