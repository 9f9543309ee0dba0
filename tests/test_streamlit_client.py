"""The protocol client the classroom benchmark's visitors are made of, against the served app: a
first visit by URL, an upload whose reconstruction arrives, a bad upload seen as an error box
(which the benchmark counts), and a page switch by the sidebar's page list."""

import asyncio
import io

import pytest
from PIL import Image, ImageDraw

from browser import served_app
from streamlit_client import ServerError, Visitor


def scanned_zero() -> bytes:
    """A dark ring on white paper, 280x280, as a scan of a handwritten 0."""
    image = Image.new("L", (280, 280), 255)
    ImageDraw.Draw(image).ellipse((90, 50, 190, 230), outline=20, width=22)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


async def visit(url: str) -> None:
    async with Visitor(url, timeout=120) as visitor:
        first = await visitor.open("Reconstruct")
        assert first.finished is not None and "Semi-supervised" in visitor.pages
        assert visitor.find("radio", "Digit: where from").options == ["test digit", "draw", "upload"]
        with pytest.raises(LookupError):
            visitor.find("file_uploader")  # not before "upload" is picked

        await visitor.choose("Digit: where from", "upload")
        run, shown = await visitor.upload("Upload a photo", "zero.png", scanned_zero(), result="decoder mean at E[z|x]")
        assert "Your image and its reconstruction" in run.text()
        assert shown is not None and 0 < shown
        captions = [caption for caption, _ in run.images()]
        assert "input x" in captions and "decoder mean at E[z|x]" in captions
        assert all(url in run.fetched for _, url in run.images())  # every image fetched, as a browser does

        with pytest.raises(ServerError, match="notes.png"):
            await visitor.upload("Upload a photo", "notes.png", b"these are no pixels")

        semi = await visitor.switch("Semi-supervised")
        assert "Left chart, q(y|x)" in semi.text()
        assert visitor.find("radio", "Digit: where from").fragment_id != ""  # the Classify tab is a fragment


def test_a_protocol_visitor_uploads_a_digit_sees_its_reconstruction_and_the_error_of_a_bad_file():
    with served_app() as (url, _):
        asyncio.run(visit(url))
