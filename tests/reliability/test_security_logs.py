"""Issue 11, defect 7: logs carry no SQL parameters and no raw chat or user ids — a failing
statement's error says "parameters hidden", chat ids in bot/ log lines are hashed."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError

from bot.redact import chat_ref
from storage import tables as t
from storage.db import Database

SECRET_NAME = "Slepenā Persona 5550123"
BOT_DIR = Path(__file__).resolve().parents[2] / "bot"
RAW_IDS = {"chat_id", "user_id", "telegram_user_id", "from_user", "chat"}


async def test_sql_parameters_are_not_in_error_messages(db: Database) -> None:
    async with db.session() as s:
        s.add(t.Institution(abbr="X", name="X", name_en="X"))
    with pytest.raises(IntegrityError) as exc:
        async with db.session() as s:
            s.add(t.Contact(display_name=SECRET_NAME, institution_id=999_999, telegram_user_id=5550123))
    assert SECRET_NAME not in str(exc.value) and "5550123" not in str(exc.value)


def _names(node: ast.AST) -> set[str]:
    out = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            out.add(sub.id)
        elif isinstance(sub, ast.Attribute):
            out.add(sub.attr)
    return out


def _raw_id_log_args() -> list[str]:
    found = []
    for path in sorted(BOT_DIR.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in {"log", "logger", "logging"}
                and node.func.attr in {"debug", "info", "warning", "error", "exception", "critical"}
            ):
                continue
            for arg in node.args[1:]:
                wrapped = (
                    isinstance(arg, ast.Call) and isinstance(arg.func, ast.Name) and arg.func.id == "chat_ref"
                )
                if not wrapped and _names(arg) & RAW_IDS:
                    found.append(f"{path.name}:{node.lineno} {ast.unparse(arg)}")
    return found


def test_bot_log_lines_hash_chat_and_user_ids() -> None:
    assert _raw_id_log_args() == []


def test_chat_ref_is_short_stable_and_hides_the_id() -> None:
    ref = chat_ref(5550123)
    assert ref == chat_ref(5550123) != chat_ref(5550124)
    assert "5550123" not in ref and len(ref) <= 16
    assert chat_ref(None) == "-"
