"""llmas's prompt, exactly: ``nasstudio prompt render-llmas`` against the prompts rendered by
llmas's procedure in ../shared/data/llmpp/golden_llmas, and llmas's answer rule."""

from __future__ import annotations

import json

import pytest

from nasstudio.cli import main
from nasstudio.predict.llm.parser import parse_llmas_answer
from tests.conftest import require_refdata


def _golden_entries() -> list[dict]:
    golden = require_refdata("llmpp", "golden_llmas")
    return json.loads((golden / "index.json").read_text(encoding="utf-8"))


def _render_args(entry: dict, index: int | None = None) -> list[str]:
    """The command for a golden entry: that seed's files, Multi30k train as the task corpus
    (en-fr for wmt14enfr, else en-de), as the golden files were rendered."""
    llmpp = require_refdata("llmpp")
    multi30k = require_refdata("multi30k")
    task, seed = entry["task"], entry["seed"]
    seedarchs = llmpp / "seedarchs" / str(seed) / task
    target = "fr" if task == "wmt14enfr" else "de"
    return [
        "prompt",
        "render-llmas",
        str(llmpp / "instruction_templates" / task / entry["template"]),
        "--demos",
        str(seedarchs / "train.jsonl"),
        "--query",
        str(seedarchs / "test.jsonl"),
        "--index",
        str(entry["test_index"] if index is None else index),
        "--examples",
        str(multi30k / "train.en.gz"),
        str(multi30k / f"train.{target}.gz"),
        "--seed",
        str(seed),
    ]


def test_render_llmas_prints_every_golden_prompt_byte_for_byte(capsys):
    golden = require_refdata("llmpp", "golden_llmas")
    entries = _golden_entries()
    assert len(entries) == 24
    for entry in entries:
        assert main(_render_args(entry)) == 0
        printed = capsys.readouterr().out
        # The message ends in "BLEU: " with no newline after it, as llmas sends it.
        assert printed.encode("utf-8") == (golden / entry["file"]).read_bytes(), entry["file"]


def test_render_llmas_json_gives_one_user_message_and_the_drawn_example_lines(capsys):
    golden = require_refdata("llmpp", "golden_llmas")
    for entry in _golden_entries():
        assert main([*_render_args(entry), "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
        assert data["example_line_indices"] == entry["example_line_indices"], entry["file"]
        expected = (golden / entry["file"]).read_text(encoding="utf-8")
        assert data["messages"] == [{"role": "user", "content": expected}], entry["file"]


def test_render_llmas_shows_the_test_architecture_of_the_index_asked(capsys):
    entry = _golden_entries()[0]
    assert main(_render_args(entry, index=19)) == 0
    printed = capsys.readouterr().out
    test_file = require_refdata("llmpp", "seedarchs", str(entry["seed"]), entry["task"])
    last = json.loads((test_file / "test.jsonl").read_text(encoding="utf-8").splitlines()[19])
    gflops = last["scratch"]["total_flops"] / 1e9
    query = "\n".join(last["scratch"]["arch_info"]) + f"\nGFLOPS: {gflops:.1f}\nBLEU: "
    assert printed.endswith("\n\n" + query)


def test_render_llmas_has_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["prompt", "render-llmas", "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: nasstudio prompt render-llmas") and "--examples SOURCE" in out


def _error_of(args: list[str], capsys) -> str:
    assert main(args) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("nasstudio: error: ") and captured.err.count("\n") == 1
    return captured.err


def test_render_llmas_refuses_an_index_beyond_the_test_file(capsys):
    error = _error_of(_render_args(_golden_entries()[0], index=20), capsys)
    assert "index 20 is out of range" in error and "holds 20 architectures (0 to 19)" in error


@pytest.mark.parametrize("which", ["template", "--demos", "--query", "--examples"])
def test_render_llmas_names_a_missing_file(which, tmp_path, capsys):
    args = _render_args(_golden_entries()[0])
    missing = tmp_path / "absent.txt"
    position = 2 if which == "template" else args.index(which) + 1
    args[position] = str(missing)
    assert str(missing) in _error_of(args, capsys)


def test_render_llmas_refuses_a_template_without_the_demonstrations_placeholder(tmp_path, capsys):
    template = tmp_path / "no_demonstrations"
    template.write_text("Estimate the BLEU score.\n$$$task_examples$$$", encoding="utf-8")
    args = _render_args(_golden_entries()[0])
    args[2] = str(template)
    error = _error_of(args, capsys)
    assert f"{template}: not an llmas predictor template: expected $$$seedarch_examples$$$" in error


def test_render_llmas_refuses_the_search_agent_template(capsys):
    # default_flops also asks for a GFLOPs constraint and a count, which a prediction lacks.
    args = _render_args({**_golden_entries()[0], "template": "default_flops"})
    error = _error_of(args, capsys)
    assert "default_flops: not an llmas predictor template" in error
    assert "$$$constraint_value$$$, $$$num_arch_to_generate$$$" in error


@pytest.mark.parametrize(
    ("answer", "value"),
    [
        ("24.5", 24.5),
        ("  26.31 is my estimate", 26.31),
        ("25\nThe configuration is deep.", 25.0),
        ("2.41e1", 24.1),
        ("BLEU: 24.5", None),  # the first token is "BLEU:"
        ("The BLEU score is 24.5", None),
        ("24.5.", None),
        ("~25", None),
        ("", None),
        ("   \n", None),
        ("nan", None),
    ],
)
def test_llmas_answer_rule_reads_only_a_leading_number(answer, value):
    parsed = parse_llmas_answer(answer)
    assert parsed.raw == answer
    if value is None:
        assert parsed.value is None and parsed.problem
    else:
        assert parsed.value == pytest.approx(value) and parsed.problem is None
