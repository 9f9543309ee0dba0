"""The Interpolate page's scrubber as a Streamlit component: a slider t that decodes the point
z(t) on the path between two codes in the browser, beside the pixel cross-fade at the same t,
and a map of test codes with the path drawn and z(t) marked on it.

It reuses the Latent space explorer's in-browser decoder (ui/browser_decoder.js and the layers
of `latent_explorer.decoder_payload`) and its map drawing (ui/map_canvas.js), so a move costs no
server round trip, and the page draws no Plotly chart (which took about 0.75 s of a switch to the
page in headless Chromium).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from vae_core.vae.projection import Projection

from .common import state_key
from .latent_explorer import DECODER_JS, LEGEND_CSS, LEGEND_HTML, MAP_JS, b64, decoder_payload, json_data, supports
from .presentation import BODY_PX, presenting

_HERE = Path(__file__).resolve().parent
HTML = f"""
<div class="scrubber">
  <div class="side">
    <label><span data-t-label></span><input type="range" min="0" max="1" step="0.01" data-t></label>
    <div class="pair">
      <figure><canvas class="latent" width="168" height="168"></canvas><figcaption>decoded from z(t)</figcaption></figure>
      <figure><canvas class="pixels" width="168" height="168"></canvas><figcaption>pixel cross-fade</figcaption></figure>
    </div>
    <div class="caption" data-scrub-caption></div>
  </div>
  <div class="map" hidden>
    <canvas class="path-map"></canvas>
    <div class="caption axes"></div>
    {LEGEND_HTML}
  </div>
</div>
"""
CSS = """
.scrubber { font-family: var(--st-font); color: var(--st-text-color); max-width: 100%; display: flex;
            flex-wrap: wrap; gap: 1.5rem; align-items: flex-start; }
.side { flex: 1 1 340px; min-width: 0; max-width: 520px; }
.side label { display: flex; flex-direction: column; gap: 0.2rem; font-size: 0.95em; }
.side input[type=range] { width: 100%; accent-color: var(--st-primary-color); }
.pair { display: flex; gap: 1.5rem; flex-wrap: wrap; margin-top: 0.5rem; }
.pair figure { margin: 0; text-align: center; font-size: 0.9em; }
.pair canvas { width: 168px; height: 168px; image-rendering: pixelated; border-radius: 4px; display: block; }
.caption { font-size: 0.9em; opacity: 0.75; margin-top: 0.3rem; }
.map { flex: none; }
.map[hidden] { display: none; }
.map .caption { text-align: center; }
canvas.path-map { display: block; }
""" + LEGEND_CSS
_component = st.components.v2.component(
    "interpolation_scrubber", html=HTML, css=CSS,
    js="\n".join([DECODER_JS, MAP_JS, (_HERE / "interpolation_scrubber.js").read_text(encoding="utf-8")]))


def path_map(points: np.ndarray, labels: np.ndarray, path: np.ndarray, projection: Projection,
             titles: tuple[str, str]) -> dict:
    """The scrubber's map: test codes `points` (N, 2) already projected, coloured by `labels`, the
    projected `path` (S, 2), and the linear `projection` by which the browser places z(t)."""
    return {"points": b64(points, np.float32), "labels": b64(labels, np.uint8),
            "path": np.asarray(path, float).tolist(), "projection_mean": np.asarray(projection.mean, float).tolist(),
            "projection_components": np.asarray(projection.components, float).ravel().tolist(),
            "titles": list(titles), "size": 520 if presenting() else 420,
            "text_px": BODY_PX if presenting() else 16}


def interpolation_scrubber(model, run: Path, z_a: np.ndarray, z_b: np.ndarray, x_a: np.ndarray,
                           x_b: np.ndarray, method: str, key: str, t: float = 0.5, map_data: dict | None = None) -> None:
    """Mount the scrubber for the model of the run folder `run` between the codes z_a and z_b (D,)
    of the images x_a and x_b (H, W); `method` is "linear" or "spherical", as
    `explore.interpolate` takes it; `map_data` (from `path_map`) adds the map with z(t) marked. Models
    that the browser cannot decode are refused here: the page shows its strips instead."""
    if not supports(model):
        raise ValueError("the scrubber decodes MLP VAEs on one-channel images only")
    if method not in ("linear", "spherical"):
        raise ValueError(f"unknown interpolation {method!r}")
    data = {**decoder_payload(model, state_key(run)),
            "z_a": np.asarray(z_a, float).tolist(), "z_b": np.asarray(z_b, float).tolist(),
            "x_a": b64(x_a, np.float32), "x_b": b64(x_b, np.float32), "method": method, "t": float(t), "map": map_data}
    _component(key=key, data=json_data(data))
