"""The nightly warehouse load: generated models, keys, sealing, bitemporal facts, as-of, failures."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pyrage
import pytest
from fixtures_wh import cpr_for, deliver, kg, query

from pipelines.warehouse import keys as wkeys
from pipelines.warehouse.build import WarehouseError, build_path, load_warehouse, published_path
from pipelines.warehouse.checks import lake_ledger_checks
from pipelines.warehouse.generate import DBT_DIR, dbt_generated_files
from pipelines.warehouse.restricted import (
    legacy_sealed_path,
    open_restricted,
    sealed_files,
    sealed_path,
    unsealed,
)
from pipelines.warehouse.sealed import (
    SealError,
    age_identity,
    age_recipient,
    seal_chunks,
    seal_file,
    unseal_chunks,
    unseal_file,
)

D1, D2, D3, D4 = (dt.date(2026, 10, d) for d in (1, 2, 3, 4))
KG_A, KG_B, KG_C = "11111111-0000-4000-8000-00000000000a", "11111111-0000-4000-8000-00000000000b", \
    "11111111-0000-4000-8000-00000000000c"
P1 = cpr_for(dt.date(1980, 5, 17), 1)
P2 = cpr_for(dt.date(1991, 2, 3), 2, male=False)
P3 = cpr_for(dt.date(1975, 7, 9), 3)


def q(root: Path, sql: str) -> list[tuple]:
    return query(published_path(root), sql)


def test_generated_models_are_in_step_with_the_contracts():
    for rel, text in dbt_generated_files().items():  # the dbt project's models, schema YAML, sources, macros
        path = DBT_DIR / rel
        assert path.exists() and path.read_text(encoding="utf-8") == text, f"{path}: run `make generate`"


def test_dbt_schema_yaml_carries_the_contracts_rules():
    import yaml

    files = dbt_generated_files()
    core = yaml.safe_load(files[Path("dbt/models/core/_core.yml")])
    by = {m["name"]: m for m in core["models"]}
    akt = by["fct_kontaktgruppe_aktuel"]
    overlap = [t["dsdw_no_overlap"] for t in akt["data_tests"] if "dsdw_no_overlap" in t][0]
    assert overlap["arguments"]["partition_by"] == ["person_key"] and overlap["config"]["severity"] == "warn"
    assert overlap["config"]["meta"]["paragraf"] == "§ 16, stk. 6"
    cols = {c["name"]: c for c in akt["columns"]}
    assert cols["person_key"]["meta"]["pii"].startswith("cpr")
    values = [t["accepted_values"] for t in cols["kontaktgruppe"]["data_tests"] if "accepted_values" in t][0]
    assert "9" not in values["arguments"]["values"] and "25" in values["arguments"]["values"]  # no group 9
    rel = [t["relationships"] for c in by["fct_samtale_aktuel"]["columns"] for t in c.get("data_tests", [])
           if "relationships" in t]
    assert rel[0]["arguments"]["to"] == "ref('fct_indkaldelse_aktuel')" and rel[0]["config"]["severity"] == "warn"
    src = yaml.safe_load(files[Path("dbt/models/sources.yml")])["sources"][0]
    assert {"name": "kontaktgruppe", "asset_key": ["lake", "kontaktgruppe"]} in [
        {"name": t["name"], "asset_key": t["meta"]["dagster"]["asset_key"]} for t in src["tables"]]
    assert "hive_partitioning = true" in src["meta"]["external_location"]
    restricted = yaml.safe_load(files[Path("dbt/models/restricted/_restricted.yml")])
    assert all(m["config"]["meta"]["database"] == "restricted" for m in restricted["models"])
    stg = files[Path("dbt/models/staging/stg_jobcenter__samtale_deltager.sql")]
    assert "pseudonym('inc.cpr') }} AS person_key" in stg and "\n    navn," not in stg


def test_one_parsed_dbt_project_serves_every_environment(tmp_path):
    """Nothing a root decides is rendered while dbt parses: the lake sources are relative to the profile's
    run-time file_search_path, the schema-check switch is read only when executing, and the manifest cache's key
    holds no root path (so a pytest worker or a nightly process parses once for all its roots)."""
    import yaml

    from pipelines.warehouse import dbt_runner as R

    files = dbt_generated_files()
    src = yaml.safe_load(files[Path("dbt/models/sources.yml")])["sources"][0]
    assert "env_var" not in src["meta"]["external_location"]
    assert src["meta"]["external_location"].startswith("read_parquet('{name}/")
    profile = yaml.safe_load((DBT_DIR / "profiles.yml").read_text())["dsdw"]["outputs"]["duckdb"]
    assert "DSDW_LAKE" in profile["config_options"]["file_search_path"]
    # per node, dbt-duckdb SETs only the session-local setting again (the database-wide ones are given once)
    assert list(profile["settings"]) == ["TimeZone"]
    macros = "".join(f.read_text() for f in (DBT_DIR / "dbt" / "macros").glob("*.sql"))
    assert macros.count("DSDW_DBT_SCHEMA_CHECK', '1')") == 1 and "not execute or env_var('DSDW_DBT_SCHEMA_CHECK'" \
        in macros
    a, b = tmp_path / "a", tmp_path / "b"
    env_a = {**R.dbt_env(a, build_path(a), tmp_path / "ra" / "r.duckdb"), "DSDW_DBT_SCHEMA_CHECK": "1"}
    env_b = {**R.dbt_env(b, build_path(b), tmp_path / "rb" / "r.duckdb"), "DSDW_DBT_SCHEMA_CHECK": "0"}
    assert env_a["DSDW_LAKE"] != env_b["DSDW_LAKE"] and R.manifest_key(env_a) == R.manifest_key(env_b)
    # the database's name is dbt-duckdb's name for it (its file's stem): another name is another parse
    assert R.manifest_key({**env_a, "DSDW_DBT_DATABASE": str(tmp_path / "other.duckdb")}) != R.manifest_key(env_a)


def test_compiled_templates_are_reused_across_processes_and_render_the_same(tmp_path, monkeypatch):
    """A night's templates come from the environment's cache file, not from Jinja's parser, and render what a
    fresh compile renders; the native environment keeps its own code; a cache of another interpreter or Jinja is
    ignored; dbt's environment is left as it was."""
    import marshal

    from dbt_common.clients import jinja as dj

    from pipelines.warehouse import dbt_runner as R

    text = "{% set y = name | upper %}{% for c in [y] %}{{ c }}{% endfor %}-{{ n + 1 }}"

    def render(native: bool = False) -> object:
        return dj.get_template(text, {"name": "ab", "n": 1}, native=native).render({})

    cache = tmp_path / R.TEMPLATE_CACHE
    monkeypatch.setattr(R, "_TEMPLATE_CODE", {})
    fresh = render(), render(native=True)
    assert fresh == ("AB-2", "AB-2") and type(fresh[1]) is str  # noqa: E721 (native keeps a non-literal as text)
    with R._compiled_templates(cache):
        assert (render(), render(native=True)) == fresh
    assert "compile" not in dj.MacroFuzzEnvironment.__dict__
    version, stored = marshal.loads(cache.read_bytes())
    assert version == R._template_cache_version() and len(stored) == 2  # one code per environment class

    # a new process: the file's code is used, Jinja parses nothing
    monkeypatch.setattr(R, "_TEMPLATE_CODE", {})

    def no_parse(*a: object) -> None:
        raise AssertionError("parsed again")

    monkeypatch.setattr(dj.MacroFuzzEnvironment, "_parse", no_parse)
    with R._compiled_templates(cache):
        assert (render(), render(native=True)) == fresh
        with pytest.raises(Exception, match="parsed again"):  # a text not in the cache is still compiled
            dj.get_template("{{ 1 + 1 }}", {}, native=True)


def test_template_cache_of_another_version_is_not_used(tmp_path, monkeypatch):
    """Code marshalled by another interpreter or Jinja is never executed: the file is ignored and rewritten."""
    import marshal

    from dbt_common.clients import jinja as dj

    from pipelines.warehouse import dbt_runner as R

    cache = tmp_path / R.TEMPLATE_CACHE
    key = R.hashlib.sha256(b"MacroFuzzEnvironment\0{{ 7 }}").digest()
    cache.write_bytes(marshal.dumps((b"other", {key: compile("x = 1", "<template>", "exec")})))
    monkeypatch.setattr(R, "_TEMPLATE_CODE", {})
    with R._compiled_templates(cache):
        assert dj.get_template("{{ 7 }}", {}).render({}) == "7"
    assert marshal.loads(cache.read_bytes())[0] == R._template_cache_version()


def test_dbt_events_are_built_when_read_and_are_dbt_s_own():
    """A quiet load's dbt events keep their fields and build their message only when something reads the event;
    the message is the one dbt builds at once (fields, defaults, the str() of msg), and outside the load events are
    built at once again."""
    from dbt.adapters.events.types import SQLQuery
    from dbt_common.events.types import Note

    from pipelines.warehouse import dbt_runner as R

    node = {"unique_id": "model.dsdw_warehouse.fct_plan", "node_name": "fct_plan", "resource_type": "model",
            "node_relation": {"database": "build", "schema": "main", "alias": "fct_plan"}}
    eager = SQLQuery(conn_name="model.dsdw_warehouse.fct_plan", sql="SELECT 1", node_info=node)
    with R._lazy_event_messages():
        lazy = SQLQuery(conn_name="model.dsdw_warehouse.fct_plan", sql="SELECT 1", node_info=node)
        note = Note(msg=42)
        assert "pb_msg" not in lazy.__dict__ and "pb_msg" not in note.__dict__
        assert lazy.level_tag() == eager.level_tag() and "pb_msg" not in lazy.__dict__  # the level reads no field
        assert lazy.sql == "SELECT 1" and lazy.node_info.node_relation.alias == "fct_plan"
        assert "pb_msg" in lazy.__dict__ and lazy.to_dict() == eager.to_dict()
        assert note.msg == "42"  # converted as dbt converts it
    assert "pb_msg" in SQLQuery(conn_name="c", sql="s", node_info={}).__dict__


def test_analyst_models_drop_pii_and_pseudonymise():
    files = {p.relative_to("dbt/models"): t for p, t in dbt_generated_files().items() if p.parts[1] == "models"}
    stg = files[Path("staging/stg_jobcenter__samtale_deltager.sql")]
    select = stg.split("SELECT", 1)[1].split("FROM {{ lake_rows")[0]
    assert "AS person_key" in select and "\n    navn," not in select  # name (pii: name) stays in the lake
    sanktion = files[Path("staging/stg_jobcenter__sanktion.sql")]
    assert "AS aegtefaelle_person_key" in sanktion and "\n    aegtefaelle_cpr," not in sanktion
    assert Path("restricted/stg_ssi__ssi_lpr_kontakt.sql") in files  # health data only in the restricted DB
    assert not any("ssi_" in str(p) for p in files if p.parts[0] not in ("restricted", "sources.yml"))


def test_person_key_sql_equals_python_hmac(keydir):
    key = wkeys.load_key("pseudonym")
    ipad, opad = wkeys.hmac_pads(key)
    con = duckdb.connect()
    con.execute(wkeys.HMAC_MACRO_SQL)
    got = con.execute("SELECT dsdw_hmac(?, ?, ?)", [P1, ipad, opad]).fetchone()[0]
    assert got == wkeys.person_key(P1, key)
    assert got != wkeys.person_key(P1, b"x" * 32)


def test_missing_key_names_env_var_and_file(tmp_path, monkeypatch):
    monkeypatch.setenv("DSDW_KEY_DIR", str(tmp_path / "none"))
    monkeypatch.delenv("DSDW_PSEUDONYM_KEY", raising=False)
    with pytest.raises(wkeys.KeyError_, match=r"DSDW_PSEUDONYM_KEY.*pseudonym\.key"):
        wkeys.load_key("pseudonym")
    monkeypatch.setenv("DSDW_PSEUDONYM_KEY", "abcd")
    with pytest.raises(wkeys.KeyError_, match="has 2 bytes"):
        wkeys.load_key("pseudonym")


def test_sealed_file_round_trip_and_tampering(tmp_path):
    key, other = b"k" * 32, b"o" * 32
    src = tmp_path / "plain.bin"
    src.write_bytes(b"0101801234 secret " * 500_000)  # > 2 chunks
    sealed, back = tmp_path / "s.sealed", tmp_path / "back.bin"
    seal_file(src, sealed, key)
    assert b"0101801234" not in sealed.read_bytes()
    unseal_file(sealed, back, key)
    assert back.read_bytes() == src.read_bytes()
    with pytest.raises(SealError, match="another key"):
        unseal_file(sealed, back, other)
    data = bytearray(sealed.read_bytes())
    data[len(data) // 2] ^= 1
    (tmp_path / "t.sealed").write_bytes(bytes(data))
    with pytest.raises(SealError, match="damaged or truncated"):
        unseal_file(tmp_path / "t.sealed", back, key)
    assert not back.exists()  # no partial plaintext is left behind
    (tmp_path / "short.sealed").write_bytes(sealed.read_bytes()[: len(data) - 100])
    with pytest.raises(SealError, match="damaged or truncated"):
        unseal_file(tmp_path / "short.sealed", back, key)
    with pytest.raises(SealError, match="not an age-sealed file"):
        unseal_file(src, back, key)


def test_a_sparse_restricted_database_is_compacted_before_it_is_sealed(tmp_path, keydir):
    """Free blocks are sealed like data every night: once a dropped table leaves more than a quarter of the file
    free, sealing rewrites it first, keeping tables, keys, indexes, views and macros; a dense file is left alone."""
    from pipelines.warehouse.restricted import SPARSE

    root = tmp_path / "root"
    with unsealed(root, write=True) as plain:
        con = duckdb.connect(str(plain))
        con.execute("CREATE TABLE person (cpr VARCHAR PRIMARY KEY, person_key VARCHAR NOT NULL)")
        con.execute("INSERT INTO person SELECT lpad(CAST(i AS VARCHAR), 10, '0'), md5(CAST(i AS VARCHAR)) "
                    "FROM range(50000) r(i)")
        con.execute("CREATE TABLE fct (k VARCHAR, v INTEGER)")
        con.execute("INSERT INTO fct SELECT md5(CAST(i AS VARCHAR)), i FROM range(20000) r(i)")
        con.execute("CREATE INDEX fct__k ON fct (k)")
        con.execute("CREATE VIEW fct_aktuel AS SELECT * FROM fct WHERE v % 2 = 0")
        con.execute("CREATE MACRO fct_as_of(d) AS TABLE SELECT * FROM fct WHERE v <= d")
        con.execute("CREATE TABLE gammel AS SELECT i, md5(CAST(i AS VARCHAR)) AS m FROM range(2000000) r(i)")
        con.close()
    dense = sealed_size(root)
    with unsealed(root, write=True) as plain:  # dense: sealed as it is
        size = plain.stat().st_size
    assert abs(sealed_size(root) - dense) < 4096
    with unsealed(root, write=True) as plain:
        con = duckdb.connect(str(plain))
        con.execute("DROP TABLE gammel")
        con.execute("CHECKPOINT")
        total, free = con.execute("SELECT total_blocks, free_blocks FROM pragma_database_size()").fetchone()
        con.close()
        assert free / total > SPARSE and plain.stat().st_size == size  # DuckDB keeps the file's size
    assert sealed_size(root) < dense / 3
    with unsealed(root) as plain:
        con = duckdb.connect(str(plain))
        assert con.execute("SELECT free_blocks FROM pragma_database_size()").fetchone()[0] == 0
        assert con.execute("SELECT count(*), sum(v) FROM fct_aktuel").fetchone() == (10000, 99990000)
        assert con.execute("SELECT count(*) FROM fct_as_of(9)").fetchone()[0] == 10
        assert con.execute("SELECT index_name FROM duckdb_indexes()").fetchall() == [("fct__k",)]
        assert con.execute("SELECT person_key FROM person WHERE cpr = '0000000007'").fetchone()[0] == \
            hashlib.md5(b"7").hexdigest()
        with pytest.raises(duckdb.ConstraintException):
            con.execute("INSERT INTO person VALUES ('0000000007', 'x')")
        assert "gammel" not in {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        con.close()


def test_sealed_file_opens_with_the_standard_age_tool(tmp_path):
    """The sealed restricted database is a plain age file: an operator opens it with ``age -d``."""
    age = shutil.which("age")
    assert age, "the age command line tool is a test dependency (`make sysdeps` installs Debian's age)"
    key = bytes(range(32))
    src, sealed = tmp_path / "plain.bin", tmp_path / "s.sealed"
    src.write_bytes(b"0101801234;restricted\n" * 10_000)
    seal_file(src, sealed, key)
    ident = tmp_path / "identity.txt"
    ident.write_text(age_identity(key) + "\n")
    out = subprocess.run([age, "-d", "-i", str(ident), str(sealed)], capture_output=True, check=True)
    assert out.stdout == src.read_bytes()
    assert age_recipient(key).startswith("age1")


def sealed_size(root: Path) -> int:
    return sum(p.stat().st_size for p in sealed_files(root))


@pytest.mark.parametrize("workers", [1, 2])
def test_sealed_chunks_round_trip_write_only_what_changed_and_detect_tampering(tmp_path, workers):
    """The restricted database is sealed in chunks: a seal writes only the chunks whose content changed (the
    nightly step no longer grows with the years kept), removes the ones no longer listed, and an unseal refuses a
    swapped, missing or damaged chunk, a damaged manifest or another key, leaving no plaintext; decrypted in one
    process or by two worker processes (a large database's unseal) alike."""
    key, other, chunk = b"k" * 32, b"o" * 32, 64 * 1024
    unseal = functools.partial(unseal_chunks, workers=workers)
    plain, back, sealed = tmp_path / "plain.bin", tmp_path / "back.bin", tmp_path / "sealed"
    data = bytearray(b"".join(b"0101801234 %07d " % i for i in range(40_000)))  # 11 chunks and a short one
    plain.write_bytes(data)
    first = seal_chunks(plain, sealed, key, chunk)
    assert first["chunks"] == -(-len(data) // chunk) == first["written"]
    files = sorted((sealed / "chunks").iterdir())
    assert len(files) == first["chunks"] and not [p for p in files if b"0101801234" in p.read_bytes()]
    unseal(sealed, back, key)
    assert back.read_bytes() == data
    inodes = {p.name: p.stat().st_ino for p in files}
    data[5 * chunk + 10: 5 * chunk + 20] = b"X" * 10  # one chunk changes, one is appended
    data += b"appended" * 8192
    plain.write_bytes(data)
    second = seal_chunks(plain, sealed, key, chunk)
    assert (second["chunks"], second["written"]) == (first["chunks"] + 1, 3)  # chunk 5, the old last one, the new
    now = {p.name: p.stat().st_ino for p in (sealed / "chunks").iterdir()}
    assert len(now) == second["chunks"] and len(set(now.items()) & set(inodes.items())) == first["chunks"] - 2
    unseal(sealed, back, key)
    assert back.read_bytes() == data
    assert seal_chunks(plain, sealed, key, chunk)["written"] == 0  # nothing changed: no chunk written
    back.unlink()
    with pytest.raises(SealError, match="another key"):
        unseal(sealed, back, other)
    assert not back.exists()
    names = sorted((sealed / "chunks").iterdir())
    a, b = names[0].read_bytes(), names[1].read_bytes()
    names[0].write_bytes(b)
    names[1].write_bytes(a)  # two valid age files of ours, swapped
    with pytest.raises(SealError, match="not the one the manifest lists"):
        unseal(sealed, back, key)
    assert not back.exists()
    names[0].write_bytes(a)
    names[1].unlink()
    with pytest.raises(SealError, match="damaged or truncated"):
        unseal(sealed, back, key)
    names[1].write_bytes(b[:-50])
    with pytest.raises(SealError, match="damaged or truncated"):
        unseal(sealed, back, key)
    names[1].write_bytes(b)
    unseal(sealed, back, key)
    assert back.read_bytes() == data
    good = (sealed / "manifest.age").read_bytes()
    manifest = bytearray(good)
    manifest[len(manifest) // 2] ^= 1
    (sealed / "manifest.age").write_bytes(bytes(manifest))
    with pytest.raises(SealError, match="damaged or truncated"):
        unseal(sealed, back, key)
    # a manifest anyone can write with the public recipient (here: the chunks in another order) fails its MAC
    ident = pyrage.x25519.Identity.from_str(age_identity(key))
    lines = pyrage.decrypt(good, [ident]).decode().splitlines()
    forged = "\n".join([*lines[:3], lines[4], lines[3], *lines[5:]]) + "\n"
    (sealed / "manifest.age").write_bytes(pyrage.encrypt(forged.encode(), [ident.to_public()]))
    back.unlink(missing_ok=True)
    with pytest.raises(SealError, match="MAC does not hold"):
        unseal(sealed, back, key)
    assert not back.exists()


def test_a_killed_loads_plaintext_is_removed_by_the_next_unseal(tmp_path, keydir):
    """A process killed while it holds the unsealed restricted database (SIGKILL: no cleanup runs) leaves the
    plaintext in memory-backed files; the next unseal removes the copies of processes that no longer exist and keeps
    a live process's."""
    root = tmp_path / "root"
    plain = tmp_path / "plain.duckdb"
    plain.write_bytes(b"0101801234 " * 50_000)
    seal_chunks(plain, sealed_path(root), wkeys.load_key("restricted"))
    child = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from pipelines.warehouse.restricted import unsealed\n"
        f"cm = unsealed(Path({str(root)!r}))\n"
        "print(cm.__enter__(), flush=True)\n"
        "time.sleep(120)\n")], stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])
    try:
        held = Path(child.stdout.readline().strip())
        assert held.read_bytes() == plain.read_bytes()  # the child holds the plaintext
        assert held.parent.name.startswith(f"dsdw-restricted-{child.pid}-")
        with unsealed(root) as mine:  # the child is alive: its copy stays
            assert held.exists() and mine.read_bytes() == plain.read_bytes()
        assert not mine.exists()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert held.exists()  # a killed process cannot remove it
    with unsealed(root) as mine:
        assert not held.parent.exists() and mine.parent.name.startswith(f"dsdw-restricted-{os.getpid()}-")
        assert oct(mine.parent.stat().st_mode & 0o777) == "0o700"


def test_rotating_the_restricted_key_reseals_every_chunk(tmp_path):
    """Unsealed with the old key and sealed with the new one, every chunk is written again (names and the manifest's
    MAC are keyed), the old chunks are gone, and only the new key opens the directory."""
    old, new, chunk = b"a" * 32, b"b" * 32, 64 * 1024
    plain, back, sealed = tmp_path / "plain.bin", tmp_path / "back.bin", tmp_path / "sealed"
    plain.write_bytes(b"".join(b"0101801234 %07d " % i for i in range(20_000)))
    seal_chunks(plain, sealed, old, chunk)
    before = {p.name for p in (sealed / "chunks").iterdir()}
    unseal_chunks(sealed, back, old)
    res = seal_chunks(back, sealed, new, chunk)
    after = {p.name for p in (sealed / "chunks").iterdir()}
    assert res["written"] == res["chunks"] == len(after) and not before & after
    back.unlink()
    with pytest.raises(SealError, match="another key"):
        unseal_chunks(sealed, back, old)
    unseal_chunks(sealed, back, new)
    assert back.read_bytes() == plain.read_bytes()


def test_sealed_chunks_open_with_the_standard_age_tool(tmp_path):
    """The operator's one-liner (pipelines.warehouse.sealed) gives the database back with ``age -d`` alone."""
    age = shutil.which("age")
    assert age, "the age command line tool is a test dependency (`make sysdeps` installs Debian's age)"
    key = bytes(range(32))
    plain, sealed = tmp_path / "plain.bin", tmp_path / "sealed"
    plain.write_bytes(b"".join(b"0101801234;restricted;%06d\n" % i for i in range(20_000)))
    seal_chunks(plain, sealed, key, 100_000)
    (tmp_path / "identity.txt").write_text(age_identity(key) + "\n")
    line = ("age -d -i ../identity.txt manifest.age | sed '1,3d;$d' | "
            'while read c m; do age -d -i ../identity.txt "chunks/$c.age"; done')
    out = subprocess.run(["bash", "-c", line], cwd=sealed, capture_output=True, check=True)
    assert out.stdout == plain.read_bytes()


def test_a_root_sealed_as_one_file_is_read_and_resealed_in_chunks(tmp_path, keydir):
    """A root sealed before the chunks (one age file) opens as before; its next seal writes the chunks and
    removes the single file, so one form is at rest."""
    root = tmp_path / "root"
    src = tmp_path / "old.duckdb"
    con = duckdb.connect(str(src))
    con.execute("CREATE TABLE person AS SELECT lpad(CAST(i AS VARCHAR), 10, '0') AS cpr FROM range(1000) r(i)")
    con.close()
    legacy_sealed_path(root).parent.mkdir(parents=True)
    seal_file(src, legacy_sealed_path(root), wkeys.load_key("restricted"))
    with unsealed(root) as plain:  # read-only: the old form stays
        assert duckdb.connect(str(plain)).execute("SELECT count(*) FROM person").fetchone()[0] == 1000
    assert legacy_sealed_path(root).exists() and not sealed_path(root).exists()
    with unsealed(root, write=True) as plain:
        con = duckdb.connect(str(plain))
        con.execute("INSERT INTO person VALUES ('0101801234')")
        con.close()
    assert not legacy_sealed_path(root).exists() and (sealed_path(root) / "manifest.age").exists()
    with unsealed(root) as plain:
        assert duckdb.connect(str(plain)).execute("SELECT count(*) FROM person").fetchone()[0] == 1001


def test_bitemporal_versions_and_as_of(tmp_path, keydir, monkeypatch):
    from dbt.adapters.base.impl import BaseAdapter

    root = tmp_path / "root"
    deliver(root, "kontaktgruppe", D1, [kg(KG_A, P1, "1", "2026-09-01"), kg(KG_B, P2, "2", "2026-09-15")])
    load_warehouse(root, D1)
    deliver(root, "kontaktgruppe", D2, [kg(KG_A, P1, "1", "2026-09-01", "2026-10-01", version=2, change="2")])
    load_warehouse(root, D2)
    deliver(root, "kontaktgruppe", D3, [kg(KG_B, P2, "2", "2026-09-15", version=2, change="3")])
    # a night of an unchanged project asks dbt's relation cache for no model's own table (materializations.sql,
    # dsdw_existing); the two lookups are the scopes' reads of dim_person and fct_person_week before they are
    # rebuilt (derived.sql, existing_relation)
    lookups: list[str] = []
    get_relation = BaseAdapter.get_relation
    monkeypatch.setattr(BaseAdapter, "get_relation",
                        lambda self, database, schema, identifier: lookups.append(identifier)
                        or get_relation(self, database, schema, identifier))
    load_warehouse(root, D3)
    assert sorted(lookups) == ["dim_person", "fct_person_week"]
    # append-only: 4 versions received, none erased
    assert q(root, "SELECT count(*) FROM fct_kontaktgruppe")[0][0] == 4
    hist = q(root, f"SELECT version, indlaest_dato, indlaest_til, er_slettet FROM fct_kontaktgruppe_historik "
                   f"WHERE kontaktgruppe_id = '{KG_A}' ORDER BY version")
    assert hist == [(1, D1, D2, False), (2, D2, None, False)]
    as_of = "SELECT kontaktgruppe_id, slutdato FROM fct_kontaktgruppe_as_of(DATE '{d}') ORDER BY 1"
    assert q(root, as_of.format(d=D1)) == [(KG_A, None), (KG_B, None)]
    assert q(root, as_of.format(d=D2)) == [(KG_A, dt.date(2026, 10, 1)), (KG_B, None)]
    assert q(root, as_of.format(d=D3)) == [(KG_A, dt.date(2026, 10, 1))]
    assert q(root, "SELECT kontaktgruppe_id FROM fct_kontaktgruppe_aktuel") == [(KG_A,)]
    # the person is a pseudonym; attributes are derived from the CPR
    key = wkeys.load_key("pseudonym")
    assert q(root, "SELECT person_key, foedselsaar, koen, alder FROM fct_kontaktgruppe_aktuel") == [
        (wkeys.person_key(P1, key), 1980, "M", 46)]
    assert q(root, "SELECT count(*), count(*) FILTER (er_seneste) FROM fct_kontaktgruppe_historik") == [(4, 2)]
    # the current state has no index on its record key (a night's record-key test guards it, scoped to the touched
    # records: test_person_spand); the facts none on person_key (kept sorted instead: test_clustering)
    assert q(root, "SELECT index_name FROM duckdb_indexes() WHERE table_name LIKE 'fct_kontaktgruppe%'") == []
    assert q(root, "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE '%dbt_tmp%'") == []
    # dbt's per-node SQL files are not written by a load (nothing reads them); partial parsing's state is kept
    target = root / "warehouse" / "dbt_target"
    assert (target / "partial_parse.msgpack").is_file()
    assert [p.name for p in target.rglob("*.sql")] == []
    # and the night's compiled Jinja templates are kept for the next process (dbt_runner._compiled_templates)
    assert (target / "jinja_code.marshal").stat().st_size > 0


def test_a_figure_known_on_day_d_is_reproduced_after_corrections(tmp_path, keydir):
    root = tmp_path / "root"
    deliver(root, "kontaktgruppe", D1, [kg(KG_A, P1, "1", "2026-09-01"), kg(KG_B, P2, "2", "2026-10-05")])
    load_warehouse(root, D1)
    figure = """SELECT g.ydelsesgruppe, count(DISTINCT person_key) FROM fct_kontaktgruppe_as_of(DATE '{d}') k
                JOIN dim_kontaktgruppe g USING (kontaktgruppe)
                WHERE k.startdato <= DATE '2026-10-31' AND coalesce(k.slutdato, DATE '9999-12-31') >= DATE '2026-10-01'
                GROUP BY 1 ORDER BY 1"""
    on_d1 = q(root, figure.format(d=D1))
    assert on_d1 == [("dagpenge", 1), ("kontanthjaelp", 1)]
    # later: A ended before October (a correction), B deleted, C new
    deliver(root, "kontaktgruppe", D2, [kg(KG_A, P1, "1", "2026-09-01", "2026-09-20", version=2, change="2"),
                                        kg(KG_B, P2, "2", "2026-10-05", version=2, change="3"),
                                        kg(KG_C, P2, "12", "2026-10-06")])
    load_warehouse(root, D2)
    assert q(root, figure.format(d=D1)) == on_d1
    assert q(root, figure.format(d=D2)) == [("uddannelseshjaelp", 1)]


def test_superseded_payload_is_retracted_from_its_load_on(tmp_path, keydir):
    root = tmp_path / "root"
    deliver(root, "kontaktgruppe", D1, [kg(KG_A, P1, "1", "2026-09-01"), kg(KG_B, P2, "1", "2026-09-15")], source="f1")
    load_warehouse(root, D1)
    # the reporter re-delivers the same file corrected: only A, with another start
    deliver(root, "kontaktgruppe", D1, [kg(KG_A, P1, "1", "2026-09-02")], source="f1")
    r = load_warehouse(root, D2)
    assert r.retracted == 1
    as_of = "SELECT kontaktgruppe_id, startdato FROM fct_kontaktgruppe_as_of(DATE '{d}') ORDER BY 1"
    assert q(root, as_of.format(d=D1)) == [(KG_A, dt.date(2026, 9, 1)), (KG_B, dt.date(2026, 9, 15))]
    assert q(root, as_of.format(d=D2)) == [(KG_A, dt.date(2026, 9, 2))]


def test_counts_reconcile_and_duplicates_in_a_load_are_counted(tmp_path, keydir):
    root = tmp_path / "root"
    same = kg(KG_A, P1, "1", "2026-09-01")
    deliver(root, "kontaktgruppe", D1, [same, dict(same), kg(KG_B, P2, "1", "2026-09-15")])
    r = load_warehouse(root, D1)
    assert r.rows_lake["kontaktgruppe"] == 3
    assert r.rows_staged["kontaktgruppe"] == 2
    assert r.rows_deduplicated == 1
    assert q(root, "SELECT sum(rows_lake), sum(rows_staged) FROM meta.loaded_payload") == [(3, 2)]
    assert all(c.passed for c in lake_ledger_checks(root))  # (dbt build failed the load on an error test)
    # the same payloads are never loaded twice
    assert load_warehouse(root, D2).payloads == 0
    assert q(root, "SELECT count(*) FROM fct_kontaktgruppe")[0][0] == 2


def dbt_test(root: Path, *select: str) -> dict[str, str]:
    """``dbt test`` on the warehouse as the last load left it: test name -> status."""
    from pipelines.warehouse.dbt_runner import dbt_env, run_dbt

    with unsealed(root) as plain:
        nodes = run_dbt(root, dbt_env(root, build_path(root), plain), "test", "--select", *select)
    return {uid.split(".")[2]: status for uid, (status, _, _) in nodes.items()}


def test_dbt_tests_find_overlapping_spells_and_unknown_codes(tmp_path, keydir):
    root = tmp_path / "root"
    deliver(root, "kontaktgruppe", D1, [kg(KG_A, P1, "1", "2026-09-01", "2026-10-10"),
                                        kg(KG_B, P1, "2", "2026-10-01", kommune="999")])
    load_warehouse(root, D1)  # warnings do not stop the load
    res = dbt_test(root, "fct_kontaktgruppe_aktuel")
    overlap = [st for n, st in res.items() if n.startswith("dsdw_no_overlap")]
    assert overlap == ["warn"]  # § 16, stk. 6: two spells of one person overlap
    # the code lists' accepted_values (generated from the contract's codelist fields; warn: kept as received)
    code = [st for n, st in res.items() if n.startswith("accepted_values") and "kommunekode" in n]
    assert code == ["warn"]  # kommunekode 999 is in no kommune list
    assert all(st in ("pass", "warn") for st in res.values())


def test_load_date_cannot_go_back(tmp_path, keydir):
    root = tmp_path / "root"
    deliver(root, "kontaktgruppe", D2, [kg(KG_A, P1, "1", "2026-09-01")])
    load_warehouse(root, D2)
    with pytest.raises(WarehouseError, match="before the last load"):
        load_warehouse(root, D1)


def test_failed_load_leaves_the_last_good_state(tmp_path, keydir):
    from pipelines.warehouse.dbt_runner import DbtError, load_warehouse_dbt, run_dbt

    root = tmp_path / "root"
    deliver(root, "kontaktgruppe", D1, [kg(KG_A, P1, "1", "2026-09-01")])
    load_warehouse(root, D1)
    sealed_before = {p: p.read_bytes() for p in sealed_files(root)}
    deliver(root, "kontaktgruppe", D2, [kg(KG_B, P2, "1", "2026-09-15")])

    def fails_after_building(root_: Path, env: dict[str, str], args: list[str]) -> dict:
        run_dbt(root_, env, "build", *args)  # the models are written, then a node fails
        raise DbtError("dbt build failed: model.dsdw.mart_zz_broken: error")

    with pytest.raises(DbtError, match="mart_zz_broken"):
        load_warehouse_dbt(root, D2, invoke=fails_after_building)
    assert {p: p.read_bytes() for p in sealed_files(root)} == sealed_before  # restricted DB not resealed
    con = duckdb.connect(str(build_path(root)), read_only=True)
    assert con.execute("SELECT count(*) FROM fct_kontaktgruppe").fetchone()[0] == 1
    assert con.execute("SELECT count(*) FROM meta.loaded_payload").fetchone()[0] == 1
    con.close()
    r = load_warehouse(root, D2)
    assert r.payloads == 1
    assert q(root, "SELECT count(*) FROM fct_kontaktgruppe_aktuel")[0][0] == 2


def test_restricted_db_holds_the_map_and_is_sealed(tmp_path, keydir):
    root = tmp_path / "root"
    deliver(root, "kontaktgruppe", D1, [kg(KG_A, P1, "1", "2026-09-01"), kg(KG_B, P2, "1", "2026-09-15")])
    load_warehouse(root, D1)
    raw = b"".join(p.read_bytes() for p in sealed_files(root))
    assert P1.encode() not in raw and P2.encode() not in raw
    key = wkeys.load_key("pseudonym")
    with open_restricted(root) as con:
        got = dict(con.execute("SELECT cpr, person_key FROM restricted.person").fetchall())
    assert got == {P1: wkeys.person_key(P1, key), P2: wkeys.person_key(P2, key)}
    # and the analysts' database has neither CPR
    con = duckdb.connect(str(published_path(root)), read_only=True)
    for (t,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name='main'").fetchall():
        for (col,) in con.execute(f"SELECT column_name FROM duckdb_columns() WHERE table_name = '{t}' "
                                  "AND data_type = 'VARCHAR'").fetchall():
            assert not con.execute(f"SELECT count(*) FROM {t} WHERE \"{col}\" IN (?, ?)", [P1, P2]).fetchone()[0]


def test_a_field_added_to_a_contract_reaches_the_existing_sorted_fact(tmp_path, keydir, monkeypatch):
    """Schema evolution: what `make generate` writes after a field is added (the staging model selects one more
    column) reaches the fact appended to, its current state and as-of macro. Every load here sorts the person
    tables again (thresholds 0): the new column survives the sort, and the person_key ART index an older build
    left is dropped by the first build of the changed project (the facts are sorted, not indexed), and so is the
    unique record-key index of the current state (its night guard is a scoped test now)."""
    from pipelines.warehouse import clustering, dbt_runner

    monkeypatch.setattr(clustering, "MIN_ROWS", 0)
    monkeypatch.setattr(clustering, "TAIL_MIN", 0)
    monkeypatch.setattr(clustering, "TAIL_SHARE", 0.0)
    monkeypatch.setattr(clustering, "MAX_RUNS", 1)  # every sort whole
    root = tmp_path / "root"
    deliver(root, "kontaktgruppe", D1, [kg(KG_A, P1, "1", "2026-09-01"), kg(KG_C, P3, "1", "2026-09-03")])
    r1 = load_warehouse(root, D1)
    assert "fct_kontaktgruppe" in r1.sorted_by_person and "fct_person_week" in r1.sorted_by_person
    comment = "SELECT comment FROM duckdb_tables() WHERE table_name = 'fct_kontaktgruppe'"
    assert q(root, comment) == [(f"person_key_sorted: {D1}; person_key_runs: 0",)]
    index = "SELECT index_name FROM duckdb_indexes() WHERE table_name LIKE 'fct_kontaktgruppe%'"
    assert q(root, index) == []
    con = duckdb.connect(str(build_path(root)))  # the indexes an older build made
    con.execute("CREATE INDEX fct_kontaktgruppe__person_key ON fct_kontaktgruppe (person_key)")
    con.execute("CREATE UNIQUE INDEX fct_kontaktgruppe_aktuel__key ON fct_kontaktgruppe_aktuel (kontaktgruppe_id)")
    con.close()
    project = tmp_path / "warehouse"
    shutil.copytree(dbt_runner.PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs"))
    stg = project / "dbt" / "models" / "staging" / "stg_jobcenter__kontaktgruppe.sql"
    stg.write_text(stg.read_text(encoding="utf-8").replace(
        "    foerste_anmodning,\n", "    foerste_anmodning,\n    'ny' AS ny_kolonne,\n"), encoding="utf-8")
    monkeypatch.setattr(dbt_runner, "PROJECT_DIR", project)
    deliver(root, "kontaktgruppe", D2, [kg(KG_B, P2, "1", "2026-09-15")])
    r2 = load_warehouse(root, D2)
    assert "fct_kontaktgruppe" in r2.sorted_by_person
    assert q(root, "SELECT kontaktgruppe_id, ny_kolonne FROM fct_kontaktgruppe ORDER BY 1") == [
        (KG_A, None), (KG_B, "ny"), (KG_C, None)]
    assert q(root, "SELECT kontaktgruppe_id, ny_kolonne FROM fct_kontaktgruppe_aktuel ORDER BY 1") == [
        (KG_A, None), (KG_B, "ny"), (KG_C, None)]
    assert q(root, "SELECT count(ny_kolonne) FROM fct_kontaktgruppe_as_of(DATE '2026-10-02')") == [(1,)]
    assert q(root, index) == [] and q(root, comment) == [(f"person_key_sorted: {D2}; person_key_runs: 0",)]
    # stored in person order: the rows as the table holds them are the rows sorted by person_key
    stored = q(root, "SELECT person_key FROM fct_kontaktgruppe ORDER BY rowid")
    assert stored == sorted(stored) and len(stored) == 3
    pk = wkeys.person_key(P2, wkeys.load_key("pseudonym"))
    assert q(root, f"SELECT kontaktgruppe_id FROM fct_kontaktgruppe WHERE person_key = '{pk}'") == [(KG_B,)]


def test_a_published_statistic_of_day_d_is_reproduced_from_the_as_of_facts(tmp_path, keydir):
    """The October figures the mart showed after load D1 are recomputed exactly from
    fct_kontaktgruppe_as_of(D1) after a correction and a deletion arrived (issue #5, bitemporal)."""
    from pipelines.warehouse.stats import ydelser_for_months

    root = tmp_path / "root"
    deliver(root, "kontaktgruppe", D1, [kg(KG_A, P1, "1", "2026-09-01"), kg(KG_B, P2, "2", "2026-09-20")])
    load_warehouse(root, D1)
    cols = "periode_type, periode_start, geo_niveau, geo_kode, ydelsesgruppe, antal_personer, fuldtidspersoner"
    where = "WHERE periode_type = 'maaned' AND periode_start = DATE '2026-10-01' AND geo_niveau = 'land'"
    published_d1 = q(root, f"SELECT {cols} FROM mart_ydelser {where} ORDER BY ydelsesgruppe")
    assert {r[4]: r[5] for r in published_d1} == {"dagpenge": 1, "kontanthjaelp": 1, "i alt": 2}
    deliver(root, "kontaktgruppe", D2, [kg(KG_A, P1, "1", "2026-09-01", "2026-09-25", version=2, change="2"),
                                        kg(KG_B, P2, "2", "2026-09-20", version=2, change="3")])
    load_warehouse(root, D2)
    now = {r[4]: r[5] for r in q(root, f"SELECT {cols} FROM mart_ydelser {where}")}
    assert now.get("dagpenge", 0) == 0 and now.get("kontanthjaelp", 0) == 0  # the current figures changed
    con = duckdb.connect(str(published_path(root)), read_only=True)
    spells = ("SELECT k.person_key, k.kommunekode, g.ydelsesgruppe, k.startdato, k.slutdato "
              f"FROM fct_kontaktgruppe_as_of(DATE '{D1}') k JOIN dim_kontaktgruppe g USING (kontaktgruppe)")
    rel = ydelser_for_months(con, spells, [dt.date(2026, 10, 1)], D1)
    again = sorted(rel.filter("periode_type = 'maaned' AND periode_start = DATE '2026-10-01' AND geo_niveau = 'land'")
                   .select(cols).fetchall(), key=lambda r: r[4])
    assert again == published_d1


def test_nightly_selection_builds_everything_until_the_project_is_unchanged():
    import duckdb

    from pipelines.warehouse.dbt_runner import nightly_selection, project_digest

    con = duckdb.connect()
    con.execute("CREATE SCHEMA meta")
    con.execute("CREATE TABLE meta.schema_state (name VARCHAR PRIMARY KEY, digest VARCHAR)")
    new = [{"dataset": "kontaktgruppe"}, {"dataset": "samtale"}, {"dataset": "kontaktgruppe"}]
    assert nightly_selection(con, new) == []  # nothing built yet: everything
    con.execute("INSERT INTO meta.schema_state VALUES ('dbt_project', 'an older project')")
    assert nightly_selection(con, new) == []  # the project or a code list changed: everything
    con.execute("UPDATE meta.schema_state SET digest = ?", [project_digest()])
    assert nightly_selection(con, new) == ["--select", "source:lake.kontaktgruppe+ source:lake.samtale+ tag:nightly",
                                           "--exclude", "config.materialized:view config.severity:warn tag:full_build"]
    assert nightly_selection(con, []) == ["--select", "tag:nightly",
                                          "--exclude", "config.materialized:view config.severity:warn tag:full_build"]
    # Dagster's dbt resource takes the selection out of the arguments (asset_utils): every selector, none left over
    # as a stray argument (which dbt refuses: every Dagster night after the first failed so)
    from dagster_dbt.asset_utils import extract_runtime_selection_from_args

    cleaned, selects, excludes = extract_runtime_selection_from_args(["build", *nightly_selection(con, new)])
    assert cleaned == ["build"]
    assert selects == ["source:lake.kontaktgruppe+", "source:lake.samtale+", "tag:nightly"]
    assert excludes == ["config.materialized:view", "config.severity:warn", "tag:full_build"]


def test_engine_functions_are_the_dbt_macros_duckdb_bodies():
    """The DuckDB macros of the statistics' Python model (generate.ENGINE_FUNCTIONS) are engines.sql's default__
    bodies, and every one has a spark__ body: both engines run the same definitions."""
    from pipelines.warehouse.generate import ENGINE_FUNCTIONS

    text = (Path(__file__).parents[2] / "warehouse" / "dbt" / "macros" / "engines.sql").read_text(encoding="utf-8")
    for name, (args, body) in ENGINE_FUNCTIONS.items():
        m = re.search(r"\{% macro default__" + name + r"\(([^)]*)\) -%\}\s*(.*?)\s*\{%- endmacro %\}", text, re.S)
        assert m, name
        params = [a.split("=")[0].strip() for a in m.group(1).split(",") if a.strip()]
        assert tuple(params) == args, name
        dbt_body = re.sub(r"'?\{\{ (\w+) \}\}'?", lambda g: g.group(1), m.group(2))
        assert " ".join(dbt_body.split()) == " ".join(body.split()), name
        assert re.search(r"\{% macro spark__" + name + r"\(", text), name
