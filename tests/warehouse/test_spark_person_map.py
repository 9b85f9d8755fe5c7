"""Spark's person map (``dsdw_person``) and the staging models' lookup in it (engines.sql, spark__pseudonym).

At national scale the lookup decided the staging stage's time (bench/bench_spark_staging.py): the map built from a
Python list was recomputed through Python workers, and the correlated subquery became a sort-merge join that
shuffled and sorted every staged row by CPR. These tests hold the map to Arrow (a local relation) and the lookup to
a broadcast hash join even when the map is above Spark's broadcast threshold, with the same pseudonyms.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipelines.warehouse.keys import person_key

pytest.importorskip("pyspark")

MACROS = Path(__file__).parents[2] / "warehouse" / "dbt" / "macros" / "engines.sql"
KEY = bytes(range(32))
# three persons, one of them twice, and a row without a CPR (no pseudonym)
CPRS = ["0101901234", "0202802345", "0303703456", "0101901234", None]


def _pseudonym_sql(col: str) -> str:
    """The Spark macro's SQL for ``col``, read from engines.sql as dbt renders it."""
    body = re.search(r"{% macro spark__pseudonym\(col\) -%}\n(.*?)\n{%- endmacro %}", MACROS.read_text(), re.S)
    assert body, "spark__pseudonym not found in engines.sql"
    return body.group(1).replace("{{ col }}", col)


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    from pipelines.warehouse import spark as S

    s = S.spark_session(tmp_path_factory.mktemp("spark") / "tables", "local[1]", shuffle_partitions=2)
    s.createDataFrame([(f"b{i}", c) for i, c in enumerate(CPRS)], "besked_id string, cpr string"
                      ).createOrReplaceTempView("dsdw_lake__kontaktgruppe")
    yield s
    S.stop(s)


def test_the_person_map_holds_each_cpr_with_its_hmac_as_a_local_relation(session):
    from pipelines.warehouse import spark as S

    assert S.register_pseudonyms(session, KEY, ["kontaktgruppe"]) == 3
    got = sorted(tuple(r) for r in session.table("dsdw_person").collect())
    assert got == sorted((c, person_key(c, KEY)) for c in {c for c in CPRS if c})
    # built from Arrow: a copy in the JVM, not an RDD of pickled rows a Python worker must recompute
    plan = session.table("dsdw_person")._jdf.queryExecution().optimizedPlan().toString()
    assert "InMemoryRelation" in plan and "LocalTableScan" in plan and "ExistingRDD" not in plan, plan


def test_the_lookup_is_a_broadcast_hash_join_above_the_broadcast_threshold(session):
    from pipelines.warehouse import spark as S

    S.register_pseudonyms(session, KEY, ["kontaktgruppe"])
    sql = (f"SELECT inc.besked_id, {_pseudonym_sql('inc.cpr')} AS person_key "
           "FROM dsdw_lake__kontaktgruppe AS inc")
    # the national map (447,038 persons) is above the 10 MB threshold; here no size is below -1
    session.conf.set("spark.sql.autoBroadcastJoinThreshold", "-1")
    try:
        plan = "\n".join(r[0] for r in session.sql("EXPLAIN " + sql).collect())
        rows = dict(tuple(r) for r in session.sql(sql).collect())
    finally:
        session.conf.unset("spark.sql.autoBroadcastJoinThreshold")
    assert re.search(r"BroadcastHashJoin \[cpr#\d+\], \[cpr#\d+\], LeftOuter, BuildRight", plan), plan
    assert "SortMergeJoin" not in plan and "BroadcastNestedLoopJoin" not in plan, plan
    assert rows == {f"b{i}": (person_key(c, KEY) if c else None) for i, c in enumerate(CPRS)}
