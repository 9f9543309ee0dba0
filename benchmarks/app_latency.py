"""App speed in a real browser: cold start to the first interactive page, and slider move to
new decoded image on the Latent space page (headless Debian Chromium through Playwright).

The explorer decodes in the browser; each key press also commits the value to the server,
which reruns the page in the background, as a user's would.

    python benchmarks/app_latency.py [--moves 40]

Each slider move is one ArrowRight key press on the focused z1 slider (each press commits a
value); its latency is the time from the key press until the decoded image's caption shows
the new value and the image has loaded.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from browser import browser_page, chromium_path, served_app, wait_idle  # noqa: E402

# The explorer sets its caption right after drawing the decoded image, in the same task; the
# component lives in a shadow root.
IMAGE_READY = """(expected) => {
    for (const host of document.querySelectorAll('*')) {
        const caption = host.shadowRoot && host.shadowRoot.querySelector('[data-latent-caption]');
        if (caption) return caption.textContent.includes(expected);
    }
    const caption = document.querySelector('[data-latent-caption]');
    return !!caption && caption.textContent.includes(expected);
}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--moves", type=int, default=40)
    args = parser.parse_args()
    if chromium_path() is None:
        sys.exit("no chromium found: apt-get install chromium")

    # The browser is started first: a visitor's browser is already running, and its start-up
    # (about 1.5 s for headless Chromium here) is not the app's.
    with browser_page() as page:
        launched = time.perf_counter()
        with served_app() as (url, healthy_after):
            measure(page, url, healthy_after, launched, args.moves)


def measure(page, url: str, healthy_after: float, launched: float, moves: int) -> None:
    page.goto(url)
    page.get_by_text("What to explore").wait_for()
    page.get_by_text("Models", exact=True).wait_for()
    wait_idle(page)
    home = time.perf_counter() - launched
    t0 = time.perf_counter()
    page.goto(url + "/Latent_space")
    page.get_by_text("decoder mean at z = (0.00, 0.00)").wait_for()
    wait_idle(page)
    latent = time.perf_counter() - t0
    print(f"cold start: server healthy after {healthy_after:.2f} s, home page interactive after "
          f"{home:.2f} s (from process start); Latent space page then ready in {latent:.2f} s")

    slider = page.locator("input[data-axis='0']")
    page.wait_for_timeout(1000)  # let the page settle, so that nothing steals the focus
    slider.focus()
    latencies = []
    for i in range(1, moves + 1):
        expected = f"z = ({0.05 * i:.2f}, 0.00)"
        t0 = time.perf_counter()
        page.keyboard.press("ArrowRight")
        try:
            page.wait_for_function(IMAGE_READY, arg=expected, polling="raf", timeout=20_000)
        except Exception:
            captions = page.locator("[data-latent-caption]").all_inner_texts()
            sys.exit(f"move {i}: expected {expected!r}, the page shows {captions}")
        latencies.append((time.perf_counter() - t0) * 1000)
    latencies.sort()
    p90 = latencies[int(0.9 * (len(latencies) - 1))]
    print(f"slider move to new image over {len(latencies)} moves: median {statistics.median(latencies):.0f} ms, "
          f"p90 {p90:.0f} ms, min {latencies[0]:.0f} ms, max {latencies[-1]:.0f} ms")


if __name__ == "__main__":
    main()
