"""TransformerMT and SuperTransformer: sizes and FLOPs against the analytic counts, decoding,
padding, autocast, weight sharing and the supernet helpers."""

import itertools
import json
import math
import random

import pytest
import torch

from nasstudio.metrics import efficiency
from nasstudio.model import (
    SuperTransformer,
    TransformerMT,
    count_flops,
    largest_architecture,
    sandwich_archs,
    sandwich_backward,
    smallest_architecture,
    token_cross_entropy,
    validation_loss,
)
from nasstudio.space import Architecture, get_space, parse_arch_info
from tests.conftest import require_refdata

PAD, BOS, EOS = 0, 1, 2
SMALL_VOCAB = 64


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These models are small: one thread is faster and is not slowed by a busy machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def tiny(
    e: int = 64,
    d: int = 64,
    enc: int = 3,
    arbitrary: tuple[int, ...] = (-1, 1, 2),
    heads: tuple[int, ...] = (2, 4, 4),
) -> Architecture:
    """A tiny-cpu architecture; defaults mix all three arbitrary-attention values."""
    dec = len(arbitrary)
    return Architecture(
        encoder_embed_dim=e,
        decoder_embed_dim=d,
        encoder_ffn_dims=[128, 256, 512][:enc],
        encoder_heads=[2, 4, 4][:enc],
        decoder_ffn_dims=[512, 128, 256][:dec],
        decoder_heads=heads[:dec],
        decoder_cross_heads=[4, 2, 4][:dec],
        decoder_arbitrary_attn=arbitrary,
        qkv_dim=128,
    )


def hat(e: int, d: int, arbitrary: tuple[int, ...]) -> Architecture:
    dec = len(arbitrary)
    return Architecture(
        encoder_embed_dim=e,
        decoder_embed_dim=d,
        encoder_ffn_dims=[1024, 2048, 3072, 1024, 2048, 3072],
        encoder_heads=[4, 8] * 3,
        decoder_ffn_dims=[3072, 1024, 2048][:dec],
        decoder_heads=[8, 4, 8][:dec],
        decoder_cross_heads=[4, 8, 4][:dec],
        decoder_arbitrary_attn=arbitrary,
    )


def sampled(preset: str, seeds: range) -> list[Architecture]:
    space = get_space(preset)
    return [space.sample(random.Random(seed)) for seed in seeds]


# Sampled architectures of every preset, plus e != d both ways with mixed arbitrary attention.
SIZE_CASES = [
    *sampled("hat-wmt", range(3)),
    *sampled("hat-iwslt", range(3)),
    *sampled("tiny-cpu", range(4)),
    hat(640, 512, (2, -1, 1)),
    hat(512, 640, (1, 2)),
    tiny(128, 64),
    tiny(64, 128),
]


def source_batch(generator: torch.Generator, lengths: list[int], vocab: int) -> torch.Tensor:
    """Random non-special tokens, right-padded to the longest length."""
    batch = torch.full((len(lengths), max(lengths)), PAD)
    for row, n in enumerate(lengths):
        batch[row, :n] = torch.randint(3, vocab, (n,), generator=generator)
    return batch


def non_embedding_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for name, p in model.named_parameters() if name != "embed.weight")


# --- sizes and FLOPs -------------------------------------------------------------------------


@pytest.mark.parametrize("arch", SIZE_CASES, ids=lambda a: a.summary())
def test_parameters_and_flops_equal_the_analytic_counts(arch):
    model = TransformerMT(arch, SMALL_VOCAB, dropout=0.0)
    eff = efficiency(arch, SMALL_VOCAB)
    assert non_embedding_params(model) == eff.params_without_embeddings
    width = max(arch.encoder_embed_dim, arch.decoder_embed_dim)
    assert model.embed.weight.numel() == SMALL_VOCAB * width
    assert count_flops(model) == eff.flops


def test_realistic_vocabulary_counts_match_including_the_output_projection():
    arch = hat(512, 512, (-1, 1, 2))
    model = TransformerMT(arch, 32768, dropout=0.0)
    eff = efficiency(arch, 32768)
    assert sum(p.numel() for p in model.parameters()) == eff.params  # e == d: totals agree
    assert count_flops(model) == eff.flops
    assert eff.output_projection_flops / eff.flops > 0.3  # the projection is really in there


def test_built_models_match_the_llmas_records():
    path = require_refdata("llmpp", "seedarchs", "123", "wmt14ende", "train.jsonl")
    for line in path.read_text().splitlines()[:3]:
        record = json.loads(line)["scratch"]
        arch = parse_arch_info(record["arch_info"])
        model = TransformerMT(arch, 32768, dropout=0.0)
        assert non_embedding_params(model) == record["num_parameters_without_embedding_weights"]
        assert count_flops(model) == pytest.approx(record["total_flops"], rel=0.001)


def test_count_flops_restores_the_mode():
    model = TransformerMT(tiny(), SMALL_VOCAB).eval()
    count_flops(model)
    assert not model.training


# --- forward pass, caching, padding ----------------------------------------------------------


@pytest.mark.parametrize(
    "arch",
    [tiny(), tiny(128, 64), tiny(64, 128, enc=2, arbitrary=(1, -1)), sampled("hat-iwslt", [7])[0]],
    ids=lambda a: a.summary(),
)
def test_incremental_decoding_gives_the_logits_of_the_full_pass(arch):
    torch.manual_seed(0)
    model = TransformerMT(arch, SMALL_VOCAB).eval()
    g = torch.Generator().manual_seed(1)
    src = source_batch(g, [7, 4, 9], SMALL_VOCAB)
    tgt_in = torch.cat([torch.full((3, 1), BOS), source_batch(g, [5, 5, 5], SMALL_VOCAB)], 1)
    with torch.no_grad():
        full = model(src, tgt_in)
        state = model.start_decoding(model.encode(src))
        steps = torch.stack([model.decode_step(tgt_in[:, t], state) for t in range(6)], 1)
    assert full.shape == (3, 6, SMALL_VOCAB)
    assert state.step == 6
    torch.testing.assert_close(steps, full, atol=1e-5, rtol=1e-5)


def test_padding_does_not_change_the_outputs_of_real_positions():
    torch.manual_seed(0)
    model = TransformerMT(tiny(), SMALL_VOCAB).eval()
    g = torch.Generator().manual_seed(2)
    src = source_batch(g, [6], SMALL_VOCAB)
    tgt_in = torch.cat([torch.full((1, 1), BOS), source_batch(g, [4], SMALL_VOCAB)], 1)
    pads = torch.full((1, 3), PAD)
    with torch.no_grad():
        alone = model(src, tgt_in)
        right = model(torch.cat([src, pads], 1), torch.cat([tgt_in, pads], 1))
        left = model(torch.cat([pads, src], 1), tgt_in)
        # In a batch with a longer sentence, the short one is right-padded.
        other = source_batch(g, [9], SMALL_VOCAB)
        batch_src = torch.cat([torch.cat([src, pads], 1), other])
        batched = model(batch_src, tgt_in.repeat(2, 1))
        encoded = model.encode(torch.cat([pads, src], 1))
    torch.testing.assert_close(right[:, :5], alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(left, alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(batched[:1], alone, atol=1e-5, rtol=1e-5)
    assert encoded.padding_mask[0].tolist() == [True] * 3 + [False] * 6


def test_arbitrary_attention_sees_the_last_encoder_layers_concatenated():
    torch.manual_seed(0)
    model = TransformerMT(tiny(arbitrary=(2, -1, 1)), SMALL_VOCAB).eval()
    src = source_batch(torch.Generator().manual_seed(3), [5, 3], SMALL_VOCAB)
    with torch.no_grad():
        encoder_out = model.encode(src)
        state = model.start_decoding(encoder_out)
    assert len(encoder_out.states) == 3
    assert [k.shape[2] for k, _ in state.memory_kv] == [15, 5, 10]
    memory, attend = encoder_out.memory(2)
    torch.testing.assert_close(memory, torch.cat(encoder_out.states[::-1][:2], dim=1))
    assert attend[1, 0, 0].tolist() == ([True] * 3 + [False] * 2) * 2


def test_training_mode_uses_dropout_and_every_weight_gets_a_gradient():
    torch.manual_seed(0)
    model = TransformerMT(tiny(128, 64), SMALL_VOCAB, dropout=0.3, attention_dropout=0.1)
    g = torch.Generator().manual_seed(4)
    src, tgt = source_batch(g, [6, 6], SMALL_VOCAB), source_batch(g, [5, 5], SMALL_VOCAB)
    loss = token_cross_entropy(model(src, tgt), tgt, PAD)
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    with torch.no_grad():
        assert not torch.equal(model(src, tgt), model(src, tgt))
        model.eval()
        assert torch.equal(model(src, tgt), model(src, tgt))


def test_autocast_forward_and_decoding():
    torch.manual_seed(0)
    model = TransformerMT(tiny(), SMALL_VOCAB).eval()
    src = source_batch(torch.Generator().manual_seed(5), [6, 4], SMALL_VOCAB)
    tgt_in = torch.full((2, 3), BOS)
    with torch.no_grad():
        reference = model(src, tgt_in)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(src, tgt_in)
            translations = model.beam_search(src, beam=3, max_len=5)
    assert logits.dtype == torch.bfloat16
    torch.testing.assert_close(logits.float(), reference, atol=0.15, rtol=0.05)
    assert all(len(t) <= 5 for t in translations)


# --- decoding --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def copy_model() -> TransformerMT:
    """A small model trained for a few seconds to copy its (padded) source."""
    torch.manual_seed(0)
    arch = Architecture(64, 64, [128] * 2, [4] * 2, [128] * 2, [4] * 2, [4] * 2, [-1, 1], 64)
    model = TransformerMT(arch, 13, dropout=0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(400):
        src, tgt_in, tgt_out = copy_batch(g, 64, model.vocab_size)
        loss = token_cross_entropy(model(src, tgt_in), tgt_out, PAD)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def copy_batch(g: torch.Generator, n: int, vocab: int) -> tuple[torch.Tensor, ...]:
    lengths = torch.randint(3, 7, (n,), generator=g).tolist()
    src = source_batch(g, lengths, vocab)
    tgt_out = torch.cat([src, torch.full((n, 1), PAD)], 1)
    tgt_out[torch.arange(n), torch.tensor(lengths)] = EOS
    tgt_in = torch.cat([torch.full((n, 1), BOS), src], 1)
    return src, tgt_in, tgt_out


def unpadded(src: torch.Tensor) -> list[list[int]]:
    return [[t for t in row if t != PAD] for row in src.tolist()]


def test_a_trained_model_translates_with_greedy_and_beam_search(copy_model):
    src, _, _ = copy_batch(torch.Generator().manual_seed(99), 32, copy_model.vocab_size)
    expected = unpadded(src)
    for translations in (copy_model.greedy(src), copy_model.beam_search(src, beam=4)):
        # Not all: a few seconds of training leave the odd mistake (about 1 in 60).
        assert sum(t == e for t, e in zip(translations, expected, strict=True)) >= 29


def test_greedy_equals_beam_search_with_one_beam(copy_model):
    torch.manual_seed(0)
    random_model = TransformerMT(tiny(128, 64), SMALL_VOCAB)
    src = source_batch(torch.Generator().manual_seed(6), [5, 8, 3], SMALL_VOCAB)
    for model in (copy_model, random_model):
        for max_len in (2, 12):
            greedy = model.greedy(src.clamp(max=model.vocab_size - 1), max_len)
            beam = model.beam_search(src.clamp(max=model.vocab_size - 1), 1, max_len)
            assert greedy == beam
            assert all(len(t) <= max_len for t in greedy)
            assert all(tok not in (PAD, BOS, EOS) for t in greedy for tok in t)
    assert random_model.training  # decoding leaves the mode as it found it


def sequence_score(model, src, tokens, length_penalty):
    """log p(tokens + EOS | src) / (len + 1) ** length_penalty, PAD and BOS ruled out."""
    tgt_in = torch.tensor([[BOS, *tokens]])
    with torch.no_grad():
        logits = model(src, tgt_in)[0]
    logits[:, [PAD, BOS]] = -math.inf
    logp = torch.log_softmax(logits, -1)
    total = sum(logp[i, t] for i, t in enumerate([*tokens, EOS]))
    return float(total) / (len(tokens) + 1) ** length_penalty


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_a_wide_beam_finds_the_best_scoring_sequence(length_penalty):
    """Vocabulary {pad, bos, eos, 3, 4} and max_len 3: 15 possible outputs, all of which a
    beam of 16 keeps, so beam search must return the best of them."""
    torch.manual_seed(int(length_penalty))
    model = TransformerMT(tiny(), 5).eval()
    src = torch.tensor([[3, 4, 4, 3]])
    candidates = [list(c) for n in range(4) for c in itertools.product([3, 4], repeat=n)]
    best = max(candidates, key=lambda c: sequence_score(model, src, c, length_penalty))
    assert model.beam_search(src, beam=16, max_len=3, length_penalty=length_penalty) == [best]


# --- SuperTransformer ------------------------------------------------------------------------


def test_largest_and_smallest_architectures_and_the_sandwich():
    space = get_space("hat-wmt")
    largest, smallest = largest_architecture(space), smallest_architecture(space)
    assert space.contains(largest) and space.contains(smallest)
    assert largest.decoder_layers == 6 and largest.encoder_ffn_dims == (3072,) * 6
    assert largest.decoder_arbitrary_attn == (2,) * 6
    assert smallest.decoder_layers == 1 and smallest.decoder_embed_dim == 512
    assert smallest.decoder_arbitrary_attn == (-1,)
    archs = sandwich_archs(space, random.Random(5))
    assert archs[:2] == [largest, smallest]
    assert archs[2] == space.sample(random.Random(5))
    tiny_space = get_space("tiny-cpu")
    assert smallest_architecture(tiny_space).encoder_layers == 1  # arbitrary -1 fits one layer


SUPERNET_CASES = [
    *sampled("tiny-cpu", range(10, 14)),
    tiny(128, 64),
    tiny(64, 128, enc=2, arbitrary=(1, -1)),
]


@pytest.fixture(scope="module")
def supernet() -> SuperTransformer:
    torch.manual_seed(0)
    return SuperTransformer(get_space("tiny-cpu"), SMALL_VOCAB, dropout=0.0).eval()


@pytest.mark.parametrize("arch", SUPERNET_CASES, ids=lambda a: a.summary())
def test_extracted_weights_are_slices_and_outputs_match(supernet, arch):
    sub = supernet.extract(arch).eval()
    assert non_embedding_params(sub) == efficiency(arch, SMALL_VOCAB).params_without_embeddings
    own = dict(supernet.named_parameters())
    for name, param in sub.named_parameters():
        assert torch.equal(param, own[name][tuple(slice(0, n) for n in param.shape)]), name
    src = source_batch(torch.Generator().manual_seed(7), [6, 9], SMALL_VOCAB)
    tgt_in = source_batch(torch.Generator().manual_seed(8), [5, 5], SMALL_VOCAB)
    with torch.no_grad(), supernet.using(arch):
        shared = supernet(src, tgt_in)
        shared_greedy = supernet.greedy(src, 6)
    torch.testing.assert_close(sub(src, tgt_in), shared, atol=1e-5, rtol=1e-5)
    assert sub.greedy(src, 6) == shared_greedy


def test_the_supernet_covers_its_space_and_restores_the_active_architecture(supernet):
    largest = largest_architecture(supernet.space)
    assert supernet.arch == largest
    with supernet.using(smallest_architecture(supernet.space)) as net:
        assert net.arch.decoder_layers == 1
    assert supernet.arch == largest
    with pytest.raises(ValueError, match="decoder_embed_dim 256 > 128"):
        supernet.set_active(tiny(64, 256))
    extracted = supernet.extract(largest)
    assert non_embedding_params(extracted) == non_embedding_params(supernet)


def validation_batches(vocab: int) -> list[tuple[torch.Tensor, ...]]:
    g = torch.Generator().manual_seed(11)
    return [copy_batch(g, 4, vocab) for _ in range(3)]


def test_scoring_by_validation_loss_is_reproducible_with_a_seed():
    space = get_space("tiny-cpu")
    archs = space.sample_many(3, seed=21)
    batches = validation_batches(SMALL_VOCAB)
    scores = []
    for _ in range(2):
        torch.manual_seed(123)
        net = SuperTransformer(space, SMALL_VOCAB)  # train mode, dropout 0.1
        scores.append([net.score(arch, batches) for arch in archs])
        assert net.training and net.arch == largest_architecture(space)
    assert scores[0] == scores[1]
    assert len(set(scores[0])) == 3  # different sub-architectures, different losses
    assert all(0 < s < 10 for s in scores[0])
    assert scores[0][0] == pytest.approx(validation_loss(net.extract(archs[0]), batches), 1e-5)


def test_sandwich_backward_accumulates_the_gradients_of_every_architecture():
    space = get_space("tiny-cpu")
    torch.manual_seed(0)
    net = SuperTransformer(space, SMALL_VOCAB, dropout=0.0)
    archs = sandwich_archs(space, random.Random(0))
    batch = copy_batch(torch.Generator().manual_seed(12), 4, SMALL_VOCAB)
    mean_loss = sandwich_backward(net, archs, batch)
    together = {name: p.grad.clone() for name, p in net.named_parameters()}
    losses = []
    for arch in archs:
        net.zero_grad()
        with net.using(arch):
            loss = token_cross_entropy(net(batch[0], batch[1]), batch[2], PAD)
        loss.backward()
        losses.append(loss.item())
        for name, p in net.named_parameters():
            together[name] -= p.grad if p.grad is not None else 0
    assert mean_loss == pytest.approx(sum(losses) / 3, rel=1e-6)
    assert all(g.abs().max() < 1e-5 for g in together.values())
    assert net.arch == largest_architecture(space)


def test_sandwich_backward_under_autocast_with_a_loss_scale():
    space = get_space("tiny-cpu")
    torch.manual_seed(0)
    net = SuperTransformer(space, SMALL_VOCAB)
    batch = copy_batch(torch.Generator().manual_seed(13), 4, SMALL_VOCAB)
    scaled = []

    def scale(loss: torch.Tensor) -> torch.Tensor:
        scaled.append(loss.dtype)
        return loss * 8

    loss = sandwich_backward(
        net,
        sandwich_archs(space, random.Random(1)),
        batch,
        label_smoothing=0.1,
        autocast_dtype=torch.bfloat16,
        scale=scale,
    )
    assert scaled == [torch.float32] * 3 and math.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in net.parameters())
