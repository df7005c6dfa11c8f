"""The package's layers: imports point down, never in a circle; frameworks stay in their rooms.

Read from the source with ``ast`` (module-level and function-level imports alike), so the test
needs no framework and fails on the line that breaks a rule.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "fwbench"

# Lowest first. A module may import from its own package and from packages on a lower line.
# Packages on one line may not import each other.
LAYERS: list[set[str]] = [
    {"core"},  # errors, file writes, workspace paths, threads, version
    {"registry"},  # name -> fact tables
    {"config", "data"},  # validated settings and shipped defaults; raw files -> prepared arrays
    {"record"},  # the run directory contract
    {"recipe"},  # the training recipe written once (inputs, augment, schedule, metrics, ...)
    {"bench"},  # the framework-free timing harness each arm's bench module plugs into
    {"frameworks"},  # the arms (torch, TensorFlow, Keras, JAX live only here and in parity)
    {"training"},  # one run: preflight, the epoch loop, its sinks
    {"parity"},  # both frameworks side by side
    {"study"},  # many runs: matrix, executors, collect
    {"analysis"},  # statistics and the report (no framework)
    {"commands"},  # the CLI's commands
    {"entry points"},  # fwbench/__init__.py, api.py, cli.py
]
FRAMEWORKS = {"torch", "torchvision", "tensorflow", "keras", "jax", "jaxlib"}
FRAMEWORK_ROOMS = {"frameworks", "parity"}


ENTRY_POINTS = {"__init__", "api", "cli"}


def _package(module: str) -> str:
    parts = module.split(".")
    package = parts[1] if len(parts) > 1 else "__init__"
    return "entry points" if package in ENTRY_POINTS else package


def _level(package: str) -> int:
    for i, layer in enumerate(LAYERS):
        if package in layer:
            return i
    raise AssertionError(f"package {package!r} is on no layer of tests/test_layering.py")


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(path: Path) -> list[tuple[str, int]]:
    """(imported name, line) for every import in the file, at any depth."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, node.lineno))
            out += [(f"{node.module}.{a.name}", node.lineno) for a in node.names]
        elif isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
    return out


def _fwbench_edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {m: set() for m in MODULES}
    for module, path in MODULES.items():
        for name, _ in _imports(path):
            if name in MODULES and name != module:
                edges[module].add(name)
    return edges


def test_every_package_is_on_a_layer_and_the_root_holds_only_entry_points():
    roots = {p.stem for p in SRC.glob("*.py")}
    assert roots == {"__init__", "api", "cli"}
    for module in MODULES:
        assert _level(_package(module)) >= 0


def test_imports_never_point_up_or_sideways():
    wrong = []
    for module, path in MODULES.items():
        here = _package(module)
        for name, line in _imports(path):
            if name not in MODULES or not name.startswith("fwbench"):
                continue
            there = _package(name)
            if there != here and _level(there) >= _level(here):
                wrong.append(f"{path.relative_to(SRC.parent)}:{line}: {module} -> {name}")
    assert not wrong, "imports against the layers:\n" + "\n".join(sorted(set(wrong)))


def test_no_import_circle():
    edges = _fwbench_edges()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    # A package's __init__ importing its own modules is no circle of behaviour; nothing else is.
    assert not circles, f"import circles: {circles}"


def test_frameworks_are_imported_only_in_their_rooms():
    wrong = []
    for module, path in MODULES.items():
        if _package(module) in FRAMEWORK_ROOMS:
            continue
        for name, line in _imports(path):
            if name.split(".")[0] in FRAMEWORKS:
                wrong.append(f"{path.relative_to(SRC.parent)}:{line}: imports {name}")
    assert not wrong, "a framework outside frameworks/ and parity/:\n" + "\n".join(wrong)


@pytest.mark.parametrize("folder", ["tensorflow", "jax", "torch"])
def test_each_keras_backend_has_its_own_folder_with_the_same_module_names(folder):
    assert (SRC / "frameworks" / "keras" / folder / "step.py").is_file()


def test_no_two_modules_share_a_name():
    names: dict[str, list[str]] = {}
    for module in MODULES:
        leaf = module.rsplit(".", 1)[-1]
        if MODULES[module].name == "__init__.py" or leaf == "step":
            continue  # the Keras backends' step.py share a name by design (keras/src/backend)
        names.setdefault(leaf, []).append(module)
    shared = {k: v for k, v in names.items() if len(v) > 1}
    # Each arm package names its modules alike (backend, models, bench, envinfo, data).
    allowed = {"backend", "models", "bench", "envinfo", "data"}
    assert not {k: v for k, v in shared.items() if k not in allowed}, shared
