"""Streamlit helpers shared by the pages of the app."""

from pathlib import Path

# The browser tab's icon, served by the app itself: a Material icon or an emoji would be fetched
# from a font server or a CDN, which fails offline.
PAGE_ICON = Path(__file__).resolve().parent / "favicon.png"
