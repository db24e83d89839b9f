"""The informal-hierarchy action plan (seed 004, Annex 3) as transcribed in plans/informal_hierarchy.yaml."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from reporting_forms.catalog import MetricKind, Plan, load_catalog

SEED = Path(__file__).resolve().parent / "seeds" / "004_8175189d886d75ae.txt"


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@pytest.fixture(scope="module")
def plan() -> Plan:
    catalog = load_catalog()
    (found,) = [p for p in catalog.plans if p.id == "NH-2024"]
    return found


@pytest.fixture(scope="module")
def seed_text() -> str:
    assert SEED.exists(), f"seed file missing: {SEED} (tests/seeds/ holds the source documents)"
    return _norm(SEED.read_text(encoding="utf-8"))


def test_plan_header(plan: Plan) -> None:
    assert plan.title == "Rīcības plāns ieslodzīto neformālās hierarhijas mazināšanai"
    assert plan.short_title == "Neformālās hierarhijas mazināšanas plāns"
    assert plan.source == "004_8175189d886d75ae.txt"
    assert plan.policy_results == ()


def test_sections_and_counts(plan: Plan) -> None:
    assert [(d.id, d.title) for d in plan.directions] == [
        ("NH.1", "Pārvaldes personāla kapacitātes pilnveidošanas pasākumi"),
        ("NH.2", "Notiesāto resocializācijas sistēmas turpmāka attīstība"),
        ("NH.3", "Ieslodzījuma vietu infrastruktūras pilnveidošanas pasākumi"),
        ("NH.4", "Citi pasākumi"),
    ]
    # the loader turns each section into one task with the same id and title
    for direction in plan.directions:
        assert [(t.id, t.title) for t in direction.tasks] == [(direction.id, direction.title)]
    counts = {d.id: sum(len(t.measures) for t in d.tasks) for d in plan.directions}
    assert counts == {"NH.1": 6, "NH.2": 3, "NH.3": 3, "NH.4": 3}
    measures = list(plan.measures())
    assert len(measures) == 15
    assert [m.id for m in measures] == [
        f"NH.{s}.{n}" for s, count in ((1, 6), (2, 3), (3, 3), (4, 3)) for n in range(1, count + 1)
    ]
    for m in measures:
        assert [i.id for i in m.indicators] == [f"{m.id}.1"]


DEADLINES = {
    "NH.1.1": ("2025. gada jūlijs", dt.date(2025, 7, 31)),  # a month: its last day (judgement call)
    "NH.1.2": ("No 2025. gada jūlija – patstāvīgi", None),
    "NH.1.3": ("2025. gada 1. jūlijs", dt.date(2025, 7, 1)),
    "NH.1.4": ("2025. gada 1. jūlijs", dt.date(2025, 7, 1)),
    "NH.1.5": ("2024. gada 1. septembris", dt.date(2024, 9, 1)),
    "NH.1.6": ("2025. gada 1. jūlijs", dt.date(2025, 7, 1)),
    "NH.2.1": ("Pastāvīgi", None),
    "NH.2.2": ("2025. gada 15. janvāris", dt.date(2025, 1, 15)),
    "NH.2.3": ("2027. gada 31. decembris", dt.date(2027, 12, 31)),
    "NH.3.1": ("2026. gada 30. aprīlis", dt.date(2026, 4, 30)),
    "NH.3.2": ("2025. gada 1. aprīlis", dt.date(2025, 4, 1)),
    "NH.3.3": ("2027. gada 31. decembris", dt.date(2027, 12, 31)),
    "NH.4.1": ("2026. gada 30. aprīlis", dt.date(2026, 4, 30)),
    "NH.4.2": ("2027. gada 31. decembris", dt.date(2027, 12, 31)),
    "NH.4.3": ("Pastāvīgi", None),
}

RESPONSIBLE = {
    "NH.1.1": ("IeVP",),
    "NH.1.2": ("IeVP",),
    "NH.1.3": ("IeVP",),
    "NH.1.4": ("IeVP",),
    "NH.1.5": ("TM",),
    "NH.1.6": ("TM",),
    "NH.2.1": ("TM",),
    "NH.2.2": ("IeVP",),
    "NH.2.3": ("IeVP",),
    "NH.3.1": ("TM", "IeVP"),
    "NH.3.2": ("TM", "IeVP"),
    "NH.3.3": ("IeVP",),
    "NH.4.1": ("TM",),
    "NH.4.2": ("IeVP",),
    "NH.4.3": ("TM",),
}

FUNDING = {
    "NH.1.6": "Nav nepieciešami valsts budžeta līdzekļi",
    "NH.3.1": "TM piešķirtā budžeta ietvaros",
    "NH.3.2": "Ziņojuma izstrādei nav nepieciešami valsts budžeta līdzekļi",
    "NH.4.1": "Likumprojekta izstrādei nav nepieciešami valsts budžeta līdzekļi",
    "NH.4.3": "TM piešķirto līdzekļu ietvaros",
}


def test_deadlines(plan: Plan) -> None:
    got = {m.id: (m.deadline_text, m.deadline) for m in plan.measures()}
    assert got == DEADLINES
    for m in plan.measures():
        (ind,) = m.indicators
        assert (ind.deadline_text, ind.deadline) == (m.deadline_text, m.deadline)


def test_responsible(plan: Plan) -> None:
    assert {m.id: m.responsible for m in plan.measures()} == RESPONSIBLE
    assert all(m.co_responsible == () for m in plan.measures())


def test_funding(plan: Plan) -> None:
    for m in plan.measures():
        assert m.funding == FUNDING.get(m.id, "Pārvaldei piešķirtā budžeta ietvaros"), m.id


def test_indicators(plan: Plan) -> None:
    ind = {m.id: m.indicators[0] for m in plan.measures()}
    expected = {
        "NH.1.1": ("papildinātas 4 jaunās mācību programmas", MetricKind.COUNT, 4),
        "NH.1.2": (
            "Pārvaldes četrās jaunajās mācību programmās (tostarp par Spriedumu) "
            "apmācīto amatpersonu skaits gadā",
            MetricKind.PEOPLE_TRAINED,
            None,
        ),
        "NH.1.5": (
            "2024. gada 20. jūnija likuma “Grozījumi Latvijas Sodu izpildes kodeksā” spēkā stāšanās",
            MetricKind.MILESTONE,
            None,
        ),
        "NH.1.6": (
            "likumprojekta “Grozījums Iekšlietu ministrijas sistēmas iestāžu un Ieslodzījuma vietu "
            'pārvaldes amatpersonu ar speciālajām dienesta pakāpēm dienesta gaitas likumā" '
            "(24-TA-1472) spēkā stāšanās",
            MetricKind.MILESTONE,
            None,
        ),
        "NH.2.1": (
            "Resocializācijas politikas pamatnostādņu 2022.–2027.gadam īstenošanas plāns "
            "2025.–2027. gadam iesniegts izskatīšanai valdībā",
            MetricKind.MILESTONE,
            None,
        ),
        "NH.2.3": ("kontaktpersonu modeļa ieviešana 2 ieslodzījuma vietās", MetricKind.COUNT, 2),
        "NH.3.2": ("informatīvais ziņojums iesniegts izskatīšanai valdībā", MetricKind.MILESTONE, None),
        "NH.4.1": ("Kriminālsodu izpildes likuma spēkā stāšanās", MetricKind.MILESTONE, None),
        "NH.4.2": ("ieviesti trīs izvērtējuma rīki", MetricKind.COUNT, 3),
        "NH.4.3": (
            "apmācīto tiesnešu skaits atbilstoši katra gada mācību plānam",
            MetricKind.PEOPLE_TRAINED,
            None,
        ),
    }
    for measure_id, (text, kind, target) in expected.items():
        assert (ind[measure_id].text, ind[measure_id].kind, ind[measure_id].target) == (
            text,
            kind,
            target,
        ), measure_id
    assert ind["NH.1.1"].unit == "programmas"
    untargeted = {i.id for i in ind.values() if i.untargeted}
    assert untargeted == {"NH.1.2.1", "NH.4.3.1"}  # yearly counts the plan gives no number for
    for row in ind.values():
        assert row.target is not None or not row.kind.is_numeric or row.untargeted, row.id
    assert ind["NH.4.2"].unit == "rīki"


def test_measure_names(plan: Plan) -> None:
    names = {m.id: m.name for m in plan.measures()}
    assert names["NH.1.1"] == (
        "Pārvaldes personāla mācību programmu papildināšana ar mācību saturu par Spriedumā paustajām atziņām"
    )
    assert names["NH.1.5"] == (
        "Pāreja uz divu veidu cietumu sistēmu, nodrošinot lielāku notiesāto individualizācijas "
        "iespēju, raitāku soda izpildi un plašāku nosacītas pirmstermiņa atbrīvošanas izmantošanu"
    )
    assert names["NH.3.2"] == (
        "Informatīvais ziņojums valdībai par ieslodzījuma vietu attīstību pēc jaunā "
        "Liepājas cietuma darbības uzsākšanas"
    )
    assert names["NH.3.3"] == (
        "Trīs cietumu vai cietumu daļu slēgšana pēc jaunā Liepājas cietuma darbības uzsākšanas"
    )


def test_achieved_notes(plan: Plan) -> None:
    notes = {m.id: m.achieved_note for m in plan.measures() if m.achieved_note}
    assert notes == {
        "NH.1.5": "2024.gada 1.septembrī spēkā stājās likums “Grozījumi Latvijas Sodu izpildes kodekss” "
        "un kopš šī brīža brīvības atņemšanas soda izpilde tiek nodrošināta slēgtajā un atklātajā cietumā.",
        "NH.2.1": "2024.gada 28.augustā plāna projekts “Resocializācijas politikas pamatnostādņu "
        "2022.–2027.gadam īstenošanas plāns 2025.–2027.gadam” (24-TA-1075) tika iesniegts izskatīšanai "
        "Ministru kabineta sēdē",
    }


def test_footnote_notes(plan: Plan) -> None:
    notes = {m.id: m.indicators[0].note for m in plan.measures() if m.indicators[0].note}
    assert sorted(notes) == ["NH.1.3", "NH.2.1", "NH.2.2", "NH.2.3", "NH.3.1", "NH.4.2", "NH.4.3"]
    # footnotes 4 and 5 read "tas pats" (= footnote 3)
    assert notes["NH.2.1"] == notes["NH.2.2"] == notes["NH.2.3"]
    assert "rīkojumu Nr. 344" in notes["NH.2.1"]
    assert notes["NH.4.2"].endswith("paredzētajā Pārvaldes projektā “DARI”.")
    assert "Nr. 140" in notes["NH.1.3"]
    assert "rīkojumu Nr. 50" in notes["NH.3.1"]
    assert notes["NH.4.3"].startswith("Atveseļošanas fonda 6.2.1.3.i. investīcijas")


def test_no_footnote_markers_left(plan: Plan) -> None:
    for m in plan.measures():
        for text in (m.name, m.funding or "", m.indicators[0].text):
            assert not re.search(r"[^\W\d]\d+$", text), (m.id, text)
            assert "  " not in text and text == text.strip(), (m.id, text)


# Cells the PDF export splits with the page footnotes: text -> the word after which it is cut.
SPLIT_BY_FOOTNOTES = {
    "NH.1.5": "individualizācijas",
    "NH.3.2": "pēc jaunā",
}


def _assert_in_seed(text: str, seed: str, cut_after: str | None = None) -> None:
    text = _norm(text)
    if cut_after is None:
        assert text in seed, text
        return
    head, tail = text.split(cut_after, 1)
    head, tail = _norm(head + cut_after), _norm(tail)
    start = seed.find(head)
    assert start >= 0, head
    assert seed.find(tail, start + len(head)) >= 0, tail


def test_texts_appear_in_seed(plan: Plan, seed_text: str) -> None:
    for direction in plan.directions:
        assert f"{direction.id.removeprefix('NH.')}. {direction.title}" in seed_text
    for m in plan.measures():
        _assert_in_seed(m.name, seed_text, SPLIT_BY_FOOTNOTES.get(m.id))
        _assert_in_seed(m.deadline_text or "", seed_text)
        if m.id == "NH.3.2":
            _assert_in_seed(m.funding or "", seed_text, "nepieciešami")
        else:
            _assert_in_seed(m.funding or "", seed_text)
        if m.achieved_note:
            assert f"Rezultatīvais rādītājs sasniegts: {_norm(m.achieved_note)}" in seed_text
        (ind,) = m.indicators
        assert f"Rezultatīvais rādītājs: {_norm(ind.text)}" in seed_text, ind.id
        if ind.note:
            _assert_in_seed(ind.note, seed_text)
