"""Model files under ``warehouse/models``: header parsing and dependency order.

Every model is one SQL file whose header comment states what the runner and the
data dictionary need::

    -- model: fct_person_week          (the table/view name; equals the file stem)
    -- layer: staging | core | mart
    -- database: warehouse | restricted
    -- materialization: increment | append | table | view | scoped | python
    -- depends_on: fct_kontaktgruppe, dim_kontaktgruppe
    -- scope: person_key | maaned        (scoped: rows of the load's affected persons/months are replaced)
    -- keeps_replaced: true              (scoped: the load's replaced and inserted rows stay readable)
    -- callable: module:function        (python: the function that maintains the table)
    -- grain: one row per ...
    -- keys: person_key, uge_id
    -- legal basis / notes ...

Materializations: ``increment`` (staging: replaced by this load's new rows),
``append`` (facts: the increment is appended), ``table`` (rebuilt every load;
small), ``view``, ``scoped`` (``DELETE`` the rows of the affected scope, then
``INSERT`` the model's rows, which must themselves be restricted to the scope by
joining ``affected_persons`` or ``affected_maaneder``), ``python`` (the runner calls
``callable(con, model, values)``, which maintains the table in several statements, e.g. by
delta; the file's SQL is the full computation, run on the first load and by the data dictionary).

A scoped model with ``keeps_replaced: true`` leaves, for the rest of the load, the rows its run deleted in
the temp table ``erstattet__<model>`` and the rows it inserted in ``indsat__<model>`` (variables of the same
names hold the table names), so a model downstream can maintain an additive aggregate by delta (+inserted,
-replaced) instead of recomputing it over the whole table (e.g. mart_overgange_bidrag).
"""

from __future__ import annotations

import graphlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.warehouse.generate import MODELS_DIR

MATERIALIZATIONS = {"increment", "append", "table", "view", "scoped", "python"}
LAYERS = {"staging", "core", "mart"}
_HEADER = re.compile(r"^--\s*([a-z_ ]+):\s*(.*)$")


class ModelError(ValueError):
    """A model file's header is incomplete or inconsistent; names the file."""


@dataclass(frozen=True)
class Model:
    name: str
    path: Path
    layer: str
    database: str
    materialization: str
    sql: str
    depends_on: tuple[str, ...] = ()
    scope: str | None = None
    grain: str = ""
    keys: tuple[str, ...] = ()
    header: dict[str, str] = field(default_factory=dict)

    @property
    def qualified(self) -> str:
        if self.database == "restricted":
            return f"restricted.{self.name}"
        return f"staging.{self.name}" if self.layer == "staging" else self.name


def parse_model(path: Path) -> Model:
    text = path.read_text(encoding="utf-8")
    header: dict[str, str] = {}
    body: list[str] = []
    in_header = True
    for line in text.splitlines():
        m = _HEADER.match(line) if in_header else None
        if m:
            k = m.group(1).strip()
            header[k] = (header[k] + " " + m.group(2).strip()) if k in header else m.group(2).strip()
            continue
        if in_header and line.startswith("--"):
            continue
        in_header = False
        body.append(line)
    for k in ("model", "layer", "materialization", "grain"):
        if k not in header:
            raise ModelError(f"{path}: header has no '-- {k}:' line")
    if header["model"] != path.stem:
        raise ModelError(f"{path}: model name {header['model']!r} differs from the file name")
    if header["layer"] not in LAYERS:
        raise ModelError(f"{path}: layer {header['layer']!r} not one of {sorted(LAYERS)}")
    mat = header["materialization"]
    if mat not in MATERIALIZATIONS:
        raise ModelError(f"{path}: materialization {mat!r} not one of {sorted(MATERIALIZATIONS)}")
    if mat == "scoped" and header.get("scope") not in ("person_key", "maaned"):
        raise ModelError(f"{path}: a scoped model needs '-- scope: person_key' or '-- scope: maaned'")
    if mat == "python" and not re.fullmatch(r"[\w.]+:\w+", header.get("callable", "")):
        raise ModelError(f"{path}: a python model needs '-- callable: module:function'")
    prefix = {"staging": ("stg_",), "core": ("dim_", "fct_"), "mart": ("mart_",)}[header["layer"]]
    if not header["model"].startswith(prefix):
        raise ModelError(f"{path}: a {header['layer']} model's name starts with {' or '.join(prefix)}")
    deps = tuple(d.strip() for d in header.get("depends_on", "").split(",") if d.strip())
    keys = tuple(k.strip() for k in header.get("keys", "").split(",") if k.strip())
    return Model(name=header["model"], path=path, layer=header["layer"],
                 database=header.get("database", "warehouse"), materialization=mat,
                 sql="\n".join(body).strip().rstrip(";"), depends_on=deps, scope=header.get("scope"),
                 grain=header["grain"], keys=keys, header=header)


def load_models(models_dir: Path = MODELS_DIR) -> dict[str, Model]:
    models: dict[str, Model] = {}
    for p in sorted(models_dir.rglob("*.sql")):
        m = parse_model(p)
        if m.name in models:
            raise ModelError(f"{p}: model {m.name} also defined in {models[m.name].path}")
        models[m.name] = m
    for m in models.values():
        for d in m.depends_on:
            if d not in models:
                raise ModelError(f"{m.path}: depends_on {d!r}, which is no model")
    return models


def build_order(models: dict[str, Model]) -> list[Model]:
    """Topological order; ties broken by layer then name, so the order is stable."""
    rank = {"staging": 0, "core": 1, "mart": 2}
    ts = graphlib.TopologicalSorter({n: set(m.depends_on) for n, m in models.items()})
    ts.prepare()
    out: list[Model] = []
    while ts.is_active():
        ready = sorted(ts.get_ready(), key=lambda n: (rank[models[n].layer], n))
        for n in ready:
            out.append(models[n])
            ts.done(n)
    return out
