"""The package's import graph: every module imports only its own stage and the stages before it, with no exception."""

import ast
import importlib
from pathlib import Path

import pytest
from conftest import REPO

PACKAGE = REPO / "mnist_tf"
# The stages, first to last: a module or package of mnist_tf by name. docs/development.md says what each is for.
STAGES = (
    ("__init__", "errors", "files", "runtime"),
    ("data",),
    ("nn",),
    ("distribute",),
    ("config",),
    ("recipes",),
    ("fine_tuning",),
    ("plan",),
    ("reporting",),
    ("not_a_digit",),
    ("training",),
    ("export",),
    ("results", "run", "evaluate"),
    ("benchmark",),
)
STAGE_OF = {name: index for index, names in enumerate(STAGES) for name in names}
# requirements-dev.txt's packages that no feature needs to import mnist_tf (benchmark/pytorch.py imports torch).
OPTIONAL_PACKAGES = {"torch", "sklearn", "ray", "ai_edge_litert", "tensorflow_serving"}


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts)


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
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("mnist_tf")}
    return found


def stage(module: str) -> int:
    """The stage of `mnist_tf.X...` (or of a name imported from it): X's."""
    parts = module.split(".")
    assert len(parts) > 1 and parts[1] in STAGE_OF, f"{module} belongs to no stage: add it to STAGES"
    return STAGE_OF[parts[1]]


@pytest.mark.versions
def test_every_module_imports():
    """Each module's imports and module-level calls exist in this TensorFlow and Keras (optional packages are
    imported where they are used)."""
    for path in sorted(PACKAGE.rglob("*.py")):
        try:
            importlib.import_module(module_name(path).removesuffix(".__init__"))
        except ModuleNotFoundError as e:  # a module of an optional package's feature, without it (oldest stack)
            assert e.name in OPTIONAL_PACKAGES, f"{module_name(path)}: {e}"


def test_every_module_belongs_to_a_stage():
    for path in PACKAGE.rglob("*.py"):
        stage(module_name(path))


def test_stages_import_only_their_own_and_earlier_stages():
    wrong = [
        f"{module_name(path)} imports {target}"
        for path in PACKAGE.rglob("*.py")
        for target in runtime_imports(path)
        if stage(target) > stage(module_name(path))
    ]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles():
    modules = {module_name(path) for path in PACKAGE.rglob("*.py")}

    def resolve(target: str) -> str | None:  # `from mnist_tf.x import name`: the module x.name, else x
        return (
            target if target in modules else target.rsplit(".", 1)[0] if target.rsplit(".", 1)[0] in modules else None
        )

    edges = {
        module_name(path): {m for t in runtime_imports(path) if (m := resolve(t))} for path in PACKAGE.rglob("*.py")
    }
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
