import os
import signal
import threading
import time

import pytest

from nasstudio.jobs import JobRunner, JobState, sample_job
from nasstudio.store import KNOWN_TASKS, Project
from tests import jobfns


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
    job = runner.submit("sample", "Sample", sample_job, task="demo", count=120, seed=1)
    assert runner.wait(job, timeout=30) == 120
    record = project.job(job)
    assert record.state == "done" and record.progress == 1.0
    assert record.params == {"task": "demo", "count": 120, "seed": 1}
    assert record.function == "nasstudio.jobs.sampling:sample_job"
    kinds = [e.kind for e in events]
    assert kinds[0] == "state" and "progress" in kinds and "partial" in kinds
    assert events[-1].state == JobState.DONE
    partials = [e for e in events if e.kind == "partial"]
    assert all(e.tasks == {"demo"} for e in partials)
    assert sum(len(e.payload.archs) for e in partials) == 120 == project.count_architectures("demo")


def test_jobs_see_a_read_only_project(project, runner):
    def writes(handle, project):
        project.ensure_task(KNOWN_TASKS["wmt14ende"])
        yield None

    job = runner.submit("test", "Writes", writes)
    runner.wait(job, timeout=30)
    assert project.job(job).state == "failed"
    assert "the project is open read-only" in project.job(job).error
    assert project.task("wmt14ende") is None


def test_cancel_stops_within_two_seconds_and_keeps_what_was_recorded(project, runner):
    first_partial = threading.Event()
    runner.subscribe(lambda e: e.kind == "partial" and first_partial.set())
    job = runner.submit("sample", "Sample a lot", sample_job, task="demo", count=10_000_000, seed=2)
    assert first_partial.wait(30)
    asked = time.monotonic()
    runner.cancel(job)
    runner.wait(job, timeout=30)
    assert time.monotonic() - asked < 2.0
    record = project.job(job)
    assert record.state == "cancelled" and record.finished_at is not None
    kept = project.count_architectures("demo")
    assert 0 < kept < 10_000_000


def test_a_failing_job_records_its_error_and_log(project, runner):
    job = runner.submit("test", "Fails", jobfns.failing_job, message="disk on fire")
    runner.wait(job, timeout=30)
    record = project.job(job)
    assert record.state == "failed" and record.error == "disk on fire"
    assert record.message == "RuntimeError: disk on fire"
    log = project.job_log(job)
    assert log[0] == "about to fail" and "RuntimeError: disk on fire" in log[-1]


def test_a_record_that_cannot_be_written_fails_the_job_and_keeps_its_log(project, runner):
    job = runner.submit(
        "test", "Bad task", jobfns.add_archs_job, task="no-such-task", count=20, seed=0
    )
    runner.wait(job, timeout=30)
    record = project.job(job)
    assert record.state == "failed" and "no task 'no-such-task'" in record.error
    assert any("cannot record" in line for line in project.job_log(job))


def test_queued_jobs_wait_for_their_resource_and_can_be_cancelled_before_they_start(project):
    runner = JobRunner(project, slots={"io": 1})
    busy = runner.submit("test", "Busy", jobfns.slow_job)
    queued = runner.submit("test", "Queued", jobfns.slow_job)
    other = runner.submit("test", "Elsewhere", jobfns.slow_job, resource="other")
    assert project.job(queued).state == "queued"
    runner.cancel(queued)
    runner.wait(queued, timeout=10)
    assert project.job(queued).state == "cancelled"
    assert project.job(queued).started_at is None
    deadline = time.monotonic() + 30
    while project.job(other).state != "running" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert project.job(other).state == "running"  # another resource has its own queue
    for job in (busy, other):
        runner.cancel(job)
        runner.wait(job, timeout=10)
        assert project.job(job).state == "cancelled"
    runner.shutdown()


def test_a_raising_listener_does_not_fail_the_job(project, runner):
    def bad_listener(event):
        raise RuntimeError("listener bug")

    runner.subscribe(bad_listener)
    job = runner.submit("sample", "Sample", sample_job, task="demo", count=30, seed=3)
    assert runner.wait(job, timeout=30) == 30
    assert project.job(job).state == "done"


def test_every_subscriber_sees_queued_running_then_the_end_in_order(project, runner):
    streams = [collect(runner), collect(runner)]
    jobs = [
        runner.submit("sample", f"Sample {i}", sample_job, task="demo", count=20, seed=i)
        for i in range(4)
    ]
    for job in jobs:
        runner.wait(job, timeout=30)
    for events in streams:
        for job in jobs:
            states = [e.state for e in events if e.job_id == job and e.kind == "state"]
            assert states == [JobState.QUEUED, JobState.RUNNING, JobState.DONE]
            last_state = max(i for i, e in enumerate(events) if e.job_id == job)
            assert events[last_state].kind == "state"
    assert runner.active() == []  # finished jobs are dropped


# --- worker processes ------------------------------------------------------------------------


def test_a_process_job_runs_in_its_own_process_with_its_own_seed_and_threads(project, runner):
    events = collect(runner)
    job = runner.submit("test", "Torch", jobfns.torch_seed_job, executor="process")
    result = runner.wait(job, timeout=120)
    assert result["threads"] == 1
    record = project.job(job)
    assert record.state == "done" and record.worker.startswith("process ")
    assert str(os.getpid()) not in record.worker
    # The worker seeded its generators from the job id, so a rerun draws the same numbers
    # whatever this process did with its own generators.
    first = next(e.payload for e in events if e.kind == "partial" and e.job_id == job)
    again = runner.rerun(job)
    runner.wait(again, timeout=120)
    assert runner.wait(again) == result
    second = next(e.payload for e in events if e.kind == "partial" and e.job_id == again)
    assert set(first) == set(second)


def test_killing_a_worker_fails_its_job_and_the_next_job_runs(project):
    runner = JobRunner(project, slots={"cpu": 1})
    pid = threading.Event()
    pids = {}
    runner.subscribe(
        lambda e: e.kind == "partial" and (pids.setdefault(e.job_id, e.payload), pid.set())
    )
    doomed = runner.submit(
        "test", "Doomed", jobfns.pid_then_wait_job, executor="process", resource="cpu"
    )
    after = runner.submit(
        "test", "After", jobfns.pid_then_wait_job, executor="process", resource="cpu", seconds=0.1
    )
    assert pid.wait(60)
    os.kill(pids[doomed], signal.SIGKILL)
    runner.wait(doomed, timeout=30)
    record = project.job(doomed)
    assert record.state == "failed" and "killed by SIGKILL" in record.error
    assert runner.wait(after, timeout=60) == "woke"
    assert project.job(after).state == "done"
    runner.shutdown()


def test_cancel_ends_a_process_job_within_two_seconds_even_if_it_ignores_it(project, runner):
    started = threading.Event()
    runner.subscribe(lambda e: e.kind == "log" and e.message == "sleeping" and started.set())
    job = runner.submit("test", "Stubborn", jobfns.ignores_cancel_job, executor="process")
    assert started.wait(60)
    asked = time.monotonic()
    runner.cancel(job)
    runner.wait(job, timeout=30)
    assert time.monotonic() - asked < 2.0 + 1.0  # grace, then terminate
    record = project.job(job)
    assert record.state == "cancelled"
    assert any("ended" in line for line in project.job_log(job))


def test_a_job_whose_owner_died_is_marked_interrupted_on_the_next_open(project, tmp_path):
    project.ensure_task(KNOWN_TASKS["demo"])
    script = (
        "import sys, time\n"
        "from nasstudio.jobs import JobRunner\n"
        "from tests import jobfns\n"
        "runner = JobRunner(sys.argv[1], slots={'io': 1})\n"
        "runner.submit('test', 'Running', jobfns.slow_job)\n"
        "runner.submit('test', 'Waiting', jobfns.slow_job)\n"
        "print('started', flush=True)\n"
        "time.sleep(600)\n"
    )
    import subprocess
    import sys

    child = subprocess.Popen(
        [sys.executable, "-c", script, str(project.path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    try:
        assert child.stdout.readline().strip() == "started"
        deadline = time.monotonic() + 30
        while project.jobs(("running",)) == [] and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    with Project(project.path) as reopened:
        states = {job.title: (job.state, job.message) for job in reopened.jobs()}
    assert states["Running"][0] == "interrupted" and "ended" in states["Running"][1]
    assert states["Waiting"][0] == "interrupted"
    # Jobs of a live owner are left alone.
    runner = JobRunner(project)
    live = runner.submit("test", "Live", jobfns.slow_job)
    with Project(project.path) as again:
        assert again.job(live).state in ("queued", "running")
    runner.shutdown()
