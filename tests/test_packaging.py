"""The package installs as a wheel that works outside a checkout.

Contracts, templates and recipients travel as package data; reference code lists, the
warehouse models and the expectation suites as data files under ``<prefix>/share/dsdw``,
which the package finds when it does not run from a checkout.

Top-level: the wheel carries every package's data, so it belongs to none of them.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pipelines

REPO = Path(pipelines.__file__).resolve().parents[1]

PROBE = """
import sys
sys.prefix = sys.argv[1]
from pipelines.contracts import REFERENCE_DIR, codelist, load_contracts
from pipelines.quality.suites import load_suite
from pipelines.deliveries.recipients import load_recipients
from pipelines.warehouse.dbt_runner import PROJECT_DIR
import pipelines
assert str(PROJECT_DIR).startswith(sys.argv[1]), PROJECT_DIR
assert pipelines.__file__.startswith(sys.argv[2]), pipelines.__file__
assert str(REFERENCE_DIR).startswith(sys.argv[1]), REFERENCE_DIR
print(len(load_contracts()), len(codelist("kommuner")), len(load_suite("kontaktgruppe")["expectations"]),
      len(load_recipients()), len(list((PROJECT_DIR / "dbt" / "models").rglob("*.sql"))))
"""


def test_a_wheel_runs_outside_the_checkout(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), str(REPO)],
                   check=True, capture_output=True)
    (wheel,) = (tmp_path / "dist").glob("dsdw-*.whl")
    site, prefix = tmp_path / "site", tmp_path / "prefix"
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            data = name.split(".data/data/", 1)
            target = prefix / data[1] if len(data) == 2 else site / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(name))
    assert (prefix / "share" / "dsdw" / "data" / "reference" / "kommuner.csv").is_file()
    out = subprocess.run([sys.executable, "-c", PROBE, str(prefix), str(site)], cwd=tmp_path, check=True,
                         capture_output=True, text=True, env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"})
    contracts, kommuner, expectations, recipients, dbt_models = map(int, out.stdout.split())
    assert contracts == len(list((REPO / "pipelines" / "contracts").glob("*.yaml")))
    assert kommuner >= 98 and expectations > 10 and recipients >= 10
    # the dbt project travels whole: every model file of the checkout, the project and profile files
    assert dbt_models == len(list((REPO / "warehouse" / "dbt" / "models").rglob("*.sql")))
    for f in ("dbt_project.yml", "profiles.yml", "dbt/models/sources.yml", "dbt/macros/materializations.sql",
              "dbt/models/derived/marts/mart_ydelser_beregning.py"):
        assert (prefix / "share" / "dsdw" / "warehouse" / f).is_file(), f
