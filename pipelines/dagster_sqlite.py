"""Dagster's SQLite storages with one engine per database instead of one per statement.

Why: the stock SQLite event-log and run storages build a new SQLAlchemy engine (``NullPool``), connect,
commit and dispose it for every event they store; a demo night writes hundreds of events, and on the
demo's 2-core machine that bookkeeping cost about as much CPU as the ingestion it records.  These
subclasses keep the files, schema and layout of the stock ``DagsterSqliteStorage`` (``dagster dev`` and
the stock classes read them unchanged) and only cache the engines, with SQLite's ``synchronous=NORMAL``
(a crash may lose the last events, never corrupt the file).  Selected in the demo's dagster.yaml.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from dagster._core.storage.event_log.sqlite.sqlite_event_log import INDEX_SHARD_NAME, SqliteEventLogStorage
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.sql import create_engine
from dagster._serdes import ConfigurableClassData
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool

#: Engines kept open at once (one per run shard, plus the index): a run's events go to its own shard.
MAX_ENGINES = 8
BUSY_TIMEOUT_S = 30


def _engine(conn_string: str) -> Engine:
    engine = create_engine(conn_string, poolclass=QueuePool, pool_size=1, max_overflow=4,
                           connect_args={"timeout": BUSY_TIMEOUT_S, "check_same_thread": False})

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA synchronous=NORMAL")

    return engine


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """The stock sharded SQLite event log (one file per run plus the index), engines cached."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._tables: set[str] = set()
        # a run's shard is created by copying an empty one: the stock creation (schema, alembic's
        # revision check and stamp) costs more than a small run's events
        self._template: str | None = None
        self._template_dir = tempfile.TemporaryDirectory(prefix="dsdw-dagster-shard-")
        super().__init__(base_dir, inst_data)

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: Any
                          ) -> PooledSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        with self._db_lock:
            engine = self._engines.get(shard)
            if engine is None:
                path = self.path_for_shard(shard)
                fresh_run = shard != INDEX_SHARD_NAME and shard not in self._initialized_dbs and \
                    not os.path.exists(path)
                if fresh_run and self._template is not None:
                    shutil.copyfile(self._template, path)  # an empty shard at the head revision
                    self._initialized_dbs.add(shard)
                engine = _engine(self.conn_string_for_shard(shard))
                if shard not in self._initialized_dbs:
                    self._initdb(engine)
                    self._initialized_dbs.add(shard)
                    if fresh_run:  # keep the new, still empty shard as the template of the next runs'
                        engine.dispose()  # closes the connections: the WAL is checkpointed into the file
                        self._template = os.path.join(self._template_dir.name, "shard.db")
                        shutil.copyfile(path, self._template)
                self._engines[shard] = engine
                while len(self._engines) > MAX_ENGINES:
                    self._engines.popitem(last=False)[1].dispose()
            else:
                self._engines.move_to_end(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def has_table(self, table_name: str) -> bool:
        """The stock method opens a fresh engine and inspects the schema for every asset and check event;
        a table, once there, stays: positive answers are cached.  (Called inside the index shard's open
        transaction, so never through ``_connect``, whose lock that transaction holds.)"""
        if table_name in self._tables:
            return True
        found = super().has_table(table_name)
        if found:
            self._tables.add(table_name)
        return found

    def dispose(self) -> None:
        with self._db_lock:
            while self._engines:
                self._engines.popitem()[1].dispose()
        super().dispose()


class PooledSqliteRunStorage(SqliteRunStorage):
    """The stock SQLite run storage (runs.db), its engine cached."""

    def __init__(self, conn_string: str, inst_data: ConfigurableClassData | None = None) -> None:
        super().__init__(conn_string, inst_data)
        self._engine: Engine | None = None

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: Any
                          ) -> PooledSqliteRunStorage:
        return cls.from_local(inst_data=inst_data, **config_value)  # creates/migrates runs.db as stock

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        if self._engine is None:
            self._engine = _engine(self._conn_string)
        with self._engine.connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        super().dispose()
