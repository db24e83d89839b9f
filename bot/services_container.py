"""The container handed to every handler, the scheduler and the sender besides the event
(aiogram workflow data ``services``): the database, the catalog, the settings and the running
process's leadership, replay queue and outbox sender. It satisfies ``services.context.AppContext``,
so the application services take it as it is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import DBAPIError

from bot.config import Settings
from reporting_forms.catalog import Catalog
from storage.db import Database
from storage.repositories import Repos

if TYPE_CHECKING:
    from bot.replay import UpdateReplay


@dataclass
class Services:
    """What handlers receive besides the event (aiogram workflow data)."""

    db: Database
    catalog: Catalog
    settings: Settings
    # Does this instance run the scheduler and the outbox sender (bot/leader.py)? None: not
    # decided yet, or no scheduler in this process. For /readyz.
    is_leader: bool | None = None
    # Updates that failed for want of a database, replayed when it is back (bot/replay.py).
    replay: UpdateReplay | None = None
    # The outbox sender running in this process (the leader's), woken when a unit of work that
    # queued rows commits; None where none runs (a follower: the leader's sender polls).
    sender: Any = None

    def wake_outbox(self) -> None:
        """After a commit that queued outbox rows: deliver them now, not at the next poll."""
        if self.sender is not None:
            self.sender.wake()


async def effective_catalog(settings: Settings, catalog: Catalog) -> Catalog:
    """``catalog`` with an admin's reporters (``plan reporters``) from the database; the YAML
    alone when the database cannot be read (not initialised yet)."""
    db = Database(settings.database_url)
    try:
        async with db.session() as session:
            return catalog.with_reporters(await Repos(session).catalog.reporter_overrides())
    except (OSError, DBAPIError):
        return catalog
    finally:
        await db.dispose()


async def open_services(settings: Settings, catalog: Catalog) -> Services:
    """The running bot's services: its database and the effective catalog."""
    catalog = await effective_catalog(settings, catalog)
    return Services(db=Database(settings.database_url), catalog=catalog, settings=settings)
