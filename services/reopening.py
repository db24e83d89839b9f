"""Reopening a closed reporting year for one institution (``/reopen YEAR VPD``, ``resobot period
reopen``): the rule is ``reporting_forms.periods.reopen_refusal``; this stores the reopening and
queues a notice to the institution's contacts through the outbox, in one unit of work."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from reporting_forms.catalog import Catalog
from reporting_forms.inputs import InputError, plan_years
from reporting_forms.payloads import NoticePayload
from reporting_forms.periods import reopen_refusal
from reporting_forms.texts import text
from storage.outbox import KIND_NOTICE, NewMessage, outbox_key
from storage.repositories import Repos
from storage.tables import Role, utcnow

REOPEN_DAYS = 30  # how long a reopened year stays open unless the coordinator says otherwise


@dataclass(frozen=True)
class Reopened:
    institution: str
    year: int
    until: dt.date
    notified: int  # contacts the notice was queued for


def institution_abbr(catalog: Catalog, raw: str) -> str:
    """The catalog's spelling of a reporting institution typed in any case; InputError otherwise."""
    try:
        inst = catalog.institution(raw)
    except KeyError:
        inst = None
    if inst is None or not inst.reports:
        known = ", ".join(sorted(catalog.reporting_institutions()))
        raise InputError("reopen_unknown_institution", value=raw[:40], known=known)
    return inst.abbr


async def reopen_year(
    repos: Repos,
    catalog: Catalog,
    *,
    institution: str,
    year: int,
    today: dt.date,
    days: int = REOPEN_DAYS,
    by_contact_id: int | None = None,
) -> Reopened:
    """Reopen ``year`` for the institution for ``days`` days (through ``today + days``)."""
    abbr = institution_abbr(catalog, institution)
    refusal = reopen_refusal(year, today, plan_years())
    if refusal is not None:
        years = plan_years()
        raise InputError(refusal, year=year, first=years[0], last=years[-1])
    until = today + dt.timedelta(days=days)
    inst = await repos.people.institution(abbr)
    assert inst is not None and inst.id is not None  # the catalog is loaded (resobot init)
    await repos.periods.reopen(inst.id, year, until, by_contact_id)
    messages = [
        NewMessage(
            outbox_key(["reopened", contact.id, year, until.isoformat()]),
            contact.id,
            contact.telegram_user_id,
            KIND_NOTICE,
            NoticePayload(text(contact.language, "report.year_reopened", year=year, until=until)),
            utcnow(),
        )
        for contact in await repos.people.contacts(inst.id, active_only=True)
        if contact.role == Role.CONTACT and contact.telegram_user_id is not None and not contact.blocked
    ]
    added = await repos.outbox.add_many(messages)
    return Reopened(abbr, year, until, added)


async def close_year(repos: Repos, catalog: Catalog, *, institution: str, year: int) -> bool:
    """Close a reopened year again (reports already filed stay). False when it was not reopened."""
    abbr = institution_abbr(catalog, institution)
    inst = await repos.people.institution(abbr)
    return inst is not None and inst.id is not None and await repos.periods.close(inst.id, year)
