"""The ``dsdw`` command: a thin shell over the same functions the Dagster assets call."""

from __future__ import annotations

import datetime as dt
import json
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
console = Console()


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


@app.command()
def demo(
    out: Path = typer.Option(Path("data/demo"), help="Where sources and outputs go."),
    start: str = typer.Option("2026-10-01"),
    days: int = typer.Option(14, min=1),
    seed: int = typer.Option(20261001),
    scale: str = typer.Option("demo"),
) -> None:
    """Generate a synthetic Denmark, start the local source systems and run the pipeline."""
    from pipelines.simulate.servers import start_sources

    src = out / "sources"
    res = _generate(scale, _date(start), days, seed, src, None)
    systems = start_sources(src)
    try:
        t = Table(title="Local source systems (loopback)")
        t.add_column("system")
        t.add_column("address")
        for k, v in systems.describe().items():
            for sub, val in (v.items() if isinstance(v, dict) else [("", v)]):
                t.add_row(f"{k} {sub}".strip(), str(val))
        console.print(t)
        console.print("[yellow]No pipeline stage exists yet beyond the sources (ingestion is issue #3).[/]")
    finally:
        systems.stop()
    console.print(f"Sources: {src}  (ground truth: {src / 'ground_truth.csv'}, "
                  f"{res.defects} defect rows; summary: {src / 'generation.json'})")


if __name__ == "__main__":  # pragma: no cover
    app()
