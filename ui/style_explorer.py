"""The Semi-supervised page's Generate tab as a Streamlit component: choose the class y and move
the style z, and M2's decoder draws the digit in the browser on every move (a Streamlit slider
reran the page on release only, 0.5-1 s later).

The decoder's layers (`vae_core.m2.explore.generator_stages`: M2's, and M1's after it for
M1+M2) are sent once per run of the tab; the slider positions and the class live in the page,
so the server is not asked again while they move.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from vae_core.m2.explore import generator_stages

from .latent_explorer import b64, json_data
from .presentation import BODY_PX, presenting

_HERE = Path(__file__).resolve().parent
HTML = """
<div class="style-explorer">
  <div class="classes" role="radiogroup" aria-label="Class y" data-classes></div>
  <div class="top">
    <figure><canvas class="one" width="168" height="168"></canvas><figcaption data-one-caption></figcaption></figure>
    <div class="sliders" data-sliders></div>
  </div>
  <figure class="every"><canvas class="strip"></canvas><figcaption>the same style, every class (click one to choose it)</figcaption></figure>
  <div class="caption" data-style-caption></div>
</div>
"""
CSS = """
.style-explorer { font-family: var(--st-font); color: var(--st-text-color); max-width: 100%; }
.classes { display: flex; flex-wrap: wrap; gap: 0.3rem; align-items: center; margin-bottom: 0.6rem; }
.classes b { margin-right: 0.3rem; font-weight: 600; }
.classes button { font: inherit; min-width: 2.2em; padding: 0.15em 0.4em; border-radius: 0.4rem; cursor: pointer;
                  border: 1px solid rgba(128, 128, 128, 0.5); background: transparent; color: inherit; }
.classes button[aria-checked=true] { background: var(--st-primary-color); border-color: var(--st-primary-color); color: #fff; }
.top { display: flex; gap: 1.5rem; align-items: flex-start; flex-wrap: wrap; }
.top figure, .every { margin: 0; text-align: center; font-size: 0.85em; }
canvas.one { width: 168px; height: 168px; image-rendering: pixelated; border-radius: 4px; display: block; }
.sliders { display: flex; flex-direction: column; gap: 0.6rem; flex: 1 1 12rem; min-width: 12rem; }
.sliders label { display: flex; flex-direction: column; gap: 0.2rem; font-size: 0.95em; }
.sliders input[type=range] { width: 100%; accent-color: var(--st-primary-color); }
.every { margin-top: 0.8rem; }
canvas.strip { width: 100%; max-width: 560px; image-rendering: pixelated; border-radius: 4px; display: block;
               margin: 0 auto; cursor: pointer; }
.caption { font-size: 0.85em; opacity: 0.75; margin-top: 0.3rem; }
"""
_component = st.components.v2.component(
    "style_explorer", html=HTML, css=CSS,
    js=(_HERE / "browser_decoder.js").read_text(encoding="utf-8") + "\n"
    + (_HERE / "style_explorer.js").read_text(encoding="utf-8"))
RANGE = (-3.0, 3.0)  # the sliders' range: most of the prior N(0, 1)'s mass
STEP = 0.1


@st.cache_data(show_spinner=False, max_entries=4)
def generator_payload(_model, _m1, model_key: str) -> dict:
    """The generator's stages as the browser takes them (weights base64 float32, row-major)."""
    stages = [{"layers": [{"weight": b64(w, np.float32), "bias": b64(b, np.float32), "in": int(w.shape[1]), "out": int(w.shape[0])}
                          for w, b in stage["layers"]],
               "activation": stage["activation"], "output": stage["output"],
               "scatter": None if stage["scatter"] is None else {"units": [int(u) for u in stage["scatter"][0]],
                                                                 "size": int(stage["scatter"][1])}}
              for stage in generator_stages(_model, _m1)]
    return {"stages": stages, "model_key": model_key}


def style_explorer(model, m1, model_key: str, base: np.ndarray, dims: list[int], label: int, key: str) -> None:
    """Mount the Generate tab's explorer for an M2 model (and its M1 VAE for M1+M2): class
    buttons, a slider for each style dimension in `dims` starting from the style `base` (Z,),
    the chosen class `label` enlarged and every class in the same style."""
    c = model.config
    height, width = c.image_shape[-2:] if m1 is None else m1.config.image_shape[-2:]
    dims = [int(d) for d in dims]
    if any(not 0 <= d < c.latent_dim for d in dims):
        raise ValueError(f"style dimensions {dims} outside 0..{c.latent_dim - 1}")
    data = {**generator_payload(model, m1, model_key),
            "num_classes": int(c.num_classes), "latent_dim": int(c.latent_dim), "height": int(height),
            "width": int(width), "base": np.asarray(base, float).tolist(), "dims": dims, "label": int(label),
            "range": list(RANGE), "step": STEP, "text_px": BODY_PX if presenting() else 16,
            # A new seed, set of dimensions or model starts the sliders again from `base`.
            "reset_key": f"{model_key}:{np.asarray(base, float).round(6).tolist()}:{dims}"}
    _component(key=key, data=json_data(data))
