"""Fit units: what each fit job trains, planned from the config before any job runs, and resolved in the job.

A unit is one fit job. Three kinds exist:

- the small named panels together (``"named panels"``): every named panel
  (a list of genes or a one-gene-per-line file) of at most
  :data:`GROUP_MAX_GENES` listed genes, so a further small panel costs no
  further process;
- one large named panel (``all``, or a list or file of more genes), alone, so
  adding a small panel never retrains it;
- one part of a gene-set collection (``{gmt: file}``), at most
  ``resources.panels_per_job`` sets, smallest sets first; a collection is cut
  into at least ``resources.collection_min_jobs`` parts of about equal size
  (:func:`collection_cuts`), so the parts of a small screen train side by side.

:func:`plan_units` makes the run's :class:`Plan` from the config (the
Snakefile's ``common.smk`` calls it once; tests call it without Snakemake).
Each :class:`Unit` travels to its fit job as plain data
(:meth:`Unit.as_params`, the rule's ``params.unit``), because Snakemake
compares the ``repr`` of plain params to decide whether a job reruns; the job
turns it back with :meth:`Unit.from_params` and calls :func:`resolve`, which
reads the unit's GMT file once for both its panels and its random-panel
universe.

Defaults of a collection's filters (``min_size``, ``max_size``,
``min_coverage``) and of ``resources.panels_per_job`` come from the config
schema, the one place defaults live (:func:`collection_defaults`).
"""

from __future__ import annotations

import difflib
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .defaults import SCHEMA_PATH, read_schema_file, schema_defaults
from .errors import PanelMlpError
from .gmt import GeneSet, kept_sizes, panel_dir_name, read_gmt, resolve_sets
from .panels import check_panel, panel_genes

if TYPE_CHECKING:  # pandas loads where a table is built: the Snakefile imports this module
    import pandas as pd

GROUP_MAX_GENES = 500
"""Named panels of at most this many listed genes (lists and files) are fitted together in one job."""

GROUPED_NAME = "named panels"
"""The name of the small named panels' job (its log is logs/fit-named.log)."""

PANELS_DIR = "results/panels"
"""Where every output folder of a fit job lies: ``{PANELS_DIR}/{panel}`` or ``{PANELS_DIR}/{collection}/part-NNN``."""

PANEL_COLUMNS = [
    "unit",
    "collection",
    "panel",
    "directory",
    "description",
    "n_listed",
    "n_found",
    "coverage",
    "status",
    "reason",
    "hint",
    "genes",
    "genes_missing",
]
"""Columns of panels.tsv."""

PanelSpec = str | tuple[str, ...]
"""A named panel as a unit holds it: ``all``, the path of a gene file, or its genes."""


def _schema(schema_path: str | Path) -> dict:
    """The config schema (PyYAML only: the fit job's env has no jsonschema, so no panelmlp.config)."""
    return read_schema_file(schema_path)


def collection_defaults(schema_path: str | Path = SCHEMA_PATH) -> dict[str, object]:
    """The schema's defaults of a collection's keys (``min_size``, ``max_size``, ``min_coverage``).

    Read from the object branch of ``panels``' entries in the config schema, so
    a collection given without a filter gets the same value whether Snakemake's
    validate() filled it in or a library caller left it out. A fresh dict each call.
    """
    entry = _schema(schema_path)["properties"]["panels"]["additionalProperties"]
    for branch in entry.get("oneOf", [entry]):
        if branch.get("type") == "object":
            props = branch.get("properties", {})
            return {key: spec["default"] for key, spec in props.items() if "default" in spec}
    raise PanelMlpError(f"{schema_path}: panels has no collection form ({{gmt: ...}}); restore the schema")


def panels_per_job_default(schema_path: str | Path = SCHEMA_PATH) -> int:
    """The schema's default of ``resources.panels_per_job``."""
    return int(schema_defaults("resources", schema_path)["panels_per_job"])


def collection_min_jobs_default(schema_path: str | Path = SCHEMA_PATH) -> int:
    """The schema's default of ``resources.collection_min_jobs``."""
    return int(schema_defaults("resources", schema_path)["collection_min_jobs"])


def collection_cuts(n_sets: int, per_job: int, min_jobs: int = 1) -> tuple[int, ...]:
    """Where each part of a collection of ``n_sets`` sets starts (in part order), and ``n_sets`` last.

    The collection is cut into ``max(ceil(n_sets / per_job), min(min_jobs, n_sets))`` parts whose sizes differ by
    at most one set: none holds more than ``per_job``, and a collection smaller than ``min_jobs x per_job`` still
    makes ``min_jobs`` jobs (one per set at most), which train side by side where the cores allow it. An empty
    collection has no part: ``(0,)``.
    """
    if per_job < 1 or min_jobs < 1:
        raise PanelMlpError(
            f"resources.panels_per_job ({per_job}) and resources.collection_min_jobs ({min_jobs}) must be at least 1"
        )
    parts = max(math.ceil(n_sets / per_job), min(min_jobs, n_sets))
    if not parts:
        return (0,)
    base, extra = divmod(n_sets, parts)
    cuts = [0]
    for j in range(parts):
        cuts.append(cuts[-1] + base + (1 if j < extra else 0))
    return tuple(cuts)


def _default(key: str) -> Callable[[], object]:
    """A dataclass default factory for a collection key: its schema default."""
    return lambda: collection_defaults()[key]


@dataclass(frozen=True)
class Unit:
    """One fit job: named panels (``collection == ""``) or one part of a collection.

    Named panels: ``panels`` (name -> spec, in config order) and ``out_dirs``
    (name -> folder). A collection part: ``gmt``, ``sets`` (names, in the
    part's order), the filters and ``out_dir``. Sequences are tuples so a unit
    is immutable and hashable; :meth:`as_params` gives the lists and dicts the
    fit rule passes on.
    """

    name: str
    collection: str = ""
    panels: tuple[tuple[str, PanelSpec], ...] = ()
    out_dirs: tuple[tuple[str, str], ...] = ()
    gmt: str = ""
    sets: tuple[str, ...] = ()
    min_size: int = field(default_factory=_default("min_size"))
    max_size: int | None = field(default_factory=_default("max_size"))
    min_coverage: float = field(default_factory=_default("min_coverage"))
    out_dir: str = ""
    sets_before: int = 0
    """A collection part: how many of the collection's sets (in part order) the parts before it hold."""
    cuts: tuple[int, ...] = ()
    """A collection part: where every part of its collection starts (in part order), and the collection's set
    count last (:func:`collection_cuts`). The random pool of a size bin is shared out among the parts that need it
    (:func:`panelmlp.randomsets.pool_share`); without cuts (a hand-written unit) the job trains the whole pool of
    each of its bins, and compare counts each draw once."""

    @property
    def part_index(self) -> int:
        """This part's position among its collection's parts (0 for the first, and without :attr:`cuts`)."""
        return self.cuts.index(self.sets_before) if self.cuts else 0

    @property
    def is_collection(self) -> bool:
        """Whether the unit is a part of a gene-set collection."""
        return bool(self.collection)

    @property
    def panel_specs(self) -> dict[str, str | list[str]]:
        """Named panels: name -> ``all``, a file path, or a list of genes (empty for a collection part)."""
        return {name: spec if isinstance(spec, str) else list(spec) for name, spec in self.panels}

    @property
    def panel_names(self) -> list[str]:
        """Named panels' names, in config order (empty for a collection part)."""
        return [name for name, _ in self.panels]

    @property
    def folders(self) -> dict[str, str]:
        """Named panels: name -> output folder; a collection part: its name -> its one folder."""
        return dict(self.out_dirs) if not self.is_collection else {self.name: self.out_dir}

    def files(self) -> list[str]:
        """The files the job reads besides the cohort (GMT or panel files): its inputs, so editing one reruns it."""
        if self.is_collection:
            return [self.gmt]
        return [spec for _, spec in self.panels if isinstance(spec, str) and spec != "all"]

    def as_params(self) -> dict[str, object]:
        """The unit as plain data, key for key what the fit rule's ``params.unit`` has always been.

        Snakemake reruns a job when the ``repr`` of a param changes, so keys,
        their order and the value types stay as they were: named panels
        ``{name, collection, panels, out_dirs}``, a collection part
        ``{name, collection, gmt, sets, min_size, max_size, min_coverage, out_dir, sets_before, cuts}``
        (``cuts`` is new: a part planned before it reruns once, and a change
        of the collection's cut reruns every part, whose share of the random
        pools then changes too).
        """
        if self.is_collection:
            return {
                "name": self.name,
                "collection": self.collection,
                "gmt": self.gmt,
                "sets": list(self.sets),
                "min_size": self.min_size,
                "max_size": self.max_size,
                "min_coverage": self.min_coverage,
                "out_dir": self.out_dir,
                "sets_before": self.sets_before,
                "cuts": list(self.cuts),
            }
        return {
            "name": self.name,
            "collection": "",
            "panels": self.panel_specs,
            "out_dirs": dict(self.out_dirs),
        }

    @classmethod
    def from_params(cls, params: Mapping) -> Unit:
        """A unit from :meth:`as_params`' plain data (or a hand-written dict of the same form).

        Missing filters take the schema's defaults; a missing ``name`` is the
        collection's (or ``named panels``); missing folders are
        ``results/panels/{name}``.
        """
        if isinstance(params, Unit):
            return params
        collection = str(params.get("collection") or "")
        if collection:
            missing = [key for key in ("gmt", "sets") if key not in params]
            if missing:
                raise PanelMlpError(f"fit unit {collection}: params lack {', '.join(missing)}; rerun snakemake")
            name = str(params.get("name") or collection)
            defaults = collection_defaults()
            return cls(
                name=name,
                collection=collection,
                gmt=str(params["gmt"]),
                sets=tuple(str(s) for s in params["sets"]),
                min_size=params.get("min_size", defaults["min_size"]),
                max_size=params.get("max_size", defaults["max_size"]),
                min_coverage=params.get("min_coverage", defaults["min_coverage"]),
                out_dir=str(params.get("out_dir", f"{PANELS_DIR}/{name}")),
                sets_before=int(params.get("sets_before", 0)),
                cuts=tuple(int(c) for c in params.get("cuts") or ()),
            )
        if "panels" not in params:
            raise PanelMlpError("fit unit: params lack panels (named panels) or collection and gmt; rerun snakemake")
        panels = tuple((str(n), _frozen_spec(s)) for n, s in params["panels"].items())
        out_dirs = dict(params.get("out_dirs") or {})
        return cls(
            name=str(params.get("name") or GROUPED_NAME),
            panels=panels,
            out_dirs=tuple((n, str(out_dirs.get(n, f"{PANELS_DIR}/{n}"))) for n, _ in panels),
        )


def _frozen_spec(spec: object) -> PanelSpec:
    """A named panel's config value as a unit holds it: text stays, a list of genes becomes a tuple."""
    if isinstance(spec, str):
        return spec
    if isinstance(spec, list | tuple):
        return tuple(spec)
    raise PanelMlpError(f"fit unit: a panel spec {spec!r} is neither a list of genes, 'all' nor a file path")


def named_unit(name: str, panels: Mapping[str, object]) -> Unit:
    """A fit job for named panels, each written to its own folder ``results/panels/{panel}``."""
    specs = tuple((panel, _frozen_spec(spec)) for panel, spec in panels.items())
    return Unit(name=name, panels=specs, out_dirs=tuple((panel, f"{PANELS_DIR}/{panel}") for panel, _ in specs))


@dataclass(frozen=True)
class Plan:
    """The run's fit jobs, planned from the config.

    ``folders``: every output folder under results/panels/ (a named panel, or
    a collection part), in config order. ``jobs``: the units of rule fit by
    its ``{unit}`` wildcard (large named panels, collection parts).
    ``grouped``: the small named panels' job (rule fit_named), or None.
    ``listed``: genes listed by each panel file read while planning (path ->
    count), so a later size question reads no file again.
    """

    folders: tuple[str, ...]
    jobs: Mapping[str, Unit]
    grouped: Unit | None
    listed: Mapping[str, int] = field(default_factory=dict)

    @property
    def units(self) -> list[Unit]:
        """Every fit job's unit: rule fit's, then the grouped one."""
        return [*self.jobs.values(), *([self.grouped] if self.grouped else [])]

    def collection_sets(self) -> dict[str, tuple[str, list[str]]]:
        """Collection name -> (its GMT file, the names of its sets in part order)."""
        sets: dict[str, tuple[str, list[str]]] = {}
        for unit in self.jobs.values():
            if unit.is_collection:
                _, names = sets.setdefault(unit.collection, (unit.gmt, []))
                names.extend(unit.sets)
        return sets

    def panel_size(self, spec: object) -> int | None:
        """Genes a named panel lists (``randomsets.plan_for_run``'s ``panel_size``); None for ``all``.

        Files were counted while planning; an unplanned file is read now.
        """
        if isinstance(spec, str) and spec in self.listed:
            return self.listed[spec]
        return listed_size(spec)


def listed_size(spec: object, name: str | None = None) -> int | None:
    """How many genes a named panel lists (a list or a file), or None for ``all``.

    A panel file that is missing, a folder, not UTF-8, lists no gene or a gene
    twice raises :class:`PanelMlpError` naming ``config panels.{name}``.
    """
    if isinstance(spec, list | tuple):
        return len(spec)
    if spec == "all":
        return None
    try:
        return len(panel_genes(name or str(spec), spec))
    except PanelMlpError as exc:
        raise PanelMlpError(f"config panels.{name or spec}: {exc}") from None


def collection_units(name: str, spec: Mapping, per_job: int, gmt: str, min_jobs: int = 1) -> list[Unit]:
    """A gene-set collection cut into parts of at most ``per_job`` sets, smallest sets first.

    Sets are ordered by listed size (then file line), so a part holds sets of
    similar size (little padding, few random-panel pools per part); the parts
    are of about equal size, at least ``min_jobs`` of them (:func:`collection_cuts`). Parts are
    numbered ``part-001`` on, with more digits when there are over 999. The
    GMT file ``gmt`` (``spec["gmt"]`` as found) is read here, once; a bad file
    raises :class:`PanelMlpError` naming ``config panels.{name}``.
    """
    try:
        sets = read_gmt(gmt)
    except PanelMlpError as exc:
        raise PanelMlpError(f"config panels.{name}: {exc}") from None
    ordered = [s.name for s in _part_order(sets)]
    cuts = collection_cuts(len(ordered), per_job, min_jobs)
    digits = max(3, len(str(len(cuts) - 1)))
    defaults = collection_defaults()
    units = []
    for j, (start, stop) in enumerate(itertools.pairwise(cuts)):
        unit = f"{name}/part-{j + 1:0{digits}d}"
        units.append(
            Unit(
                name=unit,
                collection=name,
                gmt=gmt,
                sets=tuple(ordered[start:stop]),
                min_size=spec.get("min_size", defaults["min_size"]),
                max_size=spec.get("max_size", defaults["max_size"]),
                min_coverage=spec.get("min_coverage", defaults["min_coverage"]),
                out_dir=f"{PANELS_DIR}/{unit}",
                sets_before=start,
                cuts=cuts,
            )
        )
    return units


def _part_order(sets: Sequence[GeneSet]) -> list[GeneSet]:
    """A collection's sets in the order its parts take them: by listed size, then by line in the file."""
    return sorted(sets, key=lambda s: (len(s.genes), s.line))


def plan_units(config: Mapping, project_path: Callable[[str], str] | None = None) -> Plan:
    """The run's output folders and fit jobs (a :class:`Plan`), from the config's ``panels`` and ``resources``.

    ``project_path`` maps a relative panel or GMT path to where it is found
    (common.smk: the working directory, else the project folder); default:
    paths as given. Named panels of at most :data:`GROUP_MAX_GENES` listed
    genes share one job; ``all`` and larger panels get a job each; a
    collection is cut by :func:`collection_units`. Every panel and GMT file is
    read here, so a missing, empty or malformed one raises
    :class:`PanelMlpError` (``config panels.NAME: ...``) before any job.
    """
    where = project_path or (lambda path: path)
    resources = config.get("resources") or {}
    per_job = int(resources.get("panels_per_job", panels_per_job_default()))
    min_jobs = int(resources.get("collection_min_jobs", collection_min_jobs_default()))
    folders: list[str] = []
    jobs: dict[str, Unit] = {}
    grouped: dict[str, object] = {}
    listed: dict[str, int] = {}
    for name, spec in config["panels"].items():
        if spec is None:
            continue
        if isinstance(spec, Mapping):
            for unit in collection_units(name, spec, per_job, where(spec["gmt"]), min_jobs):
                folders.append(unit.name)
                jobs[unit.name] = unit
            continue
        if isinstance(spec, str) and spec != "all":
            spec = where(spec)
        folders.append(name)
        size = listed_size(spec, name)
        if isinstance(spec, str) and size is not None:
            listed[spec] = size
        if size is not None and size <= GROUP_MAX_GENES:
            grouped[name] = spec
        else:
            jobs[name] = named_unit(name, {name: spec})
    return Plan(tuple(folders), jobs, named_unit(GROUPED_NAME, grouped) if grouped else None, listed)


def check_set_names(panels: Mapping, plan: Plan) -> None:
    """Raise when a gene set of a collection has the name of a panel or collection under ``panels``."""

    clash = panel_name_clash(panels, plan.collection_sets())
    if clash is not None:
        raise PanelMlpError(clash)


def check_importance(names: Sequence[str], panels: Mapping, plan: Plan) -> None:
    """``evaluate.importance`` names configured panels or sets of a collection: raise otherwise.

    A set may be named alone or as ``collection/set``. Whether a set survives
    the coverage and size filters is known only after fit; the compare job
    says so in one line when it scores the driver genes.
    """
    known = [name for name, spec in panels.items() if spec is not None and not isinstance(spec, Mapping)]
    for unit in plan.jobs.values():
        if unit.is_collection:
            known += list(unit.sets)
            known += [f"{unit.collection}/{s}" for s in unit.sets]
    for name in names or ():
        if name not in known:
            close = difflib.get_close_matches(name, list(dict.fromkeys(known)), n=3)
            hint = f" (closest: {', '.join(close)})" if close else ""
            raise PanelMlpError(
                f"config evaluate.importance: {name!r} is not a panel of this run{hint}; "
                "name a panel of config panels or a set of a collection (as set or collection/set), or leave it out"
            )


# --- in the fit job ---------------------------------------------------------------------------------------------


@dataclass
class Panel:
    """A panel to train: its name, its collection ('' for a named panel), directory name, genes and output folder."""

    name: str
    collection: str
    directory: str
    genes: list[str]
    folder: str


@dataclass
class Resolved:
    """What a fit job trains, from its unit and the cohort's genes (:func:`resolve`).

    ``panels``: the panels to train (a collection's kept sets). ``table``: the
    panels table (:data:`PANEL_COLUMNS` plus ``folder``: where each row is
    written), a collection's skipped sets included. ``universe``: the genes
    random panels are drawn from; ``universe_name``: its name in
    nulls.parquet's ``collection`` ('' = the cohort).
    """

    panels: list[Panel]
    table: pd.DataFrame
    universe: list[str]
    universe_name: str
    part_sizes: list[list[int]] = field(default_factory=list)
    """A collection part resolved with ``all_parts``: per part of its collection (:attr:`Unit.cuts`), the size
    (genes found) of each kept set, which tells which parts share out a size bin's random pool (empty without
    cuts: the job trains whole pools)."""
    part_index: int = 0
    """This part's position in :attr:`part_sizes`."""


def resolve(
    unit: Unit | Mapping, available: Sequence[str], random_universe: str = "cohort", all_parts: bool = False
) -> Resolved:
    """The panels a unit trains, its panels table and its random-panel universe; the GMT file is read once.

    Named panels: each panel's genes (a list, a file, or ``all`` = every gene
    of ``available``); a gene the cohort lacks stops the run with the closest
    names. A collection part: its sets from the GMT file, genes the cohort
    lacks dropped and the coverage recorded, each set kept or skipped by the
    unit's filters (:func:`panelmlp.gmt.resolve_sets`). A set of the part that
    is no longer in the file stops the run (the file changed while it ran).

    ``random_universe`` (``evaluate.random_universe``): ``cohort``, every
    expression gene; ``collection``, for a collection part, the union of all of
    the collection's sets' genes present in the cohort, in the cohort's order
    (every part draws from the same universe); named panels keep the cohort.
    ``all_parts`` (a job with random panels): also resolve the sets of every
    part of the collection, for :attr:`Resolved.part_sizes`.
    """
    import pandas as pd

    unit = Unit.from_params(unit)
    columns = [*PANEL_COLUMNS, "folder"]
    if not unit.is_collection:
        panels, rows = [], []
        folders = dict(unit.out_dirs)
        for name, spec in unit.panel_specs.items():
            genes = panel_genes(name, spec, available)
            check_panel(name, genes, available)
            panel = Panel(name, "", panel_dir_name(name), genes, str(folders[name]))
            panels.append(panel)
            rows.append(
                {
                    "unit": name,
                    "collection": "",
                    "panel": name,
                    "directory": panel.directory,
                    "description": "",
                    "n_listed": len(genes),
                    "n_found": len(genes),
                    "coverage": 1.0,
                    "status": "kept",
                    "reason": "",
                    "hint": "",
                    "genes": " ".join(genes),
                    "genes_missing": "",
                    "folder": panel.folder,
                }
            )
        return Resolved(panels, pd.DataFrame(rows, columns=columns), list(available), "")
    sets = read_gmt(unit.gmt)
    by_name = {s.name: s for s in sets}
    gone = [n for n in unit.sets if n not in by_name]
    if gone:
        raise PanelMlpError(
            f"{unit.gmt}: sets {gone[:3]} changed while the workflow ran; rerun snakemake so the collection is re-read"
        )
    table = resolve_sets(
        [by_name[n] for n in unit.sets],
        available,
        min_size=int(unit.min_size),
        max_size=unit.max_size,
        min_coverage=float(unit.min_coverage),
        collection_names=[s.name for s in sets],
    )
    frame = pd.DataFrame(
        {
            "unit": unit.name,
            "collection": unit.collection,
            "panel": table["name"],
            "directory": table["panel"],
            "description": table["description"],
            "n_listed": table["n_listed"],
            "n_found": table["n_found"],
            "coverage": table["coverage"],
            "status": table["status"],
            "reason": table["reason"],
            "hint": table["hint"],
            "genes": [" ".join(g) for g in table["genes_found"]],
            "genes_missing": [" ".join(g) for g in table["genes_missing"]],
            "folder": unit.out_dir,
        },
        columns=columns,
    )
    panels = [
        Panel(name, unit.collection, directory, list(genes), unit.out_dir)
        for name, directory, genes, status in zip(
            table["name"], table["panel"], table["genes_found"], table["status"], strict=True
        )
        if status == "kept"
    ]
    universe, universe_name = _universe(unit, sets, available, random_universe)
    part_sizes: list[list[int]] = []
    if all_parts and unit.cuts:
        cuts = unit.cuts
        ordered = _part_order(sets)
        # The parts deal the random pools by every part's sets: they must all have been cut from this very file.
        mine = (
            [s.name for s in ordered[unit.sets_before : cuts[cuts.index(unit.sets_before) + 1]]]
            if unit.sets_before in cuts[:-1]
            else None
        )
        if len(ordered) != cuts[-1] or mine != list(unit.sets):
            raise PanelMlpError(
                f"{unit.gmt}: the collection's sets changed while the workflow ran (its parts were cut from "
                f"{cuts[-1]} sets, the file now holds {len(ordered)}); rerun snakemake so the collection is re-read"
            )
        kept = kept_sizes(
            ordered,
            available,
            min_size=int(unit.min_size),
            max_size=unit.max_size,
            min_coverage=float(unit.min_coverage),
        )
        part_sizes = [[n for n in kept[a:b] if n is not None] for a, b in itertools.pairwise(cuts)]
    return Resolved(panels, frame, universe, universe_name, part_sizes, unit.part_index if part_sizes else 0)


def _universe(unit: Unit, sets: Sequence[GeneSet], available: Sequence[str], which: str) -> tuple[list[str], str]:
    """A collection part's random-panel universe from its already-read ``sets`` (see :func:`resolve`)."""
    if which != "collection":
        return list(available), ""
    listed = {g for s in sets for g in s.genes}
    return [g for g in available if g in listed], unit.collection


def panel_name_clash(panels: Mapping, collections: Mapping[str, tuple[str, Sequence[str]]]) -> str | None:
    """One line when a gene set of a collection has the name of an entry of ``panels``, or None.

    ``collections`` maps a collection's name to its GMT file and its set
    names. Every panel needs its own name: it is the ``panel`` of
    summary.tsv and what ``predict_panels`` picks. A set name shared by two
    collections is allowed (``collection`` tells them apart).
    """
    for collection, (path, names) in collections.items():
        for name in names:
            if name in panels and panels[name] is not None:
                what = "the collection" if isinstance(panels[name], Mapping) else "the panel"
                line = _set_line(path, name)
                where = f"{path}:{line}" if line is not None else str(path)
                return (
                    f"config panels.{collection}: gene set {name!r} ({where}) has the name of {what} panels.{name}; "
                    "every panel needs its own name, so rename the set in the file or the entry under panels"
                )
    return None


def _set_line(path: str | Path, name: str) -> int | None:
    """The line of gene set ``name`` in a GMT file, or None if the file cannot be read."""
    try:
        return next((s.line for s in read_gmt(path) if s.name == name), None)
    except (OSError, PanelMlpError):
        return None
