"""A spreadsheet import, shared by ``resobot import`` and the coordinators' chat upload: read
and check the file (reporting_forms.imports), store it in the caller's transaction when every
cell is accepted (storage.imports), and word the outcome (templates/<lang>/coordinator.j2)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from reporting_forms.catalog import Catalog
from reporting_forms.imports import MAX_REFUSALS_SHOWN, ImportResult, Refusal, read_workbook
from reporting_forms.texts import coded_plain, plain, text, unescape
from storage.imports import StoredImport, store_import
from storage.repositories import Repos

CLI_AUTHOR = "admin (resobot import)"  # who the CLI's revisions are by (no contact)


@dataclass(frozen=True)
class ImportOutcome:
    name: str
    result: ImportResult
    stored: StoredImport | None  # None: refused, nothing stored


async def import_file(
    repos: Repos,
    catalog: Catalog,
    data: bytes,
    *,
    name: str,
    today: dt.date,
    contact_id: int | None,
    author: str,
    result: ImportResult | None = None,
) -> ImportOutcome:
    """Check the whole file (or take ``result``, the file already read); store it only when
    nothing is refused — in one transaction, the caller's."""
    if result is None:
        result = read_workbook(data, catalog, today=today)
    if not result.ok:
        return ImportOutcome(name, result, None)
    stored = await store_import(repos, catalog, result, contact_id=contact_id, author=author, source=name)
    return ImportOutcome(name, result, stored)


def refusal_line(lang: str, refusal: Refusal) -> str:
    """ "1. rīcības virziens, rinda 14: 1.3.3.1 (2025) — „12,5” nav vesels skaitlis" (plain text)."""
    reason = coded_plain(lang, "coordinator.import_error_", refusal.code, refusal.params)
    return plain(
        lang,
        "coordinator.import_refusal",
        sheet=refusal.sheet or None,
        row=refusal.row,
        indicator=refusal.indicator,
        year=refusal.year,
        raw=refusal.raw,
        reason=reason,
    )


def outcome_message(lang: str, outcome: ImportOutcome, *, limit: int | None = MAX_REFUSALS_SHOWN) -> str:
    """The outcome as a chat message (HTML-escaped): every refusal (up to ``limit``), or what was stored."""
    result, stored = outcome.result, outcome.stored
    if stored is None:
        refusals = result.refusals
        shown = refusals if limit is None else refusals[:limit]
        return text(
            lang,
            "coordinator.import_refused",
            name=outcome.name,
            count=len(refusals),
            lines=[refusal_line(lang, r) for r in shown],
            more=len(refusals) - len(shown),
        )
    if not result.values:
        return text(lang, "coordinator.import_nothing", name=outcome.name)
    return text(
        lang,
        "coordinator.import_done",
        name=outcome.name,
        created=stored.changed,
        unchanged=stored.unchanged,
        reports=[
            {"measure": m, "institution": i, "year": y, "revision": rev} for m, i, y, rev in stored.created
        ],
    )


def outcome_text(lang: str, outcome: ImportOutcome) -> str:
    """The outcome as plain text, every refusal listed (the CLI)."""
    return unescape(outcome_message(lang, outcome, limit=None))
