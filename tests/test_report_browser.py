"""The report in headless Chromium: it loads, the ranked table is there, an opened panel draws its figures.

The browser is driven by :mod:`chromium` (DevTools over a pipe); the tests
skip when Chromium is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from chromium import CHROMIUM, Chromium

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
