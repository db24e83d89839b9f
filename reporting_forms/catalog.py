"""The plan catalog: YAML files in ``plans/`` loaded into validated pydantic models.

Everything the bot knows about the plans (directions, tasks, measures, indicator rows,
policy results, the informal-hierarchy action plan, institutions) comes from these files.
A broken file fails on load with the file name, the entry id and the reason.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Mapping, Sequence
from enum import StrEnum
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, ClassVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PLANS_DIR = Path(__file__).parent / "plans"


class MetricKind(StrEnum):
    """What an indicator row counts; decides the question, the input and the validation."""

    PEOPLE_TRAINED = "people_trained"
    PARTICIPANTS = "participants"
    EVENTS_HELD = "events_held"
    CONSULTATIONS = "consultations"
    SESSIONS = "sessions"
    COUNT = "count"
    PERCENT = "percent"
    MILESTONE = "milestone"
    TEXT = "text"

    @property
    def is_numeric(self) -> bool:
        return self not in (MetricKind.MILESTONE, MetricKind.TEXT)

    @property
    def is_integer(self) -> bool:
        return self.is_numeric and self is not MetricKind.PERCENT


def lv_count(n: int, singular: str, plural: str) -> str:
    """``1 rādītājs``, ``21 rādītājs``, ``11 rādītāji``, ``4 rādītāji``: Latvian number agreement
    (the singular after numbers ending in 1, except those ending in 11)."""
    word = singular if n % 10 == 1 and n % 100 != 11 else plural
    return f"{n} {word}"


_NUMBER_PARTS = re.compile(r"([0-9]+)")


@lru_cache(maxsize=65536)
def natural_key(item_id: str) -> tuple[tuple[int, int | str], ...]:
    """The one natural sort of ids and answer keys: 1.2 < 1.10, "NH.3" < "NH.12", numbers
    before text at the same place."""
    return tuple(
        (0, int(p)) if p.isascii() and p.isdigit() else (1, p) for p in _NUMBER_PARTS.split(item_id) if p
    )


class CatalogError(ValueError):
    """A catalog file is malformed. The message names the file, the entry and the reason."""

    def __init__(self, file: str, entry: str, reason: str) -> None:
        self.file, self.entry, self.reason = file, entry, reason
        super().__init__(f"{file}: {entry}: {reason}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Institution(_Strict):
    abbr: str
    name: str
    name_en: str
    reports: bool = Field(default=False, description="Has contacts who report in chat (VPD, IeVP, TM, ...).")


def default_reporters(
    responsible: tuple[str, ...],
    co_responsible: tuple[str, ...],
    reporting: frozenset[str],
    owner: str | None,
) -> tuple[str, ...]:
    """Who files a measure's progress reports when the catalog does not say: the co-responsible
    institutions that report in chat, other than the plan's owner (TM coordinates the plan; its
    subordinate institutions do the work); where there is no such institution, the responsible
    one(s) that report in chat."""
    co = tuple(i for i in co_responsible if i in reporting and i != owner)
    return co or tuple(i for i in responsible if i in reporting)


class Indicator(_Strict):
    """One row of "Rezultatīvā rādītāja vērtība 2027.gadā" of a measure."""

    id: str
    text: str
    kind: MetricKind
    target: float | None = None
    unit: str | None = None
    deadline: dt.date | None = None
    deadline_text: str | None = None
    note: str | None = None
    untargeted: bool = Field(
        default=False,
        description="A numeric row the document gives no number for (e.g. a yearly count); "
        "without this flag a numeric row must have a target (checked when the catalog loads).",
    )

    @field_validator("target")
    @classmethod
    def _target_non_negative(cls, v: float | None) -> float | None:
        if v is not None and v < 0:
            raise ValueError("target must not be negative")
        return v

    @model_validator(mode="after")
    def _target_fits_kind(self) -> Indicator:
        if self.kind is MetricKind.PERCENT and self.target is not None and self.target > 100:
            raise ValueError("a percent target must be between 0 and 100")
        if not self.kind.is_numeric and self.target is not None:
            raise ValueError(f"a {self.kind.value} row has no numeric target")
        if self.kind.is_integer and self.target is not None and self.target != int(self.target):
            raise ValueError(f"a {self.kind.value} target must be a whole number")
        if self.untargeted and (self.target is not None or not self.kind.is_numeric):
            raise ValueError("untargeted: true is only for a numeric row without a target")
        return self


class Measure(_Strict):
    """A pasākums with its result, institutions and indicator rows."""

    id: str
    name: str
    result: str | None = None
    responsible: tuple[str, ...]
    co_responsible: tuple[str, ...] = ()
    deadline: dt.date | None = None
    deadline_text: str | None = None
    funding: str | None = None
    achieved_note: str | None = None
    reporters: tuple[str, ...] = Field(
        default=(),
        description="Institutions that file this measure's progress reports (the designated reporters); "
        "empty in the YAML: the default rule (``default_reporters``), applied when the catalog loads.",
    )
    indicators: tuple[Indicator, ...]

    @field_validator("indicators")
    @classmethod
    def _has_indicators(cls, v: tuple[Indicator, ...]) -> tuple[Indicator, ...]:
        if not v:
            raise ValueError("a measure needs at least one indicator row")
        return v

    @property
    def institutions(self) -> tuple[str, ...]:
        """Responsible first, then co-responsible, then any designated reporter the plan does not name."""
        named = self.responsible + tuple(i for i in self.co_responsible if i not in self.responsible)
        return named + tuple(i for i in self.reporters if i not in named)


class Task(_Strict):
    id: str
    title: str
    measures: tuple[Measure, ...]


class Direction(_Strict):
    """A rīcības virziens (or, in the informal-hierarchy plan, a section)."""

    id: str
    title: str
    tasks: tuple[Task, ...]


class YearTarget(_Strict):
    """A yearly target as written ("Pieaug", "16 %", "1804/37,25 % ...") and its number."""

    text: str
    value: float | None = None


class Passport(_Strict):
    """Indicator passport (Annex 5): how the indicator is measured."""

    methodology: str
    data_source: str | None = None
    frequency: str
    forecast: str
    influencing_results: str | None = None
    other: str | None = None
    history: dict[int, float] = Field(default_factory=dict)


class PolicyIndicator(_Strict):
    id: str
    text: str
    kind: MetricKind
    unit: str | None = None
    targets: dict[int, YearTarget]
    passport: Passport | None = None


class PolicyResult(_Strict):
    id: str
    title: str
    indicators: tuple[PolicyIndicator, ...]


class PlanPeriod(_Strict):
    """A span of whole days, ``start`` to ``end`` inclusive (a plan's or its guidelines' period)."""

    start: dt.date
    end: dt.date

    @model_validator(mode="after")
    def _ordered(self) -> PlanPeriod:
        if self.end <= self.start:
            raise ValueError("period end must be after its start")
        return self

    @property
    def years(self) -> tuple[int, ...]:
        return tuple(range(self.start.year, self.end.year + 1))


class Plan(_Strict):
    id: str
    title: str
    short_title: str
    source: str
    alias: str | None = Field(default=None, description="Short name a coordinator may type (RPP, NH).")
    main: bool = Field(default=False, description="The main plan: its period is the reporting calendar.")
    period: PlanPeriod | None = Field(default=None, description="The plan's own period (reporting years).")
    guidelines_period: PlanPeriod | None = Field(
        default=None, description="The policy guidelines' period: years of policy-result actuals."
    )
    owner: str | None = Field(default=None, description="The institution that owns and coordinates the plan.")
    directions: tuple[Direction, ...]
    policy_results: tuple[PolicyResult, ...] = ()

    def measures(self) -> Iterator[Measure]:
        for direction in self.directions:
            for task in direction.tasks:
                yield from task.measures


class _Index:
    """Lookups of one catalog, built on first use (the catalog is immutable): measures by id,
    institutions by abbreviation, each institution's measures. Same answers as the scans."""

    def __init__(self, catalog: Catalog) -> None:
        self.institutions = catalog.institutions
        self.plans = catalog.plans
        self.rows = tuple(catalog._scan())
        self.measures: dict[str, Measure] = {}
        for *_, measure in self.rows:
            self.measures.setdefault(measure.id, measure)
        self.by_abbr: dict[str, Institution] = {}
        for inst in catalog.institutions:
            self.by_abbr.setdefault(inst.abbr.casefold(), inst)
        self._for: dict[str, tuple[tuple[Plan, Direction, Task, Measure], ...]] = {}
        self._of: dict[str, dict[str, Measure]] = {}

    def measures_for(self, abbr: str) -> tuple[tuple[Plan, Direction, Task, Measure], ...]:
        rows = self._for.get(abbr)
        if rows is None:
            rows = self._for[abbr] = tuple(row for row in self.rows if abbr in row[3].institutions)
        return rows

    def measures_of(self, abbr: str) -> dict[str, Measure]:
        found = self._of.get(abbr)
        if found is None:
            found = self._of[abbr] = {}
            for *_, measure in self.measures_for(abbr):
                found.setdefault(measure.id, measure)
        return found


class Catalog(_Strict):
    institutions: tuple[Institution, ...]
    plans: tuple[Plan, ...]

    @model_validator(mode="after")
    def _default_reporters(self) -> Catalog:
        """A measure that names no ``reporters:`` gets the default rule (``default_reporters``)."""
        reporting = self.reporting_institutions()
        missing = {
            m.id: default_reporters(m.responsible, m.co_responsible, reporting, plan.owner)
            for plan in self.plans
            for m in plan.measures()
            if not m.reporters
        }
        if missing:  # still being built: the frozen model's own field, set once
            object.__setattr__(self, "plans", self.with_reporters(missing).plans)
        return self

    @property
    def main_plan(self) -> Plan:
        """The plan flagged ``main: true`` (at most one, checked on load); else the first plan."""
        return next((p for p in self.plans if p.main), self.plans[0])

    def plans_main_first(self) -> list[Plan]:
        """The plans, the main plan first (then in catalog order)."""
        main = self.main_plan
        return [main, *(p for p in self.plans if p is not main)]

    def _index(self) -> _Index:
        """The lookups, kept in the instance dict as functools.cached_property keeps a value
        (pydantic ignores it in equality, hashing and dumps). A copy made with
        ``model_copy(update=...)`` carries the dict along, so the index is rebuilt when it was
        not built from this instance's own fields."""
        index = self.__dict__.get("_lookup_index")
        if index is None or index.plans is not self.plans or index.institutions is not self.institutions:
            index = self.__dict__["_lookup_index"] = _Index(self)
        return index

    def institution(self, abbr: str) -> Institution:
        inst = self._index().by_abbr.get(abbr.casefold())
        if inst is None:
            raise KeyError(abbr)
        return inst

    def measures(self) -> Iterator[tuple[Plan, Direction, Task, Measure]]:
        return iter(self._index().rows)

    def _scan(self) -> Iterator[tuple[Plan, Direction, Task, Measure]]:
        for plan in self.plans:
            for direction in plan.directions:
                for task in direction.tasks:
                    for measure in task.measures:
                        yield plan, direction, task, measure

    def measure(self, measure_id: str) -> Measure:
        measure = self._index().measures.get(measure_id)
        if measure is None:
            raise KeyError(measure_id)
        return measure

    def find(self, item_id: str) -> tuple[str, Any]:
        """Look up any id: returns (kind, object) for plan/direction/task/measure/indicator/policy."""
        for plan in self.plans:
            if plan.id == item_id:
                return "plan", plan
            for pr in plan.policy_results:
                if pr.id == item_id:
                    return "policy_result", pr
                for pi in pr.indicators:
                    if pi.id == item_id:
                        return "policy_indicator", pi
            for direction in plan.directions:
                if direction.id == item_id:
                    return "direction", direction
                for task in direction.tasks:
                    if task.id == item_id:
                        return "task", task
                    for measure in task.measures:
                        if measure.id == item_id:
                            return "measure", measure
                        for ind in measure.indicators:
                            if ind.id == item_id:
                                return "indicator", ind
        raise KeyError(item_id)

    def measures_for(self, abbr: str) -> list[tuple[Plan, Direction, Task, Measure]]:
        """Measures where the institution is responsible, co-responsible or a designated reporter."""
        return list(self._index().measures_for(abbr))

    def reported_by(self, abbr: str) -> list[tuple[Plan, Direction, Task, Measure]]:
        """Measures the institution is a designated reporter of (what it is chased for)."""
        return [row for row in self._index().rows if abbr in row[3].reporters]

    def reporting_institutions(self) -> frozenset[str]:
        """Institutions whose contacts file reports in chat (``reports: true``)."""
        return frozenset(i.abbr for i in self.institutions if i.reports)

    def with_reporters(self, overrides: Mapping[str, Sequence[str]]) -> Catalog:
        """The catalog with the reporters of some measures replaced (an admin's
        ``resobot plan reporters``, kept in the database). Unknown measure ids are ignored."""
        if not overrides:
            return self
        known = {i.abbr for i in self.institutions}

        def measure(m: Measure) -> Measure:
            new = overrides.get(m.id)
            if new is None:
                return m
            return m.model_copy(update={"reporters": tuple(i for i in new if i in known)})

        plans = tuple(
            plan.model_copy(
                update={
                    "directions": tuple(
                        d.model_copy(
                            update={
                                "tasks": tuple(
                                    t.model_copy(update={"measures": tuple(measure(m) for m in t.measures)})
                                    for t in d.tasks
                                )
                            }
                        )
                        for d in plan.directions
                    )
                }
            )
            for plan in self.plans
        )
        return self.model_copy(update={"plans": plans})

    def measure_of(self, abbr: str, measure_id: str) -> Measure | None:
        """The measure ``measure_id`` if the institution is responsible or co-responsible for it."""
        return self._index().measures_of(abbr).get(measure_id)


# ---------------------------------------------------------------- loading


def _entry_of(data: Any, loc: tuple[Any, ...]) -> str:
    """Walk the raw YAML along a pydantic error location; return the innermost id seen."""
    entry = "(top level)"
    node = data
    for part in loc:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(node, dict) and "id" in node:
            entry = str(node["id"])
        elif isinstance(node, dict) and "abbr" in node:
            entry = str(node["abbr"])
    return entry


def _normalise_plan(raw: dict[str, Any]) -> dict[str, Any]:
    """The informal-hierarchy plan lists measures directly under sections: give each section
    one task with the section's own id and title, so every plan has one shape."""
    directions = raw.get("directions") or []
    for section in directions:
        if isinstance(section, dict) and "measures" in section and "tasks" not in section:
            section["tasks"] = [
                {"id": section.get("id"), "title": section.get("title"), "measures": section.pop("measures")}
            ]
    return raw


_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


class _CatalogLoader(yaml.SafeLoader):
    """SafeLoader that leaves ``2027-12-31`` a string: pydantic parses the dates, so an impossible
    one (``2027-02-30``) is a CatalogError naming the file and the entry, not a bare ValueError."""

    yaml_implicit_resolvers: ClassVar[dict[Any, list[tuple[str, Any]]]] = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP_TAG]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_CatalogLoader)
    except yaml.YAMLError as exc:
        raise CatalogError(path.name, "(syntax)", str(exc).replace("\n", " ")) from exc


def _validate(model: type[BaseModel], data: Any, file: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = tuple(err["loc"])
        field = ".".join(str(p) for p in loc if not isinstance(p, int)) or "(root)"
        raise CatalogError(file, _entry_of(data, loc), f"{field}: {err['msg']}") from exc


def _check_references(catalog: Catalog, files: dict[str, str]) -> None:
    known = {i.abbr for i in catalog.institutions}
    reporting = catalog.reporting_institutions()
    seen: dict[str, str] = {}

    def unique(item_id: str, file: str) -> None:
        if item_id in seen:
            raise CatalogError(file, item_id, f"duplicate id (also in {seen[item_id]})")
        seen[item_id] = file

    mains = [p.id for p in catalog.plans if p.main]
    if len(mains) > 1:
        raise CatalogError(files[mains[1]], mains[1], f"main: true on more than one plan (also {mains[0]})")
    if mains and catalog.main_plan.period is None:
        raise CatalogError(files[mains[0]], mains[0], "the main plan needs a period (start, end)")
    for abbr in (i.abbr for i in catalog.institutions):
        if list(i.abbr for i in catalog.institutions).count(abbr) > 1:
            raise CatalogError(INSTITUTIONS_FILE, abbr, "duplicate institution")
    for plan in catalog.plans:
        file = files[plan.id]
        unique(plan.id, file)
        for pr in plan.policy_results:
            unique(pr.id, file)
            for pi in pr.indicators:
                unique(pi.id, file)
        for direction in plan.directions:
            unique(direction.id, file)
            for task in direction.tasks:
                if task.id != direction.id:
                    unique(task.id, file)
                for measure in task.measures:
                    unique(measure.id, file)
                    for abbr in measure.institutions:
                        if abbr not in known:
                            raise CatalogError(file, measure.id, f"unknown institution {abbr!r}")
                    for abbr in measure.reporters:
                        if abbr not in reporting:
                            reason = f"reporter {abbr!r} does not report in chat (institutions.yaml)"
                            raise CatalogError(file, measure.id, reason)
                    for ind in measure.indicators:
                        unique(ind.id, file)
                        if not ind.id.startswith(measure.id + "."):
                            raise CatalogError(file, ind.id, f"indicator id must start with {measure.id}.")
                        _check_target(ind, file)


def _check_target(ind: Indicator, file: str) -> None:
    """A numeric row without a number would pass every report silently: it needs a target, or
    ``untargeted: true`` where the document really gives none."""
    if ind.kind.is_numeric and ind.target is None and not ind.untargeted:
        raise CatalogError(
            file,
            ind.id,
            f"a {ind.kind.value} row needs a target (or untargeted: true if the plan gives none)",
        )


INSTITUTIONS_FILE = "institutions.yaml"


def _plan_files(directory: Path) -> list[Path]:
    return [p for p in sorted(directory.glob("*.yaml")) if p.name != INSTITUTIONS_FILE]


def load_catalog(plans_dir: Path | None = None) -> Catalog:
    """Load and validate every YAML file of the catalog. Raises CatalogError."""
    directory = plans_dir or PLANS_DIR
    return _load(directory / INSTITUTIONS_FILE, _plan_files(directory))


def catalog_files(path: Path) -> tuple[Path, list[Path]]:
    """(institutions file, plan files) for a plans folder or one plan YAML file: the institutions
    file next to it, else the packaged one. Raises CatalogError for a path with nothing to check."""
    if path.is_dir():
        directory, plan_files = path, _plan_files(path)
        if not plan_files:
            raise CatalogError(str(path), "(folder)", "no plan YAML files (*.yaml) in this folder")
    elif path.is_file():
        directory = path.parent
        plan_files = _plan_files(directory) if path.name == INSTITUTIONS_FILE else [path]
    else:
        raise CatalogError(str(path), "(path)", "no such file or folder")
    institutions = directory / INSTITUTIONS_FILE
    return (institutions if institutions.is_file() else PLANS_DIR / INSTITUTIONS_FILE), plan_files


def load_catalog_at(path: Path) -> Catalog:
    """Validate an edited copy before installing it: ``path`` is a plans folder or one plan YAML
    file (see ``catalog_files``). Raises CatalogError."""
    return _load(*catalog_files(path))


def _load(inst_path: Path, plan_files: list[Path]) -> Catalog:
    raw_inst = _read_yaml(inst_path) or {}
    if not isinstance(raw_inst, dict):
        raise CatalogError(inst_path.name, "(top level)", "expected a mapping with institutions")
    institutions = [_validate(Institution, item, inst_path.name) for item in raw_inst.get("institutions", [])]
    plans: list[Plan] = []
    files: dict[str, str] = {}
    for path in plan_files:
        raw = _read_yaml(path)
        if not isinstance(raw, dict):
            raise CatalogError(path.name, "(top level)", "expected a mapping with id, title, directions")
        plan = _validate(Plan, _normalise_plan(raw), path.name)
        if plan.id in files:
            raise CatalogError(path.name, plan.id, f"duplicate id (also in {files[plan.id]})")
        files[plan.id] = path.name
        plans.append(plan)
    catalog = Catalog(institutions=tuple(institutions), plans=tuple(plans))
    _check_references(catalog, files)
    return catalog


@cache
def default_catalog() -> Catalog:
    return load_catalog()
