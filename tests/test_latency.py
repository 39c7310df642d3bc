"""Latency measurement with HAT's protocol on the local device."""

import math
import time

import pytest
import torch

from nasstudio.metrics import (
    LatencyEstimator,
    MeasuredLatency,
    device_name,
    measure_latency,
    trimmed_stats,
)
from nasstudio.model import TransformerMT, largest_architecture, smallest_architecture
from nasstudio.space import get_space

TINY = smallest_architecture(get_space("tiny-cpu"))
# One thread and few repeats: fast, and the other processes of a busy machine matter less.
QUICK = {"beam": 1, "repeats": 3, "warmup": 1, "threads": 1}


def test_trimmed_stats_keep_hats_10_to_90_percent_range():
    samples = [100.0, 1.0, *range(2, 19), 0.5]  # 20 runs, an outlier on either side
    mean, std = trimmed_stats(samples)
    kept = sorted(samples)[2:18]  # HAT: [int(0.1 n) : -max(1, int(0.1 n))]
    assert kept == [float(v) for v in range(2, 18)]
    assert mean == pytest.approx(9.5)
    assert std == pytest.approx(math.sqrt(sum((v - 9.5) ** 2 for v in kept) / 16))
    assert trimmed_stats([3.0, 1.0, 2.0]) == (1.5, 0.5)  # small n: only the slowest dropped
    assert trimmed_stats([4.0]) == (4.0, 0.0)
    with pytest.raises(ValueError):
        trimmed_stats([])


def test_a_tiny_architecture_measures_quickly_with_positive_finite_times():
    estimator: LatencyEstimator = MeasuredLatency(1000, **QUICK)
    start = time.perf_counter()
    estimate = estimator.estimate(TINY)
    assert time.perf_counter() - start < 5  # well under 1 s on an idle machine
    for value in (estimate.encoder_ms, estimate.decoder_ms):
        assert 0 < value < math.inf
    assert estimate.encoder_std_ms is not None and estimate.encoder_std_ms >= 0
    assert estimate.decoder_std_ms is not None and estimate.decoder_std_ms >= 0
    assert estimate.total_ms == estimate.encoder_ms + estimate.decoder_ms
    assert estimate.device == estimator.device == device_name("cpu")


def test_a_much_bigger_model_is_slower():
    """hat-wmt's largest (6+6 layers, 640 wide, FFN 3072) against tiny-cpu's smallest; the
    gap is about 20x for the decoder and 80x for the encoder, so a factor 4 is safe."""
    estimator = MeasuredLatency(1000, **QUICK)
    small = estimator.estimate(TINY)
    big = estimator.estimate(largest_architecture(get_space("hat-wmt")))
    assert big.encoder_ms > 4 * small.encoder_ms
    assert big.decoder_ms > 4 * small.decoder_ms


def test_the_decoder_runs_30_cached_steps_per_run_on_beam_rows(monkeypatch):
    model = TransformerMT(TINY, 100).train()
    steps, encodes = [], []
    decode_step, encode = model.decode_step, model.encode

    def counting_step(prev_tokens, state):
        steps.append((len(prev_tokens), state.step))
        return decode_step(prev_tokens, state)

    def counting_encode(src):
        encodes.append(tuple(src.shape))
        return encode(src)

    monkeypatch.setattr(model, "decode_step", counting_step)
    monkeypatch.setattr(model, "encode", counting_encode)
    measure_latency(model, beam=5, repeats=4, warmup=2, threads=1)
    runs = 2 + 4
    assert len(steps) == 30 * runs
    assert steps[:30] == [(5, step) for step in range(30)]  # one cache per run, 5 hypotheses
    assert encodes == [(1, 30)] * (runs + 1)  # + the encoder output the decoder runs use
    assert model.training  # the mode is restored


def test_threads_are_restored():
    before = torch.get_num_threads()
    measure_latency(TransformerMT(TINY, 100), beam=1, repeats=1, warmup=0, threads=1)
    assert torch.get_num_threads() == before


def test_device_names():
    assert device_name("cpu").startswith("cpu:")
    assert len(device_name(torch.device("cpu"))) > len("cpu:")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_measures_on_cuda():
    estimate = MeasuredLatency(1000, device="cuda", repeats=3, warmup=1).estimate(TINY)
    assert estimate.device == device_name("cuda") and estimate.device.startswith("cuda:")
    assert 0 < estimate.encoder_ms < math.inf and 0 < estimate.decoder_ms < math.inf
