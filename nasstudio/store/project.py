"""The project store: one SQLite file (WAL) of tasks, architectures, measurements, predictions,
prompts and jobs. Every write is one transaction; each thread gets its own connection."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nasstudio.metrics import efficiency
from nasstudio.space import FEATURE_NAMES, Architecture, average_features
from nasstudio.store.schema import migrate

ANALYTIC_SOURCE = "analytic"
_FEATURE_PLACEHOLDERS = ", ".join("?" * len(FEATURE_NAMES))

# Metric names used across the store, the CLI and the GUI.
BLEU_VALID = "bleu_valid"
BLEU_TEST = "bleu_test"
LATENCY_MS = "latency_ms"
GFLOPS = "gflops"
PARAMS = "params"
PARAMS_NO_EMB = "params_no_emb"


@dataclass(frozen=True, slots=True)
class Task:
    name: str
    vocab_size: int
    space: str
    description: str = ""


# Tasks whose vocabulary and space are known, so that importing their files needs no questions.
KNOWN_TASKS: dict[str, Task] = {
    t.name: t
    for t in (
        Task("wmt14ende", 32768, "hat-wmt", "WMT'14 English-German"),
        Task("wmt14enfr", 44512, "hat-wmt", "WMT'14 English-French"),
        Task("wmt19ende", 49600, "hat-wmt", "WMT'19 English-German"),
        Task("demo", 256, "tiny-cpu", "Synthetic demo language pair (not real language)"),
    )
}


@dataclass(frozen=True, slots=True)
class Measurement:
    arch_id: str
    task: str
    metric: str
    value: float
    source: str
    device: str = ""
    std: float | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Prediction:
    arch_id: str
    task: str
    metric: str
    value: float
    predictor_kind: str
    predictor: str
    std: float | None = None
    prompt_version: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    created_at: float = 0.0


@dataclass(frozen=True, slots=True)
class JobRecord:
    id: int
    kind: str
    title: str
    params: dict[str, Any]
    state: str
    progress: float
    message: str
    error: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None


class Project:
    """A project file. Safe to share between threads: each thread uses its own connection."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        conn = self._conn()
        migrate(conn, str(self.path))

    # --- connections and transactions -------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All writes inside commit together or not at all."""
        conn = self._conn()
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def data_version(self) -> int:
        """Changes whenever another connection (thread or process) commits; cheap to poll."""
        return self._conn().execute("PRAGMA data_version").fetchone()[0]

    # --- tasks -------------------------------------------------------------------------------

    def ensure_task(self, task: Task) -> Task:
        """Register ``task``, or return the registered one after checking it agrees."""
        existing = self.task(task.name)
        if existing is None:
            with self.transaction() as conn:
                conn.execute(
                    "INSERT INTO tasks VALUES (?, ?, ?, ?)",
                    (task.name, task.vocab_size, task.space, task.description),
                )
            return task
        if (existing.vocab_size, existing.space) != (task.vocab_size, task.space):
            raise ValueError(
                f"task '{task.name}' exists with vocabulary {existing.vocab_size} and space "
                f"'{existing.space}', not {task.vocab_size} / '{task.space}'"
            )
        return existing

    def task(self, name: str) -> Task | None:
        row = self._conn().execute("SELECT * FROM tasks WHERE name = ?", (name,)).fetchone()
        return Task(*row) if row else None

    def tasks(self) -> list[Task]:
        return [Task(*row) for row in self._conn().execute("SELECT * FROM tasks ORDER BY name")]

    # --- architectures -----------------------------------------------------------------------

    def add_architectures(self, task: str, archs: Sequence[Architecture], origin: str) -> list[str]:
        """Add ``archs`` to ``task`` with their analytic GFLOPs and parameter counts.

        Returns the ids that were new to the task; architectures already there are left as they
        are. Everything is written in the caller's transaction, or one of its own.
        """
        spec = self._require_task(task)
        now = time.time()
        with self.transaction() as conn:
            known = {
                row[0]
                for row in conn.execute(
                    "SELECT arch_id FROM task_architectures WHERE task = ?", (task,)
                )
            }
            new = list({a.id: a for a in archs if a.id not in known}.values())
            conn.executemany(
                f"INSERT OR IGNORE INTO architectures VALUES (?, ?, {_FEATURE_PLACEHOLDERS}, ?)",
                [(a.id, a.canonical_json(), *average_features(a).tolist(), now) for a in new],
            )
            conn.executemany(
                "INSERT INTO task_architectures VALUES (?, ?, ?, ?)",
                [(task, a.id, origin, now) for a in new],
            )
            self.add_measurements(_analytic_measurements(new, spec, now))
        return [a.id for a in new]

    def architecture(self, arch_id: str) -> Architecture:
        row = (
            self._conn()
            .execute("SELECT config FROM architectures WHERE id = ?", (arch_id,))
            .fetchone()
        )
        if row is None:
            raise KeyError(f"no architecture with id {arch_id}")
        return Architecture.from_json(row[0])

    def architectures(self, task: str) -> list[Architecture]:
        rows = self._conn().execute(
            "SELECT a.config FROM architectures a JOIN task_architectures t ON t.arch_id = a.id"
            " WHERE t.task = ? ORDER BY t.added_at, a.id",
            (task,),
        )
        return [Architecture.from_json(row[0]) for row in rows]

    def count_architectures(self, task: str | None = None) -> int:
        if task is None:
            return self._conn().execute("SELECT COUNT(*) FROM architectures").fetchone()[0]
        return (
            self._conn()
            .execute("SELECT COUNT(*) FROM task_architectures WHERE task = ?", (task,))
            .fetchone()[0]
        )

    # --- measurements and predictions --------------------------------------------------------

    def add_measurements(self, rows: Iterable[Measurement]) -> None:
        """Record measurements; one with the same arch, task, metric, device and source replaces
        the earlier one (a re-import or re-measurement updates rather than duplicates)."""
        now = time.time()
        # Importers share one provenance dict across a record's measurements: encode it once.
        # The dict is kept alongside so that its id cannot be reused during this call.
        encoded: dict[int, tuple[dict, str]] = {}

        def provenance_json(m: Measurement) -> str:
            key = id(m.provenance)
            if key not in encoded:
                encoded[key] = (m.provenance, json.dumps(m.provenance))
            return encoded[key][1]

        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO measurements"
                " (arch_id, task, metric, value, std, device, source, provenance, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (arch_id, task, metric, device, source) DO UPDATE SET"
                " value = excluded.value, std = excluded.std, provenance = excluded.provenance,"
                " created_at = excluded.created_at",
                [
                    (
                        m.arch_id,
                        m.task,
                        m.metric,
                        m.value,
                        m.std,
                        m.device,
                        m.source,
                        provenance_json(m),
                        m.created_at or now,
                    )
                    for m in rows
                ],
            )

    def add_predictions(self, rows: Iterable[Prediction]) -> None:
        now = time.time()
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO predictions (arch_id, task, metric, value, std, predictor_kind,"
                " predictor, prompt_version, provenance, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        p.arch_id,
                        p.task,
                        p.metric,
                        p.value,
                        p.std,
                        p.predictor_kind,
                        p.predictor,
                        p.prompt_version,
                        json.dumps(p.provenance),
                        p.created_at or now,
                    )
                    for p in rows
                ],
            )

    def measurements(self, arch_id: str, task: str | None = None) -> list[Measurement]:
        query = (
            "SELECT arch_id, task, metric, value, source, device, std, provenance, created_at"
            " FROM measurements WHERE arch_id = ?"
        )
        rows = self._rows_for_arch(query, arch_id, task)
        return [
            Measurement(*row[:7], provenance=json.loads(row[7]), created_at=row[8]) for row in rows
        ]

    def predictions(self, arch_id: str, task: str | None = None) -> list[Prediction]:
        query = (
            "SELECT arch_id, task, metric, value, predictor_kind, predictor, std, prompt_version,"
            " provenance, created_at FROM predictions WHERE arch_id = ?"
        )
        rows = self._rows_for_arch(query, arch_id, task)
        return [
            Prediction(*row[:8], provenance=json.loads(row[8]), created_at=row[9]) for row in rows
        ]

    def _rows_for_arch(self, query: str, arch_id: str, task: str | None) -> list[tuple]:
        params: tuple = (arch_id,)
        if task is not None:
            query += " AND task = ?"
            params += (task,)
        return self._conn().execute(query + " ORDER BY task, metric, created_at", params).fetchall()

    def table(self, task: str) -> pd.DataFrame:
        """One row per architecture of ``task``: features, then the latest value of every
        measured metric (``latency_ms@device`` per device) and of every prediction
        (``pred:metric@predictor``), plus ``source:<column>`` naming where each value came from.
        """
        conn = self._conn()
        base = pd.read_sql_query(
            "SELECT a.id, t.origin, t.added_at, "
            + ", ".join(f"a.{n}" for n in FEATURE_NAMES)
            + " FROM task_architectures t JOIN architectures a ON a.id = t.arch_id"
            " WHERE t.task = ? ORDER BY t.added_at, a.id",
            conn,
            params=(task,),
        ).set_index("id")
        measured = pd.read_sql_query(
            "SELECT arch_id, CASE WHEN device = '' THEN metric ELSE metric || '@' || device END"
            " AS column, value, source FROM measurements WHERE task = ?"
            " AND source != ? ORDER BY created_at, id",
            conn,
            params=(task, ANALYTIC_SOURCE),
        )
        analytic = pd.read_sql_query(
            "SELECT arch_id, metric AS column, value, source FROM measurements"
            " WHERE task = ? AND source = ?",
            conn,
            params=(task, ANALYTIC_SOURCE),
        )
        predicted = pd.read_sql_query(
            "SELECT arch_id, 'pred:' || metric || '@' || predictor AS column, value,"
            " predictor_kind AS source FROM predictions WHERE task = ? ORDER BY created_at, id",
            conn,
            params=(task,),
        )
        # Analytic efficiency first so that a measured GFLOPs or size, when there, wins.
        values = pd.concat([analytic, measured, predicted], ignore_index=True)
        if values.empty:
            return base
        latest = values.drop_duplicates(["arch_id", "column"], keep="last")
        wide = latest.pivot(index="arch_id", columns="column", values="value")
        sources = latest.pivot(index="arch_id", columns="column", values="source")
        sources.columns = [f"source:{c}" for c in sources.columns]
        return base.join(wide).join(sources)

    def value_columns(self, task: str) -> dict[str, list[str]]:
        """Names of the metric columns ``table`` will have, grouped as measured / predicted."""
        conn = self._conn()
        measured = [
            row[0]
            for row in conn.execute(
                "SELECT DISTINCT CASE WHEN device = '' THEN metric ELSE metric || '@' || device"
                " END FROM measurements WHERE task = ? ORDER BY 1",
                (task,),
            )
        ]
        predicted = [
            row[0]
            for row in conn.execute(
                "SELECT DISTINCT 'pred:' || metric || '@' || predictor FROM predictions"
                " WHERE task = ? ORDER BY 1",
                (task,),
            )
        ]
        return {"measured": measured, "predicted": predicted}

    # --- latency tables ----------------------------------------------------------------------

    def add_latency_table(
        self, name: str, task: str, device: str, source: str, rows: np.ndarray
    ) -> int:
        """Store a table of (10 features, encoder ms, decoder ms, encoder std, decoder std)."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM latency_tables WHERE name = ?", (name,))
            cursor = conn.execute(
                "INSERT INTO latency_tables (name, task, device, source, imported_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (name, task, device, source, time.time()),
            )
            table_id = cursor.lastrowid
            placeholders = ", ".join("?" * (len(FEATURE_NAMES) + 5))
            conn.executemany(
                f"INSERT INTO latency_rows VALUES ({placeholders})",
                [(table_id, *row) for row in rows.tolist()],
            )
        return table_id

    def latency_tables(self) -> pd.DataFrame:
        return pd.read_sql_query(
            "SELECT t.name, t.task, t.device, t.source, COUNT(r.table_id) AS rows"
            " FROM latency_tables t LEFT JOIN latency_rows r ON r.table_id = t.id"
            " GROUP BY t.id ORDER BY t.name",
            self._conn(),
        )

    # --- jobs --------------------------------------------------------------------------------

    def create_job(self, kind: str, title: str, params: dict[str, Any]) -> int:
        with self.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO jobs (kind, title, params, state, created_at)"
                " VALUES (?, ?, ?, 'queued', ?)",
                (kind, title, json.dumps(params), time.time()),
            )
        return cursor.lastrowid

    def update_job(self, job_id: int, **fields: Any) -> None:
        allowed = {"state", "progress", "message", "error", "started_at", "finished_at"}
        unknown = set(fields) - allowed
        if unknown:
            raise ValueError(f"unknown job fields {sorted(unknown)}")
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self.transaction() as conn:
            conn.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", (*fields.values(), job_id))

    def append_job_log(self, job_id: int, line: str) -> None:
        with self.transaction() as conn:
            conn.execute("INSERT INTO job_log VALUES (?, ?, ?)", (job_id, time.time(), line))

    def job(self, job_id: int) -> JobRecord:
        row = self._conn().execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise KeyError(f"no job with id {job_id}")
        return _job_record(row)

    def jobs(self) -> list[JobRecord]:
        return [_job_record(r) for r in self._conn().execute("SELECT * FROM jobs ORDER BY id")]

    def job_log(self, job_id: int) -> list[str]:
        rows = self._conn().execute(
            "SELECT line FROM job_log WHERE job_id = ? ORDER BY rowid", (job_id,)
        )
        return [row[0] for row in rows]

    # --- prompts -----------------------------------------------------------------------------

    def save_prompt(
        self, version: str, name: str, sections: dict[str, Any], replace: bool = False
    ) -> None:
        """Record a prompt under its version. Saving a version again keeps the first record,
        unless ``replace``, which rewrites it and makes it the latest."""
        conflict = (
            "DO UPDATE SET name = excluded.name, sections = excluded.sections,"
            " created_at = excluded.created_at"
            if replace
            else "DO NOTHING"
        )
        with self.transaction() as conn:
            conn.execute(
                f"INSERT INTO prompts VALUES (?, ?, ?, ?) ON CONFLICT (version) {conflict}",
                (version, name, json.dumps(sections), time.time()),
            )

    def prompt(self, version: str) -> dict[str, Any] | None:
        """``{version, name, sections, created_at}`` of a stored prompt, or None."""
        row = self._conn().execute("SELECT * FROM prompts WHERE version = ?", (version,)).fetchone()
        return _prompt_record(row) if row else None

    def prompts(self) -> list[dict[str, Any]]:
        """All stored prompts, oldest first."""
        rows = self._conn().execute("SELECT * FROM prompts ORDER BY created_at, rowid")
        return [_prompt_record(row) for row in rows]

    def _require_task(self, name: str) -> Task:
        spec = self.task(name)
        if spec is None:
            raise KeyError(f"no task '{name}' in {self.path}")
        return spec


def _prompt_record(row: tuple) -> dict[str, Any]:
    version, name, sections, created_at = row
    return {
        "version": version,
        "name": name,
        "sections": json.loads(sections),
        "created_at": created_at,
    }


def _job_record(row: tuple) -> JobRecord:
    values = list(row)
    values[3] = json.loads(values[3])
    return JobRecord(*values)


def _analytic_measurements(
    archs: Sequence[Architecture], task: Task, now: float
) -> Iterator[Measurement]:
    provenance = {"vocab_size": task.vocab_size, "source_tokens": 30, "target_tokens": 30}
    for arch in archs:
        eff = efficiency(arch, task.vocab_size)
        for metric, value in (
            (GFLOPS, eff.gflops),
            (PARAMS, eff.params),
            (PARAMS_NO_EMB, eff.params_without_embeddings),
        ):
            yield Measurement(
                arch.id,
                task.name,
                metric,
                value,
                ANALYTIC_SOURCE,
                provenance=provenance,
                created_at=now,
            )
