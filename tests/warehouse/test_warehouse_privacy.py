"""The analysts' warehouse holds no CPR numbers, names or PII columns; the restricted zone is sealed.

A tiny synthetic Denmark (2 delivery days, with defects) goes through the real path: source
servers -> ingestion -> lake -> quality -> nightly warehouse loads (conftest ``tiny_warehouse``).
Then every column of every table and view in every schema of ``warehouse.duckdb`` is scanned for

(a) CPR-like values: any 10-digit run (also inside longer strings; every 10-digit window of a
    longer run) or ``ddmmyy-xxxx`` whose first six digits form a valid ddmmyy date; random hex
    identifiers (person_key, UUIDs, payload ids) and the P-number columns (10-digit numbers by
    definition) are exempt from (a), not from (c),
(b) the names the generator put into the records (full names; surnames of >= 5 letters),
(c) the generated persons' CPR numbers (exact substrings, in any value),

and (d) no column of a dataset carries a contract field of PII class cpr/name/contact/free_text/
health, and no health dataset is there at all.  The restricted database is checked to be
encrypted at rest (no CPR in the sealed bytes) and to map every CPR to its keyed person_key.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines.contracts import REFERENCE_DIR, get_contract, load_contracts
from pipelines.warehouse import keys as wkeys
from pipelines.warehouse.build import published_path
from pipelines.warehouse.generate import fct_name, is_restricted, stg_name
from pipelines.warehouse.restricted import open_restricted, sealed_files, unsealed

CONTRACTS = load_contracts()
PII_BANNED = ("cpr", "name", "contact", "free_text", "health")
# Identifier formats that are random hex, not numbers: a 10-digit run inside them is chance, not a CPR
# (a 64-hex person_key has one about every second key).  Their values are still searched for the
# generated CPR numbers (c).
HEX_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
                    r"|(?=[0-9a-f]*[a-f])[0-9a-f]{16,64}|\d{4}-\d{2}-\d{2}-[0-9a-f]{8}")
DIGITS = re.compile(r"\d{10,}|\d{6}-\d{4}(?!\d)")


# ---------------------------------------------------------------------------- the scanner
@dataclass(frozen=True)
class Hit:
    relation: str
    column: str
    kind: str
    value: str


def valid_ddmmyy(s: str) -> bool:
    """True when the six digits are a date in some century (29 Feb counts: 2000 was a leap year)."""
    dd, mm, yy = int(s[:2]), int(s[2:4]), int(s[4:6])
    for century in (1900, 2000):
        try:
            dt.date(century + yy, mm, dd)
            return True
        except ValueError:
            pass
    return False


def cpr_like(value: str) -> list[str]:
    """Every 10-digit window (or ddmmyy-xxxx) of ``value`` whose first six digits are a valid date."""
    out = []
    for m in DIGITS.finditer(HEX_ID.sub(" ", value)):
        run = m.group(0).replace("-", "")
        for i in range(len(run) - 9):
            if valid_ddmmyy(run[i:i + 6]):
                out.append(run[i:i + 10])
    return out


def relations(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """(schema, name) of every table and view of the database, all schemas."""
    return con.execute("""
        SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = current_database()
        UNION ALL
        SELECT schema_name, view_name FROM duckdb_views() WHERE database_name = current_database() AND NOT internal
        ORDER BY 1, 2""").fetchall()


def scan(path: Path, cprs: Iterable[str], names: Iterable[str], skip_digits: set[str] = frozenset()
         ) -> tuple[list[Hit], int]:
    """Hits of (a) CPR-like values, (b) names and (c) known CPRs in every column; and the non-null cells.

    DuckDB preselects, per relation in one vectorised query over every cell as text, the values with a
    10-digit run or ``ddmmyy-xxxx`` (every CPR is such a run) and the values with a word (a run of
    letters) that is a word of some name: a hash join, not a regex of thousands of names per cell.
    Every value holding a name as a whole word holds its first word as a whole run of letters, so the
    preselection misses nothing; Python judges the preselected values.  Numbers are scanned as their
    text (an integer column holding CPRs is found); the fraction digits of floating-point and decimal
    values are no identifiers.
    ``skip_digits``: columns holding legitimate 10-digit numbers (P-numbers): (a) skips them, (c) not.
    """
    cpr_set = set(cprs)
    alts = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    name_re = re.compile(rf"\b(?:{alts})\b")
    words = duckdb.execute(r"SELECT list(DISTINCT w) FROM (SELECT unnest(regexp_extract_all(t, '\pL+')) AS w "
                           r"FROM unnest($t::VARCHAR[]) AS u(t))", {"t": sorted(names)}).fetchone()[0] or []
    hits: list[Hit] = []
    cells = 0
    con = duckdb.connect(str(path), read_only=True)
    try:
        for schema, rel in relations(con):
            q = f'"{schema}"."{rel}"'
            types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {q})").fetchall())
            n, found = con.execute(rf"""
                WITH cell AS (UNPIVOT (SELECT CAST(COLUMNS(*) AS VARCHAR) FROM {q}) ON COLUMNS(*) INTO NAME c VALUE v),
                d AS (SELECT c, v, count(*) AS k FROM cell GROUP BY c, v),
                word AS (SELECT c, v, unnest(regexp_extract_all(v, '\pL+')) AS w FROM d),
                hit AS (SELECT c, v FROM d WHERE regexp_matches(v, '[0-9]{{10}}|[0-9]{{6}}-[0-9]{{4}}')
                        UNION SELECT c, v FROM word SEMI JOIN (SELECT unnest($w::VARCHAR[]) AS w) AS nw USING (w))
                SELECT (SELECT coalesce(sum(k), 0) FROM d), (SELECT list({{'c': c, 'v': v}}) FROM hit)""",
                                   {"w": words}).fetchone()
            cells += n
            for cv in found or []:
                col, v, typ = cv["c"], cv["v"], types[cv["c"]]
                where = f"{schema}.{rel}"
                if typ.startswith(("DOUBLE", "FLOAT", "REAL", "DECIMAL")):
                    v = v.split(".")[0]
                if col not in skip_digits:
                    hits += [Hit(where, col, "cpr_like", x) for x in cpr_like(v)]
                for text in {v, v.replace("-", "")}:  # (c) anywhere, also inside hex ids
                    hits += [Hit(where, col, "cpr", text[j:j + 10]) for j in range(len(text) - 9)
                             if text[j:j + 10] in cpr_set]
                hits += [Hit(where, col, "name", m) for m in name_re.findall(v)] if alts else []
    finally:
        con.close()
    return sorted(set(hits), key=lambda h: (h.relation, h.column, h.kind, h.value)), cells


def test_the_scanner_finds_what_it_looks_for(tmp_path: Path) -> None:
    db = tmp_path / "leak.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE SCHEMA x")
    con.execute("""CREATE TABLE x.t AS SELECT * FROM (VALUES
        ('note: borger 0101801234 ringede', 'Mødt', 17),
        ('ok', 'Samtale med Anne Nielsen', 12),
        ('ref 1312990000123', 'Holm', 1),
        (repeat('ab', 32), 'Lundgaard', 3)) AS v(tekst, navn, n)""")
    con.execute("CREATE VIEW main.v AS SELECT tekst || ' 311299-1234' AS t2 FROM x.t")
    con.execute("CREATE TABLE main.tal AS SELECT 1010101234 AS pnr, '9999999999' AS ugyldig, "
                "'3f' || '2512881234' || 'aa' AS hexlike, 0.0101801234 AS brok, "
                "repeat('ab', 27) || '2512881234' AS hex64, repeat('cd', 27) || '0101801234' AS noegle")
    con.close()
    hits, cells = scan(db, cprs=["2512881234"], names=["Anne Nielsen", "Nielsen"])
    got = {(h.relation, h.column, h.kind, h.value) for h in hits}
    assert ("x.t", "tekst", "cpr_like", "0101801234") in got  # inside a string
    assert ("x.t", "tekst", "cpr_like", "1312990000") in got  # a window of a longer run
    assert ("main.v", "t2", "cpr_like", "3112991234") in got  # ddmmyy-xxxx, in a view
    assert ("x.t", "navn", "name", "Anne Nielsen") in got
    assert ("main.tal", "pnr", "cpr_like", "1010101234") in got  # an integer column too
    assert ("main.tal", "hexlike", "cpr", "2512881234") in got  # a known CPR even inside hex-like text
    assert not any(h.column == "ugyldig" for h in hits)  # 99-99-99 is no date
    assert not any(h.value == "Holm" or h.value == "Lundgaard" for h in hits)  # not in the list; words only
    assert not any(h.column in ("brok", "noegle") for h in hits)  # fraction digits; a random hex key
    assert {(h.kind, h.value) for h in hits if h.column == "hex64"} == {("cpr", "2512881234")}
    assert cells == 4 * 3 + 4 * 1 + 1 * 6  # every non-null cell
    skipped, _ = scan(db, cprs=[], names=["Nielsen"], skip_digits={"pnr"})
    assert not any(h.column == "pnr" for h in skipped)


# ---------------------------------------------------------------------------- the generated warehouse
@pytest.fixture(scope="module")
def built(tiny_warehouse_keys: tuple[Path, Path]) -> tuple[Path, Path]:
    """Sources and zones of a tiny Denmark (2 days, 5 % defects) taken through ingestion, quality and two
    warehouse loads; built once per session (conftest ``tiny_warehouse``), with its keys in the environment."""
    return tiny_warehouse_keys


@pytest.fixture(scope="module")
def population(built) -> tuple[set[str], set[str], set[str]]:
    """The CPRs (population + every 10-digit CPR field value in the lake), the names the lake's name
    fields hold, and every value of a CPR field in the lake (also malformed ones the ingestion kept)."""
    src, root = built
    cprs = set(pl.read_parquet(src / "truth" / "persons.parquet")["cpr"].to_list())
    lake_cprs: set[str] = set()
    names: set[str] = set()
    for c in CONTRACTS.values():
        files = sorted((root / "lake" / c.dataset).rglob("*.parquet"))
        if not files:
            continue
        lake = pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed")
        for f in c.fields:
            if f.name not in lake.columns:
                continue
            vals = {v for v in lake[f.name].drop_nulls().to_list() if isinstance(v, str)}
            if f.type == "cpr":
                lake_cprs |= vals
                cprs |= {v for v in vals if re.fullmatch(r"\d{10}", v)}
            if f.pii == "name":
                names |= vals
    return cprs, names, lake_cprs


def name_terms(names: set[str]) -> set[str]:
    """Full names and the surnames of >= 5 letters among them."""
    return names | {n.split()[-1] for n in names if len(n.split()) > 1 and len(n.split()[-1]) >= 5}


def pnummer_columns() -> set[str]:
    cols = {f.name for c in CONTRACTS.values() for f in c.fields if f.type == "pnummer"}
    return cols | {"pnumre"}


def test_the_population_and_its_names_reached_the_lake(population) -> None:
    cprs, names, _ = population
    assert len(cprs) >= 3000 and len(names) >= 50  # the test would be vacuous without them
    assert len([t for t in name_terms(names) if " " not in t]) >= 10


def test_no_cpr_names_or_cpr_like_values_anywhere_in_the_analysts_warehouse(built, population) -> None:
    _, root = built
    cprs, names, _ = population
    hits, cells = scan(published_path(root), cprs, name_terms(names), skip_digits=pnummer_columns())
    assert cells > 10_000
    assert hits == [], "\n".join(f"{h.kind}: {h.relation}.{h.column} = {h.value!r}" for h in hits[:40])


def test_a_planted_leak_in_a_copy_of_the_warehouse_is_found(built, population, tmp_path: Path) -> None:
    _, root = built
    cprs, names, _ = population
    cpr, name = sorted(cprs)[7], sorted(names)[3]
    copy = tmp_path / "warehouse.duckdb"
    copy.write_bytes(published_path(root).read_bytes())
    con = duckdb.connect(str(copy))
    con.execute("CREATE SCHEMA lækage")
    con.execute("CREATE TABLE lækage.t AS SELECT [{'note': 'ring til ' || ? || ' (' || ? || ')'}] AS noter",
                [name, cpr])
    con.close()
    hits, _ = scan(copy, cprs, name_terms(names), skip_digits=pnummer_columns())
    got = {(h.relation, h.column, h.kind, h.value) for h in hits}
    surname = name.split()[-1]
    assert {("lækage.t", "noter", "cpr_like", cpr), ("lækage.t", "noter", "cpr", cpr),
            ("lækage.t", "noter", "name", name)} <= got
    assert {h.relation for h in hits} == {"lækage.t"} and got <= {
        ("lækage.t", "noter", k, v) for k, v in (("cpr_like", cpr), ("cpr", cpr), ("name", name), ("name", surname))}


def test_no_pii_column_and_no_health_dataset_in_the_analysts_warehouse(built) -> None:
    _, root = built
    con = duckdb.connect(str(published_path(root)), read_only=True)
    try:
        rels = relations(con)
        cols = {f"{s}.{r}": {c for (c,) in con.execute(f'SELECT column_name FROM (DESCRIBE "{s}"."{r}")').fetchall()}
                for s, r in rels}
    finally:
        con.close()
    checked = 0
    for c in CONTRACTS.values():
        mine = [k for k in cols if k.split(".")[1] in (stg_name(c), fct_name(c), f"{fct_name(c)}_historik",
                                                        f"{fct_name(c)}_aktuel")]
        if is_restricted(c):
            assert mine == [], f"health dataset {c.dataset} in the analysts' warehouse: {mine}"
            continue
        assert len(mine) == 4, f"{c.dataset}: expected stg, fct, _historik and _aktuel, got {mine}"
        banned = {f.name for f in c.fields if f.pii in PII_BANNED}
        for k in mine:
            assert not cols[k] & banned, f"{k} carries PII fields {sorted(cols[k] & banned)}"
            checked += 1
    # a field that is PII in every contract naming it is nowhere in the warehouse, whatever the relation
    # (code-list columns such as navn/beskrivelse of the dimensions are labels, not persons' data)
    labels = {h for p in REFERENCE_DIR.glob("*.csv") for h in p.read_text(encoding="utf-8").split("\n", 1)[0].split(",")}
    pii_only = ({f.name for c in CONTRACTS.values() for f in c.fields if f.pii in PII_BANNED}
                - {f.name for c in CONTRACTS.values() for f in c.all_fields if f.pii not in PII_BANNED} - labels)
    everywhere = {col: k for k, cs in cols.items() for col in cs & pii_only}
    assert everywhere == {}, f"PII columns in the warehouse: {everywhere}"
    assert "cpr" in pii_only and "diagnose" in pii_only and checked > 100


def digit_windows(data: bytes) -> set[str]:
    """Every 10-digit window of the bytes."""
    return {m.decode() for m in re.findall(rb"(?=(\d{10}))", data)}


def test_restricted_health_facts_keep_one_copy_without_person_index(built) -> None:
    """The restricted database is sealed whole every night, so it holds each health record once: the current
    state (`fct_ssi_*_aktuel`) is a view over the versions, and the versions carry no person_key index (nobody
    looks a person up there). The view's rows are each record's latest version unless deleted or retracted,
    checked here with a query of another form (no later version exists) than the model's window."""
    _src, root = built
    with open_restricted(root) as con:
        tables = {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = "
                                            "'restricted'").fetchall()}
        views = {v for (v,) in con.execute("SELECT view_name FROM duckdb_views() WHERE database_name = "
                                           "'restricted' AND NOT internal").fetchall()}
        indexes = {i for (i,) in con.execute("SELECT index_name FROM duckdb_indexes() WHERE database_name = "
                                             "'restricted'").fetchall()}
        ssi = sorted(t for t in tables if t.startswith("fct_ssi_"))
        assert ssi and not [t for t in tables if t.endswith("_aktuel")]
        assert {f"{t}_aktuel" for t in ssi} <= views and not [i for i in indexes if i.endswith("__person_key")]
        compared = 0
        for t in ssi:
            k = get_contract(t.removeprefix("fct_")).record_key[0]
            got = con.execute(f"SELECT {k}, version, besked_id FROM restricted.{t}_aktuel ORDER BY ALL").fetchall()
            want = con.execute(f"""
                SELECT f.{k}, f.version, f.besked_id FROM restricted.{t} f
                WHERE f._payload_id NOT IN (SELECT payload_id FROM restricted.meta_retracted) AND NOT f.er_slettet
                  AND NOT EXISTS (
                    SELECT 1 FROM restricted.{t} g
                    WHERE g.{k} = f.{k}
                      AND g._payload_id NOT IN (SELECT payload_id FROM restricted.meta_retracted)
                      AND (g.version, g.indlaest_dato, g.er_slettet, g.registreringstidspunkt, g.besked_id)
                          > (f.version, f.indlaest_dato, f.er_slettet, f.registreringstidspunkt, f.besked_id))
                ORDER BY ALL""").fetchall()
            assert got == want
            compared += len(got)
    assert compared > 100


def test_an_older_restricted_database_loses_its_copy_and_index(built, tmp_path) -> None:
    """A restricted database an older build left (the current state a table, the versions indexed by person_key)
    becomes the new form on the first build after the project changed: the table replaced by the view with the
    same rows, the index dropped."""
    import shutil

    from pipelines.warehouse.dbt_runner import dbt_env, run_dbt

    _src, root = built
    db = tmp_path / "build.duckdb"
    shutil.copyfile(published_path(root), db)
    work = tmp_path / "dbt"
    (work / "restricted").mkdir(parents=True)
    plain = work / "restricted" / "restricted.duckdb"
    with unsealed(root) as p:
        shutil.copyfile(p, plain)
    con = duckdb.connect(str(plain))
    try:
        before = con.execute("SELECT * FROM fct_ssi_lpr_kontakt_aktuel ORDER BY ALL").fetchall()
        con.execute("DROP VIEW fct_ssi_lpr_kontakt_aktuel")
        con.execute("CREATE TABLE fct_ssi_lpr_kontakt_aktuel AS SELECT * FROM fct_ssi_lpr_kontakt LIMIT 0")
        con.execute("CREATE INDEX fct_ssi_lpr_kontakt__person_key ON fct_ssi_lpr_kontakt (person_key)")
    finally:
        con.close()
    run_dbt(work, dbt_env(work, db, plain), "run", "--select", "fct_ssi_lpr_kontakt", "fct_ssi_lpr_kontakt_aktuel")
    con = duckdb.connect(str(plain))
    try:
        kind = con.execute("SELECT table_type FROM information_schema.tables "
                           "WHERE table_name = 'fct_ssi_lpr_kontakt_aktuel'").fetchall()
        assert kind == [("VIEW",)]
        assert con.execute("SELECT index_name FROM duckdb_indexes()").fetchall() == []
        assert con.execute("SELECT * FROM fct_ssi_lpr_kontakt_aktuel ORDER BY ALL").fetchall() == before != []
    finally:
        con.close()


def test_restricted_zone_is_sealed_and_maps_cpr_to_keyed_person_key(built, population) -> None:
    src, root = built
    cprs, _, lake_cprs = population
    files = sealed_files(root)
    assert files and all(p.read_bytes().startswith(b"age-encryption.org/v1\n") for p in files)
    sealed = b"".join(p.read_bytes() for p in files)
    assert len(sealed) > 100_000
    leaked = sorted(digit_windows(sealed) & cprs)
    assert leaked == [], f"CPRs in plaintext in the sealed file: {leaked[:5]}"
    with unsealed(root) as plain:  # the same search finds them in the plaintext it protects
        assert len(digit_windows(plain.read_bytes()) & cprs) > 1000
    assert b"person_key" not in sealed  # catalog and header encrypted too
    assert not [p for p in files if b"DUCK" in p.read_bytes()[:4096]]
    assert not list((root / "restricted").glob("*.duckdb")) and not list((root / "warehouse").glob("*restricted*"))
    pseudo = wkeys.load_key("pseudonym")  # the module fixture's key directory
    with open_restricted(root) as con:
        pairs = con.execute("SELECT cpr, person_key FROM restricted.person").fetchall()
        ssi = con.execute("SELECT count(*) FROM restricted.fct_ssi_lpr_kontakt").fetchone()[0]
    mapping = dict(pairs)
    assert len(mapping) == len(pairs) > 1000 and ssi > 0
    assert all(wkeys.person_key(c, pseudo) == pk for c, pk in pairs)
    assert set(mapping) == lake_cprs  # every CPR the lake holds, nothing else
    con = duckdb.connect(str(published_path(root)), read_only=True)
    try:
        analyst_keys = {k for (k,) in con.execute("SELECT DISTINCT person_key FROM fct_kontaktgruppe").fetchall()}
    finally:
        con.close()
    assert analyst_keys and analyst_keys <= set(mapping.values())
