"""The package's layers, read from the source: no import loop between pnp_vision modules, and the
run-time code (what a rig runs: capture, wire, inspection, worker, client, console, transport)
never imports the training code (`teach`) or the developer tools (`devtools`).

Every `import` statement counts, wherever it stands: at module level, inside a function (a
local import only postpones a loop to the first call) or under `if TYPE_CHECKING:` (a loop a
type checker still has to untangle). `from package import name` counts as importing the
submodule `package.name` when there is one, else the package itself.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterator
from pathlib import Path

import pnp_vision

ROOT = Path(pnp_vision.__file__).parent
RUN_TIME = (
    "pnp_vision.capture",
    "pnp_vision.protocol",
    "pnp_vision.inspect",
    "pnp_vision.service",
    "pnp_vision.console",
    "pnp_vision.transport",
    "pnp_vision.client",
    "pnp_vision.config",
    "pnp_vision.errors",
)
FORBIDDEN_AT_RUN_TIME = ("pnp_vision.devtools", "pnp_vision.teach")


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imported(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """(pnp_vision module imported, line) for every import statement in the file."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield from _known(alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")
                if not is_package:
                    package.pop()
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, base] if base else package)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield from _known(sub if sub in MODULES else base, node.lineno)


def _known(name: str, line: int) -> Iterator[tuple[str, int]]:
    """The longest pnp_vision module that `name` names (`import a.b.c` runs a.b.c)."""
    parts = name.split(".")
    while parts:
        if ".".join(parts) in MODULES:
            yield ".".join(parts), line
            return
        parts.pop()


def import_graph() -> dict[str, dict[str, int]]:
    """module -> {imported module: first line}, self-imports left out."""
    graph: dict[str, dict[str, int]] = {}
    for module, path in MODULES.items():
        edges: dict[str, int] = {}
        for target, line in _imported(module, path):
            if target != module:
                edges.setdefault(target, line)
        graph[module] = edges
    return graph


def _cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """One loop through each strongly connected group of two or more modules (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_loop_in(graph, group) for group in groups]


def _loop_in(graph: dict[str, dict[str, int]], group: set[str]) -> list[str]:
    """A shortest path from the group's first module back to itself, inside the group."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph[node]):
                if nxt == start:
                    return [*paths[node], start]
                if nxt in group and nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"no loop in {group}")  # pragma: no cover (a group always has one)


def _is(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_the_graph_sees_every_kind_of_import() -> None:
    """The parser finds module-level, function-local, TYPE_CHECKING and relative-to-package
    imports (else the two checks below could pass on an empty graph)."""
    graph = import_graph()
    assert len(graph) > 80
    assert "pnp_vision.service.ioloop" in graph["pnp_vision.service.worker"]  # module level
    assert "pnp_vision.inspect.engine" in graph["pnp_vision.inspect"]  # a package's re-export
    # function-local: the worker's model thread builds the Inspector on its own thread
    assert "pnp_vision.inspect" in graph["pnp_vision.service.model_thread"]


def test_no_import_loop_between_pnp_vision_modules() -> None:
    graph = import_graph()
    loops = [
        " -> ".join([*(f"{a} (line {graph[a][b]})" for a, b in itertools.pairwise(loop)), loop[-1]])
        for loop in _cycles(graph)
    ]
    assert not loops, "import loops:\n" + "\n".join(loops)


def _chains(graph: dict[str, dict[str, int]], starts: tuple[str, ...], banned: tuple[str, ...]):
    """Each shortest import chain from a module under `starts` to one under `banned`."""
    chains = []
    for start in sorted(m for m in graph if _is(m, starts)):
        came_from: dict[str, str | None] = {start: None}
        frontier = [start]
        while frontier:
            following = []
            for node in frontier:
                for nxt in sorted(graph[node]):
                    if nxt in came_from:
                        continue
                    came_from[nxt] = node
                    if not _is(nxt, banned):
                        following.append(nxt)
                        continue
                    chain, at = [nxt], node
                    while at is not None:
                        chain.append(f"{at} (line {graph[at][chain[-1].split()[0]]})")
                        at = came_from[at]
                    chains.append(" -> ".join(reversed(chain)))
            frontier = following
    return chains


def test_run_time_code_never_imports_teach_or_devtools() -> None:
    """Directly or through another module (the chain is printed)."""
    bad = _chains(import_graph(), RUN_TIME, FORBIDDEN_AT_RUN_TIME)
    assert not bad, "run-time code reaches training or developer code:\n" + "\n".join(bad)


def test_teach_never_imports_devtools() -> None:
    """The product's training (`pnp-vision train`) stands without the developer tools."""
    bad = _chains(import_graph(), ("pnp_vision.teach",), ("pnp_vision.devtools",))
    assert not bad, "teach reaches devtools:\n" + "\n".join(bad)
