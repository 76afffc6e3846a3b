"""The package's import graph: no module imports itself back through others, and stages only import earlier ones."""

import ast
from pathlib import Path

from conftest import REPO

PACKAGE = REPO / "mnist_tf"
# Which packages each stage may import (besides the top-level modules: config, errors, files, runtime, recipes).
ALLOWED = {
    "data": {"data"},
    "nn": {"data", "nn"},
    "training": {"data", "nn", "training", "reporting", "export"},
    "reporting": {"data", "nn", "reporting"},
    "export": {"data", "nn", "training", "export"},
    "benchmark": {"data", "nn", "training", "reporting", "benchmark"},
}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_imports(path: Path) -> set[str]:
    """The mnist_tf modules a file imports when it runs (imports under `if TYPE_CHECKING:` do not run)."""
    tree = ast.parse(path.read_text())
    skipped = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for node in ast.walk(block)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mnist_tf"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if (REPO / (candidate.replace(".", "/") + ".py")).exists() else node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("mnist_tf")}
    return found


def graph() -> dict[str, set[str]]:
    return {module_name(path): runtime_imports(path) for path in PACKAGE.rglob("*.py")}


def test_no_import_cycles():
    edges = graph()
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for target in sorted(edges.get(module, ())):
            assert state.get(target) != "open", "import cycle: " + " -> ".join([*trail, module, target])
            if target not in state:
                visit(target, [*trail, module])
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [])


def test_stages_import_only_earlier_stages():
    for module, targets in graph().items():
        stage = module.split(".")[1] if module.count(".") >= 2 else None
        if stage not in ALLOWED:
            continue
        for target in targets:
            target_stage = target.split(".")[1] if target.count(".") >= 2 else None
            assert target_stage is None or target_stage in ALLOWED[stage], f"{module} imports {target}"


def test_no_module_is_much_bigger_than_the_others():
    sizes = sorted((len(path.read_text().splitlines()), module_name(path)) for path in PACKAGE.rglob("*.py"))
    (largest, name), (second, _) = sizes[-1], sizes[-2]
    assert largest < 1.5 * second, f"{name} has {largest} lines"
