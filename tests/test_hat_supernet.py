"""HAT-faithful training of the SuperTransformer and of a SubTransformer: fairseq's positions
from padding_idx + 1, one sinusoid table of the super width sliced to the active width,
width-scaled dropout, the embedding's init std of the super width, and checkpoints that
record the position scheme. Expected values are computed by hand from HAT's and fairseq's
code (fairseq/modules/sinusoidal_positional_embedding.py, fairseq/utils.py make_positions,
fairseq/models/transformer_super.py calc_dropout)."""

import math

import pytest
import torch

from nasstudio.model import SuperTransformer, TransformerMT, smallest_architecture
from nasstudio.model.layers import make_positions
from nasstudio.space import Architecture, SearchSpace
from nasstudio.train.checkpoint import (
    TrainingState,
    UnreadableCheckpoint,
    restore_weights,
    save_checkpoint,
)

FAIRSEQ_PAD = 1  # fairseq's dictionary puts <pad> at 1: positions start at 2

# HAT's widths (640 and 512) with everything else as small as can be.
WIDE = SearchSpace(
    name="hat-widths",
    description="HAT's embedding widths, tiny otherwise",
    encoder_embed_dims=(512, 640),
    decoder_embed_dims=(512, 640),
    encoder_layer_nums=(1,),
    decoder_layer_nums=(1,),
    encoder_ffn_dims=(8,),
    decoder_ffn_dims=(8,),
    encoder_heads=(1,),
    decoder_heads=(1,),
    cross_heads=(1,),
    arbitrary_attn=(-1,),
    qkv_dim=8,
)


def small(e: int, d: int) -> Architecture:
    return Architecture(e, d, [8], [1], [8], [1], [1], [-1], 8)


WIDE_LARGEST = small(640, 640)


def fairseq_table(rows: int, dim: int, pad: int) -> torch.Tensor:
    """SinusoidalPositionalEmbedding.get_embedding, written out: sin half then cos half,
    frequencies exp(-i * log(10000) / (half_dim - 1)), the padding row zero."""
    half = dim // 2
    step = math.log(10000) / (half - 1)
    table = [[0.0] * dim for _ in range(rows)]
    for position in range(rows):
        if position == pad:
            continue
        for i in range(half):
            angle = position * math.exp(-i * step)
            table[position][i] = math.sin(angle)
            table[position][half + i] = math.cos(angle)
    return torch.tensor(table)


def test_position_ids_of_a_padded_batch_start_after_the_padding_index():
    p = FAIRSEQ_PAD
    tokens = torch.tensor([[5, 6, 7, 8], [p, p, 9, 4], [5, 6, p, p]])
    assert make_positions(tokens, p).tolist() == [[2, 3, 4, 5], [1, 1, 2, 3], [2, 3, 1, 1]]
    assert make_positions(torch.tensor([[0, 3, 4]]), 0).tolist() == [[0, 1, 2]]


def test_a_512_wide_sub_network_slices_the_640_wide_sinusoid_table():
    torch.manual_seed(0)
    net = SuperTransformer(WIDE, 16, pad_id=FAIRSEQ_PAD, bos_id=0, eos_id=2).eval()
    narrow = smallest_architecture(WIDE)
    assert (narrow.encoder_embed_dim, narrow.decoder_embed_dim) == (512, 512)
    tokens = torch.tensor([[5, 6, 7, 8, 9], [FAIRSEQ_PAD] * 2 + [9, 4, 3]])
    ids = torch.tensor([[2, 3, 4, 5, 6], [1, 1, 2, 3, 4]])  # by hand, as above
    table = fairseq_table(8, 640, FAIRSEQ_PAD)
    with net.using(narrow):
        for decoder in (False, True):
            positions = net.positional_embeddings(make_positions(tokens, FAIRSEQ_PAD), decoder)
            torch.testing.assert_close(positions, table[ids][..., :512], atol=1e-5, rtol=0)
    # Not the 512-wide table the project built before: its frequencies differ.
    assert not torch.allclose(positions, fairseq_table(8, 512, FAIRSEQ_PAD)[ids], atol=1e-3)
    with net.using(WIDE_LARGEST):
        torch.testing.assert_close(
            net.positional_embeddings(ids, decoder=False), table[ids], atol=1e-5, rtol=0
        )


def test_an_extracted_sub_network_keeps_the_supernet_positions_and_outputs():
    torch.manual_seed(0)
    net = SuperTransformer(WIDE, 16, pad_id=FAIRSEQ_PAD, bos_id=0, eos_id=2).eval()
    narrow = smallest_architecture(WIDE)
    sub = net.extract(narrow).eval()
    assert sub.super_embed_dims == (640, 640)
    src = torch.tensor([[FAIRSEQ_PAD, 5, 6, 7], [8, 9, 3, 4]])
    tgt_in = torch.tensor([[0, 5, 6, FAIRSEQ_PAD], [0, 9, 3, 4]])
    with torch.no_grad(), net.using(narrow):
        torch.testing.assert_close(sub(src, tgt_in), net(src, tgt_in), atol=1e-5, rtol=1e-5)


def test_dropout_is_scaled_by_active_over_super_width_as_hat_does():
    net = SuperTransformer(WIDE, 16, dropout=0.3, attention_dropout=0.1)
    arch = Architecture(512, 640, [8], [1], [8], [1], [1], [-1], 8)
    with net.using(arch):
        encoder, decoder = net.encoder[0], net.decoder[0]
        assert net.scaled_dropout(decoder=False) == pytest.approx(0.3 * 512 / 640)  # 0.24
        assert net.scaled_dropout(decoder=True) == pytest.approx(0.3)
        # HAT's encoder layer: the scaled rate after the FFN, args.dropout after self-attention.
        assert encoder.scaled_dropout == pytest.approx(0.24) and encoder.dropout == 0.3
        assert decoder.dropout == pytest.approx(0.3)
        # Attention dropout is not scaled (MultiheadAttentionSuper gets args.attention_dropout).
        assert encoder.self_attn.dropout == decoder.cross_attn.dropout == 0.1
    with net.using(smallest_architecture(WIDE)):
        assert net.decoder[0].dropout == pytest.approx(0.24)
    # A SubTransformer trained on its own, inside HAT's 640-wide SuperTransformer.
    sub = TransformerMT(small(512, 512), 16, dropout=0.3, super_embed_dims=(640, 640))
    assert sub.scaled_dropout(decoder=True) == pytest.approx(0.24)
    assert sub.decoder[0].dropout == pytest.approx(0.24)
    assert TransformerMT(small(512, 512), 16, dropout=0.3).decoder[0].dropout == 0.3


def test_the_embedding_is_initialised_with_the_std_of_the_super_width():
    torch.manual_seed(0)
    vocab = 4000  # 2.5M values: the sample std is within 0.1 % of the true one
    for model in (
        SuperTransformer(WIDE, vocab),
        TransformerMT(small(512, 512), vocab, super_embed_dims=(640, 640)),
    ):
        weights = model.embed.weight.detach()
        assert weights[model.pad_id].abs().sum() == 0
        real = torch.cat([weights[: model.pad_id], weights[model.pad_id + 1 :]])
        assert real.std().item() == pytest.approx(640**-0.5, rel=0.01)  # 0.0395, not 0.0442
    assert TransformerMT(small(512, 512), vocab).embed.weight.std().item() == pytest.approx(
        512**-0.5, rel=0.01
    )


def test_weights_bring_their_super_widths_and_weights_of_old_positions_are_refused(tmp_path):
    torch.manual_seed(0)
    trained = TransformerMT(small(8, 8), 16, super_embed_dims=(16, 12)).eval()
    loaded = TransformerMT(small(8, 8), 16).eval()
    loaded.load_state_dict(trained.state_dict())
    assert loaded.super_embed_dims == (16, 12)
    src, tgt_in = torch.tensor([[3, 4, 5, 0]]), torch.tensor([[1, 6, 7]])
    with torch.no_grad():
        torch.testing.assert_close(loaded(src, tgt_in), trained(src, tgt_in))

    old = {k: v for k, v in trained.state_dict().items() if k != "position_table_widths"}
    with pytest.raises(ValueError, match="predate HAT's positional embeddings"):
        TransformerMT(small(8, 8), 16).load_state_dict(old)
    path = tmp_path / "old.pt"
    optimizer = torch.optim.Adam(trained.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    save_checkpoint(path, trained, optimizer, scheduler, TrainingState(), {})
    payload = torch.load(path, weights_only=True)
    del payload["model"]["position_table_widths"]
    with pytest.raises(UnreadableCheckpoint, match=r"old\.pt: these weights predate HAT's"):
        restore_weights(path, payload, TransformerMT(small(8, 8), 16))
