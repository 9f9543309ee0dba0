"""A person's path through the served app in headless Chromium: move a slider, upload a digit.

Screenshots go to artifacts/ for a human to look at.
"""

import numpy as np

from browser import (ARTIFACTS, ROOT, browser_page, decode_four_steps_right, error_boxes, needs_browser,
                     served_app, wait_idle)
from vae_core.registry import load_model
from vae_core.vae import explore

pytestmark = needs_browser


def digit_png(path):
    from PIL import Image, ImageDraw
    img = Image.new("RGB", (300, 400), "white")
    draw = ImageDraw.Draw(img)
    draw.line([(150, 60), (150, 340)], fill="black", width=36)  # a "1"
    draw.line([(150, 60), (100, 120)], fill="black", width=30)
    img.save(path)
    return path


def test_slider_and_upload_in_a_real_browser(tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    with served_app() as (url, _), browser_page() as page:
        page.goto(url + "/Latent_space")
        wait_idle(page)
        page.get_by_text("decoder mean at z = (0.00, 0.00)").wait_for()
        # Viewer's toolbar (.streamlit/config.toml), even on localhost: no Deploy button.
        assert page.get_by_test_id("stAppDeployButton").count() == 0
        assert page.get_by_text("Deploy", exact=True).count() == 0
        # The image drawn by the browser's decoder is the model's decoder mean at that z.
        drawn = decode_four_steps_right(page)
        model, _ = load_model(ROOT / "checkpoints" / "mnist-mlp-z2")
        expected = explore.decode(model, np.array([[0.2, 0.0]], dtype=np.float32))[0]
        np.testing.assert_allclose(drawn, expected, atol=2 / 255)
        # Dragging on the map moves z continuously.
        box = page.locator("canvas.scatter").bounding_box()
        page.mouse.move(box["x"] + 60, box["y"] + 60)
        page.mouse.down()
        page.mouse.move(box["x"] + 80, box["y"] + 90, steps=5)
        page.mouse.up()
        page.get_by_text("decoder mean at z = (-").wait_for()
        wait_idle(page)
        page.screenshot(path=str(ARTIFACTS / "browser-latent.png"), full_page=True)
        assert error_boxes(page) == 0

        page.goto(url + "/Reconstruct")
        wait_idle(page)
        page.get_by_text("upload", exact=True).first.click()
        page.get_by_test_id("stFileUploaderDropzoneInput").wait_for(state="attached")
        wait_idle(page)
        page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(str(digit_png(tmp_path / "one.png")))
        page.get_by_text("How it was prepared").wait_for()
        page.get_by_text("Your image and its reconstruction").wait_for()
        wait_idle(page)
        page.screenshot(path=str(ARTIFACTS / "browser-reconstruct.png"), full_page=True)
        assert error_boxes(page) == 0

        page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(
            {"name": "notes.png", "mimeType": "image/png", "buffer": b"not an image at all"})
        page.get_by_text("not an image").first.wait_for()
        page.get_by_text("Upload an image to use it here").wait_for()
        wait_idle(page)
        assert page.get_by_text("Your image and its reconstruction").count() == 0
        page.screenshot(path=str(ARTIFACTS / "browser-bad-upload.png"), full_page=True)
