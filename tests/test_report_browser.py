"""The report in headless Chromium: it loads, the ranked table is there, an opened panel draws its figures.

Chromium is driven through the DevTools protocol over ``--remote-debugging-pipe``
(JSON messages ending in a NUL byte on file descriptors 3 and 4), so no
websocket client or browser-automation package is needed. The tests skip when
Chromium is absent.

Run as a script to measure load times of reports (median of fresh browsers):
``python tests/test_report_browser.py report.html [other.html ...]``.
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

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

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


needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not present")

OPEN_AND_DRAW = """
(async () => {
  const boxes = Array.from(document.querySelectorAll("details.panel")).slice(0, %d);
  boxes.forEach((box) => { box.open = true; });
  const start = Date.now();
  while (boxes.some((box) => box.getAttribute("data-drawn") !== "1") && Date.now() - start < 15000) {
    if (boxes.some((box) => box.getAttribute("data-drawn") === "error")) { break; }
    await new Promise((r) => setTimeout(r, 20));
  }
  return boxes.map((box) => ({
    id: box.id,
    drawn: box.getAttribute("data-drawn"),
    slots: box.querySelectorAll("[data-figure]").length,
    plots: Array.from(box.querySelectorAll("[data-figure]")).filter((el) => el.querySelector(".main-svg")).length,
  }));
})()
"""


@pytest.fixture(scope="module")
def many_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A report of 60 panels of a collection (skipped sets, nulls) built from a generated run."""
    from panelmlp.report import build_report
    from test_report_data import Skipped, make_run, many_specs

    root = tmp_path_factory.mktemp("many")
    specs = many_specs(60, strong=2)
    skipped = [Skipped("TINY", "sets", 3, 3, "3 genes found, below min_size 5")]
    inputs = make_run(
        root / "results", specs, epochs=60, permutations=20, random_panels=20, skipped=skipped, per_unit=25
    )
    out = root / "report.html"
    build_report(inputs, {"evaluate": {"permutations": 20, "random_panels": 20}}, str(out))
    return out


@needs_chromium
def test_many_panel_report_loads_and_draws_opened_panels(many_report: Path) -> None:
    with Chromium(timeout=30) as browser:
        session = browser.open(many_report.resolve().as_uri())
        browser.ready(session)
        rows = browser.evaluate(session, "document.querySelectorAll('table.ranked tbody tr').length")
        assert rows == 60
        best = browser.evaluate(session, "document.querySelector('table.ranked tbody tr').className")
        assert best == "best"
        drawn_before = browser.evaluate(
            session, "document.querySelectorAll('details.panel [data-figure].js-plotly-plot').length"
        )
        assert drawn_before == 0, "closed panels must not be drawn at load"
        panels = browser.evaluate(session, OPEN_AND_DRAW % 3)
        assert [p["drawn"] for p in panels] == ["1", "1", "1"], panels
        for p in panels:
            assert p["slots"] >= 5 and p["plots"] == p["slots"], p
        others = browser.evaluate(
            session, "document.querySelectorAll('details.panel:not([open]) .js-plotly-plot').length"
        )
        assert others == 0


CLICK_LAST_ROW = """
(() => {
  const link = Array.from(document.querySelectorAll("table.ranked tbody tr a")).pop();
  link.click();
  return link.getAttribute("href").slice(1);
})()
"""
"""Clicks the last panel's link in the ranked table; returns the id it points to."""

WAIT_DRAWN = """
(async () => {
  const box = document.getElementById("%s");
  const start = Date.now();
  while (box.getAttribute("data-drawn") !== "1" && Date.now() - start < 15000) { await new Promise((r) => setTimeout(r, 20)); }
  return [box.open, box.getAttribute("data-drawn")];
})()
"""


@needs_chromium
def test_sorting_and_links(many_report: Path) -> None:
    sort_by_panel = """
    (() => {
      const table = document.querySelector("table.ranked");
      const th = Array.from(table.tHead.rows[0].cells).find((c) => c.textContent === "panel");
      th.click();
      const names = Array.from(table.tBodies[0].rows).map((r) => r.cells[th.cellIndex].textContent);
      th.click();
      const reversed = Array.from(table.tBodies[0].rows).map((r) => r.cells[th.cellIndex].textContent);
      return {names, reversed, sort: th.getAttribute("aria-sort")};
    })()
    """
    with Chromium(timeout=30) as browser:
        session = browser.open(many_report.resolve().as_uri())
        browser.ready(session)
        result = browser.evaluate(session, sort_by_panel)
        assert result["names"] == sorted(result["names"], key=str.lower)
        assert result["reversed"] == list(reversed(result["names"]))
        assert result["sort"] == "descending"
        target = browser.evaluate(session, CLICK_LAST_ROW)
        state = browser.evaluate(session, WAIT_DRAWN % target)
        assert state == [True, "1"], state
        assert browser.evaluate(session, "location.hash") == f"#{target}"


if __name__ == "__main__":
    for name in sys.argv[1:]:
        times = load_times(Path(name))
        size = Path(name).stat().st_size / 1e6
        opened = f", opening a closed panel {times['open_ms']:.0f} ms" if times["open_ms"] is not None else ""
        print(
            f"{name}: {size:.2f} MB, load event {times['load_ms']:.0f} ms, figures at load drawn {times['ready_ms']:.0f} ms{opened}"
        )
