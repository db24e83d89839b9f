"""Storage on SQLite and PostgreSQL: catalog sync, invites, reports with revisions, FSM, updates."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from aiogram.fsm.storage.base import StorageKey
from sqlmodel import select

from bot.fsm_storage import DatabaseStorage, UnitState
from reporting_forms.calendar import default_calendar
from reporting_forms.catalog import Catalog
from storage import tables as t
from storage.db import Database
from storage.repositories import InviteError, PeriodRepo, Repos, hash_code


async def _sync(db: Database, catalog: Catalog):
    async with db.session() as s:
        return await Repos(s).catalog.sync(catalog)


async def _ids(db: Database) -> dict[str, int]:
    async with db.session() as s:
        rows = (await s.exec(select(t.Indicator.code, t.Indicator.id))).all()
        measures = (await s.exec(select(t.Measure.code, t.Measure.id))).all()
    return {**{f"i:{c}": i for c, i in rows}, **{f"m:{c}": i for c, i in measures}}


async def test_catalog_sync_is_idempotent(db: Database, catalog: Catalog) -> None:
    first = await _sync(db, catalog)
    assert first.created > 100 and first.updated == 0
    ids = await _ids(db)
    second = await _sync(db, catalog)
    assert (second.created, second.updated, second.deactivated) == (0, 0, 0)
    assert await _ids(db) == ids
    async with db.session() as s:
        counts = await Repos(s).catalog.counts()
    assert counts["measures"] == 53 + 15
    assert counts["indicators"] == sum(len(m.indicators) for *_, m in catalog.measures())


def _edited(catalog: Catalog, measure_id: str, **indicator_changes: object) -> Catalog:
    """A copy of the catalog with the first indicator of one measure changed."""
    plans = []
    for plan in catalog.plans:
        directions = []
        for d in plan.directions:
            tasks = []
            for task in d.tasks:
                measures = []
                for m in task.measures:
                    if m.id == measure_id:
                        first = m.indicators[0].model_copy(update=indicator_changes)
                        m = m.model_copy(
                            update={"name": m.name + " (labots)", "indicators": (first, *m.indicators[1:])}
                        )
                    measures.append(m)
                tasks.append(task.model_copy(update={"measures": tuple(measures)}))
            directions.append(d.model_copy(update={"tasks": tuple(tasks)}))
        plans.append(plan.model_copy(update={"directions": tuple(directions)}))
    return catalog.model_copy(update={"plans": tuple(plans)})


async def _vpd_report(db: Database, answers: dict) -> int:
    async with db.session() as s:
        repos = Repos(s)
        vpd = await repos.people.institution("VPD")
        contact = await repos.people.add_contact(display_name="Anna", institution_id=vpd.id)
        measure = await repos.catalog.measure("1.1.1")
        report = await repos.reports.submit(
            measure_id=measure.id, institution_id=vpd.id, year=2026, answers=answers, contact_id=contact.id
        )
        return report.id


async def test_changed_catalog_updates_in_place_and_keeps_reports(db: Database, catalog: Catalog) -> None:
    await _sync(db, catalog)
    ids = await _ids(db)
    report_id = await _vpd_report(db, {"1.1.1.1": "in_progress", "1.1.1.2": 40})
    changed = _edited(catalog, "1.1.1", text="Apmācīti līdz 130 darbinieki", target=130)
    result = await _sync(db, changed)
    assert result.updated == 2 and result.created == 0
    assert await _ids(db) == ids
    async with db.session() as s:
        repos = Repos(s)
        ind = (await s.exec(select(t.Indicator).where(t.Indicator.code == "1.1.1.1"))).one()
        assert (ind.text, ind.target) == ("Apmācīti līdz 130 darbinieki", 130)
        view = await repos.reports.view(report_id)
    assert view.answers() == {"1.1.1.1": "in_progress", "1.1.1.2": 40}
    assert view.revision == 1


async def test_measure_removed_from_yaml_is_deactivated_not_deleted(db: Database, catalog: Catalog) -> None:
    await _sync(db, catalog)
    report_id = await _vpd_report(db, {"1.1.1.2": 12})
    smaller = catalog.model_copy(
        update={
            "plans": tuple(
                p.model_copy(
                    update={
                        "directions": tuple(
                            d.model_copy(
                                update={
                                    "tasks": tuple(
                                        task.model_copy(
                                            update={
                                                "measures": tuple(m for m in task.measures if m.id != "1.1.1")
                                            }
                                        )
                                        for task in d.tasks
                                    )
                                }
                            )
                            for d in p.directions
                        )
                    }
                )
                for p in catalog.plans
            )
        }
    )
    result = await _sync(db, smaller)
    assert result.deactivated == 1 + 2  # the measure and its two indicator rows
    async with db.session() as s:
        measure = (await s.exec(select(t.Measure).where(t.Measure.code == "1.1.1"))).one()
        assert measure.active is False
        assert (await Repos(s).reports.view(report_id)).answers() == {"1.1.1.2": 12}


async def test_invite_stores_only_a_hash_and_is_single_use(db: Database, catalog: Catalog) -> None:
    await _sync(db, catalog)
    now = dt.datetime(2026, 11, 1, 10, tzinfo=dt.UTC)
    async with db.session() as s:
        repos = Repos(s)
        vpd = await repos.people.institution("vpd")
        code = await repos.people.create_invite(
            institution_id=vpd.id, role="contact", expires_in=dt.timedelta(days=14), now=now
        )
        expired = await repos.people.create_invite(
            institution_id=vpd.id, role="coordinator", expires_in=dt.timedelta(hours=1), now=now
        )
    async with db.session() as s:
        stored = (await s.exec(select(t.Invite.code_hash))).all()
        assert code not in stored and hash_code(code) in stored
    async with db.session() as s:
        repos = Repos(s)
        with pytest.raises(InviteError) as unknown:
            await repos.people.redeem_invite(
                "nope", telegram_user_id=5, display_name="X", language="lv", now=now
            )
        assert unknown.value.reason == "unknown"
        with pytest.raises(InviteError) as late:
            await repos.people.redeem_invite(
                expired, telegram_user_id=5, display_name="X", language="lv", now=now + dt.timedelta(hours=2)
            )
        assert late.value.reason == "expired"
        contact = await repos.people.redeem_invite(
            code, telegram_user_id=5, display_name="Anna", language="lv", now=now
        )
        assert (contact.role, contact.institution_id, contact.telegram_user_id) == ("contact", vpd.id, 5)
    async with db.session() as s:
        with pytest.raises(InviteError) as used:
            await Repos(s).people.redeem_invite(
                code, telegram_user_id=6, display_name="B", language="lv", now=now
            )
        assert used.value.reason == "used"


async def test_every_submit_is_a_new_revision_with_audit_trail(db: Database, catalog: Catalog) -> None:
    await _sync(db, catalog)
    report_id = await _vpd_report(db, {"1.1.1.1": "in_progress", "1.1.1.2": 40, "comment": "Sākts"})
    async with db.session() as s:
        repos = Repos(s)
        vpd = await repos.people.institution("VPD")
        boss = await repos.people.add_contact(display_name="Jānis", institution_id=vpd.id)
        measure = await repos.catalog.measure("1.1.1")
        again = await repos.reports.submit(
            measure_id=measure.id,
            institution_id=vpd.id,
            year=2026,
            answers={"1.1.1.1": "done", "1.1.1.1.date": "2026-10-01", "1.1.1.2": 45},
            contact_id=boss.id,
        )
        assert again.id == report_id and again.revision == 2
    async with db.session() as s:
        repos = Repos(s)
        view = await repos.reports.view(report_id)
        revisions = await repos.reports.revisions(report_id)
    assert view.answers() == {"1.1.1.1": "done", "1.1.1.1.date": "2026-10-01", "1.1.1.2": 45}
    assert view.author == "Jānis" and view.status == "submitted"
    assert [r.revision for r in revisions] == [1, 2]
    assert revisions[0].answers == {"1.1.1.1": "in_progress", "1.1.1.2": 40, "comment": "Sākts"}
    assert {c["field"]: (c["old"], c["new"]) for c in revisions[1].changes} == {
        "1.1.1.1": ("in_progress", "done"),
        "1.1.1.1.date": (None, "2026-10-01"),
        "1.1.1.2": (40, 45),
        "comment": ("Sākts", None),
    }


async def test_earlier_years_are_returned_per_indicator(db: Database, catalog: Catalog) -> None:
    await _sync(db, catalog)
    async with db.session() as s:
        repos = Repos(s)
        vpd = await repos.people.institution("VPD")
        m = await repos.catalog.measure("3.1.5")
        for year, value in ((2025, "61,5"), (2026, "70")):
            await repos.reports.submit(
                measure_id=m.id,
                institution_id=vpd.id,
                year=year,
                answers={"3.1.5.1": value.replace(",", ".")},
                contact_id=None,
            )
        earlier = await repos.reports.earlier_values(m.id, vpd.id, 2027)
    assert earlier == {"3.1.5.1": {2025: "61.5", 2026: "70"}}


async def test_a_forms_opening_in_a_unit_reads_what_find_and_earlier_values_read(
    db: Database, catalog: Catalog
) -> None:
    """ReportRepo.opening in a unit of work (on PostgreSQL one joined statement; on SQLite the
    two reads): the same report and earlier values as ``find`` and ``earlier_values`` give in a
    session, with and without either."""
    await _sync(db, catalog)
    async with db.session() as s:
        repos = Repos(s)
        vpd, ievp = await repos.people.institution("VPD"), await repos.people.institution("IeVP")
        m = await repos.catalog.measure("3.1.5")
        for year, value in ((2025, "61.5"), (2026, "70")):
            await repos.reports.submit(
                measure_id=m.id, institution_id=vpd.id, year=year, answers={"3.1.5.1": value}, contact_id=None
            )
        m_id, vpd_id, ievp_id = m.id, vpd.id, ievp.id
    cases = [(vpd_id, 2027), (vpd_id, 2026), (vpd_id, 2025), (ievp_id, 2026)]
    expected = {}
    async with db.session() as s:
        for inst, year in cases:
            found = await Repos(s).reports.find(m_id, inst, year)
            earlier = await Repos(s).reports.earlier_values(m_id, inst, year)
            expected[inst, year] = (found.id if found else None, found.revision if found else None, earlier)
    assert expected[vpd_id, 2027][0] is None and expected[vpd_id, 2027][2]  # earlier values only
    assert expected[vpd_id, 2026][0] is not None and expected[vpd_id, 2026][2]  # both
    assert expected[vpd_id, 2025][0] is not None and not expected[vpd_id, 2025][2]  # the report only
    assert expected[ievp_id, 2026] == (None, None, {})  # neither
    for inst, year in cases:
        async with db.unit() as unit:
            opening = await Repos(unit).reports.opening(m_id, inst, year)
            found = opening.existing
            got = (found.id if found else None, found.revision if found else None, opening.earlier)
        assert got == expected[inst, year], (inst, year)


async def test_fsm_state_and_draft_survive_a_new_storage(db_url: str) -> None:
    key = StorageKey(bot_id=1, chat_id=42, user_id=42)
    first = Database(db_url)
    storage = DatabaseStorage(first)
    await storage.set_state(key, "Report:answer")
    await storage.set_data(key, {"draft": {"measure_id": "1.1.1", "answers": {"1.1.1.2": 5}}})
    await first.dispose()
    second = Database(db_url)  # "restart"
    storage = DatabaseStorage(second)
    assert await storage.get_state(key) == "Report:answer"
    assert (await storage.get_data(key))["draft"]["answers"] == {"1.1.1.2": 5}
    await storage.update_data(key, {"x": 1})
    assert (await storage.get_data(key))["x"] == 1
    await storage.set_state(key, None)
    assert await storage.get_state(key) is None
    await second.dispose()


async def test_an_attached_fsm_context_changes_the_units_row_written_once_at_commit(db: Database) -> None:
    """UnitState (bot/fsm_storage.py): attached to the row its unit read, every read and change
    goes to that row, written once at the commit; a rolled-back unit writes nothing; outside
    its unit the same context goes through the storage, each call its own unit."""
    storage = DatabaseStorage(db)
    key = StorageKey(bot_id=1, chat_id=43, user_id=43)
    writes: list[str] = []
    original = storage.changed

    def counting(unit: Any, row: Any) -> None:
        writes.append(row.state)
        original(unit, row)

    storage.changed = counting  # type: ignore[method-assign]
    ctx = UnitState(storage, key)
    async with db.unit() as unit:
        ctx.attach(unit, storage.prime(unit, storage.key(key), None, None))
        await ctx.set_state("ReportFlow:answering")
        await ctx.set_data({"nonce": "n1"})
        assert await ctx.update_data(page=2) == {"nonce": "n1", "page": 2}
        assert await ctx.get_value("page") == 2 and await ctx.get_value("none", "x") == "x"
        got = await ctx.get_data()
        got["nonce"] = "changed by the caller"  # a copy: the row keeps its data
        assert await ctx.get_data() == {"nonce": "n1", "page": 2}
        assert await ctx.get_state() == "ReportFlow:answering"
        assert len(unit._hooks) == 1  # one write, however many changes
    assert len(writes) == 3
    assert await storage.get_state(key) == "ReportFlow:answering"
    assert await storage.get_data(key) == {"nonce": "n1", "page": 2}

    with pytest.raises(RuntimeError):
        async with db.unit() as unit:
            ctx.attach(unit, storage.prime(unit, storage.key(key), "ReportFlow:answering", {"page": 2}))
            await ctx.clear()
            raise RuntimeError("the update failed")
    assert await storage.get_state(key) == "ReportFlow:answering"  # nothing of it was written

    # the unit is over: the context goes through the storage, a unit of its own per call
    await ctx.update_data(page=3)
    assert await storage.get_data(key) == {"nonce": "n1", "page": 3}
    assert await ctx.get_data() == {"nonce": "n1", "page": 3}
    await ctx.clear()
    assert (await storage.get_state(key), await storage.get_data(key)) == (None, {})


async def test_duplicate_update_is_recognised(db: Database) -> None:
    async with db.session() as s:
        assert await Repos(s).mark_update(1001) is True
    async with db.session() as s:
        assert await Repos(s).mark_update(1001) is False


async def test_old_update_ids_are_forgotten(db: Database) -> None:
    now = dt.datetime(2026, 11, 22, 12, tzinfo=dt.UTC)
    async with db.session() as s:
        assert await Repos(s).mark_update(7, now=now - dt.timedelta(days=8))
        assert await Repos(s).mark_update(8, now=now - dt.timedelta(days=1))
    async with db.session() as s:
        assert await Repos(s).mark_update(1000, now=now)  # a multiple of PRUNE_EVERY prunes
    async with db.session() as s:
        ids = set((await s.exec(select(t.ProcessedUpdate.update_id))).all())
    assert ids == {8, 1000}


async def test_repos_hands_out_every_repository_on_its_session(db: Database) -> None:
    """The facade's compile-inputs, review, outbox, reminder and job-run repositories: one each
    per Repos, on its session; on a unit of work the ORM session is made only when one is used."""
    async with db.session() as s:
        repos = Repos(s)
        for name in ("inputs", "reviews", "outbox", "reminders", "jobs"):
            repo = getattr(repos, name)
            assert repo is getattr(repos, name) and repo.session is s, name
        assert await repos.jobs.last_day("nothing") is None
        assert Repos(s).outbox is not repos.outbox  # cached per facade, not shared
    async with db.unit() as unit:
        repos = Repos(unit)
        assert unit._session is None or db.engine.dialect.name == "postgresql"
        assert repos.outbox.session is unit.session
        assert await repos.outbox.next_due_at() is None


async def test_the_reporting_window_reads_the_first_year_and_every_reopened_year(
    db: Database, catalog: Catalog
) -> None:
    """One statement (a unit's hot path): the setting and the reopenings together, also when
    either is missing."""
    await _sync(db, catalog)
    async with db.unit() as unit:
        window = await Repos(unit).periods.window()
    assert window.from_year == default_calendar().first_year and dict(window.reopened) == {}
    async with db.session() as s:
        repos = Repos(s)
        vpd, ievp = await repos.people.institution("VPD"), await repos.people.institution("IeVP")
        await repos.periods.reopen(vpd.id, 2025, dt.date(2026, 3, 1), None)
        await repos.periods.reopen(ievp.id, 2025, dt.date(2026, 2, 1), None)
        await repos.periods.reopen(vpd.id, 2024, dt.date(2026, 1, 15), None)
    async with db.unit() as unit:
        window = await Repos(unit).periods.window()
    assert window.from_year == default_calendar().first_year
    assert dict(window.reopened) == {
        ("VPD", 2024): dt.date(2026, 1, 15),
        ("IeVP", 2025): dt.date(2026, 2, 1),
        ("VPD", 2025): dt.date(2026, 3, 1),
    }
    async with db.session() as s:
        await Repos(s).periods.set_setting(PeriodRepo.FROM_YEAR, "2026")
    async with db.unit() as unit:
        window = await Repos(unit).periods.window()
    assert window.from_year == 2026 and len(window.reopened) == 3


async def test_an_updates_start_reads_the_years_reopened_for_the_senders_institution(
    db: Database, catalog: Catalog
) -> None:
    """Repos.start_update reads, with the contact, the years reopened for its institution (the
    report flow's open years need no read of their own): a row per reopening in one statement,
    the contact and conversation the same on each; none for another institution's or an
    unregistered sender."""
    await _sync(db, catalog)
    storage = DatabaseStorage(db)
    key = storage.key(StorageKey(bot_id=0, chat_id=501, user_id=501))
    async with db.session() as s:
        repos = Repos(s)
        vpd, ievp = await repos.people.institution("VPD"), await repos.people.institution("IeVP")
        await repos.people.add_contact(display_name="Anna", institution_id=vpd.id, telegram_user_id=501)
        await repos.people.add_contact(display_name="Ilze", institution_id=ievp.id, telegram_user_id=502)
        await repos.periods.reopen(vpd.id, 2025, dt.date(2026, 3, 1), None)
        await repos.periods.reopen(vpd.id, 2024, dt.date(2026, 1, 15), None)
    await storage.set_data(StorageKey(bot_id=0, chat_id=501, user_id=501), {"nonce": "n"})
    starts = {}
    async with db.unit() as unit:
        for update_id, user in ((1, 501), (2, 502), (3, 503)):
            starts[user] = await Repos(unit).start_update(update_id, user, key if user == 501 else None)
    anna, ilze, nobody = starts[501], starts[502], starts[503]
    assert anna is not None and anna.contact is not None and anna.institution is not None
    assert (anna.contact.display_name, anna.institution.abbr, anna.data) == ("Anna", "VPD", {"nonce": "n"})
    assert anna.reopened == {2025: dt.date(2026, 3, 1), 2024: dt.date(2026, 1, 15)}
    assert ilze is not None and ilze.contact is not None and ilze.reopened == {}
    assert nobody is not None and nobody.contact is None and nobody.reopened == {}
