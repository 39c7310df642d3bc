"""SQLite schema of a project file and its migrations (PRAGMA user_version is the version)."""

from __future__ import annotations

import sqlite3

from nasstudio.space import FEATURE_NAMES

_FEATURE_COLUMNS = ",\n    ".join(f"{name} REAL NOT NULL" for name in FEATURE_NAMES)

# Each entry upgrades the schema from version i to i + 1.
MIGRATIONS: list[str] = [
    f"""
CREATE TABLE tasks (
    name TEXT PRIMARY KEY,
    vocab_size INTEGER NOT NULL CHECK (vocab_size > 0),
    space TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT ''
);
CREATE TABLE architectures (
    id TEXT PRIMARY KEY,
    config TEXT NOT NULL,
    {_FEATURE_COLUMNS},
    created_at REAL NOT NULL
);
CREATE TABLE task_architectures (
    task TEXT NOT NULL REFERENCES tasks(name),
    arch_id TEXT NOT NULL REFERENCES architectures(id),
    origin TEXT NOT NULL,
    added_at REAL NOT NULL,
    PRIMARY KEY (task, arch_id)
);
CREATE TABLE measurements (
    id INTEGER PRIMARY KEY,
    arch_id TEXT NOT NULL REFERENCES architectures(id),
    task TEXT NOT NULL REFERENCES tasks(name),
    metric TEXT NOT NULL,
    value REAL NOT NULL,
    std REAL,
    device TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL,
    provenance TEXT NOT NULL DEFAULT '{{}}',
    created_at REAL NOT NULL,
    UNIQUE (arch_id, task, metric, device, source)
);
CREATE INDEX measurements_by_task ON measurements (task, metric);
CREATE TABLE predictions (
    id INTEGER PRIMARY KEY,
    arch_id TEXT NOT NULL REFERENCES architectures(id),
    task TEXT NOT NULL REFERENCES tasks(name),
    metric TEXT NOT NULL,
    value REAL NOT NULL,
    std REAL,
    predictor_kind TEXT NOT NULL,
    predictor TEXT NOT NULL,
    prompt_version TEXT,
    provenance TEXT NOT NULL DEFAULT '{{}}',
    created_at REAL NOT NULL
);
CREATE INDEX predictions_by_task ON predictions (task, metric);
CREATE INDEX predictions_by_arch ON predictions (arch_id);
CREATE TABLE prompts (
    version TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    sections TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    params TEXT NOT NULL DEFAULT '{{}}',
    state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
    progress REAL NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    error TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL
);
CREATE TABLE job_log (
    job_id INTEGER NOT NULL REFERENCES jobs(id),
    time REAL NOT NULL,
    line TEXT NOT NULL
);
CREATE INDEX job_log_by_job ON job_log (job_id);
CREATE TABLE latency_tables (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    task TEXT NOT NULL,
    device TEXT NOT NULL,
    source TEXT NOT NULL,
    imported_at REAL NOT NULL
);
CREATE TABLE latency_rows (
    table_id INTEGER NOT NULL REFERENCES latency_tables(id) ON DELETE CASCADE,
    {_FEATURE_COLUMNS},
    encoder_ms REAL NOT NULL,
    decoder_ms REAL NOT NULL,
    encoder_std_ms REAL,
    decoder_std_ms REAL
);
""",
    # 2: jobs know their function, resource, executor and owning process, and may be
    # 'interrupted'; task revisions; training curves and prompt evaluations in the project.
    """
CREATE TABLE jobs_v2 (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    params TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL CHECK (
        state IN ('queued', 'running', 'done', 'failed', 'cancelled', 'interrupted')
    ),
    progress REAL NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    error TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    function TEXT NOT NULL DEFAULT '',
    resource TEXT NOT NULL DEFAULT 'cpu',
    executor TEXT NOT NULL DEFAULT 'thread',
    owner_host TEXT NOT NULL DEFAULT '',
    owner_pid INTEGER NOT NULL DEFAULT 0,
    owner_started REAL NOT NULL DEFAULT 0,
    worker TEXT NOT NULL DEFAULT ''
);
INSERT INTO jobs_v2 (id, kind, title, params, state, progress, message, error, created_at,
    started_at, finished_at)
    SELECT id, kind, title, params, state, progress, message, error, created_at, started_at,
    finished_at FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_v2 RENAME TO jobs;
CREATE INDEX jobs_by_state ON jobs (state);
CREATE TABLE task_revisions (
    task TEXT PRIMARY KEY,
    revision INTEGER NOT NULL
);
CREATE TABLE job_curves (
    job_id INTEGER NOT NULL,
    arch_id TEXT NOT NULL,
    step INTEGER NOT NULL,
    point TEXT NOT NULL
);
CREATE INDEX job_curves_by_job ON job_curves (job_id);
CREATE TABLE evaluations (
    id INTEGER PRIMARY KEY,
    job_id INTEGER,
    task TEXT NOT NULL,
    benchmark TEXT NOT NULL,
    label TEXT NOT NULL,
    predictor TEXT NOT NULL,
    prompt_version TEXT,
    variant TEXT NOT NULL DEFAULT '',
    seed INTEGER NOT NULL,
    n INTEGER NOT NULL,
    mae REAL,
    kendall_tau REAL,
    spearman_rho REAL,
    details TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL
);
CREATE INDEX evaluations_by_prompt ON evaluations (prompt_version);
""",
    # 3: a measurement names the test set it was scored on (name, hash of its sentences); the
    # hash is part of its identity, so a score on one test set never replaces another's.
    """
CREATE TABLE measurements_v3 (
    id INTEGER PRIMARY KEY,
    arch_id TEXT NOT NULL REFERENCES architectures(id),
    task TEXT NOT NULL REFERENCES tasks(name),
    metric TEXT NOT NULL,
    value REAL NOT NULL,
    std REAL,
    device TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL,
    provenance TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    test_set TEXT NOT NULL DEFAULT '',
    test_set_digest TEXT NOT NULL DEFAULT '',
    UNIQUE (arch_id, task, metric, device, source, test_set_digest)
);
INSERT INTO measurements_v3 (id, arch_id, task, metric, value, std, device, source, provenance,
    created_at)
    SELECT id, arch_id, task, metric, value, std, device, source, provenance, created_at
    FROM measurements;
DROP TABLE measurements;
ALTER TABLE measurements_v3 RENAME TO measurements;
CREATE INDEX measurements_by_task ON measurements (task, metric);
CREATE INDEX measurements_by_test_set ON measurements (task, test_set_digest)
    WHERE test_set_digest != '';
""",
    # 4: the generations of architecture searches, one row each: who ranked it, the time it
    # took, its population (JSON: architecture, score, metrics; best first) and its front.
    """
CREATE TABLE search_generations (
    job_id INTEGER NOT NULL,
    generation INTEGER NOT NULL,
    task TEXT NOT NULL,
    scorer TEXT NOT NULL,
    score_label TEXT NOT NULL,
    seconds REAL NOT NULL,
    constraint_metric TEXT NOT NULL DEFAULT '',
    best_id TEXT NOT NULL,
    best_score REAL NOT NULL,
    members TEXT NOT NULL,
    front TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (job_id, generation)
);
""",
    # 5: LPZero proxy searches (the architectures sampled with their ground truth and the
    # classic proxies' correlations; one row per GP iteration) and the proxies stored for use
    # as predictors.
    """
CREATE TABLE lpzero_samples (
    job_id INTEGER PRIMARY KEY,
    benchmark TEXT NOT NULL,
    arch_ids TEXT NOT NULL,
    truth TEXT NOT NULL,
    truth_label TEXT NOT NULL,
    classic TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE lpzero_iterations (
    job_id INTEGER NOT NULL,
    iteration INTEGER NOT NULL,
    best_fitness REAL NOT NULL,
    median_fitness REAL NOT NULL,
    best TEXT NOT NULL,
    best_rho REAL,
    best_tau REAL,
    best_values TEXT,
    child TEXT NOT NULL,
    child_fitness REAL,
    pruned_by TEXT,
    created_at REAL NOT NULL,
    PRIMARY KEY (job_id, iteration)
);
CREATE TABLE proxies (
    name TEXT PRIMARY KEY,
    formula TEXT NOT NULL,
    sign REAL NOT NULL CHECK (sign IN (-1, 1)),
    benchmark TEXT NOT NULL,
    rho REAL,
    tau REAL,
    created_at REAL NOT NULL
);
""",
]

SCHEMA_VERSION = len(MIGRATIONS)
# SQLite's application_id of a project file ("NASP"): another program's database is refused.
APPLICATION_ID = 0x4E415350


class SchemaError(RuntimeError):
    """A file this version of nasstudio cannot open as a project."""


def migrate(conn: sqlite3.Connection, path: str) -> None:
    """Bring the schema to SCHEMA_VERSION in one transaction, or refuse a newer file.

    The version is read again inside the write transaction, so that several processes opening
    one new file at once upgrade it exactly once.
    """
    if _version(conn, path) == SCHEMA_VERSION:
        return
    # A migration may rebuild a table that others reference: check keys once at the end.
    conn.execute("PRAGMA foreign_keys=OFF")
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = _version(conn, path)
            for step in MIGRATIONS[version:]:
                for statement in step.split(";"):
                    if statement.strip():
                        conn.execute(statement)
            if conn.execute("PRAGMA foreign_key_check").fetchone() is not None:
                raise SchemaError(f"{path}: the upgraded project breaks a foreign key")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.execute("PRAGMA foreign_keys=ON")


def check_application(conn: sqlite3.Connection, path: str) -> None:
    """Refuse, before anything is written to it, a file that is not a nasstudio project: not
    SQLite at all, or another application's database. A new (empty) file is fine, and so is a
    project of schema version 1, which had no application_id yet. ``conn`` is not yet in WAL
    mode nor in a transaction."""
    try:
        conn.execute("BEGIN")  # one snapshot: another process may be creating the file
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        finally:
            conn.execute("ROLLBACK")
    except sqlite3.DatabaseError as exc:
        raise SchemaError(f"{path}: not a nasstudio project ({exc})") from None
    _refuse_newer(version, path)
    if app_id == APPLICATION_ID or (app_id == 0 and not tables):
        return
    if app_id == 0 and version == 1 and {"tasks", "architectures", "jobs"} <= tables:
        return
    owner = f"application_id {app_id:#x}" if app_id else f"tables {', '.join(sorted(tables))}"
    raise SchemaError(
        f"{path}: not a nasstudio project but another application's database ({owner})"
    )


def check_readable(conn: sqlite3.Connection, path: str) -> None:
    """A project opened read-only cannot be upgraded: it must be at this version already."""
    check_application(conn, path)
    version = _version(conn, path)
    if version != SCHEMA_VERSION:
        raise SchemaError(
            f"{path}: this read-only project has schema version {version}; open it once where "
            f"it can be written to upgrade it to version {SCHEMA_VERSION}"
        )


def _version(conn: sqlite3.Connection, path: str) -> int:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    _refuse_newer(version, path)
    return version


def _refuse_newer(version: int, path: str) -> None:
    if version > SCHEMA_VERSION:
        raise SchemaError(
            f"{path}: project schema version {version} is newer than this nasstudio "
            f"understands ({SCHEMA_VERSION}); upgrade nasstudio to open it"
        )
