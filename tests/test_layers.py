"""The house's layers, read from the imports (every module parsed, lazy imports included):
the library never reaches up into what runs on it, top-level packages form no cycle, and inside
``rca`` each stage imports only stages before it on the data path."""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import networkx as nx

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("rca", "services", "collectors")

# The stages of ``rca`` in data-path order; a module may import its own stage or earlier ones.
# A module belongs to the longest prefix that names it. A module no prefix names fails the
# check: a new stage is placed here on purpose.
STAGES: tuple[tuple[str, ...], ...] = (
    ("rca.types", "rca.errors", "rca.settings", "rca.compute", "rca.registry"),
    ("rca.window",),
    ("rca.store",),  # the window store ingest writes into
    ("rca.transport",),
    ("rca.ingest",),
    ("rca.datasets",),
    ("rca.detect",),
    ("rca.causal",),
    ("rca.rank",),
    ("rca.methods",),  # the method contract, the pipeline of stages, the registry
    ("rca.eval",),
    ("rca.report",),
    ("rca.incidents",),
    ("rca.grafana",),
    ("rca.api",),
    ("rca.cli",),
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """The absolute module names one import statement names."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level == 0:
            return [node.module or ""]
        base = module.split(".")
        base = base[: len(base) - node.level + (1 if is_package else 0)]
        return [".".join([*base, node.module] if node.module else base)]
    return []


@cache
def imports() -> dict[str, list[str]]:
    """Every module of the packages -> the modules it imports, in order."""
    found: dict[str, list[str]] = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            module = _module_name(path)
            tree = ast.parse(path.read_text(), filename=str(path))
            is_package = path.name == "__init__.py"
            found[module] = [
                name for node in ast.walk(tree) for name in _imported(node, module, is_package)
            ]
    return found


def _top(module: str) -> str:
    return module.split(".")[0]


def _stage(module: str) -> int:
    if module == "rca":  # the package's own __init__
        return 0
    best = max(
        (
            (len(prefix), index)
            for index, prefixes in enumerate(STAGES)
            for prefix in prefixes
            if module == prefix or module.startswith(prefix + ".")
        ),
        default=None,
    )
    assert best is not None, f"{module} is in no stage of STAGES: add it where the data path has it"
    return best[1]


def test_every_package_is_parsed():
    modules = imports()
    for package in PACKAGES:
        assert package in modules
    assert "rca.detect.slo" in modules and "services.sim.model" in modules


def test_the_library_never_imports_what_runs_on_it():
    wrong = [
        f"{module} imports {name}"
        for module, names in imports().items()
        if _top(module) == "rca"
        for name in dict.fromkeys(names)
        if _top(name) in {"services", "collectors"}
    ]
    assert not wrong, "rca must not import services/ or collectors/:\n" + "\n".join(wrong)


def test_no_cycle_between_top_level_packages():
    graph = nx.DiGraph()
    why: dict[tuple[str, str], str] = {}
    for module, names in imports().items():
        for name in names:
            if _top(name) in PACKAGES and _top(name) != _top(module):
                graph.add_edge(_top(module), _top(name))
                why.setdefault((_top(module), _top(name)), f"{module} imports {name}")
    cycles = list(nx.simple_cycles(graph))
    assert not cycles, "; ".join(
        " -> ".join(f"{a} ({why[a, b]})" for a, b in zip(c, [*c[1:], c[0]], strict=True))
        for c in cycles
    )


def test_no_rca_stage_imports_a_later_one():
    wrong = []
    for module, names in imports().items():
        if _top(module) != "rca":
            continue
        for name in dict.fromkeys(names):
            if _top(name) == "rca" and _stage(name) > _stage(module):
                wrong.append(f"{module} (stage {_stage(module)}) imports {name} ({_stage(name)})")
    assert not wrong, "imports against the data path (see STAGES):\n" + "\n".join(wrong)


def test_a_violation_would_be_named():
    """The checks see lazy and relative imports, and name the module and the import."""
    tree = ast.parse("def f():\n    from ..cli import main\n    import services.stack\n")
    names = [n for node in ast.walk(tree) for n in _imported(node, "rca.detect.slo", False)]
    assert names == ["rca.cli", "services.stack"]
    assert _stage("rca.cli") > _stage("rca.detect.slo")
    assert _stage("rca.rank.walk_ranker") < _stage("rca.methods.pipeline")
