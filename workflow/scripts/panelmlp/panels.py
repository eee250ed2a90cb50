"""Gene panels: which expression columns a model sees."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path

from .errors import PanelMlpError


def read_panel_file(path: str | Path) -> list[str]:
    """Genes of a one-gene-per-line file; blank lines and ``#`` comments ignored."""
    path = Path(path)
    if not path.is_file():
        raise PanelMlpError(f"panel file {path} not found; give a path relative to the working directory")
    genes = []
    for line in path.read_text(encoding="utf-8").splitlines():
        gene = line.split("#", 1)[0].strip()
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
