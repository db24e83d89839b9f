"""Application services: the work behind a chat command, a CLI command or a scheduled job that
reads or writes the database (``storage``) and applies the domain (``reporting_forms``).

No aiogram and no ``bot`` here: the transport (``bot/``) calls these and sends what they return
or queue. Dependency direction: bot → services → (reporting_forms, storage)."""
