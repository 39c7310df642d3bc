import json
import sqlite3
import subprocess
import sys
import threading

import pytest

from nasstudio.space import get_space, to_arch_info
from nasstudio.store import (
    BLEU_VALID,
    GFLOPS,
    KNOWN_TASKS,
    SCHEMA_VERSION,
    Measurement,
    Prediction,
    Project,
    SchemaError,
    Task,
)

DEMO = KNOWN_TASKS["demo"]


def test_new_project_is_wal_and_at_the_current_schema(tmp_path):
    path = tmp_path / "p.nasproj"
    Project(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_newer_schema_is_refused_with_a_clear_error(tmp_path):
    path = tmp_path / "future.nasproj"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(SchemaError, match="newer than this nasstudio"):
        Project(path)


def test_architectures_get_analytic_efficiency_and_are_not_duplicated(project):
    project.ensure_task(DEMO)
    archs = get_space(DEMO.space).sample_many(10, seed=0)
    assert len(project.add_architectures(DEMO.name, archs, "test")) == 10
    assert project.add_architectures(DEMO.name, archs, "test") == []
    table = project.table(DEMO.name)
    assert len(table) == 10
    assert table[GFLOPS].notna().all() and (table["source:gflops"] == "analytic").all()
    assert project.architecture(archs[3].id) == archs[3]


def test_table_takes_the_latest_measurement_and_every_predictor(project):
    project.ensure_task(DEMO)
    arch = get_space(DEMO.space).sample_many(1, seed=0)[0]
    project.add_architectures(DEMO.name, [arch], "test")
    project.add_measurements([Measurement(arch.id, DEMO.name, BLEU_VALID, 20.0, "run-1")])
    project.add_measurements([Measurement(arch.id, DEMO.name, BLEU_VALID, 22.0, "run-2")])
    project.add_measurements(
        [
            Measurement(arch.id, DEMO.name, "latency_ms", 12.5, "bench", device="cpu"),
        ]
    )
    project.add_predictions(
        [
            Prediction(arch.id, DEMO.name, BLEU_VALID, 21.0, "llm", "gpt-x", prompt_version="abc"),
        ]
    )
    row = project.table(DEMO.name).loc[arch.id]
    assert row[BLEU_VALID] == 22.0 and row["source:bleu_valid"] == "run-2"
    assert row["latency_ms@cpu"] == 12.5
    assert row["pred:bleu_valid@gpt-x"] == 21.0
    assert {m.source for m in project.measurements(arch.id)} >= {"run-1", "run-2", "analytic"}
    assert project.predictions(arch.id)[0].prompt_version == "abc"
    columns = project.value_columns(DEMO.name)
    assert "latency_ms@cpu" in columns["measured"]
    assert columns["predicted"] == ["pred:bleu_valid@gpt-x"]


def test_remeasuring_from_the_same_source_replaces_the_value(project):
    project.ensure_task(DEMO)
    arch = get_space(DEMO.space).sample_many(1, seed=0)[0]
    project.add_architectures(DEMO.name, [arch], "test")
    for value in (1.0, 2.0):
        project.add_measurements([Measurement(arch.id, DEMO.name, BLEU_VALID, value, "import")])
    values = [m.value for m in project.measurements(arch.id) if m.metric == BLEU_VALID]
    assert values == [2.0]


def test_a_failed_transaction_leaves_nothing_behind(project):
    project.ensure_task(DEMO)
    archs = get_space(DEMO.space).sample_many(5, seed=0)
    with pytest.raises(RuntimeError), project.transaction():
        project.add_architectures(DEMO.name, archs, "test")
        raise RuntimeError("crash mid-way")
    assert project.count_architectures() == 0
    assert project.table(DEMO.name).empty


def test_a_task_cannot_change_its_vocabulary(project):
    project.ensure_task(DEMO)
    with pytest.raises(ValueError, match="exists with vocabulary"):
        project.ensure_task(Task(DEMO.name, DEMO.vocab_size + 1, DEMO.space))


def test_writes_from_several_threads_all_land(project):
    project.ensure_task(DEMO)
    space = get_space(DEMO.space)

    def write(seed):
        project.add_architectures(DEMO.name, space.sample_many(40, seed), f"thread {seed}")

    threads = [threading.Thread(target=write, args=(seed,)) for seed in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expected = {a.id for seed in range(4) for a in space.sample_many(40, seed)}
    assert set(project.table(DEMO.name).index) == expected


def test_data_version_sees_commits_from_another_connection(tmp_path):
    path = tmp_path / "p.nasproj"
    reader, writer = Project(path), Project(path)
    before = reader.data_version()
    writer.ensure_task(DEMO)
    assert reader.data_version() != before
    reader.close()
    writer.close()


def test_another_applications_database_is_refused_and_left_as_it_was(tmp_path):
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.commit()
    conn.close()
    before = other.read_bytes()
    with pytest.raises(SchemaError, match=r"not a nasstudio project.*tables notes"):
        Project(other)
    assert other.read_bytes() == before  # no tables added, not switched to WAL
    text = tmp_path / "notes.txt"
    text.write_text("just text, long enough to look like a header " * 4)
    with pytest.raises(SchemaError, match="not a nasstudio project"):
        Project(text)


def test_a_new_project_carries_nasstudios_application_id(tmp_path):
    from nasstudio.store.schema import APPLICATION_ID

    path = tmp_path / "p.nasproj"
    Project(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    conn.close()
    Project(path).close()  # and opens again


_START_TOGETHER = None


def _keep_barrier(barrier):
    global _START_TOGETHER
    _START_TOGETHER = barrier


def _open_project(path):
    _START_TOGETHER.wait(timeout=60)  # all four open the new file at the same moment
    Project(path).close()


def test_processes_opening_one_new_project_at_once_all_succeed(tmp_path):
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(4)
    with context.Pool(4, initializer=_keep_barrier, initargs=(barrier,)) as pool:
        for attempt in range(6):
            path = tmp_path / f"p{attempt}.nasproj"
            pool.map(_open_project, [path] * 4, chunksize=1)
            conn = sqlite3.connect(path)
            assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
            conn.close()


def test_a_version_1_project_is_upgraded_in_place_keeping_its_jobs_and_logs(tmp_path):
    from nasstudio.store.schema import APPLICATION_ID, MIGRATIONS

    path = tmp_path / "old.nasproj"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0])
    conn.execute("INSERT INTO tasks VALUES ('demo', 256, 'tiny-cpu', '')")
    conn.execute(
        "INSERT INTO jobs (kind, title, params, state, created_at) VALUES"
        " ('sample', 'Sample 5', '{\"count\": 5}', 'done', 1.0),"
        " ('train', 'Train x', '{}', 'running', 2.0)"
    )
    conn.execute("INSERT INTO job_log VALUES (1, 1.5, 'sampled 5')")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    with Project(path) as project:
        done, running = project.jobs()
        assert (done.title, done.state, done.params) == ("Sample 5", "done", {"count": 5})
        # Its owner is unknown and gone: the job that was running is interrupted.
        assert running.state == "interrupted"
        assert project.job_log(1) == ["sampled 5"]
        assert project.curve(1) == [] and project.revisions() == {}
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    conn.close()


def test_an_import_and_a_sample_creating_one_task_at_once_both_succeed(tmp_path):
    archs = get_space("hat-wmt").sample_many(200, seed=4)
    pool = tmp_path / "wmt14ende.jsonl"
    pool.write_text(
        "".join(json.dumps({"scratch": {"arch_info": to_arch_info(a)}}) + "\n" for a in archs)
    )
    for attempt in range(3):
        path = tmp_path / f"p{attempt}.nasproj"  # new: both create the project, then the task
        commands = (
            ["import", "--project", str(path), str(pool)],
            ["sample", "--project", str(path), "--task", "wmt14ende", "-n", "50", "--seed", "2"],
        )
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "nasstudio", *command],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for command in commands
        ]
        for process in processes:
            _, err = process.communicate(timeout=300)
            assert process.returncode == 0, err
        with Project(path) as project:
            assert [t.name for t in project.tasks()] == ["wmt14ende"]
            origins = project.table("wmt14ende")["origin"].value_counts().to_dict()
        assert origins == {"llmas": 200, "sampled (seed 2)": 50}


def test_an_export_streams_its_architectures_in_flat_memory(project, tmp_path):
    import tracemalloc

    from nasstudio.store.exporters import export

    task = KNOWN_TASKS["wmt14ende"]
    project.ensure_task(task)
    archs = get_space(task.space).sample_many(1600, seed=3)
    project.add_architectures(task.name, archs, "test")
    project.add_measurements(
        Measurement(a.id, task.name, BLEU_VALID, 20 + i % 9, "run") for i, a in enumerate(archs)
    )
    peaks, sizes = {}, {}
    for count in (400, 1600):
        target = tmp_path / f"{count}.json"
        ids = [a.id for a in archs[:count]]
        tracemalloc.start()
        export(project, task.name, ids, "json", target)
        peaks[count] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        sizes[count] = target.stat().st_size
        assert [r["id"] for r in json.loads(target.read_text())] == ids
    print(f"peak {peaks} bytes for files of {sizes} bytes")
    # Four times the architectures: the file grows fourfold, the memory hardly at all, and it
    # stays well below the whole list held as text.
    assert sizes[1600] > 3.5 * sizes[400]
    # Loose: tracemalloc also counts what other threads (a test runner's) allocate meanwhile.
    assert peaks[1600] < 2 * peaks[400]
    assert peaks[1600] < sizes[1600] / 3
