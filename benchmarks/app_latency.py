"""App speed in a real browser (headless Debian Chromium through Playwright).

By default: cold start to the first interactive page, slider move to a new decoded image on the
Latent space page, and a drawn stroke or an upload to its reconstruction on the Reconstruct page.
The other modes (--page-speed, --switches, --cold N, --hover-scrub) are described where their
code starts below.

The explorer decodes in the browser; each key press also commits the value to the server,
which reruns the page in the background, as a user's would.

    python benchmarks/app_latency.py [--moves 40] [--strokes 15] [--uploads 8]
    python benchmarks/app_latency.py --switches [--rounds 5]

Each slider move is one ArrowRight key press on the focused z1 slider (each press commits a
value); its latency is the time from the key press until the decoded image's caption shows
the new value and the image has loaded. A stroke's latency runs from the mouse button's
release to the new reconstruction loaded on screen; an upload's from handing the file to the
uploader to its reconstruction loaded (the importance-sampled log p(x) may still follow).
"""

from __future__ import annotations

import argparse
import io
import math
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from browser import ROOT, browser_page, chromium_path, free_port, served_app, wait_idle  # noqa: E402

RUNS = Path(os.environ.get("VAE_EXPLORER_RUNS", ROOT / "runs"))

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
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0].rstrip("."))
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--page-speed", action="store_true",
                      help="cold starts once, then warm page switches through the sidebar (--rounds)")
    mode.add_argument("--switches", action="store_true", help="warm page switches only (--rounds)")
    mode.add_argument("--cold", type=int, metavar="N", help="N cold starts of Home and Latent space, medians")
    mode.add_argument("--hover-scrub", action="store_true",
                      help="hover thumbnail, scrubber and style slider moves, timed in the page (--moves)")
    parser.add_argument("--rounds", type=int, default=5, help="tours of the sidebar (default: 5)")
    parser.add_argument("--against", type=Path, help="with --cold: another checkout, taking turns with this one")
    parser.add_argument("--warm-browser", action="store_true",
                        help="with --cold: one browser that has opened the app before")
    parser.add_argument("--moves", type=int, default=None, help="slider moves (default: 40; 60 with --hover-scrub)")
    parser.add_argument("--strokes", type=int, default=15)
    parser.add_argument("--uploads", type=int, default=8)
    args = parser.parse_args()
    if chromium_path() is None:
        sys.exit("no chromium found: apt-get install chromium")
    if args.cold:
        cold_starts(args.cold, args.against.resolve() if args.against else None, args.warm_browser)
    elif args.page_speed:
        page_speed(args.rounds)
    elif args.switches:
        with browser_page(1024, 768) as page, served_app() as (url, _):
            warm_switches(page, url, args.rounds)
    elif args.hover_scrub:
        hover_and_scrub(args.moves or 60)
    else:
        # The browser is started first: a visitor's browser is already running, and its start-up
        # (about 1.5 s for headless Chromium here) is not the app's.
        with browser_page() as page:
            launched = time.perf_counter()
            with served_app() as (url, healthy_after):
                measure(page, url, healthy_after, launched, args.moves or 40)
                measure_drawing(page, url, args.strokes)
                measure_uploads(page, url, args.uploads)


RECONSTRUCTION_CHANGED = """(before) => {
    const images = document.querySelectorAll('[data-testid="stImage"] img');
    const image = images[1];
    return !!image && image.src !== before && image.complete && image.naturalWidth > 0;
}"""


def _reconstruction_src(page) -> str:
    images = page.locator('[data-testid="stImage"] img')
    return images.nth(1).get_attribute("src") if images.count() > 1 else ""


def _summary(name: str, latencies: list[float]) -> None:
    latencies = sorted(latencies)
    p90 = latencies[int(0.9 * (len(latencies) - 1))]
    print(f"{name} over {len(latencies)}: median {statistics.median(latencies):.0f} ms, p90 {p90:.0f} ms, "
          f"min {latencies[0]:.0f} ms, max {latencies[-1]:.0f} ms")


def measure_drawing(page, url: str, strokes: int) -> None:
    page.goto(url + "/Reconstruct")
    wait_idle(page)
    page.get_by_text("draw", exact=True).first.click()
    canvas = page.locator(".drawing-pad canvas").first
    canvas.wait_for()
    wait_idle(page)
    latencies = []
    for i in range(strokes):
        if i % 3 == 0 and i:
            page.get_by_role("button", name="Clear").click()
            page.get_by_text("Draw a digit on the pad").wait_for()
            wait_idle(page)
        canvas.scroll_into_view_if_needed()  # a mouse only reaches what is on screen
        box = canvas.bounding_box()
        x = box["x"] + box["width"] * (0.3 + 0.2 * (i % 3))
        before = _reconstruction_src(page)
        page.mouse.move(x, box["y"] + 0.15 * box["height"])
        page.mouse.down()
        page.mouse.move(x + 0.1 * box["width"], box["y"] + 0.85 * box["height"], steps=8)
        t0 = time.perf_counter()
        page.mouse.up()
        page.wait_for_function(RECONSTRUCTION_CHANGED, arg=before, polling="raf", timeout=30_000)
        latencies.append((time.perf_counter() - t0) * 1000)
        wait_idle(page)
    _summary("stroke (pointer up) to new reconstruction", latencies)


def measure_uploads(page, url: str, uploads: int) -> None:
    from PIL import Image, ImageDraw
    page.goto(url + "/Reconstruct")
    wait_idle(page)
    page.get_by_text("upload", exact=True).first.click()
    wait_idle(page)
    latencies = []
    for i in range(uploads):
        image = Image.new("RGB", (900, 1200), (235, 232, 225))
        ImageDraw.Draw(image).line([(250, 250), (650, 250 + 10 * i), (400, 950)], fill=(20, 20, 30), width=40)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=85)
        before = _reconstruction_src(page)
        t0 = time.perf_counter()
        page.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(
            {"name": f"photo-{i}.jpg", "mimeType": "image/jpeg", "buffer": buffer.getvalue()})
        page.wait_for_function(RECONSTRUCTION_CHANGED, arg=before, polling="raf", timeout=30_000)
        latencies.append((time.perf_counter() - t0) * 1000)
        wait_idle(page)
    _summary("upload to reconstruction", latencies)


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


# --- Page speed: cold start, first visit to Latent space, warm page switches --------------------
#
#     python benchmarks/app_latency.py --page-speed [--rounds 5]
#
# Each figure is measured from the event a visitor causes (the server process's start, a goto, a
# click on a sidebar link) to the page's own heading on screen ("shown") and to the end of the
# page's run ("done": nothing left loading). A page switch is a click on the sidebar link in the
# same session, as a visitor makes it.

PAGE_TITLES = {"Home": ("", "VAE Explorer"), "Train": ("Train", "Train"),
               "Latent space": ("Latent_space", "Latent space"), "Interpolate": ("Interpolate", "Interpolate"),
               "Reconstruct": ("Reconstruct", "Reconstruct"), "Training curves": ("Training_curves", "Training curves"),
               "Semi-supervised": ("Semi-supervised", "Semi-supervised M2"),
               "Inside the ELBO": ("Inside_the_ELBO", "Inside the ELBO")}
LOADING = '[data-testid="stSpinner"], [data-testid="stSkeleton"]'


def _heading(page, title: str):
    return page.get_by_role("heading", name=title, exact=True)


# Checked in the page at every animation frame, so that a time is that of the frame that first
# shows the text (a locator's wait polls at growing intervals, up to a second late). The
# explorer's text is in its component's shadow root.
SHOWN = """(text) => {
    if (document.body && document.body.innerText.includes(text)) return true;
    for (const host of document.querySelectorAll('[data-testid="stBidiComponentIsolated"], '
                                                 + '[data-testid="stBidiComponentIsolated"] > *'))
        if (host.shadowRoot && host.shadowRoot.textContent.includes(text)) return true;
    return false;
}"""
EXPLORER_TEXT = "decoder mean at z = (0.00, 0.00)"
EXPLORER_PAGES = ("Home", "Latent space")


def _shown(page, text: str) -> None:
    page.wait_for_function(SHOWN, arg=text, polling="raf", timeout=120_000)


def cold_home(page, url: str, launched: float) -> list[float]:
    """A fresh server: Home's steps and links on screen, its explorer drawn (it works from then
    on), and the end of the page's run (the hover thumbnails' sheet is sent last)."""
    page.goto(url)
    _shown(page, "Start here")
    steps = time.perf_counter() - launched
    _shown(page, EXPLORER_TEXT)
    explorer = time.perf_counter() - launched
    wait_idle(page)
    done = time.perf_counter() - launched
    print(f"cold start (process start to): Home's steps and links shown {steps:.2f} s, its explorer "
          f"drawn and working {explorer:.2f} s, the page's run done {done:.2f} s")
    return [steps, explorer, done]


def cold_latent_space(page, url: str) -> list[float]:
    """A fresh server, opened straight on Latent space: the first thing on screen (its heading or
    a loading message), the explorer drawn, the page's run done."""
    t0 = time.perf_counter()
    page.goto(url + "/Latent_space")
    page.wait_for_function(f"""() => !!document.querySelector('{LOADING}')
                               || [...document.querySelectorAll('h1')].some(h => h.innerText.includes('Latent space'))""",
                           polling="raf", timeout=120_000)
    first = time.perf_counter() - t0
    _shown(page, EXPLORER_TEXT)
    explorer = time.perf_counter() - t0
    wait_idle(page)
    done = time.perf_counter() - t0
    print(f"first visit to Latent space on a cold server: something on screen after {first:.2f} s, the explorer "
          f"drawn and working after {explorer:.2f} s, the page's run done after {done:.2f} s")
    return [first, explorer, done]


def latent_space_from_cold_home(page, url: str, launched: float) -> None:
    """A fresh server: Home opened, and Latent space clicked in the sidebar as soon as Home's
    steps show (its explorer still loading torch, the model and the test set)."""
    page.goto(url)
    page.get_by_role("heading", name="Start here").wait_for()
    t0 = time.perf_counter()
    page.get_by_test_id("stSidebar").get_by_role("link", name="Latent space", exact=True).click()
    _heading(page, "Latent space").wait_for(timeout=120_000)
    shown = time.perf_counter() - t0
    page.get_by_text("decoder mean at z = (0.00, 0.00)").wait_for(timeout=120_000)
    wait_idle(page)
    done = time.perf_counter() - t0
    print(f"Home on a cold server ({t0 - launched:.2f} s after process start), then Latent space clicked at "
          f"once: its heading after {shown:.2f} s, its explorer ready after {done:.2f} s")


# Installed before a sidebar click: the click's own time (its event's time stamp) and the first
# animation frame after it that shows the new page drawn (its heading, its run ended, nothing
# loading, every chart drawn, every image on screen loaded, the latent explorer drawn where there
# is one), both on the page's clock, so that no polling interval of the test's waits is counted.
SWITCH_WATCH = """([title, explorer]) => {
    window.__switch = null;
    let clicked = null;
    document.addEventListener('click', (event) => { clicked = event.timeStamp; }, {capture: true, once: true});
    const done = () => [...document.querySelectorAll('h1')].some(h => h.innerText.trim() === title)
        && !!document.querySelector('[data-testid="stApp"][data-test-script-state="notRunning"]')
        && !document.querySelector('%s')
        && [...document.querySelectorAll('[data-testid="stPlotlyChart"]')].every(c => c.querySelector('.main-svg'))
        && [...document.querySelectorAll('img')].every(i => i.complete || i.getBoundingClientRect().top > innerHeight)
        && (!explorer || [...document.querySelectorAll('[data-testid="stBidiComponentIsolated"]')].some(
            host => host.shadowRoot && host.shadowRoot.textContent.includes(explorer)));
    const frame = (now) => {
        if (clicked !== null && done()) window.__switch = now - clicked;
        else requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
}""" % LOADING


def warm_switches(page, url: str, rounds: int) -> None:
    """Every page visited once, then `rounds` tours of the sidebar in order, each switch timed in
    the page from the click to the frame that shows the new page with its run ended."""
    names = list(PAGE_TITLES)
    for name in names:  # warm: each page's models and caches loaded once
        page.goto(f"{url}/{PAGE_TITLES[name][0]}")
        _heading(page, PAGE_TITLES[name][1]).wait_for(timeout=120_000)
        wait_idle(page)
    page.goto(url)
    _heading(page, "VAE Explorer").wait_for()
    wait_idle(page)
    times = {name: [] for name in names}
    for _ in range(rounds):
        for name in names[1:] + names[:1]:
            page.wait_for_timeout(300)  # the last page's late work (e.g. a component's reply) ends
            page.evaluate(SWITCH_WATCH, [PAGE_TITLES[name][1], EXPLORER_TEXT if name in EXPLORER_PAGES else None])
            page.get_by_test_id("stSidebar").get_by_role("link", name=name, exact=True).click()
            times[name].append(page.wait_for_function("() => window.__switch", timeout=120_000).json_value() / 1000)
            wait_idle(page)
    print(f"warm page switch through the sidebar, click to the frame showing the page drawn, "
          f"median (min-max) of {rounds}:")
    for name, values in times.items():
        print(f"  {name:16s} {statistics.median(values):.2f} s ({min(values):.2f}-{max(values):.2f})")


def page_speed(rounds: int) -> None:
    with browser_page(1024, 768) as page:
        launched = time.perf_counter()
        with served_app() as (url, healthy_after):
            print(f"server healthy after {healthy_after:.2f} s")
            cold_home(page, url, launched)
    with browser_page(1024, 768) as page:
        launched = time.perf_counter()
        with served_app() as (url, _):
            latent_space_from_cold_home(page, url, launched)
    with browser_page(1024, 768) as page:
        with served_app() as (url, _):
            cold_latent_space(page, url)
            warm_switches(page, url, rounds)


# --- Cold starts, repeated, optionally against another checkout -------------------------------
#
#     python benchmarks/app_latency.py --cold 8 [--against ../older-checkout] [--warm-browser]
#
# A cold start varies by up to a second from one to the next on this machine (the browser's own
# loading of Streamlit's scripts alone by 0.5 s), so each figure is a median over fresh servers;
# with --against (e.g. a `git worktree` of an earlier commit) the two checkouts take turns, so
# that both see the same machine. Both use this checkout's runs folder. By default each cold
# start has a new browser profile, with nothing cached; --warm-browser keeps one browser that
# has opened the app before, every server on the same address, as a teacher's browser would be.

def cold_starts(rounds: int, against: Path | None, warm_browser: bool) -> None:
    checkouts = {"this checkout": ROOT} | ({f"against {against}": against} if against else {})
    figures = {name: {"home": [], "latent": []} for name in checkouts}
    env = {"VAE_EXPLORER_RUNS": str(RUNS)}
    if warm_browser:
        # A browser that has opened the app before (as a teacher's has): one browser throughout,
        # every server on the same address, so that Streamlit's scripts come from its caches.
        port = free_port()
        with browser_page(1024, 768) as page:
            with served_app(env=env, port=port) as (url, _):
                page.goto(url)
                _shown(page, EXPLORER_TEXT)
                wait_idle(page)
            for _ in range(rounds):
                for name, root in checkouts.items():
                    for kind in ("home", "latent"):
                        page.goto("about:blank")
                        launched = time.perf_counter()
                        with served_app(root=root, env=env, port=port) as (url, _):
                            figures[name][kind].append(cold_home(page, url, launched) if kind == "home"
                                                       else cold_latent_space(page, url))
    else:
        for _ in range(rounds):
            for name, root in checkouts.items():
                with browser_page(1024, 768) as page:
                    launched = time.perf_counter()
                    with served_app(root=root, env=env) as (url, _):
                        figures[name]["home"].append(cold_home(page, url, launched))
                with browser_page(1024, 768) as page, served_app(root=root, env=env) as (url, _):
                    figures[name]["latent"].append(cold_latent_space(page, url))

    def line(values: list[list[float]], what: list[str]) -> str:
        return ", ".join(f"{w} {statistics.median(v):.2f} s ({min(v):.2f}-{max(v):.2f})"
                         for w, v in zip(what, zip(*values)))
    for name, found in figures.items():
        print(f"{name}, {'a browser that has opened the app before' if warm_browser else 'a new browser profile'}"
              f" each time, median (min-max) of {rounds}:")
        print("  Home from the process start: " + line(found["home"], ["steps", "explorer", "run done"]))
        print("  Latent space from its goto: " + line(found["latent"], ["first", "explorer", "run done"]))


# --- Hover thumbnail, scrubber and style slider moves, timed in the page ------------------------------------
#
#     python benchmarks/app_latency.py --hover-scrub [--moves 60]
#
# Two figures per move, both read from the page: the work of the move (performance.now() around
# it: for a hover, finding the nearest of the 10,000 points and drawing its thumbnail; for the
# scrubber, decoding z(t) and drawing it beside the pixel cross-fade), and the time from the
# pointer or input event's own timestamp to the next animation frame, by which the result is on
# screen.

def _move_times(page, element, previous: str | None = None, attribute: str = "data-t") -> tuple[float, float]:
    """(work, event to next frame) in ms of the latest move, once its frame has come."""
    for _ in range(500):
        work, frame = element.get_attribute("data-ms"), element.get_attribute("data-frame-ms")
        if frame and (previous is None or element.get_attribute(attribute) != previous):
            return float(work), float(frame)
        page.wait_for_timeout(2)
    raise RuntimeError("the move was not drawn")


def hover_and_scrub(moves: int) -> None:
    with browser_page(1024, 768) as page, served_app() as (url, _):
        page.goto(url + "/Latent_space")
        page.get_by_text("decoder mean at z = (0.00, 0.00)").wait_for(timeout=120_000)
        wait_idle(page)
        page.wait_for_timeout(1500)  # the sprite sheet of the test digits loads
        box = page.locator("canvas.scatter").bounding_box()
        thumb = page.locator(".thumb")
        work, frames, misses = [], [], 0
        for i in range(moves):  # a spiral out from the centre of the map, where the digits are
            angle, radius = 0.7 * i, 0.02 + 0.3 * i / moves
            page.mouse.move(box["x"] + box["width"] * (0.5 + radius * math.cos(angle)),
                            box["y"] + box["height"] * (0.5 + radius * math.sin(angle)))
            if thumb.evaluate("t => t.hidden"):
                misses += 1
                continue
            w, f = _move_times(page, thumb)
            work.append(w)
            frames.append(f)
        _summary(f"hover thumbnail, work in the page ({misses} moves over no digit left out)", work)
        _summary("hover thumbnail, pointer event to the next frame", frames)

        page.goto(url + "/Interpolate")
        caption = page.locator("[data-scrub-caption]")
        caption.wait_for(timeout=120_000)
        wait_idle(page)
        page.locator("input[data-t]").focus()
        work, frames = [], []
        for i in range(moves):
            previous = caption.get_attribute("data-t")
            page.keyboard.press("ArrowRight" if (i // 20) % 2 == 0 else "ArrowLeft")
            w, f = _move_times(page, caption, previous)
            work.append(w)
            frames.append(f)
        _summary("scrubber move, work in the page (decode z(t), draw it and the cross-fade)", work)
        _summary("scrubber move, input event to the next frame", frames)

        page.goto(url + "/Semi-supervised")
        _heading(page, "Semi-supervised M2").wait_for(timeout=120_000)
        wait_idle(page)
        page.get_by_role("tab", name="Generate").click()
        caption = page.locator("[data-style-caption]")
        caption.wait_for(timeout=120_000)
        page.wait_for_timeout(500)
        page.locator("input[data-dim='0']").focus()
        work, frames = [], []
        for i in range(moves):
            previous = caption.get_attribute("data-z")
            page.keyboard.press("ArrowRight" if (i // 20) % 2 == 0 else "ArrowLeft")
            w, f = _move_times(page, caption, previous, "data-z")
            work.append(w)
            frames.append(f)
        _summary("Generate style slider move, work in the page (decode all ten classes, draw them)", work)
        _summary("Generate style slider move, input event to the next frame", frames)


if __name__ == "__main__":
    main()
