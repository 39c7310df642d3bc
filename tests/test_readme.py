"""The README's commands run as written, in order, as a newcomer would run them: from a folder
beside ``../shared``, on a fresh default project with its own home and user folders.

A few budgets are cut for CI (``SMALLER_BUDGETS``), the LLM endpoint is the tests' own server
(``LLM_ENDPOINT``), and the commands that cannot run here are listed with the reason
(``NOT_RUN``). Every other command runs exactly as printed.
"""

from __future__ import annotations

import gzip
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import require_refdata
from tests.llm_server import FakeLLMServer

README = Path(__file__).resolve().parents[1] / "README.md"

# README text -> what CI runs instead: training, decoding and timing budgets, and nothing else.
SMALLER_BUDGETS = {
    "--limit 3 --steps 600": "--limit 1 --steps 4 --beam 1",
    "--minutes 10": "--steps 1 --beam 1",
    "--repeats 20": "--repeats 2 --warmup 1",
    "--steps 2000": "--steps 5",
    "--limit 20": "--limit 2 --bleu-sentences 10",
    "--name titanxp --steps 5000": "--name titanxp --steps 5",
    "--device llmas --name llmas": "--device llmas --name llmas --steps 5",
    "--name hat-bleu --steps 5000": "--name hat-bleu --steps 20",
    "--label 500": "--label 30 --steps 20 --ensemble 1",
    "--latency-predictor titanxp --seed 1": "--latency-predictor titanxp --seed 1 --iterations 4"
    " --population 20 --parents 5 --mutations 8 --crossovers 7",
    # LPZero: a few architectures, a population of 3 and one iteration; no classic proxies in
    # the searches (`lpzero proxies` computes them).
    "--sample 50 --seed 1": "--sample 2 --seed 1",
    "--sample 50 --seed 0": "--sample 3 --seed 0 --population 3 --iterations 1 --no-classic",
    "gpt2-wt103 --data ../shared/data/lpzero --expr": "gpt2-wt103 --sample 3 --data "
    "../shared/data/lpzero --expr",
    "--sample 100 --population 40 --iterations 300": "--sample 3 --population 3 --iterations 1"
    " --no-classic",
    "--name act-grad": "--name act-grad --sample 3",
    "--iterations 10 --population 40 --parents 10 --mutations 15 --crossovers 15": "--iterations 1"
    " --population 3 --parents 2 --mutations 1 --crossovers 0",
}
# Multi30k's valid and test sets take minutes to decode on CPU: CI trains on the first
# sentences of each of its files, in a folder of the same name.
MULTI30K = "../shared/data/multi30k"
MULTI30K_LINES = {"train": 1000, "val": 12, "test_2016_flickr": 12}
# The local LLM server the README assumes is the tests' OpenAI-compatible one.
LLM_ENDPOINT = "http://localhost:8000/v1"
# A fragment of each command that is not run -> why not.
NOT_RUN = {
    "python3 -m venv": "set-up: the tests run inside the installed environment",
    "pip install": "set-up: the tests run inside the installed environment",
    "nasstudio # or": "opens the window (the GUI tests cover it)",
    "python -m pytest": "the test suite itself",
    "--profile openai": "needs OpenAI's API: a key and the network",
    "ray://head": "needs a Ray cluster at 'head' (tests/test_ray.py runs a local one)",
    "nasstudio propose": "the tests' server answers a BLEU, not architectures "
    "(tests/test_propose.py scripts its answers)",
}


def readme_commands(text: str) -> list[str]:
    """The commands of the README's ```bash blocks, continuation lines joined."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL):
        for command in block.replace("\\\n", " ").splitlines():
            if command.strip() and not command.lstrip().startswith("#"):
                commands.append(" ".join(command.split()))
    return commands


def ci_version(command: str, endpoint: str, multi30k: Path) -> str:
    for text, smaller in SMALLER_BUDGETS.items():
        command = command.replace(text, smaller)
    return command.replace(LLM_ENDPOINT, endpoint).replace(MULTI30K, str(multi30k))


def multi30k_subset(source: Path, folder: Path) -> Path:
    """The first lines of each of Multi30k's files, in files of the same names."""
    folder.mkdir(parents=True)
    for path in source.glob("*.gz"):
        lines = MULTI30K_LINES[path.name.split(".")[0]]
        with gzip.open(path, "rt", encoding="utf-8") as text:
            head = [line for _, line in zip(range(lines), text, strict=False)]
        with gzip.open(folder / path.name, "wt", encoding="utf-8") as out:
            out.writelines(head)
    return folder


def why_not_run(command: str) -> str | None:
    return next((why for fragment, why in NOT_RUN.items() if fragment in command), None)


def test_readme_commands_run_as_written(tmp_path):
    shared = require_refdata().parent
    multi30k = multi30k_subset(require_refdata("multi30k"), tmp_path / "subset" / "multi30k")
    work = tmp_path / "main"
    work.mkdir()
    (tmp_path / "shared").symlink_to(shared)
    home = tmp_path / "home"
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_CACHE_HOME": str(home / "cache"),
        # The default project of that home: the first command creates it with the demo task.
        "NASSTUDIO_PROJECT": str(home / "data" / "nasstudio" / "default.nasproj"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "OPENAI_API_KEY": "sk-test",
    }
    commands = readme_commands(README.read_text(encoding="utf-8"))
    assert len(commands) > 20
    skipped = [c for c in commands if why_not_run(c)]
    assert len(skipped) == len(NOT_RUN)
    with FakeLLMServer() as server:
        for command in commands:
            if why_not_run(command):
                continue
            run = ci_version(command, server.base_url, multi30k)
            started = time.monotonic()
            done = subprocess.run(
                ["bash", "-c", run], cwd=work, env=env, capture_output=True, text=True
            )
            print(f"{time.monotonic() - started:6.1f} s  {run}", flush=True)  # its cost
            assert done.returncode == 0, f"{run}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
            assert "Traceback" not in done.stderr, f"{run}\n{done.stderr[-3000:]}"
    assert (work / "chosen").is_dir() and (work / "chosen.json").is_file()
    assert (work / "archs.json").stat().st_size > 0 and (work / "archs.jsonl").is_file()


def test_every_smaller_budget_and_skip_matches_a_readme_command():
    """The mapping stays in step with the README: each entry still matches a command."""
    commands = readme_commands(README.read_text(encoding="utf-8"))
    for text in (*SMALLER_BUDGETS, LLM_ENDPOINT, MULTI30K, *NOT_RUN):
        assert any(text in command for command in commands), text
    assert all(shlex.split(c) for c in commands)
