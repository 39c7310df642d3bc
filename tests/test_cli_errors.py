"""Every error a user can cause gives one line, ``nasstudio: error: <where>: <what>``, and exit
status 1 (130 for Ctrl+C), never a traceback; a refused import leaves the project as it was."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest

from nasstudio.cli import main
from nasstudio.jobs.files import import_job
from nasstudio.space import get_space, to_arch_info
from nasstudio.store import SCHEMA_VERSION, Project
from nasstudio.store.importers import HAT_LATENCY_COLUMNS
from tests.test_importers import dump

ARCH_A, ARCH_B = get_space("hat-wmt").sample_many(2, seed=1)
GOOD = {"valid_BLEU": 25.0, "test_BLEU": 24.0, "overall_latency": 100.0, "total_flops": 3e9}
LATENCY_ROW = "640,6,1962.6,6.0,512,4,1920.0,2.5,5.5,1.5,5.49,124.5,0.05,0.44"


def llmas_line(arch, **scratch):
    return json.dumps({"scratch": {"arch_info": to_arch_info(arch), **scratch}})


def snapshot(path):
    """Every row of the project file at ``path``, read without opening it as a project."""
    return dump(SimpleNamespace(path=path))


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_clean_line(err, start):
    assert err.startswith(f"nasstudio: error: {start}"), err
    assert err.count("\n") == 1 and "Traceback" not in err, err


@pytest.fixture
def project_path(tmp_path):
    """A project with one imported architecture: the state a refused import must keep."""
    path = tmp_path / "p.nasproj"
    seed = tmp_path / "seed" / "wmt14ende.jsonl"
    seed.parent.mkdir()
    seed.write_text(llmas_line(ARCH_A, **GOOD) + "\n")
    assert main(["import", "--project", str(path), str(seed)]) == 0
    return path


# --- the project file -------------------------------------------------------------------------


def _folder(tmp_path):
    (tmp_path / "folder.nasproj").mkdir()
    return tmp_path / "folder.nasproj", "a folder, not a project file"


def _text(tmp_path):
    (tmp_path / "notes.nasproj").write_text("plain text, long enough to look like a header " * 4)
    return tmp_path / "notes.nasproj", "not a nasstudio project"


def _other_database(tmp_path):
    conn = sqlite3.connect(tmp_path / "other.db")
    conn.execute("CREATE TABLE notes (text TEXT)")
    conn.commit()
    conn.close()
    return tmp_path / "other.db", "not a nasstudio project but another application's database"


def _newer(tmp_path):
    conn = sqlite3.connect(tmp_path / "future.nasproj")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    return tmp_path / "future.nasproj", "project schema version"


def _empty_sqlite_of_another_application(tmp_path):
    conn = sqlite3.connect(tmp_path / "app.db")
    conn.execute("PRAGMA application_id = 1234")
    conn.close()
    return tmp_path / "app.db", "another application's database (application_id 0x4d2)"


@pytest.mark.parametrize(
    "make", [_folder, _text, _other_database, _newer, _empty_sqlite_of_another_application]
)
@pytest.mark.parametrize("command", [["list"], ["tasks"], ["sample", "-n", "2"]])
def test_a_file_that_is_not_a_project_of_this_version_is_refused_unchanged(
    tmp_path, capsys, make, command
):
    path, message = make(tmp_path)
    before = path.read_bytes() if path.is_file() else None
    code, _, err = run(capsys, *command, "--project", path)
    assert code == 1
    assert_one_clean_line(err, f"{path}: ")
    assert message in err
    assert (path.read_bytes() if path.is_file() else None) == before  # never converted


# --- import files -------------------------------------------------------------------------------


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


HEADER = ",".join(HAT_LATENCY_COLUMNS)


@pytest.mark.parametrize(
    "name, content, where, message",
    [
        (
            "wmt14ende.jsonl",
            llmas_line(ARCH_A, **GOOD).replace(
                '"total_flops": 3000000000.0', '"total_flops": ' + "9" * 400
            ),
            ":1: ",
            "'total_flops' is a huge integer, expected 1 to 1e+15",
        ),
        (
            "wmt14ende.jsonl",
            llmas_line(ARCH_B) + "\n" + '{"scratch": {"total_flops": ' + "9" * 5000 + "}}",
            ":2: ",
            "not usable JSON (a number of more than 4300 digits)",
        ),
        ("wmt14ende.jsonl", "[" * 100_000 + "]" * 100_000, ":1: ", "nested too deeply"),
        (
            "wmt14ende.jsonl",
            llmas_line(ARCH_A, **{**GOOD, "overall_latency": 1e308}),
            ":1: ",
            "'overall_latency' is 1e+308, expected 0.001 to 1e+06",
        ),
        (
            "wmt14ende.jsonl",
            llmas_line(ARCH_A, **{**GOOD, "valid_BLEU": float("nan")}),
            ":1: ",
            "'valid_BLEU' is nan",
        ),
        ("wmt14ende.jsonl", b'{"scratch": \xff\xfe}', ":1: ", "not UTF-8 text"),
        (
            "wmt14ende_cpu.csv",
            f"{HEADER}\n{LATENCY_ROW}\n{LATENCY_ROW.replace('124.5', '1e308')}\n",
            ":3: ",
            "'latency_mean_decoder' is 1e+308, expected 0.001 to 1e+06",
        ),
        (
            "wmt14ende_cpu.csv",
            f'{HEADER}\n{LATENCY_ROW}\n"{"x" * 200_000}"\n',
            ":3: ",
            "not valid CSV (field larger than field limit",
        ),
        ("latency.csv", f"{HEADER}\n{LATENCY_ROW}\n", ": ", "does not say which task"),
        ("missing.jsonl", None, ": ", "no such file"),
        ("wmt14ende.yml", "encoder-embed-dim-subtransformer: [\n", ": ", "say which task"),
    ],
)
def test_a_bad_import_file_gives_one_line_naming_file_and_line(
    project_path, tmp_path, capsys, name, content, where, message
):
    path = tmp_path / "in" / name
    if content is not None:
        _write(path, content)
    before = snapshot(project_path)
    code, _, err = run(capsys, "import", "--project", project_path, path)
    assert code == 1
    assert_one_clean_line(err, f"{path}{where}")
    assert message in err
    assert snapshot(project_path) == before


def test_an_empty_task_name_is_refused(project_path, tmp_path, capsys):
    path = _write(tmp_path / "in" / "archs.jsonl", llmas_line(ARCH_B) + "\n")
    csv = _write(tmp_path / "in" / "latency.csv", f"{HEADER}\n{LATENCY_ROW}\n")
    before = snapshot(project_path)
    for file in (path, csv):
        code, _, err = run(capsys, "import", "--project", project_path, "--task", "", file)
        assert code == 1
        assert_one_clean_line(err, "the task name is empty")
    assert snapshot(project_path) == before


def test_one_architecture_with_two_bleu_scores_in_one_import_is_refused(
    project_path, tmp_path, capsys
):
    first = _write(tmp_path / "a" / "wmt14ende" / "train.jsonl", llmas_line(ARCH_B, **GOOD))
    again = {**GOOD, "valid_BLEU": 26.5}
    second = _write(
        tmp_path / "b" / "wmt14ende" / "test.jsonl",
        llmas_line(ARCH_A, **GOOD) + "\n" + llmas_line(ARCH_B, **again) + "\n",
    )
    before = snapshot(project_path)
    code, _, err = run(capsys, "import", "--project", project_path, first, second)
    assert code == 1
    assert_one_clean_line(err, f"{second}:2: ")
    assert f"bleu_valid 26.5 here but 25 at {first}:1" in err
    assert snapshot(project_path) == before
    # The same numbers twice (a seed file and a pool sharing architectures) are fine.
    code, out, _ = run(capsys, "import", "--project", project_path, first, first)
    assert code == 0 and "1 architecture (1 new)" in out


def test_two_latency_tables_of_one_name_in_one_import_are_refused(project_path, tmp_path, capsys):
    first = _write(tmp_path / "a" / "wmt14ende_cpu.csv", f"{HEADER}\n{LATENCY_ROW}\n")
    second = _write(
        tmp_path / "b" / "wmt14ende_cpu.csv", f"{HEADER}\n{LATENCY_ROW}\n{LATENCY_ROW}\n"
    )
    before = snapshot(project_path)
    code, _, err = run(capsys, "import", "--project", project_path, first, second)
    assert code == 1
    assert_one_clean_line(err, f"{second}: latency table 'wmt14ende_cpu' comes from {first} too")
    assert snapshot(project_path) == before
    code, out, _ = run(capsys, "import", "--project", project_path, first, first)
    assert code == 0 and out.count("1 latency row\n") == 2


def test_a_file_repeating_an_architecture_reports_it_once(project_path, tmp_path, capsys):
    path = _write(tmp_path / "wmt14ende.jsonl", "\n".join([llmas_line(ARCH_B, **GOOD)] * 3) + "\n")
    code, out, _ = run(capsys, "import", "--project", project_path, path)
    assert code == 0
    assert out.strip() == (
        f"{path} -> wmt14ende: 1 architecture (1 new), 4 measurements, 0 predictions"
        " (2 lines repeating an earlier one skipped)"
    )


def test_ctrl_c_while_writing_an_import_exits_130_and_changes_nothing(
    project_path, tmp_path, capsys, monkeypatch
):
    path = _write(tmp_path / "wmt14ende.jsonl", llmas_line(ARCH_B, **GOOD) + "\n")
    before = snapshot(project_path)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Project, "add_measurements", interrupted)  # Ctrl+C mid-transaction
    code, _, err = run(capsys, "import", "--project", project_path, path)
    assert code == 130 and err == "nasstudio: interrupted\n"
    monkeypatch.undo()
    assert snapshot(project_path) == before


def test_ctrl_c_while_reading_an_import_exits_130_and_changes_nothing(project_path, tmp_path):
    fifo = tmp_path / "wmt14ende.jsonl"
    os.mkfifo(fifo)
    before = snapshot(project_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "nasstudio", "import", "--project", str(project_path), str(fifo)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with open(fifo, "w") as writer:  # opens once the importer reads: it is reading now
            writer.write(llmas_line(ARCH_B, **GOOD) + "\n")
            writer.flush()
            time.sleep(0.2)
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 130, err
    assert err == "nasstudio: interrupted\n"
    assert snapshot(project_path) == before


def test_ctrl_c_during_a_job_cancels_it_keeps_its_records_and_exits_130(tmp_path):
    path = tmp_path / "p.nasproj"
    process = subprocess.Popen(
        [sys.executable, "-m", "nasstudio", "sample", "--project", str(path), "-n", "100000"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = process.stderr.readline()  # the progress bar: the job runs
        process.send_signal(signal.SIGINT)
        rest = process.communicate(timeout=120)[1]
    finally:
        process.kill()
        process.wait()
    assert first.startswith("[") and process.returncode == 130, first + rest
    assert rest.endswith("cancelled; what was done so far is kept\nnasstudio: interrupted\n")
    with Project(path) as project:
        assert project.jobs()[-1].state == "cancelled"
        assert 0 <= project.count_architectures("demo") < 100_000


# --- errors inside jobs -------------------------------------------------------------------------


def test_an_import_job_fails_with_the_files_line_and_the_cli_says_it_in_one_line(
    project_path, tmp_path
):
    from nasstudio.cli.common import CliError, run_job

    bad = _write(tmp_path / "wmt14ende.jsonl", llmas_line(ARCH_B, **GOOD) + "\n{oops\n")
    project = Project(project_path)
    before = dump(project)
    with pytest.raises(CliError) as info:
        run_job(project, "import", "Import", import_job, paths=[str(bad)])
    assert str(info.value).startswith(f"Import failed: {bad}:2: not valid JSON")
    assert "\n" not in str(info.value)
    assert project.jobs()[-1].error.startswith(f"{bad}:2: ")
    after = dump(project)
    assert {t: after[t] for t in after if not t.startswith("job")} == {
        t: before[t] for t in before if not t.startswith("job")
    }


# --- help -------------------------------------------------------------------------------------


def test_help_names_the_project_option_file_and_keeps_the_default_path_whole(tmp_path):
    data_home = tmp_path / "a-rather-long-folder-name-for-user-data-that-must-not-be-broken"
    env = {**os.environ, "XDG_DATA_HOME": str(data_home), "COLUMNS": "72"}
    for argv in (["--help"], ["export", "--help"]):
        result = subprocess.run(
            [sys.executable, "-m", "nasstudio", *argv],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        assert "--project FILE" in result.stdout
        assert "PROJECT_BEFORE_COMMAND" not in result.stdout
        assert str(data_home / "nasstudio" / "default.nasproj") in result.stdout


# --- a read-only project ----------------------------------------------------------------------

# Root may write any file: as root, the CLI runs without that power (CAP_DAC_OVERRIDE dropped
# from its capability bounding set), so that file modes bind it as they bind any user.
_WITHOUT_OVERRIDE = """
import ctypes, os, sys
if ctypes.CDLL(None, use_errno=True).prctl(24, 1, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
    sys.exit(77)
os.execv(sys.executable, [sys.executable, "-m", "nasstudio", *sys.argv[1:]])
"""


def run_as_reader(*argv):
    command = [sys.executable, "-m", "nasstudio"]
    if os.geteuid() == 0:
        command = [sys.executable, "-c", _WITHOUT_OVERRIDE]
    result = subprocess.run(
        [*command, *map(str, argv)], capture_output=True, text=True, timeout=120
    )
    if result.returncode == 77:
        pytest.skip("cannot drop root's power to write read-only files here")
    return result


@pytest.mark.parametrize("folder_writable", [False, True])
def test_a_read_only_project_opens_for_reading(project_path, tmp_path, folder_writable):
    before = snapshot(project_path)
    project_path.chmod(0o444)
    if not folder_writable:
        project_path.parent.chmod(0o555)
    out = tmp_path / "out" if folder_writable else tmp_path.parent / f"{tmp_path.name}-out"
    try:
        listed = run_as_reader("list", "--project", project_path, "--json")
        assert listed.returncode == 0, listed.stderr
        assert [r["id"] for r in json.loads(listed.stdout)] == [ARCH_A.id]
        tasks = run_as_reader("tasks", "--project", project_path)
        assert tasks.returncode == 0 and "1 architecture" in tasks.stdout
        pareto = run_as_reader("pareto", "--project", project_path, "--json")
        assert pareto.returncode == 0
        assert [p["id"] for p in json.loads(pareto.stdout)["front"]] == [ARCH_A.id]
        exported = run_as_reader("export", "--project", project_path, "-o", out / "all.json")
        assert exported.returncode == 0, exported.stderr
        assert [r["id"] for r in json.loads((out / "all.json").read_text())] == [ARCH_A.id]
        # A change is refused in one line.
        sampled = run_as_reader("sample", "--project", project_path, "--task", "wmt14ende")
        assert sampled.returncode == 1
        assert_one_clean_line(sampled.stderr, f"{project_path}: the project is open read-only")
    finally:
        project_path.parent.chmod(0o755)
        project_path.chmod(0o644)
    assert snapshot(project_path) == before
