"""The per-update context every handler takes as ``ctx``: one middleware (:class:`WithContext`,
on the dispatcher, inside the update's unit of work) builds it for every router from what
UnitOfWork read in the update's transaction — the repositories on that unit, the sender's
contact, institution and language — and the FSM context and the application's services.

Routers behind :class:`bot.access.RequireContact` get a :class:`ContactCtx`: the same, with the
contact, its institution and the conversation state known to be there.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiogram import BaseMiddleware
from aiogram.fsm.context import FSMContext
from aiogram.types import TelegramObject

from bot.config import Settings
from bot.services_container import Services
from reporting_forms.catalog import Catalog
from reporting_forms.periods import filing_years
from storage.repositories import Repos
from storage.tables import Contact, Institution

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


@dataclass
class Ctx:
    """What a handler needs besides the event, gathered once per update."""

    services: Services
    repos: Repos  # on the update's unit of work: every read and write of the update commits together
    lang: str
    state: FSMContext | None  # None for an update without a chat and user (aiogram's FSM key)
    contact: Contact | None  # None: the sender is not registered
    institution: Institution | None
    # years reopened for the sender's institution → their last day (read with the contact)
    reopened: Mapping[int, dt.date] = field(default_factory=dict)

    @property
    def catalog(self) -> Catalog:
        return self.services.catalog

    @property
    def settings(self) -> Settings:
        return self.services.settings

    def today(self) -> dt.date:
        return dt.datetime.now(self.settings.tz).date()

    def of_contact(self) -> ContactCtx | None:
        """The context narrowed to a registered sender (None when there is none)."""
        if self.contact is None or self.institution is None or self.state is None:
            return None
        return ContactCtx(
            self.services, self.repos, self.lang, self.state, self.contact, self.institution, self.reopened
        )


@dataclass
class ContactCtx(Ctx):
    """The context of a registered contact's update (routers behind RequireContact)."""

    state: FSMContext
    contact: Contact
    institution: Institution

    def open_years(self) -> list[int]:
        """Years the contact's institution may file today: the open periods and any year a
        coordinator reopened for it (``/reopen``), as read at the update's start."""
        return filing_years(self.today(), self.reopened)


class WithContext(BaseMiddleware):
    """Outer update middleware, inside UnitOfWork (which sets ``repos``, ``contact``,
    ``institution`` and ``lang``; a dropped duplicate never gets here): puts ``ctx`` in the
    workflow data for every router."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        data["ctx"] = Ctx(
            self.services,
            data["repos"],
            data["lang"],
            data.get("state"),
            data.get("contact"),
            data.get("institution"),
            data.get("reopened", {}),
        )
        return await handler(event, data)
