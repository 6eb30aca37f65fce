"""Every private Dagster name nexus-assets uses, in one place: Dagster has no public API for
these, and a Dagster upgrade may move or change any of them. `PRIVATE` names each one;
tests/core/test_dagster_private.py resolves every entry and checks the parameters called here,
so an upgrade that breaks one fails that test by name instead of a run in the field.

- The stale-status resolver behind the UI's "Stale" badge and `RunRequest(stale_assets_only=True)`
  (`stale_statuses`): the one answer to "what is stale" (core/lineage.py).
- Dagster's SQL event log, read in grouped queries (`newest_event_ids`, `events_by_id`): Dagster
  reads the newest observation one query per key; 300 services would be 300 queries.
- A step's versions of its inputs that are outputs of the same step, read in one query
  (`prefetch_input_versions`): Dagster reads each one query per key.
- Dagster's SQLite storages connecting through kept engines (`pool_sqlite_storage`): Dagster
  creates an engine, opens a connection, and closes both for every statement group, three or
  four times per event stored (core/instance_storage.py).

Imports happen inside the functions: `nexus-agent run` with nothing changed loads no Dagster at all
(cli/unchanged.py), and the code location pays for them only when it asks."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, cast

import dagster as dg

if TYPE_CHECKING:  # annotations only (lineage.py and plan.py take the name from here)
    from dagster._core.definitions.assets.graph.base_asset_graph import BaseAssetGraph as BaseAssetGraph
    from dagster._core.storage.asset_check_execution_record import (
        AssetCheckExecutionRecord as AssetCheckExecutionRecord,
    )

# name -> "module:attribute" (attribute.method for a method called on an instance of it)
PRIVATE = {
    "BaseAssetGraph": "dagster._core.definitions.assets.graph.base_asset_graph:BaseAssetGraph",
    "AssetCheckExecutionRecord": "dagster._core.storage.asset_check_execution_record:AssetCheckExecutionRecord",
    "CachingStaleStatusResolver": "dagster._core.definitions.data_version:CachingStaleStatusResolver",
    "StaleStatus": "dagster._core.definitions.data_version:StaleStatus",
    "LoadingContext": "dagster._core.loader:LoadingContext",
    "CachingInstanceQueryer": "dagster._utils.caching_instance_queryer:CachingInstanceQueryer",
    "CachingInstanceQueryer.prefetch_asset_records":
        "dagster._utils.caching_instance_queryer:CachingInstanceQueryer.prefetch_asset_records",
    "SqlEventLogStorage": "dagster._core.storage.event_log.sql_event_log:SqlEventLogStorage",
    "SqliteEventLogStorage": "dagster._core.storage.event_log.sqlite.sqlite_event_log:SqliteEventLogStorage",
    "SqliteEventLogStorage._connect": "dagster._core.storage.event_log.sqlite.sqlite_event_log:SqliteEventLogStorage._connect",
    "SqliteEventLogStorage._initdb": "dagster._core.storage.event_log.sqlite.sqlite_event_log:SqliteEventLogStorage._initdb",
    "SqliteEventLogStorage.conn_string_for_shard":
        "dagster._core.storage.event_log.sqlite.sqlite_event_log:SqliteEventLogStorage.conn_string_for_shard",
    "SqliteEventLogStorage.has_table":
        "dagster._core.storage.event_log.sqlite.sqlite_event_log:SqliteEventLogStorage.has_table",
    "SqliteRunStorage.connect": "dagster._core.storage.runs.sqlite.sqlite_run_storage:SqliteRunStorage.connect",
    "SqliteRunStorage": "dagster._core.storage.runs.sqlite.sqlite_run_storage:SqliteRunStorage",
    "SqliteScheduleStorage": "dagster._core.storage.schedules.sqlite.sqlite_schedule_storage:SqliteScheduleStorage",
    "SqliteScheduleStorage.connect":
        "dagster._core.storage.schedules.sqlite.sqlite_schedule_storage:SqliteScheduleStorage.connect",
    "SQLITE_BUSY_TIMEOUT_SECONDS": "dagster._core.storage.sqlite:SQLITE_BUSY_TIMEOUT_SECONDS",
    "SqlEventLogStorage._add_assets_wipe_filter_to_query":
        "dagster._core.storage.event_log.sql_event_log:SqlEventLogStorage._add_assets_wipe_filter_to_query",
    "SqlEventLogStorage._get_assets_details":
        "dagster._core.storage.event_log.sql_event_log:SqlEventLogStorage._get_assets_details",
    "SqlEventLogStorage.index_connection":
        "dagster._core.storage.event_log.sql_event_log:SqlEventLogStorage.index_connection",
    "SqlEventLogStorageTable": "dagster._core.storage.event_log.schema:SqlEventLogStorageTable",
    "StepExecutionContext": "dagster._core.execution.context.system:StepExecutionContext",
    "DataVersionCache._fetch_input_asset_version_info":
        "dagster._core.execution.context.data_version_cache:DataVersionCache._fetch_input_asset_version_info",
}


def private(name: str) -> Any:
    """The private Dagster object PRIVATE names (ImportError/AttributeError naming it when gone)."""
    module, _, path = PRIVATE[name].partition(":")
    found: Any = importlib.import_module(module)
    for part in path.split("."):
        found = getattr(found, part)
    return found


def sql_storage(instance: dg.DagsterInstance) -> Any | None:
    """The instance's event log when it is Dagster's SQL one (every storage Dagster ships), else None."""
    storage = instance.event_log_storage
    return storage if isinstance(storage, private("SqlEventLogStorage")) else None


def newest_event_ids(storage: Any, keys: list[dg.AssetKey], kind: dg.DagsterEventType) -> dict[dg.AssetKey, int]:
    """The storage id of each key's newest event of this kind, in one grouped query on Dagster's
    SQL event log, honouring wipes as Dagster's own per-key reads do."""
    import sqlalchemy as db

    events = private("SqlEventLogStorageTable")
    newest = (db.select(events.c.asset_key, db.func.max(events.c.id))
              .where(events.c.dagster_event_type == kind.value, events.c.asset_key.in_([k.to_string() for k in keys]))
              .group_by(events.c.asset_key))
    newest = storage._add_assets_wipe_filter_to_query(newest, storage._get_assets_details(keys), keys)
    with storage.index_connection() as conn:
        rows = conn.execute(newest).fetchall()
    return {key: row[1] for row in rows if (key := dg.AssetKey.from_db_string(row[0])) is not None}


def events_by_id(storage: Any, ids: list[int]) -> list[dg.EventLogRecord]:
    """The events of these storage ids, in one query (Dagster's public reader by storage ids,
    get_event_records, is deprecated; fetch_observations reads one key at a time)."""
    if not ids:
        return []
    import sqlalchemy as db

    events = private("SqlEventLogStorageTable")
    with storage.index_connection() as conn:
        rows = conn.execute(db.select(events.c.id, events.c.event).where(events.c.id.in_(ids))).fetchall()
    return [dg.EventLogRecord(storage_id=row[0], event_log_entry=dg.deserialize_value(row[1], dg.EventLogEntry))
            for row in rows]


def stale_statuses(asset_graph: BaseAssetGraph[Any], instance: dg.DagsterInstance,
                   keys: Iterable[dg.AssetKey]) -> dict[dg.AssetKey, tuple[str, list[tuple[dg.AssetKey, str, str]]]]:
    """Dagster's stale status of each key: {key: ("missing" | "stale", [(upstream key, its new
    data version, cause reason)...])} for the keys that are not fresh."""
    resolver_class, stale_status = private("CachingStaleStatusResolver"), private("StaleStatus")
    loading_context, queryer_class = private("LoadingContext"), private("CachingInstanceQueryer")

    class _Loading(loading_context):  # type: ignore[misc,valid-type]  # one batch-loading scope for this call
        def __init__(self) -> None:
            self._loaders: dict[type, Any] = {}

        @property
        def instance(self) -> dg.DagsterInstance:
            return instance

        @property
        def loaders(self) -> dict[type, Any]:
            return self._loaders

    keys = list(keys)
    loading = _Loading()
    queryer = queryer_class(instance, asset_graph, loading)
    # One query for every asset record the verdict reads, instead of one query per record.
    queryer.prefetch_asset_records({k for key in keys for k in (key, *asset_graph.get(key).parent_keys)})
    resolver = resolver_class(instance, asset_graph, loading, instance_queryer=queryer)
    found: dict[dg.AssetKey, tuple[str, list[tuple[dg.AssetKey, str, str]]]] = {}
    for key in keys:
        status = resolver.get_status(key)
        if status == stale_status.MISSING:
            found[key] = ("missing", [])
        elif status == stale_status.STALE:
            causes = [(c.key.asset_key, resolver.get_current_data_version(c.key.asset_key).value, c.reason)
                      for c in resolver.get_stale_root_causes(key)]
            found[key] = ("stale", causes)
    return found


def prefetch_input_versions(context: dg.OpExecutionContext, keys: Iterable[dg.AssetKey]) -> None:
    """Read, in one query, the versions Dagster records as the provenance of the step's next
    outputs for these inputs. Dagster reads the versions of a step's inputs from other steps in
    one query when the step starts, but an input that is also an output of the same step (an
    internal dependency) one query per key when an output that depends on it is recorded:
    `attestations` over every service's provenance was one query per service. Call it after the
    outputs those keys name are recorded (Dagster forgets a key's version when it records it)."""
    step = context.get_step_execution_context()
    cache = step._data_version_cache  # the step's DataVersionCache
    missing = [k for k in dict.fromkeys(keys) if k not in (step.input_asset_records or {})]
    if missing:
        private("DataVersionCache._fetch_input_asset_version_info")(cache, missing)


def pool_sqlite_storage(keep: int) -> Callable[[], None]:
    """Dagster's default SQLite storages connecting through kept engines instead of a new engine
    and SQLite connection for every statement group (three or four per event stored):
    - SqliteEventLogStorage._connect: one engine per database file, used under the storage's own
      lock (`_db_lock`) as before, with Dagster's busy timeout; a database is initialised the first
      time a storage touches it, also again after `wipe` (which forgets that); at most `keep`
      engines per storage, the oldest disposed;
    - SqliteEventLogStorage.has_table, asked on every asset event: a table once there is remembered
      (Dagster's migrations add tables, nothing here drops one);
    - SqliteRunStorage.connect and SqliteScheduleStorage.connect: one engine per storage, one
      connection kept (a second thread at the same moment gets one of its own, closed after use
      as Dagster's are: no limit, no wait).
    Returns the function that disposes every kept engine (their connections close, so each file's
    last close checkpoints its WAL as at the end of a process). Once per process: later calls
    return the same function."""
    import contextlib
    import threading
    import weakref
    from collections import OrderedDict

    import sqlalchemy as db
    from sqlalchemy.pool import NullPool, QueuePool

    event_log = private("SqliteEventLogStorage")
    if getattr(event_log._connect, "nexus_dispose", None) is not None:
        return cast(Callable[[], None], event_log._connect.nexus_dispose)
    busy_timeout = private("SQLITE_BUSY_TIMEOUT_SECONDS")
    touched: weakref.WeakSet[Any] = weakref.WeakSet()  # storages holding kept engines
    touched_lock = threading.Lock()

    def kept(url: str, **arguments: Any) -> Any:
        return db.create_engine(url, poolclass=QueuePool, pool_size=1, max_overflow=-1,
                                connect_args={**arguments, "check_same_thread": False})

    def remember(storage: Any) -> None:
        with touched_lock:
            touched.add(storage)

    @contextlib.contextmanager
    def _connect(self: Any, shard: str) -> Iterator[Any]:
        with self._db_lock:
            engines: OrderedDict[str, Any] = self.__dict__.setdefault("_nexus_engines", OrderedDict())
            engine = engines.get(shard)
            if engine is not None and shard not in self._initialized_dbs:  # wiped: the file may be new
                engines.pop(shard).dispose()
                engine = None
            if engine is None:
                url = self.conn_string_for_shard(shard)
                if shard not in self._initialized_dbs:  # as Dagster does it: its own engine, which it may connect twice
                    self._initdb(db.create_engine(url, poolclass=NullPool, connect_args={"timeout": busy_timeout}))
                    self._initialized_dbs.add(shard)
                engine = engines[shard] = kept(url, timeout=busy_timeout)
                remember(self)
                while len(engines) > keep:
                    engines.popitem(last=False)[1].dispose()
            engines.move_to_end(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    original_has_table = event_log.has_table

    def has_table(self: Any, table_name: str) -> bool:
        tables: set[str] = self.__dict__.setdefault("_nexus_tables", set())
        if table_name not in tables and original_has_table(self, table_name):
            tables.add(table_name)
        return table_name in tables

    def connect_once(storage_class: Any) -> None:
        lock = threading.Lock()

        @contextlib.contextmanager
        def connect(self: Any) -> Iterator[Any]:
            with lock:
                engine = self.__dict__.get("_nexus_engine")
                if engine is None:
                    engine = self.__dict__["_nexus_engine"] = kept(self._conn_string)
                    remember(self)
            with engine.connect() as conn, conn.begin():
                yield conn

        storage_class.connect = connect

    def dispose_all() -> None:
        with touched_lock:
            storages = list(touched)
        for storage in storages:
            engine = storage.__dict__.pop("_nexus_engine", None)
            if engine is not None:
                engine.dispose()
            if "_nexus_engines" in storage.__dict__:
                with storage._db_lock:
                    engines = storage.__dict__["_nexus_engines"]
                    while engines:
                        engines.popitem()[1].dispose()

    _connect.nexus_dispose = dispose_all  # type: ignore[attr-defined]
    event_log._connect = _connect
    event_log.has_table = has_table
    connect_once(private("SqliteRunStorage"))
    connect_once(private("SqliteScheduleStorage"))
    return dispose_all
