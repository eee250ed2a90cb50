"""Project conventions: lint clean, envs provide what each rule imports, pins agree."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
RULES = sorted((REPO / "workflow" / "rules").glob("*.smk"))
LIBRARY = REPO / "workflow" / "scripts" / "panelmlp"
IMPORT_TO_PACKAGE = {"sklearn": "scikit-learn", "yaml": "pyyaml", "sksurv": "scikit-survival"}


def _tool(name: str) -> str:
    path = shutil.which(name) or str(Path(sys.executable).parent / name)
    if not Path(path).exists():
        pytest.skip(f"{name} not installed")
    return path


def test_snakemake_lint_is_clean():
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Congratulations, your workflow is in a good condition" in proc.stdout + proc.stderr


def test_snakefmt_check():
    files = ["Snakefile", *[str(p.relative_to(REPO)) for p in RULES]]
    proc = subprocess.run([_tool("snakefmt"), "--check", *files], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_check_and_format():
    ruff = _tool("ruff")
    for args in (["check", "."], ["format", "--check", "."]):
        proc = subprocess.run([ruff, *args], cwd=REPO, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def rule_blocks() -> dict[str, dict[str, list[str]]]:
    """Per rule: the env files it may use and its script, read from the .smk text."""
    blocks: dict[str, dict[str, list[str]]] = {}
    for path in RULES:
        text = path.read_text()
        for match in re.finditer(r"^\s*rule (\w+):\n(.*?)(?=^\s*rule \w+:|\Z)", text, re.S | re.M):
            name, body = match.group(1), match.group(2)
            conda = re.search(r"conda:\s*\n\s*(.+)", body)
            script = re.search(r"script:\s*\n\s*\"(.+?)\"", body)
            if not script:
                continue
            spec = conda.group(1).strip() if conda else ""
            if spec == "training_env()":
                envs = ["torch-cpu", "torch-cuda"]
            else:
                envs = [Path(spec.strip('"')).stem] if spec else []
            blocks[name] = {"envs": envs, "script": [script.group(1)]}
    return blocks


def _module_files(base: Path, names: list[str]) -> list[Path]:
    """The files a module path under ``base`` may be: ``a/b.py`` or the package ``a/b/__init__.py``."""
    target = base.joinpath(*names) if names else base
    return [f for f in (target.with_suffix(".py"), target / "__init__.py") if f.is_file()]


def imported_packages(script: Path) -> set[str]:
    """Third-party top-level packages a script and the library modules it reaches import."""
    seen: set[Path] = set()
    packages: set[str] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: a module of the library, `level` packages up
                    base = path.parent
                    for _ in range(node.level - 1):
                        base = base.parent
                    module = (node.module or "").split(".") if node.module else []
                    todo += _module_files(base, module)
                    todo += [f for a in node.names for f in _module_files(base, [*module, a.name])]
                    continue
                names = [node.module or ""]
            for name in names:
                top = name.split(".")[0]
                if top == "panelmlp":
                    parts = name.split(".")[1:]
                    todo += _module_files(LIBRARY, parts)
                    if isinstance(node, ast.ImportFrom):
                        todo += [f for a in node.names for f in _module_files(LIBRARY, [*parts, a.name])]
                elif top and top not in sys.stdlib_module_names and top != "__future__":
                    packages.add(IMPORT_TO_PACKAGE.get(top, top))
    return packages


def test_the_import_walker_follows_packages_and_parent_imports():
    needed = imported_packages(REPO / "workflow" / "scripts" / "report.py")
    assert {"plotly", "scipy", "pandas"} <= needed and "torch" not in needed


def env_packages(name: str) -> dict[str, str]:
    env = yaml.safe_load((REPO / "envs" / f"{name}.yaml").read_text())
    out = {}
    for dep in env["dependencies"]:
        for item in dep["pip"] if isinstance(dep, dict) else []:
            if "==" in item:
                pkg, version = item.split("==")
                out[pkg.strip().lower()] = version.strip()
    return out


def test_every_rule_env_provides_what_its_script_imports():
    blocks = rule_blocks()
    assert {"clean", "split", "fit", "compare", "report"} <= set(blocks)
    problems = []
    for rule, info in blocks.items():
        assert info["envs"], f"rule {rule} declares no conda env"
        script = (REPO / "workflow" / "rules" / info["script"][0]).resolve()
        needed = imported_packages(script)
        assert "snakemake" not in needed, f"{rule}: the library must not import snakemake"
        for env in info["envs"]:
            missing = needed - set(env_packages(env))
            if missing:
                problems.append(f"rule {rule} (envs/{env}.yaml) imports {sorted(missing)}")
    assert not problems, "; ".join(problems)


def test_the_import_check_sees_torch_in_training():
    assert "torch" in imported_packages(REPO / "workflow" / "scripts" / "fit.py")
    assert "torch" not in imported_packages(REPO / "workflow" / "scripts" / "clean.py")


def test_envs_and_requirements_pin_the_same_versions():
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            assert "==" in line, f"requirements.txt: {line} is not pinned"
            pkg, version = line.split("==")
            pins[pkg.lower()] = version
    for env in ("data", "torch-cpu", "torch-cuda", "report"):
        for pkg, version in env_packages(env).items():
            assert pins.get(pkg) == version, f"envs/{env}.yaml pins {pkg}=={version}, requirements.txt {pins.get(pkg)}"


def test_the_slurm_plugin_has_its_own_pinned_requirements():
    """The SLURM plugin (it imports pandas as Snakemake starts) only where jobs are submitted, pinned there."""
    runtime = (REPO / "requirements.txt").read_text()
    assert "snakemake-executor-plugin-slurm" not in runtime
    lines = [line.split("#")[0].strip() for line in (REPO / "requirements-slurm.txt").read_text().splitlines()]
    lines = [line for line in lines if line]
    assert lines[0] == "-r requirements.txt"
    assert all("==" in line for line in lines[1:]) and any(
        line.startswith("snakemake-executor-plugin-slurm==") for line in lines
    )
    assert "requirements-slurm.txt" in (REPO / ".ci" / "run").read_text()
    assert "pip install -r requirements-slurm.txt" in (REPO / "README.md").read_text()


def test_config_errors_name_the_key_in_one_line():
    from panelmlp.config import config_error

    schema = REPO / "workflow" / "schemas" / "config.schema.yaml"
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert config_error(config, schema) is None
    config["split"]["cv_folds"] = 1
    message = config_error(config, schema)
    assert message.startswith("config split.cv_folds: 1 is less than the minimum of 2") and "\n" not in message


def test_the_snakefile_imports_no_pandas_or_torch():
    """Every `snakemake` command imports what the Snakefile and its rules import: keep it light (pandas alone
    costs about 0.2 s of each start; the modules load it where a table is built)."""
    texts = [(REPO / "Snakefile").read_text(), *(p.read_text() for p in (REPO / "workflow" / "rules").glob("*.smk"))]
    modules = sorted({m for text in texts for m in re.findall(r"^\s*(?:from|import) (panelmlp[\w.]*)", text, re.M)})
    assert "panelmlp.units" in modules and "panelmlp.predict_plan" in modules, modules
    code = (
        f"import sys; sys.path.insert(0, {str(REPO / 'workflow' / 'scripts')!r}); "
        + "; ".join(f"import {m}" for m in modules)
        + "; print(sorted(m for m in ('pandas', 'torch', 'scipy', 'sklearn', 'pyarrow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", f"the Snakefile's imports load {out.strip()}"
