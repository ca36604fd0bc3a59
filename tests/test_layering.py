"""The package's layering, read from the source with ``ast`` (nothing is imported):

- nothing under ``eisnn/train`` imports ``eisnn.diagnostics`` (nor ``eisnn.run`` or ``eisnn.cli``,
  which sit above both);
- nothing under ``eisnn/diagnostics`` uses a private name (leading underscore) of ``eisnn.train``;
- no module of ``eisnn`` imports the scripts of ``experiments/`` or ``benchmarks/``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "eisnn"
ABOVE_TRAIN = ("eisnn.diagnostics", "eisnn.run", "eisnn.cli")
SCRIPT_FOLDERS = ("experiments", "benchmarks")


def module_name(path: Path) -> str:
    """``src/eisnn/train/plots.py`` -> ``eisnn.train.plots``; an ``__init__`` -> its package."""
    parts = path.relative_to(ROOT / "src").with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def imported(tree: ast.AST, module: str, package: bool) -> Iterator[tuple[int, str, str | None]]:
    """``(level, absolute module, imported name or None)`` of every import statement in ``tree``
    (at any depth: imports inside functions count), relative imports resolved."""
    base = module.split(".") if package else module.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield 0, alias.name, None
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = base[: len(base) - node.level + 1]
                target = ".".join(anchor + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                yield node.level, target, alias.name


def within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def upward_imports(tree: ast.AST, module: str, package: bool = False) -> list[str]:
    """Imports of ``eisnn.diagnostics``, ``eisnn.run`` or ``eisnn.cli`` (``from eisnn import
    diagnostics`` included)."""
    found = []
    for _, target, name in imported(tree, module, package):
        full = f"{target}.{name}" if name is not None else target
        if within(target, ABOVE_TRAIN) or within(full, ABOVE_TRAIN):
            found.append(full)
    return found


def _dotted(node: ast.AST) -> list[str] | None:
    """``a.b.c`` as ``["a", "b", "c"]``; None for anything but names and attributes."""
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return None if head is None else [*head, node.attr]
    return None


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_train_uses(tree: ast.AST, module: str, package: bool = False) -> list[str]:
    """Private names of ``eisnn.train`` that ``tree`` imports or reaches as an attribute of an
    imported ``eisnn.train`` module (``from eisnn.train import plots; plots._save``)."""
    found, bound = [], {}
    for _, target, name in imported(tree, module, package):
        full = f"{target}.{name}" if name is not None else target
        if within(full, ("eisnn.train",)) and any(_private(p) for p in full.split(".")):
            found.append(full)
        if name is None:  # import a.b.c binds a
            bound[target.split(".")[0]] = target.split(".")[0]
        elif name != "*":
            bound[name] = full
    for node in ast.walk(tree):
        parts = _dotted(node) if isinstance(node, ast.Attribute) else None
        if parts and parts[0] in bound and _private(parts[-1]):
            full = ".".join([bound[parts[0]], *parts[1:]])
            if within(full, ("eisnn.train",)):
                found.append(full)
    return found


def script_imports(
    tree: ast.AST, module: str, scripts: set[str], package: bool = False
) -> list[str]:
    """Absolute imports of a script of experiments/ or benchmarks/ (or of those folders)."""
    return [
        target
        for level, target, _ in imported(tree, module, package)
        if level == 0 and target.split(".")[0] in scripts
    ]


def sources(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


def parse(path: Path) -> ast.AST:
    return ast.parse(path.read_text(), filename=str(path))


def scripts() -> set[str]:
    names = set(SCRIPT_FOLDERS)
    for folder in SCRIPT_FOLDERS:
        names |= {p.stem for p in (ROOT / folder).glob("*.py")}
    return names


# ---------------------------------------------------------------- the package as it is
def test_train_imports_nothing_above_it():
    found = {
        module_name(p): upward_imports(parse(p), module_name(p), is_package(p))
        for p in sources(PACKAGE / "train")
    }
    assert len(found) >= 10
    assert {m: f for m, f in found.items() if f} == {}


def test_diagnostics_use_no_private_name_of_train():
    found = {
        module_name(p): private_train_uses(parse(p), module_name(p), is_package(p))
        for p in sources(PACKAGE / "diagnostics")
    }
    assert any(
        imported(parse(p), module_name(p), is_package(p)) for p in sources(PACKAGE / "diagnostics")
    )
    assert {m: f for m, f in found.items() if f} == {}


def test_the_package_imports_no_experiment_or_benchmark_script():
    names = scripts()
    assert {"study", "study_grid", "study_report", "train_step"} <= names
    found = {
        module_name(p): script_imports(parse(p), module_name(p), names, is_package(p))
        for p in sources(PACKAGE)
    }
    assert {m: f for m, f in found.items() if f} == {}


# ------------------------------------------------- the checks catch what they look for
@pytest.mark.parametrize(
    "source",
    [
        "from eisnn.diagnostics.plots import plot_diagnostics",
        "import eisnn.diagnostics",
        "from eisnn import diagnostics",
        "from ..diagnostics import TrainingDiagnostics",
        "def f():\n    from eisnn.run import start_run",
    ],
)
def test_an_upward_import_is_found(source):
    assert upward_imports(ast.parse(source), "eisnn.train.trainer")


@pytest.mark.parametrize(
    "source",
    [
        "from eisnn.train.plots import _save",
        "from ..train.plots import _series",
        "from eisnn.train import plots\nplots._save(1, 2)",
        "import eisnn.train.plots\neisnn.train.plots._save(1, 2)",
        "from eisnn.train._private import thing",
    ],
)
def test_a_private_train_name_is_found(source):
    assert private_train_uses(ast.parse(source), "eisnn.diagnostics.plots")


def test_public_names_and_other_private_names_pass():
    source = (
        "from eisnn.train.plots import save_figure, series\nfrom . import stats\n"
        "stats._helper()\nfrom eisnn.train import plots\nplots.__name__"
    )
    assert private_train_uses(ast.parse(source), "eisnn.diagnostics.plots") == []
    assert (
        upward_imports(
            ast.parse("from eisnn.train.monitor import FiringRateMonitor"), "eisnn.train.evaluate"
        )
        == []
    )


def test_a_script_import_is_found_and_relative_imports_are_not_scripts():
    names = {"study_grid", "lif", "benchmarks"}
    assert script_imports(ast.parse("import study_grid"), "eisnn.x", names) == ["study_grid"]
    assert script_imports(ast.parse("from benchmarks.lif import main"), "eisnn.x", names)
    assert script_imports(ast.parse("from .lif import LIF"), "eisnn.nn.x", names) == []
