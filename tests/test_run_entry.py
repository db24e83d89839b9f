"""The ``resobot`` entry point (bot/__main__.py): ``run`` starts the bot without the command line,
everything else is the command line as it always was (issue 12, item 6)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

import bot.__main__ as entry
from bot.runner import RunOptions, run_options


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run"], RunOptions()),
        (["run", "--webhook"], RunOptions(webhook=True)),
        (["run", "--webhook", "--listen", "0.0.0.0:8080"], RunOptions(webhook=True, listen="0.0.0.0:8080")),
        (["run", "--listen=127.0.0.1:9000", "--webhook"], RunOptions(webhook=True, listen="127.0.0.1:9000")),
        (["run", "--listen", ""], RunOptions(listen="")),  # refused by the settings check, as before
        # the command line answers these itself
        ([], None),
        (["init"], None),
        (["--help"], None),
        (["run", "--help"], None),
        (["run", "-h"], None),
        (["run", "--webhook", "--webhook"], None),
        (["run", "--listen"], None),
        (["run", "--listen", "--webhook"], None),
        (["run", "--listen", "a:1", "--listen", "b:2"], None),
        (["run", "--web"], None),
        (["run", "extra"], None),
        (["console"], None),
    ],
)
def test_run_options(args: list[str], expected: RunOptions | None) -> None:
    assert run_options(args) == expected


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'entry.db'}")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:abc")
    for name in ("WEBHOOK_URL", "WEBHOOK_SECRET"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env
    return tmp_path


def _main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["resobot", *args])
    with pytest.raises(SystemExit) as exit_:
        entry.main()
    return int(exit_.value.code or 0)


def test_the_command_line_answers_everything_but_a_run_that_starts(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    started: list[RunOptions] = []
    monkeypatch.setattr(entry, "run_bot", lambda settings, catalog, options: started.append(options))

    assert _main(monkeypatch, "run", "--help") == 0
    assert "Usage: resobot run [OPTIONS]" in capsys.readouterr().out
    # the webhook's settings missing: bot.cli's one line and exit code, nothing started
    assert _main(monkeypatch, "run", "--webhook") == 1
    assert "Webhook mode needs WEBHOOK_URL and WEBHOOK_SECRET" in capsys.readouterr().err
    monkeypatch.setenv("WEBHOOK_URL", "https://bot.example.lv/hook")
    monkeypatch.setenv("WEBHOOK_SECRET", "abc")
    assert _main(monkeypatch, "run", "--webhook", "--listen", "nowhere") == 1
    assert "HOST:PORT" in capsys.readouterr().err
    assert _main(monkeypatch, "run", "--bogus") == 2  # click's usage error
    assert started == []
    assert not (env / "entry.db").exists()

    monkeypatch.setattr(sys, "argv", ["resobot", "run", "--webhook", "--listen", "127.0.0.1:8443"])
    entry.main()  # settings right: the bot starts, no command line on the way
    assert started == [RunOptions(webhook=True, listen="127.0.0.1:8443")]


def test_a_database_error_ends_run_with_the_command_lines_one_line(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def run_bot(*_: object) -> None:
        raise OperationalError("SELECT 1", {}, Exception("no such table: outbox"))

    monkeypatch.setattr(entry, "run_bot", run_bot)
    assert _main(monkeypatch, "run") == 3
    expected = "Database error: no such table: outbox (run `resobot init` first)"
    assert capsys.readouterr().err.strip() == expected


def test_a_run_loads_the_default_languages_locale_data_before_the_catalog(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The order of the start (bench/bench_startup.py: ~1 MB of idle memory): Babel's locale
    data first, while the heap is young, then the catalog."""
    steps: list[str] = []
    monkeypatch.setenv("DEFAULT_LANGUAGE", "en")
    monkeypatch.setattr(entry, "preload", lambda languages: steps.append(f"preload {','.join(languages)}"))
    monkeypatch.setattr(entry, "default_catalog", lambda: steps.append("catalog") or "the catalog")
    ready = entry.ready_to_run(RunOptions())
    assert ready is not None and ready[1] == "the catalog"
    assert steps == ["preload en", "catalog"]
