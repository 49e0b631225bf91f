"""The import graph: packages and folders depend only downwards, and no module imports itself
back through others. Run alone with `pytest tests/test_architecture.py`."""

import ast
from pathlib import Path

from tests.helpers import REPO

# A package may import only itself and packages of a lower rank.
PACKAGE_RANKS = {
    "telemetry_client": 0,
    "telemetry_core": 0,
    "telemetry_ingest": 1,
    "telemetry_synth": 1,
    "telemetry_notify": 1,
    "telemetry_assets": 2,
    "telemetry_cli": 3,
}
# Inside the code location: the storage, catalog and settings everything builds on; then the
# checks and the dashboard; then the assets and automation; the Definitions object on top.
CODE_LOCATION_RANKS = {
    "checks": 1,
    "dashboard": 1,
    "assets": 2,
    "automation": 2,
    "definitions": 3,
    "__init__": 3,  # exposes `defs` lazily: the code location's entry, as definitions.py
}


# Where each package's import root is: the client is a distribution of its own (src layout).
IMPORT_ROOTS = {"telemetry_client": REPO / "telemetry_client" / "src"}


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGE_RANKS:
        root = IMPORT_ROOTS.get(package, REPO)
        for path in (root / package).rglob("*.py"):
            found[module_name(path, root)] = path
    return found


def imports_of(path: Path, known: set[str]) -> set[str]:
    """Every platform module `path` imports, at module level or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            if name in known:
                found.add(name)
    return found


def graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: imports_of(path, known) - {name} for name, path in found.items()}


def code_location_rank(module: str, is_package_init: bool) -> int:
    parts = module.split(".")
    if len(parts) == 1:
        return CODE_LOCATION_RANKS["__init__"] if is_package_init else 0
    return CODE_LOCATION_RANKS.get(parts[1], 0)


def test_packages_import_only_packages_below_them():
    upward = [
        f"{module} imports {imported}"
        for module, imported_set in graph().items()
        for imported in imported_set
        if PACKAGE_RANKS[imported.split(".")[0]] > PACKAGE_RANKS[module.split(".")[0]]
        or (imported.split(".")[0] != module.split(".")[0]
            and PACKAGE_RANKS[imported.split(".")[0]] == PACKAGE_RANKS[module.split(".")[0]])
    ]
    assert upward == []


def test_code_location_folders_import_only_downwards():
    found = modules()
    upward = []
    for module, imported_set in graph().items():
        if not module.startswith("telemetry_assets"):
            continue
        rank = code_location_rank(module, found[module].name == "__init__.py")
        for imported in imported_set:
            if not imported.startswith("telemetry_assets") or imported == "telemetry_assets":
                continue
            if code_location_rank(imported, found[imported].name == "__init__.py") > rank:
                upward.append(f"{module} imports {imported}")
    assert upward == []


def test_no_import_cycles():
    edges = graph()
    # Importing `a.b.c` runs `a` and `a.b` first: a package's __init__ is not an edge here.
    cycles, state = [], {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for imported in sorted(edges[module]):
            if imported in module.split(".")[:-1]:
                continue
            if state.get(imported) == "open":
                cycles.append(" -> ".join([*trail[trail.index(imported):], imported]))
            elif imported not in state:
                visit(imported, [*trail, imported])
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_the_checker_sees_the_imports_it_judges():
    edges = graph()
    assert "telemetry_core.landing" in edges["telemetry_ingest.ingest"]
    assert "telemetry_assets.definitions" in edges["telemetry_cli.launcher"]
    assert "telemetry_client.events" in edges["telemetry_ingest.otlp"]
    assert len(edges) > 50
