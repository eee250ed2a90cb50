"""Headless Chromium for the tests and benchmarks, driven over the DevTools protocol.

The browser speaks JSON messages ending in a NUL byte on file descriptors 3 and
4 (``--remote-debugging-pipe``), so no websocket client or automation package
is needed. :func:`load_times` measures how long a report takes to load and
draw; ``python tests/chromium.py report.html [...]`` prints it.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CHROMIUM = (
    os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--remote-debugging-pipe",
)

READY = """
new Promise((resolve, reject) => {
  const start = Date.now();
  (function poll() {
    if (window.panelmlpReady !== undefined) {
      const nav = performance.getEntriesByType("navigation")[0];
      resolve({ready: window.panelmlpReady, load: nav.loadEventEnd, dom: nav.domContentLoadedEventEnd});
    } else if (Date.now() - start > %d) { reject(new Error("report never became ready")); }
    else { setTimeout(poll, 5); }
  })();
})
"""
"""Waits for the page's figures visible at load; resolves to the navigation timings in ms."""


class Chromium:
    """A headless Chromium spoken to over the DevTools pipe; one page per :meth:`open`."""

    def __init__(self, timeout: float = 20.0) -> None:
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="panelmlp-chromium-")
        to_browser, self._write = os.pipe()
        self._read, from_browser = os.pipe()
        high_in, high_out = _dup_high(to_browser), _dup_high(from_browser)

        def wire() -> None:  # in the child: the browser reads commands on 3 and writes replies on 4
            os.dup2(high_in, 3)
            os.dup2(high_out, 4)

        self.process = subprocess.Popen(
            [CHROMIUM, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            preexec_fn=wire,
            close_fds=False,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for fd in (to_browser, from_browser, high_in, high_out):
            os.close(fd)
        self._buffer = b""
        self._next = 0
        self.events: list[dict] = []

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the browser and remove its profile."""
        with contextlib.suppress(OSError, TimeoutError, RuntimeError):
            self.send("Browser.close", timeout=5)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for fd in (self._read, self._write):
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self.profile, ignore_errors=True)

    def _message(self, deadline: float) -> dict:
        """The next message from the browser."""
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._read], [], [], left)[0]:
                raise TimeoutError("no answer from Chromium")
            chunk = os.read(self._read, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def send(
        self, method: str, params: dict | None = None, session: str | None = None, timeout: float | None = None
    ) -> dict:
        """Send a command and return its result (events that arrive meanwhile are kept)."""
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            reply = self._message(deadline)
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def open(self, url: str, width: int = 1280, height: int = 900) -> str:
        """A new page showing ``url``, after its load event; returns the page's session id."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.send("Page.enable", session=session)
        metrics = {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}
        self.send("Emulation.setDeviceMetricsOverride", metrics, session=session)
        self.events.clear()
        self.send("Page.navigate", {"url": url}, session=session)
        deadline = time.monotonic() + self.timeout
        while not any(e.get("method") == "Page.loadEventFired" and e.get("sessionId") == session for e in self.events):
            self.events.append(self._message(deadline))
        return session

    def evaluate(self, session: str, expression: str, timeout: float | None = None) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        params = {"expression": expression, "awaitPromise": True, "returnByValue": True}
        result = self.send("Runtime.evaluate", params, session=session, timeout=timeout)
        if "exceptionDetails" in result:
            raise RuntimeError(f"JavaScript failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def ready(self, session: str) -> dict:
        """Wait until the report's figures visible at load are drawn; its timings in ms from navigation start."""
        return self.evaluate(session, READY % int(self.timeout * 1000))

    def screenshot(self, session: str, path: Path, height: int | None = None) -> None:
        """A PNG of the page (of ``height`` pixels, or the viewport)."""
        params: dict[str, Any] = {"format": "png"}
        if height:
            params["clip"] = {"x": 0, "y": 0, "width": 1280, "height": height, "scale": 1}
            params["captureBeyondViewport"] = True
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", params, session=session)["data"]))


def _dup_high(fd: int) -> int:
    """A copy of ``fd`` numbered above 4 and closed on exec, so wiring it onto 3 and 4 cannot clobber its twin."""
    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)


OPEN_ONE = """
(async () => {
  const box = Array.from(document.querySelectorAll("details.panel")).find((b) => !b.open);
  if (!box) { return null; }
  const start = performance.now();
  box.open = true;
  while (box.getAttribute("data-drawn") !== "1") { await new Promise((r) => setTimeout(r, 1)); }
  return performance.now() - start;
})()
"""
"""Opens the first closed panel and returns the ms until its figures are drawn (null when all are open)."""


def load_times(path: Path, runs: int = 5) -> dict[str, float | None]:
    """Median times over ``runs`` fresh browsers, in ms: load event and figures drawn (from navigation start), opening a panel."""
    ready, load, opened = [], [], []
    for _ in range(runs):
        with Chromium(timeout=60) as browser:
            session = browser.open(path.resolve().as_uri())
            timings = browser.ready(session)
            opened.append(browser.evaluate(session, OPEN_ONE))
        ready.append(timings["ready"])
        load.append(timings["load"])
    open_ms = statistics.median(opened) if None not in opened else None
    return {"ready_ms": statistics.median(ready), "load_ms": statistics.median(load), "open_ms": open_ms}


if __name__ == "__main__":
    for name in sys.argv[1:]:
        times = load_times(Path(name))
        size = Path(name).stat().st_size / 1e6
        opened = f", opening a closed panel {times['open_ms']:.0f} ms" if times["open_ms"] is not None else ""
        print(
            f"{name}: {size:.2f} MB, load event {times['load_ms']:.0f} ms, figures at load drawn {times['ready_ms']:.0f} ms{opened}"
        )
