"""The implementation plan 2025–2027 (seed 000, passports from seed 001) as transcribed in
plans/resocialisation_2025_2027.yaml: structure, sampled rows and verbatim wording."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from reporting_forms.catalog import Indicator, Measure, MetricKind, Plan, PolicyIndicator, load_catalog

# Verbatim copies of /work/shared/seeds, committed so a fresh clone checks the texts too.
SEEDS = Path(__file__).resolve().parent / "seeds"
PLAN_SEED = SEEDS / "000_f98ddf4d58baf9dd.txt"
PASSPORT_SEED = SEEDS / "001_5d6c69a2de455881.txt"

END_2027 = dt.date(2027, 12, 31)

# Measures per task, as numbered (Nr.p.k.) in the document.
MEASURES_PER_TASK = {
    "1.1": 10, "1.2": 1, "1.3": 11, "1.4": 2, "1.5": 3,
    "2.1": 3, "2.2": 1, "2.3": 1, "2.4": 1, "2.5": 1, "2.6": 1,
    "3.1": 5, "3.2": 1, "3.3": 1, "3.4": 2, "3.7": 1,
    "4.1": 1, "4.2": 3, "4.3": 1, "4.4": 1, "4.5": 2,
}  # fmt: skip

# Rows of "Rezultatīvā rādītāja vērtība 2027.gadā" per measure (1.2.1: the first cell holds two
# separately quantified statements and is split into two rows, so 4 table rows -> 5 indicators;
# 4.5.1: its one cell holds 3 events and 90 participants, so 1 table row -> 2 indicators).
ROWS_PER_MEASURE = {
    "1.1.1": 2, "1.1.2": 2, "1.1.3": 2, "1.1.4": 2, "1.1.5": 4, "1.1.6": 3, "1.1.7": 1,
    "1.1.8": 2, "1.1.9": 2, "1.1.10": 2,
    "1.2.1": 5,
    "1.3.1": 1, "1.3.2": 1, "1.3.3": 4, "1.3.4": 1, "1.3.5": 3, "1.3.6": 1, "1.3.7": 2,
    "1.3.8": 2, "1.3.9": 1, "1.3.10": 1, "1.3.11": 1,
    "1.4.1": 1, "1.4.2": 1,
    "1.5.1": 1, "1.5.2": 1, "1.5.3": 1,
    "2.1.1": 9, "2.1.2": 6, "2.1.3": 9,
    "2.2.1": 1, "2.3.1": 1, "2.4.1": 1, "2.5.1": 2, "2.6.1": 1,
    "3.1.1": 2, "3.1.2": 4, "3.1.3": 1, "3.1.4": 3, "3.1.5": 2,
    "3.2.1": 1, "3.3.1": 1, "3.4.1": 1, "3.4.2": 1, "3.7.1": 1,
    "4.1.1": 1, "4.2.1": 1, "4.2.2": 1, "4.2.3": 1, "4.3.1": 3, "4.4.1": 2,
    "4.5.1": 2, "4.5.2": 1,
}  # fmt: skip

TOTAL_INDICATOR_ROWS = 109

_ARTEFACTS = re.compile(r"\[bookmark: [^\]]*\]|\[footnoteRef:\d+\]")
_FOOTNOTE = re.compile(r"\[\d+:\s+([^\]]*)\]")


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _clean_seed(path: Path) -> tuple[str, list[str]]:
    """Seed text without Word artefacts, whitespace-collapsed; plus the footnote texts."""
    assert path.exists(), f"seed file missing: {path} (tests/seeds/ holds the source documents)"
    raw = _ARTEFACTS.sub("", path.read_text(encoding="utf-8"))
    footnotes = [_norm(m) for m in _FOOTNOTE.findall(raw)]
    return _norm(_FOOTNOTE.sub(" ", raw)), footnotes


@pytest.fixture(scope="module")
def plan() -> Plan:
    (found,) = [p for p in load_catalog().plans if p.id == "RPP-2025-2027"]
    return found


def _measures(plan: Plan) -> dict[str, Measure]:
    return {m.id: m for m in plan.measures()}


def _indicators(plan: Plan) -> dict[str, Indicator]:
    return {i.id: i for m in plan.measures() for i in m.indicators}


def _policy_indicators(plan: Plan) -> dict[str, PolicyIndicator]:
    return {pi.id: pi for pr in plan.policy_results for pi in pr.indicators}


# ---------------------------------------------------------------- the seed copies


def test_seed_copies_are_in_the_repository() -> None:
    """The five source documents and their README travel with the tests (a fresh clone too)."""
    listed = re.findall(r"^\| (\d{3}_[0-9a-f]{16}\.txt) \|", (SEEDS / "README.md").read_text("utf-8"), re.M)
    assert sorted(listed) == sorted(p.name for p in SEEDS.glob("*.txt"))
    assert len(listed) == 5 and PLAN_SEED.name in listed and PASSPORT_SEED.name in listed
    for name in listed:
        assert (SEEDS / name).stat().st_size > 1000, name


# ---------------------------------------------------------------- structure


def test_header(plan: Plan) -> None:
    assert plan.title == (
        "Resocializācijas politikas pamatnostādņu 2022.–2027. gadam īstenošanas plāns 2025.–2027. gadam"
    )
    assert plan.short_title == "Īstenošanas plāns 2025.–2027. gadam"
    assert plan.source == "000_f98ddf4d58baf9dd.txt"


def test_directions_and_tasks(plan: Plan) -> None:
    assert [d.id for d in plan.directions] == ["1", "2", "3", "4"]
    task_ids = [t.id for d in plan.directions for t in d.tasks]
    assert len(task_ids) == 21
    assert task_ids == list(MEASURES_PER_TASK)
    assert [t.id for t in plan.directions[2].tasks] == ["3.1", "3.2", "3.3", "3.4", "3.7"]
    for direction in plan.directions:
        for task in direction.tasks:
            assert task.id.startswith(direction.id + ".")


def test_direction_and_task_titles(plan: Plan) -> None:
    assert plan.directions[0].title.startswith("Turpināt pilnveidot resocializācijas darbu")
    assert plan.directions[2].title == (
        "Nodrošināt soda izpildes vajadzībām adekvātu infrastruktūru, t.sk. nepieciešamos e-risinājumus"
    )
    tasks = {t.id: t for d in plan.directions for t in d.tasks}
    assert tasks["1.1"].title == "Ieslodzīto un probācijas klientu resocializācijas instrumentu pilnveidošana"
    assert tasks["3.4"].title == "Jaunā Liepājas cietuma būvniecība"
    assert tasks["2.3"].title == "Kontaktpersonu ieviešanas uzsākšana atsevišķās brīvības atņemšanas iestādēs"


def test_measure_counts(plan: Plan) -> None:
    per_task = {t.id: len(t.measures) for d in plan.directions for t in d.tasks}
    assert per_task == MEASURES_PER_TASK
    assert len(list(plan.measures())) == 53
    for d in plan.directions:
        for t in d.tasks:
            assert [m.id for m in t.measures] == [f"{t.id}.{n}" for n in range(1, len(t.measures) + 1)]


def test_indicator_row_counts(plan: Plan) -> None:
    assert {m.id: len(m.indicators) for m in plan.measures()} == ROWS_PER_MEASURE
    assert sum(ROWS_PER_MEASURE.values()) == TOTAL_INDICATOR_ROWS
    assert len(_indicators(plan)) == TOTAL_INDICATOR_ROWS
    for m in plan.measures():
        assert [i.id for i in m.indicators] == [f"{m.id}.{n}" for n in range(1, len(m.indicators) + 1)]


def test_every_row_has_a_deadline_in_the_plan_period(plan: Plan) -> None:
    for m in plan.measures():
        assert m.deadline is not None and dt.date(2025, 1, 1) <= m.deadline <= END_2027
        assert m.deadline == m.indicators[0].deadline, m.id
        for ind in m.indicators:
            assert ind.deadline is not None and dt.date(2025, 1, 1) <= ind.deadline <= END_2027


def test_deadlines_differing_from_end_of_2027(plan: Plan) -> None:
    inds = _indicators(plan)
    early = {i.id: i.deadline for i in inds.values() if i.deadline != END_2027}
    assert early == {
        "1.5.3.1": dt.date(2025, 12, 31),
        "2.5.1.1": dt.date(2026, 12, 31),
        "3.1.2.1": dt.date(2026, 5, 31),
        "3.1.2.2": dt.date(2026, 5, 31),
        "3.1.4.1": dt.date(2026, 5, 31),
        "3.1.4.2": dt.date(2026, 5, 31),
        "3.1.4.3": dt.date(2026, 5, 31),
        "3.3.1.1": dt.date(2025, 12, 31),
        "3.4.1.1": dt.date(2025, 9, 29),
        "3.4.2.1": dt.date(2026, 4, 1),
    }


def test_responsible_is_tm_except_3_4_2(plan: Plan) -> None:
    for m in plan.measures():
        expected = ("IeVP",) if m.id == "3.4.2" else ("TM",)
        assert m.responsible == expected, m.id
        assert m.co_responsible, m.id
        assert all(a and not a.endswith(",") for a in m.co_responsible)


def test_targets_appear_in_their_row_text(plan: Plan) -> None:
    words = {1: "Viena"}
    for ind in _indicators(plan).values():
        if ind.target is None:
            assert ind.kind in (MetricKind.MILESTONE, MetricKind.TEXT) or ind.unit is None, ind.id
            continue
        assert ind.kind.is_numeric and ind.unit, ind.id
        number = int(ind.target)
        assert re.search(rf"(?<!\d){number}(?!\d)", ind.text) or words.get(number, "?") in ind.text, ind.id


# ---------------------------------------------------------------- sampled rows


def test_1_1_1(plan: Plan) -> None:
    m = _measures(plan)["1.1.1"]
    assert m.name.startswith("Risku/resursu novērtēšanas un resocializācijas darba organizēšanas instrumenta")
    assert m.result == (
        "Precīzāks darbs pie noziedzīgās uzvedības risku noteikšanas un atbilstošu resocializācijas "
        "vajadzību konstatēšanas"
    )
    assert (m.responsible, m.co_responsible, m.deadline) == (("TM",), ("VPD",), END_2027)
    first, second = m.indicators
    assert first.text == (
        "Izstrādāts un ieviests jauns specializēts riska un vajadzību novērtēšanas instruments "
        "pieaugušiem (26 gadi un vecāki) probācijas klientiem"
    )
    assert first.kind is MetricKind.MILESTONE and first.target is None
    assert (second.text, second.kind, second.target, second.unit) == (
        "Apmācīti līdz 120 darbinieki",
        MetricKind.PEOPLE_TRAINED,
        120,
        "darbinieki",
    )


def test_1_1_5_has_four_rows(plan: Plan) -> None:
    m = _measures(plan)["1.1.5"]
    assert (m.responsible, m.co_responsible) == (("TM",), ("IeVP",))
    assert len(m.indicators) == 4
    first, second, third, last = m.indicators
    assert first.text.startswith("Ieviesti 2 jauni specializēti (provizoriski – notiesātajām sievietēm")
    assert first.text.endswith("riska un vajadzību novērtēšanas instrumenti")
    assert (first.kind, first.target) == (MetricKind.COUNT, 2)
    assert second.text == (
        "Pētījuma veikšana par RVN-V validitāti.\nPilnveidots un pārskatīts pamata RVN-V "
        "(darba organizācijas) instruments notiesātajiem brīvības atņemšanas iestādēs"
    )
    assert second.kind is MetricKind.MILESTONE
    assert third.text.startswith("Īstenots pētījums/ izstrādātas vadlīnijas par RVN instrumenta")
    assert (last.text, last.kind, last.target) == (
        "Apmācīti 273 IeVP darbinieki",
        MetricKind.PEOPLE_TRAINED,
        273,
    )
    assert {i.deadline for i in m.indicators} == {END_2027}


def test_1_1_9_stray_number_is_a_continuation_row(plan: Plan) -> None:
    m = _measures(plan)["1.1.9"]
    assert m.indicators[1].text == (
        "Probācijas programmu pilnveidošanā iesaistīti un darbā ar tām apmācīti 268 darbinieki"
    )
    assert m.indicators[1].target == 268


def test_1_2_1_split_cell(plan: Plan) -> None:
    rows = _measures(plan)["1.2.1"].indicators
    note = "Viena plāna tabulas rinda ar diviem mērķiem."
    assert (rows[0].text, rows[0].target, rows[0].note) == (
        "Apmācības par darbu ar bērniem un jauniešiem nodrošinātas 250 darbiniekiem",
        250,
        note,
    )
    assert (rows[1].text, rows[1].target, rows[1].note) == (
        "Apmācības par bērnu tiesību aizsardzību nodrošinātas 130 darbiniekiem",
        130,
        note,
    )
    assert rows[2].target == 300 and rows[2].kind is MetricKind.PEOPLE_TRAINED
    assert rows[3].text == "Īstenotas mācības izlīguma starpniekiem" and rows[3].kind is MetricKind.MILESTONE
    assert (rows[4].text, rows[4].target) == ("Apmācīti 30 izlīguma veicēji", 30)
    assert all(r.note is None for r in rows[2:])


def test_1_3_3_consultations(plan: Plan) -> None:
    m = _measures(plan)["1.3.3"]
    assert [(i.target, i.kind, i.unit) for i in m.indicators] == [
        (180, MetricKind.CONSULTATIONS, "probācijas klienti"),
        (60, MetricKind.CONSULTATIONS, "probācijas klienti"),
        (90, MetricKind.CONSULTATIONS, "probācijas klienti"),
        (240, MetricKind.CONSULTATIONS, "probācijas klienti"),
    ]
    assert m.indicators[0].text == "Narkologa/atkarību speciālista konsultācijas 180 probācijas klientiem"


def test_1_3_sampled_rows(plan: Plan) -> None:
    inds = _indicators(plan)
    assert (inds["1.3.6.1"].text, inds["1.3.6.1"].target, inds["1.3.6.1"].kind) == (
        "Aktivitātē iesaistīto ieslodzīto skaits - 45",
        45,
        MetricKind.PARTICIPANTS,
    )
    assert (inds["1.3.5.2"].text, inds["1.3.5.2"].target, inds["1.3.5.2"].kind) == (
        "54 īstenoti pasākumi",
        54,
        MetricKind.EVENTS_HELD,
    )
    assert inds["1.3.9.1"].target == 390 and inds["1.3.9.1"].unit == "konsultācijas"
    assert inds["1.3.11.1"].text == "10 (bērnu) probācijas klientu vecāki"
    assert _measures(plan)["1.3.1"].co_responsible == ("VPD", "IeVP")


def test_1_5_3_deadline(plan: Plan) -> None:
    m = _measures(plan)["1.5.3"]
    assert m.deadline == dt.date(2025, 12, 31)
    assert (m.indicators[0].text, m.indicators[0].kind) == ("Pētījums", MetricKind.MILESTONE)
    assert (m.responsible, m.co_responsible) == (("TM",), ("IeVP",))


def test_2_1_sessions_and_supervision(plan: Plan) -> None:
    inds = _indicators(plan)
    assert (inds["2.1.1.8"].text, inds["2.1.1.8"].kind, inds["2.1.1.8"].target) == (
        "318 grupu supervīziju sesijas VPD nodarbinātajiem un brīvprātīgajiem",
        MetricKind.SESSIONS,
        318,
    )
    assert inds["2.1.1.9"].target == 960 and inds["2.1.1.9"].kind is MetricKind.SESSIONS
    assert (inds["2.1.3.7"].text, inds["2.1.3.7"].kind, inds["2.1.3.7"].target) == (
        "Grupu supervīzijas 150 nodarbinātajiem",
        MetricKind.PEOPLE_TRAINED,
        150,
    )
    assert (inds["2.1.1.6"].kind, inds["2.1.1.6"].target) == (MetricKind.EVENTS_HELD, 1)
    assert inds["2.1.3.9"].text == "Ārvalstu pieredzes apmaiņa"


def test_2_5_1_row_deadlines(plan: Plan) -> None:
    m = _measures(plan)["2.5.1"]
    assert (m.responsible, m.co_responsible, m.deadline) == (("TM",), ("IeVP", "LM"), dt.date(2026, 12, 31))
    assert [(i.text, i.deadline) for i in m.indicators] == [
        ("Ziņojums tieslietu ministram", dt.date(2026, 12, 31)),
        ("Izstrādāti normatīvo aktu grozījumi", END_2027),
    ]


def test_3_1_2_and_3_1_4(plan: Plan) -> None:
    m = _measures(plan)["3.1.2"]
    assert m.deadline == dt.date(2026, 5, 31)
    assert m.result == (
        "Aizvien vairāk digitalizētu/automatizētu ieslodzījuma vietu procesu, kas nodrošina "
        "personālresursu efektīvu izmantošanu"
    )
    assert [i.deadline for i in m.indicators] == [
        dt.date(2026, 5, 31),
        dt.date(2026, 5, 31),
        END_2027,
        END_2027,
    ]
    assert m.indicators[1].text.startswith("Digitalizēti pamatdarbības procesi, kas ir saistīti")
    assert "bookmark" not in m.indicators[1].text
    assert m.indicators[2].text == "e-indeksa pieaugums"
    m4 = _measures(plan)["3.1.4"]
    assert m4.deadline == dt.date(2026, 5, 31)
    assert {i.deadline for i in m4.indicators} == {dt.date(2026, 5, 31)}
    assert m4.indicators[2].text == "E-lietas projekta Audio-video rīka komponentes ieviešana VPD"


def test_3_1_5_percent(plan: Plan) -> None:
    first, second = _measures(plan)["3.1.5"].indicators
    assert (first.kind, first.target) == (MetricKind.PERCENT, 75)
    assert (second.kind, second.target) == (MetricKind.PERCENT, 4)
    assert second.text.startswith("Fiziskām personām elektroniski parakstīto")


def test_3_3_and_3_4(plan: Plan) -> None:
    ms = _measures(plan)
    assert ms["3.3.1"].deadline == dt.date(2025, 12, 31)
    m1, m2 = ms["3.4.1"], ms["3.4.2"]
    assert m1.name == "Jaunā Liepājas cietuma būvniecība"
    assert (m1.responsible, m1.co_responsible, m1.deadline) == (
        ("TM",),
        ("TNA", "IeVP"),
        dt.date(2025, 9, 29),
    )
    assert m1.indicators[0].text == "Objekts nodots ekspluatācijā"
    assert (m2.responsible, m2.co_responsible, m2.deadline) == (("IeVP",), ("TM",), dt.date(2026, 4, 1))
    assert m2.indicators[0].text == "Uz jauno cietumu pārvesti ieslodzītie"
    assert m2.indicators[0].deadline == dt.date(2026, 4, 1)


def test_3_7_1(plan: Plan) -> None:
    m = _measures(plan)["3.7.1"]
    assert (m.indicators[0].text, m.indicators[0].target, m.indicators[0].unit) == (
        "Izlīguma īstenošanai pielāgotas 2 telpas",
        2,
        "telpas",
    )


def test_direction_4_rows(plan: Plan) -> None:
    ms = _measures(plan)
    assert ms["4.2.1"].co_responsible == ("VPD", "IeVP", "pašvaldības", "NVO", "citas institūcijas")
    assert [i.target for i in ms["4.3.1"].indicators] == [3, 3, 1]
    assert ms["4.3.1"].indicators[2].text == (
        "Viena sociālā kampaņa par taisnīguma atjaunošanu kriminālajā justīcijā"
    )
    events, participants = ms["4.5.1"].indicators  # one cell, two quantified targets (as 1.2.1)
    cell = "3 pasākumi, kuros kopā piedalījušies 90 dalībnieki (dažādu iestāžu pārstāvji)"
    assert f"{events.text}, {participants.text}" == cell
    assert (events.id, events.kind, events.target, events.unit) == (
        "4.5.1.1",
        MetricKind.EVENTS_HELD,
        3,
        "pasākumi",
    )
    assert (participants.id, participants.kind, participants.target, participants.unit) == (
        "4.5.1.2",
        MetricKind.PARTICIPANTS,
        90,
        "dalībnieki",
    )
    assert events.note == participants.note == "Viena plāna tabulas rinda ar diviem mērķiem."
    assert events.deadline == participants.deadline == END_2027
    m452 = ms["4.5.2"]
    assert m452.co_responsible == (
        "VPD",
        "IeVP",
        "LM",
        "pašvaldības",
        "NVO",
        "tiesneši",
        "prokurori",
        "policijas pārstāvji",
    )
    assert (m452.indicators[0].target, m452.indicators[0].kind) == (520, MetricKind.PARTICIPANTS)
    assert m452.indicators[0].deadline == END_2027


# ---------------------------------------------------------------- policy results


def test_policy_results(plan: Plan) -> None:
    assert [pr.id for pr in plan.policy_results] == ["PR1", "PR2", "PR3"]
    assert [len(pr.indicators) for pr in plan.policy_results] == [2, 3, 4]
    assert plan.policy_results[0].title.startswith("Notiesāto un probācijas klientu īpatsvars")
    pis = _policy_indicators(plan)
    assert list(pis) == [
        "PR1.RR1",
        "PR1.RR2",
        "PR2.RR1",
        "PR2.RR2",
        "PR2.RR3",
        "PR3.RR1",
        "PR3.RR2",
        "PR3.RR3",
        "PR3.RR4",
    ]
    for pi in pis.values():
        assert set(pi.targets) == {2025, 2026, 2027}
        assert pi.passport is not None


def test_policy_targets(plan: Plan) -> None:
    pis = _policy_indicators(plan)

    def targets(pid: str) -> list[tuple[str, float | None]]:
        return [(pis[pid].targets[y].text, pis[pid].targets[y].value) for y in (2025, 2026, 2027)]

    assert targets("PR1.RR1") == [("Pieaug", None)] * 3
    assert pis["PR1.RR1"].text == "Nodarbināto bijušo ieslodzīto skaits"
    assert targets("PR1.RR2") == [("15%", 15), ("16 %", 16), ("17 %", 17)]
    assert pis["PR1.RR2"].kind is MetricKind.PERCENT
    assert targets("PR2.RR1") == [("1", 1), ("-", None), ("-", None)]
    assert targets("PR2.RR2") == [("56", 56)] * 3
    assert (pis["PR2.RR2"].kind, pis["PR2.RR2"].unit) == (MetricKind.COUNT, "punkti")
    assert targets("PR2.RR3") == [("1804/37,25 % no ieslodzījuma vietās esošo vietu skaita", 1804)] * 3
    assert [t[1] for t in targets("PR3.RR1")] == [3, 3, 3]
    assert [t[1] for t in targets("PR3.RR2")] == [55, 65, 50]
    assert [t[1] for t in targets("PR3.RR3")] == [29, 30, 31]
    assert [t[1] for t in targets("PR3.RR4")] == [411, 292, 313]
    assert [pis[f"PR3.RR{n}"].kind for n in (1, 2, 3, 4)] == [
        MetricKind.EVENTS_HELD,
        MetricKind.PARTICIPANTS,
        MetricKind.EVENTS_HELD,
        MetricKind.PARTICIPANTS,
    ]


def test_passports(plan: Plan) -> None:
    pis = _policy_indicators(plan)
    p11 = pis["PR1.RR1"].passport
    assert p11 is not None
    assert p11.methodology.startswith("Notiesāto skaits, par kuriem vismaz vienu reizi 12 mēnešu laikā")
    assert "Apraksta, ar kādām metodēm" not in p11.methodology
    assert (p11.data_source, p11.frequency, p11.forecast, p11.other) == (
        "Valsts ieņēmumu dienests",
        "1 x gadā",
        "Palielinās",
        "Nav.",
    )
    assert p11.history == {}
    p12 = pis["PR1.RR2"].passport
    assert p12 is not None
    assert p12.data_source == "VID informācijas sistēma\nprobācijas klientu uzskaites sistēma"
    assert p12.frequency == "1 x kalendārajā gadā"
    assert p12.history == {2022: 12, 2023: 13, 2024: 14}
    assert p12.forecast.startswith("Faktiskā izpilde 2021. gadā ir 10,66 %.")
    p22 = pis["PR2.RR2"].passport
    assert p22 is not None
    assert p22.frequency == "Periodiski, bet ne retāk kā reizi divos gados"
    assert p22.history == {2022: 53, 2023: 54, 2024: 55}
    histories = {pid: pi.passport.history for pid, pi in pis.items() if pi.passport}
    assert histories["PR2.RR1"] == {2022: 1, 2023: 2, 2024: 2}
    assert histories["PR2.RR3"] == {2022: 504, 2023: 504, 2024: 604}
    assert histories["PR3.RR1"] == {2022: 9, 2023: 0, 2024: 3}
    assert histories["PR3.RR2"] == {2022: 162, 2023: 0, 2024: 45}
    assert histories["PR3.RR3"] == {2022: 20, 2023: 27, 2024: 28}
    assert histories["PR3.RR4"] == {2022: 20, 2023: 173, 2024: 173}
    for pi in pis.values():
        assert pi.passport is not None and pi.passport.other == "Nav."
        assert pi.passport.data_source, pi.id
        assert "[bookmark" not in pi.passport.methodology and "footnote" not in pi.passport.methodology


def test_passport_data_sources(plan: Plan) -> None:
    """Every passport names its data source, in the words of its methodology (seed 001)."""
    sources = {pid: pi.passport.data_source for pid, pi in _policy_indicators(plan).items() if pi.passport}
    assert sources == {
        "PR1.RR1": "Valsts ieņēmumu dienests",
        "PR1.RR2": "VID informācijas sistēma\nprobācijas klientu uzskaites sistēma",
        "PR2.RR1": "IeVP",
        "PR2.RR2": "Valsts reģionālās attīstības ministrija",
        "PR2.RR3": "IeVP",
        "PR3.RR1": "IeVP",
        "PR3.RR2": "IeVP",
        "PR3.RR3": "VPD",
        "PR3.RR4": "VPD",
    }


def test_numeric_rows_have_targets(plan: Plan) -> None:
    for ind in _indicators(plan).values():
        if ind.kind.is_numeric:
            assert ind.target is not None and not ind.untargeted, ind.id


# ---------------------------------------------------------------- verbatim


def _plan_texts(plan: Plan) -> Iterator[tuple[str, str]]:
    for pr in plan.policy_results:
        yield pr.id, pr.title
        for pi in pr.indicators:
            yield pi.id, pi.text
            for year, target in pi.targets.items():
                yield f"{pi.id}/{year}", target.text
    for d in plan.directions:
        yield d.id, d.title
        for t in d.tasks:
            yield t.id, t.title
            for m in t.measures:
                yield m.id, m.name
                if m.result:
                    yield m.id + "/result", m.result
                for ind in m.indicators:
                    yield ind.id, ind.text


def test_plan_texts_are_verbatim(plan: Plan) -> None:
    seed, _ = _clean_seed(PLAN_SEED)
    missing = [item_id for item_id, text in _plan_texts(plan) if _norm(text) not in seed]
    assert missing == []


def test_passport_texts_are_verbatim(plan: Plan) -> None:
    seed, footnotes = _clean_seed(PASSPORT_SEED)
    missing = []
    for pi in _policy_indicators(plan).values():
        passport = pi.passport
        assert passport is not None
        fields = [passport.methodology, passport.frequency, passport.forecast, passport.other]
        fields += [f for f in (passport.data_source, passport.influencing_results) if f]
        for field in fields:
            for line in field.split("\n"):
                if _norm(line) not in seed and _norm(line) not in footnotes:
                    missing.append((pi.id, line))
    assert missing == []
