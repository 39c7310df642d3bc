"""`nasstudio jobs`: the project's jobs with their states, and running one again."""

import json
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from nasstudio.cli import main
from nasstudio.store import JobOwner, Project, SchemaError

ROOT = Path(__file__).resolve().parents[1]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_jobs_lists_states_and_a_finished_job_runs_again(capsys, tmp_path):
    path = str(tmp_path / "p.nasproj")
    assert run(capsys, "sample", "-p", path, "--task", "demo", "-n", "30", "--seed", "4")[0] == 0
    code, out, _ = run(capsys, "jobs", "-p", path, "--json")
    assert code == 0
    (job,) = json.loads(out)
    assert job["state"] == "done" and job["can_run_again"] and job["executor"] == "thread"

    code, out, _ = run(capsys, "jobs", "-p", path, "--rerun", str(job["id"]))
    assert code == 0 and "ran again: 30" in out  # 30 more that the task did not have
    with Project(path) as project:
        assert project.count_architectures("demo") == 60
    code, out, _ = run(capsys, "jobs", "-p", path)
    assert code == 0 and out.count("done") == 2


def test_a_job_whose_process_died_is_listed_as_interrupted(capsys, tmp_path):
    path = tmp_path / "p.nasproj"
    with Project(path) as project:
        gone = JobOwner(socket.gethostname(), 2**22 + 7, 0.0)  # no such process
        project.create_job("train", "Train abc", {}, gone, resource="cpu", executor="process")
        project.update_job(1, state="running")
    code, out, _ = run(capsys, "jobs", "-p", str(path), "--state", "interrupted")
    assert code == 0 and "interrupted" in out and "Train abc" in out
    code, _, err = run(capsys, "jobs", "-p", str(path), "--rerun", "1")
    assert code == 1 and "cannot be run again" in err


def running_jobs(path):
    """The running jobs of a project another process may be creating right now (its schema
    may not be written yet)."""
    try:
        with Project(path, readonly=True) as project:
            return project.jobs(("running",))
    except (OSError, sqlite3.Error, SchemaError):
        return []


def test_a_cli_job_killed_with_sigkill_shows_interrupted_on_the_next_open(capsys, tmp_path):
    path = tmp_path / "p.nasproj"
    command = [sys.executable, "-m", "nasstudio", "sample", "-p", str(path), "-n", "5000000"]
    child = subprocess.Popen(command, stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while not running_jobs(path) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    code, out, _ = run(capsys, "jobs", "-p", str(path), "--json")
    (job,) = json.loads(out)
    assert code == 0 and job["state"] == "interrupted" and job["title"].startswith("Sample")
