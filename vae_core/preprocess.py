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
from scipy import ndimage

MAX_UPLOAD_BYTES = 5 * 1024 * 1024      # 5 MB
MAX_PIXELS = 4096 * 4096                 # larger decoded size is refused
WORKING_SIDE = 640                       # larger images are reduced first, for speed
DISPLAY_SIDE = 512                       # the longest side of the steps shown as seen
MIN_CONTRAST = 0.05                      # ink weaker than this against the paper is "blank"
# The paper's brightness is estimated on a copy with this longer side, as a grey closing (for
# dark ink; an opening for light ink) with a square this wide: wider than a marker stroke of a
# digit that fills the frame, narrower than a shadow's or a table's extent.
BACKGROUND_SIDE = 128
BACKGROUND_WINDOW = 17
SEED_INK, KEEP_INK = 0.5, 0.35           # hysteresis on the normalised ink: seeds, and what grows from them
BOX_INK = 0.3                            # the digit's box is that of the pixels with at least this much ink
LINE_INK = 0.12                          # ruled lines are looked for among pixels with this much ink
BORDER_SHARE = 0.02                      # marks this close to the frame's edge (of its longer side) touch it
LINE_SLOPE = 0.06                        # the steepest tilt of a ruled line still found (about 3.4 degrees)
# MNIST's stroke width relative to the digit's longer side: twice the median distance from the
# strokes' middle line (the ridge of the distance transform) to the paper, minus one pixel, on
# the pixels over 0.5 with the digit's box scaled to 80 pixels (as `cropped`), over every fourth
# test digit: 5th percentile 0.078, quartiles 0.091 and 0.138, 95th percentile 0.188. A width
# between the quartiles is kept; one outside them is moved toward them by at most STROKE_STEP
# (half a pixel of MNIST's 20-pixel box): a pen or a marker adds to or takes from every
# stroke's edge a fixed amount, not a share of the width, and the rest of an unusual width is
# the writer's own. Widths outside the 5th-95th percentiles are warned about.
STROKE_RANGE = (0.078, 0.188)
STROKE_QUARTILES = (0.091, 0.138)
STROKE_STEP = 0.025
# MNIST's share of 28x28 pixels over 0.5: 1st to 99th percentile of the test digits 4.7%-25.5%.
INK_RANGE = (0.045, 0.26)
CROP_SIDE = 80                           # the digit's longer side while its stroke width is adjusted
CROP_MARGIN = 6                          # pixels of paper (at CROP_SIDE) left round it, for strokes to grow into
FIT_BOX = 20
FIELD = 28
ROUNDING_DOUBT = 0.2                     # a centre of mass this close to halfway may round either way

_BLANK = ("No ink found: the image looks blank. Draw a dark digit on a light background "
          "(or light on dark).")
_LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601, as Pillow's "L"

class ImageError(ValueError):
    """Bad upload; str(err) is a sentence to show the user."""


@dataclass(frozen=True)
class PreprocessSteps:
    original: np.ndarray     # (H, W) greyscale in [0, 1] as seen (upright, alpha flattened), <= 512 px
    background: np.ndarray   # (H, W) the paper's brightness as estimated, as `original`
    ink: np.ndarray          # (h, w) ink = 1, paper = 0, at the working size (<= 640 px)
    digit: np.ndarray        # (h, w) the digit's strokes only: marks at the border or far off dropped
    cropped: np.ndarray      # the digit's bounding box at about 80 pixels, its strokes at MNIST's width
    fitted: np.ndarray       # longer side 20, aspect kept
    final: np.ndarray        # (28, 28) in [0, 1], centred by centre of mass
    was_inverted: bool       # dark ink on light paper (MNIST's digits are light on black)
    notes: tuple[str, ...]   # what was done, e.g. "Rotated by EXIF orientation"
    warnings: tuple[str, ...] = ()  # what may make the result unlike MNIST, each with what to do


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
    """The MNIST pipeline on an opened image: the paper's brightness estimated locally and
    divided out, the ink kept where it stands out, the digit's strokes kept and blobs at the
    border or far from them dropped, the stroke width brought into MNIST's range, then MNIST's
    own steps: fitted into 20x20 keeping the aspect, centred by centre of mass in 28x28."""
    notes: list[str] = []
    image = _reduce(_standard_mode(_orient(_decode(image, notes), notes)), notes)
    rgb = _to_rgb(image, notes)
    background, was_inverted = _background(rgb, notes)
    ink, contrast = _ink(rgb, background, was_inverted)
    digit, warnings = _digit(ink, contrast)
    adjusted, thickness_note = _stroke_width(_crop_with_margin(digit))
    warnings += thickness_note
    cropped = _box(adjusted)
    fitted = _fit(cropped)   # shown as a step; the final digit is resampled from `adjusted` once
    final = _centre(adjusted, _edges(adjusted))
    warnings += _ink_amount(final)
    return PreprocessSteps(original=_for_display(rgb @ _LUMA_WEIGHTS), background=_for_display(background @ _LUMA_WEIGHTS),
                           ink=ink, digit=digit, cropped=cropped, fitted=fitted, final=final,
                           was_inverted=was_inverted, notes=tuple(notes), warnings=tuple(warnings))


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
            if image.format == "JPEG":  # decode a large photo at 1/2, 1/4 or 1/8 of its size: fast
                image.draft(image.mode, (2 * WORKING_SIDE, 2 * WORKING_SIDE))
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
    """At most WORKING_SIDE pixels on the longer side."""
    width, height = image.size
    if max(width, height) <= WORKING_SIDE:
        return image
    scale = WORKING_SIDE / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    notes.append(f"Downscaled a {width}x{height} image to {size[0]}x{size[1]} before processing.")
    return image.resize(size, Image.Resampling.BOX)  # area average: fast, and no aliasing


def _to_rgb(image: Image.Image, notes: list[str]) -> np.ndarray:
    """(H, W, 3) float32 in [0, 1]; transparency is composited over white paper."""
    if image.mode.startswith("I;16"):
        grey = np.asarray(image, dtype=np.float32) / 65535.0
        return np.repeat(grey[..., None], 3, axis=2)
    if image.mode in ("I", "F"):
        # 32-bit data has no agreed white level, so its own range is stretched to [0, 1].
        values = np.asarray(image, dtype=np.float64)
        if not np.isfinite(values).all():
            raise ImageError("The image contains invalid pixel values (NaN or infinity).")
        low, high = values.min(), values.max()
        grey = ((values - low) / (high - low) if high > low else np.zeros_like(values)).astype(np.float32)
        return np.repeat(grey[..., None], 3, axis=2)
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    if image.mode == "L":
        return np.repeat(pixels[..., None], 3, axis=2)
    if image.mode == "RGB":
        return pixels
    colour = np.repeat(pixels[..., :1], 3, axis=2) if image.mode == "LA" else pixels[..., :3]
    alpha = pixels[..., -1:]
    if alpha.min() == 1.0:
        return colour
    notes.append("Transparent areas were flattened onto white.")
    composite = colour * alpha + (1.0 - alpha)
    if np.ptp(composite) < MIN_CONTRAST <= np.ptp(alpha):
        # The colour is uniform (e.g. white strokes on white): the drawing is the alpha alone.
        notes.append("The drawing exists only in the transparency: used it as the ink.")
        return np.repeat(1.0 - alpha, 3, axis=2)  # as dark ink on white, the way the composite usually looks
    return composite


def _channel_resize(rgb: np.ndarray, width: int, height: int, method: Image.Resampling) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(rgb[..., c]), mode="F")
                                .resize((width, height), method)) for c in range(3)], axis=-1)


def _background(rgb: np.ndarray, notes: list[str]) -> tuple[np.ndarray, bool]:
    """The paper's colour at every pixel, and whether the ink is darker than the paper.

    Light falls off across a photographed page, shadows cross it and paper is tinted, so one
    level for the whole image keeps the brighter paper as ink. The paper is estimated locally
    instead: on a small copy, a grey closing (a maximum then a minimum filter) erases every
    dark stroke narrower than the window and keeps what is wider, such as shadows, gradients
    and the edges of a table; an opening does the same for light ink on a dark board."""
    height, width = rgb.shape[:2]
    scale = min(1.0, BACKGROUND_SIDE / max(height, width))
    small_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = _channel_resize(rgb, *small_size, Image.Resampling.BOX)
    # The paper is what most of each neighbourhood shows: the ink is on the side of the local
    # median where the image strays from it the most.
    grey = small @ _LUMA_WEIGHTS
    deviation = grey - ndimage.median_filter(grey, size=BACKGROUND_WINDOW)
    # The frame's margins hold page edges, tables and the corners a tilted photo leaves bright.
    margin_y, margin_x = deviation.shape[0] // 8, deviation.shape[1] // 8
    deviation = deviation[margin_y:deviation.shape[0] - margin_y, margin_x:deviation.shape[1] - margin_x]
    dark_ink = bool(np.maximum(-deviation - 0.02, 0).sum() >= np.maximum(deviation - 0.02, 0).sum())
    if dark_ink:
        notes.append("Dark ink on light paper: inverted, as MNIST's digits are light on black.")
    window = (BACKGROUND_WINDOW, BACKGROUND_WINDOW, 1)
    if dark_ink:
        paper = _fill_dips(ndimage.grey_closing(small, size=window))
    else:
        paper = 1.0 - _fill_dips(1.0 - ndimage.grey_opening(small, size=window))
    return np.clip(_channel_resize(paper, width, height, Image.Resampling.BILINEAR), 0.0, 1.0), dark_ink


def _fill_dips(paper: np.ndarray) -> np.ndarray:
    """Raise every dip of the estimated paper that does not reach the frame's edge to the level
    of its rim (a grey-level filling of holes, per colour channel).

    Where a marker's strokes run together into a blob wider than the closing's window, the
    closing keeps the blob as if it were paper, and the digit comes out hollow. Such a blob is
    darker than the paper all round it; a shadow, a vignette, a gradient or a table reaches the
    frame's edge, so it is not a dip and stays as the closing found it. The level falls from
    the edge inwards, each pixel as low as its rim lets it: on clean paper (a drawing) in a few
    steps, on a photo's small copy in about 60 ms."""
    filled = np.empty_like(paper)
    for channel in range(paper.shape[-1]):
        image = paper[..., channel]
        level = np.full_like(image, image.max())
        level[0], level[-1], level[:, 0], level[:, -1] = image[0], image[-1], image[:, 0], image[:, -1]
        while True:
            lower = np.maximum(ndimage.grey_erosion(level, size=(3, 3)), image)
            if np.array_equal(lower, level):
                break
            level = lower
        filled[..., channel] = level
    return filled


def _ink(rgb: np.ndarray, background: np.ndarray, dark_ink: bool) -> tuple[np.ndarray, float]:
    """How much ink each pixel holds, 0 (paper) to 1 (a stroke's core), and the ink's contrast.

    Dark ink is measured as the share of the paper's light it takes away, 1 - I / B over the
    summed colour channels: the same in bright and in dim light, and a black digit on red
    paper keeps its full contrast (its red channel carries it). Light ink is measured as its
    share of the way from the board to white. The paper's grain and the camera's noise are
    measured on the image itself and cut away; the strongest strokes map to 1."""
    if dark_ink:
        strength = 1.0 - rgb.sum(-1) / np.maximum(background.sum(-1), 1e-3)
    else:
        strength = (rgb - background).sum(-1) / np.maximum((1.0 - background).sum(-1), 1e-3)
    strength = np.clip(strength, 0.0, 1.0).astype(np.float32)
    median = float(np.median(strength))
    noise = median + 4 * 1.4826 * float(np.median(np.abs(strength - median)))
    # The ink's own level: the value reached by the strongest 0.05% of pixels (at least 20), on
    # a copy where single noisy pixels are smoothed away.
    smooth = ndimage.median_filter(strength, size=3)
    count = max(20, strength.size // 2000)
    peak = float(np.partition(smooth.ravel(), -count)[-count])
    if peak - noise < MIN_CONTRAST:
        raise ImageError(_BLANK)
    return np.clip((strength - noise) / (0.8 * (peak - noise)), 0.0, 1.0), peak


def _ruled_lines(mask: np.ndarray) -> np.ndarray:
    """Thin straight lines that run across a quarter of the image or more (ruled or squared
    paper): pixels of long runs along a row or a column that are less than 6 pixels thick
    across it. A stroke crossing a line, or a 7's bar drawn with a marker, is thicker there."""
    height, width = mask.shape
    lines = np.zeros_like(mask)
    for axis, length in ((1, width // 4), (0, height // 4)):
        # A photo taken at a slight angle tilts the lines (a slope of 0.06 is 10 pixels over
        # the run): widened across by that much, a tilted line is still one long run.
        spread = 2 * int(np.ceil(LINE_SLOPE * length / 2)) + 1
        widened = ndimage.maximum_filter1d(mask.view(np.uint8), spread, axis=1 - axis).astype(bool)
        # A faint line breaks up in noise and JPEG blocks: gaps of up to 6 pixels are bridged.
        bridged = ~_opening_1d(~widened, 7, axis)
        lines |= _opening_1d(bridged, length, axis) & mask & ~_opening_1d(mask, 6, 1 - axis)
    return lines


def _opening_1d(mask: np.ndarray, length: int, axis: int) -> np.ndarray:
    """Binary opening with a line of `length` pixels along `axis`: the runs at least that long.
    Minimum and maximum filters in one dimension cost the same whatever the length."""
    if length <= 1:
        return mask
    eroded = ndimage.minimum_filter1d(mask.view(np.uint8), length, axis=axis, mode="constant", cval=0)
    # The dilation's window is the erosion's mirrored: one pixel over for an even length.
    return ndimage.maximum_filter1d(eroded, length, axis=axis, origin=-1 + (length % 2),
                                    mode="constant", cval=0).astype(bool)


def _digit(ink: np.ndarray, contrast: float) -> tuple[np.ndarray, list[str]]:
    """The digit's strokes: the marks grown from strong ink, without ruled lines, without marks
    that touch the border (a page edge, a table, a finger) unless nothing else is left, and
    without specks and blobs far from the largest mark."""
    warnings = []
    # Lines are found on a generous mask, where a faint printed line is still unbroken.
    keep = (ink > KEEP_INK) & ~_ruled_lines(ink > LINE_INK)
    # Marks closer than 3 pixels are one mark: a stroke that a removed line cut stays whole.
    grouped, count = ndimage.label(ndimage.binary_dilation(keep, iterations=2), structure=np.ones((3, 3)))
    labels = np.where(keep, grouped, 0)
    if count == 0:
        raise ImageError(_BLANK)
    index = np.arange(1, count + 1)
    mass = ndimage.sum_labels(ink, labels, index)
    seeded = np.bincount(labels[ink > SEED_INK], minlength=count + 1)[1:] > 0  # holds strong ink
    boxes = ndimage.find_objects(labels)
    height, width = ink.shape
    # Within a few pixels of the frame's edge counts as touching it: a page edge or the corner a
    # tilted photo leaves often stops just short of it.
    near = max(1, round(BORDER_SHARE * max(height, width)))
    at_border = np.array([b[0].start < near or b[1].start < near or b[0].stop > height - near
                          or b[1].stop > width - near for b in boxes])
    candidates = seeded & ~at_border
    if not candidates.any():
        candidates = seeded
        if candidates.any():
            warnings.append("The digit touches the edge of the picture, so part of it may be cut off: "
                            "leave a margin of paper around it.")
    if not candidates.any():
        raise ImageError(_BLANK)
    main = int(np.argmax(np.where(candidates, mass, -1.0)))
    top, left = boxes[main][0].start, boxes[main][1].start
    bottom, right = boxes[main][0].stop, boxes[main][1].stop
    reach = 0.35 * max(bottom - top, right - left)
    kept, left_out = [main], 0
    for i in np.flatnonzero(candidates):
        if i == main:
            continue
        b = boxes[i]
        gap = max(top - b[0].stop, b[0].start - bottom, left - b[1].stop, b[1].start - right, 0)
        if gap <= reach and mass[i] >= 0.03 * mass[main]:
            kept.append(int(i))
        elif mass[i] >= 0.2 * mass[main]:
            left_out += 1
    if left_out:
        warnings.append(f"{left_out} other mark(s) as large as part of a digit were left out: photograph "
                        "one digit at a time, on clean paper.")
    if contrast < 0.25:
        warnings.append("The ink is faint against the paper: use a darker pen, or more light.")
    mask = ndimage.binary_dilation(np.isin(labels, np.array(kept) + 1), iterations=2)
    return np.where(mask, ink, 0.0).astype(np.float32), warnings


def _box(array: np.ndarray) -> np.ndarray:
    """The bounding box of the pixels with at least BOX_INK of ink (of any, if none has that)."""
    rows, cols = np.nonzero(array > (BOX_INK if array.max() > BOX_INK else 0.0))
    if rows.size == 0:
        raise ImageError(_BLANK)
    return array[rows.min():rows.max() + 1, cols.min():cols.max() + 1]


def _edges(array: np.ndarray) -> tuple[tuple[float, float], tuple[float, float]]:
    """The strokes' box to a fraction of a pixel: along each axis, where the most ink across it
    crosses half the strokes' level, between the centres of the pixels either side (at +0.5).

    The digit's box is what MNIST fitted into 20 pixels; read in whole pixels of the 80-pixel
    crop it is up to a quarter of MNIST's pixel off at each end, which moves every stroke."""
    level = min(0.5, float(array.max()) / 2)
    if level <= 0.0:
        raise ImageError(_BLANK)
    edges = []
    for axis in (0, 1):
        profile = np.pad(array.max(axis=1 - axis), 1)          # paper either side
        inked = np.flatnonzero(profile > level)
        first, last = inked[0], inked[-1]
        start = first - 1.5 + (level - profile[first - 1]) / (profile[first] - profile[first - 1])
        end = last - 0.5 + (profile[last] - level) / (profile[last] - profile[last + 1])
        edges.append((float(start), float(end)))
    return edges[0], edges[1]


def _crop_with_margin(digit: np.ndarray) -> np.ndarray:
    """The digit's bounding box scaled so that its longer side is CROP_SIDE pixels, with a margin
    of CROP_MARGIN of those pixels all round, into which thickened strokes can grow."""
    rows, cols = np.nonzero(digit > BOX_INK)
    side = max(np.ptp(rows) + 1, np.ptp(cols) + 1)
    margin = int(np.ceil(CROP_MARGIN * side / CROP_SIDE))
    padded = np.pad(digit, margin)
    box = padded[rows.min():rows.max() + 1 + 2 * margin, cols.min():cols.max() + 1 + 2 * margin]
    scale = CROP_SIDE / side
    return _resize(box, max(1, round(box.shape[1] * scale)), max(1, round(box.shape[0] * scale)))


def _stroke_width(digit: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Bring the strokes' width toward MNIST's common range (relative to the digit's size).

    The width is read from the distance transform: on the strokes' middle line (the ridge of
    the distance to the paper) it is half the local width. The strokes are then grown or shrunk
    by the same distance everywhere, through the signed distance to their edge, so any width can
    be reached, not only whole pixels of dilation. Shrinking keeps a stroke's middle line at the
    new width, so that a part thinner than the rest does not vanish."""
    mask = digit > 0.5
    if not mask.any():
        return digit, []
    rows, cols = np.nonzero(mask)
    side = max(np.ptp(rows) + 1, np.ptp(cols) + 1)
    inside = ndimage.distance_transform_edt(mask)
    ridge = mask & (inside >= ndimage.maximum_filter(inside, size=3))
    relative = (2 * float(np.median(inside[ridge])) - 1) / side
    low, high = STROKE_QUARTILES
    if low <= relative <= high:
        return digit, []
    target = min(relative + STROKE_STEP, low) if relative < low else max(relative - STROKE_STEP, high)
    grow = (target - relative) * side / 2          # pixels added to each side of a stroke (< 0: removed)
    signed = np.where(mask, inside - 0.5, 0.5 - ndimage.distance_transform_edt(~mask))  # to the edge
    adjusted = np.clip(signed + grow + 0.5, 0.0, 1.0).astype(np.float32)
    if grow < 0:
        middle = np.clip(target * side / 2 + 0.5 - ndimage.distance_transform_edt(~ridge), 0.0, 1.0)
        adjusted = np.maximum(adjusted, np.minimum(middle, digit)).astype(np.float32)
    if relative < STROKE_RANGE[0]:
        return adjusted, ["Thin strokes: thinner than almost any MNIST digit's; they were thickened a "
                          "little (a thicker pen needs no help)."]
    if relative > STROKE_RANGE[1]:
        return adjusted, ["Thick strokes: thicker than almost any MNIST digit's; they were thinned a "
                          "little (a thinner pen needs no help)."]
    return adjusted, []


def _ink_amount(final: np.ndarray) -> list[str]:
    share = float((final > 0.5).mean())
    if share < INK_RANGE[0]:
        return [f"Very little ink: {share:.0%} of the 28x28 pixels, fewer than almost any MNIST digit "
                "(5% or more). Draw the digit larger or with a thicker pen."]
    if share > INK_RANGE[1]:
        return [f"Very much ink: {share:.0%} of the 28x28 pixels, more than almost any MNIST digit "
                "(26% at most). Use a thinner pen, or leave the digit's loops open."]
    return []


def _resize(array: np.ndarray, width: int, height: int) -> np.ndarray:
    image = Image.fromarray(array.astype(np.float32), mode="F")
    resized = image.resize((width, height), Image.Resampling.LANCZOS)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)  # Lanczos overshoots at edges


def _to_side(array: np.ndarray, side: int) -> np.ndarray:
    """Resize so that the longer side is `side` pixels, keeping the aspect ratio."""
    height, width = array.shape
    scale = side / max(height, width)
    return _resize(array, max(1, round(width * scale)), max(1, round(height * scale)))


def _fit(cropped: np.ndarray) -> np.ndarray:
    """Resize so that the longer side is 20 pixels, keeping the aspect ratio (as MNIST)."""
    return _to_side(cropped, FIT_BOX)


def _centre(cropped: np.ndarray, edges: tuple[tuple[float, float], tuple[float, float]]) -> np.ndarray:
    """Resample the cropped digit into 28x28 the way MNIST placed its digits: the longer side
    20 pixels on whole pixels, the shorter side centred on a boundary between two pixels, the
    whole shifted by whole pixels to bring its centre of mass nearest pixel index (14, 14).

    MNIST's digits were fitted into a 20x20 box, the shorter side centred in it, and that box
    was shifted by whole pixels: all of its test digits span exactly 20 rows or columns along
    their longer side, the outermost of them nearly fully inked (median 0.99), and the two
    outermost along the shorter side are equally partly inked (median 0.47 each), and their
    centres of mass lie within half a pixel of index 14. Landing the edges of the strokes where
    MNIST's land gives the same pixels their anti-aliased grey; a shift by a fraction of a pixel
    blurs every edge across two pixels instead.

    Which whole-pixel shift MNIST chose depends on which side of halfway the centre of mass
    fell, and the centre measured on a photo is off by about a sixth of a pixel (from where the
    strokes' ends, and so the box, are read). Within ROUNDING_DOUBT of halfway the shift therefore
    passes smoothly from one whole pixel to the next, half a pixel at halfway, so that a wrong
    guess costs half a pixel, not a whole one.
    """
    height, width = (end - start for start, end in edges)
    scale = FIT_BOX / max(height, width)                     # field pixels per cropped pixel
    mass = float(cropped.sum())
    if mass <= 0.0:  # only if resampling cancelled out a few faint specks
        raise ImageError(_BLANK)
    corner = []                                              # the field's corner in cropped pixels
    for axis, (start, end) in enumerate(edges):
        extent = (end - start) * scale
        centre = (float((np.arange(cropped.shape[axis]) + 0.5) @ cropped.sum(axis=1 - axis)) / mass - start) * scale
        # The box's offset in the field that puts the centre of mass on index 14 (the middle of
        # pixel 14 is at 14.5), with the shorter side's middle on a boundary between pixels.
        half = extent / 2 if extent < FIT_BOX else 0.0
        offset = _soft_round(FIELD / 2 + 0.5 - centre + half) - half
        offset = float(np.clip(offset, 0.0, FIELD - extent))  # in frame, even if lopsided
        corner.append(start - offset / scale)
    top, left = corner
    pad = int(np.ceil(FIELD / scale))
    source = Image.fromarray(np.pad(cropped, pad).astype(np.float32), mode="F")
    final = np.asarray(source.resize((FIELD, FIELD), Image.Resampling.LANCZOS,
                                     box=(left + pad, top + pad, left + pad + FIELD / scale, top + pad + FIELD / scale)),
                       dtype=np.float32)
    # Nothing outside the digit's own box: Lanczos rings a little beyond an edge.
    inside = np.zeros((FIELD, FIELD), dtype=bool)
    (y0, y1), (x0, x1) = (((start - c) * scale, (end - c) * scale) for (start, end), c in zip(edges, corner))
    inside[max(0, int(np.floor(y0 + 1e-6))):int(np.ceil(y1 - 1e-6)),
           max(0, int(np.floor(x0 + 1e-6))):int(np.ceil(x1 - 1e-6))] = True
    return np.where(inside, np.clip(final, 0.0, 1.0), 0.0).astype(np.float32)


def _soft_round(value: float) -> float:
    """`value` rounded to a whole number, passing linearly from one whole number to the next
    within ROUNDING_DOUBT of halfway between them."""
    nearest = round(value)
    rest = value - nearest                                   # -0.5 to 0.5
    if abs(rest) <= 0.5 - ROUNDING_DOUBT:
        return float(nearest)
    return nearest + float(np.sign(rest)) * (abs(rest) - (0.5 - ROUNDING_DOUBT)) / (2 * ROUNDING_DOUBT)


def _for_display(grey: np.ndarray) -> np.ndarray:
    height, width = grey.shape
    if max(height, width) <= DISPLAY_SIDE:
        return grey
    scale = DISPLAY_SIDE / max(height, width)
    return _resize(grey, max(1, round(width * scale)), max(1, round(height * scale)))
