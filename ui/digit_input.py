"""The digit input shared by the pages: a test digit (by index or by class) or an uploaded image,
prepared as MNIST was. Bad files get a message under the widget; nothing else is lost."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import streamlit as st

from vae_core.preprocess import MAX_UPLOAD_BYTES, ImageError, PreprocessSteps, preprocess_upload

ACCEPTED = ["png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff", "svg"]
SOURCES = ["test index", "class", "upload"]


@dataclass(frozen=True)
class Digit:
    image: np.ndarray                  # (H, W) in [0, 1]
    description: str                   # e.g. "test #3 (a 0)" or "your image"
    steps: PreprocessSteps | None = None  # an upload's preparation, step by step


@st.cache_data(show_spinner=False, max_entries=32)
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


def pick_digit(key: str, images: np.ndarray, labels: np.ndarray, default_index: int = 0,
               label: str = "Digit", choose_source: bool = False) -> Digit | None:
    """A digit to work on. With `choose_source`, a radio picks a test index, a class or an upload
    (None while nothing is uploaded); otherwise an upload, and a test index until there is one."""
    if not choose_source:
        steps = digit_upload("Upload a digit image", key=f"{key}_upload")
        if steps is not None:
            return Digit(steps.final, "your image", steps)
        index = st.number_input("...or use a test digit", 0, len(images) - 1, default_index, key=f"{key}_index",
                                help="Shown while no image is uploaded")
        return Digit(images[index], f"test digit #{index} (a {labels[index]})")
    source = st.radio(f"{label} digit", SOURCES, horizontal=True, key=f"{key}_source")
    if source == "test index":
        index = st.number_input("Test index", 0, len(images) - 1, default_index, key=f"{key}_index")
        return Digit(images[index], f"test #{index} (a {labels[index]})")
    if source == "class":
        digit = st.selectbox("Class", range(10), index=int(labels[default_index]), key=f"{key}_class")
        members = (labels == digit).nonzero()[0]
        nth = st.number_input(f"Which {digit} (of {len(members)})", 1, len(members), 1, key=f"{key}_nth")
        index = members[nth - 1]
        return Digit(images[index], f"test #{index} (a {digit})")
    steps = digit_upload("Upload a digit", key=f"{key}_upload")
    if steps is None:
        st.caption("Upload an image to use it here.")
        return None
    return Digit(steps.final, "your upload", steps)
