"""One-way layering of ``kalm`` and ``datamodules``, checked on the source (ast), lazy imports included.

Units are kalm's sub-packages (``kalm.data``, ``kalm.envs``, ...), its top-level modules (``kalm.errors``,
``kalm.cli``, ...), the package root ``kalm`` (``__version__``) and ``datamodules``. Each may import only the
units ``ALLOWED`` names: the data format, environments, errors and the hub at the bottom; grounding, offline
RL and imagination above them; the data modules above those; the recipes (``kalm.commands``) and the pipeline
above; the command line on top. So only recipe code imports ``datamodules``, and no two units import each
other.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOTTOM = frozenset(
    {"kalm", "kalm.errors", "kalm.data", "kalm.envs", "kalm.hub", "kalm.distributed", "kalm.backbones"}
)
LEARNING = frozenset({"kalm.rl", "kalm.grounding", "kalm.imagine"})
BELOW_RECIPES = BOTTOM | LEARNING | {"datamodules", "kalm.collect"}
ALLOWED: dict[str, frozenset[str]] = {
    "kalm": frozenset(),
    "kalm.errors": frozenset(),
    "kalm.distributed": frozenset({"kalm.errors"}),
    "kalm.backbones": frozenset({"kalm.errors"}),  # causal LMs: grounded, and read as goal encoders
    "kalm.data": frozenset({"kalm", "kalm.errors"}),
    "kalm.envs": frozenset({"kalm", "kalm.errors", "kalm.data"}),
    "kalm.hub": frozenset({"kalm", "kalm.errors", "kalm.data"}),
    "kalm.collect": frozenset({"kalm.errors", "kalm.data", "kalm.envs"}),
    "kalm.rl": BOTTOM,
    "kalm.grounding": BOTTOM | {"kalm.rl"},  # the grounded LM acting as a policy is evaluated like one
    "kalm.imagine": BOTTOM | {"kalm.rl", "kalm.grounding"},
    "datamodules": BOTTOM | LEARNING,
    "kalm.commands": BELOW_RECIPES,
    "kalm.pipeline": BELOW_RECIPES | {"kalm.commands"},
    "kalm.cli": BELOW_RECIPES | {"kalm.commands", "kalm.pipeline"},
    "kalm.__main__": frozenset({"kalm.cli"}),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def unit(module: str) -> str | None:
    """The layering unit of a module (``None``: outside kalm and datamodules)."""
    parts = module.split(".")
    if parts[0] == "datamodules":
        return "datamodules"
    if parts[0] != "kalm":
        return None
    return "kalm" if len(parts) == 1 else f"kalm.{parts[1]}"


def imports(source: str, module: str, *, is_package: bool, known: set[str]) -> list[tuple[int, str]]:
    """``(line, imported module)`` of every import in ``source``, at any depth (function-level ones too).

    Relative imports are resolved against ``module``; ``from pkg import name`` counts as ``pkg.name`` when
    that is a module in ``known``.
    """
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            for alias in node.names:
                name = f"{base}.{alias.name}"
                found.append((node.lineno, name if name in known else base))
    return found


def import_graph() -> dict[tuple[str, str], list[str]]:
    """``(unit, imported unit) -> ["file:line imports module", ...]`` over kalm/ and datamodules/."""
    files = sorted([*(ROOT / "kalm").rglob("*.py"), *(ROOT / "datamodules").rglob("*.py")])
    known = {module_name(path) for path in files}
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in files:
        module = module_name(path)
        source = path.read_text()
        for line, imported in imports(source, module, is_package=path.name == "__init__.py", known=known):
            importer, target = unit(module), unit(imported)
            if importer and target and importer != target:
                edges[importer, target].append(f"{path.relative_to(ROOT)}:{line} imports {imported}")
    return edges


def violations(edges: dict[tuple[str, str], list[str]]) -> list[str]:
    """The imports the ``ALLOWED`` table forbids, each naming its file, line and module."""
    found = []
    for (importer, target), where in sorted(edges.items()):
        if importer not in ALLOWED:
            found.append(f"{importer} is not in tests/test_layering.py ALLOWED: give it a layer ({where[0]})")
        elif target not in ALLOWED[importer]:
            found += [f"{importer} may not import {target}: {site}" for site in where]
    return found


def cycles(edges: dict[tuple[str, str], list[str]]) -> list[list[str]]:
    """The cycles of the unit graph, each as a list of units (first == last), found by depth-first search."""
    graph: dict[str, set[str]] = defaultdict(set)
    for importer, target in edges:
        graph[importer].add(target)
    found, done = [], set()

    def visit(node: str, path: list[str]) -> None:
        for target in sorted(graph[node]):
            if target in path:
                found.append([*path[path.index(target) :], target])
            elif target not in done:
                visit(target, [*path, target])
        done.add(node)

    for start in sorted(graph):
        if start not in done:
            visit(start, [start])
    return found


def test_no_unit_imports_a_unit_above_it():
    edges = import_graph()
    assert ("kalm.commands", "datamodules") in edges and (
        "datamodules",
        "kalm.grounding",
    ) in edges  # it sees them
    problems = violations(edges)
    assert not problems, "imports against the layering (see tests/test_layering.py):\n" + "\n".join(problems)


def test_no_import_cycle_between_units():
    edges = import_graph()
    found = cycles(edges)
    described = [
        " -> ".join(cycle)
        + "\n    "
        + "\n    ".join(edges[a, b][0] for a, b in zip(cycle, cycle[1:], strict=False))
        for cycle in found
    ]
    assert not found, "import cycles between kalm's units:\n" + "\n".join(described)


def test_only_recipe_code_imports_datamodules():
    importers = {importer for importer, target in import_graph() if target == "datamodules"}
    assert importers <= {"kalm.commands", "kalm.pipeline", "kalm.cli"}


def test_the_table_is_acyclic_and_puts_the_cli_on_top():
    table = {(importer, target): ["table"] for importer, targets in ALLOWED.items() for target in targets}
    assert cycles(table) == []
    assert [importer for importer, targets in ALLOWED.items() if "kalm.cli" in targets] == ["kalm.__main__"]


def test_the_checker_sees_lazy_relative_and_from_imports():
    source = (
        "from kalm.errors import KalmError\nfrom . import metrics\nfrom ..rl import policy\n"
        "def later():\n    import datamodules.transitions\n    from kalm import distributed\n"
    )
    known = {"kalm.grounding.metrics", "kalm.rl.policy", "kalm.distributed"}
    found = [module for _, module in imports(source, "kalm.grounding.hub", is_package=False, known=known)]
    assert found == [
        "kalm.errors",
        "kalm.grounding.metrics",
        "kalm.rl.policy",
        "datamodules.transitions",
        "kalm.distributed",
    ]
    edges = {("kalm.rl", "datamodules"): ["kalm/rl/x.py:3 imports datamodules.transitions"]}
    assert violations(edges) == [
        "kalm.rl may not import datamodules: kalm/rl/x.py:3 imports datamodules.transitions"
    ]
    looped = {("kalm.rl", "kalm.grounding"): ["a"], ("kalm.grounding", "kalm.rl"): ["b"]}
    assert cycles(looped) == [["kalm.grounding", "kalm.rl", "kalm.grounding"]]


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_every_unit_in_the_table_exists(name):
    path = ROOT / Path(*name.split("."))
    assert path.is_dir() or path.with_suffix(".py").is_file()
