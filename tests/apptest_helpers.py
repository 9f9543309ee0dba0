"""Helpers for driving the Streamlit app with AppTest."""

from __future__ import annotations

import json
from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")


def open_page(page: str | None = None) -> AppTest:
    """The app after a first run, switched to `page` (e.g. "pages/2_Latent_space.py")."""
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception, at.exception
    if page:
        at.switch_page(page).run()
    return at


def walk(node):
    yield node
    for child in getattr(node, "children", {}).values():
        yield from walk(child)


def image_urls(at: AppTest) -> list[str]:
    """Media URLs of the images on the page: a changed image gets a new URL."""
    return [n.proto.imgs[0].url for n in walk(at.main) if type(n).__name__ == "Image"]


def texts(at: AppTest) -> str:
    """All markdown, captions, metrics, errors and warnings on the page, as one string."""
    parts = [e.value for kind in ("markdown", "caption", "error", "warning", "info", "success")
             for e in at.get(kind)]
    parts += [f"{m.label}: {m.value}" for m in at.get("metric")]
    return "\n".join(str(p) for p in parts)


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def plotly_values(values):
    """A Plotly JSON array: a plain list, or the typed-array form {"dtype", "bdata"}."""
    import base64

    import numpy as np
    if isinstance(values, dict) and "bdata" in values:
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"]).tolist()
    return list(values)


def bidi_data(node) -> dict:
    """The data a component element carries: JSON, or JSON in bytes (`latent_explorer.json_data`)."""
    return json.loads(node.proto.bytes or node.proto.json)


def component_data(at, name: str) -> dict:
    """The data sent to the one mounted component whose data has the key `name`."""
    found = [bidi_data(n) for n in walk(at.main) if getattr(n, "type", None) == "bidi_component"]
    found = [d for d in found if name in d]
    assert len(found) == 1, f"{len(found)} components with {name!r}"
    return found[0]
