"""Checks of the reference code lists in data/reference (format, geography, a-kasser, ICD-10, registry)."""

from __future__ import annotations

import csv
import re
from functools import cache
from pathlib import Path

import pytest

REF = Path(__file__).resolve().parents[2] / "data" / "reference"
README = REF / "README.md"
# DST's classification (level 1 regions, 2 landsdele, 3 kommuner); lives outside the repo.
DST_FILE = Path("/work/shared/reference/dst_kommuner_regioner.csv")

# Tables in data/reference that are not code lists (no kode/navn): matrices keyed on other columns.
MATRIX_TABLES = {"bilag1_fravaer"}

CSV_FILES = sorted(REF.glob("*.csv"))


@cache
def read(name: str) -> tuple[list[str], list[dict[str, str]]]:
    path = REF / f"{name}.csv"
    with path.open(encoding="utf-8", newline="") as f:  # strict UTF-8: a bad byte raises
        reader = csv.DictReader(f)
        rows = list(reader)
        return list(reader.fieldnames or []), rows


def by_code(name: str) -> dict[str, dict[str, str]]:
    return {r["kode"]: r for r in read(name)[1]}


def registry() -> list[str]:
    names = []
    for line in README.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\|\s*([a-z0-9_]+)\s*\|", line)
        if m:
            names.append(m.group(1))
    return names


# --------------------------------------------------------------------------- format of every file


def test_reference_dir_has_csvs():
    assert len(CSV_FILES) >= 60, f"only {len(CSV_FILES)} CSV files in {REF}"


@pytest.mark.parametrize("path", CSV_FILES, ids=lambda p: p.stem)
def test_csv_format(path: Path):
    header, rows = read(path.stem)
    assert rows, f"{path.name} has no rows"
    assert len(header) == len(set(header)), f"{path.name}: duplicate column names {header}"
    required = ["kilde"] if path.stem in MATRIX_TABLES else ["kode", "navn", "kilde"]
    missing = [c for c in required if c not in header]
    assert not missing, f"{path.name}: missing columns {missing} (header {header})"
    for i, row in enumerate(rows, start=2):
        assert None not in row, f"{path.name} line {i}: more fields than header"
        assert None not in row.values(), f"{path.name} line {i}: fewer fields than header"
        for col in required:
            assert row[col].strip(), f"{path.name} line {i}: empty {col}"
    if path.stem not in MATRIX_TABLES:
        codes = [r["kode"] for r in rows]
        dupes = sorted({c for c in codes if codes.count(c) > 1})
        assert not dupes, f"{path.name}: duplicate kode {dupes}"
        assert all(c == c.strip() for c in codes), f"{path.name}: kode with surrounding whitespace"


def test_every_registry_list_exists():
    names = registry()
    assert len(names) >= 60, "README registry table not found or too short"
    missing = [n for n in names if not (REF / f"{n}.csv").exists()]
    assert not missing, f"code lists named in README registry but missing as CSV: {missing}"


# --------------------------------------------------------------------------- geography


def test_regioner():
    assert set(by_code("regioner")) == {"081", "082", "083", "084", "085"}


def test_landsdele():
    landsdele = by_code("landsdele")
    assert set(landsdele) == {f"{i:02d}" for i in range(1, 12)}
    regioner = by_code("regioner")
    for kode, r in landsdele.items():
        assert r["region_kode"] in regioner, f"landsdel {kode}: unknown region {r['region_kode']}"


def test_kommuner_count_and_codes():
    rows = read("kommuner")[1]
    assert len(rows) == 98
    codes = [r["kode"] for r in rows]
    assert "411" not in codes, "Christiansø (411) is not a kommune"
    assert all(re.fullmatch(r"\d{3}", c) for c in codes), "kommunekode must be 3 digits"


def test_kommuner_hierarchy_references():
    regioner, landsdele = by_code("regioner"), by_code("landsdele")
    for r in read("kommuner")[1]:
        assert r["region_kode"] in regioner, f"{r['kode']}: unknown region {r['region_kode']}"
        assert r["landsdel_kode"] in landsdele, f"{r['kode']}: unknown landsdel {r['landsdel_kode']}"
        assert r["region_navn"] == regioner[r["region_kode"]]["navn"], r["kode"]
        assert r["landsdel_navn"] == landsdele[r["landsdel_kode"]]["navn"], r["kode"]
        assert landsdele[r["landsdel_kode"]]["region_kode"] == r["region_kode"], (
            f"{r['kode']}: landsdel {r['landsdel_kode']} is not in region {r['region_kode']}"
        )


@pytest.mark.parametrize(
    "kode,navn,region_kode,region_navn,landsdel_kode",
    [
        ("101", "København", "084", "Region Hovedstaden", "01"),
        ("147", "Frederiksberg", "084", "Region Hovedstaden", "01"),
        ("400", "Bornholm", "084", "Region Hovedstaden", "04"),
        ("265", "Roskilde", "085", "Region Sjælland", "05"),
        ("461", "Odense", "083", "Region Syddanmark", "07"),
        ("563", "Fanø", "083", "Region Syddanmark", "08"),
        ("751", "Aarhus", "082", "Region Midtjylland", "09"),
        ("615", "Horsens", "082", "Region Midtjylland", "09"),
        ("657", "Herning", "082", "Region Midtjylland", "10"),
        ("773", "Morsø", "081", "Region Nordjylland", "11"),
        ("825", "Læsø", "081", "Region Nordjylland", "11"),
        ("851", "Aalborg", "081", "Region Nordjylland", "11"),
    ],
)
def test_named_kommuner(kode, navn, region_kode, region_navn, landsdel_kode):
    r = by_code("kommuner")[kode]
    assert r["navn"] == navn
    assert (r["region_kode"], r["region_navn"], r["landsdel_kode"]) == (
        region_kode,
        region_navn,
        landsdel_kode,
    )


@pytest.mark.skipif(not DST_FILE.exists(), reason="DST classification file not available")
def test_kommuner_match_dst_hierarchy():
    expected = {}
    region = landsdel = None
    with DST_FILE.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            if row["NIVEAU"] == "1":
                region = row["KODE"]
            elif row["NIVEAU"] == "2":
                landsdel = row["KODE"]
            elif row["NIVEAU"] == "3" and row["KODE"] != "411":
                expected[row["KODE"]] = (row["TITEL"], region, landsdel)
    actual = {k: (r["navn"], r["region_kode"], r["landsdel_kode"]) for k, r in by_code("kommuner").items()}
    assert actual == expected


def test_kommuner_indbyggere_plausible():
    pop = {k: int(r["indbyggere"]) for k, r in by_code("kommuner").items()}
    assert all(v > 0 for v in pop.values())
    assert 5_500_000 <= sum(pop.values()) <= 6_300_000
    assert max(pop, key=pop.get) == "101", "København should be the largest kommune"
    assert min(pop, key=pop.get) == "825", "Læsø should be the smallest kommune"


# --------------------------------------------------------------------------- a-kasser


def test_akasser():
    akasser = by_code("akasser")
    assert 18 <= len(akasser) <= 30
    bad = [k for k in akasser if not re.fullmatch(r"\d{3}", k)]
    assert not bad, f"a-kassekode must be 3 digits: {bad}"
    assert "067" in akasser and "Ledernes" in akasser["067"]["navn"]
    assert akasser["067"]["kode_syntetisk"] == "false"
    assert all(r["kode_syntetisk"] in {"true", "false"} for r in akasser.values())
    assert all(int(r["medlemmer"]) > 0 for r in akasser.values())


# --------------------------------------------------------------------------- ICD-10


def test_icd10_kapitler():
    kap = by_code("icd10_kapitler")
    assert len(kap) == 22
    for k, r in kap.items():
        assert re.fullmatch(r"[IVX]+", k), k
        assert re.fullmatch(r"[A-Z]\d{2}", r["fra"]) and re.fullmatch(r"[A-Z]\d{2}", r["til"]), k
        assert r["fra"] <= r["til"], k


def test_icd10_diagnoser_in_chapter_range():
    kap = by_code("icd10_kapitler")
    rows = read("icd10_diagnoser")[1]
    assert len(rows) >= 100
    for r in rows:
        assert re.fullmatch(r"D[A-Z]\d{2}", r["kode"]), f"not an SKS-style 3-character code: {r['kode']}"
        assert r["kapitel"] in kap, f"{r['kode']}: unknown chapter {r['kapitel']}"
        icd = r["kode"][1:]  # strip the SKS 'D' prefix
        k = kap[r["kapitel"]]
        assert k["fra"] <= icd <= k["til"], (
            f"{r['kode']} not in chapter {r['kapitel']} ({k['fra']}-{k['til']})"
        )


# --------------------------------------------------------------------------- list-specific rules from the order


def test_deltagerroller_akassekonsulent_not_for_akasse():
    roller = read("deltagerroller")[1]
    forbidden = [r["navn"] for r in roller if r["akasse_tilladt"] == "false"]
    assert forbidden == ["A-kassekonsulent"]  # § 63, stk. 1, nr. 9 omits only this role


def test_uddannelsespaalaeg_trin():
    trin = by_code("uddannelsespaalaeg_trin")
    assert set(trin) == {"1", "2", "3", "4"}
    assert {k for k, r in trin.items() if r["uddannelsesmaal_kraevet"] == "true"} == {"2", "3"}


def test_haendelsestyper_flag_74():
    rows = read("haendelsestyper")[1]
    flagged = {r["navn"] for r in rows if r["flag_74"] == "true"}
    assert flagged == {"Udeblivelse fra tilbud", "Afslag på tilbud", "Ophør i tilbud"}
    assert any(r["bek_abi_paragraf"] == "126" for r in rows), "§ 126 Min Plan event missing"


def test_joblog_andet_requires_text():
    rows = read("joblog_hvordan_soegt")[1]
    assert {r["navn"] for r in rows if r["kraever_tekst"] == "true"} == {"Andet"}


def test_samtaletyper():
    rows = read("samtaletyper")[1]
    assert all(r["udbyder"] in {"jobcenter", "akasse", "begge"} for r in rows)
    for r in rows:
        if r["kilde"].startswith("DFDG (interface facts §1.1)") and "tildelt" not in r["kilde"]:
            assert int(r["kode"]) < 100, r["kode"]
        else:
            assert int(r["kode"]) >= 100, f"assigned samtaletype {r['kode']} must be >= 100"


def test_aktiveringstyper_reference_foranstaltningsart():
    arter = by_code("foranstaltningsarter")
    for r in read("aktiveringstyper")[1]:
        assert r["foranstaltningsart"] in arter, (
            f"{r['kode']}: unknown foranstaltningsart {r['foranstaltningsart']}"
        )
