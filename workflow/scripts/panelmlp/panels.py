"""Gene panels: which expression columns a model sees."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from pathlib import Path

from .errors import PanelMlpError


def read_panel_file(path: str | Path) -> list[str]:
    """Genes of a one-gene-per-line file; blank lines and ``#`` comments ignored.

    UTF-8, with or without a byte-order mark, any line ends. A missing file, a
    folder, a byte that is not UTF-8, a line with several names and a file
    without genes raise :class:`PanelMlpError` naming the file.
    """
    path = Path(path)
    if path.is_dir():
        raise PanelMlpError(f"panel file {path} is a folder; give the path of a one-gene-per-line file")
    if not path.is_file():
        listed = re.search(r"[,;]", path.name) is not None
        hint = " (to list genes instead, write a YAML list: [GFAP, SOX2])" if listed else ""
        raise PanelMlpError(f"panel file {path} not found; give a path relative to the working directory{hint}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise PanelMlpError(
            f"panel file {path} line {line}: byte {exc.object[exc.start]:#04x} is not UTF-8; save the file as UTF-8"
        ) from None
    genes = []
    for number, line in enumerate(text.splitlines(), start=1):
        gene = line.split("#", 1)[0].strip()
        if re.search(r"[,;\t]", gene):
            raise PanelMlpError(
                f"panel file {path} line {number}: {gene!r} holds several names (separated by a comma, semicolon "
                "or tab); write one gene per line"
            )
        if gene:
            genes.append(gene)
    if not genes:
        raise PanelMlpError(f"panel file {path} lists no gene; write one gene per line")
    return genes


def panel_genes(name: str, spec: object, available: Sequence[str] | None = None) -> list[str]:
    """The genes of one panel, in the panel's order.

    ``spec`` is a list of genes, the word ``all`` (every expression column of the
    cohort, which needs ``available``), or a path to a one-gene-per-line file.
    """
    if spec == "all":
        if available is None:
            raise PanelMlpError(f"panel {name}: 'all' needs the cohort's gene list")
        return list(available)
    if isinstance(spec, str):
        genes = read_panel_file(spec)
    elif isinstance(spec, list) and spec and all(isinstance(g, str) for g in spec):
        genes = list(spec)
    else:
        raise PanelMlpError(f"config panels.{name}: give a list of genes, 'all', or a path to a gene file")
    repeated = sorted({g for g in genes if genes.count(g) > 1})
    if repeated:
        raise PanelMlpError(f"panel {name}: genes listed twice: {repeated}; list each gene once")
    return genes


def check_panel(name: str, genes: Sequence[str], available: Sequence[str]) -> None:
    """Stop with the missing genes and the closest existing names, if any are missing."""
    known = set(available)
    missing = [g for g in genes if g not in known]
    if not missing:
        return
    hints = []
    upper = {a.upper(): a for a in available}
    for gene in missing:
        close = difflib.get_close_matches(gene, list(available), n=3, cutoff=0.6)
        if gene.upper() in upper:
            close = [upper[gene.upper()]] + [c for c in close if c != upper[gene.upper()]]
        hints.append(f"{gene} (closest: {', '.join(close) if close else 'none'})")
    raise PanelMlpError(
        f"panel {name}: {len(missing)} gene(s) not in the cohort: {'; '.join(hints)}; "
        "fix the panel or the genes setting"
    )
