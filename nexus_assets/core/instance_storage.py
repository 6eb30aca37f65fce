"""Dagster's SQLite instance written at the speed of a run, not of the disk.

Dagster's SQLite storage opens a new connection for every event it stores (a NullPool engine per
call) and each of those connections, alone on its file, commits with an fsync of the WAL and,
closing, checkpoints the WAL into the database and deletes it: two to four disk flushes per event.
An image step of 103 services stores some 800 events (a materialization, its checks and step
outputs each), which on these machines' disks took 30-40 s of a fresh-machine run and cost every
run in proportion to what it records. Two settings, through SQLAlchemy's public connect event,
make that a page-cache write:
- `PRAGMA synchronous=NORMAL` on every connection to a database in WAL mode (all of Dagster's
  are): SQLite's documented setting for WAL, which never corrupts the database; a power loss or an
  OS crash (not a killed process) can lose the last transactions, which the next run observes again
  from the engine and the registry (the planner never trusts a record the engine contradicts);
- one idle connection kept open per database file (a keeper), so a closing connection is never the
  last one: it leaves the WAL to the automatic checkpoint instead of checkpointing on every close.
Keepers are bounded (the most recent files), so a long-lived process (a code server evaluating
sensors, which opens run shards as it reads) does not hold one file per run ever seen.
- the event log (one kept engine per database file), the runs and the schedules connecting
  through kept engines instead of a new engine and connection per statement group, three or four
  per event stored (core/dagster_private.pool_sqlite_storage), installed at the first SQLite
  connection: two runs of a 100-asset, 300-check step, 14.6-16.3 s -> 5.0-5.4 s.

`tune_sqlite()` is called where this project's code opens or executes on an instance (the CLI's
`open_instance`, the code location's definitions); calling it again does nothing."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

KEEPERS = 8  # database files kept open at once: the index, runs, schedules and the latest run shards

_lock = threading.Lock()
_keepers: OrderedDict[str, sqlite3.Connection] = OrderedDict()
_dispose_engines: list[Callable[[], None]] = []  # disposes the storages' kept engines (once installed)
_pool_lock = threading.Lock()
_installed = False


def tune_sqlite() -> None:
    """Install the connect hook (once per process)."""
    global _installed
    with _lock:
        if _installed:
            return
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        event.listen(Engine, "connect", _on_connect)
        _installed = True


def _keep_engines() -> None:
    """Dagster's SQLite storages keep their engines (dagster_private.pool_sqlite_storage), from
    the first SQLite connection on: by then Dagster has imported its storage modules, which a code
    location that only loads its definitions never needs (half a second of its load time)."""
    with _pool_lock:
        if not _dispose_engines:
            from nexus_assets.core.dagster_private import pool_sqlite_storage

            _dispose_engines.append(pool_sqlite_storage(KEEPERS))


def release() -> None:
    """Close every keeper: the last connection to each file closing checkpoints its WAL into the
    database and deletes it, so the files are as this process will leave them when it ends (what
    the nothing-changed check fingerprints, cli/unchanged.py). Later connections keep files anew."""
    for dispose in _dispose_engines:
        dispose()
    with _lock:
        while _keepers:
            _keepers.popitem(last=False)[1].close()


def kept_files() -> list[str]:
    """The database files a keeper holds open now (for tests and diagnostics)."""
    with _lock:
        return list(_keepers)


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return  # PostgreSQL (the containerized stack) or anything else: untouched
    _keep_engines()
    cursor = dbapi_connection.cursor()
    try:
        if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
            return  # NORMAL is safe against corruption in WAL mode only; a new shard is WAL from its next connection
        cursor.execute("PRAGMA synchronous=NORMAL")
        path = next((row[2] for row in cursor.execute("PRAGMA database_list") if row[1] == "main"), "")
    finally:
        cursor.close()
    if path:
        _keep(path)


def _keep(path: str) -> None:
    with _lock:
        if path in _keepers:
            _keepers.move_to_end(path)
            return
        if not os.path.isfile(path):
            return
        keeper = sqlite3.connect(path, check_same_thread=False)
        # A read maps the WAL index: from then on the keeper counts as a connection to the file.
        keeper.execute("SELECT count(*) FROM sqlite_master").fetchall()
        _keepers[path] = keeper
        while len(_keepers) > KEEPERS:
            _keepers.popitem(last=False)[1].close()
