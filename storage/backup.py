"""Backup and restore: one consistent JSON dump of the whole database (gzip optional).

What is in it: the catalog as installed (plans, directions, tasks, measures, indicators, policy
indicators, institutions — with their ids) and a fingerprint of the YAML catalog it came from;
the people (contacts, invites, registration attempts); every report with every revision
(reporting periods, reports, values, revisions); policy actuals; reminder mutes; job runs; the
outbox with its delivery state; conversation states (open drafts) and processed update ids.
APScheduler's own job table is not: the bot re-creates its jobs at start.

The dump is read in one transaction (REPEATABLE READ on PostgreSQL; on SQLite one read
transaction, a WAL snapshot), so it is consistent while the bot keeps running.

:func:`restore` loads a dump into an empty migrated database — no people, reports or outbox
rows; the catalog and reporting periods that ``resobot init`` loads may be there, and are
replaced by the dump's own rows — keeping every id (PostgreSQL sequences are moved past them).
A YAML catalog changed since the backup is applied afterwards by ``resobot init``, which updates
catalog rows in place by plan and code, ids unchanged.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Date, DateTime, Integer, Table, delete, func, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel

from reporting_forms.catalog import Catalog
from storage import tables as _tables  # noqa: F401  (registers the tables)
from storage.db import Database, as_utc, is_sqlite

FORMAT = "resobot-backup"
FORMAT_VERSION = 1

# Loaded by ``resobot init`` from the YAML: may be present in the target, replaced on restore.
CATALOG_TABLES = ("institution", "plan", "direction", "task", "measure", "indicator", "policy_indicator")
REPLACEABLE = (*CATALOG_TABLES, "reporting_period")


class BackupError(Exception):
    """A dump that cannot be written or restored; the message is one line for the CLI."""


@dataclass
class RestoreResult:
    counts: dict[str, int] = field(default_factory=dict)
    catalog_hash: str | None = None
    same_catalog: bool | None = None


def catalog_fingerprint(catalog: Catalog) -> str:
    """sha256 of the catalog as loaded from YAML (what ``resobot init`` installs)."""
    return hashlib.sha256(catalog.model_dump_json().encode("utf-8")).hexdigest()


def tables() -> list[Table]:
    """Every table of the models, parents before children (foreign keys)."""
    return list(SQLModel.metadata.sorted_tables)


# ---------------------------------------------------------------- values ↔ JSON


def _to_json(column: Any, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(column.type, DateTime):
        if isinstance(value, str):  # SQLite text read raw
            value = dt.datetime.fromisoformat(value)
        return as_utc(value).isoformat()  # type: ignore[union-attr]
    if isinstance(column.type, Date) or isinstance(value, dt.date):
        return value.isoformat()
    return value


def _from_json(column: Any, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(column.type, DateTime):
        return dt.datetime.fromisoformat(value)
    if isinstance(column.type, Date):
        return dt.date.fromisoformat(value)
    return value


# ---------------------------------------------------------------- dump


async def _read_tables(conn: AsyncConnection) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for table in tables():
        columns = list(table.columns)
        pk = list(table.primary_key.columns) or columns
        result = await conn.execute(select(table).order_by(*pk))
        out[table.name] = {
            "columns": [c.name for c in columns],
            "rows": [[_to_json(c, v) for c, v in zip(columns, row, strict=True)] for row in result],
        }
    return out


async def _alembic_revision(conn: AsyncConnection) -> str | None:
    try:
        return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    except Exception:  # not migrated by Alembic (tests that create_all)
        return None


async def dump(
    db: Database, *, catalog: Catalog | None = None, now: dt.datetime | None = None
) -> dict[str, Any]:
    """The whole database as one JSON-ready dict, read in one transaction."""
    async with db.engine.connect() as conn:
        if is_sqlite(db.url):
            await conn.exec_driver_sql("BEGIN")  # one read transaction: a WAL snapshot
        else:
            conn = await conn.execution_options(isolation_level="REPEATABLE READ")
            await conn.begin()
        data = await _read_tables(conn)
        revision = await _alembic_revision(conn)
        await conn.rollback()
    plans = [row[0] for row in data["plan"]["rows"]]
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "created_at": (now or dt.datetime.now(dt.UTC)).isoformat(),
        "schema_revision": revision,
        "catalog": {"plans": plans, "hash": catalog_fingerprint(catalog) if catalog else None},
        "tables": data,
    }


def write_file(data: dict[str, Any], path: Path | str, *, compress: bool | None = None) -> Path:
    """Write a dump; gzip when ``compress`` or when the name ends with ``.gz``."""
    path = Path(path)
    raw = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if compress or (compress is None and path.suffix == ".gz"):
        raw = gzip.compress(raw, mtime=0)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(raw)
    tmp.replace(path)
    return path


def read_file(path: Path | str) -> dict[str, Any]:
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror or exc}") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise BackupError(f"{path} is not a valid gzip file: {exc}") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BackupError(f"{path} is not a resobot backup (not JSON: {exc})") from None
    check_format(data)
    return data


def check_format(data: Any) -> None:
    if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("tables"), dict):
        raise BackupError("not a resobot backup (format marker missing)")
    if data.get("version") != FORMAT_VERSION:
        raise BackupError(
            f"backup format version {data.get('version')} is not supported (this is {FORMAT_VERSION})"
        )


# ---------------------------------------------------------------- restore


async def occupied(conn: AsyncConnection) -> dict[str, int]:
    """Rows in the tables a restore needs empty (everything but catalog and periods)."""
    out = {}
    for table in tables():
        if table.name in REPLACEABLE:
            continue
        count = (await conn.execute(select(func.count()).select_from(table))).scalar_one()
        if count:
            out[table.name] = int(count)
    return out


async def _reset_sequences(conn: AsyncConnection) -> None:
    for table in tables():
        pk = list(table.primary_key.columns)
        if len(pk) != 1 or not isinstance(pk[0].type, Integer):
            continue
        name = pk[0].name
        seq = (
            await conn.execute(text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": name})
        ).scalar()
        if seq:
            await conn.execute(
                text(
                    f'SELECT setval(:seq, COALESCE((SELECT MAX("{name}") FROM "{table.name}"), 0) + 1, false)'
                ),
                {"seq": seq},
            )


async def restore(db: Database, data: dict[str, Any], *, catalog: Catalog | None = None) -> RestoreResult:
    """Load a dump into an empty migrated database (see the module docstring); ids are kept."""
    check_format(data)
    dumped: dict[str, Any] = data["tables"]
    known = {t.name for t in tables()}
    unknown = sorted(set(dumped) - known)
    if unknown:
        raise BackupError(f"the backup has tables this version does not know: {', '.join(unknown)}")
    result = RestoreResult()
    async with db.engine.begin() as conn:
        present = set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
        missing = sorted(known - present)
        if missing:
            raise BackupError(
                f"the database is not migrated (missing {', '.join(missing)}): run `resobot init`"
            )
        busy = await occupied(conn)
        if busy:
            listed = ", ".join(f"{name} {n}" for name, n in busy.items())
            raise BackupError(f"the database is not empty ({listed} rows); restore needs a fresh database")
        for table in reversed(tables()):
            if table.name in REPLACEABLE:
                await conn.execute(delete(table))
        for table in tables():
            block = dumped.get(table.name)
            if not block or not block["rows"]:
                result.counts[table.name] = 0
                continue
            names: list[str] = block["columns"]
            absent = [n for n in names if n not in table.columns]
            if absent:
                raise BackupError(
                    f"{table.name}: columns {', '.join(absent)} are not in this version's schema"
                )
            cols = [table.columns[n] for n in names]
            rows = [
                {c.name: _from_json(c, v) for c, v in zip(cols, row, strict=True)} for row in block["rows"]
            ]
            await conn.execute(table.insert(), rows)
            result.counts[table.name] = len(rows)
        if not is_sqlite(db.url):
            await _reset_sequences(conn)
    result.catalog_hash = data.get("catalog", {}).get("hash")
    if catalog is not None and result.catalog_hash:
        result.same_catalog = result.catalog_hash == catalog_fingerprint(catalog)
    return result


__all__ = [
    "CATALOG_TABLES",
    "FORMAT",
    "FORMAT_VERSION",
    "BackupError",
    "RestoreResult",
    "catalog_fingerprint",
    "check_format",
    "dump",
    "read_file",
    "restore",
    "tables",
    "write_file",
]
