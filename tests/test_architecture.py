"""The house's structure: the layers of `.importlinter` hold, none can be broken unnoticed, and
the promises they stand for (listing runs without torch, pages without tensor code) are kept."""

import ast
import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
                              "sys.argv = ['lint-imports', '--no-cache']; lint_imports_command()"]


def lint(folder: Path) -> subprocess.CompletedProcess:
    return subprocess.run(LINT, cwd=folder, capture_output=True, text=True, timeout=120)


def _modules(package: Path) -> set[str]:
    """The modules of a package, but for its (sub)packages' `__init__` files."""
    return {".".join(path.relative_to(package.parent).with_suffix("").parts)
            for path in package.rglob("*.py") if path.name != "__init__.py"}


def test_the_import_contracts_are_kept():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_every_library_module_has_its_place_in_the_layers():
    parser = configparser.ConfigParser()
    parser.read(ROOT / ".importlinter")
    layers = parser["importlinter:contract:library-layers"]["layers"].split()
    listed = {name for name in layers if name != "|"}
    for module in _modules(ROOT / "vae_core"):
        assert any(module == name or module.startswith(name + ".") for name in listed), \
            f"{module} is in no layer of .importlinter"


@pytest.mark.parametrize("file, line", [
    ("vae_core/store.py", "from . import registry"),          # a wrong-way import
    ("vae_core/vae/model.py", "from ..m2 import model"),      # a family importing the one above it
    ("vae_core/config/base.py", "import streamlit"),          # the library importing the app's framework
], ids=["store-imports-registry", "vae-imports-m2", "config-imports-streamlit"])
def test_a_wrong_way_import_or_a_circle_breaks_the_contracts(tmp_path, file, line):
    for part in ("vae_core", "ui"):
        shutil.copytree(ROOT / part, tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path)
    path = tmp_path / file
    source = path.read_text()
    head, tail = source.split("\nfrom __future__ import annotations\n", 1)
    path.write_text(f"{head}\nfrom __future__ import annotations\n{line}\n{tail}")
    result = lint(tmp_path)
    assert result.returncode != 0 and "BROKEN" in result.stdout, result.stdout[-2000:]


def _imports_inside_functions(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    names = inner.module if isinstance(inner, ast.ImportFrom) else inner.names[0].name
                    found.append(f"{path.relative_to(ROOT)}:{inner.lineno} {names}")
    return found


def test_imports_are_at_the_top_of_each_file():
    found = [hit for folder in ("vae_core", "ui") for path in sorted((ROOT / folder).rglob("*.py"))
             for hit in _imports_inside_functions(path)]
    # the exceptions, explained where they stand: torchvision (3 s to import) for downloads only, and
    # the torch data loader for a page that draws without torch, when the digits are not cached yet
    assert [hit.split(":")[0] + " " + hit.split(" ")[1] for hit in found] == [
        "vae_core/data.py torchvision", "ui/array_models.py models"]


def test_listing_runs_and_the_home_page_need_no_torch():
    code = ("import sys; from vae_core.store import list_runs; from vae_core.report import run_summary; "
            "import ui.common; runs = list_runs('checkpoints'); [run_summary(r.record) for r in runs]; "
            "assert len(runs) >= 5; print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_pages_hold_no_tensor_code():
    for page in [ROOT / "app.py", *sorted((ROOT / "pages").glob("*.py"))]:
        tree = ast.parse(page.read_text())
        imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                    for alias in node.names}
        imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and node.module}
        assert not imported & {"torch", "torchvision"}, page.name
