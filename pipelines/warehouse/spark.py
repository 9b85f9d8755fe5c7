"""The Spark session the ``spark`` dbt target builds in (``dsdw warehouse rebuild --target spark``).

dbt-spark's ``session`` method calls ``SparkSession.builder.getOrCreate()`` for every statement, so the
session created here first (master, memory, time zone, what the SQL must not carry) is the one dbt uses
when dbt runs in this process (``dbtRunner``). The session holds:

* ``dsdw_pseudonym(cpr)``: HMAC-SHA256(pseudonym key, CPR) as hex, the same pseudonym DuckDB's load computes.
  A Python function whose closure holds the key in memory: the key never reaches compiled SQL, dbt's logs or
  run results (``docs/warehouse.md``, "Pseudonymisation");
* ``dsdw_lake__<dataset>``: a view per analysts' dataset over its lake Parquet, typed by the contract (a file
  written before a field was added reads it as NULL). The restricted (health) datasets get no view: they are
  never read into Spark;
* the session time zone Europe/Copenhagen (Danish dates of instants) and ANSI SQL with double-quoted
  identifiers (the models quote keywords the standard way);
* local disk encryption (``spark.io.encryption.enabled``): shuffle and spill files can hold lake rows (CPR
  numbers before staging replaced them by pseudonyms), so they are encrypted with a key kept in memory.

The master comes from ``DSDW_SPARK_MASTER`` (default ``local[2]``; ``local-cluster[N,C,M]`` or a cluster URL).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sys
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


def spark_conf(warehouse_dir: Path, *, shuffle_partitions: int = 2, driver_memory: str = "2g",
               extra: dict[str, str] | None = None) -> dict[str, str]:
    """The session's configuration: small shuffles (a laptop's data; raise on a cluster), no UI, the
    models' SQL dialect (time zone, ANSI, double-quoted identifiers) and encrypted local spill files."""
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


def register_pseudonym(spark: SparkSession, key: bytes) -> None:
    """``dsdw_pseudonym(cpr)`` in the session: :func:`pipelines.warehouse.keys.person_key` (DuckDB's dsdw_hmac
    of the CPR's UTF-8 bytes); the key stays in the function's closure, in memory."""
    from pyspark.sql.functions import udf
    from pyspark.sql.types import StringType

    def _hmac(cpr: str | None) -> str | None:
        return None if cpr is None else hmac.new(key, cpr.encode("utf-8"), hashlib.sha256).hexdigest()

    spark.udf.register("dsdw_pseudonym", udf(_hmac, StringType(), useArrow=True))


def lake_views(spark: SparkSession, root: Path) -> list[str]:
    """``dsdw_lake__<dataset>`` for every analysts' dataset: its lake Parquet with the contract's schema."""
    from pyspark.sql.pandas.types import from_arrow_schema

    from pipelines.lake.schema import arrow_schema

    names = []
    for c in load_contracts().values():
        if is_restricted(c):
            continue
        schema = from_arrow_schema(arrow_schema(c))
        path = Path(root) / "lake" / c.dataset
        files = list(path.glob("*/*.parquet")) if path.is_dir() else []
        df = (spark.read.schema(schema).option("basePath", str(path)).parquet(*[str(f) for f in sorted(files)])
              if files else spark.createDataFrame([], schema))
        df.select(*schema.fieldNames()).createOrReplaceTempView(f"dsdw_lake__{c.dataset}")
        names.append(c.dataset)
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
