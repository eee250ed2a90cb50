"""HTML building blocks of the report: escaping, number formats, tables, sections, figure slots, the page.

Figures travel as JSON in ``<script type="application/json">`` blocks and are
drawn by a small script in the page (:data:`SCRIPT`): figures of the always
visible sections when the page has loaded, a panel's figures when the reader
opens its ``<details>``. A report of 200 panels so parses and draws only what
is looked at, and plotly.js is embedded once.
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

SECTIONS = (
    ("verdict", "1. Verdict"),
    ("genesets", "2. Panels and skipped gene sets"),
    ("accounting", "3. Row accounting"),
    ("balance", "4. Class balance (or target values)"),
    ("comparison", "5. Panels against baselines"),
    ("nulls", "6. Null tests: shuffled labels and random gene sets"),
    ("importance", "7. Driver genes"),
    ("details", "8. Panel details"),
    ("external", "9. External validation on new samples"),
    ("provenance", "10. Configuration and versions"),
)
"""Section anchors and headings, in report order."""

CSS = """
:root { --ink: #222; --muted: #666; --line: #ddd; --accent: #1f5fa8; --bad: #b2182b; --good: #1a7837; --warn: #b35806; }
* { box-sizing: border-box; }
body { font-family: Helvetica, Arial, sans-serif; color: var(--ink); margin: 0; line-height: 1.45; background: #fafafa; }
main { max-width: 1200px; margin: 0 auto; padding: 24px 32px 64px; background: white; }
h1 { margin: 0 0 4px; font-size: 28px; }
h2 { margin-top: 40px; padding-top: 12px; border-top: 2px solid var(--line); font-size: 22px; }
h3 { margin-top: 28px; font-size: 18px; color: var(--accent); }
h4 { margin: 18px 0 4px; font-size: 15px; }
p.sub, p.caption, .muted { color: var(--muted); }
p.caption { font-size: 14px; margin: 4px 0 20px; max-width: 900px; }
nav.toc { background: #f3f6fa; border: 1px solid var(--line); padding: 8px 20px; margin: 16px 0; font-size: 14px; }
nav.toc ol { margin: 6px 0; padding-left: 20px; columns: 2; column-gap: 40px; }
nav.toc a { color: var(--accent); text-decoration: none; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.wide { overflow-x: auto; max-width: 100%; }
tr.key td { background: #eef4fb; font-weight: bold; }
table.sortable th { cursor: pointer; user-select: none; white-space: nowrap; }
table.sortable th::after { content: " \\2195"; color: #aaa; }
table.sortable th[aria-sort="ascending"]::after { content: " \\2191"; color: var(--ink); }
table.sortable th[aria-sort="descending"]::after { content: " \\2193"; color: var(--ink); }
table.ranked th, table.ranked td { padding: 4px 6px; }
table.ranked th { white-space: normal; vertical-align: bottom; }
table.ranked tr.best td { background: #e7f2e7; font-weight: bold; }
table.ranked a { color: var(--accent); }
.scroll { max-height: 640px; overflow: auto; border: 1px solid var(--line); margin: 8px 0 16px; }
.scroll table { margin: 0; } .scroll th { position: sticky; top: 0; }
details { margin: 12px 0; } details summary { cursor: pointer; color: var(--accent); font-weight: bold; }
details.panel { border: 1px solid var(--line); border-radius: 4px; padding: 4px 12px; }
details.panel[open] { padding-bottom: 12px; }
details.panel > summary { padding: 4px 0; }
.headline { font-size: 18px; padding: 12px 16px; border-left: 6px solid var(--muted); background: #f6f6f6; margin: 12px 0; }
.verdict { border-left: 6px solid var(--muted); padding: 4px 16px; margin: 14px 0; background: #fcfcfc; }
.verdict h3 { margin: 6px 0; color: var(--ink); }
.verdict ul { margin: 4px 0 8px; padding-left: 20px; }
.level-set-specific { border-color: var(--good); } .level-predictive { border-color: var(--accent); } .level-unconfirmed { border-color: var(--warn); }
.level-none, .level-below { border-color: var(--bad); } .level-unknown { border-color: var(--muted); }
.tag { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: bold; color: white; background: var(--muted); white-space: nowrap; }
.tag.level-set-specific { background: var(--good); } .tag.level-predictive { background: var(--accent); } .tag.level-unconfirmed { background: var(--warn); }
.tag.level-none, .tag.level-below { background: var(--bad); }
.note { background: #fff8e6; border: 1px solid #f0d58c; padding: 8px 12px; margin: 8px 0; font-size: 14px; }
.warning { background: #fdecea; border: 1px solid #e6a5a0; padding: 8px 12px; margin: 8px 0; font-size: 14px; }
pre { background: #f6f6f6; border: 1px solid var(--line); padding: 12px; font-size: 12px; overflow-x: auto; }
.figure { margin: 4px 0; min-height: 40px; }
code { background: #f2f2f2; padding: 0 3px; }
"""

SCRIPT = """
(function () {
  "use strict";
  var CONFIG = {displaylogo: false, responsive: true};
  var template = null;
  function data(id) { return JSON.parse(document.getElementById(id).textContent); }
  function draw(el, fig) {
    fig.layout.template = template;
    return Plotly.newPlot(el, fig.data, fig.layout, CONFIG);
  }
  function panelData(id) {
    var el = document.getElementById(id);
    if (el.getAttribute("type") !== "application/gzip") { return Promise.resolve(JSON.parse(el.textContent)); }
    if (typeof DecompressionStream === "undefined") {
      return Promise.reject(new Error("this browser cannot unpack the figures (no DecompressionStream); open the report in a current Chrome, Edge, Firefox or Safari"));
    }
    var bytes = Uint8Array.from(atob(el.textContent), function (c) { return c.charCodeAt(0); });
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).text().then(JSON.parse);
  }
  function drawPanel(box) {
    if (box.getAttribute("data-drawn")) { return Promise.resolve(); }
    box.setAttribute("data-drawn", "pending");
    return panelData(box.getAttribute("data-figures")).then(function (figs) {
      var done = [];
      box.querySelectorAll("[data-figure]").forEach(function (el) {
        var fig = figs[el.getAttribute("data-figure")];
        if (fig) { done.push(draw(el, fig)); }
      });
      return Promise.all(done);
    }).then(function () { box.setAttribute("data-drawn", "1"); }, function (error) {
      box.setAttribute("data-drawn", "error");
      box.querySelectorAll("[data-figure]").forEach(function (el) { el.textContent = "Figure not drawn: " + error.message; });
    });
  }
  function openFromHash() {
    var id = decodeURIComponent(location.hash.slice(1));
    var box = id && document.getElementById(id);
    if (box && box.tagName === "DETAILS" && !box.open) { box.open = true; box.scrollIntoView(); }
  }
  function sortBy(table, th, index) {
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var numeric = th.classList.contains("num");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    function key(row) {
      var cell = row.cells[index];
      var value = cell.hasAttribute("data-v") ? cell.getAttribute("data-v") : cell.textContent;
      return numeric ? (value === "" ? NaN : Number(value)) : value.toLowerCase();
    }
    rows.sort(function (a, b) {
      var x = key(a), y = key(b);
      if (numeric) {
        if (isNaN(x) || isNaN(y)) { return isNaN(x) - isNaN(y); }
        return ascending ? x - y : y - x;
      }
      return ascending ? x.localeCompare(y) : y.localeCompare(x);
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }
  function init() {
    template = data("plotly-template");
    var done = [];
    document.querySelectorAll("[data-figure-json]").forEach(function (el) {
      done.push(draw(el, data(el.getAttribute("data-figure-json"))));
    });
    document.addEventListener("toggle", function (event) {
      var box = event.target;
      if (box.open && box.hasAttribute && box.hasAttribute("data-figures")) { drawPanel(box); }
    }, true);
    document.querySelectorAll("details[data-figures][open]").forEach(function (box) {
      done.push(drawPanel(box));
    });
    document.querySelectorAll("table.sortable").forEach(function (table) {
      table.querySelectorAll("th").forEach(function (th, index) {
        th.title = "click to sort";
        th.addEventListener("click", function () { sortBy(table, th, index); });
      });
    });
    window.addEventListener("hashchange", openFromHash);
    document.addEventListener("click", function (event) {
      var link = event.target.closest ? event.target.closest("a[href^='#']") : null;
      var box = link && document.getElementById(decodeURIComponent(link.getAttribute("href").slice(1)));
      if (box && box.tagName === "DETAILS") { box.open = true; }
    });
    openFromHash();
    Promise.all(done).then(function () { window.panelmlpReady = performance.now(); });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); } else { init(); }
})();
"""
"""Draws figures (page figures at load, a panel's when opened), sorts tables, opens a panel linked to.

A panel's figures are plain JSON, or gzip-compressed and base64-encoded
(:func:`packed_block`), unpacked with the browser's DecompressionStream. A
drawn panel gets ``data-drawn="1"``; ``window.panelmlpReady`` is set once
the figures visible at load are drawn. The browser test and the load-time
measurement wait for these.
"""


class Html(str):
    """Text that is already HTML: :func:`cell` and :func:`html_table` do not escape it again."""

    __slots__ = ()


def esc(value: object) -> str:
    """HTML-escaped text of any value."""
    return html.escape(str(value))


def cell(value: object) -> str:
    """A table cell's content: :class:`Html` as is, anything else escaped."""
    return value if isinstance(value, Html) else esc(value)


def fmt(value: object, digits: int = 3) -> str:
    """A number with ``digits`` decimals; NaN and None as an en dash."""
    if value is None:
        return "–"
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return esc(value)
    if math.isnan(number):
        return "–"
    text = f"{number:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def fmt_p(value: object) -> str:
    """A p- or q-value with three significant digits; NaN as an en dash."""
    number = float(value) if value is not None else math.nan  # type: ignore[arg-type]
    return "–" if math.isnan(number) else f"{number:.3g}"


def fmt_ci(row: Mapping) -> str:
    """'mean [low, high]' of a summary row."""
    return f"{fmt(row['cv_mean'])} [{fmt(row['ci_low'])}, {fmt(row['ci_high'])}]"


def caption(text: str) -> str:
    """A caption paragraph (``text`` is trusted HTML)."""
    return f'<p class="caption">{text}</p>'


def slug(text: str, limit: int = 60) -> str:
    """Letters and digits of ``text`` (others as '-'), for element ids."""
    out = "".join(ch if ch.isascii() and ch.isalnum() else "-" for ch in text).strip("-")
    return out[:limit] or "x"


@dataclass
class Ids:
    """Unique, deterministic element ids made from names."""

    used: set[str] = field(default_factory=set)

    def make(self, prefix: str, name: str) -> str:
        """``prefix-slug(name)``, with a counter appended when taken."""
        base = f"{prefix}-{slug(name)}"
        out, n = base, 1
        while out in self.used:
            n += 1
            out = f"{base}-{n}"
        self.used.add(out)
        return out


def html_table(
    columns: Sequence[str],
    rows: Iterable[Sequence[object]],
    numeric: Sequence[str] = (),
    key_rows: Sequence[bool] | None = None,
) -> str:
    """A plain HTML table; cells are escaped unless :class:`Html`, ``numeric`` columns right-aligned."""
    is_num = [c in numeric for c in columns]
    head = "".join(
        f'<th class="num">{esc(c)}</th>' if n else f"<th>{esc(c)}</th>" for c, n in zip(columns, is_num, strict=True)
    )
    body = []
    for i, row in enumerate(rows):
        cells = "".join(
            f'<td class="num">{cell(v)}</td>' if n else f"<td>{cell(v)}</td>" for v, n in zip(row, is_num, strict=True)
        )
        key = ' class="key"' if key_rows is not None and key_rows[i] else ""
        body.append(f"<tr{key}>{cells}</tr>")
    return f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def collapsed(summary: str, body: str, open_: bool = False) -> str:
    """A ``<details>`` block (``summary`` and ``body`` are trusted HTML)."""
    return f"<details{' open' if open_ else ''}><summary>{summary}</summary>{body}</details>"


def section(anchor: str, body: str) -> str:
    """A report section with its numbered heading from :data:`SECTIONS`."""
    title = dict(SECTIONS)[anchor]
    return f'<section id="{anchor}"><h2>{esc(title)}</h2>\n{body}\n</section>'


def to_json(value: object) -> str:
    """Compact JSON safe inside a ``<script>`` element (no ``</script>`` or ``<!--`` can appear)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def json_block(element_id: str, value: object) -> str:
    """A ``<script type="application/json">`` element holding ``value``."""
    return f'<script type="application/json" id="{element_id}">{to_json(value)}</script>'


PACK_LEVEL = 5
"""gzip level of a panel's packed figures: 50 panels' figures (2.9 MB of JSON) take 65 ms at 5, 136 ms at 6, for 557
against 550 KB."""


def packed_block(element_id: str, value: object) -> str:
    """A ``<script type="application/gzip">`` element holding ``value`` as gzip-compressed, base64-encoded JSON.

    A panel's figures are mostly numbers, which gzip shrinks about fourfold:
    200 panels then add under 3 MB to plotly.js's 5 instead of 10. Level 5
    (:data:`PACK_LEVEL`) packs them in half the time of zlib's default 6,
    1% larger. The compressed bytes carry no time stamp, so the page stays
    deterministic.
    """
    packed = gzip.compress(to_json(value).encode("utf-8"), compresslevel=PACK_LEVEL, mtime=0)
    return f'<script type="application/gzip" id="{element_id}">{base64.b64encode(packed).decode("ascii")}</script>'


def unpack_block(text: str) -> object:
    """The value of a :func:`packed_block` or :func:`json_block` element's text (for tests and tools)."""
    text = text.strip()
    if text.startswith(("{", "[")):
        return json.loads(text)
    return json.loads(gzip.decompress(base64.b64decode(text)).decode("utf-8"))


@dataclass
class Figures:
    """Slots for the page's always visible figures: a div and its JSON, drawn when the page loads."""

    ids: Ids = field(default_factory=Ids)
    count: int = 0

    def html(self, fig: Mapping, key: str) -> str:
        """The figure's div (id ``fig-<key>``, class ``plotly-graph-div`` as plotly's own HTML has) and its JSON block."""
        div_id = self.ids.make("fig", key)
        self.count += 1
        return (
            f'<div class="plotly-graph-div figure" id="{div_id}" data-figure-json="{div_id}-json"></div>'
            + json_block(f"{div_id}-json", fig)
        )


def table_of_contents(links: Mapping[str, Sequence[tuple[str, str]]]) -> str:
    """The navigation list of the sections; ``links`` adds (anchor, label) links after a section's entry."""
    items = []
    for anchor, title in SECTIONS:
        inner = " · ".join(f'<a href="#{a}">{esc(label)}</a>' for a, label in links.get(anchor, ()))
        items.append(f'<li><a href="#{anchor}">{esc(title.split(". ", 1)[1])}</a>{" — " + inner if inner else ""}</li>')
    return f'<nav class="toc"><b>Contents</b><ol>{"".join(items)}</ol></nav>'


def page(title: str, subtitle: str, toc: str, sections: Sequence[str], plotly_js: str, template: Mapping) -> str:
    """The whole HTML document: plotly.js once in the head, the figure template once, the drawing script last."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n"
        f'<script type="text/javascript">{plotly_js}</script>\n'
        "</head>\n<body>\n<main>\n"
        f'<h1>{esc(title)}</h1>\n<p class="sub">{subtitle}</p>\n{toc}\n'
        + "\n".join(sections)
        + "\n</main>\n"
        + json_block("plotly-template", template)
        + f"\n<script>{SCRIPT}</script>\n</body>\n</html>\n"
    )
