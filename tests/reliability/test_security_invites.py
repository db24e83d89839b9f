"""Issue 11, defect 4: one invite redeemed by several people at once binds exactly one of them
(PostgreSQL used to let two coordinators in through one coordinator invite)."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlmodel import select

from reporting_forms.catalog import Catalog
from storage import tables as t
from storage.db import Database
from storage.repositories import InviteError, Repos

NOW = dt.datetime(2026, 11, 2, 9, tzinfo=dt.UTC)


async def _invite(db: Database, catalog: Catalog) -> str:
    async with db.session() as s:
        repos = Repos(s)
        await repos.catalog.sync(catalog)
        tm = await repos.people.institution("TM")
        assert tm is not None
        return await repos.people.create_invite(
            institution_id=tm.id, role=t.Role.COORDINATOR, expires_in=dt.timedelta(days=3), now=NOW
        )


async def _redeem(db: Database, code: str, user_id: int) -> str:
    try:
        async with db.session() as s:
            await Repos(s).people.redeem_invite(
                code, telegram_user_id=user_id, display_name=f"U{user_id}", language="lv", now=NOW
            )
    except InviteError as exc:
        return exc.reason
    return "ok"


async def test_concurrent_redemptions_bind_one_person(db: Database, catalog: Catalog) -> None:
    code = await _invite(db, catalog)
    outcomes = await asyncio.gather(*(_redeem(db, code, 1000 + i) for i in range(6)))
    assert sorted(outcomes) == ["ok"] + ["used"] * 5
    async with db.session() as s:
        coordinators = (await s.exec(select(t.Contact).where(t.Contact.role == t.Role.COORDINATOR))).all()
        invite = (await s.exec(select(t.Invite))).one()
    assert len(coordinators) == 1
    assert invite.used_by_contact_id == coordinators[0].id
    assert invite.used_at is not None


async def test_redemption_reasons_are_kept(db: Database, catalog: Catalog) -> None:
    code = await _invite(db, catalog)
    assert await _redeem(db, "no-such-code", 7) == "unknown"
    late = NOW + dt.timedelta(days=4)
    async with db.session() as s:
        try:
            await Repos(s).people.redeem_invite(
                code, telegram_user_id=7, display_name="L", language="lv", now=late
            )
            reason = "ok"
        except InviteError as exc:
            reason = exc.reason
    assert reason == "expired"
    assert await _redeem(db, code, 8) == "ok"
    assert await _redeem(db, code, 9) == "used"
    async with db.session() as s:
        assert len((await s.exec(select(t.Contact))).all()) == 1
