"""Greyscale images for the pages: PNG bytes with sharp enlarged pixels, strips and tiles."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def png(image: np.ndarray, scale: int = 8) -> bytes:
    """A greyscale image in [0, 1] as PNG bytes, enlarged with sharp (nearest) pixels."""
    pixels = (np.clip(image, 0, 1) * 255).astype(np.uint8)
    img = Image.fromarray(pixels, mode="L")
    if scale != 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    img.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def square(image: np.ndarray) -> np.ndarray:
    """Pad an image to a square with its corner value, so that steps of different shapes show
    at the same scale without stretching."""
    h, w = image.shape
    side = max(h, w)
    out = np.full((side, side), image[0, 0], dtype=np.float32)
    top, left = (side - h) // 2, (side - w) // 2
    out[top:top + h, left:left + w] = image
    return out


def strip(images: np.ndarray, gap: int = 2) -> np.ndarray:
    """Images (N, H, W) side by side with light gaps: (H, N*W + (N-1)*gap)."""
    n, h, w = images.shape
    out = np.full((h, n * w + (n - 1) * gap), 0.25, dtype=np.float32)
    for i, image in enumerate(images):
        out[:, i * (w + gap): i * (w + gap) + w] = image
    return out


def tile(images: np.ndarray, columns: int, gap: int = 2) -> np.ndarray:
    """Images (N, H, W) in rows of `columns`: one image for a grid of samples."""
    n, h, w = images.shape
    padded = np.concatenate([images, np.full(((-n) % columns, h, w), 0.25, np.float32)])
    rows = [strip(padded[i:i + columns], gap) for i in range(0, len(padded), columns)]
    spacer = np.full((gap, rows[0].shape[1]), 0.25, np.float32)
    return np.concatenate([part for row in rows for part in (row, spacer)][:-1])
