"""The digit upload widget shared by the Interpolate, Reconstruct and Semi-supervised pages."""

from __future__ import annotations

import streamlit as st

from vae_core.preprocess import MAX_UPLOAD_BYTES, ImageError, PreprocessSteps, preprocess_upload

ACCEPTED = ["png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff", "svg"]


@st.cache_data(show_spinner=False, max_entries=32)
def _preprocess(data: bytes, name: str) -> PreprocessSteps:
    return preprocess_upload(data, name)


def digit_upload(label: str, key: str) -> PreprocessSteps | None:
    """An uploader that returns the MNIST-style preprocessing of the file, or None.

    Bad files get a message under the widget; nothing else on the page is lost.
    """
    upload = st.file_uploader(label, type=ACCEPTED, key=key,
                              help=f"A photo or drawing of one digit, up to {MAX_UPLOAD_BYTES // 2**20} MB.")
    if upload is None:
        return None
    try:
        return _preprocess(upload.getvalue(), upload.name)
    except ImageError as exc:
        st.error(f"**{upload.name}**: {exc}")
        return None
