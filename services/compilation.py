"""Compilations for the coordinators: read a plan's inputs from the database, compile both plans
for every active coordinator and admin (files rendered per language), and queue a scheduled run
into the outbox — the rows and the run's record in one transaction."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from reporting_forms.catalog import Catalog
from reporting_forms.inputs import check_year
from reporting_forms.messages import chunks
from reporting_forms.payloads import DocumentPayload, SummaryPayload
from reporting_forms.schedule import JOB_FORMATS, CompileRun, compile_job_name
from reporting_forms.summaries import CompileInputs, compile_inputs, render_files, summary_message
from reporting_forms.texts import normalise_language, text
from services.context import AppContext
from storage.outbox import KIND_DOCUMENT, KIND_SUMMARY, NewMessage, outbox_key
from storage.repositories import Repos
from storage.tables import COORDINATOR_ROLES


async def load_inputs(
    session: AsyncSession, plan_id: str, *, institution: str | None = None
) -> CompileInputs:
    repos = Repos(session)
    repo = repos.inputs
    return CompileInputs(
        values=await repo.reported_values(plan_id=plan_id, institution=institution),
        first_submitted=await repo.first_submitted(plan_id=plan_id, institution=institution),
        actuals=[] if institution else await repo.policy_actuals(plan_id=plan_id),
        window=await repos.periods.window(),
    )


async def _coordinators(session: AsyncSession) -> list[Any]:
    contacts = await Repos(session).people.contacts(active_only=True)
    return [
        c
        for c in contacts
        if c.role in COORDINATOR_ROLES and c.telegram_user_id is not None and not c.blocked
    ]


def _job_files(
    catalog: Catalog,
    inputs: Mapping[str, CompileInputs],
    formats: Sequence[str],
    year: int,
    as_of: dt.date,
    out: Path,
    lang: str,
    timezone: str,
) -> tuple[str, list[Path]]:
    """Blocking: compile each plan, write the files, return (summary text, paths)."""
    texts, paths = [], []
    main = catalog.main_plan.id
    for plan_id, plan_inputs in inputs.items():
        compiled = compile_inputs(
            catalog, plan_inputs, plan_id=plan_id, year=year, as_of=as_of, timezone=timezone
        )
        texts.append(summary_message(lang, compiled))
        paths.extend(render_files(compiled, formats if plan_id == main else ("xlsx",), out, lang=lang))
    return "\n\n".join(texts), paths


async def compile_for_coordinators(
    services: AppContext,
    *,
    year: int,
    kind: str,
    now: dt.datetime | None = None,
    out_root: Path | None = None,
) -> list[tuple[int, int, str, list[Path]]]:
    """Compile both plans for ``year`` and render the files into var/compiled/<timestamp>/<lang>/;
    returns (contact id, chat id, text, files) for every active coordinator and admin.
    Sending (through the outbox) is the caller's business."""
    if kind not in JOB_FORMATS:
        raise ValueError(f"kind must be one of {sorted(JOB_FORMATS)}, not {kind!r}")
    check_year(year)
    tz = services.settings.tz
    now = (now or dt.datetime.now(tz)).astimezone(tz)
    async with services.db.current() as session:
        recipients = await _coordinators(session)
        ordered = {
            plan.id: await load_inputs(session, plan.id) for plan in services.catalog.plans_main_first()
        }
    if not recipients:
        return []
    folder = (out_root or services.settings.compiled_dir) / now.strftime("%Y%m%dT%H%M%S")
    rendered: dict[str, tuple[str, list[Path]]] = {}
    for lang in sorted({normalise_language(c.language) for c in recipients}):
        body, paths = await asyncio.to_thread(
            _job_files,
            services.catalog,
            ordered,
            JOB_FORMATS[kind],
            year,
            now.date(),
            folder / lang,
            lang,
            services.settings.tz.key,
        )
        intro = text(lang, "coordinator.job_intro", kind=kind, year=year)
        rendered[lang] = (f"{intro}\n\n{body}", paths)
    return [(c.id, c.telegram_user_id, *rendered[normalise_language(c.language)]) for c in recipients]


def delivery_messages(
    job: str,
    day: dt.date,
    send_at: dt.datetime,
    deliveries: Sequence[tuple[int, int, str, list[Path]]],
) -> list[NewMessage]:
    """Outbox rows for a compilation: per coordinator, the summary text (in parts that fit a
    message), then each file as a document. Keys are (recipient, job, day, part): a run that is
    repeated after a crash adds nothing."""
    out: list[NewMessage] = []
    for contact_id, chat_id, body, files in deliveries:
        parts = chunks(body)
        for i, part in enumerate(parts, start=1):
            key = outbox_key([contact_id, job, day.isoformat(), f"text:{i}"])
            summary = SummaryPayload(part, i, len(parts))
            out.append(NewMessage(key, contact_id, chat_id, KIND_SUMMARY, summary, send_at))
        for path in files:
            key = outbox_key([contact_id, job, day.isoformat(), f"file:{path.name}"])
            document = DocumentPayload(str(path), path.name)
            out.append(NewMessage(key, contact_id, chat_id, KIND_DOCUMENT, document, send_at))
    return out


async def enqueue_compilation(
    services: AppContext, run: CompileRun, *, now: dt.datetime | None = None
) -> int:
    """Do one scheduled run once: compile, render the files, queue them for every coordinator
    and record the run — the rows and the record in one transaction. Returns rows added
    (0 when the run was already done)."""
    job, day = compile_job_name(run.kind), run.at.date()
    async with services.db.session() as s:
        if await Repos(s).jobs.done(job, day):
            return 0
    now = now or dt.datetime.now(services.settings.tz)
    deliveries = await compile_for_coordinators(
        services, year=run.year, kind=run.kind, now=now, out_root=services.settings.compiled_dir
    )
    messages = delivery_messages(job, day, now, deliveries)
    async with services.db.session() as s:
        repos = Repos(s)
        added = await repos.outbox.add_many(messages)
        await repos.jobs.mark(job, day, f"{run.year}: {len(deliveries)} recipient(s), {added} row(s)")
    return added
