"""Checks of the Bilag 1 matrix (BEK nr 912 af 17/07/2015, "Fravær og fritagelser") and the
code lists it refers to (data/reference/*.csv).

Every spot check cites the Bilag 1 reason (årsag) it was read from.
"""
from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import pytest

REF = Path(__file__).resolve().parents[2] / "data" / "reference"

VG_JOBPARAT, VG_AKTIVITETSPARAT, VG_AABENLYST, VG_UDDANNELSESPARAT = "1", "2", "3", "4"
KG_ALL = [str(k) for k in range(1, 26) if k != 9]


def _read(name: str) -> list[dict[str, str]]:
    with (REF / f"{name}.csv").open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def aarsager() -> list[dict[str, str]]:
    return _read("fravaersaarsager")


@pytest.fixture(scope="module")
def matrix() -> list[dict[str, str]]:
    return _read("bilag1_fravaer")


@pytest.fixture(scope="module")
def code_by_name(aarsager) -> dict[str, str]:
    return {r["navn"]: r["kode"] for r in aarsager}


@pytest.fixture(scope="module")
def cells(matrix, code_by_name):
    """cells(reason name) -> {kontaktgruppe: set of (kvalifikator_type, kvalifikator_vaerdi)}."""
    index: dict[str, dict[str, set[tuple[str, str]]]] = defaultdict(lambda: defaultdict(set))
    for r in matrix:
        index[r["aarsag_kode"]][r["kontaktgruppe"]].add((r["kvalifikator_type"], r["kvalifikator_vaerdi"]))

    def get(name: str) -> dict[str, set[tuple[str, str]]]:
        assert name in code_by_name, f"reason {name!r} missing from fravaersaarsager"
        return {kg: set(v) for kg, v in index[code_by_name[name]].items()}

    return get


def _vg(*codes: str) -> set[tuple[str, str]]:
    return {("visitationsgruppe", c) for c in codes}


def _mg(*codes: str) -> set[tuple[str, str]]:
    return {("matchgruppe", c) for c in codes}


NONE = {("none", "")}


# --------------------------------------------------------------------------- code lists

def test_35_reasons_in_bilag_order(aarsager):
    assert len(aarsager) == 35, "Bilag 1 lists 35 årsager"
    assert [r["kode"] for r in aarsager] == [str(i) for i in range(1, 36)]
    assert aarsager[0]["navn"] == "Midlertidigt arbejde", "Bilag 1 starts with Midlertidigt arbejde"
    assert aarsager[-1]["navn"] == "Fritaget for joblog", "Bilag 1 ends with Fritaget for joblog"
    assert len({r["navn"] for r in aarsager}) == 35, "reason names must be unique"


def test_akasse_reasons_are_the_four_of_par_64(aarsager):
    allowed = {r["navn"] for r in aarsager if r["akasse_tilladt"] == "true"}
    assert allowed == {"Sygdom - sygemelding", "Barsel (max 14 dage)", "Midlertidigt arbejde", "Borgerligt ombud"}, \
        "§ 64, stk. 2 allows a-kasser exactly four reasons"
    assert {r["akasse_tilladt"] for r in aarsager} <= {"true", "false"}


def test_kontaktgrupper_have_no_9_and_par_15_numbering():
    kg = _read("kontaktgrupper")
    assert [r["kode"] for r in kg] == KG_ALL, "kontaktgrupper 1-8, 10-25 (no 9)"
    para = {r["kode"]: r["paragraf"] for r in kg}
    assert para["8"] == "§ 15, nr. 8"
    assert para["12"] == "§ 15, nr. 13", "§ 15 nr. 12 is UO, so KG12 is nr. 13"
    assert para["25"] == "§ 15, nr. 26", "KG25 is § 15, nr. 26 (nr. 27 is KY)"


# --------------------------------------------------------------------------- structural checks

def test_matrix_reason_codes_exist(matrix, aarsager):
    names = {r["kode"]: r["navn"] for r in aarsager}
    for r in matrix:
        assert r["aarsag_kode"] in names, f"unknown aarsag_kode {r['aarsag_kode']}"
        assert r["aarsag_navn"] == names[r["aarsag_kode"]], f"aarsag_navn mismatch in {r}"


def test_every_reason_has_cells(matrix, aarsager):
    used = {r["aarsag_kode"] for r in matrix}
    missing = [r["navn"] for r in aarsager if r["kode"] not in used]
    assert not missing, f"reasons without any allowed kontaktgruppe: {missing}"


def test_matrix_kontaktgrupper_exist(matrix):
    known = {r["kode"] for r in _read("kontaktgrupper")}
    bad = {r["kontaktgruppe"] for r in matrix} - known
    assert not bad, f"unknown kontaktgrupper in matrix: {bad}"
    assert "9" not in {r["kontaktgruppe"] for r in matrix}


def test_qualifier_values_exist_and_match_type(matrix):
    vg = {r["kode"] for r in _read("visitationsgrupper")}
    mg = {r["kode"] for r in _read("matchgrupper")}
    for r in matrix:
        t, v = r["kvalifikator_type"], r["kvalifikator_vaerdi"]
        assert t in {"none", "visitationsgruppe", "matchgruppe"}, r
        if t == "none":
            assert v == "", f"qualifier value without type: {r}"
        elif t == "visitationsgruppe":
            assert v in vg, f"unknown visitationsgruppe {v}: {r}"
        else:
            assert v in mg, f"unknown matchgruppe {v}: {r}"


def test_qualifiers_only_on_their_kontaktgrupper(matrix):
    for r in matrix:
        if r["kvalifikator_type"] == "visitationsgruppe":
            assert r["kontaktgruppe"] in {"2", "3", "12"}, f"visitationsgruppe only on KG 2/3/12: {r}"
        if r["kvalifikator_type"] == "matchgruppe":
            assert r["kontaktgruppe"] in {"4", "5", "7"}, f"matchgruppe only on KG 4/5/7: {r}"


def test_visitationsgruppe_fits_kontaktgruppe(matrix):
    applies = {r["kode"]: set(r["kontaktgrupper"].split(";")) for r in _read("visitationsgrupper")}
    for r in matrix:
        if r["kvalifikator_type"] == "visitationsgruppe":
            assert r["kontaktgruppe"] in applies[r["kvalifikator_vaerdi"]], \
                f"visitationsgruppe {r['kvalifikator_vaerdi']} does not apply to KG{r['kontaktgruppe']}: {r}"


def test_kg_2_3_12_always_qualified(matrix):
    for r in matrix:
        if r["kontaktgruppe"] in {"2", "3", "12"}:
            assert r["kvalifikator_type"] == "visitationsgruppe", \
                f"Bilag 1 always narrows KG2/3/12 by visitationsgruppe: {r}"


def test_no_duplicate_rows(matrix):
    keys = [(r["aarsag_kode"], r["kontaktgruppe"], r["kvalifikator_type"], r["kvalifikator_vaerdi"]) for r in matrix]
    dups = {k for k in keys if keys.count(k) > 1}
    assert not dups, f"duplicate matrix cells: {dups}"


def test_a_cell_is_either_unqualified_or_qualified(cells, aarsager):
    for a in aarsager:
        for kg, quals in cells(a["navn"]).items():
            assert not (("none", "") in quals and len(quals) > 1), \
                f"{a['navn']} KG{kg} mixes 'none' with qualifiers: {quals}"


# --------------------------------------------------------------------------- spot checks (Bilag 1 text)

def test_midlertidigt_arbejde(cells):
    c = cells("Midlertidigt arbejde")
    assert c["1"] == NONE, "Midlertidigt arbejde: KG1 (dagpenge + MAY) with no qualifier"
    assert c["2"] == _vg(VG_JOBPARAT), "Midlertidigt arbejde: KG2 only 'I visitationsgruppen jobparat'"
    assert c["12"] == _vg(VG_AABENLYST), "Midlertidigt arbejde: 'Dele af kontaktgruppe 12' = åbenlyst uddannelsesparat"
    assert c["8"] == NONE, "Midlertidigt arbejde: KG8 Tilmeldt uden ydelse"
    assert set(c) == {"1", "2", "8", "12", *[str(k) for k in range(14, 24)]}, \
        "Midlertidigt arbejde: KG1, 2, 8, 12, 14-23 (not 3, 4-7, 10, 11, 13, 24, 25)"


def test_borgerligt_ombud(cells):
    c = cells("Borgerligt ombud")
    assert c["4"] == _mg("1", "2") and c["5"] == _mg("1", "2"), \
        "Borgerligt ombud: 'Kontaktgruppe 4 og 5 ... (I Matchgruppe 1/2)'"
    assert c["7"] == _mg("1", "2", "3"), "Borgerligt ombud: KG7 Fleksvisiterede (I Matchgruppe 1/2/3)"
    assert c["12"] == _vg(VG_AABENLYST, VG_UDDANNELSESPARAT, VG_AKTIVITETSPARAT), \
        "Borgerligt ombud: KG12 åbenlyst uddannelsesparat, uddannelsesparat og aktivitetsparat"
    assert set(c) == set(KG_ALL), "Borgerligt ombud is listed for every kontaktgruppe 1-8, 10-25"


def test_barsel_max_14_dage_excludes_sygedagpenge(cells):
    c = cells("Barsel (max 14 dage)")
    assert "1" in c and "8" in c, "Barsel (max 14 dage): KG1 and KG8 (a-kasse members / dimittender)"
    assert not {"6", "24", "25"} & set(c), "Barsel (max 14 dage): not listed for sygedagpenge KG6/24/25"


def test_barsel_not_for_kg1(cells):
    c = cells("Barsel")
    assert "1" not in c and "8" not in c, "Barsel (unlimited): starts at KG2, no KG1/KG8"
    assert c["3"] == _vg(VG_JOBPARAT, VG_AKTIVITETSPARAT), "Barsel: KG3 jobparat og aktivitetsparat"


def test_ferie_med_ydelse(cells):
    c = cells("Ferie med ydelse")
    assert set(c) == {"2", "3", "4", "5", "7", "11", "12", "13"}, \
        "Ferie med ydelse: KG2, 3, 4 og 5, 7, 11, 12, 13 only"
    assert c["4"] == _mg("1", "2"), "Ferie med ydelse: KG4 og 5 'I Matchgruppe 1 og 2'"


def test_helbred_forvaerres_ved_arbejde(cells):
    c = cells("Sygdom – helbred forværres ved arbejde")
    assert set(c) == {"2", "3", "7", "12"}, "Helbred forværres ved arbejde: KG2, 3, 7, 12"
    assert c["7"] == _mg("1"), "Helbred forværres ved arbejde: KG7 only Matchgruppe 1"
    assert c["2"] == _vg(VG_JOBPARAT), "Helbred forværres ved arbejde: KG2 only jobparat"
    assert c["12"] == _vg(VG_AABENLYST), "Helbred forværres ved arbejde: KG12 only åbenlyst uddannelsesparat"


def test_helbred_forvaerres_ved_aktivering(cells):
    c = cells("Sygdom – Helbred forværres ved aktivering")
    assert c["7"] == _mg("1", "2"), "Helbred forværres ved aktivering: KG7 Matchgruppe 1/2 (not 3)"


def test_standby(cells):
    c = cells("Opfølgning uden kontakt (Standby)")
    assert c["2"] == _vg(VG_AKTIVITETSPARAT), "Standby: KG2 only aktivitetsparat"
    assert c["4"] == _mg("2") and c["5"] == _mg("2"), "Standby: KG4 og 5 only Matchgruppe 2"
    assert c["7"] == _mg("2", "3"), "Standby: KG7 Matchgruppe 2/3"
    assert c["12"] == _vg(VG_UDDANNELSESPARAT, VG_AKTIVITETSPARAT), \
        "Standby: KG12 uddannelsesparat, aktivitetsparat (not åbenlyst)"
    assert {"6", "13", "24", "25"} <= set(c), "Standby: KG6, 13, 24, 25 listed"
    assert "1" not in c, "Standby: not for KG1"


def test_sygedagpenge_only_reasons(cells):
    for name in ("Arbejdet delvist genoptaget",
                 "Sygdommen forhindrer individuel samtale (Personligt fremmøde)",
                 "Ophold i udlandet uden ydelse (sygedagpengemodtagere)"):
        c = cells(name)
        assert set(c) == {"6", "24", "25"}, f"{name}: only sygedagpenge KG6, 24, 25"
        assert all(q == NONE for q in c.values()), f"{name}: no qualifier"


def test_single_kg_reasons(cells):
    assert set(cells("Deltidsbeskæftigelse (over 20 timer/uge)")) == {"1"}, "Deltidsbeskæftigelse: only KG1"
    assert set(cells("Seniorjob")) == {"8"}, "Seniorjob: only KG8 Tilmeldt uden ydelse"
    assert cells("Fritaget for joblog") == {"7": _mg("1", "2", "3")}, "Fritaget for joblog: KG7 Matchgruppe 1/2/3"
    for name in ("Ansættelse inden for 4 uger", "Barsel inden for 4 uger"):
        assert cells(name) == {"4": _mg("1", "2"), "5": _mg("1", "2")}, f"{name}: only KG4 og 5, Matchgruppe 1/2"


def test_vaernepligt_has_no_kg3(cells):
    c = cells("Værnepligt")
    assert "3" not in c, "Værnepligt: KG3 is not listed"
    assert c["7"] == _mg("1", "2"), "Værnepligt: KG7 Matchgruppe 1/2"


def test_saerlig_oevrige(cells):
    c = cells("Særlig øvrige")
    assert c["2"] == _vg(VG_AKTIVITETSPARAT) and c["3"] == _vg(VG_AKTIVITETSPARAT), \
        "Særlig øvrige: KG2 and KG3 only aktivitetsparat"
    assert c["7"] == _mg("2"), "Særlig øvrige: KG7 only Matchgruppe 2"
    assert c["12"] == _vg(VG_UDDANNELSESPARAT, VG_AKTIVITETSPARAT), "Særlig øvrige: KG12 uddannelsesparat, aktivitetsparat"


def test_selvvalgt_uddannelse_dagpenge_only(matrix, cells):
    for name in ("Selvvalgt uddannelse (deltid)", "Selvvalgt uddannelse (fuldtid)"):
        assert cells(name) == {"1": NONE, "7": _mg("1", "2", "3")}, f"{name}: KG1 and KG7 Matchgruppe 1/2/3"
        notes = {r["note"] for r in matrix if r["aarsag_navn"] == name and r["kontaktgruppe"] == "1"}
        assert len(notes) == 1 and "ikke MAY" in notes.pop(), f"{name}: KG1 cell reads 'Dagpengemodtagere' (not MAY)"


def test_uddannelse_exempts_nothing_for_kg1_to_3(matrix, cells):
    c = cells("Uddannelse")
    assert set(c) == {"1", "2", "3", "12"}, "Uddannelse: KG1, 2, 3, 12"
    for kg in ("1", "2", "3"):
        notes = {r["note"] for r in matrix if r["aarsag_navn"] == "Uddannelse" and r["kontaktgruppe"] == kg}
        assert notes and all("fritager ikke for noget" in n for n in notes), \
            f"Uddannelse: KG{kg} cell says 'fritager ikke for noget'"


def test_omfattet_af_kontantydelse(matrix, cells):
    c = cells("Omfattet af kontantydelse")
    assert c == {"2": _vg(VG_JOBPARAT), "1": NONE}, \
        "Omfattet af kontantydelse: KG2 visitationsgruppe jobparat; also KG1 from the day after expiry"
    kg1_note = [r["note"] for r in matrix if r["aarsag_navn"] == "Omfattet af kontantydelse" and r["kontaktgruppe"] == "1"]
    assert kg1_note and "dagen efter" in kg1_note[0], "Omfattet af kontantydelse: KG1 only from the day after expiry"


def test_fritagelse_for_raadighed(cells):
    c = cells("Fritagelse for rådighed under deltagelse i tilbud")
    assert c == {"1": NONE, "2": _vg(VG_JOBPARAT), "3": _vg(VG_JOBPARAT), "12": _vg(VG_AABENLYST)}, \
        "Fritagelse for rådighed: KG1, KG2/3 jobparat, KG12 åbenlyst uddannelsesparat"


def test_sygemelding_not_for_sygedagpenge_groups(cells):
    c = cells("Sygdom - sygemelding")
    assert not {"6", "24", "25"} & set(c), "Sygdom - sygemelding: not for sygedagpenge KG6/24/25"
    assert {"1", "8", "10", "23"} <= set(c), "Sygdom - sygemelding: KG1, 8, 10, ... 23"
