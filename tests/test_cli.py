"""The ``resobot`` CLI, run in-process with typer's CliRunner against a temporary database."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from bot.cli import app
from bot.runner import database_error_message, database_error_types
from reporting_forms.catalog import PLANS_DIR, CatalogError, load_catalog, lv_count
from reporting_forms.exports.catalog_json import catalog_to_dict, plain_number
from tests.conftest import PG_ADMIN_DSN, _pg_reason
from tests.fakebotapi import FakeBotAPI, served_in_thread

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    db = tmp_path / "cli.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{db}")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env
    return db


def run(*args: str) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_init_twice_changes_nothing(env: Path) -> None:
    first = run("init")
    assert "2 plans, 8 directions, 25 tasks, 68 measures" in first
    second = run("init")
    assert "0 created, 0 updated, 0 deactivated" in second


def test_plan_show_measure_lists_all_indicator_rows(env: Path) -> None:
    output = run("plan", "show", "1.1.5")
    for row in ("1.1.5.1", "1.1.5.2", "1.1.5.3", "1.1.5.4"):
        assert row in output
    assert "273" in output and "2027-12-31" in output
    assert "1.1.5.5" not in output


def test_plan_show_3_4_2(env: Path) -> None:
    output = run("plan", "show", "3.4.2")
    assert re.search(r"Atbildīgā institūcija\s+IeVP", output)
    assert re.search(r"Līdzatbildīgās institūcijas\s+TM", output)
    assert "2026-04-01" in output


@pytest.mark.parametrize("item", ["1", "3.7", "1.2.1.2", "PR1", "PR3.RR4", "NH.2", "NH.4.2"])
def test_plan_show_any_id(env: Path, item: str) -> None:
    assert item in run("plan", "show", item)


def test_plan_show_unknown_id_is_one_clear_line(env: Path) -> None:
    result = runner.invoke(app, ["plan", "show", "9.9.9"])
    assert result.exit_code == 1
    assert "No plan, direction, task, measure or indicator with id '9.9.9'" in result.output
    assert "Traceback" not in result.output


def test_plan_export_shape(env: Path) -> None:
    data = json.loads(run("plan", "export"))
    main, hierarchy = data["plans"]
    assert main["id"] == "RPP-2025-2027" and hierarchy["id"] == "NH-2024"
    measures = [m for d in main["directions"] for task in d["tasks"] for m in task["measures"]]
    assert len(measures) == 53
    m = next(m for m in measures if m["id"] == "1.1.1")
    assert set(m) >= {"id", "name", "result", "responsible", "co_responsible", "indicators"}
    ind = m["indicators"][1]
    assert ind == {
        **ind,
        "id": "1.1.1.2",
        "text": "Apmācīti līdz 120 darbinieki",
        "target": 120,
        "kind": "people_trained",
        "deadline": "2027-12-31",
    }
    assert [pr["id"] for pr in main["policy_results"]] == ["PR1", "PR2", "PR3"]
    assert len(hierarchy["directions"]) == 4


def test_plan_check(env: Path) -> None:
    assert "53 measures" in run("plan", "check")


def test_invite_contacts_and_deactivate(env: Path) -> None:
    run("init")
    output = run("invite", "--institution", "VPD", "--role", "contact", "--expires", "14d")
    code = re.search(r"Code: (\S+)", output)[1]
    assert f"https://t.me/resobot?start={code}" in output
    bad = runner.invoke(app, ["invite", "--institution", "XYZ"])
    assert bad.exit_code == 1 and "Unknown institution" in bad.output
    bad_expiry = runner.invoke(app, ["invite", "--institution", "VPD", "--expires", "soon"])
    assert bad_expiry.exit_code != 0


def test_malformed_setting_is_one_line(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "not-a-token")
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 2
    assert result.output.strip().startswith("Configuration error: TELEGRAM_BOT_TOKEN")
    assert "Traceback" not in result.output


# ------------------------------------------------------------------ malformed YAML


@pytest.fixture
def plans_copy(tmp_path: Path) -> Path:
    target = tmp_path / "plans"
    shutil.copytree(PLANS_DIR, target)
    return target


def _replace(path: Path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, count), encoding="utf-8")


def _replace_after(path: Path, anchor: str, old: str, new: str) -> None:
    """Replace the first ``old`` after ``anchor`` (e.g. one indicator row's deadline)."""
    text = path.read_text(encoding="utf-8")
    start = text.index(anchor)
    at = text.index(old, start)
    path.write_text(text[:at] + new + text[at + len(old) :], encoding="utf-8")


def test_missing_kind_names_the_entry(plans_copy: Path) -> None:
    _replace(plans_copy / "resocialisation_2025_2027.yaml", "\n                kind: people_trained", "", 1)
    with pytest.raises(CatalogError) as exc:
        load_catalog(plans_copy)
    assert exc.value.file == "resocialisation_2025_2027.yaml"
    assert exc.value.entry == "1.1.1.2"
    assert "kind" in exc.value.reason


def test_unknown_institution_names_the_measure(plans_copy: Path) -> None:
    _replace(
        plans_copy / "resocialisation_2025_2027.yaml",
        "\n            responsible: [IeVP]",
        "\n            responsible: [XYZ]",
    )
    with pytest.raises(CatalogError) as exc:
        load_catalog(plans_copy)
    assert exc.value.entry == "3.4.2" and "unknown institution 'XYZ'" in exc.value.reason


def test_duplicate_id_is_rejected(plans_copy: Path) -> None:
    _replace(plans_copy / "resocialisation_2025_2027.yaml", 'id: "1.1.2"', 'id: "1.1.1"')
    with pytest.raises(CatalogError) as exc:
        load_catalog(plans_copy)
    assert exc.value.entry == "1.1.1" and "duplicate id" in exc.value.reason


def test_bad_target_and_syntax_errors(plans_copy: Path) -> None:
    _replace(plans_copy / "informal_hierarchy.yaml", "target: 4", "target: -4")
    with pytest.raises(CatalogError) as exc:
        load_catalog(plans_copy)
    assert exc.value.entry == "NH.1.1.1" and "negative" in exc.value.reason
    (plans_copy / "informal_hierarchy.yaml").write_text("id: [unclosed", encoding="utf-8")
    with pytest.raises(CatalogError) as exc:
        load_catalog(plans_copy)
    assert exc.value.entry == "(syntax)"


def test_plan_check_cli_reports_broken_file(env: Path, plans_copy: Path, monkeypatch) -> None:
    _replace(
        plans_copy / "resocialisation_2025_2027.yaml",
        "\n            responsible: [IeVP]",
        "\n            responsible: [XYZ]",
    )
    monkeypatch.setattr("reporting_forms.catalog.PLANS_DIR", plans_copy)
    result = runner.invoke(app, ["plan", "check"])
    assert result.exit_code == 2
    assert "resocialisation_2025_2027.yaml: 3.4.2: unknown institution 'XYZ'" in result.output


@pytest.mark.parametrize(
    ("bad", "reason"),
    [("2027-13-31", "month value is outside expected range"), ("2027-02-30", "day value is outside")],
)
def test_impossible_date_names_the_entry(plans_copy: Path, bad: str, reason: str) -> None:
    _replace_after(
        plans_copy / "resocialisation_2025_2027.yaml",
        'id: "1.1.1.2"',
        "deadline: 2027-12-31",
        f"deadline: {bad}",
    )
    with pytest.raises(CatalogError) as exc:
        load_catalog(plans_copy)
    assert (exc.value.file, exc.value.entry) == ("resocialisation_2025_2027.yaml", "1.1.1.2")
    assert "deadline" in exc.value.reason and reason in exc.value.reason


def test_impossible_measure_date_in_the_hierarchy_plan(plans_copy: Path) -> None:
    _replace(plans_copy / "informal_hierarchy.yaml", "deadline: 2025-01-15", "deadline: 2025-02-30")
    with pytest.raises(CatalogError) as exc:
        load_catalog(plans_copy)
    assert (exc.value.file, exc.value.entry) == ("informal_hierarchy.yaml", "NH.2.2")


def test_every_date_still_loads_as_a_date() -> None:
    catalog = load_catalog()
    for *_, measure in catalog.measures():
        for value in (measure.deadline, *(i.deadline for i in measure.indicators)):
            assert value is None or type(value) is dt.date, (measure.id, value)
    assert catalog.measure("3.4.2").deadline == dt.date(2026, 4, 1)
    assert catalog.measure("NH.1.3").indicators[0].deadline == dt.date(2025, 7, 1)


def test_numeric_row_without_target_names_the_entry(plans_copy: Path) -> None:
    _replace(plans_copy / "resocialisation_2025_2027.yaml", "\n                target: 120", "", 1)
    with pytest.raises(CatalogError) as exc:
        load_catalog(plans_copy)
    assert (exc.value.file, exc.value.entry) == ("resocialisation_2025_2027.yaml", "1.1.1.2")
    assert "people_trained row needs a target" in exc.value.reason and "untargeted" in exc.value.reason


def test_untargeted_marks_a_row_without_a_number(plans_copy: Path) -> None:
    path = plans_copy / "informal_hierarchy.yaml"
    _replace(path, "            untargeted: true\n", "", 1)  # NH.1.2.1 loses its mark
    with pytest.raises(CatalogError) as exc:
        load_catalog(plans_copy)
    assert exc.value.entry == "NH.1.2.1" and "needs a target" in exc.value.reason
    mark = "            untargeted: true\n"
    _replace(path, "            target: null\n" + mark, "            target: 5\n" + mark, 1)  # NH.4.3.1
    # NH.1.2.1 is still unmarked, but a model error (NH.4.3.1) is reported before the target check
    with pytest.raises(CatalogError) as exc:
        load_catalog(plans_copy)
    assert exc.value.entry == "NH.4.3.1" and "untargeted: true is only for" in exc.value.reason


# ------------------------------------------------------------------ plan export numbers


def test_plan_export_prints_whole_numbers_as_ints(env: Path) -> None:
    raw = run("plan", "export")
    assert not re.search(r"\d\.0\b", raw), "no 75.0 / 1804.0 in the export"
    data = json.loads(raw)
    main = data["plans"][0]
    inds = {
        i["id"]: i
        for d in main["directions"]
        for t in d["tasks"]
        for m in t["measures"]
        for i in m["indicators"]
    }
    assert inds["3.1.5.1"]["kind"] == "percent" and type(inds["3.1.5.1"]["target"]) is int
    assert inds["3.1.5.1"]["target"] == 75
    pis = {pi["id"]: pi for pr in main["policy_results"] for pi in pr["indicators"]}
    assert type(pis["PR2.RR3"]["targets"]["2025"]["value"]) is int
    assert pis["PR2.RR3"]["targets"]["2025"]["value"] == 1804
    assert pis["PR1.RR2"]["passport"]["history"] == {"2022": 12, "2023": 13, "2024": 14}
    assert all(type(v) is int for v in pis["PR1.RR2"]["passport"]["history"].values())


def test_plan_export_keeps_real_decimals(plans_copy: Path) -> None:
    _replace_after(
        plans_copy / "resocialisation_2025_2027.yaml", 'id: "3.1.5.1"', "target: 75", "target: 37.25"
    )
    data = catalog_to_dict(load_catalog(plans_copy))
    inds = {
        i["id"]: i
        for d in data["plans"][0]["directions"]
        for t in d["tasks"]
        for m in t["measures"]
        for i in m["indicators"]
    }
    assert inds["3.1.5.1"]["target"] == 37.25
    assert '"target": 37.25' in json.dumps(inds["3.1.5.1"])


@pytest.mark.parametrize(
    ("value", "plain"), [(75.0, 75), (1804.0, 1804), (0.0, 0), (37.25, 37.25), (None, None)]
)
def test_plain_number(value: float | None, plain: float | None) -> None:
    assert plain_number(value) == plain and type(plain_number(value)) is type(plain)


# ------------------------------------------------------------------ plan check PATH


def _check(*args: str) -> Result:
    return runner.invoke(app, ["plan", "check", *args])


def test_plan_check_path_accepts_a_folder_and_a_file(env: Path, plans_copy: Path) -> None:
    folder = _check(str(plans_copy))
    assert folder.exit_code == 0, folder.output
    assert "OK RPP-2025-2027" in folder.output and "OK NH-2024" in folder.output
    one = _check(str(plans_copy / "informal_hierarchy.yaml"))
    assert one.exit_code == 0, one.output
    assert "OK NH-2024: 4 directions, 4 tasks, 15 measures" in one.output and "RPP" not in one.output


def test_plan_check_path_without_institutions_uses_the_installed_ones(env: Path, tmp_path: Path) -> None:
    edited = tmp_path / "edited"
    edited.mkdir()
    shutil.copy(PLANS_DIR / "informal_hierarchy.yaml", edited / "nh.yaml")
    result = _check(str(edited / "nh.yaml"))
    assert result.exit_code == 0, result.output
    assert str(PLANS_DIR / "institutions.yaml") in result.output.replace("\n", "")


def test_plan_check_path_that_does_not_exist(env: Path, tmp_path: Path) -> None:
    result = _check(str(tmp_path / "nowhere"))
    assert result.exit_code == 2 and "no such file or folder" in result.output
    assert "Traceback" not in result.output


MAIN_YAML = "resocialisation_2025_2027.yaml"


@pytest.mark.parametrize(
    ("edit", "entry", "reason"),
    [
        (("\n                kind: people_trained", ""), "1.1.1.2", "kind: Field required"),
        (
            ("\n            responsible: [IeVP]", "\n            responsible: [XYZ]"),
            "3.4.2",
            "unknown institution 'XYZ'",
        ),
        (('id: "1.1.2"', 'id: "1.1.1"'), "1.1.1", "duplicate id"),
        (("deadline: 2026-04-01", "deadline: 2026-02-30"), "3.4.2", "day value is outside expected range"),
        (("deadline: 2026-04-01", "deadline: 2027-13-31"), "3.4.2", "month value is outside expected range"),
    ],
    ids=["missing-kind", "unknown-institution", "duplicate-id", "day-30-february", "month-13"],
)
@pytest.mark.parametrize("target", ["folder", "file"])
def test_plan_check_path_names_the_broken_entry(
    env: Path, plans_copy: Path, edit: tuple[str, str], entry: str, reason: str, target: str
) -> None:
    _replace(plans_copy / MAIN_YAML, *edit)
    result = _check(str(plans_copy if target == "folder" else plans_copy / MAIN_YAML))
    assert result.exit_code == 2, result.output
    line = " ".join(result.output.split())
    assert line.startswith(f"Catalog error: {MAIN_YAML}: {entry}: "), line
    assert reason in line and "Traceback" not in result.output


def test_plan_check_without_path_still_checks_the_installed_catalog(env: Path, plans_copy: Path) -> None:
    _replace(plans_copy / MAIN_YAML, "deadline: 2026-04-01", "deadline: 2026-02-30")
    assert _check().exit_code == 0  # the edited copy is not the installed catalog


# ------------------------------------------------------------------ plan show


def test_plan_show_policy_indicator_has_the_passport(env: Path) -> None:
    output = " ".join(run("plan", "show", "PR1.RR2").split())
    assert "Rādītāja iegūšanas metodoloģija Rādītājā tiek uzskaitīti šādi uzraudzības funkcijas" in output
    assert "S2 / S1 * 100" in output
    assert "Datu avots VID informācijas sistēma probācijas klientu uzskaites sistēma" in output
    assert "Mērīšanas biežums 1 x kalendārajā gadā" in output


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 rādītāji"),
        (1, "1 rādītājs"),
        (2, "2 rādītāji"),
        (9, "9 rādītāji"),
        (10, "10 rādītāji"),
        (11, "11 rādītāji"),
        (12, "12 rādītāji"),
        (21, "21 rādītājs"),
        (31, "31 rādītājs"),
        (101, "101 rādītājs"),
        (111, "111 rādītāji"),
        (1011, "1011 rādītāji"),
        (1021, "1021 rādītājs"),
    ],
)
def test_lv_count(n: int, text: str) -> None:
    assert lv_count(n, "rādītājs", "rādītāji") == text


def test_plan_show_counts_agree_in_number(env: Path) -> None:
    assert "3.7.1: 1 rādītājs" in run("plan", "show", "3.7.1")
    assert "4.5.1: 2 rādītāji" in run("plan", "show", "4.5.1")
    assert "1 rādītāji" not in run("plan", "show", "3.4.2")


# ------------------------------------------------------------------ database errors


def _pg_url(user: str, database: str) -> str:
    reason = _pg_reason()
    if reason:
        pytest.skip(reason)
    host = PG_ADMIN_DSN.split("@", 1)[1].rsplit("/", 1)[0]
    return f"postgresql://{user}@{host}/{database}"


@pytest.mark.parametrize(
    "command",
    [["init"], ["contacts"], ["invite", "--institution", "VPD"], ["reports", "list"], ["reminders", "log"]],
    ids=lambda c: " ".join(c),
)
def test_missing_postgres_database_is_one_line(env: Path, monkeypatch, command: list[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", _pg_url("postgres", "nonexistent"))
    result = runner.invoke(app, command)
    assert result.exit_code == 3, result.output
    assert result.output.strip() == 'Database error: database "nonexistent" does not exist'


def test_missing_postgres_role_is_one_line(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", _pg_url("nobody_here", "test"))
    result = runner.invoke(app, ["contacts"])
    assert result.exit_code == 3, result.output
    assert result.output.strip() == 'Database error: role "nobody_here" does not exist'


def test_uninitialised_sqlite_is_one_line(env: Path) -> None:
    result = runner.invoke(app, ["contacts"])
    assert result.exit_code == 3, result.output
    assert result.output.strip() == "Database error: no such table: institution (run `resobot init` first)"


def test_unwrapped_driver_error_message() -> None:
    import asyncpg

    class Wrapped(Exception):
        pass

    inner = asyncpg.InvalidCatalogNameError('database "x" does not exist')
    try:
        raise Wrapped("<class 'asyncpg.exceptions.InvalidCatalogNameError'>: noise") from inner
    except Wrapped as exc:
        assert database_error_message(exc) == 'database "x" does not exist'
    assert asyncpg.PostgresError in database_error_types()  # loaded here, so caught


@pytest.mark.parametrize(
    "url", ["sqlite+aiosqlite://", "sqlite://", "sqlite+aiosqlite:///:memory:", "sqlite:///file::memory:"]
)
def test_in_memory_sqlite_is_rejected(env: Path, monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    result = runner.invoke(app, ["contacts"])
    assert result.exit_code == 2, result.output
    line = " ".join(result.output.split())
    assert line.startswith("Configuration error: DATABASE_URL: an in-memory SQLite database is lost")
    assert "use a file" in line


# ------------------------------------------------------------------ invite links


@pytest.fixture
def fake_server() -> Iterator[FakeBotAPI]:
    """The fake Bot API in a thread of its own (the CLI runs its own event loop)."""
    with served_in_thread(bot_username="tm_resobot") as server:
        yield server


def _code(output: str) -> str:
    return re.search(r"Code: (\S+)", output)[1]


def test_invite_asks_the_bot_api_for_the_username(env: Path, fake_server: FakeBotAPI, monkeypatch) -> None:
    run("init")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", fake_server.token)
    monkeypatch.setenv("TELEGRAM_API_BASE", fake_server.base_url)
    monkeypatch.delenv("TELEGRAM_BOT_USERNAME", raising=False)
    output = run("invite", "--institution", "VPD")
    assert f"https://t.me/tm_resobot?start={_code(output)}" in output
    assert len(fake_server.calls_of("getMe")) == 1 and "Warning" not in output


def test_configured_username_wins_without_a_call(env: Path, fake_server: FakeBotAPI, monkeypatch) -> None:
    run("init")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", fake_server.token)
    monkeypatch.setenv("TELEGRAM_API_BASE", fake_server.base_url)
    monkeypatch.setenv("TELEGRAM_BOT_USERNAME", "configured_bot")
    output = run("invite", "--institution", "VPD")
    assert f"https://t.me/configured_bot?start={_code(output)}" in output
    assert fake_server.calls_of("getMe") == []


def test_invite_falls_back_with_one_warning(env: Path, fake_server: FakeBotAPI, monkeypatch) -> None:
    run("init")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "987654321:WRONG-token")  # the fake answers 401
    monkeypatch.setenv("TELEGRAM_API_BASE", fake_server.base_url)
    monkeypatch.delenv("TELEGRAM_BOT_USERNAME", raising=False)
    result = runner.invoke(app, ["invite", "--institution", "VPD"])
    assert result.exit_code == 0, result.output
    assert f"https://t.me/resobot?start={_code(result.output)}" in result.output
    warnings = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(warnings) == 1 and warnings[0].startswith("Warning: could not get the bot's username from")
    assert "Set TELEGRAM_BOT_USERNAME" in warnings[0] and "Traceback" not in result.output
