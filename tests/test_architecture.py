"""The tree keeps its shape: packages import one way, functions stay short, every module has tests."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "vqa_cli"
TESTS = Path(__file__).resolve().parent
MAX_FUNCTION_LINES = 60


def modules() -> dict[str, Path]:
    """'run.stream' -> its file, for every module of vqa_cli ('cli', 'errors', ... at the top)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        found[".".join(parts)] = path
    return found


def unit(module: str) -> str:
    """The node of the graph a module belongs to: its top-level package, or the top-level module itself."""
    return module.split(".")[0]


def imported(module: str, path: Path) -> set[str]:
    """Every vqa_cli module `module` imports, at the top or inside functions, as dotted names below vqa_cli."""
    package = module.split(".")[:-1] if path.name != "__init__.py" else module.split(".")[:-1]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
                targets |= {name} if node.module else {f"{name}.{a.name}".strip(".") for a in node.names}
            elif node.module and node.module.split(".")[0] == "vqa_cli":
                targets.add(node.module.removeprefix("vqa_cli").strip("."))
        elif isinstance(node, ast.Import):
            targets |= {a.name.removeprefix("vqa_cli").strip(".") for a in node.names if a.name.split(".")[0] == "vqa_cli"}
    return {t for t in targets if t}


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in modules().items():
        source = unit(module)
        for target in imported(module, path):
            if unit(target) != source and unit(target) != "__init__":
                graph.setdefault(source, set()).add(unit(target))
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the stack, 2 done

    def visit(node: str, stack: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [node, nxt] if nxt in stack else [node, nxt]
            if nxt not in state:
                cycle = visit(nxt, stack + [node])
                if cycle:
                    return cycle
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node, [])
            if cycle:
                return cycle
    return None


def test_the_package_import_graph_has_no_cycle():
    graph = package_graph()
    assert "run" in graph and "backends" in graph["run"]  # the graph is really read
    assert find_cycle(graph) is None, f"import cycle: {' -> '.join(find_cycle(graph))}"


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) is not None
    assert find_cycle({"a": {"b"}, "b": {"c"}}) is None


def test_data_flows_one_way_as_the_readme_says():
    graph = package_graph()
    below = {"model": set(), "store": {"model"}, "backends": {"model", "store"}, "io": set()}
    for package, allowed in below.items():
        assert graph.get(package, set()) - {"errors"} <= allowed, f"{package} imports {graph[package] - allowed - {'errors'}}"
    assert "run" not in graph.get("backends", set()) and "run" not in graph.get("io", set())


def test_no_function_is_over_60_lines():
    long = []
    for module, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{module}.{node.name}: {lines} lines")
    assert not long, long


def test_every_module_has_its_test_file():
    missing = []
    for module, path in modules().items():
        if path.name in ("__init__.py", "__main__.py"):
            continue
        parts = module.split(".")
        expected = TESTS.joinpath(*parts[:-1], f"test_{parts[-1]}.py")
        if not expected.is_file():
            missing.append(str(expected.relative_to(TESTS.parent)))
    assert not missing, missing
