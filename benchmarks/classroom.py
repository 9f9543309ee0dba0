"""A classroom on one server: many browser sessions at once on Latent space, Reconstruct (with
uploads) and Semi-supervised, while training jobs run and others wait in the queue.

    python benchmarks/classroom.py [--sessions 30] [--ramp 60] [--duration 180] [--port 8621]
                                   [--client websocket|browser]

Each visitor is, by default, a client of Streamlit's own protocol (`tests/streamlit_client.py`:
the websocket and the HTTP requests a browser's frontend makes, with nothing drawn), so that the
visitors leave the two cores to the server as a real class's own laptops do. With `--client
browser` each is a headless Chromium context instead, all in one Chromium on the same cores.

All traffic stays on 127.0.0.1 and everything is bounded: a fixed number of sessions, a fixed
time, a timeout on every wait. The app is served with its own empty runs folder (a temporary
folder, deleted afterwards), `VAE_EXPLORER_MAX_JOBS=2` and one thread per job. Then:

1. one warm-up session opens each page once, so that the models and test sets are loaded, and
   the server's memory is read with no session open (the baseline);
2. five visitors, each in their own session, start "The paper's model" on the Train page,
   as a student would: two jobs train and three wait in the queue;
3. the sessions arrive one by one over `--ramp` seconds, a third of them on each page. Each
   session then acts every 8-20 s (a random pause, seeded) until `--duration` has passed since
   the last one arrived: on Latent space a browser moves the z1 slider (drawn in the browser,
   no server work), a websocket visitor reruns the page as a click on the map does; on
   Reconstruct and Semi-supervised it uploads a new digit (an MNIST test digit as a dark-on-white
   280x280 PNG, like a scan); every fourth action it goes to the next of the three pages by its
   sidebar link;
4. the sessions close, and the server's memory is read again.

Measured: page load (a first visit by URL, and a page switch by sidebar link: until the page's
content is on screen and the script idle; for a websocket visitor, until the run has finished and
its images are fetched), upload to result (the file handed to the uploader until the new
reconstruction, or the new classified image, is on screen, or for a websocket visitor fetched;
and until the whole rerun is done), errors (an error box, an exception, a disconnection, a wait that times out),
the server's resident memory (every second; per session as the growth over the baseline with
every session open, divided by their number), the training processes (every second: never more
than two at once is the queue holding), and the CPU time of the server, the training jobs, the
browser and this script. The visitors run on the same two cores as the server here, which a
classroom's do not: their CPU time is reported so that their share is known.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from browser import CHROMIUM_ARGS, chromium_path  # noqa: E402
from vae_core.data import load_dataset  # noqa: E402

IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
ERRORS = '[data-testid="stException"], [data-testid="stAlertContentError"]'
PAGES = ("Latent space", "Reconstruct", "Semi-supervised")
PATHS = {"Latent space": "/Latent_space", "Reconstruct": "/Reconstruct", "Semi-supervised": "/Semi-supervised"}
# What each page shows once it has drawn its content.
LOADED = {"Latent space": "decoder mean at z = (", "Reconstruct": "and its reconstruction",
          "Semi-supervised": "Left chart, q(y|x)"}
# The caption of the image that an upload replaces: the result.
RESULT_CAPTION = {"Reconstruct": "decoder mean at E[z|x]", "Semi-supervised": "your image"}
WAIT_MS = 60_000  # any single wait longer than this is an error
JOBS_RUNNING, JOBS_QUEUED = 2, 3
JOB_PRESET = "paper-vae"  # 50 epochs of the paper's VAE: it outlasts the benchmark


@dataclass
class Record:
    page_loads: list[tuple[str, str, float]] = field(default_factory=list)   # (page, how, seconds)
    uploads: list[tuple[str, float, float]] = field(default_factory=list)    # (page, to result, to done)
    moves: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    connected: int = 0  # sessions whose first page loaded


# --- the server and its processes -------------------------------------------------------------

def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                pass
    return found


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        kids = children(todo.pop())
        out += kids
        todo += kids
    return out


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def training_processes(server: int) -> list[int]:
    return [p for p in children(server) if "vae_core" in cmdline(p) and " train" in cmdline(p)]


class Monitor(threading.Thread):
    """Every second: the server's RSS, its training processes and their RSS; and the CPU time of
    the server, of the training processes and of the browser (this script's other descendants)."""

    def __init__(self, server: int):
        super().__init__(daemon=True)
        self.server, self.samples, self.stopped = server, [], threading.Event()
        self.cpu: dict[int, tuple[str, float]] = {}

    def run(self) -> None:
        while not self.stopped.wait(1.0):
            training = training_processes(self.server)
            self.samples.append((time.perf_counter(), rss_mb(self.server), len(training),
                                 sum(rss_mb(p) for p in training)))
            self.cpu[self.server] = ("server", cpu_seconds(self.server))
            for p in training:
                self.cpu[p] = ("training", cpu_seconds(p))
            server_tree = {self.server, *descendants(self.server)}
            for p in descendants(os.getpid()):
                if p not in server_tree and ("chromium" in cmdline(p) or "playwright" in cmdline(p)):
                    self.cpu[p] = ("browser", cpu_seconds(p))

    def cpu_by_role(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for role, seconds in self.cpu.values():
            totals[role] = totals.get(role, 0.0) + seconds
        return totals

    def rss_between(self, start: float, end: float) -> list[float]:
        return [s[1] for s in self.samples if start <= s[0] <= end]


def serve(port: int, runs: Path) -> subprocess.Popen:
    env = dict(os.environ, VAE_EXPLORER_RUNS=str(runs), VAE_EXPLORER_MAX_JOBS=str(JOBS_RUNNING),
               VAE_EXPLORER_THREADS_PER_JOB="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(port),
         # as a course's server runs: its files do not change under it (a watched tree that
         # changes reloads modules mid-session)
         "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    start = time.perf_counter()
    while True:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1).read() == b"ok":
                return process
        except OSError:
            pass
        if process.poll() is not None or time.perf_counter() - start > 120:
            process.kill()
            raise RuntimeError(f"the app did not start: {process.stderr.read().decode()[-2000:]}")
        time.sleep(0.2)


# --- what a visitor does ----------------------------------------------------------------------

def digit_files(folder: Path, count: int) -> list[Path]:
    """MNIST test digits as a scan would give them: dark ink on white paper, 280x280 PNG."""
    images = load_dataset("mnist").test.images[:count, 0].numpy()
    paths = []
    for i, image in enumerate(images):
        grey = Image.fromarray(np.uint8(255 - 255 * image)).resize((280, 280), Image.BILINEAR)
        buffer = io.BytesIO()
        grey.save(buffer, format="PNG")
        paths.append(folder / f"digit-{i}.png")
        paths[-1].write_bytes(buffer.getvalue())
    return paths


async def idle(page) -> None:
    await page.wait_for_selector(IDLE, timeout=WAIT_MS)


async def loaded(page, name: str, timeout: float = WAIT_MS) -> None:
    await page.get_by_text(LOADED[name]).first.wait_for(timeout=timeout)
    await idle(page)


async def result_src(page, caption: str) -> str | None:
    return await page.evaluate("""caption => {
        for (const box of document.querySelectorAll('[data-testid="stImage"]')) {
            const text = box.querySelector('[data-testid="stImageCaption"]');
            if (text && text.textContent.trim() === caption) return box.querySelector('img').src;
        }
        return null; }""", caption)


async def upload(page, name: str, path: Path, record: Record) -> None:
    """Hand a file to the page's first uploader; time it until the new result image is shown, and
    until the rerun is done."""
    if await page.get_by_test_id("stFileUploaderDropzoneInput").count() == 0:
        await page.get_by_text("upload", exact=True).first.click()
        await page.get_by_test_id("stFileUploaderDropzoneInput").first.wait_for(state="attached", timeout=WAIT_MS)
        await idle(page)
    caption = RESULT_CAPTION[name]
    before = await result_src(page, caption)
    start = time.perf_counter()
    await page.get_by_test_id("stFileUploaderDropzoneInput").first.set_input_files(str(path))
    await page.wait_for_function(
        """([caption, before]) => {
            for (const box of document.querySelectorAll('[data-testid="stImage"]')) {
                const text = box.querySelector('[data-testid="stImageCaption"]');
                if (text && text.textContent.trim() === caption) return box.querySelector('img').src !== before;
            }
            return false; }""", arg=[caption, before], timeout=WAIT_MS)
    shown = time.perf_counter() - start
    await idle(page)
    record.uploads.append((name, shown, time.perf_counter() - start))


async def move(page, record: Record) -> None:
    """Move z1 one step with the keyboard; time it until the decoded point's label changes."""
    label = page.get_by_text("decoder mean at z = (").first
    before = await label.text_content()
    start = time.perf_counter()
    slider = page.locator("input[data-axis='0']")
    await slider.focus()
    await page.keyboard.press("ArrowRight" if random.random() < 0.5 else "ArrowLeft")
    while await label.text_content() == before:  # the label is drawn inside a component: polled
        if time.perf_counter() - start > WAIT_MS / 1000:
            raise TimeoutError("the decoded point's label did not change")
        await asyncio.sleep(0.01)
    record.moves.append(time.perf_counter() - start)


async def check(page, where: str, record: Record) -> None:
    boxes = await page.locator(ERRORS).count()
    if boxes:
        text = await page.locator(ERRORS).first.inner_text()
        record.errors.append(f"{where}: an error box: {text[:200]}")


# --- the same visitors over Streamlit's own protocol (no browser) ----------------------------

URL_PATHS = {name: path.lstrip("/") for name, path in PATHS.items()}
UPLOADER = "Upload a photo"
SOURCE = "Digit: where from"


async def ws_upload(visitor, name: str, path: Path, record: Record) -> None:
    """Pick "upload" once, then hand the file to the page's first uploader; time it until the
    result image has arrived and been fetched, and until the rerun is done."""
    try:
        visitor.find("file_uploader", UPLOADER)
    except LookupError:
        await visitor.choose(SOURCE, "upload")
    run, shown = await visitor.upload(UPLOADER, path.name, path.read_bytes(), result=RESULT_CAPTION[name])
    if shown is None:
        raise RuntimeError(f"no image captioned {RESULT_CAPTION[name]!r} after the upload")
    record.uploads.append((name, shown, run.finished))


class ProtocolVisitor:
    """A visitor speaking Streamlit's protocol, for `session`."""

    def __init__(self, base: str, index: int, record: Record):
        from streamlit_client import Visitor
        self.visitor, self.index, self.record = Visitor(base, timeout=WAIT_MS / 1000), index, record

    async def open(self, name: str) -> None:
        await self.visitor.connect()
        await self.visitor.open(URL_PATHS[name])

    async def switch(self, name: str) -> None:
        await self.visitor.switch(URL_PATHS[name])

    async def latent_space(self) -> None:
        start = time.perf_counter()
        await self.visitor.rerun()  # as a click on the map makes it: the slider alone never asks the server
        self.record.moves.append(time.perf_counter() - start)

    async def upload(self, name: str, path: Path) -> None:
        await ws_upload(self.visitor, name, path, self.record)

    async def check(self, where: str) -> None:
        pass  # an error box or an exception fails the run it came in (`streamlit_client.ServerError`)

    async def close(self, end: float) -> None:
        await self.visitor.close()
        if self.visitor.closed_by_server and time.perf_counter() < end:
            self.record.errors.append(f"session {self.index}: the server closed the websocket")


async def ws_start_jobs(base: str, count: int) -> list[str]:
    from streamlit_client import ServerError, Visitor
    messages = []
    for i in range(count):
        async with Visitor(base, timeout=WAIT_MS / 1000) as visitor:
            await visitor.open("Train")
            await visitor.type_text("Name of the new run", f"class-{i + 1}")
            try:
                run = await visitor.press(f"preset_start_{JOB_PRESET}")
                messages.append(next((line for line in run.text().splitlines() if "class-" in line), "no message"))
            except ServerError as exc:
                messages.append(str(exc))
    return messages


async def ws_train_page_statuses(base: str) -> str:
    from streamlit_client import Visitor
    async with Visitor(base, timeout=WAIT_MS / 1000) as visitor:
        return (await visitor.open("Train")).text()


async def ws_warm_up(base: str, files: list[Path]) -> None:
    from streamlit_client import Visitor
    record = Record()
    async with Visitor(base, timeout=4 * WAIT_MS / 1000) as visitor:  # the first visit imports torch
        for name in PAGES:
            await (visitor.open(URL_PATHS[name]) if name == PAGES[0] else visitor.switch(URL_PATHS[name]))
            if name != "Latent space":
                await ws_upload(visitor, name, files[-1], record)


class BrowserVisitor:
    """A visitor in its own headless Chromium context, for `session`."""

    def __init__(self, browser, base: str, index: int, record: Record, end: float):
        self.browser, self.base, self.index, self.record, self.end = browser, base, index, record, end
        self.context = self.page = None

    async def open(self, name: str) -> None:
        self.context = await self.browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = await self.context.new_page()
        self.page.on("websocket", lambda ws: ws.on("close", lambda _: self.record.errors.append(
            f"session {self.index}: the websocket closed") if time.perf_counter() < self.end else None))
        await self.page.goto(self.base + PATHS[name], timeout=WAIT_MS)
        await loaded(self.page, name)

    async def switch(self, name: str) -> None:
        await self.page.get_by_role("link", name=name, exact=True).click()
        await loaded(self.page, name)

    async def latent_space(self) -> None:
        await move(self.page, self.record)

    async def upload(self, name: str, path: Path) -> None:
        await upload(self.page, name, path, self.record)

    async def check(self, where: str) -> None:
        await check(self.page, where, self.record)

    async def close(self, end: float) -> None:
        self.end = min(self.end, time.perf_counter())  # closing early: its websocket closing is no error
        if self.context is not None:
            await self.context.close()


async def session(visitor, index: int, first: str, arrive: float, end: float, files: list[Path], record: Record,
                  rng: random.Random) -> None:
    """One visitor: arrives at `arrive` on the page `first`, then acts every 8-20 s until `end`."""
    await asyncio.sleep(max(0.0, arrive - time.perf_counter()))
    name, actions = first, 0
    try:
        start = time.perf_counter()
        await visitor.open(name)
        record.page_loads.append((name, "first visit", time.perf_counter() - start))
        record.connected += 1
        await visitor.check(f"session {index}, {name}")
        while time.perf_counter() < end:
            await asyncio.sleep(rng.uniform(8, 20))
            if time.perf_counter() >= end:
                break
            actions += 1
            if actions % 4 == 0:
                name = PAGES[(PAGES.index(name) + 1) % len(PAGES)]
                start = time.perf_counter()
                await visitor.switch(name)
                record.page_loads.append((name, "switch", time.perf_counter() - start))
            elif name == "Latent space":
                await visitor.latent_space()
            else:
                await visitor.upload(name, files[(index * 97 + actions) % len(files)])
            await visitor.check(f"session {index}, {name}")
    except Exception as exc:  # noqa: BLE001 - every failure of a visitor is counted, none stops the run
        record.errors.append(f"session {index}, {name}: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
    finally:
        await visitor.close(end)


async def start_jobs(browser, base: str, count: int) -> list[str]:
    """`count` visitors, one context each, start the paper's VAE from the Train page's preset."""
    messages = []
    for i in range(count):
        context = await browser.new_context(viewport={"width": 1280, "height": 900})
        page = await context.new_page()
        await page.goto(base + "/Train", timeout=WAIT_MS)
        await page.get_by_role("textbox", name="Name of the new run").fill(f"class-{i + 1}")
        await page.get_by_role("textbox", name="Name of the new run").press("Enter")
        await idle(page)
        await page.locator(f".st-key-preset_start_{JOB_PRESET} button").click()
        message = page.locator('[data-testid="stAlertContentSuccess"], [data-testid="stAlertContentError"]').first
        await message.wait_for(timeout=WAIT_MS)
        messages.append((await message.inner_text()).strip())
        await context.close()
    return messages


async def train_page_statuses(browser, base: str) -> str:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(base + "/Train", timeout=WAIT_MS)
    await page.get_by_text("class-").first.wait_for(timeout=WAIT_MS)
    await idle(page)
    text = await page.locator('[data-testid="stMain"]').inner_text()
    await context.close()
    return text


async def warm_up(browser, base: str, files: list[Path]) -> None:
    record = Record()
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    for name in PAGES:
        await page.goto(base + PATHS[name], timeout=WAIT_MS)
        await loaded(page, name, timeout=4 * WAIT_MS)  # the first visit imports torch and loads the data
        if name != "Latent space":
            await upload(page, name, files[-1], record)
    await context.close()
    if record.errors:
        raise RuntimeError(f"the warm-up failed: {record.errors}")


# --- the run ----------------------------------------------------------------------------------

def quantiles(values: list[float]) -> str:
    if not values:
        return "none"
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(np.ceil(0.95 * len(values))) - 1)]
    return f"p50 {statistics.median(values):.2f} s, p95 {p95:.2f} s, max {values[-1]:.2f} s (n = {len(values)})"


async def classroom(args, monitor: Monitor, warm_up_server, start_the_jobs, statuses, visitor) -> dict:
    """The run, whatever the visitors are: the warm-up and the baseline, the jobs, the sessions,
    the Train page at the end. `visitor(index, end, record)` makes one session's visitor."""
    out: dict = {}
    await warm_up_server()
    await asyncio.sleep(3)
    out["baseline"] = statistics.median(monitor.rss_between(time.perf_counter() - 2.5, time.perf_counter()))
    if args.jobs:
        out["job messages"] = await start_the_jobs(JOBS_RUNNING + JOBS_QUEUED)
        await asyncio.sleep(5)
    out["training at start"] = len(training_processes(monitor.server))
    record, rng = Record(), random.Random(0)
    t0 = time.perf_counter()
    last_arrival = t0 + args.ramp
    end = last_arrival + args.duration
    await asyncio.gather(*(session(visitor(i, end, record), i, PAGES[i % len(PAGES)],
                                   t0 + args.ramp * i / max(1, args.sessions - 1), end, args.files, record,
                                   random.Random(rng.random())) for i in range(args.sessions)))
    out["all open"] = (last_arrival + 5, end)
    if args.jobs:
        out["train page"] = await statuses()
    await asyncio.sleep(5)
    out["after"] = statistics.median(monitor.rss_between(time.perf_counter() - 3, time.perf_counter()))
    out["record"] = record
    out["window"] = (t0, end)
    return out


async def run(args, base: str, monitor: Monitor, files: list[Path]) -> dict:
    args.files = files
    if args.client == "websocket":
        return await classroom(args, monitor, lambda: ws_warm_up(base, files), lambda n: ws_start_jobs(base, n),
                               lambda: ws_train_page_statuses(base),
                               lambda i, end, record: ProtocolVisitor(base, i, record))
    from playwright.async_api import async_playwright
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            return await classroom(args, monitor, lambda: warm_up(browser, base, files),
                                   lambda n: start_jobs(browser, base, n), lambda: train_page_statuses(browser, base),
                                   lambda i, end, record: BrowserVisitor(browser, base, i, record, end))
        finally:
            await browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=30)
    parser.add_argument("--ramp", type=float, default=60.0, help="seconds over which the sessions arrive")
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of activity after the last arrival")
    parser.add_argument("--port", type=int, default=8621)
    parser.add_argument("--no-jobs", dest="jobs", action="store_false", help="no training jobs")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--client", choices=("websocket", "browser"), default="websocket",
                        help="visitors speak Streamlit's protocol (default), or are Chromium pages")
    args = parser.parse_args()
    if args.client == "browser" and chromium_path() is None:
        sys.exit("no chromium found: apt-get install chromium")
    wall = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="classroom-") as tmp:
        runs, uploads = Path(tmp) / "runs", Path(tmp) / "uploads"
        runs.mkdir()
        uploads.mkdir()
        files = digit_files(uploads, 200)
        server = serve(args.port, runs)
        monitor = Monitor(server.pid)
        monitor.start()
        try:
            out = asyncio.run(run(args, f"http://127.0.0.1:{args.port}", monitor, files))
        finally:
            monitor.stopped.set()
            monitor.join()
            for pid in training_processes(server.pid):
                os.kill(pid, 15)  # the jobs this run started: they would end on their own, later
            server.terminate()
            try:
                server.wait(20)
            except subprocess.TimeoutExpired:
                server.kill()
    record: Record = out["record"]
    start, end = out["all open"]
    full = monitor.rss_between(start, end)
    running = [s[2] for s in monitor.samples if out["window"][0] <= s[0] <= out["window"][1]]
    peak = max(s[1] for s in monitor.samples)
    cpu = monitor.cpu_by_role()
    cpu["this script"] = sum(os.times()[:2])
    figures = {
        "sessions": args.sessions, "ramp_s": args.ramp, "duration_s": args.duration,
        "page_load_first_visit": sorted(s for _, how, s in record.page_loads if how == "first visit"),
        "page_load_switch": sorted(s for _, how, s in record.page_loads if how == "switch"),
        "upload_to_result": sorted(s for _, s, _ in record.uploads),
        "upload_to_done": sorted(s for _, _, s in record.uploads),
        "slider_move": sorted(record.moves), "errors": record.errors,
        "rss_baseline_mb": out["baseline"], "rss_all_open_median_mb": statistics.median(full) if full else None,
        "rss_peak_mb": peak, "sessions_connected": record.connected, "rss_after_mb": out["after"],
        "training_rss_mb": max((s[3] for s in monitor.samples), default=0),
        "training_processes_max": max(running, default=0), "training_processes_min": min(running, default=0),
        "cpu_seconds": cpu, "wall_s": time.perf_counter() - wall,
    }
    print(f"{args.sessions} sessions arriving over {args.ramp:.0f} s, then {args.duration:.0f} s of activity; "
          f"load average before the end: {os.getloadavg()[0]:.1f}")
    if args.jobs:
        print("jobs started from the Train page: " + " | ".join(m.splitlines()[0] for m in out["job messages"]))
    print(f"page load, first visit: {quantiles(figures['page_load_first_visit'])}")
    print(f"page load, switch by sidebar link: {quantiles(figures['page_load_switch'])}")
    for name in ("Reconstruct", "Semi-supervised"):
        print(f"upload to result, {name}: {quantiles([s for n, s, _ in record.uploads if n == name])}")
    print(f"upload to result, both: {quantiles(figures['upload_to_result'])} (target p95 <= 2 s)")
    print(f"upload to the rerun's end, both: {quantiles(figures['upload_to_done'])}")
    print(("slider move to new label" if args.client == "browser" else "rerun") +
          f" (Latent space): {quantiles(figures['slider_move'])}")
    print(f"errors: {len(record.errors)}" + "".join(f"\n  {e}" for e in record.errors[:20]))
    if full:
        growth = (figures["rss_all_open_median_mb"] - out["baseline"]) / max(1, record.connected)
        print(f"server RSS: {out['baseline']:.0f} MB with no session open (after the warm-up), "
              f"{figures['rss_all_open_median_mb']:.0f} MB (median) with all {args.sessions} open, "
              f"peak {peak:.0f} MB, {out['after']:.0f} MB after they closed: "
              f"{growth:.1f} MB per session whose first page loaded ({record.connected}) (target <= 30 MB)")
    print(f"training processes while the sessions ran: {figures['training_processes_min']}-"
          f"{figures['training_processes_max']} (at most {JOBS_RUNNING} is the queue holding); "
          f"their RSS together at most {figures['training_rss_mb']:.0f} MB")
    if args.jobs:
        text = out["train page"]
        print("the Train page at the end: " + " | ".join(line for line in text.splitlines() if "class-" in line))
    print("CPU seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(cpu.items())) +
          f" (wall {figures['wall_s']:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
