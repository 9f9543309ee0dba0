"""Drawing digits with the mouse in the served app, in headless Chromium: strokes on the pad
update the reconstruction, Undo and Clear work, and the shipped M2 reads drawn 0, 1 and 7.

Screenshots go to artifacts/ for a human to look at.
"""

import math

from browser import ARTIFACTS, browser_page, error_boxes, needs_browser, served_app, wait_idle

pytestmark = needs_browser

STROKES = {  # in fractions of the pad
    "1": [[(0.5, 0.15), (0.5, 0.85)]],
    "7": [[(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)]],
    "0": [[(0.5 + 0.22 * math.sin(t / 24 * 2 * math.pi), 0.5 - 0.33 * math.cos(t / 24 * 2 * math.pi))
           for t in range(25)]],
}


def draw(page, strokes, pad_index=0):
    """Draw strokes with the mouse, one press-move-release per stroke, as a person would."""
    canvas = page.locator(".drawing-pad canvas").nth(pad_index)
    canvas.scroll_into_view_if_needed()  # below the fold at 1024x768: a mouse only reaches what is shown
    box = canvas.bounding_box()
    for stroke in strokes:
        x, y = stroke[0]
        page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=6)
        page.mouse.up()


def settle(page):
    page.wait_for_timeout(400)
    wait_idle(page)


def reconstruction_src(page) -> str:
    return page.locator('[data-testid="stImage"] img').nth(1).get_attribute("src")


def choose_draw(page):
    page.get_by_text("draw", exact=True).first.click()
    page.locator(".drawing-pad canvas").first.wait_for()
    settle(page)


def test_drawing_updates_the_reconstruction_with_undo_and_clear():
    ARTIFACTS.mkdir(exist_ok=True)
    with served_app() as (url, _), browser_page(1024, 768) as page:
        page.goto(url + "/Reconstruct")
        wait_idle(page)
        choose_draw(page)
        assert page.get_by_text("Draw a digit on the pad").count() == 1
        draw(page, STROKES["7"][:1])
        page.get_by_text("Your drawing and its reconstruction").wait_for()
        settle(page)
        first = reconstruction_src(page)
        draw(page, [[(0.3, 0.5), (0.65, 0.5)]])  # a bar across: the 7 of some hands
        settle(page)
        second = reconstruction_src(page)
        assert second != first
        page.get_by_role("button", name="Undo").click()
        settle(page)
        assert reconstruction_src(page) == first
        page.screenshot(path=str(ARTIFACTS / "browser-draw-reconstruct.png"), full_page=True)
        assert error_boxes(page) == 0
        page.get_by_role("button", name="Clear").click()
        page.get_by_text("Draw a digit on the pad").wait_for()
        settle(page)
        assert page.get_by_text("Your drawing and its reconstruction").count() == 0


def test_the_shipped_m2_reads_drawn_digits():
    with served_app() as (url, _), browser_page(1024, 768) as page:
        page.goto(url + "/Semi-supervised")
        wait_idle(page)
        choose_draw(page)
        for digit, strokes in STROKES.items():
            if page.get_by_role("button", name="Clear").is_enabled():
                page.get_by_role("button", name="Clear").click()
                settle(page)
            draw(page, strokes)
            page.get_by_text(f"q(y|x): {digit} (").wait_for(timeout=30_000)
            settle(page)
            page.screenshot(path=str(ARTIFACTS / f"browser-draw-classify-{digit}.png"), full_page=True)
            assert error_boxes(page) == 0
