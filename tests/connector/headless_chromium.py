"""Open a local HTML file in headless Chromium and say what went wrong: console errors, uncaught
exceptions, failed loads and every network request the page made, plus the size of each <svg> and a
full-page screenshot.

It speaks the Chrome DevTools Protocol over --remote-debugging-pipe (file descriptors 3 and 4,
messages separated by NUL bytes): no port to pick, no websocket client to install, and events are
received as they happen, so nothing printed to the console before the load is missed.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"  # Debian's package

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--mute-audio",
    "--window-size=1280,900",
    "--remote-debugging-pipe",
)

# Sizes of every <svg>, the number of marks in it and its accessible name; and any script element.
_INSPECT = """JSON.stringify({
  svgs: [...document.querySelectorAll("svg")].map(s => {
    const r = s.getBoundingClientRect();
    const title = s.querySelector("title");
    return {width: r.width, height: r.height, marks: s.querySelectorAll("rect, path, circle, line").length,
            role: s.getAttribute("role"), title: title ? title.textContent : null};
  }),
  scripts: document.querySelectorAll("script").length,
  title: document.title,
  text: document.body ? document.body.innerText : "",
})"""


@dataclass
class PageCheck:
    """What one page load showed."""

    errors: list[str] = field(default_factory=list)  # console errors, exceptions, failed loads
    requests: list[str] = field(default_factory=list)  # every URL fetched besides the page itself
    svgs: list[dict[str, Any]] = field(default_factory=list)
    scripts: int = 0
    title: str = ""
    text: str = ""  # what a reader sees (innerText)
    screenshot: bytes = b""

    @property
    def problems(self) -> list[str]:
        return self.errors + [f"network request: {url}" for url in self.requests]


class _Pipe:
    """The DevTools protocol over Chromium's debugging pipe: commands out, replies and events in."""

    def __init__(self, to_browser: int, from_browser: int) -> None:
        self._out, self._in = to_browser, from_browser
        self.deadline = 0.0  # time.monotonic() by which the next answer must have come
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._receive()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def wait_for(self, method: str) -> None:
        """Until an event `method` has arrived (it may already have)."""
        seen = 0
        while True:
            if any(e.get("method") == method for e in self.events[seen:]):
                return
            seen = len(self.events)
            self._receive()

    def settle(self, quiet: float = 0.3) -> None:
        """Read events until none arrived for `quiet` seconds: late loads and console messages."""
        while self._readable(quiet):
            self._receive()

    def _readable(self, timeout: float) -> bool:
        if b"\0" in self._buffer:
            return True
        return bool(select.select([self._in], [], [], min(timeout, self._left()))[0])

    def _left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("headless Chromium did not answer in time")
        return left

    def _receive(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            if not select.select([self._in], [], [], self._left())[0]:
                continue
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise RuntimeError("headless Chromium closed its debugging pipe (did it crash?)")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message = json.loads(raw)
        if "method" in message:
            self.events.append(message)
        return message


def _high_fd(fd: int) -> int:
    """A copy of `fd` numbered 10 or more, so placing the pipes at 3 and 4 cannot overwrite it."""
    copy = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return copy


def _problems(events: list[dict[str, Any]], page_url: str, session: str) -> tuple[list[str], list[str]]:
    errors, requests = [], []
    urls: dict[str, str] = {}  # request id -> URL, to name a failed load
    for event in events:
        if event.get("sessionId") != session:
            continue
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            texts = [str(a.get("value", a.get("description", ""))) for a in params.get("args", [])]
            errors.append(f"console.{params['type']}: {' '.join(texts)}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            text = details.get("exception", {}).get("description") or details.get("text", "")
            errors.append(f"uncaught exception: {text}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            errors.append(f"{entry.get('source', 'log')} error: {entry.get('text', '')}")
        elif method == "Network.loadingFailed":
            reason = params.get("blockedReason") or params.get("errorText", "")
            errors.append(f"load failed ({reason}): {urls.get(params.get('requestId', ''), '?')}")
        elif method == "Network.requestWillBeSent":
            url = params.get("request", {}).get("url", "")
            urls[params.get("requestId", "")] = url
            if url != page_url and not url.startswith("data:"):
                requests.append(url)
    return errors, requests


class Browser:
    """One headless Chromium with a new empty profile; each page is checked in its own new tab, and
    only that tab's events count for it."""

    def __init__(self, timeout: float = 60.0) -> None:
        self._timeout = timeout
        self._profile = tempfile.mkdtemp(prefix="sla-chromium-")
        to_child, self._to_browser = os.pipe()
        self._from_browser, from_child = os.pipe()
        to_child, from_child = _high_fd(to_child), _high_fd(from_child)

        def place_pipes() -> None:  # in the child, before exec: Chromium reads fd 3 and writes fd 4
            os.dup2(to_child, 3)
            os.dup2(from_child, 4)

        self._process = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={self._profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(3, 4),
            preexec_fn=place_pipes,
        )
        os.close(to_child)
        os.close(from_child)
        self._pipe = _Pipe(self._to_browser, self._from_browser)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def check(self, path: Path) -> PageCheck:
        """Load `path` (file://) in a new tab and report what happened."""
        pipe = self._pipe
        pipe.deadline = time.monotonic() + self._timeout
        pipe.events.clear()
        target = pipe.call("Target.createTarget", url="about:blank")["targetId"]
        session = pipe.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        try:
            for domain in ("Runtime", "Log", "Network", "Page"):
                pipe.call(f"{domain}.enable", session)
            page_url = path.resolve().as_uri()
            pipe.call("Page.navigate", session, url=page_url)
            pipe.wait_for("Page.loadEventFired")
            pipe.settle()
            found = json.loads(pipe.call("Runtime.evaluate", session, expression=_INSPECT)["result"]["value"])
            size = pipe.call("Page.getLayoutMetrics", session)["cssContentSize"]
            shot = pipe.call(
                "Page.captureScreenshot",
                session,
                format="png",
                captureBeyondViewport=True,
                clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
            )
            pipe.settle(0.1)
        finally:
            pipe.call("Target.closeTarget", targetId=target)
        errors, requests = _problems(pipe.events, page_url, session)
        return PageCheck(
            errors=errors,
            requests=requests,
            svgs=found["svgs"],
            scripts=found["scripts"],
            title=found["title"],
            text=found["text"],
            screenshot=base64.b64decode(shot["data"]),
        )

    def close(self) -> None:
        try:
            self._pipe.deadline = time.monotonic() + 5
            self._pipe.call("Browser.close")
        except (OSError, RuntimeError, TimeoutError):
            pass
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
        shutil.rmtree(self._profile, ignore_errors=True)


def check_page(path: Path, timeout: float = 60.0) -> PageCheck:
    """Load `path` in a fresh headless Chromium and report."""
    with Browser(timeout) as browser:
        return browser.check(path)
