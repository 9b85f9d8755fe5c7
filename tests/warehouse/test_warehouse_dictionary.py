"""Data dictionary, ERD, the analysts' SQL entry point and the example queries.

- the committed docs/warehouse_dictionary.md and docs/warehouse_erd.md are what the dbt project's manifest and
  the contracts produce now; a field added to a contract shows up (and a PII field does not);
- the column names and types the dictionary takes from an empty dbt build equal a real build's;
- ``run_sql`` reads the published warehouse while a load holds the build database, and a query
  started before a publish finishes on the snapshot it opened;
- every query in docs/example_queries.sql runs on a small warehouse with known answers.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import duckdb
import pytest
from fixtures_wh import cpr_for, deliver, kg

from pipelines.contracts import CONTRACT_DIR, load_contracts
from pipelines.warehouse import keys as wkeys
from pipelines.warehouse.build import build_path, load_warehouse, published_path
from pipelines.warehouse.dictionary import (
    DICTIONARY_FILE,
    DOCS_DIR,
    ERD_FILE,
    TECHNICAL,
    catalog,
    render_dictionary,
    render_erd,
    write_docs,
)
from pipelines.warehouse.sql import SqlError, connect, format_table, run_sql

EXAMPLES = DOCS_DIR / "example_queries.sql"
D1, D5, D6, D7 = (dt.date(2026, 10, d) for d in (1, 5, 6, 7))
P1 = cpr_for(dt.date(1980, 5, 17), 1)
P2 = cpr_for(dt.date(1991, 2, 3), 2, male=False)
P3 = cpr_for(dt.date(1975, 11, 30), 3)
P4 = cpr_for(dt.date(1999, 7, 1), 4, male=False)
KG_A, KG_B, KG_C, KG_D, KG_E = (f"22222222-0000-4000-8000-00000000000{x}" for x in "abcde")


def d(s: str) -> dt.date:
    return dt.date.fromisoformat(s)


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def default_catalog():
    return catalog()


@pytest.fixture(scope="module")
def wh(tmp_path_factory: pytest.TempPathFactory):
    """A warehouse over two loads (5 and 6 Oct) of hand-made deliveries: known answers for the examples.

    P1: dagpenge (kg 1) from 1 Sep, ended 4 Oct (reported 5 Oct), sygedagpenge (kg 25) from 5 Oct;
    P2: kontanthjælp (kg 2) from 15 Aug in kommune 147; P3: sygedagpenge (kg 6) 10-30 Sep;
    P4: kontanthjælp from 2 Oct in kommune 147, registered late on 6 Oct.
    """
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # built once per session: the first worker builds, the others wait
    root = base / "wh_dictionary"
    root.mkdir(exist_ok=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DSDW_KEY_DIR", str(root / "keys"))
        mp.delenv("DSDW_PSEUDONYM_KEY", raising=False)
        mp.delenv("DSDW_RESTRICTED_KEY", raising=False)
        with (root / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (root / ".done").exists():
                _deliver_and_load(root)
                (root / ".done").touch()
        yield root


def _deliver_and_load(root: Path) -> None:
    wkeys.ensure_key("pseudonym")
    wkeys.ensure_key("restricted")
    deliver(root, "kontaktgruppe", D1, [kg(KG_A, P1, "1", "2026-09-01"),
                                        kg(KG_C, P3, "6", "2026-09-10", "2026-09-30")], reporter="101")
    deliver(root, "kontaktgruppe", D1, [kg(KG_B, P2, "2", "2026-08-15")], reporter="147")
    deliver(root, "tilmelding", D1, [{"tilmelding_id": "33333333-0000-4000-8000-000000000001", "cpr": P1,
                                      "tilmeldekategori": "1", "startdato": d("2026-09-01"),
                                      "registreringsdato": d("2026-09-01")}])
    deliver(root, "akasse_tilmelding", D1, [{"tilmelding_id": "33333333-0000-4000-8000-000000000002",
                                             "cpr": P1, "akassekode": "002", "tilmeldekategori": "1",
                                             "startdato": d("2026-09-01")}], reporter="002")
    deliver(root, "samtale", D1, [{"samtale_id": "33333333-0000-4000-8000-000000000003", "cpr": P1,
                                   "samtaledato": d("2026-09-15"), "samtaletype": "7", "samtaleform": "101",
                                   "registreringsdato": d("2026-09-15")}])
    deliver(root, "kontaktgruppe", D5, [kg(KG_A, P1, "1", "2026-09-01", "2026-10-04", reg="2026-10-05",
                                           version=2, change="2"),
                                        kg(KG_D, P1, "25", "2026-10-05")], reporter="101")
    load_warehouse(root, D5)
    deliver(root, "kontaktgruppe", D6, [kg(KG_E, P4, "2", "2026-10-02", reg="2026-10-06")], reporter="147")
    load_warehouse(root, D6)


def examples() -> dict[str, str]:
    text = EXAMPLES.read_text(encoding="utf-8")
    parts = re.split(r"^-- name: *(\S+) *$", text, flags=re.M)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


def q(root: Path, name: str) -> list[dict]:
    cols, rows = run_sql(published_path(root), examples()[name])
    return [dict(zip(cols, r, strict=True)) for r in rows]


# ---------------------------------------------------------------------------- dictionary and ERD
def test_committed_docs_are_what_the_contracts_and_models_give(default_catalog) -> None:
    for name, text in ((DICTIONARY_FILE, render_dictionary(default_catalog)),
                       (ERD_FILE, render_erd(default_catalog))):
        path = DOCS_DIR / name
        assert path.exists(), f"{path} missing: run `dsdw warehouse docs`"
        assert path.read_text(encoding="utf-8") == text, f"{path} is stale: run `dsdw warehouse docs`"


def test_write_docs_is_deterministic(tmp_path: Path, default_catalog) -> None:
    paths = write_docs(tmp_path)  # a second, independent build of the catalog
    assert [p.name for p in paths] == [DICTIONARY_FILE, ERD_FILE]
    assert [p.read_text(encoding="utf-8") for p in paths] == [render_dictionary(default_catalog),
                                                               render_erd(default_catalog)]


def _section(md: str, model: str) -> str:
    return md.split(f"\n### {model}\n", 1)[1].split("\n### ", 1)[0]


def test_a_field_added_to_a_contract_appears_in_the_dictionary_and_erd(tmp_path: Path, default_catalog,
                                                                        monkeypatch) -> None:
    from pipelines.warehouse import dbt_runner
    from pipelines.warehouse.generate import dbt_fact_sql, dbt_staging_sql, fct_name, stg_name

    cdir = tmp_path / "contracts"
    cdir.mkdir()
    for p in CONTRACT_DIR.glob("*.yaml"):
        shutil.copy(p, cdir / p.name)
    extra = ("  - name: testform_ekstra\n    type: code\n    codelist: samtaleformer\n    required: false\n"
             "    pii: none\n    paragraph: \"§ 25, stk. 1, nr. 42\"\n"
             "    description: \"Et felt kun denne test kender.\"\n"
             "  - name: testperson_navn\n    type: string\n    required: false\n    pii: name\n"
             "    description: \"En sagsbehandlers navn (bliver i søen).\"\n")
    text = (cdir / "samtale.yaml").read_text(encoding="utf-8")
    assert "\nrules:" in text
    (cdir / "samtale.yaml").write_text(text.replace("\nrules:", "\n" + extra + "rules:", 1), encoding="utf-8")
    try:
        contracts = load_contracts(cdir)
        assert "testform_ekstra" in contracts["samtale"].field_names
        # the project as `make generate` writes it for the new contract: its staging and fact models
        project = tmp_path / "warehouse"
        shutil.copytree(dbt_runner.PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
        c = contracts["samtale"]
        (project / "dbt" / "models" / "staging" / f"{stg_name(c)}.sql").write_text(dbt_staging_sql(c))
        (project / "dbt" / "models" / "core" / f"{fct_name(c)}.sql").write_text(dbt_fact_sql(c))
        monkeypatch.setattr(dbt_runner, "PROJECT_DIR", project)
        cat = catalog(contracts=contracts)
    finally:
        load_contracts.cache_clear()
    md, erd = render_dictionary(cat), render_erd(cat)
    fct = _section(md, "fct_samtale")
    row = ("| `testform_ekstra` | VARCHAR | Et felt kun denne test kender. | § 25, stk. 1, nr. 42 | "
           "samtaleformer -> [dim_samtaleform](#dim_samtaleform) |")
    assert row in fct
    assert "`testperson_navn` (name)" in fct  # listed as left in the lake ...
    assert "| `testperson_navn` |" not in md  # ... and in no table of any model
    assert 'fct_samtale }o--|| dim_samtaleform : "testform_ekstra"' in erd
    plain = render_dictionary(default_catalog)
    assert "testform_ekstra" not in plain and "testperson_navn" not in plain


def test_generated_models_document_every_column_with_its_paragraph(default_catalog) -> None:
    contracts = load_contracts()
    for doc in default_catalog.docs:
        if not doc.generated:
            continue
        c = doc.contract
        undocumented = [col.name for col in doc.columns if not col.description]
        assert not undocumented, f"{doc.model.name}: no description for {undocumented}"
        for col in doc.columns:
            if col.name in c.field_names and c.field(col.name).paragraph:
                assert col.paragraph == c.field(col.name).paragraph
        names = {col.name for col in doc.columns}
        if doc.model.database == "warehouse":
            assert "cpr" not in names and not any(n.endswith("_cpr") for n in names)
            pii = {f.name for f in contracts[c.dataset].fields if f.pii != "none"}
            assert not names & pii, f"{doc.model.name} carries PII columns {names & pii}"
    kg = next(d for d in default_catalog.docs if d.model.name == "fct_kontaktgruppe")
    cols = {c.name: c for c in kg.columns}
    assert cols["kontaktgruppe"].codelist == "kontaktgrupper" and cols["kontaktgruppe"].ref == "dim_kontaktgruppe"
    assert cols["person_key"].paragraph == "§ 16, stk. 6, nr. 1"
    assert cols["gyldig_fra"].description == TECHNICAL["gyldig_fra"][0]
    assert [c.name for c in kg.history] == ["indlaest_til", "er_seneste"]


def test_empty_build_columns_equal_a_real_build(wh: Path, default_catalog) -> None:
    real = catalog(warehouse=published_path(wh))
    empty = {d.model.name: d for d in default_catalog.docs}
    compared = 0
    for doc in real.docs:
        if doc.model.database != "warehouse":
            continue
        assert doc.built, f"{doc.model.name} is not in the built warehouse"
        assert [(c.name, c.type) for c in doc.columns] == [(c.name, c.type) for c in empty[doc.model.name].columns], \
            doc.model.name
        compared += 1
    assert compared > 40
    assert set(real.other) == set(default_catalog.other) and "meta.load" in real.other  # no unknown tables
    assert all(real.other[k] == default_catalog.other[k] for k in real.other)
    assert "**Not found" not in render_dictionary(real)


def test_erd_is_facts_to_dimensions_with_key_and_foreign_key_columns_only(default_catalog) -> None:
    erd = render_erd(default_catalog)
    body = erd.split("```mermaid\n", 1)[1].split("```", 1)[0]
    entities = dict(re.findall(r"^    (\w+) \{\n(.*?)^    \}", body, flags=re.M | re.S))
    edges = re.findall(r'^    (\w+) \}o--(?:\|\||\|\{) (\w+) : "(\w+)"$', body, flags=re.M)
    assert edges and all(a in entities and b in entities and b.startswith("dim_") for a, b, _ in edges)
    assert ("fct_kontaktgruppe", "dim_kommune", "kommunekode") in edges
    assert ("fct_samtale", "dim_samtaletype", "samtaletype") in edges
    assert "samtaledato" not in entities["fct_samtale"]  # neither key nor foreign key
    assert "samtale_id PK" in entities["fct_samtale"] and "samtaletype FK" in entities["fct_samtale"]
    assert not any(n.startswith("stg_") or n in ("fct_ssi_lpr_kontakt",) for n in entities)


# ---------------------------------------------------------------------------- run_sql
def test_run_sql_reads_the_published_copy_while_a_load_holds_the_build_database(wh: Path, tmp_path: Path) -> None:
    # not dbt's target (its link to the load's unsealed restricted database is gone after the load)
    wh = shutil.copytree(wh, tmp_path / "root",
                         ignore=shutil.ignore_patterns("*.tmp", "*.wal", ".lock", ".done", "dbt_target"))
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import duckdb, sys
            con = duckdb.connect({str(build_path(wh))!r})
            con.execute("BEGIN TRANSACTION")
            con.execute("CREATE TABLE main.load_in_progress AS SELECT 1 AS x")
            print("holding", flush=True)
            sys.stdin.readline()
            con.execute("ROLLBACK")
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(duckdb.Error):  # the build database really is locked by the writer ...
            duckdb.connect(str(build_path(wh)), read_only=True)
        cols, rows = run_sql(published_path(wh), "SELECT count(*) AS n FROM meta.load")  # ... the copy is not
        assert cols == ["n"] and rows == [(2,)]
    finally:
        holder.communicate("done\n", timeout=30)
    assert holder.returncode == 0


def test_a_query_started_before_a_publish_completes_on_its_snapshot(wh: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(wh, root, ignore=shutil.ignore_patterns("*.tmp", "*.wal", ".lock", ".done", "dbt_target"))
    before = run_sql(published_path(root), "SELECT count(*) FROM fct_kontaktgruppe")[1][0][0]
    con = connect(published_path(root))  # an analyst's session, open across the publish
    cur = con.execute("SELECT k.*, d.dato FROM fct_kontaktgruppe k CROSS JOIN dim_dato d")
    first = cur.fetchmany(10)
    deliver(root, "kontaktgruppe", D7, [kg("22222222-0000-4000-8000-0000000000ff", P3, "8", "2026-10-07")])
    errors: list[BaseException] = []
    polled: list[int] = []

    def poll() -> None:  # analysts keep querying while the load runs and publishes
        try:
            for _ in range(200):
                polled.append(run_sql(published_path(root), "SELECT count(*) FROM meta.load")[1][0][0])
                if polled[-1] == 3:
                    return
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    t = threading.Thread(target=poll)
    t.start()
    res = load_warehouse(root, D7)
    t.join(timeout=60)
    assert res.published == published_path(root) and not errors
    assert set(polled) <= {2, 3} and polled[-1] == 3  # new sessions see the new load, the open one is not pinned
    rest = cur.fetchall()  # the old file stays readable after the rename
    total = con.execute("SELECT count(*) FROM fct_kontaktgruppe").fetchone()[0]
    con.close()
    ndays = run_sql(published_path(root), "SELECT count(*) FROM dim_dato")[1][0][0]
    assert len(first) + len(rest) == before * ndays and total == before
    after = run_sql(published_path(root), "SELECT count(*) FROM fct_kontaktgruppe")[1][0][0]
    assert after == before + 1


def test_run_sql_errors_and_format_table(wh: Path, tmp_path: Path) -> None:
    with pytest.raises(SqlError, match="no warehouse"):
        run_sql(tmp_path / "nothing.duckdb", "SELECT 1")
    with pytest.raises(SqlError, match="fct_findes_ikke"):
        run_sql(published_path(wh), "SELECT * FROM fct_findes_ikke")
    with pytest.raises(SqlError):  # read-only: an analyst cannot change the warehouse
        run_sql(published_path(wh), "DELETE FROM fct_kontaktgruppe")
    cols, rows = run_sql(published_path(wh), "SELECT kommunekode, kommune, indbyggere FROM dim_kommune "
                                             "ORDER BY kommunekode")
    t = format_table(cols, rows, max_rows=5)
    assert t.row_count == 5 and t.caption == f"{len(rows)} rows (first 5 shown)"
    assert [c.header for c in t.columns] == cols and t.columns[2].justify == "right"


# ---------------------------------------------------------------------------- example queries
def test_every_example_query_runs_and_returns_rows(wh: Path) -> None:
    ex = examples()
    assert {"fuldtidspersoner_kommune_ydelsesgruppe", "person_historik", "overgange_mellem_ydelsesgrupper",
            "kontaktgruppe_as_of", "rettidighed_kommune"} <= set(ex)
    for name, sql in ex.items():
        assert "§" in sql or name == "person_historik", f"{name}: say which § the query is about"
        cols, rows = run_sql(published_path(wh), sql)
        assert rows, f"example query {name} returned no rows"


def test_example_fuldtidspersoner(wh: Path) -> None:
    """Person-weeks / weeks of the month; a week is the month's when its Thursday is."""
    got = {(r["maaned"], r["kommunekode"], r["ydelsesgruppe"]): r for r in q(wh, "fuldtidspersoner_kommune_ydelsesgruppe")}
    sep, aug = d("2026-09-01"), d("2026-08-01")
    assert float(got[(sep, "101", "dagpenge")]["fuldtidspersoner"]) == 1.0  # P1 in all 4 September weeks
    assert float(got[(sep, "101", "sygedagpenge")]["fuldtidspersoner"]) == 0.75  # P3 from Thu 10 Sep: 3 of 4
    assert float(got[(aug, "147", "kontanthjaelp")]["fuldtidspersoner"]) == 0.75  # P2 from Sat 15 Aug: 3 of 4
    assert got[(sep, "101", "sygedagpenge")]["antal_personer"] == 1 and not got[(sep, "101", "dagpenge")]["er_foreloebig"]
    assert {k[2] for k in got} <= {"dagpenge", "sygedagpenge", "kontanthjaelp"}  # no 'i alt' rows


def test_example_person_history_follows_one_person_across_facts(wh: Path) -> None:
    rows = q(wh, "person_historik")
    assert {r["datasaet"] for r in rows} == {"kontaktgruppe", "tilmelding", "akasse_tilmelding", "samtale"}
    assert [r["hvad"] for r in rows if r["datasaet"] == "kontaktgruppe"] == ["kontaktgruppe 1", "kontaktgruppe 25"]
    assert next(r for r in rows if r["hvad"] == "kontaktgruppe 1")["gyldig_til"] == d("2026-10-04")


def test_example_flows_between_ydelsesgrupper(wh: Path) -> None:
    flows = {(r["maaned"], r["fra_status"], r["til_status"]): r["personer"]
             for r in q(wh, "overgange_mellem_ydelsesgrupper")}
    assert flows == {(d("2026-10-01"), "dagpenge", "sygedagpenge"): 1,  # P1 in week 41
                     (d("2026-10-01"), "sygedagpenge", "selvforsoerget"): 1}  # P3 after 30 Sep


def test_example_as_of_shows_the_late_registration_as_a_revision(wh: Path) -> None:
    got = {r["kontaktgruppe"]: (r["personer_kendt_2026_10_05"], r["personer_kendt_nu"], r["revision"])
           for r in q(wh, "kontaktgruppe_as_of")}
    assert got == {"2": (1, 2, 1), "25": (1, 1, 0)}


def test_example_timeliness_per_kommune(wh: Path) -> None:
    got = {r["kommunekode"]: r for r in q(wh, "rettidighed_kommune")}
    assert (got["147"]["nye_forloeb"], got["147"]["rettidige"], float(got["147"]["pct_rettidige"]),
            got["147"]["max_forsinkelse_dage"]) == (2, 1, 50.0, 4)
    assert (got["101"]["nye_forloeb"], float(got["101"]["pct_rettidige"])) == (3, 100.0)
    assert got["147"]["kommune"] == "Frederiksberg"
