"""Fit units planned from the config without Snakemake (panelmlp.units), and the same jobs under Snakemake."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from panelmlp import units as units_module
from panelmlp.errors import PanelMlpError
from panelmlp.synthetic import write_cohort
from panelmlp.units import (
    GROUP_MAX_GENES,
    Unit,
    check_importance,
    check_set_names,
    collection_defaults,
    plan_units,
    resolve,
)

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
GLIAL = ["GFAP", "SOX2", "OLIG2", "S100B", "SLC1A3"]


def _gmt(path: Path, sizes: list[int], prefix: str = "SET") -> Path:
    """A GMT file of one set per size, in that order: set ``{prefix}_{i}`` lists ``sizes[i]`` genes ``G00001``...."""
    lines = [f"{prefix}_{i}\tdesc\t" + "\t".join(f"G{j + 1:05d}" for j in range(size)) for i, size in enumerate(sizes)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _config(panels: dict, per_job: int = 100, importance: list[str] | None = None) -> dict:
    return {
        "panels": panels,
        "resources": {"panels_per_job": per_job},
        "evaluate": {"importance": importance or []},
    }


def test_small_named_panels_share_one_job_and_larger_ones_get_their_own(tmp_path):
    (tmp_path / "noise.txt").write_text("G00001\n# a comment\nG00002\nG00003\n")
    edge = [f"E{i}" for i in range(GROUP_MAX_GENES)]  # exactly the limit: still grouped
    big = [f"B{i}" for i in range(GROUP_MAX_GENES + 1)]
    panels = {"glial": GLIAL, "all": "all", "gone": None, "noise": "noise.txt", "edge": edge, "big": big}
    plan = plan_units(_config(panels), lambda path: str(tmp_path / path))
    assert plan.folders == ("glial", "all", "noise", "edge", "big")  # config order, the null entry left out
    assert list(plan.jobs) == ["all", "big"]
    assert plan.grouped is not None and plan.grouped.name == "named panels"
    assert plan.grouped.panel_names == ["glial", "noise", "edge"]
    # The params Snakemake sees, key for key as the former common.smk built them (their repr decides reruns).
    assert repr(plan.jobs["all"].as_params()) == (
        "{'name': 'all', 'collection': '', 'panels': {'all': 'all'}, 'out_dirs': {'all': 'results/panels/all'}}"
    )
    grouped = plan.grouped.as_params()
    assert list(grouped) == ["name", "collection", "panels", "out_dirs"]
    assert grouped["panels"]["glial"] == GLIAL and isinstance(grouped["panels"]["glial"], list)
    assert grouped["panels"]["noise"] == str(tmp_path / "noise.txt")
    assert grouped["out_dirs"] == {p: f"results/panels/{p}" for p in ("glial", "noise", "edge")}
    assert plan.grouped.files() == [str(tmp_path / "noise.txt")]
    assert plan.jobs["all"].files() == []
    assert [u.name for u in plan.units] == ["all", "big", "named panels"]
    # The file was counted once while planning: its size is known after it is gone.
    (tmp_path / "noise.txt").unlink()
    assert plan.panel_size(str(tmp_path / "noise.txt")) == 3
    assert plan.panel_size(big) == GROUP_MAX_GENES + 1 and plan.panel_size("all") is None


def test_only_large_panels_means_no_grouped_job():
    plan = plan_units(_config({"all": "all", "glial": None}))
    assert plan.grouped is None and list(plan.jobs) == ["all"] and plan.folders == ("all",)


def test_a_collection_is_cut_into_parts_smallest_sets_first(tmp_path):
    # sizes by line: SET_0..SET_6; ordered by (size, line): SET_2(1) SET_5(2) SET_1(3) SET_4(3) SET_6(3) SET_0(9) SET_3(20)
    gmt = _gmt(tmp_path / "c.gmt", [9, 3, 1, 20, 3, 2, 3])
    plan = plan_units(
        _config({"glial": GLIAL, "screen": {"gmt": "c.gmt", "min_size": 2}}, per_job=3), {"c.gmt": str(gmt)}.get
    )
    assert list(plan.jobs) == ["screen/part-001", "screen/part-002", "screen/part-003"]
    # 7 sets, at most 3 per job: 3 parts of about equal size.
    assert [plan.jobs[u].sets for u in plan.jobs] == [
        ("SET_2", "SET_5", "SET_1"),
        ("SET_4", "SET_6"),
        ("SET_0", "SET_3"),
    ]
    assert plan.folders == ("glial", "screen/part-001", "screen/part-002", "screen/part-003")
    part = plan.jobs["screen/part-002"].as_params()
    assert list(part) == [
        "name",
        "collection",
        "gmt",
        "sets",
        "min_size",
        "max_size",
        "min_coverage",
        "out_dir",
        "sets_before",
        "cuts",
    ]
    assert part == {
        "name": "screen/part-002",
        "collection": "screen",
        "gmt": str(gmt),
        "sets": ["SET_4", "SET_6"],
        "min_size": 2,
        "max_size": 500,
        "min_coverage": 0.8,
        "out_dir": "results/panels/screen/part-002",
        "sets_before": 3,
        "cuts": [0, 3, 5, 7],
    }
    assert [plan.jobs[u].sets_before for u in plan.jobs] == [0, 3, 5]
    assert [plan.jobs[u].part_index for u in plan.jobs] == [0, 1, 2]
    assert plan.jobs["screen/part-001"].files() == [str(gmt)]
    assert plan.collection_sets() == {
        "screen": (str(gmt), ["SET_2", "SET_5", "SET_1", "SET_4", "SET_6", "SET_0", "SET_3"])
    }


def test_part_numbers_widen_past_999_parts(tmp_path):
    gmt = _gmt(tmp_path / "many.gmt", [1] * 1001)
    plan = plan_units(_config({"many": {"gmt": str(gmt)}}, per_job=1))
    names = list(plan.jobs)
    assert len(names) == 1001 and names[0] == "many/part-0001" and names[-1] == "many/part-1001"
    assert plan_units(_config({"many": {"gmt": str(gmt)}}, per_job=100)).folders[-1] == "many/part-011"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, r"config panels\.mine: panel file .*missing\.txt not found"),
        ("", r"config panels\.mine: panel file .*missing\.txt lists no gene"),
        ("A\nB\nA\n", r"config panels\.mine: panel mine: genes listed twice: \['A'\]"),
        ("folder", r"config panels\.mine: panel file .*missing\.txt is a folder"),
    ],
)
def test_a_bad_panel_file_is_named_while_planning(tmp_path, content, message):
    path = tmp_path / "missing.txt"
    if content == "folder":
        path.mkdir()
    elif content is not None:
        path.write_text(content)
    with pytest.raises(PanelMlpError, match=message):
        plan_units(_config({"glial": GLIAL, "mine": str(path)}))


def test_a_bad_gmt_file_is_named_with_its_line(tmp_path):
    bad = tmp_path / "bad.gmt"
    bad.write_text("GOOD\tdesc\tA\tB\nBROKEN with spaces A B C\n")
    with pytest.raises(PanelMlpError, match=re.escape(f"config panels.bad: {bad}:2:")):
        plan_units(_config({"bad": {"gmt": str(bad)}}))


def test_a_set_with_the_name_of_a_panel_is_refused(tmp_path):
    gmt = tmp_path / "c.gmt"
    gmt.write_text("FINE\td\tA\tB\nglial\td\tC\tD\n")
    panels = {"glial": GLIAL, "screen": {"gmt": str(gmt)}}
    plan = plan_units(_config(panels))
    with pytest.raises(
        PanelMlpError, match=re.escape(f"config panels.screen: gene set 'glial' ({gmt}:2) has the name")
    ):
        check_set_names(panels, plan)
    check_set_names({"other": GLIAL, "screen": {"gmt": str(gmt)}}, plan)  # no clash: no error


def test_importance_names_panels_and_sets(tmp_path):
    gmt = _gmt(tmp_path / "c.gmt", [2, 3])
    panels = {"glial": GLIAL, "screen": {"gmt": str(gmt)}, "gone": None}
    plan = plan_units(_config(panels))
    check_importance(["glial", "SET_1", "screen/SET_0"], panels, plan)
    check_importance([], panels, plan)
    with pytest.raises(PanelMlpError) as caught:
        check_importance(["glail"], panels, plan)
    assert str(caught.value) == (
        "config evaluate.importance: 'glail' is not a panel of this run (closest: glial); "
        "name a panel of config panels or a set of a collection (as set or collection/set), or leave it out"
    )
    for name in ("screen", "gone", "other/SET_0"):  # a collection itself, a left-out panel, a wrong collection
        with pytest.raises(PanelMlpError, match=f"config evaluate.importance: '{name}'"):
            check_importance([name], panels, plan)


def test_collection_defaults_come_from_the_schema(tmp_path):
    schema = yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))
    branch = next(b for b in schema["properties"]["panels"]["additionalProperties"]["oneOf"] if b["type"] == "object")
    expected = {k: v["default"] for k, v in branch["properties"].items() if "default" in v}
    assert set(expected) == {"min_size", "max_size", "min_coverage"}
    assert collection_defaults() == expected
    gmt = _gmt(tmp_path / "c.gmt", [2])
    unit = next(iter(plan_units({"panels": {"c": {"gmt": str(gmt)}}}).jobs.values()))  # no resources: schema's per_job
    assert (unit.min_size, unit.max_size, unit.min_coverage) == (
        expected["min_size"],
        expected["max_size"],
        expected["min_coverage"],
    )
    # A hand-written part without filters takes the schema's defaults too (the former fit job fell back to 1).
    loose = Unit.from_params({"collection": "c", "gmt": str(gmt), "sets": ["SET_0"]})
    assert loose.min_size == expected["min_size"] and loose.name == "c" and loose.out_dir == "results/panels/c"


def test_params_round_trip(tmp_path):
    gmt = _gmt(tmp_path / "c.gmt", [2, 3, 4])
    plan = plan_units(_config({"glial": GLIAL, "all": "all", "c": {"gmt": str(gmt), "min_coverage": 1}}, per_job=2))
    for unit in plan.units:
        params = unit.as_params()
        assert Unit.from_params(params) == unit
        assert repr(Unit.from_params(params).as_params()) == repr(params)
    assert plan.jobs["c/part-001"].as_params()["min_coverage"] == 1  # the config's value as given: no rerun by 1 -> 1.0
    with pytest.raises(PanelMlpError, match="params lack gmt"):
        Unit.from_params({"collection": "c", "sets": []})


def test_resolve_named_panels(tmp_path):
    (tmp_path / "p.txt").write_text("G3\nG1\n")
    unit = Unit.from_params(
        {"name": "named panels", "collection": "", "panels": {"f": str(tmp_path / "p.txt"), "l": ["G2"], "all": "all"}}
    )
    available = ["G1", "G2", "G3"]
    got = resolve(unit, available, "collection")  # named panels always draw from the cohort
    assert [(p.name, p.genes, p.folder) for p in got.panels] == [
        ("f", ["G3", "G1"], "results/panels/f"),
        ("l", ["G2"], "results/panels/l"),
        ("all", available, "results/panels/all"),
    ]
    assert got.table["n_listed"].tolist() == [2, 1, 3] and (got.table["status"] == "kept").all()
    assert got.universe == available and got.universe_name == ""
    with pytest.raises(PanelMlpError, match="panel l: 1 gene"):
        resolve(Unit.from_params({"panels": {"l": ["G2", "NOPE"]}}), available)


def test_resolve_a_collection_part_reads_its_gmt_once(tmp_path, monkeypatch):
    gmt = tmp_path / "c.gmt"
    gmt.write_text("A\td\tG3\tG1\tNOPE\nB\td\tG5\tG3\nC\td\tG7\n")
    unit = Unit.from_params(
        {
            "name": "c/part-001",
            "collection": "c",
            "gmt": str(gmt),
            "sets": ["A", "C"],
            "min_size": 2,
            "min_coverage": 0.5,
        }
    )
    available = [f"G{i}" for i in range(1, 8)]
    reads = []
    real = units_module.read_gmt
    monkeypatch.setattr(units_module, "read_gmt", lambda path: reads.append(path) or real(path))
    got = resolve(unit, available, "collection")
    assert reads == [str(gmt)]
    assert [(p.name, p.genes) for p in got.panels] == [("A", ["G3", "G1"])]
    table = got.table.set_index("panel")
    assert table.loc["A", "coverage"] == pytest.approx(2 / 3) and table.loc["A", "genes_missing"] == "NOPE"
    assert table.loc["C", "status"] == "skipped" and "below min_size 2" in table.loc["C", "reason"]
    assert (got.table["folder"] == "results/panels/c/part-001").all()
    assert (got.universe, got.universe_name) == (["G1", "G3", "G5", "G7"], "c")  # every set's genes, not the part's
    cohort = resolve(unit, available, "cohort")
    assert (cohort.universe, cohort.universe_name) == (available, "")
    gmt.write_text("A\td\tG3\n")
    with pytest.raises(PanelMlpError, match=r"sets \['C'\] changed while the workflow ran"):
        resolve(unit, available)


def test_the_fit_job_side_needs_no_jsonschema(tmp_path):
    """The torch envs have PyYAML but no jsonschema: units.py must import and resolve without it."""
    code = (
        "import sys; sys.modules['jsonschema'] = None\n"
        "from panelmlp.units import Unit, resolve\n"
        "got = resolve(Unit.from_params({'panels': {'p': ['G1']}}), ['G1', 'G2'])\n"
        "print(Unit.from_params({'collection': 'c', 'gmt': 'x', 'sets': []}).min_size, got.panels[0].genes)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO / "workflow" / "scripts")},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == [str(collection_defaults()["min_size"]), "['G1']"]


# --- the same jobs under Snakemake --------------------------------------------------------------------------------

EXPECTED_JOBS = [
    ("all", ""),
    ("clean", "results/clean"),
    ("compare", "results/metrics"),
    ("fit", "all"),
    ("fit", "big"),
    ("fit", "screen/part-001"),
    ("fit", "screen/part-002"),
    ("fit", "screen/part-003"),
    ("fit", "tiny/part-001"),
    ("fit", "tiny/part-002"),  # a collection makes resources.collection_min_jobs (2) jobs, one per set at most
    ("fit_named", "results/panels/glial results/panels/microglia results/panels/noise results/panels/planted"),
    ("report", "results"),
    ("split", "results/splits"),
]
"""(rule, unit wildcard or its outputs' folders) of every job of the dry run, as the former common.smk planned them
(but for the second part of the two-set collection ``tiny``)."""


def _dry_run_config(work: Path) -> list[str]:
    """A run with grouped and large named panels and two collections; the snakemake arguments."""
    cohort = write_cohort(work / "cohort.csv", n_samples=60, n_genes=30, seed=1)
    (work / "noise.txt").write_text("G00001\nG00002\nG00003\n")
    (work / "big.txt").write_text("\n".join(f"B{i:04d}" for i in range(GROUP_MAX_GENES + 1)) + "\n")
    _gmt(work / "screen.gmt", [4, 12, 6, 30, 8, 5, 7, 9, 10, 3, 11, 2])
    _gmt(work / "tiny.gmt", [3, 6], prefix="TINY")
    extra = {
        "panels": {
            "big": "big.txt",
            "noise": "noise.txt",
            "planted": ["SIG1", "SIG2"],
            "screen": {"gmt": "screen.gmt"},
            "tiny": {"gmt": "tiny.gmt", "min_size": 2, "max_size": 50, "min_coverage": 0.5},
        },
        "evaluate": {"random_panels": "auto", "importance": ["glial", "SET_3", "screen/SET_10"]},
        "resources": {"panels_per_job": 5},
    }
    (work / "extra.yaml").write_text(yaml.safe_dump(extra))
    return ["-n", "--configfile", str(work / "extra.yaml"), "--config", f"raw_csv={cohort.path}"]


def _jobs(text: str) -> list[tuple[str, str]]:
    """(rule, unit wildcard or the folders of its outputs) per job block of a dry run's output, sorted."""
    jobs = []
    for block in re.split(r"\n\s*\n", text):
        rule = re.search(r"^rule (\w+):", block, re.M)
        if rule is None:
            continue
        unit = re.search(r"wildcards: unit=(\S+)", block)
        output = re.search(r"output: (.+)", block)
        folders = sorted({os.path.dirname(p) for p in output.group(1).split(", ")}) if output else []
        jobs.append((rule.group(1), unit.group(1) if unit else " ".join(folders)))
    return sorted(jobs)


@pytest.mark.workflow
def test_snakemake_plans_the_same_jobs_as_before(tmp_path):
    args = _dry_run_config(tmp_path)
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path)]
    proc = subprocess.run(
        [*cmd, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert _jobs(proc.stdout + proc.stderr) == EXPECTED_JOBS


@pytest.mark.parametrize(
    ("n_sets", "per_job", "min_jobs", "cuts"),
    [
        (7, 3, 1, (0, 3, 5, 7)),
        (50, 100, 2, (0, 25, 50)),
        (51, 30, 2, (0, 26, 51)),
        (150, 100, 2, (0, 75, 150)),
        (1, 100, 2, (0, 1)),
        (0, 100, 2, (0,)),
        (5, 100, 10, (0, 1, 2, 3, 4, 5)),
        (5000, 100, 2, tuple(range(0, 5001, 100))),
    ],
)
def test_collection_cuts_are_even_at_most_per_job_and_at_least_min_jobs(n_sets, per_job, min_jobs, cuts):
    from panelmlp.units import collection_cuts

    got = collection_cuts(n_sets, per_job, min_jobs)
    assert got == cuts
    sizes = [b - a for a, b in itertools.pairwise(got)]
    assert all(0 < n <= per_job for n in sizes) and (max(sizes) - min(sizes) <= 1 if sizes else n_sets == 0)
    assert len(sizes) >= min(min_jobs, n_sets)


def test_collection_cuts_refuse_zero():
    from panelmlp.units import collection_cuts

    with pytest.raises(PanelMlpError, match="must be at least 1"):
        collection_cuts(10, 0)


def test_a_small_collection_still_makes_min_jobs_parts(tmp_path):
    gmt = _gmt(tmp_path / "c.gmt", [3] * 9)
    config = _config({"screen": {"gmt": str(gmt)}})
    assert [len(u.sets) for u in plan_units(config).jobs.values()] == [5, 4]  # the schema's default: 2 jobs
    config["resources"]["collection_min_jobs"] = 4
    plan = plan_units(config)
    assert [len(u.sets) for u in plan.jobs.values()] == [3, 2, 2, 2]
    assert {u.cuts for u in plan.jobs.values()} == {(0, 3, 5, 7, 9)}
    config["resources"]["collection_min_jobs"] = 1
    assert list(plan_units(config).jobs) == ["screen/part-001"]


def test_pool_share_deals_each_draw_to_one_part_that_needs_the_bin():
    from panelmlp.randomsets import pool_share

    # Part 0 holds 10-gene sets, part 1 10- and 20-gene sets, part 2 20-gene sets, part 3 only a 40-gene set.
    parts = [[10, 10], [10, 20], [20], [40]]
    assert list(pool_share(10, 7, parts, 0, 0)) == [1, 3, 5, 7]
    assert list(pool_share(10, 7, parts, 1, 0)) == [2, 4, 6]
    assert list(pool_share(10, 7, parts, 2, 0)) == []
    assert list(pool_share(20, 5, parts, 1, 0)) == [1, 3, 5] and list(pool_share(20, 5, parts, 2, 0)) == [2, 4]
    assert list(pool_share(40, 3, parts, 3, 0)) == [1, 2, 3]
    # By bin: at width 0.1 a 20-gene set meets the pool of 19, so the part holding it shares that pool.
    assert list(pool_share(19, 6, [[19], [20]], 1, 0.1)) == [2, 4, 6]
    assert list(pool_share(19, 6, [[19], [21]], 1, 0.1)) == []
    # No parts known (named panels, a hand-written part): the whole pool.
    assert list(pool_share(10, 4, [], 0)) == [1, 2, 3, 4]
    # Every draw once, whichever part: disjoint and complete.
    for size in (10, 20, 40):
        dealt = sorted(r for j in range(len(parts)) for r in pool_share(size, 9, parts, j, 0))
        assert dealt == list(range(1, 10))


def test_resolve_all_parts_gives_every_parts_kept_sizes(tmp_path):
    # Part order (size, line): S2(1, skipped by min_size 2) S1(2) S4(2) S0(3) S3(5); 2 parts of at most 3.
    gmt = _gmt(tmp_path / "c.gmt", [3, 2, 1, 5, 2])
    plan = plan_units(_config({"c": {"gmt": str(gmt), "min_size": 2}}, per_job=3))
    available = [f"G{j:05d}" for j in range(1, 6)]
    first, second = plan.jobs.values()
    assert (first.sets, second.sets) == (("SET_2", "SET_1", "SET_4"), ("SET_0", "SET_3"))
    for index, unit in enumerate((first, second)):
        got = resolve(unit, available, all_parts=True)
        assert got.part_sizes == [[2, 2], [3, 5]] and got.part_index == index
        assert sorted(len(p.genes) for p in got.panels) == got.part_sizes[index]
    assert resolve(first, available).part_sizes == []  # only asked for with random panels


def test_parts_cut_from_another_version_of_the_file_stop_before_dealing_pools(tmp_path):
    gmt = _gmt(tmp_path / "c.gmt", [3, 2, 1, 5, 2])
    first, _second = plan_units(_config({"c": {"gmt": str(gmt), "min_size": 2}}, per_job=3)).jobs.values()
    available = [f"G{j:05d}" for j in range(1, 6)]
    # A set added after planning: the parts would no longer agree which of them needs which pool.
    with (tmp_path / "c.gmt").open("a") as handle:
        handle.write("LATE\tdesc\tG00001\tG00002\n")
    with pytest.raises(PanelMlpError, match=r"sets changed while the workflow ran \(its parts were cut from 5 sets"):
        resolve(first, available, all_parts=True)
    assert [p.name for p in resolve(first, available).panels] == ["SET_1", "SET_4"]  # no pools: no question
