"""Where the reminder code may reach (issue 12, item 2): services/ imports neither aiogram nor
bot; the sender and the scheduler render and plan without importing a router."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def imported(path: Path) -> set[str]:
    """Every module a file imports, at any depth (an import inside a function counts too)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
    return out


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


@pytest.mark.parametrize("path", sorted((ROOT / "services").glob("*.py")), ids=lambda p: p.name)
def test_services_import_neither_aiogram_nor_bot(path: Path) -> None:
    bad = sorted(n for n in imported(path) if _within(n, "aiogram") or _within(n, "bot"))
    assert not bad, f"{path.name} imports {bad}"


def builds_a_router(path: Path) -> bool:
    """A router module: it calls aiogram's ``Router(...)``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Router"
        for node in ast.walk(tree)
    )


@pytest.mark.parametrize("name", ["sender.py", "scheduler.py"])
def test_sender_and_scheduler_import_no_router(name: str) -> None:
    modules = {n for n in imported(ROOT / "bot" / name) if _within(n, "bot")}
    files = [ROOT / (m.replace(".", "/") + ".py") for m in modules]
    bad = sorted(str(f.relative_to(ROOT)) for f in files if f.is_file() and builds_a_router(f))
    assert not bad, f"bot/{name} imports router modules {bad}"
    assert not any(_within(m, "bot.routers") for m in modules)


def test_the_old_module_is_gone() -> None:
    assert not (ROOT / "bot" / "reminders.py").exists()
    assert (ROOT / "bot" / "routers" / "reminders.py").exists()
