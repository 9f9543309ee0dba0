"""The Latent space explorer as a Streamlit component: the MLP decoder runs in the browser.

A slider move or a drag on the map redraws the decoded image and the marker at once, and a
hover over a test digit's point shows that digit, with no server round trip (a plain Streamlit
slider only sends its value on release, and a Plotly chart redrawn on every move took 300-500 ms
here). The decoder's weights and the projected test encodings are sent once per full page run;
the sprite sheet of the test digits for the hover thumbnails is a separate element
(`thumbnails`), which a page writes last, so that the explorer is on screen before the sheet is
made and sent. The decoder itself is ui/browser_decoder.js, shared with the
Interpolate scrubber.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st
from PIL import Image

from vae_core.vae.arrays import mean_decoder, supported
from vae_core.vae.projection import Projection

from .presentation import BODY_PX, presenting

if TYPE_CHECKING:  # the module itself imports no torch: Home draws its explorer before torch is loaded
    from vae_core.vae.explore import Ellipse

_HERE = Path(__file__).resolve().parent
# The class colours of a map (map_canvas.js's COLOURS), with their digits.
LEGEND_HTML = """<div class="legend" data-legend>
      <b>digit:</b>
      <span style="--c:#1f77b4">0</span> <span style="--c:#ff7f0e">1</span>
      <span style="--c:#2ca02c">2</span> <span style="--c:#d62728">3</span>
      <span style="--c:#9467bd">4</span> <span style="--c:#8c564b">5</span>
      <span style="--c:#e377c2">6</span> <span style="--c:#7f7f7f">7</span>
      <span style="--c:#bcbd22">8</span> <span style="--c:#17becf">9</span>
    </div>"""
LEGEND_CSS = """
.legend { font-size: 1em; text-align: center; margin-top: 0.3rem; line-height: 1.6; }
.legend span { margin: 0 0.2rem; white-space: nowrap; }
.legend span::before { content: ""; display: inline-block; width: 0.75em; height: 0.75em; border-radius: 50%;
                       background: var(--c); margin-right: 0.2em; vertical-align: -0.05em; }
"""
HTML = f"""
<div class="latent-explorer">
  <div class="controls">
    <label><span data-label="0"></span><input type="range" data-axis="0"></label>
    <label><span data-label="1"></span><input type="range" data-axis="1"></label>
    <canvas class="decoded" width="280" height="280"></canvas>
    <div class="caption" data-latent-caption></div>
  </div>
  <div class="map">
    <canvas class="scatter"></canvas>
    <div class="thumb" hidden><canvas width="84" height="84"></canvas><span></span></div>
    <div class="caption axes"></div>
    {LEGEND_HTML}
  </div>
</div>
"""
CSS = """
.latent-explorer { display: flex; gap: 2rem; flex-wrap: nowrap; align-items: flex-start;
                   font-family: var(--st-font); color: var(--st-text-color); }
.latent-explorer.stacked { flex-wrap: wrap; }
.controls { display: flex; flex-direction: column; gap: 0.6rem; width: 280px; flex: none; }
.controls label { display: flex; flex-direction: column; font-size: 0.9em; gap: 0.2rem; }
.controls input[type=range] { width: 100%; accent-color: var(--st-primary-color); }
canvas.decoded { width: 280px; height: 280px; image-rendering: pixelated; border-radius: 4px; }
.map { position: relative; flex: none; }
canvas.scatter { display: block; cursor: crosshair; touch-action: none; }
.thumb { position: absolute; pointer-events: none; background: #fff; border: 1px solid #888;
         border-radius: 4px; padding: 3px; box-shadow: 0 2px 6px rgba(0,0,0,0.25); text-align: center;
         font-size: 0.8em; line-height: 1.2; }
.thumb[hidden] { display: none; }
.thumb canvas { display: block; width: 84px; height: 84px; image-rendering: pixelated; }
.caption { font-size: 0.85em; opacity: 0.75; text-align: center; text-wrap: balance; }
""" + LEGEND_CSS
DECODER_JS = (_HERE / "browser_decoder.js").read_text(encoding="utf-8")
MAP_JS = (_HERE / "map_canvas.js").read_text(encoding="utf-8")
_component = st.components.v2.component(
    "latent_explorer", html=HTML, css=CSS,
    js="\n".join([DECODER_JS, MAP_JS, (_HERE / "latent_explorer.js").read_text(encoding="utf-8")]))
THUMBNAIL_COLUMNS = 100
# The sheet's element: it puts the decoded sheet in a page-wide registry by its key, where every
# explorer on the page finds it.
SHEET_JS = """
export default function ({ data }) {
    const sheets = globalThis.vaeThumbnailSheets || (globalThis.vaeThumbnailSheets = new Map());
    if (!data || sheets.has(data.key)) return;
    const img = new Image();
    img.onload = () => sheets.set(data.key, { image: img, columns: data.columns, side: data.side });
    img.src = data.src;
}
"""
_sheet_component = st.components.v2.component("thumbnail_sheet", html="<span hidden></span>", js=SHEET_JS)


def json_data(data: dict) -> bytes:
    """A component's data as JSON in bytes, which Streamlit forwards as they are and the
    component's script parses. Data of any other type is checked for a dataframe, which imports
    pandas and pyarrow: 0.3 s on a cold server, before the first explorer could be sent."""
    return json.dumps(data, separators=(",", ":")).encode()


def supports(model) -> bool:
    """The browser decoder covers the MLP VAE (any number of hidden layers, any of its
    activations) with a Bernoulli or Gaussian decoder, on one-channel images: loaded, or read as
    `MLPArrays`."""
    return supported(model.config)


def b64(array: np.ndarray, dtype=None) -> str:
    """An array's bytes (as `dtype` when given) in base64, as browser_decoder.js `fromBase64` reads them."""
    return base64.b64encode(np.ascontiguousarray(array, dtype=dtype).tobytes()).decode("ascii")


@st.cache_data(show_spinner=False, max_entries=8)
def decoder_payload(_model, model_key: str) -> dict:
    """The decoder's Linear layers in order, each {weight, bias, in, out} with the weight
    base64 float32 (out, in) row-major; the activation runs between them and a sigmoid after
    the last (Bernoulli logits, or the Gaussian mean as `VAE.decode` makes it). For a Gaussian
    decoder only the mean's half of the output layer is sent (the image shown is the mean)."""
    c = _model.config
    layers = [{"weight": b64(weight), "bias": b64(bias), "in": int(weight.shape[1]), "out": int(weight.shape[0])}
              for weight, bias in mean_decoder(_model)]
    return {"layers": layers, "latent_dim": c.latent_dim, "activation": c.activation,
            "height": c.image_height, "width": c.image_width, "model_key": model_key}


@st.cache_data(show_spinner=False, max_entries=4)
def thumbnail_sheet(_images: np.ndarray, images_key: str) -> dict:
    """The test digits (N, H, W) in [0, 1] tiled into one PNG, THUMBNAIL_COLUMNS to a row, as a
    data URL for the hover thumbnails. Sixteen grey levels are plenty for an 84-px thumbnail and
    make the sheet about 1.2 MB for MNIST's 10,000 digits instead of 1.6 (compressed quickly: 0.15 s,
    where the smallest file took 0.3 s)."""
    n, h, w = _images.shape
    if h != w:
        raise ValueError("thumbnails need square images")
    rows = -(-n // THUMBNAIL_COLUMNS)
    padded = np.zeros((rows * THUMBNAIL_COLUMNS, h, w), np.float32)
    padded[:n] = _images
    levels = np.round(np.clip(padded, 0, 1) * 15).astype(np.uint8) * 17
    sheet = levels.reshape(rows, THUMBNAIL_COLUMNS, h, w).transpose(0, 2, 1, 3).reshape(rows * h, THUMBNAIL_COLUMNS * w)
    buffer = io.BytesIO()
    Image.fromarray(sheet, mode="L").save(buffer, format="PNG", compress_level=3)
    return {"src": "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"),
            "columns": THUMBNAIL_COLUMNS, "side": h, "key": images_key}


def thumbnails(images: np.ndarray, images_key: str) -> None:
    """Send the sheet of the test digits `images` for the hover thumbnails of the explorers that
    were given `thumbnails=images_key`. Write it after everything else on the page: it takes a
    few tenths of a second to make the first time, and the explorer works without it meanwhile."""
    _sheet_component(key=f"thumbnail_sheet_{images_key}", data=thumbnail_sheet(images, images_key))


def posterior_overlay(mean: np.ndarray, ellipses: list[Ellipse], samples: np.ndarray | None) -> dict:
    """What the map draws of a digit's q(z|x): its (projected) mean, its ellipses (the k of each
    from the order: 1 then 2 standard deviations) and the projected draws, numbered from 1."""
    return {"mean": [float(v) for v in mean],
            "ellipses": [{"centre": [float(v) for v in e.centre], "radii": list(e.radii), "angle": e.angle, "k": k}
                         for k, e in enumerate(ellipses, 1)],
            "samples": [] if samples is None else np.asarray(samples, float).tolist()}


def latent_explorer(model, model_key: str, points: np.ndarray, labels: np.ndarray, projection: Projection | None,
                    dims: tuple[int, int], base: np.ndarray | None, z: tuple[float, float],
                    titles: tuple[str, str], key: str, point_indices: np.ndarray | None = None,
                    thumbnails: str | None = None, posterior: dict | None = None,
                    view: tuple[float, float, float, float] | None = None):
    """Mount the explorer; returns the component's result (`.z` after a move, `.clicked`: the
    test index of a clicked point). `projection` is None for a map that is not a linear image of
    latent space (t-SNE): no cross for the current z there. `point_indices` are the test indices
    of the points (all of them, in order, by default); `view` (x0, x1, y0, y1) zooms the map;
    `thumbnails` is the key of the test digits' sheet (see `thumbnails`) for the hover."""
    latent_dim = model.config.latent_dim
    if point_indices is None:
        point_indices = np.arange(len(points))
    linear = projection is not None
    data = {
        **decoder_payload(model, model_key),
        "points": b64(points, np.float32), "labels": b64(labels, np.uint8),
        "point_indices": b64(point_indices, np.int32),
        "points_key": f"{model_key}:{dims}:{len(points)}:{'linear' if linear else 'map'}",
        "linear": linear,
        "projection_mean": (projection.mean if linear else np.zeros(latent_dim)).tolist(),
        "projection_components": (projection.components if linear else np.zeros((latent_dim, 2))).ravel().tolist(),
        "dims": list(dims), "base": (np.zeros(latent_dim) if base is None else base).astype(float).tolist(),
        "z": list(z), "range": [-4.0, 4.0], "step": 0.05,
        "axis_names": [f"z{dims[0] + 1}", f"z{dims[1] + 1}"], "scatter_titles": list(titles),
        "slider_axes": latent_dim <= 2, "scatter_size": 560 if presenting() else 460,
        # The explorer's text size in px (its labels, legend and the map's numbers scale with it).
        "text_px": BODY_PX if presenting() else 16,
        "thumbnails_key": thumbnails, "posterior": posterior, "view": None if view is None else [float(v) for v in view],
    }
    return _component(key=key, data=json_data(data), default={"z": list(z)}, on_z_change=lambda: None,
                      on_clicked_change=lambda: None)
