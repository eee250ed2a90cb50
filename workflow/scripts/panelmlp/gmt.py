"""Gene-set collections in GMT format, resolved against a cohort's genes.

GMT is the gene-set format of MSigDB and GSEA: one set per line, with the set's
name, a description and then its genes, all separated by tabs. Every set of a
collection can become a panel, so a collection is read once (:func:`read_gmt`),
then each set is checked against the cohort's expression columns
(:func:`resolve_sets`), which gives one table row per set saying whether it is
kept and why not.

A collection is treated differently from a named panel in one way: genes missing
from the cohort are dropped, not an error. A curated collection lists genes of
the whole genome and a cohort measures only some of them, so a missing gene is
the normal case; the ``coverage`` column and the ``min_coverage`` filter keep a
set that lost too many of its genes from passing as the set it is named after.
Matching stays exact (case-sensitive), as for named panels, because gene symbols
of different species differ only by case (human ``GFAP``, mouse ``Gfap``).

Set names become file and directory names, but GO-style or hand-written names
(``GO:0006915``, ``my set``, ``a/b``) are unsafe there; :func:`panel_dir_names`
maps a collection's names to unique safe names.
"""

from __future__ import annotations

import codecs
import gzip
import hashlib
import numbers
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import PanelMlpError

if TYPE_CHECKING:  # pandas loads where a table is built: the Snakefile imports this module
    import pandas as pd

SAFE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
"""Characters a panel directory name may contain."""

MAX_NAME_CHARS = 100
"""Longest safe name before the hash suffix; keeps paths well under the usual 255-byte file-name limit."""

HASH_CHARS = 8
"""Hex digits of the SHA-1 suffix that tells colliding names apart."""

MAX_CASE_HINTS = 5
"""Case-difference hints spelled out per set; the rest are counted, so a mouse collection stays readable."""

TABLE_COLUMNS = [
    "name",
    "panel",
    "description",
    "line",
    "n_listed",
    "n_duplicates",
    "n_found",
    "coverage",
    "genes_found",
    "genes_missing",
    "status",
    "reason",
    "hint",
]
"""Columns of :func:`resolve_sets`' table, in order."""


@dataclass(frozen=True)
class GeneSet:
    """One line of a GMT file.

    ``genes`` holds each listed gene once, in file order (the first occurrence
    wins); ``n_duplicates`` counts the repeats that were dropped, so a sloppy
    file is visible in the table without stopping the run. ``line`` is the
    1-based line number in the file, for messages and the table.
    """

    name: str
    description: str
    genes: list[str]
    n_duplicates: int
    line: int

    @property
    def n_listed(self) -> int:
        """Number of distinct genes the set lists."""
        return len(self.genes)


def _read_text(path: Path) -> str:
    """The file's text: gunzipped when the name ends in ``.gz``, UTF-8 with an optional BOM."""
    compressed = path.suffix.lower() == ".gz"
    try:
        if compressed:
            with gzip.open(path, "rb") as handle:
                data = handle.read()
        else:
            data = path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        fix = "give an intact .gz file, or drop the .gz suffix if it is plain text" if compressed else "check the file"
        raise PanelMlpError(f"{path}: cannot read ({' '.join(str(exc).split())}); fix: {fix}") from None
    if not compressed and data[:2] == b"\x1f\x8b":
        raise PanelMlpError(f"{path}: the file is gzip-compressed but not named .gz; fix: add the .gz suffix")
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise PanelMlpError(f"{path}:{line}: not UTF-8 text; fix: save the file as UTF-8") from None


def _parse_line(path: Path, number: int, text: str) -> GeneSet:
    """One GMT line as a gene set, or an error that names the line."""
    fields = [f.strip() for f in text.split("\t")]
    if len(fields) < 2:
        spaces = " (it has spaces but no tab)" if " " in text.strip() else ""
        raise PanelMlpError(
            f"{path}:{number}: only 1 tab-separated field{spaces}, GMT needs name, description and genes "
            "separated by tabs; fix: separate the fields with tabs, not spaces"
        )
    name, description, gene_fields = fields[0], fields[1], [g for g in fields[2:] if g]
    if not name:
        raise PanelMlpError(
            f"{path}:{number}: empty set name; fix: put the set's name in the first tab-separated field"
        )
    if not gene_fields:
        raise PanelMlpError(
            f"{path}:{number}: set {name} lists no genes; fix: add its genes after the description, "
            "separated by tabs (not spaces), or delete the line"
        )
    for gene in gene_fields:
        if any(c.isspace() for c in gene):
            raise PanelMlpError(
                f"{path}:{number}: set {name}: gene field {gene!r} contains whitespace; "
                "fix: separate genes with tabs, not spaces"
            )
    genes = list(dict.fromkeys(gene_fields))
    return GeneSet(name, description, genes, len(gene_fields) - len(genes), number)


def read_gmt(path: str | Path) -> list[GeneSet]:
    """The gene sets of a GMT file, in file order.

    Accepted beyond strict GMT, because real files have them: blank lines and
    lines starting with ``#`` (skipped; note that GSEA itself does not accept
    ``#`` comments), CRLF or CR line ends, a UTF-8 byte-order mark, whitespace
    around fields, empty fields such as trailing tabs (ignored), a gene listed
    twice in a set (kept once, counted in ``n_duplicates``), and gzip compression
    for names ending in ``.gz``.

    Errors, each a one-line :class:`PanelMlpError` naming ``file:line``:

    * a line without a tab: the usual cause is a file written with spaces, which
      would otherwise be read as one set with no genes or one odd gene;
    * a set with no genes: such a line is malformed GMT, and skipping it would
      quietly drop a set the user expects to see as a panel (a set whose genes
      are all absent from the cohort is different: it is kept in the table and
      marked ``skipped`` by :func:`resolve_sets`);
    * a gene field containing whitespace (``GFAP SOX2`` between two tabs): no
      gene symbol or identifier contains a space, so it is a separator mistake;
    * a set name used twice: the message names both lines, since which one the
      user meant is theirs to decide;
    * a missing file, or a file with no sets.
    """
    path = Path(path)
    if path.is_dir():
        raise PanelMlpError(f"gmt file {path} is a folder; fix: give the path of the GMT file itself")
    if not path.is_file():
        raise PanelMlpError(f"gmt file {path} not found; fix: give a path relative to the working directory")
    text = _read_text(path)
    sets: list[GeneSet] = []
    first_line: dict[str, int] = {}
    for number, line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        gene_set = _parse_line(path, number, line)
        if gene_set.name in first_line:
            raise PanelMlpError(
                f"{path}:{number}: set {gene_set.name} already defined on line {first_line[gene_set.name]}; "
                "fix: rename or remove one of the two lines"
            )
        first_line[gene_set.name] = number
        sets.append(gene_set)
    if not sets:
        raise PanelMlpError(f"{path}: no gene sets (only blank or # lines); fix: give a GMT file with one set per line")
    return sets


def _check_filters(min_size: int, max_size: int | None, min_coverage: float) -> None:
    """Stop on filter settings that cannot be meant."""
    if isinstance(min_size, bool) or not isinstance(min_size, numbers.Integral) or min_size < 1:
        raise PanelMlpError(f"gene-set min_size must be an integer >= 1, got {min_size!r}; fix the setting")
    if max_size is not None and (
        isinstance(max_size, bool) or not isinstance(max_size, numbers.Integral) or max_size < min_size
    ):
        raise PanelMlpError(
            f"gene-set max_size must be empty or an integer >= min_size {min_size}, got {max_size!r}; fix the setting"
        )
    if isinstance(min_coverage, bool) or not isinstance(min_coverage, numbers.Real) or not 0 <= min_coverage <= 1:
        raise PanelMlpError(
            f"gene-set min_coverage must be a number from 0 to 1, got {min_coverage!r}; fix the setting"
        )


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _fraction(value: float) -> str:
    """Two decimals, as in the reasons' examples, unless that would hide the value (0.755 is not 0.76)."""
    return f"{value:.2f}" if round(value, 2) == value else f"{value:g}"


def _failures(
    n_found: int, n_listed: int, min_size: int, max_size: int | None, min_coverage: float
) -> tuple[float, list[str]]:
    """A set's coverage and every filter it fails (:func:`resolve_sets`' reasons; none: the set is kept)."""
    coverage = n_found / n_listed if n_listed else 0.0
    reasons = []
    if coverage < min_coverage:
        reasons.append(f"coverage {coverage:.2f} ({n_found}/{n_listed}) below min_coverage {_fraction(min_coverage)}")
    if n_found < min_size:
        reasons.append(f"{_plural(n_found, 'gene')} found, below min_size {min_size}")
    if max_size is not None and n_found > max_size:
        reasons.append(f"{_plural(n_found, 'gene')} found, above max_size {max_size}")
    return coverage, reasons


def kept_sizes(
    sets: Sequence[GeneSet],
    available_genes: Iterable[str],
    min_size: int = 1,
    max_size: int | None = None,
    min_coverage: float = 0.0,
) -> list[int | None]:
    """Per set, in order, how many of its genes the cohort has where :func:`resolve_sets` keeps it, else None.

    The same filters as :func:`resolve_sets` without its table (names, hints, gene lists): what a collection's
    parts need to know of every other part's sets.
    """
    _check_filters(min_size, max_size, min_coverage)
    available = set(available_genes)
    out: list[int | None] = []
    for gene_set in sets:
        n_found = sum(g in available for g in gene_set.genes)
        _coverage, reasons = _failures(n_found, len(gene_set.genes), min_size, max_size, min_coverage)
        out.append(None if reasons else n_found)
    return out


def _case_hint(missing: Sequence[str], by_fold: dict[str, list[str]]) -> str:
    """'case differs: Gfap vs GFAP, ...' for missing genes that exist in another case; '' when none do."""
    pairs = [f"{gene} vs {'/'.join(by_fold[gene.casefold()])}" for gene in missing if gene.casefold() in by_fold]
    if not pairs:
        return ""
    more = f" and {len(pairs) - MAX_CASE_HINTS} more" if len(pairs) > MAX_CASE_HINTS else ""
    return f"case differs: {', '.join(pairs[:MAX_CASE_HINTS])}{more}"


def resolve_sets(
    sets: Sequence[GeneSet],
    available_genes: Iterable[str],
    min_size: int = 1,
    max_size: int | None = None,
    min_coverage: float = 0.0,
    collection_names: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per set, in file order: which of its genes the cohort has, and whether it is kept.

    Columns (:data:`TABLE_COLUMNS`): ``name``, ``panel`` (the safe unique name
    from :func:`panel_dir_names`), ``description``, ``line``, ``n_listed``
    (distinct listed genes), ``n_duplicates``, ``n_found`` (listed genes in the
    cohort), ``coverage`` (``n_found / n_listed``), ``genes_found`` and
    ``genes_missing`` (lists, in listed order), ``status`` (``kept`` or
    ``skipped``), ``reason`` and ``hint``.

    Size limits apply to ``n_found``, because that is how many inputs the model
    gets. A set is skipped when ``n_found < min_size``, when ``max_size`` is set
    and ``n_found > max_size``, or when ``coverage < min_coverage``; ``reason``
    then lists every failing test, joined by ``'; '``, and is empty for a kept
    set. The defaults skip only sets with no gene in the cohort.

    ``hint`` names missing genes that the cohort has in another case
    (``case differs: Gfap vs GFAP``), for kept sets too, since a silently
    dropped gene is worth knowing about; for a skipped set the hint is also
    appended to ``reason``, where a user reading why a set was skipped looks.

    ``panel`` is computed from the names of the whole collection
    (``collection_names``; default: the names of ``sets``), not only the kept
    ones nor only those of one job's part, so a set's panel name changes
    neither with the filters nor with how the collection is cut into jobs.
    """
    _check_filters(min_size, max_size, min_coverage)
    available = set(available_genes)
    by_fold: dict[str, list[str]] = {}
    for gene in sorted(available):
        by_fold.setdefault(gene.casefold(), []).append(gene)
    names = [s.name for s in sets]
    safe = dict(zip(collection_names, panel_dir_names(collection_names), strict=True)) if collection_names else {}
    panels = [safe[n] for n in names] if safe else panel_dir_names(names)
    rows = []
    for gene_set, panel in zip(sets, panels, strict=True):
        found = [g for g in gene_set.genes if g in available]
        missing = [g for g in gene_set.genes if g not in available]
        coverage, reasons = _failures(len(found), len(gene_set.genes), min_size, max_size, min_coverage)
        hint = _case_hint(missing, by_fold)
        if reasons and hint:
            reasons.append(hint)
        rows.append(
            {
                "name": gene_set.name,
                "panel": panel,
                "description": gene_set.description,
                "line": gene_set.line,
                "n_listed": len(gene_set.genes),
                "n_duplicates": gene_set.n_duplicates,
                "n_found": len(found),
                "coverage": coverage,
                "genes_found": found,
                "genes_missing": missing,
                "status": "skipped" if reasons else "kept",
                "reason": "; ".join(reasons),
                "hint": hint,
            }
        )
    import pandas as pd

    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    return table.astype({"line": "int64", "n_listed": "int64", "n_duplicates": "int64", "n_found": "int64"})


def _hash(name: str, n_chars: int) -> str:
    return hashlib.sha1(name.encode("utf-8")).hexdigest()[:n_chars]


def panel_dir_name(name: str) -> str:
    """A file-name-safe form of one set name, before collisions are resolved.

    Every character outside ``[A-Za-z0-9_.-]`` becomes ``_`` (one per
    character, so ``GO:0006915`` becomes ``GO_0006915``); a leading ``.`` or
    ``-`` becomes ``_`` too, so the name is neither hidden, ``.``/``..``, nor
    read as a command-line option; the result is cut to
    :data:`MAX_NAME_CHARS` characters. Names that are already safe (all MSigDB
    names) come back unchanged. Different names can map to the same string;
    :func:`panel_dir_names` resolves that within a collection.
    """
    safe = "".join(c if c in SAFE_CHARS else "_" for c in name)
    if safe[:1] in {".", "-"}:
        safe = "_" + safe[1:]
    return safe[:MAX_NAME_CHARS] or "_"


def panel_dir_names(names: Sequence[str]) -> list[str]:
    """Unique safe names for a collection's set names, in the same order.

    Each name maps to :func:`panel_dir_name`. Where several names map to the
    same result, compared case-insensitively because macOS and Windows file
    systems ignore case, the names are told apart by appending ``_`` and the
    first :data:`HASH_CHARS` hex digits of the SHA-1 of the original name
    (UTF-8). In such a group, a name that was already safe keeps its form if it
    is the only one; every other member gets the suffix. Digits are added in the
    (practically impossible) case that a suffixed name still collides.

    The mapping is deterministic and does not depend on the order of ``names``:
    it is a function of the collection's set of names. Adding a set can give an
    existing set a suffix only if the new set collides with it.
    """
    if len(set(names)) != len(names):
        repeated = sorted({n for n in names if names.count(n) > 1})
        raise PanelMlpError(f"gene set names repeated: {repeated}; fix: give each set a unique name")
    base = [panel_dir_name(n) for n in names]
    groups: dict[str, list[int]] = {}
    for i, safe in enumerate(base):
        groups.setdefault(safe.casefold(), []).append(i)
    needs_hash = set()
    for members in groups.values():
        if len(members) == 1:
            continue
        unchanged = [i for i in members if base[i] == names[i]]
        keep = unchanged[0] if len(unchanged) == 1 else None
        needs_hash.update(i for i in members if i != keep)
    for n_chars in range(HASH_CHARS, 41):
        result = [f"{base[i]}_{_hash(names[i], n_chars)}" if i in needs_hash else base[i] for i in range(len(names))]
        if len({r.casefold() for r in result}) == len(result):
            return result
    raise PanelMlpError(f"cannot make unique panel names for {list(names)}; fix: rename the sets")  # pragma: no cover
