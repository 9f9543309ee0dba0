"""Realistic phone photos of MNIST digits, generated with a seed (never committed): the test suite
and `benchmarks/photo_preparation.py` measure the digit preparation on them.

Each photo draws one MNIST test digit as pen or marker strokes on paper, then adds what a phone
or scanner brings: uneven and dim light (a gradient, vignetting, a shadow across the page),
coloured or tinted paper and coloured ink, paper texture and sensor noise, ruled or squared
paper, a page edge or table in the frame, a slight perspective tilt, a small off-centre digit
in a large frame, and JPEG compression.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

PAPERS = {"white": (0.97, 0.97, 0.95), "cream": (0.95, 0.92, 0.80), "grey": (0.72, 0.72, 0.72),
          "red": (0.85, 0.18, 0.16), "yellow": (0.95, 0.85, 0.25), "blue": (0.45, 0.65, 0.90),
          "green": (0.55, 0.80, 0.50)}
INKS = {"black": (0.08, 0.08, 0.10), "blue": (0.10, 0.18, 0.60), "grey": (0.30, 0.30, 0.32),
        "dark red": (0.50, 0.08, 0.08)}
STROKES = {"normal": 0.45, "thin pen": 0.72, "thick marker": 0.18}  # threshold of the upscaled digit


@dataclass(frozen=True)
class Photo:
    image: Image.Image      # RGB, as the phone saved it (after JPEG)
    jpeg: bytes
    digit: np.ndarray       # the original 28x28 MNIST digit in [0, 1]
    label: int
    effects: tuple[str, ...]


def _smoothstep(x: np.ndarray, edge: float, width: float = 0.12) -> np.ndarray:
    t = np.clip((x - edge + width / 2) / width, 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _digit_alpha(digit: np.ndarray, height: int, stroke: str) -> np.ndarray:
    """The digit's ink coverage at `height` pixels, crisp like a pen line, of the stroke's width."""
    up = Image.fromarray((digit * 255).astype(np.uint8)).resize((height, height), Image.Resampling.BICUBIC)
    up = ndimage.gaussian_filter(np.asarray(up, dtype=np.float32) / 255.0, height / 140)
    return _smoothstep(up, STROKES[stroke])


def render(digit: np.ndarray, label: int, rng: np.random.Generator, size: tuple[int, int] | None = None,
           darken: float = 1.0, effects: tuple[str, ...] | None = None, quality: int | None = None) -> Photo:
    """One photo of `digit`. Effects are drawn at random unless given; `darken` scales every
    pixel (0.5: a photo taken in a dim room)."""
    width, height = size or [(800, 600), (1200, 900), (1600, 1200), (640, 640)][rng.integers(4)]
    if effects is None:
        pool = ["gradient", "vignette", "shadow", "coloured paper", "texture", "lines", "squares",
                "table", "tilt", "small", "thin pen", "thick marker", "coloured ink"]
        effects = tuple(e for e in pool if rng.random() < 0.3)
    paper_name = rng.choice([p for p in PAPERS if p not in ("white", "cream", "grey")]) \
        if "coloured paper" in effects else rng.choice(["white", "cream", "grey"])
    ink_name = rng.choice(["blue", "dark red", "grey"]) if "coloured ink" in effects else "black"
    stroke = "thin pen" if "thin pen" in effects else "thick marker" if "thick marker" in effects else "normal"
    paper, ink = np.array(PAPERS[paper_name]), np.array(INKS[ink_name])

    rgb = np.ones((height, width, 3), np.float32) * paper
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    if "lines" in effects or "squares" in effects:
        spacing = rng.integers(28, 48)
        line = (np.abs((yy + rng.integers(spacing)) % spacing) < 1.6).astype(np.float32)
        if "squares" in effects:
            line = np.maximum(line, np.abs((xx + rng.integers(spacing)) % spacing) < 1.6)
        # printed ink takes light away from the paper under it, whatever the paper's colour
        rgb = rgb * (1 - line[..., None] * (1 - np.array([0.55, 0.7, 0.9])))

    side = min(width, height)
    digit_side = int(side * (rng.uniform(0.12, 0.25) if "small" in effects else rng.uniform(0.35, 0.7)))
    alpha = _digit_alpha(digit, digit_side, stroke)
    top = rng.integers(int(0.08 * height), height - digit_side - int(0.08 * height) + 1)
    left = rng.integers(int(0.08 * width), width - digit_side - int(0.08 * width) + 1)
    region = rgb[top:top + digit_side, left:left + digit_side]
    strength = rng.uniform(0.85, 1.0)
    region[:] = region * (1 - strength * alpha[..., None]) + ink * strength * alpha[..., None]

    if "table" in effects:  # the page ends before the frame does: a table shows along one side
        band = int(rng.uniform(0.04, 0.08) * width)
        wood = np.array([0.35, 0.22, 0.12]) * rng.uniform(0.6, 1.2)
        if rng.random() < 0.5:
            rgb[:, :band] = wood
        else:
            rgb[:, width - band:] = wood
    light = np.ones((height, width), np.float32)
    if "gradient" in effects:
        angle = rng.uniform(0, 2 * np.pi)
        ramp = (np.cos(angle) * xx / width + np.sin(angle) * yy / height)
        ramp = (ramp - ramp.min()) / (np.ptp(ramp) + 1e-6)
        light *= 1.0 - rng.uniform(0.3, 0.55) * ramp
    if "vignette" in effects:
        r2 = ((xx - width / 2) / width) ** 2 + ((yy - height / 2) / height) ** 2
        light *= 1.0 - rng.uniform(0.5, 1.0) * r2
    if "shadow" in effects:  # a soft-edged shadow across the page, e.g. of the phone or a hand
        angle = rng.uniform(0, 2 * np.pi)
        d = np.cos(angle) * (xx - rng.uniform(0.3, 0.7) * width) + np.sin(angle) * (yy - rng.uniform(0.3, 0.7) * height)
        light *= 1.0 - rng.uniform(0.3, 0.5) * _smoothstep(d, 0.0, side * 0.06)
    if "texture" in effects:
        grain = ndimage.gaussian_filter(rng.normal(size=(height, width)).astype(np.float32), 2.0)
        light *= 1.0 + 0.05 * grain / (grain.std() + 1e-6)
    rgb = rgb * light[..., None] * darken
    rgb = rgb + rng.normal(0.0, 0.012, size=rgb.shape).astype(np.float32)  # sensor noise
    image = Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8), "RGB")
    if "tilt" in effects:  # a phone held not quite parallel to the page
        dx, dy = rng.uniform(-0.06, 0.06, size=2)
        image = image.transform(image.size, Image.Transform.PERSPECTIVE,
                                (1, dx, -dx * width / 2, dy, 1, -dy * height / 2, dx / width * 0.3, dy / height * 0.3),
                                Image.Resampling.BILINEAR, fillcolor=tuple(int(255 * c * darken) for c in paper))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=int(quality or rng.integers(55, 92)))
    jpeg = buffer.getvalue()
    return Photo(Image.open(io.BytesIO(jpeg)).convert("RGB"), jpeg, digit, label,
                 tuple(effects) + (f"paper {paper_name}", f"ink {ink_name}"))


def corpus(digits: np.ndarray, labels: np.ndarray, count: int, seed: int = 0, darken: float = 1.0) -> list[Photo]:
    """`count` photos of the first MNIST test digits, each with its own random effects."""
    rng = np.random.default_rng(seed)
    return [render(digits[i], int(labels[i]), rng, darken=darken) for i in range(count)]


def iou(prepared: np.ndarray, digit: np.ndarray) -> float:
    """Overlap of two 28x28 digits, both thresholded at 0.5."""
    a, b = prepared > 0.5, digit > 0.5
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0
