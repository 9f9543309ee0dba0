"""Turn an uploaded digit image into a 28x28 MNIST-like array, the way MNIST was made, and
refuse bad files with a sentence a user can act on.

MNIST's digits (LeCun et al.) were size-normalised to fit a 20x20 box keeping their aspect
ratio, then centred by centre of mass in a 28x28 field, with ink as high values on a zero
background. Every intermediate step is kept so that the app can show it.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_PIXELS = 4096 * 4096          # decoded size; more is refused before decoding
WORKING_SIDE = 1024               # larger images are reduced to this longest side first
DISPLAY_SIDE = 512
INK_THRESHOLD = 0.1               # after normalisation, below this is background
PAPER_NOISE = 0.2                 # faint texture (paper grain, shadows) is zeroed below this
FIT_BOX, FIELD = 20, 28


class ImageError(ValueError):
    """A bad upload; str(error) is a sentence to show the user."""


@dataclass(frozen=True)
class PreprocessSteps:
    original: np.ndarray     # (H, W) greyscale in [0, 1] as seen (alpha flattened), at most 512 px
    inverted: np.ndarray     # (H, W) ink = 1, background = 0
    cropped: np.ndarray      # (h, w) the ink's bounding box
    fitted: np.ndarray       # longer side 20, aspect kept
    final: np.ndarray        # (28, 28) in [0, 1], centred by centre of mass
    was_inverted: bool
    notes: tuple[str, ...]


def preprocess_upload(data: bytes, filename: str = "") -> PreprocessSteps:
    """Validate and decode uploaded bytes, then run `preprocess_image`."""
    if not data:
        raise ImageError("The file is empty.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise ImageError(f"The file is {len(data) / 2**20:.1f} MB; the limit is "
                         f"{MAX_UPLOAD_BYTES // 2**20} MB. Use a smaller image.")
    head = data[:256].lstrip().lower()
    if filename.lower().endswith((".svg", ".svgz")) or head.startswith((b"<?xml", b"<svg", b"<!doctype svg")):
        raise ImageError("Vector images (SVG) are not supported: export the drawing as PNG or JPEG.")
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageError("This is not an image Pillow can read (PNG, JPEG, BMP, GIF, WebP, TIFF).") from None
    except Image.DecompressionBombError:
        raise ImageError(f"The image is too large to decode safely (a possible decompression bomb); "
                         f"at most {MAX_PIXELS:,} pixels are accepted.") from None
    except OSError as exc:
        raise ImageError(f"The image could not be read ({exc}).") from None
    return preprocess_image(image)


def _check_size(image: Image.Image) -> None:
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise ImageError(f"The image is {width}x{height} pixels; at most {MAX_PIXELS:,} pixels "
                         f"(e.g. 4096x4096) are accepted. Use a smaller image.")
    if width < 1 or height < 1:
        raise ImageError("The image has no pixels.")


def _load(image: Image.Image, notes: list[str]) -> Image.Image:
    """Decode the first frame, refusing bombs and truncated files."""
    _check_size(image)
    if getattr(image, "n_frames", 1) > 1:
        notes.append(f"Animated image with {image.n_frames} frames: used the first frame.")
        image.seek(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageError(f"The image is {image.size[0]}x{image.size[1]} pixels: too large to "
                             "decode safely.") from None
        except OSError as exc:
            if "truncated" in str(exc).lower():
                raise ImageError("The file is truncated or corrupt: only part of the image is there.") from None
            raise ImageError(f"The image could not be decoded ({exc}).") from None
        except (ValueError, SyntaxError) as exc:
            raise ImageError(f"The image could not be decoded ({exc}).") from None
    return image


def _orient(image: Image.Image, notes: list[str]) -> Image.Image:
    try:
        orientation = image.getexif().get(0x0112, 1)
        rotated = ImageOps.exif_transpose(image)
    except Exception:  # broken EXIF data must not stop an otherwise good image
        return image
    if orientation not in (None, 1):
        notes.append(f"Turned upright using the photo's EXIF orientation ({orientation}).")
    return rotated


def _to_grey(image: Image.Image, notes: list[str]) -> np.ndarray:
    """Greyscale in [0, 1], transparency composited over white; (H, W) float32."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(image, dtype=np.float32) / 65535.0
    if mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float64)
        if not np.isfinite(values).all():
            raise ImageError("The image contains invalid (NaN or infinite) pixel values.")
        low, high = values.min(), values.max()
        return ((values - low) / (high - low) if high > low else np.zeros_like(values)).astype(np.float32)
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        image = image.convert("RGB")
    elif mode == "1":
        image = image.convert("L")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0
        alpha = rgba[..., 3]
        grey = rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        composite = grey * alpha + (1.0 - alpha)  # over white paper
        if alpha.min() < 1.0:
            notes.append("Transparent areas were treated as white paper.")
        if np.ptp(composite) < 0.05 and np.ptp(alpha) >= 0.05:
            notes.append("The drawing exists only in the transparency: used it as the ink.")
            return 1.0 - alpha  # dark strokes on white, like the composite would have been
        return composite.astype(np.float32)
    return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


def _resize(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize a float image to (width, height) with Lanczos, values clipped to [0, 1]."""
    resized = Image.fromarray(array.astype(np.float32), mode="F").resize(size, Image.LANCZOS)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def preprocess_image(image: Image.Image) -> PreprocessSteps:
    """The MNIST pipeline on an opened image: greyscale, invert when the background is light,
    crop to the ink, fit into 20x20 keeping the aspect, centre by centre of mass in 28x28."""
    notes: list[str] = []
    image = _orient(_load(image, notes), notes)
    if max(image.size) > WORKING_SIDE:
        notes.append(f"Reduced a {image.size[0]}x{image.size[1]} image for processing.")
        image = image.copy()
        image.thumbnail((WORKING_SIDE, WORKING_SIDE), Image.BOX)
    grey = _to_grey(image, notes)
    if np.ptp(grey) < 0.05:
        raise ImageError("No ink found: the image looks blank. Draw a dark digit on a light "
                         "background (or light on dark).")

    # The background is what the border mostly shows.
    h, w = grey.shape
    band = max(1, round(0.05 * min(h, w)))
    border = np.concatenate([grey[:band].ravel(), grey[-band:].ravel(), grey[:, :band].ravel(), grey[:, -band:].ravel()])
    background = float(np.median(border))
    was_inverted = background > 0.5
    ink = 1.0 - grey if was_inverted else grey.copy()
    if was_inverted:
        notes.append("Inverted: the background is light, and MNIST digits are light on black.")
    ink_background = 1.0 - background if was_inverted else background
    ink = (ink - ink_background) / max(float(ink.max()) - ink_background, 1e-6)
    ink = np.clip(ink, 0.0, 1.0)
    ink[ink < PAPER_NOISE] = 0.0
    rows, cols = np.nonzero(ink > INK_THRESHOLD)
    if len(rows) == 0:
        raise ImageError("No ink found: the image looks blank. Draw a dark digit on a light "
                         "background (or light on dark).")

    cropped = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    ch, cw = cropped.shape
    scale = FIT_BOX / max(ch, cw)
    fitted = _resize(cropped, (max(1, round(cw * scale)), max(1, round(ch * scale))))

    final = np.zeros((FIELD, FIELD), dtype=np.float32)
    fh, fw = fitted.shape
    total = float(fitted.sum()) or 1.0
    cy = float((np.arange(fh)[:, None] * fitted).sum() / total)
    cx = float((np.arange(fw)[None, :] * fitted).sum() / total)
    top = int(np.clip(round(FIELD / 2 - 0.5 - cy), 0, FIELD - fh))
    left = int(np.clip(round(FIELD / 2 - 0.5 - cx), 0, FIELD - fw))
    final[top:top + fh, left:left + fw] = fitted

    display = grey
    if max(display.shape) > DISPLAY_SIDE:
        factor = DISPLAY_SIDE / max(display.shape)
        display = _resize(display, (max(1, round(w * factor)), max(1, round(h * factor))))
    return PreprocessSteps(display, ink, cropped, fitted, final, was_inverted, tuple(notes))
