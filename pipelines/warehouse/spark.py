"""The Spark session the ``spark`` dbt target builds in (``dsdw warehouse rebuild --target spark``).

dbt-spark's ``session`` method calls ``SparkSession.builder.getOrCreate()`` for every statement, so the
session created here first (master, memory, time zone, what the SQL must not carry) is the one dbt uses
when dbt runs in this process (``dbtRunner``). The session holds:

* ``dsdw_person(cpr, person_key)``: every CPR of the lake with HMAC-SHA256(pseudonym key, CPR), the pseudonym
  DuckDB's load computes, hashed in this process and cached in memory: the key never reaches compiled SQL, dbt's
  logs, run results or the executors (``docs/warehouse.md``, "Pseudonymisation");
* ``dsdw_lake__<dataset>``: a view per analysts' dataset over its lake Parquet, typed by the contract (a file
  written before a field was added reads it as NULL). The restricted (health) datasets get no view: they are
  never read into Spark;
* the session time zone Europe/Copenhagen (Danish dates of instants) and ANSI SQL (keyword columns are quoted
  with ``adapter.quote``: backticks here);
* local disk encryption (``spark.io.encryption.enabled``): shuffle and spill files can hold lake rows (CPR
  numbers before staging replaced them by pseudonyms), so they are encrypted with a key kept in memory.

The master comes from ``DSDW_SPARK_MASTER`` (default ``local[2]``; ``local-cluster[N,C,M]`` or a cluster URL).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sys
from functools import reduce
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.contracts import load_contracts
from pipelines.warehouse.generate import is_restricted

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import SparkSession

DEFAULT_MASTER = "local[2]"


def master_url(master: str | None = None) -> str:
    """The master URL: the argument, else ``DSDW_SPARK_MASTER``, else ``local[2]``."""
    return master or os.environ.get("DSDW_SPARK_MASTER") or DEFAULT_MASTER


def spark_conf(warehouse_dir: Path, *, shuffle_partitions: int | None = None, driver_memory: str | None = None,
               extra: dict[str, str] | None = None) -> dict[str, str]:
    """The session's configuration: small shuffles (a laptop's data; raise on a cluster or national data:
    ``DSDW_SPARK_SHUFFLE_PARTITIONS``, default 2), driver memory (``DSDW_SPARK_DRIVER_MEMORY``, default 2g), no UI,
    the models' SQL dialect (time zone, ANSI, double-quoted identifiers) and encrypted local spill files."""
    shuffle_partitions = shuffle_partitions or int(os.environ.get("DSDW_SPARK_SHUFFLE_PARTITIONS", "2"))
    driver_memory = driver_memory or os.environ.get("DSDW_SPARK_DRIVER_MEMORY", "2g")
    conf = {
        "spark.sql.warehouse.dir": str(warehouse_dir),
        "spark.sql.catalogImplementation": "in-memory",
        "spark.sql.session.timeZone": "Europe/Copenhagen",
        "spark.sql.ansi.enabled": "true",
        "spark.sql.ansi.doubleQuotedIdentifiers": "true",
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.sql.adaptive.enabled": "true",
        "spark.default.parallelism": str(shuffle_partitions),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.io.encryption.enabled": "true",
        "spark.driver.memory": driver_memory,
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.local.dir": str(Path(warehouse_dir).parent / "spark-local"),
        # a finished query's shuffle files are deleted only once the driver's garbage collector has collected its
        # plan, and with a 5g heap that waited for the 30-minute default: the 5-year rebuild's first 150 models
        # left 26 GB of them on the disk (docs/scale-out.md; bench/bench_spark_shuffle_cleanup.py)
        "spark.cleaner.periodicGC.interval": os.environ.get("DSDW_SPARK_GC_INTERVAL", "2min"),
        # a join on (person, x) of two sides already distributed by person keeps them where they are instead of
        # shuffling both by (person, x): the weekly panel's hundreds of millions of person-weeks (docs/scale-out.md)
        "spark.sql.requireAllClusterKeysForCoPartition": "false",
    }
    conf.update(extra or {})
    return conf


def spark_session(warehouse_dir: Path, master: str | None = None, **kw: Any) -> SparkSession:
    """A new (or the running) session with :func:`spark_conf`; Python workers run this interpreter."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    local = Path(warehouse_dir).parent / "spark-local"
    local.mkdir(parents=True, exist_ok=True)
    os.chmod(local, 0o700)
    builder = SparkSession.builder.master(master_url(master)).appName("dsdw-warehouse")
    for k, v in spark_conf(Path(warehouse_dir), **kw).items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def register_pseudonyms(spark: SparkSession, key: bytes, datasets: list[str]) -> int:
    """``dsdw_person(cpr, person_key)``: every CPR of the lake views with its pseudonym, cached in memory.

    The CPRs are collected once (one Spark job over the datasets' CPR columns, as Arrow) and hashed here with
    HMAC-SHA256 (:func:`pipelines.warehouse.keys.person_key`, DuckDB's dsdw_hmac of the CPR's UTF-8 bytes); the
    models look them up like DuckDB's staging looks up ``restricted.person``. The key stays in this process's
    memory: it never reaches compiled SQL, dbt's logs or the Spark executors. (A Python UDF holding the key would
    do the same per row; it cost a Python worker round trip per query and row.)

    The map goes to the JVM as an Arrow table, so it is a local relation (a recomputation after an eviction is a
    copy, not a Python worker's unpickling of 447,038 rows as a Python list was), and the models broadcast it
    (engines.sql, spark__pseudonym): a sort-merge join on the CPR shuffled and sorted every staged row once more.
    The map reaches the executors as the CPR-to-pseudonym pairs the joins need, never the key; a broadcast that
    spills to local disk is encrypted like the shuffle (``spark.io.encryption.enabled``).
    Returns the number of persons."""
    import pyarrow as pa
    from pyspark import StorageLevel
    from pyspark.sql.types import StringType, StructField, StructType

    from pipelines.contracts import get_contract

    parts = [f"SELECT {f.name} AS cpr FROM dsdw_lake__{ds} WHERE {f.name} IS NOT NULL"
             for ds in datasets for f in get_contract(ds).fields if f.type == "cpr"]
    # DISTINCT over all parts: a lone part had no UNION to deduplicate it
    cprs = (spark.sql(f"SELECT DISTINCT cpr FROM ({' UNION ALL '.join(parts)})").toArrow().column("cpr").to_pylist()
            if parts else [])
    table = pa.table({"cpr": pa.array(cprs, pa.string()),
                      "person_key": pa.array([hmac.new(key, c.encode("utf-8"), hashlib.sha256).hexdigest()
                                              for c in cprs], pa.string())})
    schema = StructType([StructField("cpr", StringType(), False), StructField("person_key", StringType(), False)])
    df = spark.createDataFrame(table, schema)
    df.persist(StorageLevel.MEMORY_ONLY).createOrReplaceTempView("dsdw_person")
    return len(cprs)


def lake_views(spark: SparkSession, root: Path) -> list[str]:
    """``dsdw_lake__<dataset>`` for every analysts' dataset: its lake Parquet with the contract's schema."""
    from pyspark.sql.pandas.types import from_arrow_schema

    from pipelines.lake.schema import arrow_schema
    from pipelines.lake.write import ARCHIVE_DIR

    names = []
    for c in load_contracts().values():
        if is_restricted(c):
            continue
        schema = from_arrow_schema(arrow_schema(c))
        # the dataset's directory, not a list of files (Spark lists many paths with a job of its own), and its part
        # of the lake's archive (superseded payloads, ingest.archive_payload_files): the models take the payloads
        # of meta.load_plan (a rebuild) or meta.load_increment (a night, never an archived one) from these rows
        # (two roots of one partitioning: Spark refuses them in one read, so each is read and the two unioned)
        parts = [spark.read.schema(schema).parquet(str(d)).select(*schema.fieldNames())
                 for d in (Path(root) / "lake" / c.dataset, Path(root) / "lake" / ARCHIVE_DIR / c.dataset)
                 if any(d.glob("*/*.parquet"))]
        df = reduce(lambda x, y: x.unionByName(y), parts) if parts else spark.createDataFrame([], schema)
        df.createOrReplaceTempView(f"dsdw_lake__{c.dataset}")
        names.append(c.dataset)
    return names


def reference_views(spark: SparkSession, reference_dir: Path | None = None) -> list[str]:
    """``dsdw_ref__<name>`` for every code list ``data/reference/<name>.csv``: every column a string, as DuckDB's
    ``read_csv(all_varchar = true)`` gives the models (macro reference_csv)."""
    import pyarrow.csv as pacsv

    from pipelines.contracts import REFERENCE_DIR

    names = []
    for p in sorted(Path(reference_dir or REFERENCE_DIR).glob("*.csv")):
        header = pacsv.read_csv(p, read_options=pacsv.ReadOptions(block_size=1 << 20)).column_names
        t = pacsv.read_csv(p, convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(header, "string"),
                                                                    strings_can_be_null=True))
        spark.createDataFrame(t).createOrReplaceTempView(f"dsdw_ref__{p.stem}")
        names.append(p.stem)
    return names


def write_tables(spark: SparkSession, schema: str, tables: dict[str, pa.Table]) -> None:
    """Arrow tables as Parquet tables ``<schema>.<name>`` of the session's catalog (the load's meta tables)."""
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {schema}")
    for name, t in tables.items():
        spark.sql(f"DROP TABLE IF EXISTS {schema}.{name}")
        spark.createDataFrame(t).write.format("parquet").mode("overwrite").saveAsTable(f"{schema}.{name}")


def table_location(warehouse_dir: Path, schema: str, table: str) -> Path:
    """Where a model's Parquet files are: ``<warehouse dir>/<schema>.db/<table>`` (``default`` has no .db)."""
    base = Path(warehouse_dir)
    return (base if schema == "default" else base / f"{schema}.db") / table


def stop(spark: SparkSession | None = None) -> None:
    """Stop the session (its JVM stays for the process; a new session can be created after)."""
    from pyspark.sql import SparkSession

    s = spark or SparkSession.getActiveSession()
    if s is not None:
        s.stop()


def compare_with_duckdb(spark: SparkSession, duckdb_path: Path, models: list[str],
                        warehouse_dir: Path | None = None) -> dict[str, tuple[int, int, int]]:
    """Row-for-row comparison of Spark's models with the same models of a DuckDB database.

    Per model ``(rows in DuckDB, rows in Spark, rows in one but not the other)`` (multisets: EXCEPT ALL both
    ways, on the DuckDB side's columns, types reconciled by DuckDB). A model missing on one side raises. Tables
    are read from the Parquet files Spark wrote (under ``warehouse_dir``: what a rebuild leaves behind, and no
    Spark job per table); views through the session.
    """
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"ATTACH '{duckdb_path}' AS d (READ_ONLY)")
    where = {n: s for s, n in con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'd' UNION ALL "
        "SELECT schema_name, view_name FROM duckdb_views() WHERE database_name = 'd' AND NOT internal").fetchall()}
    out: dict[str, tuple[int, int, int]] = {}
    try:
        for m in models:
            if m not in where:
                raise KeyError(f"{m}: not in {duckdb_path}")
            schema = where[m]
            cols = [r[0] for r in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE database_name = 'd' AND schema_name = ? "
                "AND table_name = ? ORDER BY column_index", [schema, m]).fetchall()]
            sel = ", ".join(f'"{c}"' for c in cols)
            loc = table_location(warehouse_dir, schema, m) if warehouse_dir else None
            if loc is not None and loc.is_dir() and any(loc.glob("*.parquet")):
                con.execute(f"CREATE OR REPLACE TEMP VIEW s_rows AS SELECT * FROM read_parquet('{loc}/*.parquet')")
            else:
                con.register("s_arrow", spark.table(f"{schema}.{m}").select(*cols).toArrow())
                con.execute("CREATE OR REPLACE TEMP VIEW s_rows AS SELECT * FROM s_arrow")
            n_d = con.execute(f"SELECT count(*) FROM d.{schema}.{m}").fetchall()[0][0]
            n_s = con.execute("SELECT count(*) FROM s_rows").fetchall()[0][0]
            diff = con.execute(f"SELECT count(*) FROM ((SELECT {sel} FROM d.{schema}.{m} EXCEPT ALL SELECT {sel} FROM "
                               f"s_rows) UNION ALL (SELECT {sel} FROM s_rows EXCEPT ALL SELECT {sel} FROM "
                               f"d.{schema}.{m}))").fetchall()[0][0]
            out[m] = (n_d, n_s, diff)
    finally:
        con.close()
    return out
