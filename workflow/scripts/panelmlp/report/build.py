"""Assembling the report: read the run, rank the panels, build each section, write one HTML file.

The per-unit tables are read one unit at a time and turned into each panel's
details right away (facts for its verdict, figures as JSON), so memory follows
the largest unit. The output is deterministic: ids come from panel names,
numbers are rounded the same way each time, and no time stamp is written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import pandas as pd
import plotly.offline

from .. import __version__
from ..compare import permutation_nulls, random_pools
from ..versions import library_versions
from .accounting import accounting_section, balance_section
from .comparison import comparison_section
from .detail import Context, detail_block, guide, panel_figures
from .external import external_section
from .figures import TEMPLATE, points_per_curve
from .genesets import genesets_section
from .importance import importance_section, read_gene_table
from .inputs import (
    Key,
    Panel,
    Run,
    as_list,
    pair_data,
    pair_genes,
    panels_of,
    read_run,
    unit_tables,
)
from .nulls import nulls_section
from .page import Figures, Ids, caption, esc, page, section, table_of_contents
from .provenance import provenance_section
from .ranking import ranked_table
from .verdict import FEW_PANELS, boxes_shown, panel_facts, read_screen, verdict_section_body

log = logging.getLogger("panelmlp")

DEFAULT_PAIRPLOT_GENES = 5
"""Genes drawn in a pair plot when the config does not say (``report.pairplot_max_genes``)."""


def null_counts(config: Mapping, panels: Sequence[Panel]) -> tuple[int, int]:
    """Permutations per panel and random gene sets per size: as configured, else as found in the summary."""
    evaluate = config.get("evaluate") or {}
    found_perm = max((int(p.auc["n_permutations"] or 0) for p in panels), default=0)
    found_random = max((int(p.auc["n_random"] or 0) for p in panels), default=0)
    permutations = evaluate.get("permutations")
    random_panels = evaluate.get("random_panels")
    return (
        int(permutations) if permutations is not None else found_perm,
        int(random_panels) if isinstance(random_panels, int) else found_random,  # auto: as found
    )


def target_values(inputs: Mapping, labels: Mapping) -> list[float] | None:
    """A regression target's values (its holdout split holds every sample with one); None for classes."""
    if labels.get("kind") != "regression":
        return None
    splits = pd.read_parquet(str(inputs["splits"]), columns=["split_id", "y"])
    return splits.loc[splits["split_id"] == "holdout", "y"].astype(float).tolist()


def make_context(
    inputs: Mapping, run: Run, panels: Sequence[Panel], config: Mapping, random_panels: int, n_panels: int | None = None
) -> Context:
    """What every panel's details share: pair-plot values (one read of the cohort), null distributions, labels.

    ``panels``: those with details; ``n_panels``: the screen's size when that is more.
    """
    max_genes = int((config.get("report") or {}).get("pairplot_max_genes") or DEFAULT_PAIRPLOT_GENES)
    genes = pair_genes(panels, max_genes)
    pair = pair_data(str(inputs["cohort"]), str(inputs["splits"]), [g for gs in genes.values() for g in gs])
    return Context(
        labels=run.labels,
        classes=run.classes,
        positive=run.positive,
        pair=pair,
        pair_genes=genes,
        permutation_nulls=permutation_nulls(run.nulls, panels[0].score.metric if panels else "roc_auc"),
        random_pools=random_pools(run.nulls, panels[0].score.metric if panels else "roc_auc"),
        n_panels=len(panels) if n_panels is None else n_panels,
        random_panels=random_panels,
        explain=len(panels) <= FEW_PANELS,
        points=points_per_curve(len(panels)),
    )


DETAILED_MAX = 200
"""Up to this many panels every panel has its details (verdict and figures); a larger screen details at most this many."""

TOP_DETAILED = 50
"""A large screen details its best this many panels, beside those with a call and those with driver genes."""

CALLED = ("set-specific", "predictive", "unconfirmed")
"""Levels whose panels a large screen always details (up to :data:`DETAILED_MAX`)."""


def detailed_panels(panels: Sequence[Panel], genes: pd.DataFrame | None) -> list[Panel]:
    """The panels that get details: all up to :data:`DETAILED_MAX`; in a larger screen those a reader needs.

    Those are the panels whose verdict box opens the report, then in rank
    order the set-specific, predictive and unconfirmed ones, the ones with
    driver genes (genes.tsv: every panel with a call, and those
    ``evaluate.importance`` lists) and the best :data:`TOP_DETAILED`, at most
    :data:`DETAILED_MAX` in all. Every panel keeps its row in the ranked table.
    A report's size then stops growing with the panels beyond one table row
    each (about 0.7 KB, against 13 KB for a panel's details).
    """
    if len(panels) <= DETAILED_MAX:
        return list(panels)
    listed = set()
    if genes is not None and {"collection", "panel"} <= set(genes.columns):
        listed = set(zip(genes["collection"].astype(str), genes["panel"].astype(str), strict=True))
    boxed = {p.key for p in boxes_shown(panels)}
    wanted = [p for p in panels if p.key in boxed or p.key in listed or p.level in CALLED or p.rank <= TOP_DETAILED]
    keep = boxed | {p.key for p in wanted[: max(0, DETAILED_MAX - len(boxed))]}
    return [p for p in panels if p.key in keep]


def detail_blocks(
    inputs: Mapping,
    panels: Sequence[Panel],
    ctx: Context,
    up_front: Collection[Key] | None = None,
    partial: bool = False,
) -> dict[Key, str]:
    """Every panel's details block, unit by unit; sets each panel's facts for its verdict on the way.

    ``up_front``: the panels whose verdict box opens the report (default: as
    :func:`verdict.boxes_shown` picks among ``panels``). ``partial``:
    ``panels`` are the few of a large screen that get details, so only their
    rows are read.
    """
    by_key = {p.key: p for p in panels}
    up_front = {p.key for p in boxes_shown(panels)} if up_front is None else set(up_front)
    blocks: dict[Key, str] = {}
    open_ = ctx.explain
    wanted = set(by_key) if partial else None
    for unit in unit_tables(inputs, wanted):
        for key, metrics in unit.metrics.items():
            panel = by_key.get(key)
            if panel is None:
                continue
            history, predictions = unit.history.get(key), unit.predictions.get(key)
            panel.facts = panel_facts(metrics, history)
            figs, notes = panel_figures(panel, history, predictions, ctx, unit.tuning.get(key))
            blocks[key] = detail_block(panel, figs, notes, ctx, open_, key in up_front)
    for panel in panels:
        if panel.key not in blocks:
            missing = {"curves": "No outputs of this panel were given."}
            blocks[panel.key] = detail_block(panel, {}, missing, ctx, open_, panel.key in up_front)
    return blocks


def details_section(panels: Sequence[Panel], blocks: Mapping[Key, str], ctx: Context) -> str:
    """The details of the panels in rank order, with the figure guide once on top when they are many."""
    if ctx.explain:
        intro = "Each panel's verdict and figures. Click a panel's line to fold it."
    elif len(panels) < ctx.n_panels:
        intro = (
            f"The {len(panels)} of the {ctx.n_panels} panels a reader needs first, in rank order: the set-specific, "
            f"predictive and unconfirmed ones, those with driver genes (section 7) and the best {TOP_DETAILED}, "
            f"at most {DETAILED_MAX}. Click one (or its name in the ranked table) to open its verdict and draw its "
            "figures. Every other panel is a row of the ranked table in section 1, which its search box filters by "
            "set name, collection or gene; its outputs are in results/panels/."
        )
    else:
        intro = (
            f"Each of the {len(panels)} panels in rank order; click one (or its name in the ranked table) to open its verdict "
            "and draw its figures."
        )
    body = (
        caption(intro)
        + ("" if ctx.explain else guide(ctx.labels.get("kind")))
        + "\n".join(blocks[p.key] for p in panels)
    )
    return section("details", body)


def subtitle(run: Run, panels: Sequence[Panel]) -> str:
    """Target, classes, what was tested, and the version."""
    labels = run.labels
    collections = sorted({p.collection for p in panels if p.collection})
    named = [p.name for p in panels if not p.collection]
    parts = [esc(", ".join(named))] if named and len(named) <= 5 else []
    parts += [f"collection{'s' if len(collections) != 1 else ''} {esc(', '.join(collections))}"] if collections else []
    tested = f"{len(panels)} panel{'s' if len(panels) != 1 else ''}" + (f" ({'; '.join(parts)})" if parts else "")
    if labels.get("kind") == "survival":
        event = labels.get("event") or {}
        time = labels.get("time") or {}
        times = time.get("column") or ", ".join(str(v) for k, v in time.items() if k in ("event", "censored"))
        return (
            f"Target <b>{esc(labels.get('target', '?'))}</b>, time to event (event '{esc(event.get('event', labels.get('positive', '?')))}', "
            f"censored '{esc(event.get('censored', '?'))}'; time from {esc(times or '?')}, in days); {tested}. "
            f"Generated by panelmlp {esc(__version__)}."
        )
    if labels.get("kind") == "regression":
        what = f"a number ({esc(labels.get('loss', 'mse'))} loss)"
        return f"Target <b>{esc(labels.get('target', '?'))}</b>, {what}; {tested}. Generated by panelmlp {esc(__version__)}."
    positive = f" (positive: {esc(run.positive)})" if run.positive else " (macro averages over the classes)"
    return (
        f"Target <b>{esc(labels.get('target', '?'))}</b>, classes {esc(', '.join(labels.get('classes', [])))}"
        f"{positive}; {tested}. Generated by panelmlp {esc(__version__)}."
    )


def build_report(inputs: Mapping[str, str | Sequence[str]], config: Mapping, out: str) -> None:
    """Write the HTML report of a run to ``out``.

    ``inputs`` has the paths ``accounting``, ``quarantine``, ``labels``,
    ``cohort``, ``splits``, ``summary`` and ``panels``, and lists (one path per
    unit, in the same order) ``history``, ``metrics``, ``predictions`` and
    ``nulls``. Optional: ``genes`` and ``genes_screen`` (rule compare;
    without them the driver-genes section says they were not computed).
    """
    started = time.perf_counter()
    run = read_run(inputs)
    panels = panels_of(run.summary, run.panel_table)
    genes = read_gene_table(inputs.get("genes"))
    detailed = detailed_panels(panels, genes)
    partial = len(detailed) < len(panels)
    ids = Ids()
    for p in detailed:
        p.anchor = ids.make("panel", f"{p.collection}-{p.name}" if p.collection else p.name)
    permutations, random_panels = null_counts(config, panels)
    ctx = make_context(inputs, run, detailed, config, random_panels, len(panels))
    blocks = detail_blocks(inputs, detailed, ctx, {p.key for p in boxes_shown(panels)}, partial)
    slots = Figures()
    verdict = verdict_section_body(
        panels,
        run.labels,
        ranked_table(panels, search=partial),
        permutations,
        random_panels,
        screen=read_screen(inputs),
        detailed=len(detailed) if partial else None,
    )
    sections = [
        section("verdict", verdict),
        genesets_section(run.panel_table, config),
        accounting_section(run.accounting, run.quarantine, run.labels),
        balance_section(run.labels, slots, target_values(inputs, run.labels)),
        comparison_section(panels, run.summary, slots),
        nulls_section(panels, ctx.random_pools, slots),
        importance_section(
            genes,
            read_gene_table(inputs.get("genes_screen")),
            run.panel_table,
            config,
            slots,
        ),
        details_section(detailed, blocks, ctx),
        external_section(inputs, run.summary),
        provenance_section(config, library_versions()),
    ]
    title = str((config.get("report") or {}).get("title") or "panelmlp report")
    links = {"details": [(p.anchor, p.label) for p in panels]} if len(panels) <= FEW_PANELS else {}
    toc = table_of_contents(links)
    text = page(title, subtitle(run, panels), toc, sections, plotly.offline.get_plotlyjs(), TEMPLATE)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(text, encoding="utf-8")
    log.info(
        "report: %s (%d bytes, %d panels, %d units, %.1f s)",
        out,
        len(text.encode()),
        len(panels),
        len(as_list(inputs.get("metrics", []))),
        time.perf_counter() - started,
    )
