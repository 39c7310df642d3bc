"""nasstudio propose: the LLM proposes architectures at a GFLOPs target (llmas's default_flops);
the valid ones are added with origin llm-proposed, the others reported with why."""

import json

import pytest

from nasstudio.cli import main
from nasstudio.space import to_arch_info
from nasstudio.store import Project
from tests.conftest import require_refdata
from tests.llm_server import add_wmt_architectures

# The shape of llmas's search-agent template, for tests that need no reference data.
SMALL_TEMPLATE = (
    "Find $$$num_arch_to_generate$$$ configurations of exactly $$$constraint_value$$$ GFLOPS.\n"
    "$$$seedarch_examples$$$\n"
)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def project_path(tmp_path):
    path = tmp_path / "p.nasproj"
    with Project(path) as project:
        add_wmt_architectures(project, measured=8, unmeasured=0)
    return str(path)


@pytest.fixture
def small_template(tmp_path):
    path = tmp_path / "default_flops"
    path.write_text(SMALL_TEMPLATE)
    return str(path)


def llm_flags(server, tmp_path):
    return ["--base-url", server.base_url, "--model", "fake", "--cache", str(tmp_path / "cache")]


def seed_architectures(count):
    """The first ``count`` test architectures of llmas's seed 123 (wmt14ende): their arch_info
    lines and measured total GFLOPs."""
    path = require_refdata("llmpp", "seedarchs", "123", "wmt14ende", "test.jsonl")
    rows = [json.loads(line)["scratch"] for line in path.read_text().splitlines()[:count]]
    return [(row["arch_info"], row["total_flops"] / 1e9) for row in rows]


def origins(project_path):
    with Project(project_path) as project:
        table = project.table("wmt14ende")
        return table["origin"].to_dict(), {a.id: a for a in project.architectures("wmt14ende")}


def test_propose_adds_the_valid_architectures_and_reports_the_rejected(
    capsys, project_path, server, tmp_path
):
    (first, first_gflops), (second, second_gflops) = seed_architectures(2)
    outside = [line.replace(": 512", ": 768", 1) for line in first]  # embed dim 768
    answer = (
        "Here are three configurations:\n\n"
        + "\n".join(first)
        + "\nGFLOPS: 2.4\nBLEU: 26.10\n\n"
        + "\n".join(second)
        + "\nGFLOPS: 2.8\nBLEU: 26.50\n\n"
        + "\n".join(outside)
        + "\nGFLOPS: 3.0\nBLEU: 27.00\n"
    )
    server.reply = lambda messages: answer
    template = require_refdata("llmpp", "instruction_templates", "wmt14ende")
    corpus = require_refdata("multi30k")
    code, out, err = run(
        capsys,
        *("propose", "-p", project_path, "-k", "3", "--gflops", "2", "--tolerance", "25"),
        *("--template", str(template), "--seed", "123"),
        *("--examples", str(corpus / "train.en.gz"), str(corpus / "train.de.gz")),
        *llm_flags(server, tmp_path),
    )
    assert code == 0, err
    # The message is llmas's search-agent template, filled.
    (body,) = server.bodies
    content = body["messages"][-1]["content"]
    assert "exactly 2 GFLOPs" in content and "should identify 3 configurations" in content
    assert content.count("\nBLEU: ") == 8 and "Example 5:\nInput: " in content
    assert "$$$" not in content
    # 2.41 GFLOPs is 20.5 % off the target 2: inside 25 %; 2.83 is 41.3 % off; 768 is no choice.
    lines = out.splitlines()
    assert lines[0].startswith("1. added: ")
    assert lines[0].endswith("(the LLM's estimate: GFLOPs 2.4, BLEU 26.1)")
    assert lines[1].startswith("2. rejected: ") and "41.3% off the target 2" in lines[1]
    assert lines[2].startswith("3. rejected: ") and "encoder_embed_dim is 768" in lines[2]
    assert "1 new architectures of wmt14ende with origin llm-proposed; 2 rejected" in out
    by_origin, archs = origins(project_path)
    (added,) = [i for i, origin in by_origin.items() if origin == "llm-proposed"]
    assert to_arch_info(archs[added]) == first
    assert abs(first_gflops - 2.41) < 0.01 and abs(second_gflops - 2.83) < 0.01


def test_propose_reads_json_and_list_layouts_and_prints_json(
    capsys, project_path, server, tmp_path, small_template
):
    (arch,), (other,) = seed_architectures(1), seed_architectures(2)[1:]
    as_json = json.dumps({k: json.loads(v) for k, v in (ln.split(": ", 1) for ln in arch[0])})
    listed = "\n".join(f"- **{ln.split(': ')[0]}**: {ln.split(': ')[1]}" for ln in other[0])
    server.reply = lambda messages: (
        f"1. Estimated BLEU: 27.5, GFLOPS: 2.4\n```json\n{as_json}\n```\n\n2.\n{listed}\n"
        "Estimated BLEU: 26.0\n"
    )
    code, out, err = run(
        capsys,
        *("propose", "-p", project_path, "-k", "2", "--gflops", "2.5"),
        *("--template", small_template, "--json"),
        *llm_flags(server, tmp_path),
    )
    assert code == 0, err
    summary = json.loads(out)
    assert [p["valid"] for p in summary["proposals"]] == [True, True]
    assert [p["estimates"] for p in summary["proposals"]] == [
        {"bleu": 27.5, "gflops": 2.4},
        {"bleu": 26.0},
    ]
    _, archs = origins(project_path)
    assert [to_arch_info(archs[i]) for i in summary["added"]] == [arch[0], other[0]]
    assert summary["origin"] == "llm-proposed"


def test_an_answer_without_architectures_is_an_error_that_quotes_it(
    capsys, project_path, server, tmp_path, small_template
):
    server.reply = lambda messages: "I am sorry, I cannot design neural networks."
    before, _ = origins(project_path)
    code, _, err = run(
        capsys,
        *("propose", "-p", project_path, "--gflops", "3", "--template", small_template),
        *llm_flags(server, tmp_path),
    )
    assert code == 1
    assert "holds no architecture" in err and "I am sorry, I cannot design neural networks." in err
    assert origins(project_path)[0] == before


def test_when_every_proposal_is_rejected_nothing_is_written(
    capsys, project_path, server, tmp_path, small_template
):
    server.reply = lambda messages: (
        "encoder-embed-dim-subtransformer: 512\nencoder-layer-num-subtransformer: 6\n"
        "decoder-embed-dim-subtransformer: 512.5\n"
    )
    before, _ = origins(project_path)
    code, _, err = run(
        capsys,
        *("propose", "-p", project_path, "--gflops", "3", "--template", small_template),
        *llm_flags(server, tmp_path),
    )
    assert code == 1
    assert "none of the 1 proposed architectures is usable" in err
    assert "missing key 'encoder-ffn-embed-dim-all-subtransformer'" in err
    assert origins(project_path)[0] == before


def test_a_predictor_template_is_refused_before_asking(capsys, project_path, server, tmp_path):
    template = tmp_path / "gpt_scorer"
    template.write_text("Predict BLEU.\n$$$seedarch_examples$$$\n")
    code, _, err = run(
        capsys,
        *("propose", "-p", project_path, "--gflops", "3", "--template", str(template)),
        *llm_flags(server, tmp_path),
    )
    assert code == 1 and "not an llmas search-agent template" in err
    assert "$$$constraint_value$$$" in err and server.requests == 0
