"""Dagster's SQLite instance, tuned (core/instance_storage.py): WAL with synchronous=NORMAL and a
keeper connection per file, and nothing committed lost when the process is killed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from nexus_assets.core import instance_storage
from nexus_assets.core.instance_storage import kept_files, tune_sqlite

MATERIALIZE = textwrap.dedent("""
    import os, signal, sys
    import dagster as dg
    from nexus_assets.core.instance_storage import tune_sqlite

    tune_sqlite()
    specs = [dg.AssetSpec(["s", str(i)]) for i in range(int(sys.argv[1]))]

    @dg.multi_asset(specs=specs)
    def many():
        for spec in specs:
            yield dg.MaterializeResult(asset_key=spec.key, metadata={"n": int(spec.key.path[-1])})

    dg.materialize([many], instance=dg.DagsterInstance.get())
    print("materialized", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # no exit handler, no connection closed
""")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    return tmp_path


def test_connections_to_dagsters_files_are_tuned_and_kept(home: Path) -> None:
    tune_sqlite()
    tune_sqlite()  # again: still one hook
    assert event.contains(Engine, "connect", instance_storage._on_connect)

    @dg.asset
    def one() -> None:
        return None

    with dg.DagsterInstance.get() as instance:
        assert dg.materialize([one], instance=instance).success
    index = home / "history" / "runs" / "index.db"
    assert str(index) in kept_files()
    # Every Dagster connection is closed, but the keeper is not: the WAL stays (no checkpoint and
    # delete on each close), and a new connection through SQLAlchemy is NORMAL, not FULL.
    assert Path(f"{index}-wal").exists()
    engine = create_engine(f"sqlite:///{index}")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA synchronous")).scalar() == 1
    engine.dispose()


def test_a_database_not_in_wal_mode_is_left_as_it_is(tmp_path: Path) -> None:
    tune_sqlite()
    path = tmp_path / "plain.db"
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (x)"))
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL: SQLite's default
    engine.dispose()
    assert str(path) not in kept_files()


def test_keepers_are_bounded(tmp_path: Path) -> None:
    tune_sqlite()
    for i in range(instance_storage.KEEPERS + 3):
        engine = create_engine(f"sqlite:///{tmp_path / f'{i}.db'}", poolclass=NullPool)  # as Dagster's
        with engine.begin() as connection:
            connection.execute(text("PRAGMA journal_mode=WAL"))
            connection.execute(text("CREATE TABLE t (x)"))
        with engine.connect():  # a new connection: now WAL, kept
            pass
        engine.dispose()
    kept = [f for f in kept_files() if f.startswith(str(tmp_path))]
    assert len(kept_files()) <= instance_storage.KEEPERS
    assert kept == [str(tmp_path / f"{i}.db") for i in range(3, instance_storage.KEEPERS + 3)]


def test_a_killed_process_loses_nothing_it_committed(home: Path) -> None:
    done = subprocess.run([sys.executable, "-c", MATERIALIZE, "40"], capture_output=True, text=True,
                          env={**os.environ, "DAGSTER_HOME": str(home)}, timeout=300)
    assert done.returncode == -9 and "materialized" in done.stdout, done.stderr[-2000:]
    with dg.DagsterInstance.get() as instance:
        latest = {i: instance.get_latest_materialization_event(dg.AssetKey(["s", str(i)])) for i in range(40)}
        assert all(event is not None for event in latest.values())
        assert latest[39].asset_materialization.metadata["n"].value == 39  # type: ignore[union-attr]
        [run] = instance.get_runs()
        assert run.is_success


STAMP_THEN_EXIT = textwrap.dedent("""
    import sys
    from pathlib import Path
    import dagster as dg
    from nexus_assets.cli.unchanged import _dagster_storage
    from nexus_assets.core.instance_storage import release, tune_sqlite

    tune_sqlite()

    @dg.asset
    def one() -> None:
        return None

    instance = dg.DagsterInstance.get()
    assert dg.materialize([one], instance=instance).success
    if sys.argv[1] == "release":
        release()
    print(_dagster_storage(Path(sys.argv[2])))
""")


def test_released_keepers_leave_the_files_as_the_process_leaves_them(home: Path) -> None:
    """The nothing-changed stamp fingerprints Dagster's files by stat while the process that wrote
    them still runs: with the kept connections and engines released first, the files the next run
    sees are the ones stamped (left open, their close at exit may checkpoint the WAL after the
    stamp, and the next run then never matches: seen at 103 services)."""
    from nexus_assets.cli.unchanged import _dagster_storage

    done = subprocess.run([sys.executable, "-c", STAMP_THEN_EXIT, "release", str(home)],
                          capture_output=True, text=True, env={**os.environ, "DAGSTER_HOME": str(home)}, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == _dagster_storage(home)


def test_the_event_log_stores_through_one_kept_connection_per_file_and_survives_a_wipe(home: Path) -> None:
    """Dagster's event log connects through a kept engine per file (dagster_private.pool_sqlite_event_log):
    storing 20 materializations and 20 checks opens the index a few times, not once per event;
    a wiped event log is initialised again and stores and reads as before."""
    tune_sqlite()
    opened: list[str] = []

    def count(dbapi_connection, _record) -> None:
        opened.extend(row[2] for row in dbapi_connection.execute("PRAGMA database_list") if row[1] == "main")

    specs = [dg.AssetSpec(["p", str(i)]) for i in range(20)]

    @dg.multi_asset(specs=specs, check_specs=[dg.AssetCheckSpec("ok", asset=s.key) for s in specs])
    def twenty():
        for spec in specs:
            yield dg.MaterializeResult(asset_key=spec.key)
            yield dg.AssetCheckResult(asset_key=spec.key, check_name="ok", passed=True)

    event.listen(Engine, "connect", count)
    try:
        with dg.DagsterInstance.get() as instance:
            assert dg.materialize([twenty], instance=instance).success
            index = str(home / "history" / "runs" / "index.db")
            # Initialising the files and the storage's first use, not one per event (66 before).
            assert 1 <= opened.count(index) <= 12, opened.count(index)
            instance.wipe()
            assert dg.materialize([twenty], instance=instance).success
            assert len(instance.fetch_materializations(dg.AssetKey(["p", "3"]), limit=5).records) == 1
    finally:
        event.remove(Engine, "connect", count)
        instance_storage.release()


def test_threads_share_the_kept_engines_without_waiting_on_each_other(home: Path) -> None:
    """Many threads reading runs and events at once while a run stores its events: every read
    answers (a kept engine hands a busy moment's extra thread a connection of its own)."""
    from concurrent.futures import ThreadPoolExecutor

    tune_sqlite()

    @dg.asset
    def seen() -> None:
        return None

    with dg.DagsterInstance.get() as instance:
        assert dg.materialize([seen], instance=instance).success

        def read(_: int) -> int:
            for _ in range(20):
                assert instance.get_run_records(limit=5)
                assert instance.fetch_materializations(dg.AssetKey("seen"), limit=1).records
            return 1

        with ThreadPoolExecutor(max_workers=8) as pool:
            readers = pool.map(read, range(8))
            assert dg.materialize([seen], instance=instance).success
            assert sum(readers) == 8
    instance_storage.release()
