"""The Interpolate page's scrubber as a Streamlit component: a slider t that decodes the point
z(t) on the path between two codes in the browser, beside the pixel cross-fade at the same t.

It reuses the Latent space explorer's in-browser decoder (ui/browser_decoder.js and the layers
of `latent_explorer.decoder_payload`), so a move costs no server round trip.
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import streamlit as st

from .common import state_key
from .latent_explorer import DECODER_JS, decoder_payload, supports

_HERE = Path(__file__).resolve().parent
HTML = """
<div class="scrubber">
  <label><span data-t-label></span><input type="range" min="0" max="1" step="0.01" data-t></label>
  <div class="pair">
    <figure><canvas class="latent" width="168" height="168"></canvas><figcaption>decoded from z(t)</figcaption></figure>
    <figure><canvas class="pixels" width="168" height="168"></canvas><figcaption>pixel cross-fade</figcaption></figure>
  </div>
  <div class="caption" data-scrub-caption></div>
</div>
"""
CSS = """
.scrubber { font-family: var(--st-font); color: var(--st-text-color); max-width: 100%; }
.scrubber label { display: flex; flex-direction: column; gap: 0.2rem; font-size: 0.95rem; }
.scrubber input[type=range] { width: 100%; accent-color: var(--st-primary-color); }
.pair { display: flex; gap: 1.5rem; flex-wrap: wrap; margin-top: 0.5rem; }
.pair figure { margin: 0; text-align: center; font-size: 0.9rem; }
.pair canvas { width: 168px; height: 168px; image-rendering: pixelated; border-radius: 4px; display: block; }
.caption { font-size: 0.9rem; opacity: 0.75; margin-top: 0.3rem; }
"""
_component = st.components.v2.component(
    "interpolation_scrubber", html=HTML, css=CSS,
    js=DECODER_JS + "\n" + (_HERE / "interpolation_scrubber.js").read_text(encoding="utf-8"))


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=np.float32).tobytes()).decode("ascii")


def interpolation_scrubber(model, run: Path, z_a: np.ndarray, z_b: np.ndarray, x_a: np.ndarray,
                           x_b: np.ndarray, method: str, key: str, t: float = 0.5) -> None:
    """Mount the scrubber for the model of the run folder `run` between the codes z_a and z_b (D,)
    of the images x_a and x_b (H, W);
    `method` is "linear" or "spherical", as `explore.interpolate` takes it. Models that the
    browser cannot decode are refused here: the page shows its strips instead."""
    if not supports(model):
        raise ValueError("the scrubber decodes MLP VAEs on one-channel images only")
    if method not in ("linear", "spherical"):
        raise ValueError(f"unknown interpolation {method!r}")
    data = {**decoder_payload(model, state_key(run)),
            "z_a": np.asarray(z_a, float).tolist(), "z_b": np.asarray(z_b, float).tolist(),
            "x_a": _b64(x_a), "x_b": _b64(x_b), "method": method, "t": float(t)}
    _component(key=key, data=data)
