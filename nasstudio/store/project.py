"""The project store: one SQLite file (WAL) of tasks, architectures, measurements, predictions,
prompts and jobs. Every write is one transaction; each thread gets its own connection.

A measurement scored on a test set names it (``test_set``, and ``test_set_digest``, a hash of
its sentences): a score on one test set never replaces a score on another, they show side by
side. In ``table``/``rows``/``value_columns`` a metric's reference test set, the one its first
recorded measurement in the task was scored on ('' for imported data, which names none), keeps
the plain column (``bleu_test``); every other gets ``metric[name]`` (``bleu_test[newstest2014]``,
``[unnamed]`` for none). A task's test set keeps the name it was first recorded under; other
content under a name already used is recorded as ``name#<first 8 of its digest>``, so no two
columns share a name.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nasstudio.metrics import efficiency
from nasstudio.space import FEATURE_NAMES, Architecture, average_features
from nasstudio.store.owners import JobOwner, owner_alive
from nasstudio.store.schema import SchemaError, check_application, check_readable, migrate

ANALYTIC_SOURCE = "analytic"
# Writes are short transactions, but a big import can hold the write lock for seconds.
_BUSY_TIMEOUT_S = 120
_IDS_PER_QUERY = 500
# Rows streamed (``Project.rows``) are read this many at a time: memory stays small and flat.
_ROWS_PER_READ = 100
_FEATURE_PLACEHOLDERS = ", ".join("?" * len(FEATURE_NAMES))

# Metric names used across the store, the CLI and the GUI.
BLEU_VALID = "bleu_valid"
BLEU_TEST = "bleu_test"
# HAT's and llmas's test BLEU: tokenised text, compound splitting, BLEU on whitespace tokens.
BLEU_TEST_TOKENIZED = "bleu_test_tok"
LATENCY_MS = "latency_ms"
GFLOPS = "gflops"
PARAMS = "params"
PARAMS_NO_EMB = "params_no_emb"


class ReadOnlyProjectError(PermissionError):
    """A change asked of a project opened for reading only."""


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
    test_set: str = ""  # the scored test set's name ('' where none applies)
    test_set_digest: str = ""  # hash of its sentences (train.test_sets.TestSet)


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
class SearchMember:
    """One architecture of a search generation's population."""

    arch: Architecture
    score: float  # the ranking predictor's value, higher is better (BLEU, or -valid loss)
    metrics: Mapping[str, float] = field(default_factory=dict)  # gflops, params, latency_ms@...


@dataclass(frozen=True, slots=True)
class SearchGeneration:
    """One generation of an architecture search, as the search job yields it and the store
    keeps it. A job record: writing it adds the front and the best to the task (origin
    ``search #<job>``) with ``predictions`` (those the search has not recorded yet)."""

    task: str
    generation: int  # 0-based iteration
    scorer: str  # the predictor that ranked this generation
    score_label: str  # what ``score`` means, for axes: "BLEU (distilled:x)"
    seconds: float  # time in the scorer this generation
    members: tuple[SearchMember, ...]  # the population, best first
    front: tuple[str, ...]  # ids non-dominated in (score max, constraint metric min)
    constraint: str = ""  # the constrained metric (a key of ``metrics``), "" for none
    predictions: tuple[Prediction, ...] = ()

    @property
    def best(self) -> SearchMember:
        return self.members[0]

    def write(self, project: Project, job_id: int) -> Iterable[str]:
        origin = f"search #{job_id}"
        chosen = {*self.front, self.best.arch.id}
        archs = {m.arch.id: m.arch for m in self.members}
        project.add_architectures(self.task, [a for i, a in archs.items() if i in chosen], origin)
        elsewhere = [p for p in self.predictions if p.task != self.task]
        for task in dict.fromkeys(p.task for p in elsewhere):  # a supernet's corpus task
            ids = dict.fromkeys(p.arch_id for p in elsewhere if p.task == task)
            project.add_architectures(task, [archs[i] for i in ids], origin)
        project.add_predictions(self.predictions)
        project.add_search_generation(job_id, self)
        return {self.task, *(p.task for p in self.predictions)}


@dataclass(frozen=True, slots=True)
class ProxySample:
    """What an LPZero search ranks proxies on, as its job yields it first: the sampled
    architectures of ``benchmark`` with their ground truth (higher is better, ``truth_label``
    says what it is) and each classic proxy's (Spearman rho, Kendall tau) on them (empty when
    the search computed none). A job record."""

    benchmark: str
    arch_ids: tuple[str, ...]
    truth: tuple[float, ...]
    truth_label: str
    classic: Mapping[str, tuple[float, float]] = field(default_factory=dict)

    def write(self, project: Project, job_id: int) -> Iterable[str]:
        project.add_lpzero_sample(job_id, self)
        return ()


@dataclass(frozen=True, slots=True)
class ProxyIteration:
    """One iteration of an LPZero GP search: best and median fitness of the population, the
    best formula with its signed rho and tau and (when it changed) its value on each sampled
    architecture (NaN where it failed), and the child tried with its fitness or the pruning
    rule that rejected it. A job record."""

    index: int
    best_fitness: float
    median_fitness: float
    best: str
    best_rho: float
    best_tau: float
    best_values: tuple[float, ...] | None
    child: str
    child_fitness: float | None
    pruned_by: str | None

    def write(self, project: Project, job_id: int) -> Iterable[str]:
        project.add_lpzero_iteration(job_id, self)
        return ()


@dataclass(frozen=True, slots=True)
class StoredProxy:
    """A proxy formula kept in the project for use as a predictor: its values times ``sign``
    rank architectures (higher is better); ``benchmark``, ``rho`` and ``tau`` say where it was
    found and how well it ranked there (rho and tau of the signed values)."""

    name: str
    formula: str
    sign: float
    benchmark: str
    rho: float | None = None
    tau: float | None = None


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
    function: str = ""
    resource: str = "cpu"
    executor: str = "thread"
    owner_host: str = ""
    owner_pid: int = 0
    owner_started: float = 0.0
    worker: str = ""


class Project:
    """A project file. Safe to share between threads: each thread uses its own connection.

    ``readonly`` opens it for reading only, as jobs do: the runner that ran them is the single
    writer of what they produce. A project whose file or folder this user cannot write opens
    read-only too. Anything but a project of this version (another application's database, a
    newer schema, a folder) raises ``SchemaError`` before anything is written.
    """

    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise SchemaError(f"{self.path}: a folder, not a project file")
        self.readonly = readonly or (self.path.exists() and not _writable(self.path))
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        try:
            self._open()
        except sqlite3.Error as exc:
            self.close()
            problem = (
                "cannot open the project"
                if isinstance(exc, sqlite3.OperationalError)
                else "not a nasstudio project"
            )
            raise SchemaError(f"{self.path}: {problem} ({exc})") from None
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        if self.readonly:
            if not self.path.exists():
                raise FileNotFoundError(f"{self.path}: no such project file")
            check_readable(self._conn(), str(self.path))
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._conn()
        check_application(conn, str(self.path))
        _enable_wal(conn)
        migrate(conn, str(self.path))
        self.mark_interrupted_jobs()

    # --- connections and transactions -------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect_readonly(self.path) if self.readonly else _connect(self.path)
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All writes inside commit together or not at all."""
        if self.readonly:
            raise ReadOnlyProjectError(
                f"{self.path}: the project is open read-only (this user cannot write the file"
                " or its folder), and this would change it"
            )
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
        with self.transaction() as conn:
            existing = self.check_task(task)
            if existing is not None:
                return existing
            conn.execute(
                "INSERT INTO tasks VALUES (?, ?, ?, ?)",
                (task.name, task.vocab_size, task.space, task.description),
            )
            self.bump_revisions([task.name])
        return task

    def check_task(self, task: Task) -> Task | None:
        """The registered task of that name (None if there is none); an error if it does not
        agree with ``task``'s vocabulary and space."""
        existing = self.task(task.name)
        if existing is not None and (existing.vocab_size, existing.space) != (
            task.vocab_size,
            task.space,
        ):
            raise ValueError(
                f"task '{task.name}' exists with vocabulary {existing.vocab_size} and space "
                f"'{existing.space}', not {task.vocab_size} / '{task.space}'"
            )
        return existing

    # --- revisions: what a view must reload ---------------------------------------------------

    def bump_revisions(self, tasks: Iterable[str]) -> None:
        """Mark ``tasks`` changed, in the caller's transaction (views reload only those)."""
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO task_revisions VALUES (?, 1) ON CONFLICT (task)"
                " DO UPDATE SET revision = revision + 1",
                [(task,) for task in set(tasks)],
            )

    def revisions(self) -> dict[str, int]:
        """Each task's revision: it grows with every write that touches the task."""
        return dict(self._conn().execute("SELECT task, revision FROM task_revisions"))

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
            unique = {a.id: a for a in archs}
            known = self._known_ids(conn, task, list(unique))
            new = [a for arch_id, a in unique.items() if arch_id not in known]
            conn.executemany(
                f"INSERT OR IGNORE INTO architectures VALUES (?, ?, {_FEATURE_PLACEHOLDERS}, ?)",
                [(a.id, a.canonical_json(), *average_features(a).tolist(), now) for a in new],
            )
            conn.executemany(
                "INSERT INTO task_architectures VALUES (?, ?, ?, ?)",
                [(task, a.id, origin, now) for a in new],
            )
            self.add_measurements(_analytic_measurements(new, spec, now))
            if new:
                self.bump_revisions([task])
        return [a.id for a in new]

    @staticmethod
    def _known_ids(conn: sqlite3.Connection, task: str, ids: list[str]) -> set[str]:
        """Which of ``ids`` the task has: a look-up per id, so adding stays linear."""
        known: set[str] = set()
        for start in range(0, len(ids), _IDS_PER_QUERY):
            chunk = ids[start : start + _IDS_PER_QUERY]
            known.update(
                row[0]
                for row in conn.execute(
                    "SELECT arch_id FROM task_architectures WHERE task = ? AND arch_id IN"
                    f" ({', '.join('?' * len(chunk))})",
                    (task, *chunk),
                )
            )
        return known

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

    def architecture_ids(self, task: str) -> list[str]:
        """The ids of ``task``'s architectures, in the order they were added (cheaper than
        ``architectures`` when the ids are all that is needed)."""
        rows = self._conn().execute(
            "SELECT arch_id FROM task_architectures WHERE task = ? ORDER BY added_at, arch_id",
            (task,),
        )
        return [row[0] for row in rows]

    def task_architectures(self, task: str, arch_ids: Sequence[str]) -> list[Architecture]:
        """The architectures of ``task`` in the order asked; an id the task lacks (or a task
        the project lacks) is an error naming them, before any work starts."""
        self._require_task(task)
        known = {arch.id: arch for arch in self.architectures(task)}
        missing = [arch_id for arch_id in arch_ids if arch_id not in known]
        if missing:
            raise KeyError(f"not in task '{task}': {', '.join(missing)}")
        return [known[arch_id] for arch_id in arch_ids]

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
        """Record measurements; one with the same arch, task, metric, device, source and test
        set content (digest) replaces the earlier one (a re-import or re-measurement updates
        rather than duplicates), so a score on one test set never replaces another's.

        A test set keeps the name it was first recorded under in its task; a different content
        recorded under a name the task already uses is named ``name#<first 8 of its digest>``.
        """
        now = time.time()
        # Importers share one provenance dict across a record's measurements: encode it once.
        # The dict is kept alongside so that its id cannot be reused during this call.
        encoded: dict[int, tuple[dict, str]] = {}

        def provenance_json(m: Measurement) -> str:
            key = id(m.provenance)
            if key not in encoded:
                encoded[key] = (m.provenance, json.dumps(m.provenance))
            return encoded[key][1]

        rows = list(rows)
        with self.transaction() as conn:
            self.bump_revisions(m.task for m in rows)
            names = _test_set_names(conn, rows)
            conn.executemany(
                "INSERT INTO measurements (arch_id, task, metric, value, std, device, source,"
                " provenance, created_at, test_set, test_set_digest)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (arch_id, task, metric, device, source, test_set_digest)"
                " DO UPDATE SET value = excluded.value, std = excluded.std,"
                " provenance = excluded.provenance, created_at = excluded.created_at",
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
                        names.get((m.task, m.test_set_digest), m.test_set),
                        m.test_set_digest,
                    )
                    for m in rows
                ],
            )

    def add_predictions(self, rows: Iterable[Prediction]) -> None:
        now = time.time()
        rows = list(rows)
        with self.transaction() as conn:
            self.bump_revisions(p.task for p in rows)
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
            "SELECT arch_id, task, metric, value, source, device, std, provenance, created_at,"
            " test_set, test_set_digest FROM measurements WHERE arch_id = ?"
        )
        rows = self._rows_for_arch(query, arch_id, task)
        return [
            Measurement(
                *row[:7],
                provenance=json.loads(row[7]),
                created_at=row[8],
                test_set=row[9],
                test_set_digest=row[10],
            )
            for row in rows
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
        measured metric (``latency_ms@device`` per device, ``bleu_test[test_set]`` for a test
        set other than the metric's reference one, see ``_reference_digests``) and of every
        prediction (``pred:metric@predictor``), plus ``source:<column>`` naming where each value
        came from.
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
        references = _reference_digests(conn, task)
        query, column_params = _values_query(references)
        values = pd.read_sql_query(
            query, conn, params=(*column_params, ANALYTIC_SOURCE, task, task)
        )
        if values.empty:
            return base
        latest = values.drop_duplicates(["arch_id", "column"], keep="last")
        wide = latest.pivot(index="arch_id", columns="column", values="value")
        sources = latest.pivot(index="arch_id", columns="column", values="source")
        sources.columns = [f"source:{c}" for c in sources.columns]
        return base.join(wide).join(sources)

    def rows(
        self, task: str, arch_ids: Sequence[str] | None = None
    ) -> Iterator[tuple[Architecture, dict[str, Any]]]:
        """The rows of ``table`` one at a time (all of ``task``, or ``arch_ids`` in that order),
        read a hundred at a time so that memory stays flat however many there are: each
        architecture with ``origin``, its features and every value column of the task (None
        where it has no value). An id the task lacks is an error, raised before the first row.
        """
        self._require_task(task)
        conn = self._conn()
        if arch_ids is None:
            arch_ids = self.architecture_ids(task)
        else:
            missing = set(arch_ids) - self._known_ids(conn, task, list(set(arch_ids)))
            if missing:
                raise KeyError(f"not in task '{task}': {', '.join(sorted(missing))}")
        references = _reference_digests(conn, task)
        columns = self._value_columns(conn, task, references)
        columns = sorted(columns["measured"] + columns["predicted"])
        return self._rows_in_chunks(task, arch_ids, columns, references)

    def _rows_in_chunks(
        self,
        task: str,
        arch_ids: Sequence[str],
        columns: list[str],
        references: dict[str, str],
    ) -> Iterator[tuple[Architecture, dict[str, Any]]]:
        conn = self._conn()
        for start in range(0, len(arch_ids), _ROWS_PER_READ):
            chunk = arch_ids[start : start + _ROWS_PER_READ]
            marks = ", ".join("?" * len(chunk))
            base = {
                row[0]: row[1:]
                for row in conn.execute(
                    "SELECT a.id, a.config, t.origin, "
                    + ", ".join(f"a.{n}" for n in FEATURE_NAMES)
                    + " FROM task_architectures t JOIN architectures a ON a.id = t.arch_id"
                    f" WHERE t.task = ? AND a.id IN ({marks})",
                    (task, *chunk),
                )
            }
            values: dict[str, dict[str, float]] = {arch_id: {} for arch_id in chunk}
            query, column_params = _values_query(references, f" AND arch_id IN ({marks})")
            for arch_id, column, value, *_ in conn.execute(
                query, (*column_params, ANALYTIC_SOURCE, task, *chunk, task, *chunk)
            ):
                values[arch_id][column] = value  # in order: the latest wins
            for arch_id in chunk:
                config, origin, *features = base[arch_id]
                row = {"origin": origin, **dict(zip(FEATURE_NAMES, features, strict=True))}
                row.update((column, values[arch_id].get(column)) for column in columns)
                yield Architecture.from_json(config), row

    def column_of(self, m: Measurement) -> str:
        """The ``table`` column that shows ``m``, a measurement as ``measurements`` reads it
        back (with the name its test set is recorded under)."""
        reference = _reference_digests(self._conn(), m.task).get(m.metric, "")
        device = f"@{m.device}" if m.device else ""
        if m.test_set_digest == reference:
            return f"{m.metric}{device}"
        return f"{m.metric}[{m.test_set or 'unnamed'}]{device}"

    def value_columns(self, task: str) -> dict[str, list[str]]:
        """Names of the metric columns ``table`` will have, grouped as measured / predicted."""
        conn = self._conn()
        return self._value_columns(conn, task, _reference_digests(conn, task))

    @staticmethod
    def _value_columns(
        conn: sqlite3.Connection, task: str, references: dict[str, str]
    ) -> dict[str, list[str]]:
        column, column_params = _measured_column(references)
        measured = [
            row[0]
            for row in conn.execute(
                f"SELECT DISTINCT {column} FROM measurements WHERE task = ? ORDER BY 1",
                (*column_params, task),
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

    def latency_table_rows(self, name: str) -> np.ndarray:
        """The rows of the latency table ``name``, as ``add_latency_table`` took them."""
        conn = self._conn()
        found = conn.execute("SELECT id FROM latency_tables WHERE name = ?", (name,)).fetchone()
        if found is None:
            raise KeyError(f"no latency table '{name}' in {self.path}")
        columns = ", ".join([*FEATURE_NAMES, "encoder_ms", "decoder_ms"])
        rows = conn.execute(
            f"SELECT {columns}, encoder_std_ms, decoder_std_ms FROM latency_rows"
            " WHERE table_id = ? ORDER BY rowid",
            found,
        ).fetchall()
        return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(FEATURE_NAMES) + 4)

    def latency_tables(self) -> pd.DataFrame:
        return pd.read_sql_query(
            "SELECT t.name, t.task, t.device, t.source, COUNT(r.table_id) AS rows"
            " FROM latency_tables t LEFT JOIN latency_rows r ON r.table_id = t.id"
            " GROUP BY t.id ORDER BY t.name",
            self._conn(),
        )

    # --- jobs --------------------------------------------------------------------------------

    def create_job(
        self,
        kind: str,
        title: str,
        params: dict[str, Any],
        owner: JobOwner,
        function: str = "",
        resource: str = "cpu",
        executor: str = "thread",
    ) -> int:
        with self.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO jobs (kind, title, params, state, created_at, function, resource,"
                " executor, owner_host, owner_pid, owner_started)"
                " VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?)",
                (
                    kind,
                    title,
                    json.dumps(params),
                    time.time(),
                    function,
                    resource,
                    executor,
                    owner.host,
                    owner.pid,
                    owner.started,
                ),
            )
        return cursor.lastrowid

    def update_job(self, job_id: int, **fields: Any) -> None:
        allowed = {
            "state",
            "progress",
            "message",
            "error",
            "started_at",
            "finished_at",
            "worker",
            "owner_host",
            "owner_pid",
            "owner_started",
        }
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
        row = self._conn().execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        row = row.fetchone()
        if row is None:
            raise KeyError(f"no job with id {job_id}")
        return _job_record(row)

    def jobs(self, states: Iterable[str] | None = None) -> list[JobRecord]:
        query = f"SELECT {_JOB_COLUMNS} FROM jobs"
        params: tuple = ()
        if states is not None:
            params = tuple(states)
            query += f" WHERE state IN ({', '.join('?' * len(params))})"
        return [_job_record(r) for r in self._conn().execute(query + " ORDER BY id", params)]

    def job_log(self, job_id: int) -> list[str]:
        rows = self._conn().execute(
            "SELECT line FROM job_log WHERE job_id = ? ORDER BY rowid", (job_id,)
        )
        return [row[0] for row in rows]

    def mark_interrupted_jobs(self) -> list[int]:
        """Queued and running jobs whose owning process is gone (killed, crashed, powered off)
        become 'interrupted'. Jobs owned by another host are left alone: only that host knows."""
        with self.transaction() as conn:
            orphans = [
                job.id
                for job in self.jobs(("queued", "running"))
                if not owner_alive(JobOwner(job.owner_host, job.owner_pid, job.owner_started))
            ]
            conn.executemany(
                "UPDATE jobs SET state = 'interrupted', finished_at = ?, message ="
                " CASE state WHEN 'running' THEN 'interrupted: the process running it ended'"
                " ELSE 'interrupted before it started: the process that queued it ended' END"
                " WHERE id = ?",
                [(time.time(), job_id) for job_id in orphans],
            )
        return orphans

    # --- training curves ---------------------------------------------------------------------

    def add_curve_points(self, job_id: int, points: Iterable[tuple[str, int, dict]]) -> None:
        """Record ``(arch_id, step, values)`` points of a job's training curves."""
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO job_curves VALUES (?, ?, ?, ?)",
                [(job_id, arch_id, step, json.dumps(values)) for arch_id, step, values in points],
            )

    def curve(self, job_id: int) -> list[dict[str, Any]]:
        """A job's curve points in order, each ``{arch_id, step, **values}``."""
        rows = self._conn().execute(
            "SELECT arch_id, step, point FROM job_curves WHERE job_id = ? ORDER BY rowid",
            (job_id,),
        )
        return [{**json.loads(point), "arch_id": arch, "step": step} for arch, step, point in rows]

    # --- architecture searches ----------------------------------------------------------------

    def add_search_generation(self, job_id: int, generation: SearchGeneration) -> None:
        """Record one generation of search job ``job_id`` (its architectures are in the row)."""
        members = [
            {"arch": json.loads(m.arch.canonical_json()), "score": m.score, "metrics": m.metrics}
            for m in generation.members
        ]
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO search_generations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job_id,
                    generation.generation,
                    generation.task,
                    generation.scorer,
                    generation.score_label,
                    generation.seconds,
                    generation.constraint,
                    generation.best.arch.id,
                    generation.best.score,
                    json.dumps(members),
                    json.dumps(list(generation.front)),
                    time.time(),
                ),
            )

    def search_generations(self, job_id: int) -> list[SearchGeneration]:
        """The generations search job ``job_id`` recorded, in order (without predictions)."""
        rows = self._conn().execute(
            "SELECT task, generation, scorer, score_label, seconds, members, front,"
            " constraint_metric FROM search_generations WHERE job_id = ? ORDER BY generation",
            (job_id,),
        )
        return [
            SearchGeneration(
                task,
                generation,
                scorer,
                label,
                seconds,
                tuple(
                    SearchMember(Architecture(**m["arch"]), m["score"], m["metrics"])
                    for m in json.loads(members)
                ),
                tuple(json.loads(front)),
                constraint,
            )
            for task, generation, scorer, label, seconds, members, front, constraint in rows
        ]

    def searches(self) -> list[dict[str, Any]]:
        """One row per search job, oldest first: ``job_id``, ``task``, ``title``, ``state``
        (None for a job not in the project), ``generations`` recorded, ``seconds`` in its
        scorers, and ``best_id``, ``best_score``, ``scorer``, ``score_label`` of its last
        generation."""
        cursor = self._conn().execute(
            "SELECT g.job_id, g.task, j.title, j.state, n.generations, n.seconds, g.best_id,"
            " g.best_score, g.scorer, g.score_label FROM search_generations g"
            " JOIN (SELECT job_id, COUNT(*) AS generations, SUM(seconds) AS seconds,"
            " MAX(generation) AS last FROM search_generations GROUP BY job_id) n"
            " ON n.job_id = g.job_id AND n.last = g.generation"
            " LEFT JOIN jobs j ON j.id = g.job_id ORDER BY g.job_id"
        )
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor]
        return rows

    # --- LPZero proxy searches and stored proxies -----------------------------------------------

    def add_lpzero_sample(self, job_id: int, sample: ProxySample) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO lpzero_samples VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    job_id,
                    sample.benchmark,
                    json.dumps(list(sample.arch_ids)),
                    json.dumps(list(sample.truth)),
                    sample.truth_label,
                    json.dumps({k: list(v) for k, v in sample.classic.items()}),
                    time.time(),
                ),
            )

    def lpzero_samples(self, job_id: int) -> list[ProxySample]:
        """The sample LPZero search ``job_id`` ranked proxies on (empty before it recorded it)."""
        rows = self._conn().execute(
            "SELECT benchmark, arch_ids, truth, truth_label, classic FROM lpzero_samples"
            " WHERE job_id = ?",
            (job_id,),
        )
        return [
            ProxySample(
                benchmark,
                tuple(json.loads(ids)),
                tuple(json.loads(truth)),
                label,
                {k: tuple(v) for k, v in json.loads(classic).items()},
            )
            for benchmark, ids, truth, label, classic in rows
        ]

    def add_lpzero_iteration(self, job_id: int, iteration: ProxyIteration) -> None:
        values = None if iteration.best_values is None else json.dumps(list(iteration.best_values))
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO lpzero_iterations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job_id,
                    iteration.index,
                    iteration.best_fitness,
                    iteration.median_fitness,
                    iteration.best,
                    iteration.best_rho,
                    iteration.best_tau,
                    values,
                    iteration.child,
                    iteration.child_fitness,
                    iteration.pruned_by,
                    time.time(),
                ),
            )

    def lpzero_iterations(self, job_id: int) -> list[ProxyIteration]:
        """The iterations LPZero search ``job_id`` recorded, in order."""
        rows = self._conn().execute(
            "SELECT iteration, best_fitness, median_fitness, best, best_rho, best_tau,"
            " best_values, child, child_fitness, pruned_by FROM lpzero_iterations"
            " WHERE job_id = ? ORDER BY iteration",
            (job_id,),
        )
        return [
            ProxyIteration(
                *row[:6],
                None if row[6] is None else tuple(json.loads(row[6])),
                *row[7:],
            )
            for row in rows
        ]

    def lpzero_searches(self) -> list[dict[str, Any]]:
        """One row per LPZero search, oldest first: ``job_id``, ``benchmark``, ``title``,
        ``state`` (None for a job not in the project), ``iterations`` recorded and the last
        one's ``best`` formula, ``best_fitness``, ``best_rho`` and ``best_tau``."""
        cursor = self._conn().execute(
            "SELECT s.job_id, s.benchmark, j.title, j.state, COUNT(i.iteration) AS iterations,"
            " last.best, last.best_fitness, last.best_rho, last.best_tau FROM lpzero_samples s"
            " LEFT JOIN jobs j ON j.id = s.job_id"
            " LEFT JOIN lpzero_iterations i ON i.job_id = s.job_id"
            " LEFT JOIN lpzero_iterations last ON last.job_id = s.job_id AND last.iteration ="
            " (SELECT MAX(iteration) FROM lpzero_iterations WHERE job_id = s.job_id)"
            " GROUP BY s.job_id ORDER BY s.job_id"
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor]

    def add_proxy(self, proxy: StoredProxy, replace: bool = False) -> None:
        """Store a proxy for use as a predictor; a name already taken is refused unless
        ``replace``."""
        if proxy.sign not in (-1, 1):
            raise ValueError(f"proxy '{proxy.name}': sign must be 1 or -1, got {proxy.sign}")
        if not proxy.name or proxy.name != proxy.name.strip():
            raise ValueError(f"proxy name {proxy.name!r}: expected a name without outer spaces")
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        with self.transaction() as conn:
            try:
                conn.execute(
                    f"{verb} INTO proxies VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (*_proxy_row(proxy), time.time()),
                )
            except sqlite3.IntegrityError:
                raise ValueError(
                    f"a proxy named '{proxy.name}' is already stored in {self.path}"
                ) from None

    def proxies(self) -> list[StoredProxy]:
        """The stored proxies, oldest first."""
        rows = self._conn().execute(
            "SELECT name, formula, sign, benchmark, rho, tau FROM proxies"
            " ORDER BY created_at, rowid"
        )
        return [StoredProxy(*row) for row in rows]

    def proxy(self, name: str) -> StoredProxy:
        """The stored proxy ``name``; KeyError naming the stored ones when there is none."""
        for proxy in self.proxies():
            if proxy.name == name:
                return proxy
        known = ", ".join(sorted(p.name for p in self.proxies())) or "none"
        raise KeyError(f"no stored proxy '{name}' in {self.path} (stored: {known})")

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

    # --- prompt evaluations --------------------------------------------------------------------

    def add_evaluations(self, rows: Iterable[dict[str, Any]], job_id: int | None = None) -> None:
        """Record predictors' scores on a benchmark (a seedarchs folder), one row per seed:
        ``task``, ``benchmark``, ``label`` (what the row is shown as), ``predictor``, ``seed``,
        ``n`` and ``mae``, ``kendall_tau``, ``spearman_rho`` (None where undefined); for an LLM
        prompt also ``prompt_version`` and ``variant`` (its ablation, '' for the prompt itself);
        ``details``, a JSON object. ``job_id`` is the job that computed them."""
        now = time.time()
        with self.transaction() as conn:
            conn.executemany(
                "INSERT INTO evaluations (job_id, task, benchmark, label, predictor,"
                " prompt_version, variant, seed, n, mae, kendall_tau, spearman_rho, details,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        job_id or None,
                        r["task"],
                        r["benchmark"],
                        r["label"],
                        r["predictor"],
                        r.get("prompt_version"),
                        r.get("variant", ""),
                        r["seed"],
                        r["n"],
                        r["mae"],
                        r["kendall_tau"],
                        r["spearman_rho"],
                        json.dumps(r.get("details", {})),
                        now,
                    )
                    for r in rows
                ],
            )

    def evaluations(
        self, task: str | None = None, benchmark: str | None = None
    ) -> list[dict[str, Any]]:
        """Evaluation rows (the fields ``add_evaluations`` takes, plus ``id``, ``job_id`` and
        ``created_at``), oldest first. ``job_state`` is the state of the job that recorded a
        row (None outside a job): rows of a job that did not finish are an incomplete
        evaluation."""
        query = (
            "SELECT e.*, j.state AS job_state FROM evaluations e"
            " LEFT JOIN jobs j ON j.id = e.job_id WHERE 1"
        )
        params: list[str] = []
        for column, value in (("task", task), ("benchmark", benchmark)):
            if value is not None:
                query += f" AND e.{column} = ?"
                params.append(value)
        cursor = self._conn().execute(query + " ORDER BY e.id", params)
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor]
        for row in rows:
            row["details"] = json.loads(row["details"])
        return rows


def _writable(path: Path) -> bool:
    """Whether this user may change the project: WAL mode writes beside the file, too."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def _connect(path: Path, uri: str | None = None) -> sqlite3.Connection:
    return sqlite3.connect(
        uri or path,
        uri=uri is not None,
        isolation_level=None,
        check_same_thread=False,
        timeout=_BUSY_TIMEOUT_S,
    )


def _connect_readonly(path: Path) -> sqlite3.Connection:
    uri = f"{path.resolve().as_uri()}?mode=ro"
    conn = _connect(path, uri)
    try:
        conn.execute("PRAGMA schema_version")
        return conn
    except sqlite3.OperationalError:
        conn.close()
        if os.access(path.parent, os.W_OK):
            raise
    # A WAL file in a folder this user cannot write: SQLite cannot create the shared-memory
    # file beside it. A writer would need that folder too: read the file as immutable.
    return _connect(path, f"{uri}&immutable=1")


def _reference_digests(conn: sqlite3.Connection, task: str) -> dict[str, str]:
    """Each measured metric's reference test set in ``task``: the one its first recorded
    measurement was scored on ('' for imported data, which names none). Its values keep the
    plain metric's column; other test sets get columns of their own."""
    # Hops from metric to metric along the (task, metric) index, rather than reading every
    # measurement of the task to find its few metrics.
    return dict(
        conn.execute(
            "WITH RECURSIVE metrics(metric) AS ("
            " SELECT MIN(metric) FROM measurements WHERE task = ?1"
            " UNION ALL SELECT (SELECT MIN(metric) FROM measurements"
            " WHERE task = ?1 AND metric > metrics.metric) FROM metrics WHERE metric IS NOT NULL)"
            " SELECT metric, (SELECT test_set_digest FROM measurements"
            " WHERE task = ?1 AND metric = metrics.metric ORDER BY id LIMIT 1)"
            " FROM metrics WHERE metric IS NOT NULL",
            (task,),
        ).fetchall()
    )


def _measured_column(references: dict[str, str]) -> tuple[str, list[str]]:
    """A measurement's column, as SQL and its parameters: ``metric``, or ``metric[test set]``
    when scored on another test set than the metric's reference one, then ``@device`` where
    there is one."""
    # Most metrics name no reference test set (''): the CASE over metrics lists only the
    # others, so that reading a large imported task costs what it did before test sets.
    named = {metric: digest for metric, digest in references.items() if digest}
    cases = " ".join("WHEN ? THEN ?" for _ in named)
    reference = f"CASE metric {cases} ELSE '' END" if named else "''"
    # The common case first, concatenating as little as the plain column needs.
    column = (
        f"CASE WHEN test_set_digest = {reference} THEN"
        " CASE WHEN device = '' THEN metric ELSE metric || '@' || device END"
        " ELSE metric || CASE WHEN test_set = '' THEN '[unnamed]' ELSE '[' || test_set || ']' END"
        " || CASE WHEN device = '' THEN '' ELSE '@' || device END END"
    )
    return column, [item for pair in named.items() for item in pair]


def _values_query(references: dict[str, str], where: str = "") -> tuple[str, list[str]]:
    """Every value of a task as ``arch_id, column, value, source``, in the order in which each
    supersedes the one before: analytic efficiency first (a measured GFLOPs or size, when
    there, wins), then the rest oldest first; and the parameters of ``references``. The
    query's further parameters: the analytic source, then the task and ``where``'s own for the
    measurements, and again for the predictions."""
    # Narrowed by ``where`` to some architectures, look them up by architecture: the unary +
    # keeps SQLite from scanning the whole task's predictions for each few hundred.
    task = "+task" if where else "task"
    column, column_params = _measured_column(references)
    query = (
        f"SELECT arch_id, {column} AS column, value, source, source != ? AS rank, created_at,"
        f" id FROM measurements WHERE {task} = ?{where}"
        " UNION ALL SELECT arch_id, 'pred:' || metric || '@' || predictor, value,"
        f" predictor_kind, 2, created_at, id FROM predictions WHERE {task} = ?{where}"
        " ORDER BY rank, created_at, id"
    )
    return query, column_params


def _test_set_names(
    conn: sqlite3.Connection, rows: Sequence[Measurement]
) -> dict[tuple[str, str], str]:
    """The name each (task, test set digest) among ``rows`` is recorded under: the name it
    already has in the task, else its own ('' becomes the digest's first 8 characters), with
    ``#<first 8 of the digest>`` added when the task already uses that name for other content.
    """
    new = {(m.task, m.test_set_digest): m.test_set for m in rows if m.test_set_digest}
    names: dict[tuple[str, str], str] = {}
    for task in {task for task, _ in new}:
        recorded = dict(
            conn.execute(
                "SELECT test_set_digest, test_set FROM measurements"
                " WHERE task = ? AND test_set_digest != '' GROUP BY test_set_digest",
                (task,),
            ).fetchall()
        )
        taken = set(recorded.values())
        for (row_task, digest), name in new.items():
            if row_task != task:
                continue
            if digest not in recorded:
                name = name or digest[:8]
                recorded[digest] = f"{name}#{digest[:8]}" if name in taken else name
                taken.add(recorded[digest])
            names[task, digest] = recorded[digest]
    return names


def _enable_wal(conn: sqlite3.Connection) -> None:
    """WAL mode (it stays with the file). Switching needs the file to itself, and SQLite does
    not wait for that: several processes opening a new project at once retry."""
    deadline = time.monotonic() + _BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _proxy_row(proxy: StoredProxy) -> tuple:
    return (proxy.name, proxy.formula, proxy.sign, proxy.benchmark, proxy.rho, proxy.tau)


def _prompt_record(row: tuple) -> dict[str, Any]:
    version, name, sections, created_at = row
    return {
        "version": version,
        "name": name,
        "sections": json.loads(sections),
        "created_at": created_at,
    }


_JOB_COLUMNS = ", ".join(JobRecord.__dataclass_fields__)


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
