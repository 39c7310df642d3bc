"""Benchmarks as proxy suites: the architectures a proxy is ranked on, their ground truth, and
per architecture the inputs of a freshly initialised network and the classic proxies' values.

A suite is named by the user:

- ``gpt2-wt103`` and ``flexibert``: the LPZero benchmark files under a data folder the user
  gives (``data_dir``, else ``$NASSTUDIO_LPZERO_DATA``), laid out as LPZero's data:
  ``gpt2_wt103/archs.jsonl`` and ``flexibert/BERT_benchmark.json``;
- ``task:<task>``: the project's own trained MT architectures of a task (:mod:`.mt`);
- any other text is a path: an archs file of LTS GPT-2 configs (one JSON object a line), or a
  ``.json`` file in FlexiBERT's format (``BERT_benchmark.json``).

``sample`` draws that many architectures (seeded), kept in benchmark order.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from nasstudio.lpzero.benchmarks import (
    FlexiBertArch,
    GPT2Arch,
    GPT2Config,
    read_flexibert,
    read_gpt2_archs,
)
from nasstudio.lpzero.expr import Expression
from nasstudio.lpzero.flexibert import flexibert_classic, flexibert_inputs
from nasstudio.lpzero.gpt2 import build_gpt2
from nasstudio.lpzero.inputs import InputCache, LayerInputs, Minibatch, gpt2_inputs
from nasstudio.lpzero.proxies import CLASSIC_PROXIES, gradient_proxies
from nasstudio.lpzero.search import ProxyEvaluator, Score, rank_correlations

if TYPE_CHECKING:
    from nasstudio.store import Project

DATA_ENV = "NASSTUDIO_LPZERO_DATA"
# Named benchmarks: their file under the LPZero data folder.
BENCHMARK_FILES = {
    "gpt2-wt103": Path("gpt2_wt103", "archs.jsonl"),
    "flexibert": Path("flexibert", "BERT_benchmark.json"),
}
TASK_PREFIX = "task:"


class SuiteError(ValueError):
    """A benchmark that cannot be opened: unknown name, missing data folder or file, bad sample."""


@dataclass(frozen=True)
class ProxySuite:
    """A benchmark's architectures (ids, ground truth: higher is better) and, per index, the
    proxy inputs of a freshly initialised network and the classic proxies' values."""

    name: str
    arch_ids: tuple[str, ...]
    truth: tuple[float, ...]
    truth_label: str
    inputs: Callable[[int], list[LayerInputs]]
    classic: Callable[[int], dict[str, float]]

    def __len__(self) -> int:
        return len(self.arch_ids)

    def evaluator(self, cache: InputCache | None = None, max_failures: int = 2) -> ProxyEvaluator:
        """An evaluator of expressions on this suite, each network's inputs read through
        ``cache`` (a fresh one by default)."""
        cache = cache or InputCache()
        networks = [_cached(cache, self, index) for index in range(len(self))]
        return ProxyEvaluator(networks, self.truth, max_failures)

    def score(self, expression: Expression) -> Score:
        """One expression on every architecture (each network built once, not kept): its
        values (NaN where it failed), signed rho and tau, or the rule that rejects it."""
        return self.evaluator(InputCache(enabled=False), max_failures=len(self)).score(expression)


def _cached(cache: InputCache, suite: ProxySuite, index: int) -> Callable[[], list[LayerInputs]]:
    return lambda: cache.get((suite.name, index), lambda: suite.inputs(index))


def classic_correlations(
    suite: ProxySuite, on_arch: Callable[[int], None] | None = None
) -> dict[str, tuple[float, float]]:
    """Each classic proxy's (Spearman rho, Kendall tau) against the suite's ground truth;
    ``on_arch(index)`` is called before each architecture (for progress and cancel)."""
    values: dict[str, list[float]] = {}
    for index in range(len(suite)):
        if on_arch:
            on_arch(index)
        for name, value in suite.classic(index).items():
            values.setdefault(name, []).append(value)
    return {name: rank_correlations(v, suite.truth) for name, v in values.items()}


def benchmark_path(name: str, data_dir: str | Path | None = None) -> Path:
    """The file of named benchmark ``name`` under ``data_dir`` (else ``$NASSTUDIO_LPZERO_DATA``)."""
    if name not in BENCHMARK_FILES:
        raise SuiteError(
            f"unknown benchmark '{name}': expected one of {', '.join(BENCHMARK_FILES)}"
        )
    folder = data_dir or os.environ.get(DATA_ENV)
    if not folder:
        raise SuiteError(
            f"benchmark '{name}' is read from the LPZero data folder (holding "
            f"{BENCHMARK_FILES[name]}): give it with --data DIR or ${DATA_ENV}"
        )
    path = Path(folder).expanduser() / BENCHMARK_FILES[name]
    if not path.is_file():
        raise SuiteError(f"benchmark '{name}': no file {path}")
    return path


def open_suite(
    name_or_path: str,
    *,
    project: Project | None = None,
    sample: int | None = None,
    seed: int = 0,
    data_dir: str | Path | None = None,
) -> ProxySuite:
    """The suite a benchmark name (``gpt2-wt103``, ``flexibert``, ``task:<task>``) or archs
    file names, with ``sample`` architectures drawn with ``seed`` (all when None)."""
    if name_or_path.startswith(TASK_PREFIX):
        from nasstudio.lpzero.mt import mt_suite  # the MT model stack: only for MT suites

        if project is None:
            raise SuiteError(f"benchmark '{name_or_path}' needs a project")
        return mt_suite(project, name_or_path.removeprefix(TASK_PREFIX), sample, seed)
    if name_or_path in BENCHMARK_FILES:
        path = benchmark_path(name_or_path, data_dir)
    elif Path(name_or_path).expanduser().is_file():
        path = Path(name_or_path).expanduser()
    else:
        raise SuiteError(
            f"unknown benchmark '{name_or_path}': expected {', '.join(BENCHMARK_FILES)}, "
            f"{TASK_PREFIX}<task> or an archs file"
        )
    if path.suffix == ".json":
        bert = read_flexibert(path)
        return flexibert_suite(
            name_or_path, [bert[i] for i in sample_indices(len(bert), sample, seed)]
        )
    archs = read_gpt2_archs(path)
    return gpt2_suite(name_or_path, [archs[i] for i in sample_indices(len(archs), sample, seed)])


def sample_indices(size: int, sample: int | None, seed: int) -> list[int]:
    """``sample`` of ``range(size)`` drawn with ``seed``, in order (all when None)."""
    if sample is None:
        return list(range(size))
    if not 2 <= sample <= size:
        raise SuiteError(f"sample of {sample}: expected 2 to {size} (the benchmark's size)")
    return sorted(random.Random(seed).sample(range(size), sample))


def gpt2_suite(name: str, archs: Sequence[GPT2Arch]) -> ProxySuite:
    """LTS GPT-2 architectures against their negated validation perplexity."""
    configs = [arch.config for arch in archs]
    return ProxySuite(
        name,
        tuple(arch.arch_id for arch in archs),
        tuple(arch.ground_truth for arch in archs),
        "-valid ppl",
        lambda index: gpt2_inputs(configs[index]),
        lambda index: gpt2_classic(configs[index]),
    )


def flexibert_suite(name: str, archs: Sequence[FlexiBertArch]) -> ProxySuite:
    """FlexiBERT encoders against their GLUE score."""
    return ProxySuite(
        name,
        tuple(str(arch.arch_id) for arch in archs),
        tuple(arch.ground_truth for arch in archs),
        "GLUE",
        lambda index: flexibert_inputs(archs[index]),
        lambda index: flexibert_classic(archs[index]),
    )


def gpt2_classic(config: GPT2Config) -> dict[str, float]:
    """Every classic proxy of a freshly initialised GPT-2 on the fixed minibatch; the three
    reading the loss gradient share one backward pass."""
    model = build_gpt2(config, seed=0)
    tokens = Minibatch().gpt2_tokens(config)
    with torch.enable_grad():
        values = gradient_proxies(model, tokens)
        for name, proxy in CLASSIC_PROXIES.items():
            if name not in values:
                values[name] = proxy(model, tokens)
    return {name: values[name] for name in CLASSIC_PROXIES}
