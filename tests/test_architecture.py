"""The import graph of the project's packages, read from the source with ``ast`` (every import
statement, also those inside functions; only ``if TYPE_CHECKING:`` blocks are left out, as they
run under a type checker alone): no module imports itself back through others, and the layers
point one way — bot → services → (reporting_forms, storage), storage → reporting_forms.
"""

from __future__ import annotations

import ast
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from setuptools import find_packages

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "services", "reporting_forms", "storage")

# Import edges (importer, imported) a cycle may still run through, each with the reason. The
# coordinator empties it once the other refactoring branches of issue 12 have landed; it must
# end up empty. An edge listed here that no longer exists fails the test, so the list cannot rot.
ALLOWED_CYCLE_EDGES: frozenset[tuple[str, str]] = frozenset()

# What each layer must not import (a prefix matches the package and its modules). Imports
# under TYPE_CHECKING count here: an annotation naming a class of an upper layer is a dependency
# on it all the same.
FORBIDDEN: Mapping[str, tuple[str, ...]] = {
    "reporting_forms": ("aiogram", "bot", "services", "storage"),
    "services": ("aiogram", "bot"),
    "storage": ("aiogram", "bot", "services"),
}


@dataclass(frozen=True)
class Import:
    importer: str
    target: str  # an absolute dotted name: a module, or a module's attribute
    line: int
    type_checking: bool


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def project_sources(root: Path = ROOT) -> dict[str, tuple[str, bool]]:
    """Module name → (source, is a package ``__init__``) of every module of PACKAGES."""
    out: dict[str, tuple[str, bool]] = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            out[module_name(path, root)] = (path.read_text(encoding="utf-8"), path.name == "__init__.py")
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(name: str, source: str, *, is_package: bool = False) -> Iterator[Import]:
    """Every import statement of a module, wherever it stands (module level, a function, a
    class, a try block), relative ones made absolute."""

    def walk(node: ast.AST, type_checking: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    yield from visit(stmt, True)
                for stmt in child.orelse:
                    yield from visit(stmt, type_checking)
            else:
                yield from visit(child, type_checking)

    def visit(node: ast.AST, type_checking: bool) -> Iterator[Import]:
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(name, alias.name, node.lineno, type_checking)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".") if is_package else name.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, *([base] if base else [])])
            for alias in node.names:
                target = f"{base}.{alias.name}" if base else alias.name
                yield Import(name, target, node.lineno, type_checking)
        yield from walk(node, type_checking)

    yield from walk(ast.parse(source), False)


def resolve(target: str, modules: Iterable[str]) -> str | None:
    """The project module an import loads: the longest known module the dotted name starts
    with (``from bot.routers import report`` → ``bot.routers.report``; ``from bot.render import
    chunks`` → ``bot.render``); None outside the project."""
    known = set(modules)
    while target and target not in known:
        target = target.rpartition(".")[0]
    return target or None


def import_graph(sources: Mapping[str, tuple[str, bool]]) -> dict[str, set[str]]:
    """Module → the project modules it imports outside TYPE_CHECKING blocks."""
    graph: dict[str, set[str]] = {name: set() for name in sources}
    for name, (source, is_package) in sources.items():
        for imp in imports_of(name, source, is_package=is_package):
            target = resolve(imp.target, sources)
            if target is not None and target != name and not imp.type_checking:
                graph[name].add(target)
    return graph


def find_cycle(graph: Mapping[str, Iterable[str]], allowed: frozenset[tuple[str, str]]) -> list[str] | None:
    """One cycle of the graph without the allowed edges, as [a, b, …, a]; None when acyclic."""
    edges = {a: sorted(b for b in targets if (a, b) not in allowed) for a, targets in graph.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in edges.get(node, ()):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := dfs(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (found := dfs(start)) is not None:
            return found
    return None


# ---------------------------------------------------------------- the project itself


@pytest.fixture(scope="module")
def sources() -> dict[str, tuple[str, bool]]:
    return project_sources()


def test_every_package_is_read(sources: dict[str, tuple[str, bool]]) -> None:
    for package in PACKAGES:
        assert package in sources, f"{package}/__init__.py missing"
    graph = import_graph(sources)
    assert sum(map(len, graph.values())) > 100  # the parser sees the project's imports


def test_import_graph_has_no_cycle(sources: dict[str, tuple[str, bool]]) -> None:
    graph = import_graph(sources)
    stale = sorted(edge for edge in ALLOWED_CYCLE_EDGES if edge[1] not in graph.get(edge[0], set()))
    assert not stale, f"allowed edges that no longer exist (remove them): {stale}"
    cycle = find_cycle(graph, ALLOWED_CYCLE_EDGES)
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


def test_layers_import_downwards_only(sources: dict[str, tuple[str, bool]]) -> None:
    wrong = []
    for name, (source, is_package) in sources.items():
        forbidden = FORBIDDEN.get(name.partition(".")[0], ())
        for imp in imports_of(name, source, is_package=is_package):
            if any(imp.target == p or imp.target.startswith(f"{p}.") for p in forbidden):
                wrong.append(f"{name}:{imp.line} imports {imp.target}")
    assert not wrong, "\n".join(wrong)


def test_every_package_is_installed_and_copied_into_the_image() -> None:
    """``pip install .`` (the wheel) and the Dockerfile carry every package of the map."""
    find = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    installed = set(find_packages(str(ROOT), include=find["include"]))
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in PACKAGES:
        assert package in installed, f"{package} is not in pyproject's packages"
        copied = re.search(rf"^COPY {package} \./{package}$", dockerfile, flags=re.M)
        assert copied, f"the Dockerfile does not COPY {package}"


# A project module imported inside a function (importer → imported), each with its reason: only
# what a process may never need is put off — none of these is needed by a polling bot, and none
# hides a cycle (the graph above counts function-level imports as edges all the same). A listed
# import that no longer stands in a function fails the test, so the list cannot rot.
DEFERRED_IMPORTS: Mapping[tuple[str, str], str] = {
    ("bot.__main__", "bot.cli"): "`run` starts without typer and rich: the CLI only for the other commands",
    ("bot.__main__", "bot.cli_common"): "the CLI's error line, for a failing command other than `run`",
    ("bot.runner", "bot.webhook"): "aiohttp's web server, for webhook mode only",
    ("bot.app", "bot.console"): "the offline console, only without a token",
}


def function_level_imports(sources: Mapping[str, tuple[str, bool]]) -> dict[tuple[str, str], int]:
    """(importer, project module) → line, for every import of a project module inside a function."""
    found: dict[tuple[str, str], int] = {}
    for name, (source, is_package) in sources.items():
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            body = ast.Module(body=node.body, type_ignores=[])
            for imp in imports_of(name, ast.unparse(body), is_package=is_package):
                target = resolve(imp.target, sources)
                if target is not None and not imp.type_checking:
                    found.setdefault((name, target), node.lineno)
    return found


def test_project_modules_are_imported_inside_functions_only_to_put_off_what_a_process_may_not_need(
    sources: dict[str, tuple[str, bool]],
) -> None:
    found = function_level_imports(sources)
    hidden = sorted(
        f"{a} → {b} (in the function at line {line})"
        for (a, b), line in found.items()
        if (a, b) not in DEFERRED_IMPORTS
    )
    assert not hidden, "imports inside functions (move them to the top of the module):\n" + "\n".join(hidden)
    stale = sorted(edge for edge in DEFERRED_IMPORTS if edge not in found)
    assert not stale, f"listed deferred imports that no longer exist (remove them): {stale}"


def test_an_import_inside_a_function_is_found() -> None:
    sources = {
        "pkg.a": ("import json\n\nasync def f():\n    from pkg.b import x\n    return x\n", False),
        "pkg.b": ("x = 1\n", False),
    }
    assert function_level_imports(sources) == {("pkg.a", "pkg.b"): 3}
    assert function_level_imports({**sources, "pkg.a": ("from pkg.b import x\n", False)}) == {}


# ---------------------------------------------------------------- the checks can fail


def _graph(**modules: str) -> dict[str, set[str]]:
    sources = {name.replace("__", "."): (src, False) for name, src in modules.items()}
    return import_graph(sources)


def test_a_cycle_through_a_function_level_import_is_found() -> None:
    graph = _graph(
        pkg__cli="from pkg.cli_ops import backup\n",
        pkg__cli_ops="def backup():\n    from pkg import cli\n    return cli\n",
    )
    assert find_cycle(graph, frozenset()) == ["pkg.cli", "pkg.cli_ops", "pkg.cli"]
    assert find_cycle(graph, frozenset({("pkg.cli_ops", "pkg.cli")})) is None


def test_type_checking_imports_make_no_edge_but_else_branches_do() -> None:
    graph = _graph(
        pkg__a="from pkg.b import x\n",
        pkg__b=(
            "from typing import TYPE_CHECKING\n"
            "import typing\n"
            "if TYPE_CHECKING:\n    from pkg.a import A\n"
            "if typing.TYPE_CHECKING:\n    import pkg.a\nelse:\n    from pkg import c\n"
        ),
        pkg__c="",
    )
    assert graph["pkg.b"] == {"pkg.c"}
    assert find_cycle(graph, frozenset()) is None


def test_relative_imports_and_submodules_resolve() -> None:
    sources = {
        "pkg": ("from . import a\nfrom .a import thing\n", True),
        "pkg.a": ("from .b import y\nfrom .. import other\n", False),
        "pkg.b": ("class y: ...\n", False),
        "other": ("", True),
    }
    graph = import_graph(sources)
    assert graph == {"pkg": {"pkg.a"}, "pkg.a": {"pkg.b", "other"}, "pkg.b": set(), "other": set()}


def test_an_upward_import_is_named() -> None:
    imports = list(imports_of("services.x", "def f():\n    from bot.app import Services\n"))
    assert [(i.target, i.line, i.type_checking) for i in imports] == [("bot.app.Services", 2, False)]


# ---------------------------------------------------------------- edge conventions (issue 12, item 5)

# A base class → the one module whose classes may derive from it.
EDGE_HOMES = {"StatesGroup": "bot.states", "CallbackData": "bot.keyboards"}


def misplaced_classes(sources: Mapping[str, tuple[str, bool]]) -> list[str]:
    """Classes deriving from an EDGE_HOMES base outside that base's module, as ``module.Class``."""
    wrong = []
    for name, (source, _) in sources.items():
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.ClassDef):
                continue
            for base in node.bases:
                base_name = base.attr if isinstance(base, ast.Attribute) else getattr(base, "id", None)
                home = EDGE_HOMES.get(base_name or "")
                if home is not None and home != name:
                    wrong.append(f"{name}.{node.name} ({base_name}: belongs in {home})")
    return wrong


def test_states_and_callback_data_live_in_one_module_each(sources: dict[str, tuple[str, bool]]) -> None:
    assert not misplaced_classes(sources)
    assert "class ReportFlow(StatesGroup)" in sources["bot.states"][0]  # the checker reads the real modules
    assert "class FormCb(CallbackData" in sources["bot.keyboards"][0]


def test_a_state_group_outside_states_is_named() -> None:
    router = "class Flow(StatesGroup):\n    x = State()\n"
    router += "class Cb(cd.CallbackData, prefix='c'):\n    a: str\n"
    assert misplaced_classes({"bot.routers.x": (router, False), "bot.states": (router, False)}) == [
        "bot.routers.x.Flow (StatesGroup: belongs in bot.states)",
        "bot.routers.x.Cb (CallbackData: belongs in bot.keyboards)",
        "bot.states.Cb (CallbackData: belongs in bot.keyboards)",
    ]


# Per-update context a handler takes only through ``ctx`` (bot/context.py), never one by one.
CONTEXT_KWARGS = frozenset(
    {"state", "contact", "lang", "repos", "catalog", "settings", "services", "institution", "reopened"}
)


def handlers_not_taking_ctx(sources: Mapping[str, tuple[str, bool]]) -> list[str]:
    """Functions a router module registers (``.register(f, …)``) that take a piece of the
    per-update context as a keyword of its own instead of ``ctx``."""
    wrong = []
    for name, (source, _) in sources.items():
        if not name.startswith("bot.routers."):
            continue
        tree = ast.parse(source)
        registered = {
            call.args[0].id
            for call in ast.walk(tree)
            if isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr == "register"
            and call.args
            and isinstance(call.args[0], ast.Name)
        }
        for node in tree.body:
            if isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef) and node.name in registered:
                args = {a.arg for a in node.args.args}
                if args & CONTEXT_KWARGS:
                    wrong.append(f"{name}.{node.name}({', '.join(sorted(args))})")
    return wrong


def test_every_handler_takes_the_update_context_as_ctx(sources: dict[str, tuple[str, bool]]) -> None:
    assert not handlers_not_taking_ctx(sources)
    assert sum(1 for name in sources if name.startswith("bot.routers.")) >= 6  # the routers were read


def test_a_handler_taking_lang_is_named() -> None:
    router = "async def h(message, lang): ...\nasync def g(message, ctx): ...\nasync def f(message): ...\n"
    router += "r.message.register(h)\nr.message.register(g, F.text)\nr.message.register(f)\n"
    assert handlers_not_taking_ctx({"bot.routers.x": (router, False)}) == ["bot.routers.x.h(lang, message)"]


FACADE_REPOSITORIES = frozenset(
    {"OutboxRepo", "ReminderRepo", "JobRunRepo", "CompileInputsRepo", "ReviewRepo"}
)


def hand_built_repositories(source: str) -> list[str]:
    """Calls that build a repository the ``Repos`` facade hands out (``OutboxRepo(s)``)."""
    return [
        node.func.id
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in FACADE_REPOSITORIES
    ]


def test_bot_and_services_take_repositories_from_the_repos_facade() -> None:
    assert hand_built_repositories("async def f(s):\n    return await OutboxRepo(s).next_due_at()\n") == [
        "OutboxRepo"
    ]
    found = {
        str(path.relative_to(ROOT)): names
        for package in ("bot", "services")
        for path in sorted((ROOT / package).rglob("*.py"))
        if (names := hand_built_repositories(path.read_text(encoding="utf-8")))
    }
    assert found == {}, f"use Repos(session).outbox / .reminders / .jobs / .inputs / .reviews: {found}"
