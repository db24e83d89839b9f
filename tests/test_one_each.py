"""Issue 12, item 3: one implementation of each small helper that used to be copied around
(dedup-key hashing, render-then-unescape, truncation, the message limit, coordinator roles,
number parsing, refusal errors, natural sort)."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest

from reporting_forms.reminder_policy import PlannedItem, ReminderKind, TaskGroup, dedup_key
from services.reminder_messages import snooze_key
from storage.outbox import outbox_key

# ---------------------------------------------------------------- dedup keys

# Keys computed by the code before the hashing was made one function: stored outbox rows are
# deduplicated against keys computed again, so these must never change.
_ITEM = PlannedItem(
    "1.1.1", "Pasākums ā", ReminderKind.DEADLINE, dt.date(2026, 6, 30), 2026, ("1.1.1.1", "1.1.1.2"), 14
)


def test_reminder_dedup_key_is_pinned() -> None:
    tasks = (TaskGroup("1.1", "Uzdevums ē", (_ITEM,)),)
    assert dedup_key(7, dt.date(2026, 6, 16), tasks) == (
        "4580d145f14522e12e2adcc2e433db7837bb5532b1f0b31eed70648ee421b94c"
    )


def test_snooze_key_is_pinned() -> None:
    assert snooze_key(7, dt.date(2026, 6, 17), "ab" * 32) == (
        "246af1019d39ec2a7c01d48617be32f7df60761f193c8a0334ad19734a113bbe"
    )


def test_outbox_keys_are_pinned() -> None:
    assert outbox_key(["reopened", 3, 2026, "2027-01-31"]) == (
        "ca4f203e89f979ff0f86f10d1939142a220bdc3ebc1146725e61ee8823dc2371"
    )
    assert outbox_key({"b": "Ļ", "a": [1, 2.5, None]}) == (
        "e248eec9a999795f5266c37aa94126a34527287127e0779f75e2d431ba911451"
    )
    assert outbox_key([5, "summary", "2026-12-01", "text:0"]) == (
        "73b0e11a574efafcaba7dae9f6797c9c9f54f8f0a0269ffaa798cfd6278f50c3"
    )


# ---------------------------------------------------------------- where each helper may be called

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "services", "reporting_forms", "storage")


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return None if inner is None else f"{inner}.{node.attr}"
    return None


def modules_using(name: str) -> set[str]:
    """The modules (paths from the repository root) that refer to ``name`` ("html.unescape")."""
    found = set()
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute | ast.Name) and _dotted(node) == name:
                    found.add(path.relative_to(ROOT).as_posix())
    return found


def test_dedup_keys_are_hashed_in_one_module() -> None:
    # The others hash something that is not an outbox key: an invite code, the catalog of a
    # backup, a redacted id (HMAC), the advisory-lock number of a chat and the name of the
    # compiled-template cache (texts.py).
    assert modules_using("hashlib.sha256") == {
        "reporting_forms/dedup.py",
        "storage/repositories.py",
        "storage/backup.py",
        "bot/redact.py",
        "bot/middlewares.py",
        "reporting_forms/texts.py",
    }


def test_html_is_unescaped_in_one_module() -> None:
    assert modules_using("html.unescape") == {"reporting_forms/texts.py"}


def test_plain_and_as_plain_unescape() -> None:
    from reporting_forms.texts import as_plain, plain, text, unescape

    assert unescape("a &amp; &lt;b&gt;") == "a & <b>"
    assert as_plain("<b>x</b> &amp; y") == "x & y"
    assert text("lv", "labels.field_date", indicator="a&b") == "a&amp;b datums"
    assert plain("lv", "labels.field_date", indicator="a&b") == "a&b datums"


# ---------------------------------------------------------------- truncation


def test_shorten_cuts_on_a_character_and_adds_an_ellipsis() -> None:
    from reporting_forms.texts import shorten

    assert shorten("abcdef", 6) == "abcdef"
    assert shorten("abcdefg", 6) == "abcde…" and len(shorten("abcdefg", 6)) == 6
    assert shorten("abcd efgh", 6) == "abcd…"  # no space before the ellipsis
    assert shorten("ļoti garš nosaukums", 8) == "ļoti ga…"  # inside a word, not at its start


def test_one_truncation() -> None:
    # a cut with an ellipsis is written in one function; the rest call reporting_forms.texts.shorten
    found = set()
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.BinOp)
                    and isinstance(node.right, ast.Constant)
                    and node.right.value == "…"
                ):
                    found.add(path.relative_to(ROOT).as_posix())
    assert found == {"reporting_forms/texts.py"}
    # the templates cut with the same function (the ``shorten`` filter), not Jinja's ``truncate``
    templates = [p.relative_to(ROOT).as_posix() for p in sorted((ROOT / "templates").rglob("*.j2"))]
    assert [t for t in templates if "truncate" in (ROOT / t).read_text(encoding="utf-8")] == []


def test_a_template_cuts_with_shorten() -> None:
    from reporting_forms.texts import plain, shorten

    name = "Ļoti gara pasākuma nosaukuma daļa " * 4
    assert plain("lv", "report.btn_measure", code="1.1.1", name=name) == f"1.1.1 {shorten(name, 48)}"


# ---------------------------------------------------------------- the message limit


def test_one_message_limit_and_one_way_of_counting() -> None:
    from reporting_forms.messages import MESSAGE_LIMIT, chunks, message_length

    defined = set()
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Assign | ast.AnnAssign):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    if any(isinstance(t, ast.Name) and t.id == "MESSAGE_LIMIT" for t in targets):
                        defined.add(path.relative_to(ROOT).as_posix())
    assert defined == {"reporting_forms/messages.py"}
    # tags count nothing, an entity one character, an astral character two (UTF-16)
    assert message_length("<b>a&amp;b</b> 😀") == 6
    long = "<b>x</b> " * 1000  # 9,000 characters of HTML, 2,000 visible: one message
    assert len(long) > MESSAGE_LIMIT and message_length(long) <= MESSAGE_LIMIT and chunks(long) == [long]


# ---------------------------------------------------------------- coordinator roles


def test_coordinator_roles_are_one_constant() -> None:
    from storage.tables import COORDINATOR_ROLES, Role

    assert {Role.COORDINATOR, Role.ADMIN} == COORDINATOR_ROLES and "coordinator" in COORDINATOR_ROLES
    # no second set of the roles: only the demo's user-id offsets name Role.ADMIN elsewhere
    assert modules_using("Role.ADMIN") == {"storage/tables.py", "bot/app.py"}


# ---------------------------------------------------------------- numbers


@pytest.mark.parametrize("raw", ["١٢", "٢٠٢٥", "1٢", "١٢,5", "１２"])
def test_non_ascii_digits_are_refused_by_every_number_entry_point(raw: str) -> None:
    from reporting_forms.answers import InvalidAnswer, parse_count, parse_percent, split_number
    from reporting_forms.inputs import InputError
    from reporting_forms.policy_values import parse_actual_value, parse_actual_year

    assert split_number(raw) is None
    for parse in (parse_count, parse_percent):
        with pytest.raises(InvalidAnswer) as answer:
            parse(raw)
        assert answer.value.code == "not_a_number"
    with pytest.raises(InputError) as value:
        parse_actual_value(raw)
    assert value.value.code == "not_a_number"
    with pytest.raises(InputError) as year:
        parse_actual_year(raw)
    assert year.value.code == "bad_year"


def test_one_number_parser() -> None:
    from reporting_forms.answers import TypedNumber, split_number
    from reporting_forms.policy_values import parse_actual_value

    assert split_number(" 1 200,50 ") == TypedNumber(False, "1200", "50")
    assert split_number("\u2212 3") == TypedNumber(True, "3", "")
    assert split_number("12 34") is None and split_number("1.2.3") is None
    assert parse_actual_value("1\u2009200,5") == 1200.5  # a thin space groups here too now
    # the number regexes of the answers are written once (reporting_forms/answers.py)
    assert "re.compile" not in (ROOT / "reporting_forms/policy_values.py").read_text(encoding="utf-8")


# ---------------------------------------------------------------- refusal errors


def test_refusals_share_one_base_class() -> None:
    from reporting_forms.answers import InvalidAnswer
    from reporting_forms.inputs import InputError
    from reporting_forms.texts import Refused, text
    from services.reminder_messages import ReasonError, parse_reason

    for cls in (InvalidAnswer, InputError, ReasonError):
        assert issubclass(cls, Refused) and issubclass(cls, ValueError)
    with pytest.raises(ReasonError) as reason:
        parse_reason("x" * 301)
    assert reason.value.params == {"length": 301}
    assert reason.value.message("lv") == text("lv", "reminders.mute_reason_too_long", length=301)
    refused = InputError("bad_year", value="1999", first=2022, last=2027)
    assert refused.message("en") == text(
        "en", "coordinator.input_bad_year", value="1999", first=2022, last=2027
    )
    answer = InvalidAnswer("negative")
    assert answer.message("lv") == text("lv", "answers.error_negative") and answer.key is None
    # no other class keeps its own code and params
    found = set()
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Assign) and any(_dotted(t) == "self.code" for t in node.targets):
                    found.add(path.relative_to(ROOT).as_posix())
    assert found == {"reporting_forms/texts.py"}


# ---------------------------------------------------------------- natural sort


def test_one_natural_sort() -> None:
    from reporting_forms.catalog import natural_key
    from storage.compile_inputs import field_order

    ids = ["1.10", "NH.12", "1.2", "NH.3", "1.2.1", "10.1"]
    assert sorted(ids, key=natural_key) == ["1.2", "1.2.1", "1.10", "10.1", "NH.3", "NH.12"]
    keys = ["comment", "1.1.10.1", "1.1.2.1.date", "1.1.2.1"]
    assert sorted(keys, key=field_order) == ["1.1.2.1", "1.1.2.1.date", "1.1.10.1", "comment"]
    # both old copies split on digits and compared "(0, int(p)) if p.isdigit()"; one remains
    found = {
        path.relative_to(ROOT).as_posix()
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "p.isdigit() else" in path.read_text(encoding="utf-8")
    }
    assert found == {"reporting_forms/catalog.py"}


@pytest.mark.parametrize("raw", ["٢٠٢٦", "２０２６"])
def test_a_year_in_non_ascii_digits_is_not_a_year_anywhere(raw: str) -> None:
    from reporting_forms.answers import is_ascii_number
    from reporting_forms.catalog import load_catalog
    from reporting_forms.inputs import InputError
    from reporting_forms.summaries import parse_summary_args

    assert raw.isdigit() and not is_ascii_number(raw)  # str.isdigit would have taken it
    assert is_ascii_number("2026")
    with pytest.raises(InputError):  # not read as a year: an unknown scope word
        parse_summary_args(load_catalog(), raw)
