"""Every prediction made with an llmas prompt records how the template was filled (the example
corpus, the seed, the corpus lines drawn, the demonstrations in order), so that one prediction
can be reproduced from the store alone (LLM requests go to tests/llm_server.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nasstudio.predict.llm.llmas import LlmasTemplate, TaskExamples
from nasstudio.predict.llm.prompt import Demonstration, load_prompt
from nasstudio.store import BLEU_VALID, GFLOPS, Project
from tests.conftest import require_refdata
from tests.llm_server import add_wmt_architectures
from tests.test_llmas_project import (
    _golden,
    _line_ids,
    _llm_flags,
    _seedarchs_project,
    _stored_llmas,
    run,
)

TEMPLATE = "gpt_scorer_dataset_examples"


@pytest.fixture
def templates() -> Path:
    return require_refdata("llmpp", "instruction_templates", "wmt14ende")


def test_a_prediction_records_how_its_llmas_prompt_was_filled(capsys, tmp_path, server, templates):
    path, split = _seedarchs_project(capsys, tmp_path, templates)
    golden = _golden("wmt14ende", TEMPLATE)
    multi30k = require_refdata("multi30k")
    version = _stored_llmas(path)[f"llmas/{TEMPLATE}"]["version"]
    query = _line_ids(split / "test.jsonl")[golden["test_index"]]
    examples = [multi30k / "train.en.gz", multi30k / "train.de.gz"]
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
        split / "train.jsonl",
        "--examples",
        *examples,
        "--seed",
        golden["seed"],
        *_llm_flags(server, tmp_path),
    )
    assert code == 0, err
    with Project(path, readonly=True) as project:
        # (the llmas files bring baseline predictors' predictions too)
        (prediction,) = [
            p for p in project.predictions(query, "wmt14ende") if p.predictor_kind == "llm"
        ]
        filling = prediction.provenance["llmas"]
        assert prediction.prompt_version == version
        assert filling == {
            "template": f"llmas/{TEMPLATE}",
            "examples": [str(p.resolve()) for p in examples],
            "seed": golden["seed"],
            "example_line_indices": golden["example_line_indices"],
            # llmas's demonstrations: the first 10 of seed 123's train.jsonl, in file order.
            "demonstration_ids": _line_ids(split / "train.jsonl")[:10],
        }
        # The store alone renders the request the server got.
        template = load_prompt(project, prediction.prompt_version)
        assert isinstance(template, LlmasTemplate)
        table = project.table("wmt14ende")

        def demo(arch_id: str, bleu: bool = True) -> Demonstration:
            row = table.loc[arch_id]
            return Demonstration(
                project.architecture(arch_id),
                float(row[GFLOPS]),
                float(row[BLEU_VALID]) if bleu else None,
            )

        again = template.filled_with(TaskExamples(*filling["examples"]), filling["seed"])
        messages = again.messages(
            demo(query, bleu=False), [demo(i) for i in filling["demonstration_ids"]]
        )
    (body,) = server.bodies
    assert messages == body["messages"] == [{"role": "user", "content": golden["text"]}]


def test_a_project_prompt_s_prediction_has_no_llmas_filling(capsys, tmp_path, server):
    path = tmp_path / "p.nasproj"
    with Project(path) as project:
        _, unmeasured = add_wmt_architectures(project, measured=3, unmeasured=1)
    code, _, err = run(
        capsys, "predict", "llm", "-p", path, "--ids", unmeasured[0], *_llm_flags(server, tmp_path)
    )
    assert code == 0, err
    with Project(path, readonly=True) as project:
        (prediction,) = project.predictions(unmeasured[0], "wmt14ende")
    assert "llmas" not in prediction.provenance
    assert json.loads(json.dumps(prediction.provenance))  # plain JSON, as stored
