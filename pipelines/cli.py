"""The ``dsdw`` command: a thin shell over the same functions the Dagster assets call."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(help="dsdw: statistical data warehouse for the Danish employment area (BEK 912/2015).",
                  no_args_is_help=True)
sources_app = typer.Typer(help="The simulated source systems (webservice, FTP, portal export, file drops).",
                          no_args_is_help=True)
app.add_typer(sources_app, name="sources")
warehouse_app = typer.Typer(help="The pseudonymised DuckDB warehouse (star schema, bitemporal facts, marts).",
                            no_args_is_help=True)
app.add_typer(warehouse_app, name="warehouse")
deliveries_app = typer.Typer(help="Videregivelser efter BEK 912/2015 (§§ 39, 41-42, 60-66, 75, 78, 86-87, 91): "
                                  "what went to whom and when.", invoke_without_command=True)
app.add_typer(deliveries_app, name="deliveries")
keys_app = typer.Typer(help="Keys of the restricted zone (pseudonym, restricted database).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
from pipelines.api.cli import app as api_app  # noqa: E402 - dsdw api serve
from pipelines.governance.cli import governance_app, testdata_app  # noqa: E402 - §§ 5-6, 8-11

app.add_typer(governance_app, name="governance")
app.add_typer(testdata_app, name="testdata")
app.add_typer(api_app, name="api")
# a pipe or CI log gets wide tables instead of 80 columns of truncated names
console = Console(width=None if sys.stdout.isatty() else 160)


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


@app.command()
def contracts(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Every dataset with reporter, channel, fields and rules with § references."""
    from pipelines.contracts import load_contracts

    cs = load_contracts()
    if as_json:
        out = []
        for c in cs.values():
            out.append({
                "dataset": c.dataset, "title": c.title, "chapter": c.chapter, "legal_basis": c.legal_basis,
                "reporter": c.reporter, "channel": c.channel, "channel_paragraph": c.channel_paragraph,
                "record_key": list(c.record_key), "event_time": c.event_time,
                "registration_time": c.registration_time, "change_types": list(c.change_types),
                "personkreds": {"kontaktgrupper": list(c.personkreds.kontaktgrupper),
                                "person_groups": list(c.personkreds.person_groups),
                                "min_age": c.personkreds.min_age, "max_age": c.personkreds.max_age,
                                "paragraph": c.personkreds.paragraph},
                "fields": [{"name": f.name, "type": f.type, "required": f.required, "pii": f.pii,
                            "codelist": f.codelist, "paragraph": f.paragraph, "envelope": f.is_envelope}
                           for f in c.all_fields],
                "rules": [{"id": r.id, "kind": r.kind, "paragraph": r.paragraph, "severity": r.severity,
                           "text_da": r.text_da, "text_en": r.text_en} for r in c.rules],
            })
        typer.echo(json.dumps(out, ensure_ascii=False, indent=1))
        return
    t = Table(title=f"{len(cs)} datasets (BEK nr 912 af 17/07/2015)")
    for col in ("dataset", "kap.", "reporter", "channel", "fields", "rules", "§"):
        t.add_column(col)
    for c in cs.values():
        t.add_row(c.dataset, c.chapter, c.reporter, c.channel, str(len(c.fields)), str(len(c.rules)),
                  c.legal_basis)
    console.print(t)


@app.command()
def generate(
    scale: str = typer.Option("demo", help="tiny | demo | national"),
    start: str = typer.Option("2026-10-01", help="First day (YYYY-MM-DD)."),
    days: int = typer.Option(14, min=1, help="Number of days."),
    seed: int = typer.Option(1, help="Seed: same seed, byte-identical output."),
    out: Path = typer.Option(Path("data/sources"), help="Output directory."),
    defect_rate: float | None = typer.Option(None, help="Share of records with a deliberate defect."),
) -> None:
    """Write every reporter's payloads and the ground-truth file under OUT."""
    _generate(scale, _date(start), days, seed, out, defect_rate)


def _generate(scale: str, start: dt.date, days: int, seed: int, out: Path, defect_rate: float | None):
    from pipelines.simulate.generate import generate as run

    t0 = time.perf_counter()
    with Progress(TextColumn("[bold]generate[/]"), BarColumn(), TextColumn("{task.completed}/{task.total} days"),
                  TimeElapsedColumn(), console=console, transient=False) as prog:
        task = prog.add_task("days", total=days)
        res = run(out, scale=scale, start=start, days=days, seed=seed, defect_rate=defect_rate,
                  progress=lambda _d: prog.advance(task))
    secs = time.perf_counter() - t0
    _print_counts(res.counts)
    console.print(f"{res.records:,} records from {res.persons:,} persons, {res.defects:,} ground-truth "
                  f"defect rows, in {secs:.1f} s -> {out}")
    return res


def _print_counts(counts: dict[str, dict[str, dict[str, int]]]) -> None:
    t = Table(title="Records per source and dataset")
    t.add_column("channel")
    t.add_column("dataset")
    t.add_column("records", justify="right")
    t.add_column("days", justify="right")
    for ch in sorted(counts):
        for ds in sorted(counts[ch]):
            per_day = counts[ch][ds]
            t.add_row(ch, ds, f"{sum(per_day.values()):,}", str(len(per_day)))
    console.print(t)


@sources_app.command("serve")
def sources_serve(
    data: Path = typer.Option(..., help="Directory written by `dsdw generate`."),
    host: str = typer.Option("127.0.0.1", help="Loopback address to bind."),
    http_port: int = typer.Option(0, help="Webservice port (0 = any free port)."),
    ftp_port: int = typer.Option(0, help="FTP port (0 = any free port)."),
    state_file: Path | None = typer.Option(None, help="Write the addresses as JSON here while serving."),
) -> None:
    """Serve the generated payloads: webservice (HTTP JSON), FTP, portal export and file drops."""
    from pipelines.simulate.servers import serve_forever

    if not (data / "generation.json").exists():
        raise typer.BadParameter(f"{data} holds no generated sources (no generation.json); run `dsdw generate`")
    serve_forever(data, host=host, http_port=http_port, ftp_port=ftp_port, state_file=state_file)


def _days(date: str | None, date_from: str | None, date_to: str | None) -> list[dt.date]:
    if date and (date_from or date_to):
        raise typer.BadParameter("give --date or --from/--to, not both")
    if date:
        return [_date(date)]
    if not (date_from and date_to):
        raise typer.BadParameter("give --date D or --from D1 --to D2")
    a, b = _date(date_from), _date(date_to)
    if b < a:
        raise typer.BadParameter("--to is before --from")
    return [a + dt.timedelta(days=k) for k in range((b - a).days + 1)]


@app.command()
def load(
    date: str | None = typer.Option(None, "--date", help="Delivery day to load (YYYY-MM-DD)."),
    date_from: str | None = typer.Option(None, "--from", help="First delivery day of a range."),
    date_to: str | None = typer.Option(None, "--to", help="Last delivery day of a range."),
    root: Path = typer.Option(Path("data/demo/pipeline"), help="Zones: landing, lake, ledger."),
    sources: Path = typer.Option(Path("data/demo/sources.json"), help="Source systems (serve --state-file)."),
    dataset: list[str] | None = typer.Option(None, help="Only these datasets (repeatable)."),
    engine: str = typer.Option("dagster", help="dagster (in-process run of the assets) | direct"),
    received_at: str | None = typer.Option(None, help="Logical receive time stamped in the ledger (ISO 8601); "
                                                      "default now. A rerun with the same value reproduces the ledger."),
    workers: int = typer.Option(1, min=1, help="Processes for --engine direct (datasets in parallel)."),
) -> None:
    """Run the ingestion assets for one day or a range (backfill), in-process."""
    days = _days(date, date_from, date_to)
    res = _load(days, root, sources, dataset, engine, received_at, workers)
    _print_load(res)
    unaccounted = _print_accounts(days, root, sources) if not dataset else 0
    if any(r.failures for r in res) or unaccounted:
        raise typer.Exit(1)


def _load(days: list[dt.date], root: Path, sources: Path, datasets: list[str] | None, engine: str,
          received_at: str | None = None, workers: int = 1):
    from pipelines.load import load_days_dagster, load_days_direct

    if engine not in ("dagster", "direct"):
        raise typer.BadParameter("engine must be dagster or direct")
    if not sources.exists():
        raise typer.BadParameter(f"{sources} does not exist: start the sources with "
                                 f"`dsdw sources serve --data DIR --state-file {sources}`")
    results = []
    with Progress(TextColumn("[bold]load[/] {task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total} days"), TimeElapsedColumn(), console=console) as prog:
        task = prog.add_task("", total=len(days))
        for day in days:
            prog.update(task, description=day.isoformat())
            if engine == "direct":
                results.extend(load_days_direct([day], root, sources, datasets, received_at, workers))
            else:
                results.extend(load_days_dagster([day], root, sources, datasets, received_at))
            prog.advance(task)
    return results


def _print_load(rows) -> None:
    from collections import Counter, defaultdict

    agg: dict = defaultdict(lambda: {"payloads": 0, "accepted": 0, "quarantined": 0, "kinds": Counter(),
                                     "failed": 0, "unknown": 0})
    for r in rows:
        a = agg[(r.channel, r.dataset)]
        a["payloads"] += r.payloads
        a["accepted"] += r.accepted
        a["quarantined"] += r.quarantined
        a["failed"] += len(r.failures)
        a["kinds"].update(r.kinds)
        a["unknown"] += r.unknown_changes
    t = Table(title="Ingestion: payloads and rows per source and dataset")
    numeric = ("payloads", "accepted", "quarantined", "changes of unknown records", "failed")
    for col in ("channel", "dataset", "payloads", "accepted", "quarantined", "quarantined by error kind",
                "changes of unknown records", "failed"):
        t.add_column(col, justify="right" if col in numeric else "left")
    for (ch, ds), a in sorted(agg.items()):
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(a["kinds"].items()))
        t.add_row(ch, ds, f"{a['payloads']:,}", f"{a['accepted']:,}", f"{a['quarantined']:,}", kinds,
                  f"{a['unknown']:,}" if a["unknown"] else "", str(a["failed"]) if a["failed"] else "")
    console.print(t)
    from rich.markup import escape

    for r in rows:
        for who, err in r.failures:  # errors carry '[channel=... reporter=...]': never read as markup
            console.print(f"[red]FAILED[/] {escape(f'{r.dataset} {r.day} {who}: {err}')}")
        for name, status, reason in getattr(r, "refused", []):
            console.print(f"[yellow]{status.upper()}[/] {escape(f'{r.dataset} {r.day} {name!r}: {reason}')}")


def _print_accounts(days: list[dt.date], root: Path, sources: Path) -> int:
    """Files offered by each channel against ledger rows, per day; returns the number unaccounted."""
    from rich.markup import escape

    from pipelines.ingest import SourcesConfig, Zones, account_day

    cfg = SourcesConfig.from_file(sources)
    t = Table(title="Reconciliation: entries offered per channel and day against ledger rows")
    for col in ("day", "channel", "offered", "ledger rows by status", "unaccounted"):
        t.add_column(col, justify="right" if col in ("offered", "unaccounted") else "left")
    missing = 0
    lines = []
    for day in days:
        for a in account_day(day, Zones(root), cfg):
            missing += len(a.unaccounted)
            t.add_row(day.isoformat(), a.channel, str(a.offered),
                      ", ".join(f"{k} {v}" for k, v in sorted(a.by_status.items())), str(len(a.unaccounted)))
            lines += [f"[red]UNACCOUNTED[/] {escape(f'{day} {a.channel}: {u!r}')}" for u in a.unaccounted[:20]]
            lines += [f"[yellow]IN PROGRESS[/] {escape(f'{day} {a.channel}: {u!r}')} (hidden or temporary name, no "
                      ".done marker, or still changing: not read until complete)" for u in a.in_progress[:20]]
    console.print(t)
    for line in lines:
        console.print(line)
    return missing


@app.command()
def quality(
    date: str | None = typer.Option(None, "--date", help="Delivery day (YYYY-MM-DD)."),
    date_from: str | None = typer.Option(None, "--from", help="First delivery day of a range."),
    date_to: str | None = typer.Option(None, "--to", help="Last delivery day of a range."),
    root: Path = typer.Option(Path("data/demo/pipeline"), help="Zones: lake, dq results, reports."),
    reports: bool = typer.Option(True, help="Also build the HTML reports."),
    data_docs: bool = typer.Option(False, help="Also build GX Data Docs for the last day (GX pandas path)."),
) -> None:
    """Run every check (GX suites + the contracts' § rules) and publish results and reports."""
    days = _days(date, date_from, date_to)
    _quality(days, root, reports)
    if data_docs:
        from pipelines.quality.datadocs import build_data_docs

        with console.status("[bold]GX Data Docs[/] …"):
            site = build_data_docs(root, days[-1])
        console.print(f"GX Data Docs: {site}")


def _quality(days: list[dt.date], root: Path, reports: bool = True) -> Path | None:
    from pipelines.quality.results import publish, run_quality

    t0 = time.perf_counter()
    with console.status("[bold]quality checks[/] …"):
        run = run_quality(root, days, workers=min(2, os.cpu_count() or 1))
        db = publish(run, root, days)
    _print_quality(run)
    console.print(f"Quality results: {db} (dq_results, dq_timeliness, dq_completeness), "
                  f"per-record failures: {root / 'dq_failures.parquet'} ({time.perf_counter() - t0:.1f} s)")
    if reports:
        from pipelines.quality.report import build_reports

        idx = build_reports(db, root / "reports")
        console.print(f"Data-quality reports: {idx.index} ({len(idx.kommuner)} kommuner, {len(idx.akasser)} a-kasser)")
    return db


def _print_quality(run) -> None:
    from collections import defaultdict

    agg: dict = defaultdict(lambda: [0, 0, "", ""])
    for r in run.results:
        a = agg[(r["rule_id"], r["paragraph"], r["severity"])]
        a[0] += r["records_checked"]
        a[1] += r["records_failed"]
    t = Table(title="Rules with failures (all reporters)")
    for col in ("rule", "§", "severity", "checked", "failed"):
        t.add_column(col, justify="right" if col in ("checked", "failed") else "left")
    for (rid, para, sev), (checked, failed, _, _) in sorted(agg.items(), key=lambda kv: -kv[1][1]):
        if failed:
            t.add_row(rid, para, sev, f"{checked:,}", f"{failed:,}")
    console.print(t)


@app.command()
def report(
    kommune: str | None = typer.Option(None, help="Kommunekode, e.g. 101."),
    akasse: str | None = typer.Option(None, help="A-kassekode, e.g. 067."),
    root: Path = typer.Option(Path("data/demo/pipeline"), help="Where dq.duckdb and reports/ live."),
    open_browser: bool = typer.Option(False, "--open", help="Open the page in a browser."),
) -> None:
    """Build (if needed) and print the path of one reporter's data-quality report, or the overview."""
    from pipelines.quality.report import national, render_reporter

    db = root / "dq.duckdb"
    if not db.exists():
        raise typer.BadParameter(f"no quality results at {db}: run `dsdw quality` first")
    if kommune and akasse:
        raise typer.BadParameter("give --kommune or --akasse, not both")
    out = root / "reports"
    if kommune:
        page = render_reporter(db, "kommune", kommune, out)
    elif akasse:
        page = render_reporter(db, "akasse", akasse, out)
    else:
        page = national(db, out)
    typer.echo(str(page))
    if open_browser:
        import webbrowser

        webbrowser.open(page.resolve().as_uri())


@keys_app.command("init")
def keys_init() -> None:
    """Create the pseudonym and restricted-database keys (0600, outside the repo) unless they exist."""
    from pipelines.warehouse.keys import KEY_ENV, ensure_key

    for name in KEY_ENV:
        path = ensure_key(name)
        console.print(f"{name} key: {KEY_ENV[name]} if set, else {path}")


@warehouse_app.command("generate")
def warehouse_generate() -> None:
    """Regenerate the dbt project's models, schema YAML and sources from the contracts (commit the result)."""
    from pipelines.warehouse.generate import write_dbt_generated

    written = write_dbt_generated()
    console.print(f"{len(written)} model file(s) changed" + "".join(f"\n  {p}" for p in written))


@warehouse_app.command("dbt-parse")
def warehouse_dbt_parse() -> None:
    """Parse the dbt project (warehouse/) into warehouse/target/manifest.json (Dagster's dbt assets read it)."""
    from pipelines.warehouse.dbt_runner import parse_manifest

    console.print(f"manifest: {parse_manifest()}")


@warehouse_app.command("load")
def warehouse_load_cmd(
    date: str | None = typer.Option(None, "--date", help="Load date (transaction date) YYYY-MM-DD."),
    date_from: str | None = typer.Option(None, "--from", help="First load date of a replay."),
    date_to: str | None = typer.Option(None, "--to", help="Last load date of a replay."),
    root: Path = typer.Option(Path("data/demo/pipeline"), help="Zones: lake, ledger, warehouse."),
) -> None:
    """Load what is new in the lake into the warehouse (``dbt build`` of warehouse/), one nightly load per date,
    and publish it."""
    _warehouse(_days(date, date_from, date_to), root)


def _warehouse(days: list[dt.date], root: Path) -> None:
    from pipelines.warehouse.build import load_warehouse

    t = Table(title=f"Warehouse loads into {root / 'warehouse.duckdb'}")
    for col in ("load date", "payloads", "rows staged", "dedup", "retracted", "persons", "months", "seconds"):
        t.add_column(col, justify="right")
    for d in days:
        r = load_warehouse(root, d)
        t.add_row(d.isoformat(), str(r.payloads), str(sum(r.rows_staged.values())), str(r.rows_deduplicated),
                  str(r.retracted), str(r.affected_persons), str(r.affected_maaneder), f"{r.seconds:.1f}")
    console.print(t)


@warehouse_app.command("revise")
def warehouse_revise_cmd(
    aar: list[int] | None = typer.Option(None, "--aar", help="Closed year to revise (repeatable; default: the "
                                                               "oldest pending, MAX_AAR_PR_NAT of them)."),
    root: Path = typer.Option(Path("data/demo/pipeline"), help="Zones: lake, ledger, warehouse."),
) -> None:
    """Revise pending closed years now, outside the monthly revision run (docs/statistics.md "Revisioner"):
    runs the publication hook on the warehouse with those years forced, then publishes the file.  Fails while
    a load holds the warehouse (DuckDB's lock): run it between loads."""
    from types import SimpleNamespace

    import duckdb

    from pipelines.warehouse import build as B
    from pipelines.warehouse import publication

    path = B.build_path(root)
    con = duckdb.connect(str(path))
    try:
        publication.ensure_tables(con)
        pending = [r["aar"] for r in publication.pending_revisions(con)]
        years = sorted(aar) if aar else pending[:publication.MAX_AAR_PR_NAT]
        if not set(years) & set(pending):
            console.print(f"no revision pending for {years or 'any year'} (pending: {pending or 'none'})")
            return
        day = con.execute("SELECT max(indlaest_dato) FROM meta.publikation_koersel").fetchone()[0]
        rows = publication.publish(con, SimpleNamespace(load_id=f"revision-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}",
                                                         indlaest_dato=day), revidere=years)
        con.execute("CHECKPOINT")
        left = [r["aar"] for r in publication.pending_revisions(con)]
    finally:
        con.close()
    B._publish(Path(root), path)
    console.print(f"revised {sorted(set(years) & set(pending))}: {rows} rows published; pending now: {left or 'none'}")


@warehouse_app.command("rebuild")
def warehouse_rebuild_cmd(
    target: str = typer.Option("duckdb", "--target", help="duckdb (a new database) or spark (Parquet tables)."),
    root: Path = typer.Option(Path("data/demo/pipeline"), help="Zones: lake, ledger, warehouse."),
    out: Path | None = typer.Option(None, "--out", help="Output directory (default <root>/warehouse/rebuild-<target>)."),
    master: str | None = typer.Option(None, "--master", help="Spark master URL (default $DSDW_SPARK_MASTER or local[2])."),
    select: list[str] | None = typer.Option(None, "--select", help="dbt selection (default: every model)."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the result (steps, seconds per model) as JSON."),
) -> None:
    """Rebuild the dbt models from the whole lake in one pass (dbt --full-refresh, full_lake): the bitemporal
    versions of every load at once, each payload in the load that brought it in (docs/scale-out.md)."""
    from pipelines.warehouse.build import WarehouseError
    from pipelines.warehouse.rebuild import rebuild

    try:
        r = rebuild(root, target, out, master=master, select=select or None)
    except WarehouseError as exc:
        console.print(f"[red]rebuild refused: {exc}[/red]")
        raise typer.Exit(1) from None
    steps = ", ".join(f"{k} {v:.1f} s" for k, v in r.step_seconds.items())
    if json_out:
        import dataclasses
        import json

        json_out.write_text(json.dumps(dataclasses.asdict(r), default=str, indent=1), encoding="utf-8")
    console.print(f"{target}: {len(r.models)} models from {r.payloads} payloads in {r.loads} loads "
                  f"(plan from the {r.plan_source}) into {r.out} in {r.seconds:.1f} s ({steps})")


@warehouse_app.command("docs")
def warehouse_docs(
    warehouse: Path | None = typer.Option(None, "--warehouse", help="A built warehouse.duckdb for real column types."),
    out: Path = typer.Option(Path("docs"), "--out"),
) -> None:
    """Write the data dictionary and the ERD (from dbt's manifest, an empty dbt run and the contracts)."""
    from pipelines.warehouse.dictionary import write_docs

    for p in write_docs(out, warehouse):
        console.print(str(p))


@app.command()
def sql(
    query: str | None = typer.Argument(None, help="SQL to run against the analysts' warehouse (read-only)."),
    file: Path | None = typer.Option(None, "--file", "-f", help="Read the query from this file ('-': stdin)."),
    fmt: str = typer.Option("table", "--format", help="table | csv | json | markdown (csv, json and markdown "
                                                     "stream every row, for pipes)."),
    root: Path = typer.Option(Path("data/demo/pipeline"), help="Zones: where warehouse.duckdb is."),
    max_rows: int = typer.Option(50, "--max-rows", help="Rows shown by --format table."),
) -> None:
    """Query the published warehouse read-only; works while a load runs."""
    from pipelines.sqlout import FORMATS, stream_rows, write_csv, write_json, write_markdown
    from pipelines.warehouse.build import published_path
    from pipelines.warehouse.sql import SqlError, format_table

    if fmt not in FORMATS:
        raise typer.BadParameter(f"--format must be one of {', '.join(FORMATS)}")
    if (query is None) == (file is None):
        raise typer.BadParameter("give the query as an argument or --file, not both and not neither")
    if file is not None:
        query = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
    err = Console(stderr=True)
    try:
        cols, types, rows = stream_rows(published_path(root), query or "")
    except SqlError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    if fmt == "table":
        first = [r for _, r in zip(range(max_rows + 1), rows, strict=False)]
        total = len(first) + sum(1 for _ in rows)
        t = format_table(cols, first, max_rows)
        t.caption = f"{total} row{'s' if total != 1 else ''}" + (f" (first {max_rows} shown)" if total > max_rows else "")
        console.print(t)
        return
    out = sys.stdout
    try:
        {"csv": lambda: write_csv(cols, rows, out), "json": lambda: write_json(cols, rows, out),
         "markdown": lambda: write_markdown(cols, types, rows, out)}[fmt]()
        out.flush()
    except BrokenPipeError:  # `dsdw sql ... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


@warehouse_app.command("check")
def warehouse_check(root: Path = typer.Option(Path("data/demo/pipeline"))) -> None:
    """The ledger-against-lake reconciliation, then ``dbt test`` (keys, foreign keys, spells) on the warehouse as
    the last load left it (every load's ``dbt build`` already ran the tests of what it built)."""
    from pipelines.warehouse.build import build_path
    from pipelines.warehouse.checks import lake_ledger_checks
    from pipelines.warehouse.dbt_runner import DbtError, dbt_env, run_dbt
    from pipelines.warehouse.restricted import unsealed

    res = lake_ledger_checks(root)
    for r in res:
        console.print(f"{r.name}: " + ("passed" if r.passed else f"[red]{r.failures} failed[/red] "
                                       + ", ".join(map(str, r.examples))))
    failed = any(not r.passed for r in res)
    try:
        with unsealed(root) as plain:
            nodes = run_dbt(root, dbt_env(root, build_path(root), plain), "test")
        warned = sorted(n for n, (status, _, _) in nodes.items() if status == "warn")
        console.print(f"dbt test: {len(nodes)} tests passed" + (f", {len(warned)} warned: " + ", ".join(warned)
                                                                if warned else ""))
    except DbtError as exc:
        console.print(f"[red]{exc}[/red]")
        failed = True
    if failed:
        raise typer.Exit(1)


@app.command("deliver")
def deliver_cmd(
    recipient: str = typer.Option(..., "--recipient", help="Recipient id from pipelines/deliveries/recipients.yaml."),
    period: str = typer.Option(..., "--period", help="2026-10 (month) or 2026-W42 (ISO week, weekly recipients)."),
    kind: str = typer.Option("full", "--kind", help="full | increment"),
    root: Path = typer.Option(Path("data/demo/pipeline"), "--root"),
    out_dir: Path | None = typer.Option(None, "--out-dir", help="Default: <root>/deliveries."),
    load_id: str | None = typer.Option(None, "--load-id", help="Cut from this warehouse load (default: the latest)."),
    demo_keys: bool = typer.Option(True, "--demo-keys/--no-demo-keys",
                                   help="Create a demo key pair for recipients without a public key."),
) -> None:
    """Make one delivery (cut, encrypt, manifest, audit log) and print its manifest summary."""
    import json

    from pipelines.deliveries import DeliveryError, deliver

    try:
        path = deliver(root, recipient, period, kind, out_dir, load_id=load_id, create_missing_keys=demo_keys)
    except DeliveryError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    m = json.loads(path.read_text(encoding="utf-8"))
    t = Table(title=f"{m['modtager']['navn']} ({m['retsgrundlag']}) {m['periode']['tekst']} {m['levering']}, "
                    f"load {m['snit']['load_id']}")
    for col in ("file", "rows", "outputs", "sha256 (plaintext)"):
        t.add_column(col)
    for f in m["filer"]:
        t.add_row(f["navn"], str(f["raekker"]), str(len(f["udgaver"])),
                  f["udgaver"][0]["sha256"][:16] + "..." if f["udgaver"] else "")
    console.print(t)
    console.print(f"Manifest: {path}")


@deliveries_app.callback()
def deliveries_list(ctx: typer.Context, root: Path = typer.Option(Path("data/demo/pipeline"), "--root")) -> None:
    """List every logged delivery: recipient, § basis, period, kind, load, rows, time."""
    if ctx.invoked_subcommand:
        return
    from pipelines.deliveries import list_deliveries

    t = Table(title=f"Deliveries logged in {root / 'deliveries' / 'audit.jsonl'}")
    for col in ("#", "time (UTC)", "recipient", "§", "period", "kind", "load", "rows", "files"):
        t.add_column(col)
    for e in list_deliveries(root):
        t.add_row(str(e["seq"]), e["tid"], e["modtager"], e["retsgrundlag"], e["periode"], e["levering"],
                  e["load_id"], str(e["raekker"]), str(len(e["filer"])))
    console.print(t)


@deliveries_app.command("verify")
def deliveries_verify(root: Path = typer.Option(Path("data/demo/pipeline"), "--root")) -> None:
    """Verify the audit log's hash chain and head; exit 1 on any break."""
    from pipelines.deliveries import verify_audit

    v = verify_audit(root)
    for p in v.problems:
        console.print(f"[red]{p}[/red]")
    console.print(f"{v.entries} entries, chain {'intact' if v.ok else 'BROKEN'}")
    if not v.ok:
        raise typer.Exit(1)


@deliveries_app.command("decrypt")
def deliveries_decrypt(
    file: Path = typer.Argument(..., exists=True),
    recipient: str = typer.Option(..., "--recipient"),
    out: Path | None = typer.Option(None, "--out", help="Write the plaintext here (default: FILE without .enc)."),
) -> None:
    """Demo only: open a delivered file with the recipient's private key."""
    from pipelines.deliveries import decrypt

    target = out or file.with_suffix("")
    decrypt(file, recipient, target)
    console.print(f"Decrypted to {target}")

def _print_demo_stats(root: Path, month: dt.date) -> None:
    """Fuldtidspersoner by region for the demo month, from the published (suppressed) mart."""
    import duckdb

    from pipelines.warehouse.build import published_path

    con = duckdb.connect(str(published_path(root)), read_only=True)
    try:
        rows = con.execute("""
            SELECT geo_navn, ydelsesgruppe, antal_personer, fuldtidspersoner
            FROM mart_ydelser_publiceret
            WHERE periode_type = 'maaned' AND periode_start = ? AND geo_niveau IN ('region', 'land')
              AND ydelsesgruppe IN ('dagpenge', 'kontanthjaelp', 'sygedagpenge', 'i alt')
            ORDER BY geo_niveau = 'land', geo_navn, ydelsesgruppe""", [month]).fetchall()
        # a preliminary month is republished once a week (publication.KADENCE_FORELOEBIG): say which load's data
        asof = con.execute("SELECT max(horisont), max(vintage) FROM mart_ydelser_publiceret WHERE periode_type = "
                           "'maaned' AND periode_start = ?", [month]).fetchone()
    finally:
        con.close()
    when = f", data as of {asof[0]} (vintage {asof[1]})" if asof and asof[0] else ""
    t = Table(title=f"Fuldtidspersoner by region, {month:%B %Y}{when} (counts < 5 suppressed; see docs/statistics.md)")
    for col in ("region", "ydelsesgruppe", "antal personer", "fuldtidspersoner"):
        t.add_column(col, justify="right" if col != "region" else "left")
    for geo, yg, n, f in rows:
        t.add_row(str(geo), yg, "-" if n is None else str(n), "-" if f is None else f"{f:,.1f}")
    console.print(t)


def _print_demo_deliveries(rows: list, period: str, root: Path) -> None:
    """Every recipient's delivery runs for the demo period: a recipient with 0 rows or a failed run shows too."""
    from pipelines.deliveries.recipients import load_recipients

    t = Table(title=f"Deliveries for {period} (Dagster job leveringer): encrypted per recipient; manifests and "
                    f"the audit log under {root / 'deliveries'} (list: dsdw deliveries)")
    for col in ("recipient", "§", "kind", "period", "cut from load", "rows", "files"):
        t.add_column(col, justify="right" if col in ("rows", "files") else "left")
    mine = {r.recipient for r in rows}
    for rid, rec in load_recipients().items():
        if rid not in mine:
            t.add_row(rid, rec.retsgrundlag, "-", "-", "-", "[red]no delivery run[/]", "")
    for r in rows:
        t.add_row(r.recipient, r.retsgrundlag, r.kind, r.period, r.load_id,
                  f"{r.rows:,}" if r.ok else f"[red]FAILED: {r.error}[/]", str(len(r.files)) if r.ok else "")
    console.print(t)


def _print_dagster_runs(res, seconds: float) -> None:
    from collections import Counter

    ok, bad = Counter(), Counter()
    for job, _, _, success in res.runs:
        (ok if success else bad)[job] += 1
    t = Table(title=f"Dagster runs ({len(res.runs)} in {seconds:.0f} s)")
    for col in ("job", "runs", "failed", "seconds", "CPU seconds"):
        t.add_column(col, justify="left" if col == "job" else "right")
    for job in sorted(set(ok) | set(bad)):
        key = "deliveries" if job.startswith("levering") else job
        t.add_row(job, str(ok[job] + bad[job]), str(bad[job]) if bad[job] else "", f"{res.seconds[key]:.0f}",
                  f"{res.cpu[key]:.0f}")
    console.print(t)


def _print_demo_quality(root: Path) -> None:
    """The rules with failures over the demo's days, from dq.duckdb as the nightly dq_results runs left it."""
    import duckdb

    db = root / "dq.duckdb"
    if not db.exists():
        return
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute("""SELECT rule_id, paragraph, severity, sum(records_checked), sum(records_failed)
                              FROM dq_results GROUP BY ALL HAVING sum(records_failed) > 0
                              ORDER BY 5 DESC, 1""").fetchall()
    finally:
        con.close()
    t = Table(title="Rules with failures (all reporters, all days)")
    for col in ("rule", "§", "severity", "checked", "failed"):
        t.add_column(col, justify="right" if col in ("checked", "failed") else "left")
    for rid, para, sev, checked, failed in rows:
        t.add_row(rid, para, sev, f"{checked:,}", f"{failed:,}")
    console.print(t)
    console.print(f"Quality results: {db}; data-quality reports: {root / 'reports' / 'index.html'}")


@app.command()
def demo(
    out: Path = typer.Option(Path("data/demo"), help="Where sources and outputs go."),
    start: str = typer.Option("2026-10-01"),
    days: int = typer.Option(14, min=1),
    seed: int = typer.Option(20261001),
    scale: str = typer.Option("demo"),
) -> None:
    """Generate a synthetic Denmark, start the local source systems and run the nightly Dagster jobs per day.

    Every day is one run of the 02:00 schedule's job (ingestion with its partition checks, then quality) and
    one of the sensor's warehouse job, then each recipient's delivery job: all on the persistent Dagster
    instance under OUT/dagster, which `dagster dev` (printed at the end) shows.
    """
    import logging

    from pipelines.demo import (
        DagsterDemo,
        cpu_seconds,
        dagster_dev_command,
        dagster_home,
        open_instance,
        served_sources,
        statistics_api_hint,
    )
    from pipelines.warehouse.keys import ensure_key

    # the pipeline's warnings (e.g. the publication's suppression notes) go to OUT/demo.log, not between the
    # progress bars and tables of the printout
    out.mkdir(parents=True, exist_ok=True)
    log_file = out / "demo.log"
    handler = logging.FileHandler(log_file, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    try:
        t0, c0 = time.perf_counter(), cpu_seconds()
        src = out / "sources"
        first = _date(start)
        day_list = [first + dt.timedelta(days=k) for k in range(days)]
        res = _generate(scale, first, days, seed, src, None)
        stages = {"generate": (time.perf_counter() - t0, cpu_seconds() - c0)}
        state = out / "sources.json"
        root = out / "pipeline"
        for name in ("pseudonym", "restricted"):
            ensure_key(name)
        home = dagster_home(out)
        gov = _seed_demo_governance(root, src, first, days)
        t, c = time.perf_counter(), cpu_seconds()
        with served_sources(src, state) as systems:
            stages["sources start"] = (time.perf_counter() - t, cpu_seconds() - c)
            t = Table(title="Local source systems (loopback, their own process: dsdw sources serve)")
            t.add_column("system")
            t.add_column("address")
            for k, v in systems.items():
                for sub, val in (v.items() if isinstance(v, dict) else [("", v)]):
                    t.add_row(f"{k} {sub}".strip(), str(val))
            console.print(t)
            t1 = time.perf_counter()
            runner = DagsterDemo(root, state, open_instance(home),
                                 log=lambda m: console.print(f"[red]{m}[/]"))
            with Progress(TextColumn("[bold]nightly runs[/] {task.description}"), BarColumn(),
                          TextColumn("{task.completed}/{task.total} days"), TimeElapsedColumn(),
                          console=console) as prog:
                task = prog.add_task("", total=days)

                def step(day: dt.date) -> None:
                    prog.update(task, description=day.isoformat(), completed=(day - first).days)

                result = runner.run(day_list, period=None, progress=step)
                prog.update(task, completed=days)
        if any(w.ok for w in result.warehouse):
            runner.deliveries(first.strftime("%Y-%m"))
        _print_load(result.load)
        _print_demo_quality(root)
        _print_warehouse_rows(result.warehouse, root)
        if any(w.ok for w in result.warehouse):
            _print_demo_stats(root, first.replace(day=1))
        _print_demo_deliveries(result.deliveries, first.strftime("%Y-%m"), root)
        _print_demo_governance(root, gov)
        _print_dagster_runs(result, time.perf_counter() - t1)
        console.print(f"Sources: {src} (ground truth: {src / 'ground_truth.csv'}, {res.defects} defect rows)")
        console.print(f"Landing (raw payloads): {root / 'landing'}")
        console.print(f"Lake (typed Parquet, hive-partitioned): {root / 'lake'}")
        console.print(f"Quarantine (rejected rows with reasons): {root / 'lake' / '_quarantine'}")
        console.print(f"File ledger (SQLite): {root / 'ledger.sqlite'}")
        console.print(f"Analysts' warehouse (pseudonymised, read-only): {root / 'warehouse.duckdb'} "
                      f"(try: dsdw sql --root {root} --format markdown \"SELECT * FROM mart_ydelser_publiceret LIMIT 5\")")
        console.print(f"Restricted database (sealed, age files of its chunks): {root / 'restricted' / 'sealed'}")
        for line in statistics_api_hint(root, out / "api_keys"):
            console.print(line)
        console.print(f"Warnings of the pipeline (not shown above): {log_file}")
        console.print(f"Dagster instance (runs, materializations, checks, partitions): {home}")
        console.print(f"Open it in the Dagster UI: {dagster_dev_command(out)}")
        stages["total"] = (time.perf_counter() - t0, cpu_seconds() - c0)
        console.print("Demo done in " + ", ".join(f"{k} {w:.0f} s (CPU {c:.0f} s)" for k, (w, c) in stages.items())
                      + f"; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}.")
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    if result.failed_runs or any(r.failures for r in result.load):
        raise typer.Exit(1)


def _seed_demo_governance(root: Path, src: Path, first: dt.date, days: int):  # -> DemoGovernance
    """The demo's register (issue 17; §§ 5, 6, 8-11) before its first night: agreements for every
    webservice/portal reporter, a § 8 closure, a late § 9 notice, a § 5 case, for the reporters the
    simulator makes misbehave (generation.json)."""
    import json

    from pipelines.governance.demo import demo_roles, seed_demo
    from pipelines.governance.register import Register, register_path

    meta = json.loads((src / "generation.json").read_text(encoding="utf-8"))
    root.mkdir(parents=True, exist_ok=True)
    with Register(register_path(root), hvem="dsdw demo") as reg:
        return seed_demo(reg, first, days, **demo_roles(meta.get("reporter_behaviour") or []))


def _print_demo_governance(root: Path, gov) -> None:
    """What the register holds and what ingestion refused because of it, and where the reports show it."""
    from pipelines.governance.demo import demo_summary

    console.print(f"[bold]Reporter governance[/] (register {root / 'governance.sqlite'}; dsdw governance ...):")
    for line in demo_summary(root):
        console.print(f"  {line}", markup=False)
    reports = root / "reports"
    console.print(f"§ 5 case and § 9 notice on the reporters' DQ pages: {reports / 'kommune' / (gov.sag_aftager + '.html')}"
                  f", {reports / 'kommune'}/<kommune>.html; overdue action plans on {reports / 'index.html'}")


def _print_warehouse_rows(rows: list, root: Path) -> None:
    t = Table(title=f"Warehouse loads into {root / 'warehouse.duckdb'} (Dagster job nightly_warehouse)")
    for col in ("load date", "payloads", "rows staged", "dedup", "retracted", "persons", "months", "seconds"):
        t.add_column(col, justify="right")
    for r in rows:
        if not r.ok:
            t.add_row(r.day.isoformat(), f"[red]FAILED: {r.error}[/]", "", "", "", "", "", "")
            continue
        t.add_row(r.day.isoformat(), str(r.payloads), str(r.rows_staged), str(r.deduplicated), str(r.retracted),
                  str(r.persons), str(r.months), f"{r.seconds:.1f}")
    console.print(t)


if __name__ == "__main__":  # pragma: no cover
    app()
