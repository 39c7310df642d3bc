"""Training, decoding and latency benchmarks.

Prints figures and ratios against baselines run in the same process:
  python benchmarks/bench_train.py [--threads 1] [--steps 10] [--train-steps 250]
                                   [--latency-repeats 5] [--minutes 10]

On the CPU: training tokens/s of TransformerMT against torch.nn.Transformer at the same sizes
on the same demo batches; decoding sentences/s (greedy and beam 5) of a model trained for
--train-steps on the demo corpus, on its validation set; and the spread of HAT's latency
protocol over repeated measurements. With CUDA, also tokens/s against nn.Transformer and the
BLEU on Multi30k En-De test2016 of a HAT-base-sized model trained for --minutes (needs
../shared/data/multi30k beside the checkout).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nasstudio.data import PAD_ID, TokenBatcher, Vocabulary, corpus_vocabulary, encode_pairs
from nasstudio.data.batching import Batch
from nasstudio.data.spec import open_corpus
from nasstudio.jobs import JobHandle
from nasstudio.jobs.records import CurvePoint
from nasstudio.metrics import MeasuredLatency
from nasstudio.model import TransformerMT, token_cross_entropy
from nasstudio.model.layers import sinusoidal_positions
from nasstudio.space import Architecture
from nasstudio.store import Project, Task
from nasstudio.train.config import TrainConfig
from nasstudio.train.job import train_job, training_data
from nasstudio.train.trainer import Trainer

REFDATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def uniform(dim: int, ffn: int, heads: int, layers: int) -> Architecture:
    """Same sizes in every layer, q/k/v at the model width and cross-attention to the last
    encoder layer only: the shape torch.nn.Transformer has."""
    return Architecture(
        encoder_embed_dim=dim,
        decoder_embed_dim=dim,
        encoder_ffn_dims=[ffn] * layers,
        encoder_heads=[heads] * layers,
        decoder_ffn_dims=[ffn] * layers,
        decoder_heads=[heads] * layers,
        decoder_cross_heads=[heads] * layers,
        decoder_arbitrary_attn=[-1] * layers,
        qkv_dim=dim,
    )


# The largest of the tiny-cpu space in nn.Transformer's shape; trains at a few k tokens/s here.
SMALL = uniform(128, 512, 4, 3)
# Transformer-base (Vaswani et al.), HAT's baseline: 512 wide, FFN 2048, 8 heads, 6+6 layers.
HAT_BASE = uniform(512, 2048, 8, 6)


class TorchTransformerMT(nn.Module):
    """torch.nn.Transformer wrapped like TransformerMT: one tied embedding for source, target
    and output, scaled by sqrt(d), plus sinusoidal positions; post-norm, ReLU."""

    def __init__(self, arch: Architecture, vocab_size: int, dropout: float = 0.1) -> None:
        super().__init__()
        d = arch.encoder_embed_dim
        self.dim = d
        self.embed = nn.Embedding(vocab_size, d, padding_idx=PAD_ID)
        nn.init.normal_(self.embed.weight, std=d**-0.5)
        self.transformer = nn.Transformer(
            d,
            arch.encoder_heads[0],
            arch.encoder_layers,
            arch.decoder_layers,
            arch.encoder_ffn_dims[0],
            dropout,
            batch_first=True,
        )

    def _embed(self, tokens: Tensor) -> Tensor:
        positions = torch.arange(tokens.size(1), device=tokens.device).expand_as(tokens)
        x = self.embed(tokens) * self.dim**0.5 + sinusoidal_positions(positions, self.dim)
        return F.dropout(x, self.transformer.encoder.layers[0].dropout.p, self.training)

    def forward(self, src: Tensor, tgt_in: Tensor) -> Tensor:
        src_pad, tgt_pad = src.eq(PAD_ID), tgt_in.eq(PAD_ID)
        steps = tgt_in.size(1)
        causal = torch.ones(steps, steps, dtype=torch.bool, device=src.device).triu(1)
        out = self.transformer(
            self._embed(src),
            self._embed(tgt_in),
            tgt_mask=causal,
            src_key_padding_mask=src_pad,
            tgt_key_padding_mask=tgt_pad,
            memory_key_padding_mask=src_pad,
            tgt_is_causal=True,
        )
        return F.linear(out, self.embed.weight)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _train_steps(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Sequence[Batch],
    device: torch.device,
    amp_dtype: torch.dtype | None,
) -> float:
    """Target tokens per second over ``batches``: forward, label-smoothed loss, backward,
    clipping and an Adam step, as Trainer does."""
    model.train()
    autocast = (
        torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else contextlib.nullcontext()
    )
    _sync(device)
    start = time.perf_counter()
    for batch in batches:
        with autocast:
            logits = model(batch.src.to(device), batch.tgt_in.to(device))
        loss = token_cross_entropy(logits, batch.tgt_out.to(device), PAD_ID, 0.1, "sum")
        (loss / batch.ntokens).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    _sync(device)
    return sum(b.ntokens for b in batches) / (time.perf_counter() - start)


def bench_throughput(
    arch: Architecture,
    vocab_size: int,
    batches: Sequence[Batch],
    device: torch.device,
    amp_dtype: torch.dtype | None,
    rounds: int = 3,
) -> None:
    """TransformerMT against nn.Transformer on the same batches, in alternating rounds (a busy
    machine slows both alike); the best round of each."""
    torch.manual_seed(0)
    models = {
        "TransformerMT": TransformerMT(arch, vocab_size).to(device),
        "nn.Transformer": TorchTransformerMT(arch, vocab_size).to(device),
    }
    optimizers = {
        name: torch.optim.Adam(m.parameters(), lr=1e-4, betas=(0.9, 0.98))
        for name, m in models.items()
    }
    for name, model in models.items():  # warm-up: allocations, kernels, Adam state
        _train_steps(model, optimizers[name], batches[:2], device, amp_dtype)
    rates: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(rounds):
        for name, model in models.items():
            rates[name].append(_train_steps(model, optimizers[name], batches, device, amp_dtype))
    tokens = sum(b.ntokens for b in batches)
    precision = str(amp_dtype).removeprefix("torch.") if amp_dtype else "fp32"
    print(
        f"training on {device} ({precision}, {torch.get_num_threads()} threads), "
        f"{len(batches)} batches of {tokens / len(batches):,.0f} target tokens, "
        f"best of {rounds} rounds:"
    )
    for name, model in models.items():
        params = sum(p.numel() for p in model.parameters())
        print(f"  {name:<15} {max(rates[name]):>10,.0f} tokens/s   ({params / 1e6:.2f} M params)")
    ratio = max(rates["TransformerMT"]) / max(rates["nn.Transformer"])
    print(f"  ratio TransformerMT / nn.Transformer: {ratio:.2f}")


def demo_batches(max_tokens: int, count: int, cache: str) -> tuple[Vocabulary, list[Batch]]:
    data = open_corpus({"kind": "demo"}, cache)
    vocab = corpus_vocabulary(data, size=256, cache_dir=cache)
    batcher = TokenBatcher(encode_pairs(data.pairs("train"), vocab), max_tokens, seed=0)
    batches = list(batcher.epoch())
    return vocab, batches[:count]


def bench_decoding(train_steps: int, cache: str) -> None:
    """Greedy and beam-5 sentences/s on the demo validation set, with a model trained for
    ``train_steps`` (random weights would decode to the length limit). A step budget rather
    than a time budget keeps the translations, and so the work, the same on any machine."""
    data = open_corpus({"kind": "demo"}, cache)
    vocab = corpus_vocabulary(data, size=256, cache_dir=cache)
    config = TrainConfig(
        max_steps=train_steps,
        warmup_steps=50,
        eval_every=10**9,
        checkpoint_every=10**9,
    )
    torch.manual_seed(1)
    train_batches, sets = training_data(data, vocab, config)
    trainer = Trainer(
        TransformerMT(SMALL, vocab.size),
        config,
        train_batches,
        sets["valid"],
        vocab.decode,
        torch.device("cpu"),
    )
    for _ in trainer.run():
        pass
    valid = sets["valid"]
    print(
        f"decoding the demo validation set ({len(valid.references)} sentences) with "
        f"TransformerMT d=128 3+3 layers after {trainer.state.step} steps "
        f"({trainer.state.elapsed_s / 60:.1f} min):"
    )
    for beam in (1, 5):
        start = time.perf_counter()
        score = trainer.bleu(valid, beam=beam)
        seconds = time.perf_counter() - start
        name = "greedy" if beam == 1 else f"beam {beam}"
        print(
            f"  {name:<7} {len(valid.references) / seconds:>8.1f} sentences/s   "
            f"BLEU {score.score:.1f}"
        )


def bench_latency(arch: Architecture, label: str, repeats: int) -> None:
    """HAT's protocol (20 timed runs after 5 warm-up, beam 5), repeated: mean and coefficient
    of variation of the totals."""
    estimator = MeasuredLatency(32768, beam=5, repeats=20, warmup=5)
    start = time.perf_counter()
    totals = [estimator.estimate(arch).total_ms for _ in range(repeats)]
    seconds = time.perf_counter() - start
    mean = statistics.fmean(totals)
    cv = statistics.stdev(totals) / mean if repeats > 1 else 0.0
    print(
        f"latency of {label} on {estimator.device} ({torch.get_num_threads()} threads, "
        f"vocab 32768, beam 5), {repeats} measurements in {seconds:.0f} s:"
    )
    print(
        f"  mean {mean:.2f} ms, coefficient of variation {100 * cv:.1f} %  "
        f"(each: {', '.join(f'{t:.1f}' for t in totals)})"
    )


def bench_gpu(minutes: float) -> None:
    """HAT-base on Multi30k En-De: tokens/s against nn.Transformer, then BLEU on test2016 after
    ``minutes`` of training with train_job (bf16 autocast, beam 5)."""
    folder = REFDATA / "multi30k"
    if not folder.is_dir():
        print(f"GPU: skipped, {folder} not found")
        return
    corpus = {"kind": "multi30k", "path": str(folder), "src": "en", "tgt": "de"}
    device = torch.device("cuda")
    print(f"GPU: {torch.cuda.get_device_name(device)}")
    data = open_corpus(corpus)
    vocab = corpus_vocabulary(data, size=8000)
    batcher = TokenBatcher(encode_pairs(data.pairs("train"), vocab), 8192, max_len=128, seed=0)
    bench_throughput(HAT_BASE, vocab.size, list(batcher.epoch())[:50], device, torch.bfloat16)
    config = {
        "max_steps": None,
        "max_minutes": minutes,
        "max_tokens": 8192,
        "lr": 7e-4,
        "warmup_steps": 1000,
        "dropout": 0.3,
        "eval_every": 10**9,
        "checkpoint_every": 10**9,
        "beam": 5,
    }
    with tempfile.TemporaryDirectory() as scratch, Project(Path(scratch) / "b.nasproj") as project:
        project.ensure_task(Task("multi30k-base", 8000, "hat-wmt"))
        (arch_id,) = project.add_architectures("multi30k-base", [HAT_BASE], "benchmark")
        job = train_job(
            JobHandle(0, lambda message: None),
            project,
            "multi30k-base",
            arch_id,
            corpus,
            config,
            device="cuda",
            vocab_size=8000,
        )
        # Run in this process, without a runner: the records it yields are only read here.
        rates = []
        while True:
            try:
                item = next(job)
            except StopIteration as stop:
                scores = stop.value
                break
            if isinstance(item, CurvePoint):
                rates.append(item.values["tokens_per_s"])
    print(
        f"HAT-base on Multi30k En-De, {minutes:g} min of training: "
        f"median {statistics.median(rates):,.0f} tokens/s; BLEU valid {scores['bleu_valid']:.2f}, "
        f"test2016 {scores['bleu_test']:.2f} (beam 5)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10, help="batches per throughput round")
    parser.add_argument(
        "--train-steps", type=int, default=250, help="training before the decoding figures"
    )
    parser.add_argument("--latency-repeats", type=int, default=5, help="protocol repeats")
    # One thread by default: on a machine shared with other work, two threads wait on each
    # other and the figures drop and spread several-fold.
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1)")
    parser.add_argument("--minutes", type=float, default=10.0, help="GPU training budget")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # figures show as they come, even in a log
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as cache:
        vocab, batches = demo_batches(4096, args.steps, cache)
        bench_throughput(SMALL, vocab.size, batches, torch.device("cpu"), None)
        bench_decoding(args.train_steps, cache)
    for arch, label in (
        (SMALL, "the d=128 3+3-layer model"),
        (HAT_BASE, "HAT-base (512 wide, FFN 2048, 8 heads, 6+6 layers)"),
    ):
        bench_latency(arch, label, args.latency_repeats)
    if torch.cuda.is_available():
        bench_gpu(args.minutes)
    else:
        print("GPU: skipped, CUDA is not available")


if __name__ == "__main__":
    main()
