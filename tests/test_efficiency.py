import json
import random

import pytest

from nasstudio.metrics import efficiency
from nasstudio.space import get_space, parse_arch_info
from tests.conftest import require_refdata

VOCAB = {"wmt14ende": 32768, "wmt14enfr": 44512, "wmt19ende": 49600}


def reference_records():
    root = require_refdata("llmpp", "seedarchs", "123")
    for path in sorted(root.glob("*/*.jsonl")):
        for line in path.read_text().splitlines():
            yield path.parent.name, json.loads(line)["scratch"]


def test_analytic_flops_and_params_match_all_90_llmas_architectures():
    records = list(reference_records())
    assert len(records) == 90
    for task, record in records:
        eff = efficiency(parse_arch_info(record["arch_info"]), VOCAB[task])
        expected_params = record["num_parameters_without_embedding_weights"]
        assert eff.params_without_embeddings == pytest.approx(expected_params, rel=0.01)
        assert eff.embedding_params == record["num_embedding_parameters"]
        assert eff.flops == pytest.approx(record["total_flops"], rel=0.01)
        assert eff.output_projection_flops == record["last_layer_flops"]


def test_flops_grow_with_every_dimension():
    space = get_space("hat-wmt")
    arch = space.sample(random.Random(0))
    base = efficiency(arch, 32768)
    assert efficiency(arch, 40000).flops > base.flops
    bigger = space.mutate(arch, random.Random(1), 0.0)
    assert efficiency(bigger, 32768) == base
    assert base.params == base.params_without_embeddings + base.embedding_params
    assert base.gflops == base.flops / 1e9
