"""Spark staging models before and after the person-map fix, in one session on one lake (issue #15).

Sets up the session as ``dsdw warehouse rebuild --target spark`` does (pipelines/warehouse/rebuild.py:
rebuild_spark: lake views, the person map, the meta tables, the code lists), compiles the selected staging models
with dbt (``full_lake``), and runs each model's SQL into Spark's ``noop`` sink (every row computed, nothing
written) in two forms:

* ``before``: the person map as the runner built it until 2026-12-04 (``createDataFrame`` of a Python list: an RDD
  of pickled rows) and the lookup without the broadcast hint (a sort-merge join on the CPR);
* ``after``: the map and the lookup as they are now (:func:`pipelines.warehouse.spark.register_pseudonyms`,
  engines.sql ``spark__pseudonym``: an Arrow-built local relation, broadcast).

Per model and form: wall seconds, the JVM's CPU seconds (``/proc/<pid>/stat``, the machine is shared) and the load
average; the physical plans' joins. Results: ``bench/results/spark_staging_<time>.json``.

    PYTHONPATH=. nice -n 19 python bench/bench_spark_staging.py --root /tmp/s9_spark/lake/national \\
        --work /tmp/s11_spark/bench --master 'local[1]' stg_jobcenter__cv_samtale stg_akasse__akasse_tilmelding
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import machine_info  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
HINTED = re.compile(r"\(SELECT /\*\+ BROADCAST\(p\) \*/ max\(p\.person_key\) FROM dsdw_person p WHERE")


def before_sql(sql: str) -> str:
    """The model as compiled before the fix: no hint, the list-built map (``dsdw_person_list``)."""
    out, n = HINTED.subn("(SELECT max(p.person_key) FROM dsdw_person_list p WHERE", sql)
    if not n and "dsdw_person" in sql:
        raise ValueError("the compiled lookup is not spark__pseudonym's: update HINTED")
    return out


def no_lookup(sql: str) -> str:
    """A lower bound: the model without the person lookup (a NULL pseudonym), what the rest of it costs."""
    return re.sub(HINTED.pattern + r" p\.cpr = [\w.]+\)", "CAST(NULL AS STRING)", sql)


def list_map(spark, key: bytes, cprs: list[str]) -> None:
    """The former map: a Python list through ``createDataFrame`` (pickled rows), cached in memory."""
    from pyspark import StorageLevel
    from pyspark.sql.types import StringType, StructField, StructType

    schema = StructType([StructField("cpr", StringType(), False), StructField("person_key", StringType(), False)])
    df = spark.createDataFrame([(c, hmac.new(key, c.encode("utf-8"), hashlib.sha256).hexdigest()) for c in cprs],
                               schema)
    df.persist(StorageLevel.MEMORY_ONLY).createOrReplaceTempView("dsdw_person_list")
    df.count()


def joins(plan: str) -> list[str]:
    return re.findall(r"(BroadcastHashJoin \S+ \S+|SortMergeJoin \S+|BroadcastNestedLoopJoin \S+ \S+) \(", plan)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", help="staging models to time")
    ap.add_argument("--root", type=Path, required=True, help="zones with a lake (read only)")
    ap.add_argument("--work", type=Path, help="scratch directory (default: a temp dir)")
    ap.add_argument("--master", default="local[1]")
    ap.add_argument("--driver-memory", default="5g")
    ap.add_argument("--forms", default="before,after", help="before, after, nolookup (comma-separated); "
                    "FORM@KEY=VALUE sets a Spark SQL setting for that run")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="dsdw-bench-spark-staging-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DSDW_KEY_DIR", str(work / "keys"))
    from pipelines.warehouse import rebuild as R
    from pipelines.warehouse import spark as S
    from pipelines.warehouse.keys import ensure_key, load_key

    ensure_key("pseudonym")
    key = load_key("pseudonym")
    shutil.rmtree(work / "tables", ignore_errors=True)
    steps: dict[str, float] = {}
    t = time.perf_counter()
    plan = R.load_plan(args.root)
    spark = S.spark_session(work / "tables", args.master, driver_memory=args.driver_memory)
    pid = spark.sparkContext._gateway.proc.pid

    def jvm_cpu() -> float:
        f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

    datasets = S.lake_views(spark, args.root)
    steps["session_and_lake_views"] = time.perf_counter() - t
    t, c = time.perf_counter(), jvm_cpu()
    persons = S.register_pseudonyms(spark, key, datasets)
    spark.table("dsdw_person").count()
    steps["person_map_after"], steps["person_map_after_jvm_cpu"] = time.perf_counter() - t, jvm_cpu() - c
    if "before" in args.forms:
        t, c = time.perf_counter(), jvm_cpu()
        list_map(spark, key, [r[0] for r in spark.table("dsdw_person").select("cpr").collect()])
        steps["person_map_before_build"] = time.perf_counter() - t
        steps["person_map_before_build_jvm_cpu"] = jvm_cpu() - c
    S.write_tables(spark, "meta", {"loaded_payload": R.LOADED_PAYLOAD_SCHEMA.empty_table(), **plan.tables(),
                                   "load": R.LOAD_SCHEMA.empty_table(), "model_run": R.MODEL_RUN_SCHEMA.empty_table()})
    S.reference_views(spark)
    print("setup", {k: round(v, 1) for k, v in steps.items()}, "persons", persons, flush=True)

    from dbt.cli.main import dbtRunner

    from pipelines.warehouse.dbt_runner import PROJECT_DIR, _env

    tp = work / "dbt_target"
    with _env({"DSDW_SPARK_MASTER": args.master, "DSDW_LAKE": str(args.root / "lake"), "DSDW_SPARK_THREADS": "1",
               "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}):
        res = dbtRunner().invoke(["compile", "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
                                  "--target", "spark", "--target-path", str(tp), "--log-path", str(tp), "--quiet",
                                  "--vars", json.dumps({"full_lake": True}), "--select", *args.models])
    if not res.success:
        raise SystemExit(f"dbt compile failed: {res.exception}")
    runs: dict[str, dict] = {}
    for m in args.models:
        sql = "\n".join(line for line in next(tp.rglob(f"{m}.sql")).read_text().splitlines()
                        if not line.lstrip().startswith("--"))
        for form in args.forms.split(","):
            base, _, conf = form.partition("@")  # e.g. after@spark.sql.shuffle.partitions=16: a setting for this run
            q = {"before": before_sql, "after": str, "nolookup": no_lookup}[base](sql)
            if conf:
                saved = spark.conf.get(conf.split("=", 1)[0], None)
                spark.conf.set(*conf.split("=", 1))
            explain = "\n".join(r[0] for r in spark.sql("EXPLAIN FORMATTED " + q).collect())
            load0 = os.getloadavg()[0]
            t, c = time.perf_counter(), jvm_cpu()
            spark.sql(q).write.format("noop").mode("overwrite").save()
            r = {"wall_s": round(time.perf_counter() - t, 2), "jvm_cpu_s": round(jvm_cpu() - c, 2),
                 "load_before": round(load0, 2), "load_after": round(os.getloadavg()[0], 2), "joins": joins(explain)}
            if conf:  # back to the session's value (unset would fall back to Spark's default, not the session's)
                if saved is None:
                    spark.conf.unset(conf.split("=", 1)[0])
                else:
                    spark.conf.set(conf.split("=", 1)[0], saved)
            runs[f"{m}:{form}"] = r
            print(m, form, r, flush=True)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"spark_staging_{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}.json"
    import pyspark

    path.write_text(json.dumps({
        "benchmark": "spark_staging", "root": str(args.root), "master": args.master,
        "driver_memory": args.driver_memory, "nice": os.nice(0), "persons": persons,
        "setup_seconds": {k: round(v, 2) for k, v in steps.items()}, "runs": runs,
        "load_average_at_end": os.getloadavg(),
        "machine": machine_info(pyspark=pyspark.__version__)}, indent=1), encoding="utf-8")
    print(path)
    S.stop(spark)


if __name__ == "__main__":
    main()
