"""The LPZero search job and its records: the sample first, one iteration per GP iteration,
all kept in the project (a cancel keeps those done); stored proxies; opening benchmarks by
name, by file and by a project's task; the schema 4 -> 5 upgrade.

The archs files are tiny decoders (tests/lpzero_archs.py) whose #params ranks them exactly as
their ground truth, by construction."""

import json
import math
import sqlite3
import threading

import pytest
import torch

from nasstudio.jobs import JobHandle, JobRunner, JobState
from nasstudio.jobs.records import ProxyIteration, ProxySample, records_in, write_records
from nasstudio.lpzero.jobs import LPZeroSpec, lpzero_search_job
from nasstudio.lpzero.search import GPSettings
from nasstudio.lpzero.suites import DATA_ENV, SuiteError, open_suite
from nasstudio.store import Project, StoredProxy
from nasstudio.store.schema import APPLICATION_ID, MIGRATIONS
from tests.conftest import require_refdata
from tests.lpzero_archs import write_archs

SMALL = GPSettings(population=6, iterations=5, seed=3)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def archs(tmp_path):
    return write_archs(tmp_path / "archs.jsonl")


def run(project, spec, job_id=1):
    """Run the job to its end, recording what it yields as the runner would."""
    job = lpzero_search_job(JobHandle(job_id, lambda message: None), project, spec.as_params())
    yielded = []
    while True:
        try:
            item = next(job)
        except StopIteration as stop:
            return yielded, stop.value
        write_records(project, job_id, records_in(item))
        yielded.append(item)


def test_a_search_records_its_sample_then_every_iteration(project, archs):
    spec = LPZeroSpec(str(archs), settings=SMALL, classic=True)
    yielded, result = run(project, spec, job_id=4)
    sample, *iterations = yielded
    assert isinstance(sample, ProxySample)
    assert sample.arch_ids == tuple(f"tiny_{i}" for i in range(8))
    assert sample.truth == tuple(-200.0 + 10 * i for i in range(8))  # -valid ppl
    assert sample.truth_label == "-valid ppl"
    # Larger by construction: #params ranks exactly as the ground truth.
    assert sample.classic["num_parameters"] == pytest.approx((1.0, 1.0))
    assert {"snip", "grad_norm", "synflow"} <= sample.classic.keys()
    assert [i.index for i in iterations] == list(range(5))
    assert all(isinstance(i, ProxyIteration) for i in iterations)
    assert iterations[0].best_values is not None and len(iterations[0].best_values) == 8
    assert project.lpzero_samples(4) == [sample]
    assert project.lpzero_iterations(4) == iterations
    last = iterations[-1]
    assert result["best"] == last.best and result["iterations"] == 5
    assert result["rho"] == last.best_rho and abs(result["rho"]) == last.best_fitness
    assert result["sign"] == (1 if last.best_rho >= 0 else -1)
    # A proxy's fitness is its |rho| against the truth.
    values = [v for v in iterations[0].best_values if math.isfinite(v)]
    assert len(values) >= 6


def test_the_same_seed_gives_the_same_search(project, archs):
    spec = LPZeroSpec(str(archs), settings=SMALL, classic=False)
    first, _ = run(project, spec, job_id=1)
    second, _ = run(project, spec, job_id=2)
    assert first == second
    assert first[0].classic == {}


def test_a_cancel_keeps_the_iterations_done(project, archs):
    spec = LPZeroSpec(str(archs), settings=GPSettings(population=6, iterations=500), classic=False)
    runner = JobRunner(project.path)
    seen, ended = [], threading.Event()

    def listen(event):
        if event.kind == "partial" and isinstance(event.payload, ProxyIteration):
            seen.append(event.payload.index)
            if len(seen) == 3:
                runner.cancel(event.job_id)
        if event.state.finished:
            ended.set()

    runner.subscribe(listen)
    job_id = runner.submit(
        "lpzero", "LPZero", lpzero_search_job, executor="thread", spec=spec.as_params()
    )
    assert ended.wait(120)
    runner.shutdown()
    assert project.job(job_id).state == JobState.CANCELLED
    stored = [i.index for i in project.lpzero_iterations(job_id)]
    assert stored == seen == list(range(len(seen)))
    assert 3 <= len(stored) < 500
    assert project.lpzero_samples(job_id)[0].arch_ids[0] == "tiny_0"
    (row,) = project.lpzero_searches()
    assert (row["job_id"], row["iterations"], row["state"]) == (job_id, len(stored), "cancelled")
    assert LPZeroSpec.from_params(project.job(job_id).params["spec"]) == spec


def test_a_spec_names_a_task_either_way_and_round_trips():
    by_task = LPZeroSpec(task="demo", sample=5, settings=SMALL)
    assert by_task == LPZeroSpec("task:demo", sample=5, settings=SMALL)
    assert by_task.benchmark == "task:demo" and by_task.task == "demo"
    assert LPZeroSpec.from_params(by_task.as_params()) == by_task
    with pytest.raises(ValueError, match="disagree"):
        LPZeroSpec("gpt2-wt103", task="demo")


def test_stored_proxies_are_listed_and_a_taken_name_is_refused(project):
    first = StoredProxy("mine", "mul(act, grad)", -1, "gpt2-wt103", 0.9, 0.8)
    project.add_proxy(first)
    project.add_proxy(StoredProxy("other", "add(q, k)", 1, "flexibert"))
    assert project.proxies() == [first, StoredProxy("other", "add(q, k)", 1, "flexibert")]
    assert project.proxy("mine") == first
    with pytest.raises(ValueError, match="'mine' is already stored"):
        project.add_proxy(StoredProxy("mine", "add(v, v)", 1, "x"))
    project.add_proxy(StoredProxy("mine", "add(v, v)", 1, "x"), replace=True)
    assert project.proxy("mine").formula == "add(v, v)"
    with pytest.raises(KeyError, match="stored: mine, other"):
        project.proxy("nothing")
    with pytest.raises(ValueError, match="sign"):
        project.add_proxy(StoredProxy("zero", "add(v, k)", 0, "x"))


def test_a_named_benchmark_is_read_from_the_data_folder_given(monkeypatch, tmp_path):
    monkeypatch.delenv(DATA_ENV, raising=False)
    with pytest.raises(SuiteError, match=f"--data DIR or \\${DATA_ENV}"):
        open_suite("gpt2-wt103")
    with pytest.raises(SuiteError, match="no file"):
        open_suite("gpt2-wt103", data_dir=tmp_path)
    with pytest.raises(SuiteError, match="unknown benchmark 'gpt3'"):
        open_suite("gpt3")
    data = require_refdata("lpzero")
    monkeypatch.setenv(DATA_ENV, str(data))
    bert_file = data / "flexibert" / "BERT_benchmark.json"
    suite = open_suite("gpt2-wt103", sample=6, seed=1)
    assert len(suite) == 6 and suite.name == "gpt2-wt103"
    assert all(t < 0 for t in suite.truth)  # -valid ppl
    assert open_suite("gpt2-wt103", sample=6, seed=1).arch_ids == suite.arch_ids
    assert open_suite("gpt2-wt103", sample=6, seed=2).arch_ids != suite.arch_ids
    bert = open_suite("flexibert", sample=4, seed=1)
    assert bert.truth_label == "GLUE" and len(bert) == 4
    glue = {str(r["id"]): r["scores"]["glue"] for r in json.loads(bert_file.read_text())}
    assert bert.truth == tuple(glue[i] for i in bert.arch_ids)
    assert open_suite(str(bert_file), sample=4, seed=1).arch_ids == bert.arch_ids  # as a file


def test_a_sample_larger_than_the_benchmark_is_refused(archs):
    with pytest.raises(SuiteError, match="sample of 9: expected 2 to 8"):
        open_suite(str(archs), sample=9)
    assert len(open_suite(str(archs), sample=3)) == 3


def test_a_version_4_project_is_upgraded_and_then_records_lpzero_searches(tmp_path, archs):
    path = tmp_path / "v4.nasproj"
    conn = sqlite3.connect(path)
    for step in MIGRATIONS[:4]:
        conn.executescript(step)
    conn.execute("INSERT INTO tasks VALUES ('demo', 256, 'tiny-cpu', '')")
    conn.execute(
        "INSERT INTO jobs (kind, title, state, created_at) VALUES ('train', 'Train x', 'done', 1)"
    )
    conn.execute("PRAGMA user_version = 4")
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.commit()
    conn.close()
    with Project(path) as project:
        assert [t.name for t in project.tasks()] == ["demo"]
        assert [j.title for j in project.jobs()] == ["Train x"]
        assert project.proxies() == [] and project.lpzero_searches() == []
        run(project, LPZeroSpec(str(archs), settings=SMALL, classic=False), job_id=2)
        assert len(project.lpzero_iterations(2)) == 5
