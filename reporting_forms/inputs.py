"""What a coordinator types (or passes to the CLI) to name a plan, a year or file formats, and
the one error for input that is not acceptable (``InputError``)."""

from __future__ import annotations

from reporting_forms.calendar import default_calendar
from reporting_forms.catalog import Catalog
from reporting_forms.texts import Refused

FORMATS = ("xlsx", "docx", "html", "csv", "png")


class InputError(Refused):
    """Input a coordinator typed (or passed to the CLI) is not acceptable; ``code`` names the
    message macro ``coordinator.input_<code>``."""

    TEMPLATE = "coordinator.input_"


# ---------------------------------------------------------------- formats and plans


def parse_formats(raw: str) -> tuple[str, ...]:
    """``"xlsx, docx"`` → ("xlsx", "docx"), in the order given, without repeats."""
    found: list[str] = []
    for part in (p.strip().casefold().lstrip(".") for p in raw.split(",")):
        if not part:
            continue
        if part not in FORMATS:
            raise InputError("unknown_format", value=part, known=", ".join(FORMATS))
        if part not in found:
            found.append(part)
    if not found:
        raise InputError("unknown_format", value=raw.strip(), known=", ".join(FORMATS))
    return tuple(found)


def resolve_plan(catalog: Catalog, raw: str | None) -> str:
    """A plan id from its id or its ``alias`` in the catalog (``RPP``, ``NH``), case-insensitive;
    none given: the catalog's main plan."""
    if not raw:
        return catalog.main_plan.id
    wanted = raw.strip().casefold()
    for plan in catalog.plans:
        if wanted in (plan.id.casefold(), (plan.alias or "").casefold()):
            return plan.id
    raise InputError("unknown_plan", value=raw.strip(), known=", ".join(p.id for p in catalog.plans))


def plan_years() -> tuple[int, ...]:
    """The plan calendar's years."""
    return default_calendar().years


def check_year(year: int | None) -> int | None:
    years = plan_years()
    if year is not None and year not in years:
        raise InputError("year_outside_plan", year=year, first=years[0], last=years[-1])
    return year
