"""Turn an uploaded digit image into a 28x28 MNIST-like array, keeping every step for display.

MNIST's digits (LeCun et al.) were size-normalised to fit a 20x20 box keeping their aspect
ratio, then centred by centre of mass in a 28x28 field, as light ink (1) on a black (0)
background. Uploads are prepared the same way. A bad file raises `ImageError` with a sentence
the user can act on, never a Pillow traceback.
"""

from __future__ import annotations

import io
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

MAX_UPLOAD_BYTES = 5 * 1024 * 1024      # 5 MB
MAX_PIXELS = 4096 * 4096                 # larger decoded size is refused
WORKING_SIDE = 1024                      # larger images are reduced first, for speed
DISPLAY_SIDE = 512                       # the longest side of `PreprocessSteps.original`
MIN_CONTRAST = 0.05                      # ink weaker than this against the background is "blank"
PAPER_NOISE = 0.2                        # after normalisation, fainter is paper texture, not ink
FIT_BOX = 20
FIELD = 28

_BLANK = ("No ink found: the image looks blank. Draw a dark digit on a light background "
          "(or light on dark).")
_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601, as Pillow's "L"


class ImageError(ValueError):
    """Bad upload; str(err) is a sentence to show the user."""


@dataclass(frozen=True)
class PreprocessSteps:
    original: np.ndarray     # (H, W) greyscale in [0, 1] as seen (upright, alpha flattened), <= 512 px
    inverted: np.ndarray     # (H, W) ink = 1, background = 0, at the working size (<= 1024 px)
    cropped: np.ndarray      # (h, w) the bounding box of the ink
    fitted: np.ndarray       # longer side 20, aspect kept
    final: np.ndarray        # (28, 28) in [0, 1], centred by centre of mass
    was_inverted: bool
    notes: tuple[str, ...]


def preprocess_upload(data: bytes, filename: str = "") -> PreprocessSteps:
    """Validate and open uploaded bytes, then run `preprocess_image`."""
    if not data:
        raise ImageError("The file is empty.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise ImageError(f"The file is {len(data) / 2**20:.1f} MB; the limit is "
                         f"{MAX_UPLOAD_BYTES // 2**20} MB. Use a smaller image.")
    head = bytes(data[:512]).removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    if filename.lower().endswith((".svg", ".svgz")) or head.startswith((b"<?xml", b"<svg", b"<!doctype svg")):
        raise ImageError("Vector images (SVG) are not supported: export the drawing as PNG.")
    with _bomb_warnings_as_errors():
        try:
            image = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise ImageError("This is not an image Pillow can read (PNG, JPEG, BMP, GIF, WebP, "
                             "TIFF).") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            # Pillow refuses before the header's size reaches us; its message carries the size.
            found = re.search(r"\((\d+) pixels\)", str(exc))
            raise _too_large(f"{int(found[1]):,} pixels" if found else "beyond Pillow's safety limit") from None
        except Exception as exc:  # Pillow reports a damaged header with many exception types
            raise _corrupt(exc) from None
    return preprocess_image(image)


def preprocess_image(image: Image.Image) -> PreprocessSteps:
    """The MNIST pipeline on an opened image: greyscale, ink made light on black, cropped to
    the ink, fitted into 20x20 keeping the aspect, centred by centre of mass in 28x28."""
    notes: list[str] = []
    image = _reduce(_standard_mode(_orient(_decode(image, notes), notes)), notes)
    grey = _to_grey(image, notes)
    ink, was_inverted = _ink(grey, notes)
    rows, cols = np.nonzero(ink)
    cropped = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    fitted = _fit(cropped)
    return PreprocessSteps(original=_for_display(grey), inverted=ink, cropped=cropped, fitted=fitted,
                           final=_centre(fitted), was_inverted=was_inverted, notes=tuple(notes))


@contextmanager
def _bomb_warnings_as_errors() -> Iterator[None]:
    # Pillow only warns between its limit and twice its limit; here that is a refusal too.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def _too_large(size: str) -> ImageError:
    return ImageError(f"The image is {size}: too large to decode safely (at most {MAX_PIXELS:,} "
                      f"pixels, e.g. 4096x4096). Use a smaller image.")


def _corrupt(exc: Exception) -> ImageError:
    return ImageError(f"The file is truncated or corrupt, so the image cannot be decoded ({exc}). "
                      "Try saving or exporting it again.")


def _decode(image: Image.Image, notes: list[str]) -> Image.Image:
    """Load the first frame, refusing oversized, truncated and corrupt files."""
    width, height = image.size
    if width * height > MAX_PIXELS:  # checked on the header, before any pixel is decoded
        raise _too_large(f"{width}x{height} pixels")
    if width * height == 0:
        raise ImageError("The image has no pixels.")
    with _bomb_warnings_as_errors():
        try:
            frames = getattr(image, "n_frames", 1)
            if frames > 1:
                notes.append(f"Animated image ({frames} frames): used the first frame.")
                image.seek(0)
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _too_large(f"{width}x{height} pixels") from None
        except Exception as exc:  # each decoder fails differently on damaged data
            raise _corrupt(exc) from None
    return image


def _orient(image: Image.Image, notes: list[str]) -> Image.Image:
    """Apply the camera's EXIF orientation, so that a phone photo is upright."""
    try:
        orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
        upright = ImageOps.exif_transpose(image)
    except Exception:  # broken EXIF metadata must not stop an otherwise good image
        return image
    if orientation in range(2, 9):
        notes.append(f"Rotated by EXIF orientation (tag value {orientation}).")
    return upright


def _standard_mode(image: Image.Image) -> Image.Image:
    """Convert to a mode that resizes smoothly and maps to grey: L, LA, RGB, RGBA or the
    integer/float modes (Pillow resizes "1" and "P" with nearest neighbour only)."""
    if image.mode in ("L", "LA", "RGB", "RGBA", "I", "F") or image.mode.startswith("I;16"):
        return image
    has_alpha = image.mode in ("PA", "RGBa", "La") or "transparency" in image.info
    try:
        if image.mode == "1":
            return image.convert("L")
        return image.convert("RGBA" if has_alpha else "RGB")
    except ValueError:
        raise ImageError(f"The image's colour mode {image.mode!r} is not supported: save it as an "
                         "ordinary RGB or greyscale PNG.") from None


def _reduce(image: Image.Image, notes: list[str]) -> Image.Image:
    width, height = image.size
    if max(width, height) <= WORKING_SIDE:
        return image
    scale = WORKING_SIDE / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    notes.append(f"Downscaled a {width}x{height} image to {size[0]}x{size[1]} before processing.")
    return image.resize(size, Image.Resampling.BOX)  # area average: fast, and no aliasing


def _to_grey(image: Image.Image, notes: list[str]) -> np.ndarray:
    """(H, W) float32 greyscale in [0, 1]; transparency is composited over white paper."""
    if image.mode.startswith("I;16"):
        return np.asarray(image, dtype=np.float32) / 65535.0
    if image.mode in ("I", "F"):
        # 32-bit data has no agreed white level, so its own range is stretched to [0, 1].
        values = np.asarray(image, dtype=np.float64)
        if not np.isfinite(values).all():
            raise ImageError("The image contains invalid pixel values (NaN or infinity).")
        low, high = values.min(), values.max()
        return ((values - low) / (high - low) if high > low else np.zeros_like(values)).astype(np.float32)
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    if image.mode == "L":
        return pixels
    if image.mode == "RGB":
        return pixels @ _LUMA_WEIGHTS
    grey = pixels[..., 0] if image.mode == "LA" else pixels[..., :3] @ _LUMA_WEIGHTS
    alpha = pixels[..., -1]
    if alpha.min() == 1.0:
        return grey
    notes.append("Transparent areas were flattened onto white.")
    composite = grey * alpha + (1.0 - alpha)
    if np.ptp(composite) < MIN_CONTRAST <= np.ptp(alpha):
        # The colour is uniform (e.g. white strokes on white): the drawing is the alpha alone.
        notes.append("The drawing exists only in the transparency: used it as the ink.")
        return 1.0 - alpha  # as dark ink on white, the way the composite usually looks
    return composite


def _ink(grey: np.ndarray, notes: list[str]) -> tuple[np.ndarray, bool]:
    """Ink = 1 on background = 0, inverting when the background is light."""
    # The background is what the outer 5% frame mostly shows; a digit rarely fills it.
    band = max(1, round(0.05 * min(grey.shape)))
    frame = np.concatenate([grey[:band].ravel(), grey[-band:].ravel(),
                            grey[:, :band].ravel(), grey[:, -band:].ravel()])
    background = float(np.median(frame))
    was_inverted = background > 0.5
    if was_inverted:
        grey, background = 1.0 - grey, 1.0 - background
        notes.append("Inverted: light background (MNIST digits are light on black).")
    contrast = float(grey.max()) - background
    if contrast < MIN_CONTRAST:
        raise ImageError(_BLANK)
    ink = np.clip((grey - background) / contrast, 0.0, 1.0)
    # A photographed page has grain and shadows a little darker than the paper; a hard cut
    # keeps them out of the crop and off the digit's background.
    ink[ink < PAPER_NOISE] = 0.0
    return ink.astype(np.float32), was_inverted


def _resize(array: np.ndarray, width: int, height: int) -> np.ndarray:
    image = Image.fromarray(array.astype(np.float32), mode="F")
    resized = image.resize((width, height), Image.Resampling.LANCZOS)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)  # Lanczos overshoots at edges


def _fit(cropped: np.ndarray) -> np.ndarray:
    """Resize so that the longer side is 20 pixels, keeping the aspect ratio."""
    height, width = cropped.shape
    scale = FIT_BOX / max(height, width)
    return _resize(cropped, max(1, round(width * scale)), max(1, round(height * scale)))


def _centre(fitted: np.ndarray) -> np.ndarray:
    """Paste into 28x28 with the centre of mass at pixel index (14, 14).

    That is where MNIST's own digits have it: their mean centre of mass is at index 14.00
    (spread +-0.29, from rounding the shift), not at the geometric 13.5.
    """
    height, width = fitted.shape
    mass = float(fitted.sum())
    if mass <= 0.0:  # only if resampling cancelled out a few faint specks
        raise ImageError(_BLANK)
    row = float(np.arange(height) @ fitted.sum(axis=1)) / mass
    col = float(np.arange(width) @ fitted.sum(axis=0)) / mass
    top = int(np.clip(round(FIELD / 2 - row), 0, FIELD - height))    # keep the digit in frame
    left = int(np.clip(round(FIELD / 2 - col), 0, FIELD - width))
    final = np.zeros((FIELD, FIELD), dtype=np.float32)
    final[top:top + height, left:left + width] = fitted
    return final


def _for_display(grey: np.ndarray) -> np.ndarray:
    height, width = grey.shape
    if max(height, width) <= DISPLAY_SIDE:
        return grey
    scale = DISPLAY_SIDE / max(height, width)
    return _resize(grey, max(1, round(width * scale)), max(1, round(height * scale)))
