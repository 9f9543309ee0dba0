"""The digit input every page shares: a test digit (by index or by class), a digit drawn on the pad,
or an uploaded image; drawings and uploads are prepared as MNIST was, and the preparation is shown
step by step with what may make the result unlike MNIST. Bad input gets a message under the
widget; nothing else on the page is lost."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from vae_core.preprocess import MAX_UPLOAD_BYTES, ImageError, PreprocessSteps, preprocess_upload

from .drawing_pad import DrawingError, drawing_pad, png_bytes
from .images import png, square

ACCEPTED = ["png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff", "svg"]
SOURCES = ("test digit", "class", "draw", "upload")


@dataclass(frozen=True)
class Digit:
    image: np.ndarray                  # (H, W) in [0, 1]
    description: str                   # e.g. "test #3 (a 0)" or "your drawing"
    steps: PreprocessSteps | None = None  # a drawing's or an upload's preparation, step by step


@st.cache_data(show_spinner=False, max_entries=64)
def _preprocess(data: bytes, name: str) -> PreprocessSteps:
    return preprocess_upload(data, name)


def digit_upload(label: str, key: str) -> PreprocessSteps | None:
    """An uploader that returns the MNIST-style preparation of the file, or None."""
    upload = st.file_uploader(label, type=ACCEPTED, key=key,
                              help=f"A photo or drawing of one digit, up to {MAX_UPLOAD_BYTES // 2**20} MB.")
    if upload is None:
        return None
    try:
        return _preprocess(upload.getvalue(), upload.name)
    except ImageError as exc:
        st.error(f"**{upload.name}**: {exc}")
        return None


def digit_drawing(key: str) -> PreprocessSteps | None:
    """The drawing pad; returns the preparation of what is drawn, or None while it is empty."""
    payload = drawing_pad(key)
    try:
        data = png_bytes(payload)
        return None if data is None else _preprocess(data, "drawing.png")
    except (DrawingError, ImageError) as exc:
        st.error(f"Your drawing: {exc}")
        return None


def digit_input(key: str, images: np.ndarray, labels: np.ndarray, default_index: int = 0, label: str = "Digit",
                sources: tuple[str, ...] = ("test digit", "draw", "upload"), preparation: str = "folded") -> Digit | None:
    """A digit to work on, from one of `sources`. A drawing's or an upload's preparation is shown
    under the input, folded into an expander ("folded"), or left to the page ("none", for
    `show_preparation` where there is room). None while the pad is empty or nothing is uploaded."""
    source = st.radio(f"{label}: where from", sources, horizontal=True, key=f"{key}_source",
                      label_visibility="collapsed" if len(sources) == 1 else "visible")
    if source == "test digit":
        index = st.number_input("Test digit number", 0, len(images) - 1, default_index, key=f"{key}_index")
        return Digit(images[index], f"test digit #{index} (a {labels[index]})")
    if source == "class":
        digit = st.selectbox("Class", range(10), index=int(labels[default_index]), key=f"{key}_class")
        members = (labels == digit).nonzero()[0]
        nth = st.number_input(f"Which {digit} (of {len(members)})", 1, len(members), 1, key=f"{key}_nth")
        index = members[nth - 1]
        return Digit(images[index], f"test digit #{index} (a {digit})")
    if source == "draw":
        steps, what = digit_drawing(f"{key}_draw"), "your drawing"
        if steps is None:
            st.caption("Draw a digit on the pad: each stroke updates the page.")
    else:
        steps, what = digit_upload("Upload a photo or a scan of a digit", key=f"{key}_upload"), "your image"
        if steps is None:
            st.caption("Upload an image to use it here.")
    if steps is None:
        return None
    if preparation == "folded":
        with st.expander("How it was prepared"):
            show_preparation(steps, columns=4)
    return Digit(steps.final, what, steps)


STEP_CAPTIONS = ("as seen", "the paper, estimated", "the ink", "the digit's strokes", "at MNIST's stroke width",
                 "fitted into 20x20", "centred in 28x28")


def show_preparation(steps: PreprocessSteps, columns: int = 7) -> None:
    """The preparation step by step, small, then its notes and warnings."""
    pictures = (steps.original, steps.background, steps.ink, steps.digit, steps.cropped, steps.fitted, steps.final)
    slots = st.columns(columns)
    for i, (picture, caption) in enumerate(zip(pictures, STEP_CAPTIONS)):
        picture = square(picture)
        slots[i % columns].image(png(picture, scale=max(1, 112 // len(picture))), caption=caption,
                                 width="stretch")
    for warning in steps.warnings:
        st.warning(warning, icon=":material/lightbulb:")
    if steps.notes:
        st.caption(" ".join(steps.notes))
