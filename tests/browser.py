"""Serving the app and driving it in headless Debian Chromium (shared by the browser test and
the latency benchmark). Playwright never downloads a browser here: it uses /usr/bin/chromium."""

from __future__ import annotations

import base64
import contextlib
import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts"  # screenshots for a human to look at
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    return None


def _missing_browser() -> str | None:
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -r requirements-dev.txt)"
    if chromium_path() is None:
        return "no chromium on this machine (CI installs it with apt-get install chromium)"
    return None


NO_BROWSER = _missing_browser()
# Mark a test (or a module, as `pytestmark = needs_browser`) that drives Chromium.
needs_browser = pytest.mark.skipif(NO_BROWSER is not None, reason=NO_BROWSER or "")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def served_app(env: dict | None = None, timeout: float = 60.0, root: Path = ROOT, port: int | None = None):
    """Run `streamlit run app.py` (of the checkout at `root`) on `port` or a free one; yield (base
    URL, seconds until healthy)."""
    port = port or free_port()
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port)],
        cwd=root, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        while True:
            try:
                if urllib.request.urlopen(url + "/_stcore/health", timeout=1).read() == b"ok":
                    break
            except OSError:
                pass
            if process.poll() is not None or time.perf_counter() - start > timeout:
                raise RuntimeError(f"the app did not start: {process.stderr.read().decode()[-2000:]}")
            time.sleep(0.1)
        yield url, time.perf_counter() - start
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


@contextlib.contextmanager
def browser_page(width: int = 1400, height: int = 1000):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(60_000)
            yield page
        finally:
            browser.close()


def wait_idle(page) -> None:
    page.wait_for_selector(IDLE)


def error_boxes(page) -> int:
    return page.locator('[data-testid="stException"], [data-testid="stAlertContentError"]').count()


def choose_option(page, label: str, option: str) -> None:
    """Pick `option` in the selectbox labelled `label` (a combobox with a listbox of options)."""
    page.get_by_role("combobox", name=label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()


def decode_four_steps_right(page) -> np.ndarray:
    """On the Latent space page, move the z1 slider four steps right (to 0.20) with the keyboard,
    as a person would, and read the image the browser's decoder drew: (28, 28) in [0, 1], the
    centre of each 10x10 canvas pixel."""
    page.get_by_text("decoder mean at z = (0.00, 0.00)").wait_for()
    page.wait_for_timeout(500)  # let the page settle, so that nothing steals the focus
    page.locator("input[data-axis='0']").focus()
    for _ in range(4):
        page.keyboard.press("ArrowRight")
    page.get_by_text("decoder mean at z = (0.20, 0.00)").wait_for()
    wait_idle(page)
    data_url = page.locator("canvas.decoded").evaluate("c => c.toDataURL('image/png')")
    image = Image.open(io.BytesIO(base64.b64decode(data_url.split(",")[1]))).convert("L")
    return np.asarray(image, dtype=np.float32)[5::10, 5::10] / 255

