"""How many random gene sets, of which sizes: size bins and ``evaluate.random_panels: auto``.

The random-panel test (competitive: is a set better than random genes of its
size?) compares a panel's mean CV score with a pool of random gene sets. Pools
are shared:

- **Size bins.** Panels of nearby sizes share one pool, drawn at the bin's
  size (:func:`pool_size`): bins are ``evaluate.random_bin_width`` wide on a
  log scale (0.1: each bin spans about 10%), so the cost grows with the number
  of bins, not of panels. Up to 14 genes every size is its own bin at width
  0.1; a 15-gene panel meets 14-gene random sets.
- **One draw per bin.** A pool is drawn from a generator seeded by the model
  seed and the pool size alone (``fit.random_gene_sets``), so every fit job
  (each part of a collection) that needs a bin draws the same sets. The parts
  of a collection that need a bin share its training out (:func:`pool_share`:
  part i of the m that need it trains draws i+1, i+1+m, ...), so parts
  sharing a bin share its cost; named panels' jobs each train the whole
  pool. compare counts each draw once.

``evaluate.random_panels: auto`` (:func:`plan_random_panels`) picks the number
N of random sets per bin so that the smallest q-value an empirical add-one
p-value can reach, ``m / (N + 1)`` for a family of m panels, is below
:data:`ALPHA`: ``N = floor(m / ALPHA)`` (1,200 for 60 panels), unless the budget
``evaluate.random_budget`` (random models: N x bins x CV splits) allows fewer;
then N is what the budget affords and the plan says that the budget bound it.
The plan is made when the workflow is parsed, from the listed sizes of the
panels and gene sets (the sizes found in the cohort are known only inside the
fit jobs, and can only be smaller), so m is an upper bound of the family and
the bins an estimate. Bins are counted per universe: with
``evaluate.random_universe: collection`` each collection, and the cohort for
the named panels, trains its own pool per size bin.

This module is light (no numpy; the GMT reader only for collections): the Snakefile imports it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

from .defaults import schema_default, with_defaults

ALPHA = 0.05
"""The q-value the random-panel test must be able to reach (``compare.ALPHA``)."""

DEFAULT_BIN_WIDTH = float(schema_default("evaluate.random_bin_width"))
"""The schema's ``evaluate.random_bin_width``: relative width of a size bin (0 = one pool per exact size)."""

DEFAULT_BUDGET = int(schema_default("evaluate.random_budget"))
"""The schema's ``evaluate.random_budget``: most random-panel models ``evaluate.random_panels: auto`` may plan."""


def pool_size(n_genes: int, width: float = DEFAULT_BIN_WIDTH) -> int:
    """The size of the random pool a panel of ``n_genes`` genes is compared with.

    Bins are geometric: ``k = round(ln n / ln(1 + width))`` and the pool's size is
    ``round((1 + width) ** k)``, within about ``width / 2`` of ``n`` (plus the
    rounding to whole genes). ``width`` 0 gives every size its own pool.
    """
    n = int(n_genes)
    if width <= 0 or n <= 1:
        return n
    k = round(math.log(n) / math.log1p(width))
    return max(1, round((1 + width) ** k))


def pool_sizes(sizes: Iterable[int], width: float = DEFAULT_BIN_WIDTH) -> list[int]:
    """The distinct pool sizes (bins) of panels of ``sizes`` genes, ascending."""
    return sorted({pool_size(n, width) for n in sizes})


def pool_share(
    size: int, count: int, part_sizes: Sequence[Sequence[int]], part: int, width: float = DEFAULT_BIN_WIDTH
) -> range:
    """The draws (numbered 1 to ``count``) of the random pool of ``size`` that part ``part`` of a collection trains.

    ``part_sizes`` holds, per part, its kept sets' sizes. The parts whose sets
    fall in the bin share the pool round-robin in part order: the i-th of m
    such parts trains draws ``i+1, i+1+m, ...``. A part none of whose sets
    needs the bin trains none of it; with no parts known (named panels), the
    one job trains every draw.
    """
    if not part_sizes:
        return range(1, count + 1)
    holders = [j for j, sizes in enumerate(part_sizes) if size in {pool_size(n, width) for n in sizes}]
    if part not in holders:
        return range(0)
    return range(holders.index(part) + 1, count + 1, len(holders))


def needed_random_panels(family: int, alpha: float = ALPHA) -> int:
    """The fewest random sets N per bin for which ``m / (N + 1) < alpha``, m = ``family``.

    A lone panel's empirical random-panel q can then fall below ``alpha``
    (the call needs q < alpha, so reaching q = alpha exactly is not enough).
    """
    return math.floor(family / alpha + 1e-9) if family > 0 else 0


@dataclass
class RandomPlan:
    """What ``evaluate.random_panels`` resolved to: N per bin and why."""

    n: int
    """Random gene sets per size bin (0: no random-panel test)."""
    auto: bool
    """Whether N was chosen by ``auto``."""
    family: int
    """Panels that may get a random-panel p-value (an upper bound at parse time)."""
    bins: int
    """Pools expected: size bins, counted per universe (each collection drawing its own trains its own)."""
    cv_splits: int
    needed: int
    """The fewest N for which ``family / (N + 1) < ALPHA``."""
    budget: int
    """``evaluate.random_budget``, in random models."""
    budget_bound: bool
    """Whether the budget kept N below ``needed``."""
    bin_width: float
    smallest_q: float
    """``family / (N + 1)``: the smallest q an empirical random-panel p can reach (NaN without the test)."""
    universe: str = "cohort"
    """``evaluate.random_universe``: ``cohort``, or ``collection`` (each collection draws its own pools)."""

    def as_dict(self) -> dict:
        """The plan as JSON-ready values (NaN as None)."""
        return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in asdict(self).items()}

    def describe(self) -> str:
        """One line for the log and the report."""
        if self.n == 0:
            return "no random-panel test (evaluate.random_panels: 0)"
        how = "chosen by auto" if self.auto else "as configured"
        text = (
            f"{self.n} random gene sets per size bin ({how}; {self.bins} bins of width {self.bin_width:g}, "
            f"{self.cv_splits} CV splits, {self.n * self.bins * self.cv_splits} random models), "
            f"so the smallest empirical random-panel q for {self.family} panels is {self.smallest_q:.3g}"
        )
        if self.auto and self.budget_bound:
            text += (
                f"; the budget evaluate.random_budget={self.budget} bound it below the {self.needed} needed "
                "for q <= 0.05, so panels beyond every random set get a fitted tail p (random_p_method: fitted)"
            )
        return text


def plan_random_panels(
    setting: int | str,
    sizes: Iterable[int],
    cv_splits: int,
    budget: int = DEFAULT_BUDGET,
    width: float = DEFAULT_BIN_WIDTH,
    universes: Iterable[str] | None = None,
    universe: str = "cohort",
) -> RandomPlan:
    """Resolve ``evaluate.random_panels`` (a number, or ``auto``) for panels of ``sizes`` genes.

    ``sizes``: one entry per panel that gets a random-panel p-value (named
    panels other than ``all``, gene sets not too small to be kept);
    ``universes``: the universe each draws its random sets from ('' = the
    cohort's genes, else its collection's, as with ``evaluate.random_universe:
    collection``; all the cohort's when not given). Every universe trains its
    own pool per size bin, so the bins are counted per universe. With ``auto``,
    ``N = min(needed, budget // (bins * cv_splits))``. ``universe``:
    ``evaluate.random_universe``, kept in the plan for the compare step.
    """
    sizes = [int(s) for s in sizes]
    where = [str(u) for u in universes] if universes is not None else [""] * len(sizes)
    pairs = [(u, s) for u, s in zip(where, sizes, strict=True) if s > 0]
    sizes = [s for _, s in pairs]
    family = len(sizes)
    bins = sum(len(pool_sizes([s for v, s in pairs if v == u], width)) for u in {u for u, _ in pairs})
    needed = needed_random_panels(family)
    auto = setting == "auto"
    if auto:
        per_draw = max(bins * max(cv_splits, 1), 1)
        affordable = int(budget) // per_draw
        n = min(needed, affordable)
        bound = affordable < needed
    else:
        n = int(setting)
        bound = False
    smallest = family / (n + 1) if n > 0 and family else math.nan
    return RandomPlan(
        n, auto, family, bins, int(cv_splits), needed, int(budget), bound, float(width), smallest, str(universe)
    )


def listed_sizes(units: Iterable[Mapping], panel_size: Callable[[object], int | None]) -> list[int]:
    """One listed size per panel of the run that may meet random genes (:func:`listed_panels`, sizes only)."""
    return [size for _, size in listed_panels(units, panel_size)]


def listed_panels(
    units: Iterable[Mapping], panel_size: Callable[[object], int | None], universe: str = "cohort"
) -> list[tuple[str, int]]:
    """One ``(universe, listed size)`` per panel of the run that may meet random genes (parse time: the cohort is not read yet).

    The universe is '' (the cohort's genes) for named panels, and for a
    collection's sets unless ``universe`` (``evaluate.random_universe``) is
    ``collection``: then the collection's name (its sets draw from its genes).

    ``units``: the fit jobs' units (``params.unit``). Named panels: their
    listed genes (``panel_size(spec)``; None for ``all``, which is every gene
    and has no random counterpart). Collection sets: their distinct listed
    genes, when at least the part's ``min_size`` (a set listing fewer is
    skipped whatever the cohort holds).
    """
    from .gmt import read_gmt  # pandas: only when the run has collections
    from .units import collection_defaults

    sizes: list[tuple[str, int]] = []
    read: dict[str, dict[str, int]] = {}
    for unit in units:
        if unit.get("collection"):
            gmt = str(unit["gmt"])
            if gmt not in read:
                read[gmt] = {s.name: len(s.genes) for s in read_gmt(gmt)}
            floor = int(unit.get("min_size", collection_defaults()["min_size"]))
            own = str(unit["collection"]) if universe == "collection" else ""
            sizes += [(own, read[gmt][n]) for n in unit["sets"] if n in read[gmt] and read[gmt][n] >= floor]
        else:
            for spec in unit["panels"].values():
                size = panel_size(spec)
                if size:
                    sizes.append(("", int(size)))
    return sizes


def plan_for_run(
    evaluate: Mapping, split: Mapping, units: Iterable[Mapping], panel_size: Callable[[object], int | None]
) -> RandomPlan:
    """The run's :class:`RandomPlan` from the config's ``evaluate`` and ``split`` sections and the fit units."""
    split = with_defaults("split", split)
    evaluate = with_defaults("evaluate", evaluate)
    cv_splits = int(split["cv_folds"]) * int(split["cv_repeats"])
    universe = str(evaluate["random_universe"])
    listed = listed_panels(units, panel_size, universe)
    return plan_random_panels(
        evaluate["random_panels"],
        [size for _, size in listed],
        cv_splits,
        int(evaluate["random_budget"]),
        float(evaluate["random_bin_width"]),
        universes=[u for u, _ in listed],
        universe=universe,
    )
