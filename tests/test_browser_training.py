"""A teacher's first minutes on the Train page, in headless Chromium at a projector's 1024x768:
the presets and the Advanced form fit (no label broken inside a word, no clipped select value),
one click on "Quick demo" trains a 2-D VAE whose map of the digits is shown live, and once it has
finished, Training curves replays that map with a slider.

The server reads tiny MNIST files the test writes (synthetic strokes in the IDX format, through
VAE_DATA_ROOT), so that the Quick demo's epochs take seconds. Screenshots go to artifacts/.
"""

import os

import numpy as np
import pytest

import browser
from browser import ARTIFACTS, browser_page, error_boxes, needs_browser, served_app, wait_idle
from test_browser_layout import LAYOUT_PROBLEMS, screenshot
from ui.train_form import PRESETS
from vae_core.data import synthetic_dataset
from vae_core.snapshots import read_snapshots

pytestmark = needs_browser
EPOCHS = PRESETS[0].training["epochs"]  # the Quick demo's
# The job's card shows the live map, with its digits drawn, and says so.
LIVE_MAP = """() => document.querySelector('[data-testid="stMain"]').innerText.includes("Watch it learn:")
    && document.querySelector('[class*="st-key-live_map_"] .scatterlayer .point') !== null"""



def write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def tiny_mnist(root):
    """4800 training and 300 test digits as MNIST's IDX files: the loader keeps the last sixth of
    the training file (800) for validation."""
    data = synthetic_dataset(num_train=4000, num_validation=800, num_test=300, seed=1)
    train_images = np.concatenate([data.train.images.numpy(), data.validation.images.numpy()])[:, 0]
    train_labels = np.concatenate([data.train.labels.numpy(), data.validation.labels.numpy()])
    folder = root / "MNIST" / "raw"
    folder.mkdir(parents=True)
    write_idx(folder / "train-images-idx3-ubyte", np.round(train_images * 255))
    write_idx(folder / "train-labels-idx1-ubyte", train_labels)
    write_idx(folder / "t10k-images-idx3-ubyte", np.round(data.test.images.numpy()[:, 0] * 255))
    write_idx(folder / "t10k-labels-idx1-ubyte", data.test.labels.numpy())
    return root


@pytest.fixture
def port(monkeypatch):
    """A fixed port when VAE_BROWSER_TEST_PORT says so (shared machines), else a free one."""
    if os.environ.get("VAE_BROWSER_TEST_PORT"):
        monkeypatch.setattr(browser, "free_port", lambda: int(os.environ["VAE_BROWSER_TEST_PORT"]))


def check_fits(page, what):
    """Nothing wider than the page, no word broken in two, no select value cut, no error box."""
    assert page.evaluate(LAYOUT_PROBLEMS) == [], what
    assert error_boxes(page) == 0, what


def test_quick_demo_from_the_preset_to_a_replayed_map(tmp_path, port):
    ARTIFACTS.mkdir(exist_ok=True)
    runs = tmp_path / "runs"
    env = {"VAE_DATA_ROOT": str(tiny_mnist(tmp_path / "data")), "VAE_EXPLORER_RUNS": str(runs)}
    with served_app(env=env) as (url, _), browser_page(1024, 768) as page:
        page.goto(url + "/Train")
        wait_idle(page)
        page.get_by_text("Start from a preset").wait_for()
        screenshot(page, "train-presets-1024.png")
        check_fits(page, "Train, presets")
        page.get_by_text("Advanced: every setting").click()
        page.get_by_text("ELBO estimator").wait_for()
        wait_idle(page)
        screenshot(page, "train-advanced-1024.png")
        check_fits(page, "Train, Advanced form")
        page.get_by_text("semi-supervised M2 or M1+M2").click()
        page.get_by_text("What the classifier reads").wait_for()
        wait_idle(page)
        screenshot(page, "train-advanced-m2-1024.png")
        check_fits(page, "Train, Advanced form for M2")
        page.get_by_text("VAE (AEVB)").click()
        page.get_by_text("ELBO estimator").wait_for()
        page.get_by_text("Advanced: every setting").click()  # folded again

        page.locator(".st-key-preset_start_quick-demo button").click()
        page.get_by_text("Started quick-demo").wait_for()
        # While it trains: the digits on the map and the decoded manifold, refreshed as it learns.
        page.wait_for_function(LIVE_MAP, timeout=90_000)
        # At once, and only if it is still there: on a quiet CPU the demo may end in between.
        page.evaluate("document.querySelector('[class*=\"st-key-live_map_\"]')?.scrollIntoView()")
        page.screenshot(path=str(ARTIFACTS / "train-quick-demo-live-1024.png"))
        check_fits(page, "Train, the live map")
        page.get_by_role("button", name="Explore this model").first.wait_for(timeout=90_000)  # it has finished
        wait_idle(page)
        snapshots = read_snapshots(runs / "quick-demo")
        assert snapshots.epochs[0] == 0 and snapshots.epochs[-1] == EPOCHS
        assert len(snapshots.labels) == 800  # every validation digit of the tiny set

        page.goto(url + "/Training_curves")
        wait_idle(page)
        browser.choose_option(page, "Model", "quick-demo")
        page.get_by_text("How the map formed").wait_for()
        wait_idle(page)
        page.get_by_text(f"The map after {EPOCHS:.2f} epochs").wait_for()
        slider = page.locator(".st-key-replay_replay").get_by_role("slider")
        slider.focus()
        page.keyboard.press("Home")  # back to the untrained model's map
        page.get_by_text("The map after 0.00 epochs (0 steps)").wait_for()
        wait_idle(page)
        screenshot(page, "training-curves-replay-1024.png")
        check_fits(page, "Training curves, the replay")
        page.keyboard.press("ArrowRight")
        page.get_by_text(f"The map after {snapshots.epochs[1]:.2f} epochs").wait_for()
