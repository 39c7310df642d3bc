"""LPZero: zero-cost proxies as symbolic expressions found by genetic programming with
rule-based pruning, the classic proxies, and readers and models of the benchmarks they are
ranked on (LTS GPT-2 on WikiText-103, FlexiBERT)."""

from nasstudio.lpzero.benchmarks import (
    BenchmarkFormatError,
    FlexiBertArch,
    GPT2Arch,
    GPT2Config,
    read_flexibert,
    read_gpt2_archs,
    read_proxy_scores,
)
from nasstudio.lpzero.expr import INPUTS, Branch, Expression, ExpressionError, parse
from nasstudio.lpzero.flexibert import (
    MaskedMinibatch,
    build_flexibert,
    flexibert_classic,
    flexibert_config,
    flexibert_inputs,
)
from nasstudio.lpzero.gpt2 import GPT2LM, build_gpt2, count_parameters
from nasstudio.lpzero.inputs import InputCache, Minibatch, network_inputs
from nasstudio.lpzero.ops import BINARY, UNARY, OperationError
from nasstudio.lpzero.proxies import CLASSIC_PROXIES, gradient_proxies
from nasstudio.lpzero.search import (
    GPSettings,
    Iteration,
    ProxyEvaluator,
    gp_search,
    gpt2_evaluator,
    rank_correlations,
    structural_rule,
    value_rule,
)
from nasstudio.lpzero.suites import ProxySuite, SuiteError, open_suite

__all__ = [
    "BINARY",
    "CLASSIC_PROXIES",
    "GPT2LM",
    "INPUTS",
    "UNARY",
    "BenchmarkFormatError",
    "Branch",
    "Expression",
    "ExpressionError",
    "FlexiBertArch",
    "GPSettings",
    "GPT2Arch",
    "GPT2Config",
    "InputCache",
    "Iteration",
    "MaskedMinibatch",
    "Minibatch",
    "OperationError",
    "ProxyEvaluator",
    "ProxySuite",
    "SuiteError",
    "build_flexibert",
    "build_gpt2",
    "count_parameters",
    "flexibert_classic",
    "flexibert_config",
    "flexibert_inputs",
    "gp_search",
    "gpt2_evaluator",
    "gradient_proxies",
    "network_inputs",
    "open_suite",
    "parse",
    "rank_correlations",
    "read_flexibert",
    "read_gpt2_archs",
    "read_proxy_scores",
    "structural_rule",
    "value_rule",
]
