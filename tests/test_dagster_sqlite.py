"""The demo's pooled SQLite storages write what the stock storages (``dagster dev``) read: runs created from
the template shard hold their own events, materializations, check results and partitions.

Top-level: it mirrors the top-level module ``pipelines/dagster_sqlite.py``.
"""

from pathlib import Path

import dagster as dg

from pipelines.demo import dagster_home, open_instance

PART = dg.StaticPartitionsDefinition(["a", "b"])


@dg.asset(partitions_def=PART, check_specs=[dg.AssetCheckSpec("positive", asset="thing")])
def thing(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    n = {"a": 1, "b": -2}[context.partition_key]
    return dg.MaterializeResult(metadata={"n": n}, check_results=[dg.AssetCheckResult(passed=n > 0)])


def test_runs_on_copied_shards_read_back_through_the_stock_storage(tmp_path: Path) -> None:
    home = dagster_home(tmp_path)
    inst = open_instance(home)
    job = dg.Definitions(assets=[thing]).resolve_implicit_global_asset_job_def()
    runs = [job.execute_in_process(instance=inst, partition_key=p).run_id for p in ("a", "b", "a")]
    assert len(set(runs)) == 3
    stock_home = tmp_path / "stock"  # the stock classes on the same files, as `dagster dev` would read them
    stock_home.mkdir()
    (stock_home / "dagster.yaml").write_text(f"""\
run_storage:
  module: dagster._core.storage.runs
  class: SqliteRunStorage
  config: {{base_dir: {home}/history/}}
event_log_storage:
  module: dagster._core.storage.event_log
  class: SqliteEventLogStorage
  config: {{base_dir: {home}/history/runs/}}
telemetry: {{enabled: false}}
""", encoding="utf-8")
    stock = dg.DagsterInstance.from_config(str(stock_home))
    key = dg.AssetKey("thing")
    assert stock.get_materialized_partitions(key) == {"a", "b"}
    for run_id, n in zip(runs, (1, -2, 1), strict=True):
        mats = stock.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
        assert [m.asset_materialization.metadata["n"].value for m in mats] == [n]  # each run: its own events only
    check = stock.event_log_storage.get_latest_asset_check_execution_by_key([dg.AssetCheckKey(key, "positive")])
    rec = check[dg.AssetCheckKey(key, "positive")]
    assert rec.run_id == runs[-1] and rec.evaluation.passed
    assert [r.run_id for r in stock.get_runs()] == runs[::-1]
