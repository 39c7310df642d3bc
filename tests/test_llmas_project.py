"""llmas's templates as prompts of the project: importing a template folder, predicting and
evaluating with them (the request the LLM gets is llmas's, byte for byte against
../shared/data/llmpp/golden_llmas), llmas's cumulative ablation beside the project's
leave-one-out one, and a restricted demonstration pool."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nasstudio.cli import main
from nasstudio.store import Project
from tests.conftest import require_refdata
from tests.llm_server import add_wmt_architectures, write_seedarchs
from tests.test_predict_evaluate import SMALL_ARCHS, SMALL_BLEU

# llmas's ablation, in the order of the paper's table: each template adds one part to the one
# before (read off the published files: each is the one before plus lines).
CUMULATIVE = [
    "gpt_scorer_no_instruction",
    "gpt_scorer_task_defn",
    "gpt_scorer_search_dimension_defn",
    "gpt_scorer_dataset_name",
    "gpt_scorer_dataset_examples",
    "gpt_scorer_architecture_paper",
    "gpt_scorer_gigaflops",
    "gpt_scorer_concentrate_statement",
]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def templates() -> Path:
    return require_refdata("llmpp", "instruction_templates", "wmt14ende")


@pytest.fixture
def corpus(tmp_path) -> tuple[Path, Path]:
    """A small parallel corpus for the task examples (llmas draws 5 lines)."""
    source, target = tmp_path / "src.en", tmp_path / "tgt.de"
    source.write_text("".join(f"source {i}\n" for i in range(12)))
    target.write_text("".join(f"target {i}\n" for i in range(12)))
    return source, target


def _llm_flags(server, tmp_path) -> list[str]:
    return ["--base-url", server.base_url, "--model", "fake", "--cache", tmp_path / "cache"]


def _stored_llmas(project_path) -> dict[str, dict]:
    with Project(project_path, readonly=True) as project:
        return {r["name"]: r for r in project.prompts() if r["sections"].get("format") == "llmas"}


def test_import_llmas_stores_one_prompt_per_predictor_template(capsys, tmp_path, templates):
    path = tmp_path / "p.nasproj"
    code, out, err = run(capsys, "prompt", "import-llmas", templates, "-p", path)
    assert code == 0, err
    assert "8 llmas templates of wmt14ende as prompts (8 new" in out
    assert "skipped default_flops: llmas's search-agent template" in out
    stored = _stored_llmas(path)
    assert sorted(stored) == sorted(f"llmas/{name}" for name in CUMULATIVE)
    for name in CUMULATIVE:
        sections = stored[f"llmas/{name}"]["sections"]
        assert sections["template"] == (templates / name).read_text(encoding="utf-8")
        assert sections["task"] == "wmt14ende"
        assert len(stored[f"llmas/{name}"]["version"]) == 12
    # The same text under two names (llmas's task_defn and search_dimension_defn) is two prompts.
    versions = {r["version"] for r in stored.values()}
    assert len(versions) == 8
    # Importing again keeps every version as it is.
    code, out, _ = run(capsys, "prompt", "import-llmas", templates, "-p", path, "--json")
    again = json.loads(out)
    assert code == 0 and not any(entry["new"] for entry in again["imported"])
    assert {e["version"] for e in again["imported"]} == versions
    assert again["skipped"][0]["file"] == "default_flops"
    assert _stored_llmas(path).keys() == stored.keys()
    # ``prompt show`` prints the template of a stored llmas prompt.
    version = stored["llmas/gpt_scorer_task_defn"]["version"]
    with Project(path) as project:  # prompt show needs the task in the project
        add_wmt_architectures(project, measured=2, unmeasured=1)
    code, out, _ = run(capsys, "prompt", "show", "-p", path, "--prompt-version", version)
    assert code == 0 and f"llmas prompt {version} (llmas/gpt_scorer_task_defn)" in out
    assert (templates / "gpt_scorer_task_defn").read_text(encoding="utf-8") in out


def test_import_llmas_refuses_a_folder_without_predictor_templates(capsys, tmp_path):
    folder = tmp_path / "wmt14ende"
    folder.mkdir()
    (folder / "notes.txt").write_text("no placeholders here\n")
    code, _, err = run(capsys, "prompt", "import-llmas", folder, "-p", tmp_path / "p.nasproj")
    assert code == 1 and "no llmas predictor template" in err


def _golden(task: str, template: str) -> dict:
    golden = require_refdata("llmpp", "golden_llmas")
    entries = json.loads((golden / "index.json").read_text(encoding="utf-8"))
    (entry,) = [e for e in entries if e["task"] == task and e["template"] == template]
    return {**entry, "text": (golden / entry["file"]).read_text(encoding="utf-8")}


def _seedarchs_project(capsys, tmp_path, templates) -> tuple[Path, Path]:
    """A project with llmas's wmt14ende seed-123 files and its templates imported."""
    split = require_refdata("llmpp", "seedarchs", "123", "wmt14ende")
    path = tmp_path / "p.nasproj"
    code, _, err = run(capsys, "import", split / "train.jsonl", split / "test.jsonl", "-p", path)
    assert code == 0, err
    assert run(capsys, "prompt", "import-llmas", templates, "-p", path)[0] == 0
    return path, split


def _line_ids(path: Path) -> list[str]:
    from nasstudio.store.importers import read_llmas

    return [r.arch.id for r in read_llmas(path, "wmt14ende").records]


@pytest.mark.parametrize("template", ["gpt_scorer_concentrate_statement", "gpt_scorer_task_defn"])
def test_predict_with_an_llmas_prompt_sends_llmas_s_request(
    capsys, tmp_path, server, templates, template
):
    path, split = _seedarchs_project(capsys, tmp_path, templates)
    golden = _golden("wmt14ende", template)
    multi30k = require_refdata("multi30k")
    version = _stored_llmas(path)[f"llmas/{template}"]["version"]
    query = _line_ids(split / "test.jsonl")[golden["test_index"]]
    code, out, err = run(
        capsys,
        "predict",
        "llm",
        "-p",
        path,
        "--ids",
        query,
        "--prompt-version",
        version,
        "--demos",
        split / "train.jsonl",
        "--examples",
        multi30k / "train.en.gz",
        multi30k / "train.de.gz",
        "--seed",
        golden["seed"],
        *_llm_flags(server, tmp_path),
    )
    assert code == 0, err
    assert f"(prompt {version})" in out
    # The job log says how the prompt was filled: the corpus lines llmas's draw gives.
    lines = ", ".join(str(i) for i in golden["example_line_indices"])
    assert "task examples drawn with seed 123 from" in err and f"(lines {lines}, 0-based)" in err
    (body,) = server.bodies
    assert body["messages"] == [{"role": "user", "content": golden["text"]}]


def test_an_llmas_prompt_without_its_example_corpus_is_refused(capsys, tmp_path, templates):
    path, _ = _seedarchs_project(capsys, tmp_path, templates)
    version = _stored_llmas(path)["llmas/gpt_scorer_task_defn"]["version"]
    code, _, err = run(
        capsys,
        "predict",
        "llm",
        "-p",
        path,
        "--all",
        "--prompt-version",
        version,
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--model",
        "fake",
    )
    assert code == 1
    assert "--examples SOURCE TARGET" in err and "llmas/gpt_scorer_task_defn" in err


def test_evaluate_ablations_lists_llmas_cumulative_templates_and_leave_one_out(
    capsys, tmp_path, server, templates, corpus
):
    path = tmp_path / "p.nasproj"
    seedarchs = tmp_path / "seedarchs"
    # Small splits: two seeds of 3 demonstrations and 3 test architectures.
    write_seedarchs(
        seedarchs,
        "wmt14ende",
        SMALL_ARCHS,
        SMALL_BLEU,
        {1: ([0, 1, 2], [3, 4, 5]), 2: ([3, 4, 5], [0, 1, 2])},
    )
    assert run(capsys, "prompt", "import-llmas", templates, "-p", path)[0] == 0
    common = ["evaluate", "-p", path, "--seedarchs", seedarchs, "--ablations"]
    code, _, err = run(capsys, *common, *_llm_flags(server, tmp_path))
    assert code == 1 and "--examples SOURCE TARGET" in err
    code, out, err = run(
        capsys, *common, "--examples", *corpus, "--json", *_llm_flags(server, tmp_path)
    )
    assert code == 0, err
    results = json.loads(out)
    prompts = [r for r in results if "prompt_version" in r]
    cumulative = [r for r in prompts if r["ablation"] == "llmas cumulative"]
    assert [r["prompt_name"] for r in cumulative] == [f"llmas/{n}" for n in CUMULATIVE]
    leave_one_out = [r["prompt_name"] for r in prompts if r["ablation"] == "leave-one-out"]
    assert "wmt14ende default (no instructions)" in leave_one_out
    assert "wmt14ende default (no definitions)" in leave_one_out
    assert prompts[0]["ablation"] == "" and prompts[0]["prompt_name"] == "wmt14ende default"
    # The table printed marks each row with its kind.
    code, out, _ = run(capsys, *common, "--examples", *corpus, *_llm_flags(server, tmp_path))
    lines = out.splitlines()
    for name in CUMULATIVE:
        (line,) = [row for row in lines if f"[llmas/{name}]" in row]
        assert line.endswith("llmas cumulative")
    assert next(row for row in lines if "(no definitions)]" in row).endswith("leave-one-out")
    # Every request of an llmas template is one user message with the seed's task examples.
    llmas_bodies = [b for b in server.bodies if b["messages"][0]["role"] == "user"]
    # 6 test architectures for each of 8 templates, less 6: task_defn and search_dimension_defn
    # are the same text, so the cache answers the second; the second run's answers all are.
    assert len(llmas_bodies) == 7 * 6
    assert all(len(b["messages"]) == 1 for b in llmas_bodies)


def test_a_restricted_pool_is_all_the_server_sees(capsys, tmp_path, server):
    path = tmp_path / "p.nasproj"
    with Project(path) as project:
        measured, unmeasured = add_wmt_architectures(project, measured=6, unmeasured=2)
        archs = {a.id: a for a in project.architectures("wmt14ende")}
    from nasstudio.space import to_arch_info

    chosen = [measured[4], measured[1]]
    code, _, err = run(
        capsys,
        "predict",
        "llm",
        "-p",
        path,
        "--ids",
        unmeasured[0],
        "--demo-ids",
        ",".join(chosen),
        *_llm_flags(server, tmp_path),
    )
    assert code == 0, err
    (body,) = server.bodies
    user = body["messages"][-1]["content"]
    shown = [a for a in measured if "\n".join(to_arch_info(archs[a])) in user]
    assert sorted(shown) == sorted(chosen)
    # Unknown ids, ids without BLEU and an empty pool are refused before any request.
    server.reset_counts()
    for ids, expected in (
        ("nope", "not architectures of task 'wmt14ende': nope"),
        (unmeasured[1], "have no measured bleu_valid in task 'wmt14ende'"),
        (",", "the demonstration pool is empty"),
    ):
        code, _, err = run(
            capsys,
            "predict",
            "llm",
            "-p",
            path,
            "--ids",
            unmeasured[0],
            "--demo-ids",
            ids,
            *_llm_flags(server, tmp_path),
        )
        assert code == 1 and expected in err, err
    assert server.requests == 0


def test_demos_train_jsonl_restricts_the_pool_to_that_seed_in_file_order(
    capsys, tmp_path, server, templates, corpus
):
    """llmas labels its distillation pool with seed 123's 10 demonstrations: the project
    holds seed 123's and 456's files, and --demos 123/train.jsonl shows 123's only."""
    seedarchs = require_refdata("llmpp", "seedarchs")
    path = tmp_path / "p.nasproj"
    files = [seedarchs / s / "wmt14ende" / f for s in ("123", "456") for f in ("train.jsonl",)]
    assert run(capsys, "import", *files, "-p", path)[0] == 0
    assert run(capsys, "prompt", "import-llmas", templates, "-p", path)[0] == 0
    version = _stored_llmas(path)["llmas/gpt_scorer_no_instruction"]["version"]
    train = seedarchs / "123" / "wmt14ende" / "train.jsonl"
    others = _line_ids(seedarchs / "456" / "wmt14ende" / "train.jsonl")
    query = next(i for i in others if i not in _line_ids(train))
    code, _, err = run(
        capsys,
        "predict",
        "llm",
        "-p",
        path,
        "--ids",
        query,
        "--prompt-version",
        version,
        "--demos",
        train,
        "--examples",
        *corpus,
        *_llm_flags(server, tmp_path),
    )
    assert code == 0, err
    (body,) = server.bodies
    content = body["messages"][0]["content"]
    demos = [json.loads(line)["scratch"] for line in train.read_text().splitlines()]
    blocks = [
        "\n".join(d["arch_info"])
        + f"\nGFLOPS: {d['total_flops'] / 1e9:.1f}\nBLEU: {d['valid_BLEU']:.2f}"
        for d in demos[:10]
    ]
    # no_instruction is the demonstrations alone: seed 123's 10 in file order, then the query.
    assert content.startswith("\n\n".join(blocks) + "\n\n")


def test_evaluate_with_an_llmas_prompt_draws_each_seed_s_examples(
    capsys, tmp_path, server, templates
):
    """Evaluated on llmas's seed-123 split, the first test architecture's request is the
    golden prompt of seed 123 (its task examples drawn with that seed)."""
    golden = _golden("wmt14ende", "gpt_scorer_dataset_examples")
    seedarchs = tmp_path / "seedarchs"
    seedarchs.mkdir()
    (seedarchs / "123").symlink_to(require_refdata("llmpp", "seedarchs", "123"))
    multi30k = require_refdata("multi30k")
    path = tmp_path / "p.nasproj"
    assert run(capsys, "prompt", "import-llmas", templates, "-p", path)[0] == 0
    version = _stored_llmas(path)["llmas/gpt_scorer_dataset_examples"]["version"]
    code, _, err = run(
        capsys,
        "evaluate",
        "-p",
        path,
        "--seedarchs",
        seedarchs,
        "--task",
        "wmt14ende",
        "--prompt-version",
        version,
        "--examples",
        multi30k / "train.en.gz",
        multi30k / "train.de.gz",
        *_llm_flags(server, tmp_path),
    )
    assert code == 0, err
    sent = [b["messages"] for b in server.bodies]
    assert len(sent) == 20
    assert [{"role": "user", "content": golden["text"]}] in sent


def test_import_llmas_has_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["prompt", "import-llmas", "--help"])
    assert exit_.value.code == 0
    assert "default_flops" in capsys.readouterr().out
