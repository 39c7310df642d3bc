import threading
import time

import pytest

from nasstudio.jobs import JobRunner, JobState, sample_job
from nasstudio.store import KNOWN_TASKS


@pytest.fixture
def runner(project):
    project.ensure_task(KNOWN_TASKS["demo"])
    r = JobRunner(project)
    yield r
    r.shutdown()


def collect(runner):
    events = []
    runner.subscribe(events.append)
    return events


def test_a_job_runs_reports_progress_and_is_recorded(project, runner):
    events = collect(runner)
    job = runner.submit(
        "sample", "Sample", sample_job, project=project, task="demo", count=120, seed=1
    )
    assert runner.wait(job, timeout=30) == 120
    record = project.job(job)
    assert record.state == "done" and record.progress == 1.0
    assert record.params == {"task": "demo", "count": 120, "seed": 1}
    kinds = [e.kind for e in events]
    assert kinds[0] == "state" and "progress" in kinds and "partial" in kinds
    assert events[-1].state == JobState.DONE
    partial_ids = [i for e in events if e.kind == "partial" for i in e.payload]
    assert len(partial_ids) == 120 == project.count_architectures("demo")


def test_cancel_stops_within_two_seconds_and_keeps_what_was_recorded(project, runner):
    first_partial = threading.Event()
    runner.subscribe(lambda e: e.kind == "partial" and first_partial.set())
    job = runner.submit(
        "sample", "Sample a lot", sample_job, project=project, task="demo", count=10_000_000, seed=2
    )
    assert first_partial.wait(30)
    asked = time.monotonic()
    runner.cancel(job)
    runner.wait(job, timeout=30)
    assert time.monotonic() - asked < 2.0
    record = project.job(job)
    assert record.state == "cancelled" and record.finished_at is not None
    kept = project.count_architectures("demo")
    assert 0 < kept < 10_000_000


def failing_job(handle, message):
    handle.log("about to fail")
    yield "partial"
    raise RuntimeError(message)


def test_a_failing_job_records_its_error_and_log(project, runner):
    job = runner.submit("test", "Fails", failing_job, message="disk on fire")
    runner.wait(job, timeout=30)
    record = project.job(job)
    assert record.state == "failed" and record.error == "disk on fire"
    log = project.job_log(job)
    assert log[0] == "about to fail" and "RuntimeError: disk on fire" in log[-1]


def slow_job(handle):
    while True:
        handle.sleep(5)
        yield None


def test_queued_jobs_can_be_cancelled_before_they_start(project):
    runner = JobRunner(project, max_workers=1)
    busy = runner.submit("test", "Busy", slow_job)
    queued = runner.submit("test", "Queued", slow_job)
    assert project.job(queued).state == "queued"
    runner.cancel(queued)
    assert project.job(queued).state == "cancelled"
    runner.cancel(busy)
    runner.wait(busy, timeout=10)
    assert project.job(busy).state == "cancelled"
    runner.shutdown()
