"""The house rules that a reviewer would otherwise check by eye: import contracts, lint, thin
entry points, no private names across modules. All of them run in CI (none may skip)."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("ais_jax", "experiments", "weights_convert")
ENTRY_POINT_MAX_LINES = 110
# Attributes of NamedTuple classes, public API despite the underscore.
NAMEDTUPLE_API = {"_fields", "_replace", "_asdict", "_make"}


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports; "
         "sys.exit(lint_imports(no_cache=True))"],
        cwd=root, env=env, capture_output=True, text=True, check=False)


def test_import_contracts_hold():
    proc = _lint_imports(ROOT)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


@pytest.mark.parametrize("module, line", [
    # An engine kernel reaching up to the study runner (a layer upward).
    ("ais_jax/engine/ais.py", "from ais_jax.study import runner  # noqa: F401\n"),
    # Data reaching the exports (the cycle this layout removed).
    ("ais_jax/data/datasets.py", "from ais_jax.interop import rsatoolbox  # noqa: F401\n"),
    # The library importing a command-line module.
    ("ais_jax/report/paper.py", "import experiments.aim1  # noqa: F401\n"),
])
def test_an_upward_import_breaks_the_contracts(tmp_path: Path, module: str, line: str):
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    path = tmp_path / module
    path.write_text(path.read_text() + line)
    proc = _lint_imports(tmp_path)
    assert proc.returncode != 0, proc.stdout[-4000:]
    assert "BROKEN" in proc.stdout


def test_ruff_finds_nothing():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_entry_points_are_thin():
    lengths = {p.name: len(p.read_text().splitlines())
               for p in sorted((ROOT / "experiments").glob("*.py"))}
    assert {k: v for k, v in lengths.items() if v > ENTRY_POINT_MAX_LINES} == {}


def _private_uses(path: Path) -> list[str]:
    """``from first_party import _name`` and ``module._name`` for first-party modules."""
    tree = ast.parse(path.read_text())
    found, modules = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] not in PACKAGES:
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    found.append(f"{path.name}:{node.lineno}: {node.module}.{alias.name}")
                modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PACKAGES:
                    modules.add(alias.asname or alias.name.split(".")[0])
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in modules and node.attr.startswith("_")
                and not node.attr.startswith("__") and node.attr not in NAMEDTUPLE_API):
            found.append(f"{path.name}:{node.lineno}: {node.value.id}.{node.attr}")
    return found


def test_no_private_name_is_used_across_modules():
    found = [use for name in PACKAGES for path in sorted((ROOT / name).rglob("*.py"))
             for use in _private_uses(path)]
    assert found == []
