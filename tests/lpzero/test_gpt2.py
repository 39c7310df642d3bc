"""The LTS GPT-2 builder: parameter counts match the archs file, the adaptive softmax is a
distribution over the whole vocabulary."""

from __future__ import annotations

import pytest
import torch

from nasstudio.lpzero.benchmarks import GPT2Config, read_gpt2_archs
from nasstudio.lpzero.gpt2 import build_gpt2, count_parameters
from tests.conftest import require_refdata


def test_parameter_counts_match_the_file_for_all_200():
    archs = read_gpt2_archs(require_refdata("lpzero", "gpt2_wt103", "archs.jsonl"))
    for arch in archs:
        counted = count_parameters(arch.config)
        for kind in ("total", "nonembedding"):
            assert counted[kind] == pytest.approx(arch.params[kind], rel=0.01), (arch.arch_id, kind)


def tiny(div_val: int, d_embed: int = 8) -> GPT2Config:
    return GPT2Config(
        n_layer=2,
        d_model=8,
        n_head=(2, 4),
        d_inner=(12, 6),
        d_embed=d_embed,
        div_val=div_val,
        cutoffs=(20, 40, 500),
        n_token=50,
        n_positions=16,
        tie_projs=(False, True, True),
    )


def test_tiny_model_counts_by_hand():
    # div_val 2, d_embed 8 = d_model: clusters of 20, 20, 10 tokens with widths 8, 4, 2.
    # Blocks: attention 4*(8*8+8) = 288, FFN 2*8*w + w + 8, 2 layer norms 32 -> 608 + 566.
    # Final norm 16. Embeddings 20*8 + 20*4 + 10*2 = 260, projections 8*(8+4+2) = 112,
    # positions 16*8 = 128. Softmax: cluster weight 2*8 + 2, biases 50, own projection 8*8.
    blocks = (288 + 2 * 8 * 12 + 12 + 8 + 32) + (288 + 2 * 8 * 6 + 6 + 8 + 32) + 16
    assert count_parameters(tiny(div_val=2)) == {
        "total": blocks + 260 + 112 + 128 + 18 + 50 + 64,
        "nonembedding": blocks,
    }


@pytest.mark.parametrize(("div_val", "d_embed"), [(1, 8), (1, 4), (2, 8)])
def test_log_probs_are_a_distribution_over_the_vocabulary(div_val, d_embed):
    model = build_gpt2(tiny(div_val, d_embed), seed=3)
    tokens = torch.tensor([[0, 25, 45, 49, 3]])
    log_probs = model.softmax.log_probs(model.hidden(tokens))
    assert log_probs.shape == (1, 5, 50)
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(1, 5), atol=1e-5)
    loss = model(tokens)
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in model.non_embedding_parameters())


def test_same_seed_builds_the_same_model():
    a, b = build_gpt2(tiny(2), seed=7), build_gpt2(tiny(2), seed=7)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))
    c = build_gpt2(tiny(2), seed=8)
    assert not torch.equal(a.blocks[0].ffn.fc.weight, c.blocks[0].ffn.fc.weight)
