"""The shape of the import graph: pure rules stay pure, domains do not import each other in a
circle, and no module reaches into another's private names."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parents[1] / "src"
# Shared layers every domain may use, and that may know about domains' words.
INFRASTRUCTURE = frozenset({"kit", "models", "migrations", "web"})
# The request edge every route passes through: who acts, what they may do and see.
EDGE_MODULES = frozenset(
    {"recoup.identity.dependencies", "recoup.identity.principal", "recoup.identity.scoping"}
)
# Circles between domains that predate this check; each is a debt to pay, not a pattern.
KNOWN_CYCLES = frozenset(
    {
        # institutions/settings.py takes scoring's defaults while scoring reads its settings
        # section and identity's users, and identity's CLI finds institutions by code
        ("identity", "institutions", "scoring"),
    }
)
# What a pure module must not reach, directly or through the modules it imports.
IMPURE = ("sqlalchemy", "fastapi", "starlette", "typer", "jinja2", "recoup.models", "recoup.db")


@dataclass(frozen=True, slots=True)
class Import:
    """One name a module imports: the module it comes from, and the name if a ``from`` import."""

    importer: str
    module: str
    name: str | None
    line: int


def module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(SOURCE.joinpath("recoup").rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _imports(module: str, *, top_level_only: bool) -> Iterator[Import]:
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    nodes: list[ast.AST] = list(tree.body)
    while nodes:
        node = nodes.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            continue
        if isinstance(node, ast.Import):
            yield from (Import(module, alias.name, None, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            source = node.module or ""
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                source = f"{base}.{source}" if source else base
            yield from (Import(module, source, alias.name, node.lineno) for alias in node.names)
        elif not top_level_only or isinstance(node, ast.If | ast.Try):
            nodes.extend(ast.iter_child_nodes(node))


def _target(entry: Import) -> str:
    """Return the module an import loads: ``from a import b`` loads ``a.b`` when that is one."""
    if entry.name is not None and f"{entry.module}.{entry.name}" in MODULES:
        return f"{entry.module}.{entry.name}"
    return entry.module


def _domain(module: str) -> str | None:
    parts = module.split(".")
    if module in EDGE_MODULES or len(parts) < 3 or parts[0] != "recoup":
        return None  # a top-level module (app, cli, db, enums …) is no domain package
    return None if parts[1] in INFRASTRUCTURE else parts[1]


def _pure_modules() -> list[str]:
    return [name for name in MODULES if name.rsplit(".", 1)[-1] == "rules"] + ["recoup.enums"]


class TestPureRules:
    @pytest.mark.parametrize("module", _pure_modules())
    def test_a_rules_module_imports_no_orm_web_or_database(self, module: str) -> None:
        seen: set[str] = set()
        path: dict[str, str] = {module: module}
        todo = [module]
        while todo:
            current = todo.pop()
            if current in seen:
                continue
            seen.add(current)
            for entry in _imports(current, top_level_only=True):
                target = _target(entry)
                assert not target.startswith(IMPURE), (
                    f"{module} must stay pure, but {path[current]} imports {target} "
                    f"({MODULES[current].name}:{entry.line})"
                )
                if target in MODULES and target not in seen:
                    path.setdefault(target, f"{path[current]} → {target}")
                    todo.append(target)


def _domain_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        importer = _domain(module)
        if importer is None:
            continue
        for entry in _imports(module, top_level_only=False):
            imported = _domain(_target(entry))
            if imported is not None and imported != importer:
                graph.setdefault(importer, set()).add(imported)
    return graph


def _cycles(graph: dict[str, set[str]]) -> set[tuple[str, ...]]:
    """Return each group of domains that import one another in a circle (Tarjan's SCCs)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: set[tuple[str, ...]] = set()

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for after in sorted(graph.get(node, ())):
            if after not in index:
                visit(after)
                low[node] = min(low[node], low[after])
            elif after in stack:
                low[node] = min(low[node], index[after])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.add(tuple(sorted(group)))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


class TestDomainCycles:
    def test_no_new_circle_between_domain_packages(self) -> None:
        graph = _domain_graph()
        found = _cycles(graph)
        new = found - KNOWN_CYCLES
        assert not new, (
            "domain packages import each other in a circle: "
            + "; ".join(" ↔ ".join(group) for group in sorted(new))
            + ". Move the shared piece down (recoup.enums, kit) or let one side depend on the other."
        )

    def test_the_known_circles_are_still_there(self) -> None:
        gone = KNOWN_CYCLES - _cycles(_domain_graph())
        assert not gone, f"no longer circular, take them off KNOWN_CYCLES: {sorted(gone)}"

    def test_compliance_and_portfolio_are_not_circular(self) -> None:
        graph = _domain_graph()
        assert not (
            "portfolio" in graph.get("compliance", set())
            and "compliance" in graph.get("portfolio", set())
        )

    def test_a_circle_is_found(self) -> None:
        graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
        assert _cycles(graph) == {("a", "b", "c")}


# A named tuple's own methods start with "_" only so as not to clash with its fields: public.
NAMED_TUPLE_API = frozenset({"_make", "_replace", "_asdict", "_fields", "_field_defaults"})


class TestPrivateNames:
    @pytest.mark.parametrize("module", sorted(MODULES))
    def test_no_module_imports_another_modules_private_name(self, module: str) -> None:
        private = [
            f"{entry.module}.{entry.name} (line {entry.line})"
            for entry in _imports(module, top_level_only=False)
            if entry.name is not None
            and entry.module.startswith("recoup")
            and entry.name.startswith("_")
            and not entry.name.startswith("__")
            and _target(entry) != module
        ]
        assert not private, f"{module} imports private names: {', '.join(private)}"

    @pytest.mark.parametrize("module", sorted(MODULES))
    def test_no_module_reads_another_modules_private_attribute(self, module: str) -> None:
        aliases = {
            entry.name if entry.name is not None else entry.module.split(".")[0]
            for entry in _imports(module, top_level_only=False)
            if _target(entry) in MODULES
        }
        tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
        reads = [
            f"{node.value.id}.{node.attr} (line {node.lineno})"
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and node.attr not in NAMED_TUPLE_API
        ]
        assert not reads, f"{module} reads private names of other modules: {', '.join(reads)}"
