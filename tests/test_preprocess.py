"""Upload preprocessing: the MNIST pipeline, and a clear message for every kind of bad file."""

import io
import time

import numpy as np
import pytest
from PIL import Image, ImageDraw

from vae_core.preprocess import MAX_UPLOAD_BYTES, ImageError, preprocess_image, preprocess_upload


def encode(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def seven(size=(200, 300), ink="black", paper="white", mode="RGB") -> Image.Image:
    """A '7'-like stroke, asymmetric so that rotations are visible."""
    img = Image.new(mode, size, paper)
    draw = ImageDraw.Draw(img)
    w, h = size
    draw.line([(0.2 * w, 0.15 * h), (0.8 * w, 0.15 * h), (0.4 * w, 0.85 * h)], fill=ink, width=max(3, w // 12))
    return img


def centre_of_mass(a):
    rows, cols = np.indices(a.shape)
    return (rows * a).sum() / a.sum(), (cols * a).sum() / a.sum()


def test_dark_digit_on_white_becomes_an_mnist_digit():
    steps = preprocess_upload(encode(seven()), "seven.png")
    final = steps.final
    assert final.shape == (28, 28) and final.dtype == np.float32
    assert final.min() >= 0 and final.max() <= 1 and final.max() > 0.9
    assert steps.was_inverted
    assert final[:3].max() == 0 and final[:, :3].max() == 0  # background stays zero
    cy, cx = centre_of_mass(final)
    assert abs(cy - 13.5) <= 1 and abs(cx - 13.5) <= 1
    rows, cols = np.nonzero(final > 0)
    assert rows.max() - rows.min() < 20 + 1 and cols.max() - cols.min() < 20 + 1
    assert max(steps.fitted.shape) == 20


def test_light_digit_on_black_is_not_inverted_and_gives_the_same_digit():
    dark_on_light = preprocess_upload(encode(seven()))
    light_on_dark = preprocess_upload(encode(seven(ink="white", paper="black")))
    assert not light_on_dark.was_inverted
    np.testing.assert_allclose(light_on_dark.final, dark_on_light.final, atol=0.02)


def test_aspect_ratio_is_kept():
    img = Image.new("L", (300, 300), 255)
    ImageDraw.Draw(img).rectangle([140, 20, 160, 280], fill=0)  # a tall bar
    fitted = preprocess_upload(encode(img)).fitted
    assert fitted.shape[0] == 20 and fitted.shape[1] < 5


@pytest.mark.parametrize("data, name, phrase", [
    (b"", "x.png", "empty"),
    (b"\x00\x01 random bytes that are no image" * 10, "x.png", "not an image Pillow can read"),
    (b"<?xml version='1.0'?><svg xmlns='http://www.w3.org/2000/svg'></svg>", "x.png", "SVG"),
    (b"<svg></svg>", "drawing.svg", "SVG"),
    (b"0" * (MAX_UPLOAD_BYTES + 1), "x.png", "the limit is 5 MB"),
])
def test_bad_files_get_a_clear_message(data, name, phrase):
    with pytest.raises(ImageError, match=phrase):
        preprocess_upload(data, name)


def test_truncated_file():
    data = encode(seven(), "PNG")
    with pytest.raises(ImageError, match="truncated|could not"):
        preprocess_upload(data[: len(data) // 2])
    jpeg = encode(seven(), "JPEG")
    with pytest.raises(ImageError, match="truncated"):
        preprocess_upload(jpeg[: len(jpeg) // 2])


def test_decompression_bomb_is_refused_quickly():
    bomb = encode(Image.new("1", (20000, 20000), 0))  # tiny file, 400 megapixels
    assert len(bomb) < 200_000
    start = time.perf_counter()
    with pytest.raises(ImageError, match="too large to decode safely"):
        preprocess_upload(bomb)
    big_header = encode(Image.new("1", (5000, 5000), 0))  # under Pillow's limit, over ours
    with pytest.raises(ImageError, match="5000x5000 pixels"):
        preprocess_upload(big_header)
    assert time.perf_counter() - start < 2.0


def test_huge_legal_image_is_reduced_with_a_note():
    steps = preprocess_upload(encode(seven(size=(3000, 2000))))
    assert any("Reduced a 3000x2000" in note for note in steps.notes)
    assert max(steps.original.shape) <= 512 and steps.final.max() > 0.9


def test_animated_image_uses_the_first_frame():
    first, second = seven(mode="L"), Image.new("L", (200, 300), 255)
    ImageDraw.Draw(second).ellipse([40, 40, 160, 260], outline=0, width=20)
    data = encode(first, "GIF", save_all=True, append_images=[second], duration=100)
    steps = preprocess_upload(data)
    assert any("first frame" in note for note in steps.notes)
    np.testing.assert_allclose(steps.final, preprocess_upload(encode(first)).final, atol=0.05)


def test_strokes_only_in_transparency_are_ink():
    img = Image.new("RGBA", (200, 300), (0, 0, 0, 0))  # black, fully transparent
    ImageDraw.Draw(img).line([(40, 45), (160, 45), (80, 255)], fill=(0, 0, 0, 255), width=16)
    steps = preprocess_upload(encode(img))
    np.testing.assert_allclose(steps.final, preprocess_upload(encode(seven())).final, atol=0.1)
    alpha_only = Image.new("RGBA", (200, 300), (0, 0, 0, 0))
    alpha_only.putalpha(seven(mode="L").point(lambda v: 255 - v))  # the drawing is only in alpha
    alpha_only = Image.merge("RGBA", (*Image.new("RGB", (200, 300), (255, 255, 255)).split(), alpha_only.getchannel("A")))
    assert preprocess_upload(encode(alpha_only)).final.max() > 0.9


def test_16_bit_and_float_images():
    grey = np.asarray(seven(mode="L"), dtype=np.float32) / 255
    sixteen = Image.fromarray((grey * 65535).astype(np.uint16))
    assert sixteen.mode.startswith("I;16")
    expected = preprocess_upload(encode(seven())).final
    np.testing.assert_allclose(preprocess_upload(encode(sixteen)).final, expected, atol=0.05)
    floating = Image.fromarray(grey * 3.0 - 1.0, mode="F")  # any range: scaled by its min and max
    np.testing.assert_allclose(preprocess_upload(encode(floating, "TIFF")).final, expected, atol=0.05)


def test_cmyk_jpeg():
    steps = preprocess_upload(encode(seven().convert("CMYK"), "JPEG", quality=95))
    assert steps.was_inverted and steps.final.max() > 0.9


def test_exif_rotated_photo_is_turned_upright():
    upright = seven()
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what a sideways camera stores
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 clockwise to view"
    steps = preprocess_upload(encode(stored, "JPEG", exif=exif, quality=95))
    assert any("EXIF" in note for note in steps.notes)
    np.testing.assert_allclose(steps.final, preprocess_upload(encode(upright, "JPEG", quality=95)).final, atol=0.1)


def test_blank_images_have_no_ink():
    for blank in (Image.new("L", (100, 100), 255), Image.new("RGB", (50, 80), (0, 0, 0)),
                  Image.new("RGBA", (60, 60), (0, 0, 0, 0))):
        with pytest.raises(ImageError, match="No ink found"):
            preprocess_upload(encode(blank))


def test_palette_and_one_bit_images():
    for img in (seven().convert("P"), seven().convert("1")):
        assert preprocess_image(Image.open(io.BytesIO(encode(img)))).final.max() > 0.9
