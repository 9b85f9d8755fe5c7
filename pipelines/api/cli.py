"""``dsdw api``: serve the statistics API (one Dagster-independent uvicorn process) and manage its keys."""

from __future__ import annotations

from pathlib import Path

import typer

from pipelines.api.keys import DEFAULT_KEY_FILE, new_key

app = typer.Typer(help="The read-only statistics API over the published marts (Jobindsats' shape).",
                  no_args_is_help=True)


@app.command()
def serve(root: Path = typer.Option(Path("data/demo/pipeline"), help="Zone root holding warehouse.duckdb."),
          keys: Path = typer.Option(DEFAULT_KEY_FILE, help="API key file, one key a line."),
          host: str = typer.Option("127.0.0.1"), port: int = typer.Option(8000)) -> None:
    """Serve /api/v1 (OpenAPI at /docs and /openapi.json) and /sider/<tabel>."""
    import uvicorn

    from pipelines.api.app import create_app
    from pipelines.warehouse.build import published_path

    typer.echo(f"dsdw statistik-API on http://{host}:{port}/api/v1/subjects (keys: {keys})")
    uvicorn.run(create_app(published_path(root), keys), host=host, port=port, log_level="warning")


@app.command("new-key")
def new_key_cmd(keys: Path = typer.Option(DEFAULT_KEY_FILE), note: str = typer.Option("")) -> None:
    """Append a new random key to the key file and print it."""
    typer.echo(new_key(keys, note))


def demo_key(keys: Path) -> str:
    """The demo's API key in the demo's own key file (under its data directory, never the user's
    ~/.config/dsdw/api_keys): the first key there, created on the first demo run and kept by the next."""
    from pipelines.api.keys import KeyFile

    existing = KeyFile(keys).keys()
    return existing[0] if existing else new_key(keys, "demo")


def demo_hint(root: Path, keys: Path, port: int = 8000) -> str:
    """The lines the demo prints: how to start the API on the demo's key file and one example request."""
    k = demo_key(keys)
    return (f"Statistics API: dsdw api serve --root {root} --keys {keys} --port {port}  ->  "
            f"http://127.0.0.1:{port}/docs\n"
            f"  example: curl -H 'X-API-Key: {k}' "
            # the demo's month is still preliminary (er_foreloebig): without foreloebige=true the answer is empty
            f"'http://127.0.0.1:{port}/api/v1/data/ydelser_i_alt?omraade=000,081,082,083,084,085&periode_type=maaned"
            f"&foreloebige=true&format=csv'\n"
            f"  page: http://127.0.0.1:{port}/sider/ydelser_i_alt?api_key={k}")
