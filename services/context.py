"""What a service needs of the running application: the database, the catalog and two settings.
The bot's ``Services`` container (bot/services_container.py) is one; a test may pass its own."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from reporting_forms.catalog import Catalog
from storage.db import Database


class ServiceSettings(Protocol):
    @property
    def tz(self) -> ZoneInfo: ...

    @property
    def compiled_dir(self) -> Path: ...


class AppContext(Protocol):
    @property
    def db(self) -> Database: ...

    @property
    def catalog(self) -> Catalog: ...

    @property
    def settings(self) -> ServiceSettings: ...
