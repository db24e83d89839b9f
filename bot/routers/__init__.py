"""Feature routers in the order they see updates. Each module owns one feature and builds
fresh routers on each call (a router can belong to one dispatcher only)."""

from __future__ import annotations

from collections.abc import Callable

from aiogram import Router

from bot.routers import coordinator, fallback, reminders, report, start, status

ROUTERS: list[Callable[[], Router]] = [
    start.public_router,  # /start, /help, and the gate for unregistered users
    report.router,  # /report, /myreports and the form (its own /cancel and /help while in a flow)
    reminders.router,  # reminder buttons (report now, snooze, mute) and the mute flow
    coordinator.router,  # /summary, /overdue, /review, /export, /indicator (coordinators, admins)
    coordinator.import_router,  # a file outside any flow: a coordinator's XLSX is imported
    status.router,  # /mystatus: a contact's own institution
    start.basics_router,  # /language, /cancel outside a flow
    fallback.router,  # anything else from a registered contact
]
