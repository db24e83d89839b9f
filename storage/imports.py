"""Storing a checked spreadsheet import (``reporting_forms.imports``): each report the file
changes gets a new submitted revision through ``ReportRepo.submit`` — the chat's own path, with
its audit trail — authored by the importing user and marked as an import in the revision.

All or nothing: the caller runs this in one transaction (the CLI's session, the bot's unit of
work per update) and only for a file without refusals; an exception rolls everything back.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from reporting_forms.answers import InvalidAnswer
from reporting_forms.catalog import Catalog
from reporting_forms.forms import FormSpec, form_for, validate_answers
from reporting_forms.imports import ImportResult
from storage import tables as t
from storage.repositories import IMPORT_FIELD, Repos


class ImportStoreError(RuntimeError):
    """The database does not hold what the file names (run ``resobot init``)."""


@dataclass
class StoredImport:
    created: list[tuple[str, str, int, int]] = field(default_factory=list)  # measure, inst, year, revision
    unchanged: int = 0

    @property
    def changed(self) -> int:
        return len(self.created)


async def store_import(
    repos: Repos,
    catalog: Catalog,
    result: ImportResult,
    *,
    contact_id: int | None,
    author: str,
    source: str,
    now: dt.datetime | None = None,
) -> StoredImport:
    """Lay the file's answers over each report's stored ones and submit the reports that change
    (values equal to the stored ones make no revision). Any plan year, open or closed."""
    if not result.ok:
        raise ValueError("a file with refused cells is never stored")
    now = now or t.utcnow()
    stored = StoredImport()
    for item in result.reports():
        measure = catalog.measure(item.measure_id)
        m_id = await repos.catalog.measure_id(item.measure_id)
        institution = await repos.people.institution(item.institution)
        if m_id is None or institution is None or institution.id is None:
            raise ImportStoreError(f"{item.measure_id} / {item.institution} is not in the database")
        found = await repos.reports.find(m_id, institution.id, item.year)
        old: dict[str, Any] = {}
        if found is not None and found.id is not None and found.status == t.ReportStatus.SUBMITTED:
            view = await repos.reports.view(found.id)
            old = view.answers() if view is not None else {}
        keys = {f.key for f in form_for(measure).fields}
        answers = {k: v for k, v in old.items() if k in keys and k not in item.cleared}
        answers.update(item.answers)
        if found is not None and found.status == t.ReportStatus.SUBMITTED and answers == old:
            stored.unchanged += 1
            continue
        _drop_stale(form_for(measure), answers, item.year, keep=set(item.answers))
        report = await repos.reports.submit(
            measure_id=m_id,
            institution_id=institution.id,
            year=item.year,
            answers=answers,
            contact_id=contact_id,
            now=now,
            note={"field": IMPORT_FIELD, "old": None, "new": source, "by": contact_id, "by_name": author},
        )
        stored.created.append((item.measure_id, item.institution, item.year, report.revision))
    return stored


def _drop_stale(spec: FormSpec, answers: dict[str, Any], year: int, keep: set[str]) -> None:
    """Drop stored answers the form no longer accepts (as a chat draft does on resuming); the
    file's own answers are valid already (parsed by the same parsers), so they stay."""
    while True:
        try:
            validate_answers(spec, answers, year=year)
            return
        except InvalidAnswer as exc:
            if exc.key is None or exc.key in keep or exc.key not in answers:
                raise
            del answers[exc.key]
