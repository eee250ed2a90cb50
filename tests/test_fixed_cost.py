"""The fixed cost of a small run: what each rule script imports, and bench/pipeline.py's breakdown of a run.

Every rule script runs in a fresh process, so whatever its library modules import at the top is paid by
every job of the rule, whether the step needs it or not (torch costs about a second, scipy.stats and
scipy.optimize a few hundred milliseconds each). The first tests pin which heavy packages a step's import
leaves out, in a fresh interpreter; the others check that bench/pipeline.py's marks and its breakdown
account for every second of a run.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "workflow" / "scripts"
sys.path.insert(0, str(REPO / "bench"))

import pipeline  # noqa: E402  (bench/pipeline.py, found through the path above)

NOT_IMPORTED = {
    "panelmlp.runner:run": {"numpy", "pandas", "pyarrow", "scipy", "torch"},
    "panelmlp.io:clean_step": {"pandas", "scipy", "sklearn", "torch", "plotly"},
    "panelmlp.splits:split_step": {"scipy", "sklearn", "torch", "plotly"},
    "panelmlp.compare:compare_step": {"scipy.optimize", "scipy.stats", "sklearn", "torch", "plotly"},
    "panelmlp.report.build:build_report": {"scipy.optimize", "scipy.stats", "sklearn", "torch"},
    "panelmlp.importance:metric_tables_step": {"scipy.optimize", "scipy.stats", "sklearn", "torch", "plotly"},
    "panelmlp.fit:fit_unit": {"scipy.optimize", "scipy.stats", "sklearn", "plotly"},
}
"""Per rule step (module:function): packages importing it must not load."""


@pytest.mark.parametrize("target", sorted(NOT_IMPORTED))
def test_a_rule_step_imports_no_package_it_does_not_need(target: str) -> None:
    module, name = target.split(":")
    code = f"import sys\nfrom {module} import {name}\nprint(' '.join(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=SCRIPTS, capture_output=True, text=True, check=True)
    loaded = set(proc.stdout.split())
    assert module in loaded  # the import really ran
    assert not NOT_IMPORTED[target] & loaded, f"{target} loads {sorted(NOT_IMPORTED[target] & loaded)}"


def test_the_df_search_imports_scipy_optimize_when_it_needs_it() -> None:
    """compare._df_reaching imports brentq in the function: the df it finds puts the t tail at the share."""
    from panelmlp.compare import _df_reaching
    from scipy.special import stdtr

    t, share, most = 2.5, 0.04, 200.0
    assert stdtr(most, -t) < share < stdtr(1.0, -t)  # neither end: the root search runs
    df = _df_reaching(t, share, most)
    assert 1.0 < df < most
    assert math.isclose(stdtr(df, -t), share, rel_tol=1e-6)


def run_marked(tmp_path: Path, step_body: str) -> list[dict]:
    """Run a stand-in rule script (under .snakemake/scripts/) with pipeline.py's hooks; its marks."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(pipeline.SITECUSTOMIZE)
    script = tmp_path / ".snakemake" / "scripts" / "tmpabc.step.py"
    script.parent.mkdir(parents=True)
    (tmp_path / "logs").mkdir()
    script.write_text(
        "import time\n"
        "from panelmlp.runner import run\n"
        f"def step():\n    {step_body}\n"
        f"run([{str(tmp_path / 'logs' / 'step.log')!r}], step)\n"
    )
    timings = tmp_path / "timings.jsonl"
    env = {**os.environ, pipeline.TIMINGS_ENV: str(timings), "PYTHONPATH": f"{hooks}{os.pathsep}{SCRIPTS}"}
    subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, check=True, capture_output=True)
    return [json.loads(line) for line in timings.read_text().splitlines()]


def test_the_hooks_mark_a_rule_script_from_start_to_exit(tmp_path: Path) -> None:
    marks = run_marked(tmp_path, "time.sleep(0.3)")
    assert len(marks) == 1
    job = marks[0]
    assert job["kind"] == "job" and pipeline.job_name(job) == "step"
    assert job["start"] <= job["library"] <= job["run"] <= job["exit"]
    assert 0.3 <= job["exit"] - job["run"] < 2.0  # the step's sleep is work, not start-up


def test_the_breakdown_accounts_for_every_second() -> None:
    """Parts of a run whose last two jobs overlap add up to its wall time; each job splits into three."""

    def job(name: str, start: float, library: float, called: float, end: float) -> dict:
        return {
            "kind": "job",
            "log": f"logs/{name}.log",
            "start": start,
            "library": library,
            "run": called,
            "exit": end,
        }

    marks = [
        {"kind": "snakemake", "start": 0.02, "returned": 2.7},
        job("clean", 0.5, 0.6, 0.8, 1.0),
        job("fit/part_1", 1.1, 1.2, 1.6, 2.0),
        job("fit/part_2", 1.5, 1.6, 1.9, 2.5),
    ]
    parts = pipeline.breakdown(marks, launched=0.0, ended=3.0)
    assert parts["before"] == pytest.approx(0.5)
    assert parts["between"] == pytest.approx(0.1)  # 1.0 -> 1.1; the overlap counts once
    assert parts["wrapup"] == pytest.approx(0.2) and parts["exit"] == pytest.approx(0.3)
    busy = 0.5 + 1.4
    assert sum(parts[k] for k in ("before", "between", "wrapup", "exit")) + busy == pytest.approx(parts["total"])
    assert parts["fit/part_2|preamble"] == pytest.approx(0.1)
    assert parts["fit/part_2|imports"] == pytest.approx(0.3)
    assert parts["fit/part_2|work"] == pytest.approx(0.6)


def test_package_times_charge_a_package_where_it_is_entered() -> None:
    """-X importtime lines: torch under panelmlp.fit counts once; what Snakemake's preamble loads does not."""
    lines = [
        "import time: self [us] | cumulative | imported package",
        "import time:       100 |        100 |       torch._C",
        "import time:       900 |       1000 |     torch",
        "import time:        50 |         50 |       numpy._core",
        "import time:       150 |        200 |     numpy",
        "import time:        10 |       1210 |   panelmlp.fit",
        "import time:        40 |         40 |     tenacity",
        "import time:        60 |        100 |   snakemake.script",
    ]
    assert pipeline.package_times(lines) == {"torch": 1.0, "numpy": 0.2}


def test_the_floor_workflow_runs_its_five_steps_in_order(tmp_path: Path) -> None:
    """bench/pipeline.py's floor: five chained rule scripts under Snakemake, each leaving its file, in order."""
    wall = pipeline.floor_run(tmp_path / "floor", sys.executable, "2")
    done = [tmp_path / "floor" / f"{step}.done" for step in pipeline.FLOOR_STEPS]
    assert all(path.exists() for path in done)
    times = [path.stat().st_mtime_ns for path in done]
    assert times == sorted(times)  # each step ran after the one it needs
    assert wall > 0
