"""Preparing phone photos of digits: each step on generated photos (tests/photos.py), and the
prepared digits against the MNIST digits they were made from."""

import io

import numpy as np
import pytest

from photos import iou, render
from vae_core.data import load_dataset
from vae_core.preprocess import preprocess_upload

SIZE = (800, 600)


@pytest.fixture(scope="module")
def mnist_test():
    test = load_dataset("mnist").test
    return test.images[:200, 0].numpy(), test.labels[:200].numpy()


def photo(mnist_test, index, *effects, darken=1.0, seed=0):
    digits, labels = mnist_test
    return render(digits[index], int(labels[index]), np.random.default_rng(seed), size=SIZE, darken=darken,
                  effects=effects, quality=80)


def prepare(p):
    return preprocess_upload(p.jpeg, "photo.jpg")


@pytest.mark.parametrize("effects", [("gradient",), ("shadow",), ("vignette", "texture")])
def test_uneven_light_leaves_no_paper_as_ink(mnist_test, effects):
    p = photo(mnist_test, 0, *effects)
    steps = prepare(p)
    # the digit alone is kept: its box is the digit's, not the bright or dark part of the page
    rows, cols = np.nonzero(steps.digit > 0.5)
    assert rows.ptp() < 0.75 * steps.digit.shape[0] and cols.ptp() < 0.75 * steps.digit.shape[1]
    assert (steps.ink > 0.5).mean() < 0.05
    assert iou(steps.final, p.digit) > 0.6


def test_a_dim_photo_gives_the_digit_a_bright_one_gives(mnist_test):
    bright, dim = prepare(photo(mnist_test, 1, "gradient")), prepare(photo(mnist_test, 1, "gradient", darken=0.45))
    assert iou(dim.final, bright.final) > 0.85


@pytest.mark.parametrize("paper, ink", [("red", "black"), ("yellow", "blue"), ("blue", "black")])
def test_coloured_paper_and_ink(mnist_test, paper, ink):
    digits, labels = mnist_test
    p = render(digits[2], int(labels[2]), np.random.default_rng(0), size=SIZE,
               effects=("coloured paper", "coloured ink"), quality=80)
    steps = prepare(p)
    assert iou(steps.final, p.digit) > 0.6, p.effects


@pytest.mark.parametrize("effects", [("lines",), ("squares",)])
def test_ruled_and_squared_paper_lines_are_dropped(mnist_test, effects):
    p = photo(mnist_test, 3, *effects)
    steps = prepare(p)
    assert (steps.ink > 0.3).mean(axis=1).max() > 0.5   # the lines are ink...
    assert (steps.digit > 0.3).mean(axis=1).max() < 0.3  # ...but not the digit's
    assert iou(steps.final, p.digit) > 0.6


@pytest.mark.parametrize("effects", [("lines", "tilt"), ("squares", "tilt"), ("squares", "tilt", "small")])
def test_lines_photographed_at_a_slight_angle_are_dropped_too(mnist_test, effects):
    # A tilted line is no longer one long run along a row or column: left in, the grid joins
    # the digit to the frame's edge and the digit is dropped with it.
    digits, labels = mnist_test
    overlaps = []
    for i in range(6):
        p = render(digits[i], int(labels[i]), np.random.default_rng(i), size=SIZE, effects=effects, quality=80)
        overlaps.append(iou(prepare(p).final, p.digit))
    assert min(overlaps) > 0.5, overlaps


def test_a_mark_stopping_just_short_of_the_frames_edge_is_not_taken_for_the_digit(mnist_test):
    # The corner a tilted photo leaves, or a page edge, often ends a few pixels inside the frame.
    import io
    from PIL import Image, ImageDraw
    p = photo(mnist_test, 6)
    image = Image.open(io.BytesIO(p.jpeg)).convert("RGB")
    width, height = image.size
    ImageDraw.Draw(image).polygon([(6, height - 6), (6, height - 200), (200, height - 6)], fill=(90, 90, 90))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    steps = preprocess_upload(buffer.getvalue(), "photo.jpg")
    assert steps.digit[height // 2:, :width // 4].max() == 0  # the corner's mark is left out
    assert iou(steps.final, p.digit) > 0.6


def test_a_table_at_the_edge_of_the_frame_is_dropped(mnist_test):
    p = photo(mnist_test, 4, "table", "gradient")
    steps = prepare(p)
    assert steps.digit[:, :5].max() == 0 and steps.digit[:, -5:].max() == 0
    assert iou(steps.final, p.digit) > 0.6


def test_an_mnist_digit_drawn_large_comes_back_on_mnists_own_pixels(mnist_test):
    """MNIST's digits span exactly 20 whole pixels along their longer side, the shorter side
    centred on a boundary between pixels: the same digit drawn large (its outline at 0.5, on a
    larger page) is put back there, not blurred across pixels by a shift of a fraction of one."""
    from PIL import Image
    digits, _ = mnist_test
    overlaps = []
    for digit in digits[:30]:
        large = Image.fromarray((digit * 255).astype(np.uint8)).resize((280, 280), Image.Resampling.BICUBIC)
        page = np.full((480, 480), 255, np.uint8)
        page[100:380, 100:380] = np.where(np.asarray(large) > 127, 0, 255)
        buffer = io.BytesIO()
        Image.fromarray(page).save(buffer, format="PNG")
        overlaps.append(iou(preprocess_upload(buffer.getvalue()).final, digit))
    assert np.mean(overlaps) > 0.83, np.mean(overlaps)   # 0.805 when centred to a fraction of a pixel


def test_a_small_digit_in_a_large_frame(mnist_test):
    p = photo(mnist_test, 5, "small")
    assert iou(prepare(p).final, p.digit) > 0.6


def test_thin_and_thick_strokes_come_out_near_the_normal_strokes_width(mnist_test):
    normal = (prepare(photo(mnist_test, 6)).final > 0.5).sum()
    for stroke in ("thin pen", "thick marker"):
        steps = prepare(photo(mnist_test, 6, stroke))
        assert abs((steps.final > 0.5).sum() - normal) / normal < 0.35, stroke
    assert any("Thin strokes" in w for w in prepare(photo(mnist_test, 6, "thin pen")).warnings)


@pytest.mark.parametrize("light", [(), ("gradient",), ("vignette",)])
def test_a_loop_filled_in_by_a_broad_marker_comes_out_whole_not_hollow(light):
    """A 9 whose loop a broad marker filled in: the blob is wider than the window in which the
    paper is estimated, and was kept as paper, leaving only its rim as ink."""
    from PIL import Image, ImageDraw
    rng = np.random.default_rng(4)
    image = Image.new("RGB", SIZE, (205, 200, 190))
    draw = ImageDraw.Draw(image)
    draw.ellipse((320, 80, 480, 240), fill=(60, 60, 70))
    draw.line([(465, 170), (430, 520)], fill=(60, 60, 70), width=60)
    rgb = np.asarray(image, np.float32) / 255
    yy, xx = np.mgrid[0:SIZE[1], 0:SIZE[0]].astype(np.float32)
    if "gradient" in light:
        rgb = rgb * (1 - 0.4 * xx / SIZE[0])[..., None]
    if "vignette" in light:
        rgb = rgb * (1 - 0.8 * (((xx - 400) / 800) ** 2 + ((yy - 300) / 600) ** 2))[..., None]
    rgb = np.clip(rgb + rng.normal(0, 0.01, rgb.shape), 0, 1)
    buffer = io.BytesIO()
    Image.fromarray((rgb * 255).astype(np.uint8)).save(buffer, format="JPEG", quality=85)
    steps = preprocess_upload(buffer.getvalue(), "marker.jpg")
    ink = np.asarray(Image.fromarray(steps.ink).resize(SIZE), np.float32)
    middle = np.hypot(xx - 400, yy - 160) < 50  # the middle of the filled loop
    assert (ink[middle] > 0.5).mean() > 0.9, light


def test_a_digit_cut_by_the_frame_is_kept_with_a_warning():
    from PIL import Image, ImageDraw
    import io
    image = Image.new("RGB", (300, 300), "white")
    ImageDraw.Draw(image).line([(150, 0), (150, 200)], fill="black", width=20)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    steps = preprocess_upload(buffer.getvalue(), "cut.png")
    assert any("touches the edge" in w for w in steps.warnings)


def test_the_generated_photos_are_prepared_close_to_the_original_digits(mnist_test):
    """A small seeded corpus with random effects (the benchmark runs a larger one)."""
    digits, labels = mnist_test
    rng = np.random.default_rng(7)
    overlaps = []
    for i in range(24):
        p = render(digits[i], int(labels[i]), rng, size=SIZE)
        if "tilt" in p.effects:
            continue
        overlaps.append(iou(prepare(p).final, p.digit))
    assert np.median(overlaps) > 0.7 and np.percentile(overlaps, 10) > 0.4, sorted(overlaps)
