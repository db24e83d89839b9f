"""``resobot reminders …``: preview what the reminder policy would send, read the outbox log,
and (admin) plan and send today's reminders at once."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
from typing import Any

import typer
from rich.table import Table

from bot import cli_common as cli
from bot.app import telegram_bot
from bot.sender import Sender
from reporting_forms.labels import message_kind_label, outbox_status_label
from services.reminder_planner import ReminderPlanner
from storage.db import Database
from storage.repositories import Repos

reminders_app = typer.Typer(help="Reminders, digests and the outbox", no_args_is_help=True)


def _day(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter("use YYYY-MM-DD, e.g. 2026-11-01", param_hint=option) from None


def _local(moment: dt.datetime | None, tz: Any) -> str:
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M") if moment else "—"


def _run(coro_fn: Any, settings: Any) -> Any:
    try:
        return asyncio.run(coro_fn())
    except OSError as exc:
        raise cli.fail(f"Database unreachable ({settings.database_url}): {exc}", 3) from None


@reminders_app.command("preview")
def preview(
    start: str = typer.Option(..., "--from", help="first send date, YYYY-MM-DD"),
    end: str = typer.Option(..., "--to", help="last send date, YYYY-MM-DD"),
    as_json: bool = typer.Option(False, "--json", help="a JSON array of the messages ([] when none)"),
    digests: bool = typer.Option(True, "--digests/--no-digests", help="include coordinators' digests"),
) -> None:
    """What would be sent, to whom and when, if nothing were reported from now on. Sends nothing."""
    first, last = _day(start, "--from"), _day(end, "--to")
    if last < first:
        raise cli.fail("--to is before --from.", 2)
    settings = cli.get_settings()
    catalog = cli.get_effective_catalog(settings)  # with an admin's reporters (plan reporters)
    policy = settings.reminder_policy

    async def work() -> list[Any]:
        db = Database(settings.database_url)
        try:
            planner = ReminderPlanner.from_catalog(db, catalog, policy)
            return await planner.preview(first, last, digests=digests)
        finally:
            await db.dispose()

    rows = _run(work, settings)
    if as_json:
        json.dump([row.as_json() for row in rows], sys.stdout, ensure_ascii=False, indent=2)
        sys.stdout.write("\n")
        return
    table = Table(title=f"Atgādinājumi {first:%d.%m.%Y}–{last:%d.%m.%Y} (netiek sūtīti)", show_lines=True)
    for name in ("Sūtīt", "Saņēmējs", "Institūcija", "Veids", "Pasākumi"):
        table.add_column(name)
    for row in rows:
        table.add_row(
            _local(row.send_at, policy.tz),
            f"{row.recipient} (#{row.contact_id})",
            row.institution,
            ", ".join(message_kind_label(cli.CLI_LANGUAGE, k) for k in row.kinds),
            ", ".join(row.measures),
        )
    cli.out.print(table)
    cli.out.print(f"Ziņu skaits: {len(rows)}.")


@reminders_app.command("log")
def log(
    recipient: str = typer.Option(None, "--recipient", "-r", help="contact id, chat id or part of a name"),
    limit: int = typer.Option(200, "--limit", help="newest rows to show"),
    as_json: bool = typer.Option(False, "--json", help="JSON lines instead of a table"),
) -> None:
    """What was sent (or is waiting) and its delivery state, newest first."""
    settings = cli.get_settings()
    tz = settings.reminder_policy.tz

    async def work() -> tuple[list[Any], dict[str, int]]:
        db = Database(settings.database_url)
        try:
            async with db.session() as s:
                repo = Repos(s).outbox
                return await repo.log(recipient, limit), await repo.counts()
        finally:
            await db.dispose()

    rows, counts = _run(work, settings)
    if as_json:
        for r in rows:
            record = {
                "id": r.id,
                "kind": r.kind,
                "status": r.status,
                "recipient": r.recipient,
                "contact_id": r.contact_id,
                "institution": r.institution,
                "chat_id": r.chat_id,
                "send_at": r.send_at.astimezone(tz).isoformat(),
                "sent_at": r.sent_at.astimezone(tz).isoformat() if r.sent_at else None,
                "attempts": r.attempts,
                "telegram_message_id": r.telegram_message_id,
                "last_error": r.last_error,
                "measures": list(r.measures),
            }
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        return
    table = Table(title="Izsūtne (outbox)", show_lines=True)
    for name in (
        "Nr.",
        "Sūtīt",
        "Saņēmējs",
        "Veids",
        "Statuss",
        "Mēģ.",
        "Nosūtīts",
        "Ziņa",
        "Pasākumi",
        "Kļūda",
    ):
        table.add_column(name)
    for r in rows:
        table.add_row(
            str(r.id),
            _local(r.send_at, tz),
            f"{r.recipient} ({r.institution})",
            message_kind_label(cli.CLI_LANGUAGE, r.kind),
            outbox_status_label(cli.CLI_LANGUAGE, r.status),
            str(r.attempts),
            _local(r.sent_at, tz),
            str(r.telegram_message_id or "—"),
            ", ".join(r.measures[:8]) + (f" +{len(r.measures) - 8}" if len(r.measures) > 8 else ""),
            r.last_error or "",
        )
    cli.out.print(table)
    cli.out.print(
        ", ".join(f"{outbox_status_label(cli.CLI_LANGUAGE, k)}: {v}" for k, v in sorted(counts.items()))
        or "The outbox is empty."
    )


@reminders_app.command("mutes")
def mutes(
    all_mutes: bool = typer.Option(False, "--all", help="also mutes that have ended"),
    as_json: bool = typer.Option(False, "--json", help="JSON lines instead of a table"),
) -> None:
    """Measures whose reminders contacts have muted, until when and why (what coordinators see)."""
    settings = cli.get_settings()
    today = dt.datetime.now(settings.reminder_policy.tz).date()

    async def work() -> list[Any]:
        db = Database(settings.database_url)
        try:
            async with db.session() as s:
                return await Repos(s).reminders.mutes(active_on=None if all_mutes else today)
        finally:
            await db.dispose()

    rows = _run(work, settings)
    if as_json:
        for m in rows:
            record = {
                "contact_id": m.contact_id,
                "contact": m.contact_name,
                "institution": m.institution,
                "measure": m.measure_id,
                "until": m.until.isoformat(),
                "reason": m.reason,
                "created_at": m.created_at.isoformat(),
            }
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
        return
    if not rows:
        cli.out.print("No reminders are muted." if not all_mutes else "No reminders were ever muted.")
        return
    table = Table(title="Apturētie atgādinājumi", show_lines=True)
    for name in ("Institūcija", "Kontaktpersona", "Pasākums", "Līdz", "Iemesls", "Apturēts"):
        table.add_column(name)
    for m in rows:
        table.add_row(
            m.institution,
            m.contact_name,
            m.measure_id,
            f"{m.until:%d.%m.%Y}",
            m.reason,
            _local(m.created_at, settings.reminder_policy.tz),
        )
    cli.out.print(table)


@reminders_app.command("send-now")
def send_now() -> None:
    """Admin: plan today's reminders and digest into the outbox and send what is due today, once."""
    settings = cli.get_settings()
    catalog = cli.get_effective_catalog(settings)  # with an admin's reporters (plan reporters)
    if not settings.telegram_bot_token:
        raise cli.fail("TELEGRAM_BOT_TOKEN is not set: nothing can be sent.", 2)
    policy = settings.reminder_policy

    async def work() -> tuple[Any, Any, Any, bool]:
        db = Database(settings.database_url)
        bot = telegram_bot(settings)
        try:
            planner = ReminderPlanner.from_catalog(db, catalog, policy)
            today = planner.today()
            reminders = await planner.plan_reminders(today)
            digest = await planner.plan_digest(today)
            sender = Sender(db, bot, settings, policy=policy, recover=False)  # the bot may be running
            _start, end = planner.day_bounds(today)
            stats = await sender.drain_once(until=end)
            quiet = sender.is_quiet(dt.datetime.now(dt.UTC))
            return reminders, digest, stats, quiet
        finally:
            await bot.session.close()
            await db.dispose()

    reminders, digest, stats, quiet = _run(work, settings)
    cli.out.print(f"Reminders: {reminders}")
    cli.out.print(f"Digest: {digest}")
    cli.out.print(
        f"Sent {stats.sent}, retry later {stats.retried + stats.rate_limited}, failed {stats.failed}, "
        f"blocked {stats.blocked}, cancelled {stats.cancelled}."
    )
    if quiet:
        q = policy.quiet_hours
        cli.out.print(f"Quiet hours ({q.start:%H:%M}–{q.end:%H:%M}): reminders wait until {q.end:%H:%M}.")
