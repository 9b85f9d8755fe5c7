"""The synthetic Denmark's changes and problem reporters, taken through the whole pipeline (issues 19, 12).

One tiny Denmark (6 days) goes through the source servers, ingestion and a nightly warehouse load per
day (the direct engine), then the quality checks; the one-pass rebuild of the six nights must equal them.  For every issue-19 kind the ground truth names,
the warehouse's current state, its as-of views and the published statistics must follow what
the ground truth says must win; the national overview must rank the reporters the ground truth
names as problem reporters on top.

Six days are the fewest that hold every kind delivered: the simulator takes each kind's first
opportunity after the first day, and the corrections follow 1-3 days later (5 days miss four kinds;
``test_every_change_kind_is_in_the_ground_truth`` fails if a generator change needs more).  The
nightly loads skip the suppressed publication (``statistics=False``) except the last, which publishes
every year once from the corrected state: republishing after every night repeats the LP audit six
times for nothing this module asserts (the night-by-night republication is tested in
``tests/warehouse/test_warehouse_marts.py``) and made this fixture the suite's longest (508 s in CI).
"""

from __future__ import annotations

import collections
import csv
import datetime as dt
import json
import re
from pathlib import Path

import duckdb
import pytest
from fixtures_wh import query as q
from fixtures_wh import use_keys

from pipelines.ingest import SourcesConfig, Zones, ingest_day
from pipelines.simulate.changes import CHANGE_KINDS
from pipelines.simulate.servers import start_sources
from pipelines.warehouse.build import load_warehouse, published_path

START = dt.date(2026, 10, 1)
DAYS = [START + dt.timedelta(days=k) for k in range(6)]
SEED = 20261001


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, generated):
    work = tmp_path_factory.mktemp("simpipe")
    src, root = generated(days=len(DAYS), seed=SEED), work / "pipeline"
    with pytest.MonkeyPatch.context() as mp:
        use_keys(mp, work / "keys")
        with start_sources(src) as systems:
            cfg = SourcesConfig.from_describe(systems.describe())
            # each day's files, then its night: a correction later supersedes a payload a night loaded
            for day in DAYS:
                res = ingest_day(day, Zones(root), cfg, received_at=f"{day + dt.timedelta(days=1)}T02:00:00+02:00")
                assert not [f for r in res for f in r.failures]
                load_warehouse(root, day, statistics=day == DAYS[-1])
        from pipelines.quality.results import publish, run_quality

        publish(run_quality(root, DAYS, today=DAYS[-1] + dt.timedelta(days=1)), root, DAYS)
        yield src, root


@pytest.fixture(scope="module")
def truth(built) -> dict[str, list[dict[str, str]]]:
    src, _root = built
    out: dict[str, list[dict[str, str]]] = collections.defaultdict(list)
    with (src / "ground_truth.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            out[row["defect"]].append(row)
    return out


def wh(built, sql: str) -> list[tuple]:
    return q(published_path(built[1]), sql)


def winners(truth, kind: str) -> list[dict[str, str]]:
    return [r for r in truth[kind] if r["expected"].startswith("wins")]


def test_every_change_kind_is_in_the_ground_truth(truth) -> None:
    assert set(CHANGE_KINDS) <= set(truth), set(CHANGE_KINDS) - set(truth)


def test_a_record_deleted_in_error_is_gone_from_the_current_state_and_the_statistics(built, truth) -> None:
    deleted = [r for r in truth["deleted_in_error"] if r["expected"].startswith("superseded")]
    assert deleted
    for r in deleted:
        ds, key = r["dataset"], r["field"]
        kv = re.search(r"[0-9a-f-]{36}", r["detail"])[0]
        made = dt.date.fromisoformat(r["leveringsdato"])
        assert wh(built, f"SELECT count(*) FROM fct_{ds}_aktuel WHERE {key} = '{kv}'") == [(0,)]
        # the as-of view of the day it was made still shows it (what was published then)
        assert wh(built, f"SELECT count(*) FROM fct_{ds}_as_of(DATE '{made}') WHERE {key} = '{kv}'") == [(1,)]
        if ds == "kontaktgruppe":
            assert wh(built, f"SELECT count(*) FROM fct_ydelsesforloeb WHERE kontaktgruppe_id = '{kv}'") == [(0,)]


def _expected_value(r: dict[str, str]) -> tuple[str, str]:
    m = re.search(r"\((\w+)=([^,)]+)", r["expected"])
    assert m, r
    return m[1], m[2]


@pytest.mark.parametrize("kind", ["corrected_startdato", "corrected_kontaktgruppe", "late_correction"])
def test_a_corrected_spell_shows_the_correction(built, truth, kind: str) -> None:
    rows = winners(truth, kind)
    assert rows
    for r in rows:
        fld, value = _expected_value(r)
        bid = r["besked_id"]
        key = wh(built, f"SELECT kontaktgruppe_id, version FROM fct_kontaktgruppe WHERE besked_id = '{bid}'")
        assert len(key) == 1, r
        k, version = key[0]
        got = wh(built, f"SELECT CAST({fld} AS VARCHAR), version FROM fct_kontaktgruppe_aktuel "
                        f"WHERE kontaktgruppe_id = '{k}'")
        assert got == [(value, version)], r
        spell = wh(built, f"SELECT CAST({fld} AS VARCHAR) FROM fct_ydelsesforloeb WHERE kontaktgruppe_id = '{k}'")
        assert spell == [(value,)], r


def test_a_version_that_arrives_before_the_one_it_follows_still_wins(built, truth) -> None:
    rows = winners(truth, "out_of_order")
    assert rows
    for r in rows:
        fld, value = _expected_value(r)
        k, version = wh(built, f"SELECT kontaktgruppe_id, version FROM fct_kontaktgruppe "
                               f"WHERE besked_id = '{r['besked_id']}'")[0]
        # version 1 arrived days after version 2
        arrivals = dict(wh(built, f"SELECT version, min(indlaest_dato) FROM fct_kontaktgruppe "
                                  f"WHERE kontaktgruppe_id = '{k}' GROUP BY 1"))
        assert arrivals[1] > arrivals[version]
        got = wh(built, f"SELECT CAST({fld} AS VARCHAR), version FROM fct_kontaktgruppe_aktuel "
                        f"WHERE kontaktgruppe_id = '{k}'")
        assert got == [(value, version)], (r, got)


def test_a_redelivered_payload_counts_once(built, truth) -> None:
    rows = [r for r in truth["redelivered_unchanged"] if r["channel"] == "webservice"]
    assert rows
    for r in rows:
        ds = r["dataset"]
        assert wh(built, f"SELECT count(*) FROM fct_{ds} WHERE besked_id = '{r['besked_id']}'") == [(1,)], r
    portal = [r for r in truth["redelivered_unchanged"] if r["channel"] == "portal"]
    for r in portal:
        assert wh(built, f"SELECT count(*) FROM fct_{r['dataset']} WHERE besked_id = '{r['besked_id']}'") == [(1,)]


def test_a_corrected_redelivery_wins_and_its_unchanged_records_count_once(built, truth) -> None:
    rows = truth["redelivered_corrected"]
    won = [r for r in rows if r["expected"].startswith("wins")]
    assert won
    for r in won:
        ds, fld = r["dataset"], r["field"]
        key, value = re.search(r"wins: \w+=(\S+) for (\w+) (\S+)", r["expected"]).group(2, 3), \
            re.search(r"wins: \w+=(\S+)", r["expected"])[1]
        kname, kval = key
        got = wh(built, f"SELECT CAST({fld} AS VARCHAR) FROM fct_{ds}_aktuel WHERE {kname} = '{kval}'")
        assert got == [(value,)], (r, got)
    for r in rows:
        if r["expected"].startswith("counted once"):
            assert wh(built, f"SELECT count(*) FROM fct_{r['dataset']}_aktuel "
                             f"WHERE besked_id = '{r['besked_id']}'") == [(1,)], r


def test_overlapping_spells_of_a_move_are_reported_by_kg004_and_kept(built, truth) -> None:
    _src, root = built
    rows = truth["overlap_move"]
    assert rows and all(r["rule_id"] == "KG-004" for r in rows)
    con = duckdb.connect(str(root / "dq.duckdb"), read_only=True)
    try:
        failed = con.execute("SELECT sum(records_failed) FROM dq_results WHERE rule_id = 'KG-004'").fetchone()[0]
    finally:
        con.close()
    assert failed == len({r["besked_id"] for r in rows})
    keys = {k for r in rows for k in re.findall(r"[0-9a-f-]{36}", r["detail"])}
    got = wh(built, "SELECT count(DISTINCT kontaktgruppe_id) FROM fct_kontaktgruppe_aktuel WHERE kontaktgruppe_id "
                    f"IN ({', '.join(repr(k) for k in keys)})")
    assert got == [(len(keys),)]


def test_an_unknown_kommunekode_is_reported_and_kept(built, truth) -> None:
    _src, root = built
    rows = [r for r in truth["unknown_kommunekode"] if r["dataset"] == "kontaktgruppe"]
    assert rows and {r["rule_id"] for r in rows} == {"kontaktgruppe:codelist:kommunekode"}
    con = duckdb.connect(str(root / "dq.duckdb"), read_only=True)
    try:
        n = con.execute("SELECT sum(records_failed) FROM dq_results WHERE rule_id = "
                        "'kontaktgruppe:codelist:kommunekode'").fetchone()[0]
    finally:
        con.close()
    assert n == len(rows)
    for r in rows:
        assert wh(built, f"SELECT kommunekode FROM fct_kontaktgruppe WHERE besked_id = '{r['besked_id']}'") \
            == [("999",)]


def test_published_statistics_equal_the_full_computation_from_the_current_spells(built) -> None:
    from fixtures_wh import assert_mart_equals_full_recomputation

    assert assert_mart_equals_full_recomputation(built[1], DAYS[-1]) > 0
    # the last load published every year once: a figure shown after suppression is the mart's current one
    keys = "periode_type, periode_start, geo_niveau, geo_kode, ydelsesgruppe"
    shown, differ = wh(built, f"""SELECT count(*), count(*) FILTER (WHERE p.antal_personer <>
        coalesce(m.antal_personer, 0)) FROM mart_ydelser_publiceret p LEFT JOIN mart_ydelser m USING ({keys})
        WHERE NOT p.antal_personer_diskretioneret""")[0]
    assert shown > 0 and differ == 0
    assert wh(built, "SELECT indlaest_dato FROM meta.publikation") == [(DAYS[-1],)]


def test_the_overview_ranks_the_problem_reporters_on_top(built, tmp_path: Path) -> None:
    from pipelines.quality.report import _load, national, rank_reporters

    src, root = built
    meta = json.loads((src / "generation.json").read_text(encoding="utf-8"))
    named = collections.defaultdict(set)
    for b in meta["reporter_behaviour"]:
        named[b["reporter_kind"]].add(b["reporter"])
    assert len(named["kommune"]) == 4 and len(named["akasse"]) == 1
    res = _load(root / "dq.duckdb")
    for kind, codes in named.items():
        reps = [r for (k, _), r in res.reporters.items() if k == kind]
        ranking = rank_reporters(reps, res.days)
        top = {s.rep.code for s in ranking[:len(codes)]}
        assert top == codes, [(s.rep.code, round(s.score, 1), s.problem) for s in ranking[:8]]
    page = national(root / "dq.duckdb", tmp_path).read_text(encoding="utf-8")
    listed = re.findall(r'class="standing-row" data-kind="kommune" data-code="(\d+)"', page)
    assert set(listed[:4]) == named["kommune"]


def test_the_one_pass_rebuild_equals_the_nightly_loads_with_the_corrections(built, tmp_path) -> None:
    """``dsdw warehouse rebuild`` over the six nights: the payloads the corrections superseded are read from the
    lake's archive, and every table equals the nightly-built warehouse (rebuild.nightly_differences: every column
    but the night that last recomputed a row; the facts and current states to the checksum)."""
    from pipelines.contracts import load_contracts
    from pipelines.warehouse.checks import lake_ledger_checks
    from pipelines.warehouse.generate import fct_name, is_restricted
    from pipelines.warehouse.rebuild import load_plan, nightly_differences, rebuild, table_checksums

    _src, root = built
    plan = load_plan(root)
    archived = [p for p in plan.payloads if p["archived"]]
    assert plan.source == "warehouse" and archived and len(plan.retracted) >= len(archived)
    assert all(c.passed for c in lake_ledger_checks(root))  # the archive reconciles with the ledger too
    res = rebuild(root, "duckdb", tmp_path / "rb")
    assert (res.payloads, res.loads) == (len(plan.payloads), len(DAYS))
    db = tmp_path / "rb" / "warehouse.duckdb"
    assert nightly_differences(db, published_path(root)) == {}
    sums = table_checksums(db)
    nightly = table_checksums(published_path(root), names=set(sums))
    facts = [t for t in sums if t.startswith("fct_") and t != "fct_person_week"]
    assert len(facts) > 30 and {t: sums[t] for t in facts} == {t: nightly[t] for t in facts}
    # the retracted versions are in the rebuilt history, each with the night that loaded it
    contract_facts = {fct_name(c) for c in load_contracts().values() if not is_restricted(c)}
    assert contract_facts <= set(facts)
    ids = [p["payload_id"] for p in archived]
    con = duckdb.connect(str(db), read_only=True)
    try:
        got = {t: con.execute(f"SELECT DISTINCT _payload_id, load_id FROM {t} WHERE _payload_id IN "
                              f"(SELECT unnest(?::VARCHAR[]))", [ids]).fetchall() for t in contract_facts}
    finally:
        con.close()
    want = {(p["payload_id"], p["load_id"]) for p in archived}
    assert {r for rows in got.values() for r in rows} == want

