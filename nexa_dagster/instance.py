"""The embedded (SQLite) instance storage, with pool slots that two processes cannot both claim.

Dagster's SQL storage claims a pool slot by selecting a free slot row and then updating it by id. PostgreSQL
locks the selected row (FOR UPDATE SKIP LOCKED); SQLite has no row locks and pysqlite runs the select outside
any transaction, so runs started together (two `dagster job execute` in CI, the daemon starting a queue) all
picked the same free slot and all ran their `gpu` step at once (measured: up to 5 of 6 processes "claimed" one
slot). Here the update only takes the slot if it is still free, which SQLite applies atomically; a process that
loses waits for the slot like any blocked step. dagster.yaml selects this storage with `storage: custom:`.
"""

from __future__ import annotations

import dagster._check as check
from dagster._core.storage.event_log.schema import ConcurrencySlotsTable
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.runs import SqliteRunStorage
from dagster._core.storage.schedules import SqliteScheduleStorage
from dagster._core.storage.sqlite_storage import (
    DagsterSqliteStorage,
    _event_logs_directory,
    _runs_directory,
    _schedule_directory,
)
from dagster._serdes import ConfigurableClassData
from dagster._utils import mkdir_p
from dagster._utils.concurrency import ConcurrencySlotStatus
from sqlalchemy import and_, select


class PoolSafeSqliteEventLogStorage(SqliteEventLogStorage):
    def _claim_concurrency_slot(self, concurrency_key: str, run_id: str, step_key: str) -> ConcurrencySlotStatus:
        free = and_(ConcurrencySlotsTable.c.concurrency_key == concurrency_key,
                    ConcurrencySlotsTable.c.step_key.is_(None), ConcurrencySlotsTable.c.deleted.is_(False))
        with self.index_connection() as conn:
            slot = conn.execute(select(ConcurrencySlotsTable.c.id).where(free).limit(1)).fetchone()
            if slot is None:
                return ConcurrencySlotStatus.BLOCKED
            # Compare-and-set: "and still free" makes a second claimant's update match no row.
            taken = conn.execute(ConcurrencySlotsTable.update().values(run_id=run_id, step_key=step_key)
                                 .where(and_(ConcurrencySlotsTable.c.id == slot[0], free))).rowcount
        return ConcurrencySlotStatus.CLAIMED if taken else ConcurrencySlotStatus.BLOCKED


class PoolSafeSqliteStorage(DagsterSqliteStorage):
    """`storage: sqlite:` with the pool-safe event log; same folders, so an existing instance keeps its runs."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        # DagsterSqliteStorage.__init__ minus its stock event log (building both would open the index twice).
        self.base_dir = check.str_param(base_dir, "base_dir")
        self._run_storage = SqliteRunStorage.from_local(_runs_directory(base_dir))
        self._event_log_storage = PoolSafeSqliteEventLogStorage(_event_logs_directory(base_dir))
        self._schedule_storage = SqliteScheduleStorage.from_local(_schedule_directory(base_dir))
        self._inst_data = check.opt_inst_param(inst_data, "inst_data", ConfigurableClassData)
        super(DagsterSqliteStorage, self).__init__()

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value) -> PoolSafeSqliteStorage:
        mkdir_p(config_value["base_dir"])
        return cls(inst_data=inst_data, **config_value)
