"""A visitor that speaks Streamlit's own protocol, for load benchmarks: a websocket carrying
protobuf messages, as the browser's frontend does, and the HTTP requests it makes beside it
(the XSRF cookie, file uploads, the images a page shows). No browser draws anything, so many
visitors cost the machine little beyond the server's own work.

    async with Visitor("http://127.0.0.1:8501") as visitor:
        run = await visitor.open("Reconstruct")                  # a first visit by URL
        await visitor.choose("Digit: where from", "upload")      # a widget changed: its rerun
        run = await visitor.upload("Upload a photo", "3.png", data)

Each call returns when the server says the script (or the fragment the widget lives in) has
finished, with what it drew. What the frontend does and this does too: it sends every widget's
current value with each rerun, reruns only the fragment a widget lives in, asks for an upload URL
and PUTs the file there with the XSRF token, and fetches the images of each run. What it does not:
run the JavaScript of components, or send anything a component would send on its own.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from http.cookies import SimpleCookie

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.Common_pb2 import FileUploaderState, UploadedFileInfo
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.asyncio.client import connect

FINISHED_EARLY_FOR_RERUN = ForwardMsg.ScriptFinishedStatus.Value("FINISHED_EARLY_FOR_RERUN")
WIDGETS = ("button", "checkbox", "file_uploader", "multiselect", "number_input", "radio", "selectbox",
           "slider", "text_input", "text_area", "button_group")


class ServerError(RuntimeError):
    """The page showed an exception or an error box, or the server refused a request."""


@dataclass
class Widget:
    kind: str                # "radio", "file_uploader", ...
    id: str
    label: str
    options: list[str]
    fragment_id: str         # "" outside any fragment


@dataclass
class Run:
    """What one rerun drew: its elements in order of arrival, and when each arrived."""
    started: float
    elements: list = field(default_factory=list)      # (seconds since started, Element)
    finished: float | None = None
    errors: list[str] = field(default_factory=list)
    fetched: dict = field(default_factory=dict)       # image url -> seconds since started, once fetched
    fetches: list = field(default_factory=list)       # the tasks fetching them

    def images(self) -> list[tuple[str, str]]:
        """(caption, url) of every image the run drew."""
        return [(image.caption, image.url) for _, element in self.elements
                if element.WhichOneof("type") == "imgs" for image in element.imgs.imgs]

    def text(self) -> str:
        """The run's words: its markdown, captions, headings and message boxes."""
        out = []
        for _, element in self.elements:
            kind = element.WhichOneof("type")
            if kind in ("markdown", "alert", "heading"):
                out.append(getattr(element, kind).body)
        return "\n".join(out)


class Visitor:
    """One browser session, without the browser."""

    def __init__(self, base: str, timeout: float = 60.0):
        self.base, self.timeout = base.rstrip("/"), timeout
        self.session_id = ""
        self.pages: dict[str, str] = {}          # url path ("Reconstruct") -> page script hash
        self.page_hash = ""
        self.widgets: dict[str, Widget] = {}     # by id, as the last runs drew them
        self.states: dict[str, WidgetState] = {}  # what this visitor has set, sent with every rerun
        self._xsrf = self._cookie = ""
        self._socket = None
        self._reader: asyncio.Task | None = None
        self._run: Run | None = None
        self._done = asyncio.Event()
        self._replies: dict[str, asyncio.Future] = {}
        self._requests = itertools.count(1)
        self.closed_by_server = False

    # --- connection ------------------------------------------------------------------------

    async def __aenter__(self) -> "Visitor":
        await self.connect()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def connect(self) -> None:
        response = await asyncio.to_thread(urllib.request.urlopen, self.base + "/_stcore/health", None, self.timeout)
        cookies = SimpleCookie()
        for header in response.headers.get_all("Set-Cookie") or []:
            cookies.load(header)
        self._cookie = "; ".join(f"{k}={m.value}" for k, m in cookies.items())
        self._xsrf = next((m.value for k, m in cookies.items() if "xsrf" in k), "")
        host = urllib.parse.urlsplit(self.base).netloc
        self._socket = await connect(f"ws://{host}/_stcore/stream", origin=self.base, max_size=None,
                                     subprotocols=["streamlit"] + ([self._xsrf] if self._xsrf else []),
                                     additional_headers={"Cookie": self._cookie} if self._cookie else None,
                                     open_timeout=self.timeout)
        self._reader = asyncio.create_task(self._read())

    async def close(self) -> None:
        if self._socket is not None:
            await self._socket.close()
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):  # noqa: BLE001 - closing: nothing left to report
                pass

    async def _read(self) -> None:
        try:
            async for data in self._socket:
                message = ForwardMsg()
                message.ParseFromString(data)
                self._receive(message)
        finally:
            self.closed_by_server = not self._done.is_set() or self._run is not None
            self._done.set()
            for reply in self._replies.values():
                if not reply.done():
                    reply.set_exception(ConnectionError("the server closed the websocket"))

    def _receive(self, message: ForwardMsg) -> None:
        kind = message.WhichOneof("type")
        if kind == "new_session":
            session = message.new_session
            self.session_id = session.initialize.session_id or self.session_id
            self._pages(session.app_pages, session.page_script_hash)
        elif kind == "navigation":
            self._pages(message.navigation.app_pages, message.navigation.page_script_hash)
        elif kind == "delta" and self._run is not None and message.delta.WhichOneof("type") == "new_element":
            element = message.delta.new_element
            self._run.elements.append((time.perf_counter() - self._run.started, element))
            self._note(element, message.delta.fragment_id)
            if element.WhichOneof("type") == "imgs":  # the browser fetches an image as it arrives
                for image in element.imgs.imgs:
                    if image.url and not image.url.startswith("data:"):
                        self._run.fetches.append(asyncio.create_task(self._fetch(self._run, image.url)))
        elif kind == "file_urls_response":
            reply = self._replies.pop(message.file_urls_response.response_id, None)
            if reply is not None and not reply.done():
                reply.set_result(message.file_urls_response)
        elif kind == "script_finished" and self._run is not None:
            if message.script_finished != FINISHED_EARLY_FOR_RERUN:
                self._run.finished = time.perf_counter() - self._run.started
                self._done.set()

    def _pages(self, pages, current: str) -> None:
        self.pages.update({page.url_pathname or page.page_name: page.page_script_hash for page in pages})
        self.page_hash = current or self.page_hash

    def _note(self, element, fragment_id: str) -> None:
        kind = element.WhichOneof("type")
        if kind == "exception":
            self._run.errors.append(f"exception: {element.exception.type}: {element.exception.message[:200]}")
        elif kind == "alert" and element.alert.format == element.alert.ERROR:
            self._run.errors.append(f"error box: {element.alert.body[:200]}")
        elif kind in WIDGETS:
            widget = getattr(element, kind)
            self.widgets[widget.id] = Widget(kind, widget.id, getattr(widget, "label", ""),
                                             list(getattr(widget, "options", [])), fragment_id)

    # --- what a visitor does ---------------------------------------------------------------

    async def open(self, page: str) -> Run:
        """A first visit to `page` by its URL path, e.g. "Reconstruct" ("" for the main page)."""
        return await self._rerun(page_name=page)

    async def switch(self, page: str) -> Run:
        """A click on the page's sidebar link: widgets of the old page are left behind."""
        self.states, self.widgets = {}, {}
        self.page_hash = self.pages[page]
        return await self._rerun()

    async def rerun(self) -> Run:
        """The page runs again with every widget as it is (as a component's event makes it)."""
        return await self._rerun()

    def find(self, kind: str, label: str = "", key: str = "") -> Widget:
        """The widget of this kind whose label starts with `label` and whose id ends with `key`."""
        for widget in self.widgets.values():
            if widget.kind == kind and widget.label.startswith(label) and widget.id.endswith(key):
                return widget
        raise LookupError(f"no {kind} {label or key!r} on the page")

    async def choose(self, label: str, option: str) -> Run:
        """Pick a radio button's option."""
        widget = self.find("radio", label)
        state = WidgetState(id=widget.id, string_value=option)
        return await self._rerun(state, widget.fragment_id)

    async def type_text(self, label: str, text: str) -> Run:
        widget = self.find("text_input", label)
        return await self._rerun(WidgetState(id=widget.id, string_value=text), widget.fragment_id)

    async def press(self, key: str) -> Run:
        """Press the button whose key is `key`: a trigger, true for this one run only."""
        widget = self.find("button", key=key)
        return await self._rerun(WidgetState(id=widget.id, trigger_value=True), widget.fragment_id, once=True)

    async def upload(self, label: str, name: str, data: bytes, result: str | None = None) -> tuple[Run, float | None]:
        """Hand a file to the uploader: ask for its URL, PUT it there, rerun with it. Returns the run
        and, if `result` is a caption, the seconds until that image had arrived and been fetched."""
        widget = self.find("file_uploader", label)
        start = time.perf_counter()
        request_id = str(next(self._requests))
        reply = asyncio.get_running_loop().create_future()
        self._replies[request_id] = reply
        message = BackMsg()
        message.file_urls_request.request_id = request_id
        message.file_urls_request.file_names.append(name)
        message.file_urls_request.session_id = self.session_id
        await self._socket.send(message.SerializeToString())
        urls = (await asyncio.wait_for(reply, self.timeout)).file_urls[0]
        await asyncio.to_thread(self._put, urls.upload_url, name, data)
        info = UploadedFileInfo(name=name, size=len(data), file_id=urls.file_id, file_urls=urls)
        state = WidgetState(id=widget.id, file_uploader_state_value=FileUploaderState(uploaded_file_info=[info]))
        run = await self._rerun(state, widget.fragment_id, started=start)
        shown = [run.fetched.get(image.url) for _, element in run.elements if element.WhichOneof("type") == "imgs"
                 for image in element.imgs.imgs if image.caption == result]
        return run, (shown[0] if shown else None)

    # --- the wire --------------------------------------------------------------------------

    def _put(self, upload_url: str, name: str, data: bytes) -> None:
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
                f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
        url = upload_url if upload_url.startswith("http") else self.base + upload_url
        request = urllib.request.Request(url, data=body, method="PUT", headers={
            "Content-Type": f"multipart/form-data; boundary={boundary}", "X-Xsrftoken": self._xsrf,
            "Cookie": self._cookie, "Origin": self.base})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            if response.status >= 300:
                raise ServerError(f"the upload was refused: HTTP {response.status}")

    def _get(self, url: str) -> None:
        url = url if url.startswith("http") else self.base + ("" if url.startswith("/") else "/") + url
        with urllib.request.urlopen(url, timeout=self.timeout) as response:
            response.read()

    async def _fetch(self, run: Run, url: str) -> None:
        await asyncio.to_thread(self._get, url)
        run.fetched[url] = time.perf_counter() - run.started

    async def _rerun(self, state: WidgetState | None = None, fragment_id: str = "", page_name: str = "",
                     once: bool = False, started: float | None = None) -> Run:
        if self._socket is None:
            raise ConnectionError("not connected")
        if state is not None:
            self.states[state.id] = state
        message = BackMsg()
        client = message.rerun_script
        client.query_string = ""
        client.page_script_hash = self.page_hash
        client.page_name = page_name
        client.fragment_id = fragment_id
        client.widget_states.widgets.extend(self.states.values())
        if once and state is not None:
            del self.states[state.id]  # a trigger is true for one run
        self._run, self._done = Run(started if started is not None else time.perf_counter()), asyncio.Event()
        run = self._run
        await self._socket.send(message.SerializeToString())
        try:
            await asyncio.wait_for(self._done.wait(), self.timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"the run did not finish within {self.timeout:.0f} s") from None
        finally:
            self._run = None
        if run.finished is None:
            raise ConnectionError("the server closed the websocket during a run")
        await asyncio.gather(*run.fetches)
        if run.errors:
            raise ServerError("; ".join(run.errors))
        return run
