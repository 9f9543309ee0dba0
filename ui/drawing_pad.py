"""The drawing pad as a Streamlit component: draw a digit with a mouse, a finger or a pen.

Each finished stroke sends the drawing as a PNG, which is prepared exactly as an uploaded image
(`vae_core.preprocess.preprocess_upload`): one code path for every digit a visitor brings.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

import streamlit as st

_HERE = Path(__file__).resolve().parent
SIZE = 280                       # drawing units; shown at most this many CSS pixels wide, less in a narrow column
# A digit drawn to fill most of the pad is about 200 px tall; a 20 px line is then a tenth of
# its height, within MNIST's range of stroke widths (the preparation adjusts the rest).
LINE_WIDTH = 20
MAX_PAYLOAD = 4 * 1024 * 1024    # characters of the data URL: far above any drawing's PNG
PREFIX = "data:image/png;base64,"

HTML = """
<div class="drawing-pad">
  <canvas aria-label="Drawing pad: draw one digit"></canvas>
  <div class="hint" data-hint>draw a digit here</div>
  <div class="buttons">
    <button type="button" data-undo>Undo</button>
    <button type="button" data-clear>Clear</button>
  </div>
</div>
"""
CSS = """
.drawing-pad { position: relative; display: flex; flex-direction: column; gap: 0.4rem; width: 100%;
               max-width: 284px; font-family: var(--st-font); color: var(--st-text-color); }
.drawing-pad canvas { width: 100%; aspect-ratio: 1; box-sizing: border-box; border: 2px solid #888;
                      border-radius: 6px; cursor: crosshair; touch-action: none; background: #fff; }
.drawing-pad .hint { position: absolute; top: 45%; width: 100%; text-align: center; pointer-events: none;
                     color: #999; font-size: 1.1rem; }
.drawing-pad .buttons { display: flex; gap: 0.5rem; }
.drawing-pad button { font: inherit; padding: 0.25rem 0.9rem; border-radius: 6px; border: 1px solid #bbb;
                      background: #f6f6f6; cursor: pointer; }
.drawing-pad button:disabled { opacity: 0.45; cursor: default; }
"""
_component = st.components.v2.component(
    "drawing_pad", html=HTML, css=CSS, js=(_HERE / "drawing_pad.js").read_text(encoding="utf-8"))


class DrawingError(ValueError):
    """A drawing payload that is not a PNG data URL of a sensible size."""


def png_bytes(payload) -> bytes | None:
    """The PNG of a drawing payload ({"png": data URL, ...}); None for an empty pad. A malformed
    or oversized payload raises `DrawingError` with a sentence for the page."""
    if payload is None:
        return None
    png = payload.get("png") if isinstance(payload, dict) else None
    if png == "" or (isinstance(payload, dict) and payload.get("strokes") == 0):
        return None
    if not isinstance(png, str) or not png.startswith(PREFIX):
        raise DrawingError("The drawing could not be read (it is not a PNG image): clear the pad and draw again.")
    if len(png) > MAX_PAYLOAD:
        raise DrawingError(f"The drawing is too large ({len(png) / 2**20:.1f} MB): clear the pad and draw again.")
    try:
        return base64.b64decode(png[len(PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise DrawingError("The drawing could not be read (its data is damaged): clear the pad and draw "
                           "again.") from None


def drawing_pad(key: str):
    """Mount the pad; returns the latest drawing payload ({"png", "strokes", "serial"}) or None."""
    result = _component(key=key, data={"size": SIZE, "line_width": LINE_WIDTH}, default={"drawing": None},
                        on_drawing_change=lambda: None)
    return result.drawing
