"""The layers' import direction: production code never imports the simulator or the tests.

Top-level: it reads every package of ``pipelines/``, so it belongs to none of them.

The simulator is a stand-in for the reporters; the wire formats it writes are part of the
contract (:mod:`pipelines.contracts.wire`).  If ingestion imported the simulator, a change
to the synthetic data could silently change what production accepts.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pipelines

PKG = Path(pipelines.__file__).resolve().parent
# the entry point that starts the simulator on purpose (`dsdw generate`, `dsdw sources serve`); the demo
# runs `dsdw sources serve` in its own process and imports nothing of it
ALLOWED = {"cli.py"}


def _imports(path: Path) -> set[str]:
    mods: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            mods.add(node.module)
            mods.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            mods.update(a.name for a in node.names)
    return mods


def test_production_code_never_imports_the_simulator() -> None:
    offenders = {}
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG)
        if rel.parts[0] == "simulate" or str(rel) in ALLOWED:
            continue
        bad = sorted(m for m in _imports(path) if m.startswith("pipelines.simulate") or m.startswith("tests"))
        if bad:
            offenders[str(rel)] = bad
    assert offenders == {}


def test_the_check_sees_an_import_of_the_simulator(tmp_path) -> None:
    mod = tmp_path / "m.py"
    mod.write_text("from pipelines.simulate import channels\nimport pipelines.simulate.generate\n")
    assert {"pipelines.simulate", "pipelines.simulate.generate"} <= _imports(mod)
