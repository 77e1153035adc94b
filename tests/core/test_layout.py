"""The house rules of the layout: the import contracts of pyproject.toml hold (and catch what they are meant to
catch), every package is installed, and the stage registry is the one list of stages."""

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = {"flows": "medgen/flows", "tasks": "medgen/tasks", "workers": "medgen/workers"}


def _installed_layout(dest: Path) -> Path:
    """medgen as it installs (flows/, tasks/ and workers/ inside it), which lint-imports analyses: an editable
    install maps those folders through an import hook that static analysis does not see."""
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "medgen", dest / "medgen", ignore=ignore)
    for folder, target in LAYERS.items():
        shutil.copytree(ROOT / folder, dest / target, ignore=ignore)
    return dest


def _lint(tree: Path) -> subprocess.CompletedProcess:
    lint = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml"), "--no-cache"], cwd=tree,
                          env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                          timeout=300)


def test_import_contracts_hold(tmp_path):
    out = _lint(_installed_layout(tmp_path))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "3 kept, 0 broken" in out.stdout


# (file, line planted at its end, the contract that must break)
VIOLATIONS = [
    ("medgen/core/io.py", "import prefect", "never imports Prefect"),
    ("medgen/evaluate/figures.py", "from medgen.data.synthetic import clinical", "stages meet only through"),
    ("medgen/generate/stage.py", "from medgen.serve import stage as serve_stage", "stages meet only through"),
    ("medgen/core/skip.py", "from medgen.train import stage as train_stage", "layers"),
    ("medgen/cli.py", "from medgen.tasks import stages", "layers"),
]


@pytest.mark.parametrize("path, line, contract", VIOLATIONS, ids=[v[0] for v in VIOLATIONS])
def test_each_contract_catches_a_planted_violation(tmp_path, path, line, contract):
    tree = _installed_layout(tmp_path)
    with (tree / path).open("a") as f:
        f.write(f"\n{line}\n")
    out = _lint(tree)
    assert out.returncode != 0
    broken = [ln for ln in out.stdout.splitlines() if " BROKEN" in ln]
    assert any(contract in ln for ln in broken), out.stdout[-2000:]


def test_every_package_is_installed():
    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "medgen").rglob("__init__.py")}
    found |= {f"medgen.{name}" for name in LAYERS}
    assert declared == found


def test_every_package_says_what_it_owns():
    import importlib

    for init in (ROOT / "medgen").rglob("__init__.py"):
        name = ".".join(init.parent.relative_to(ROOT).parts)
        doc = importlib.import_module(name).__doc__
        assert doc and len(doc.split()) >= 8, f"{name}: its __init__ needs a docstring saying what it owns"


def test_no_logic_module_is_over_900_lines():
    # Data tables (the synthetic engine's clinical tables) may be large; logic modules may not.
    tables = {ROOT / "medgen" / "data" / "synthetic" / "clinical.py"}
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "medgen").rglob("*.py")
            if p not in tables and (n := len(p.read_text().splitlines())) > 900}
    assert not long, long
