"""LLM-PP: an LLM, prompted with demonstrations of trained architectures, predicts BLEU.

prompt (sections, rendering, versions), client (profiles, keys, retries, cost), parser,
cache (SQLite), job (the async core, a Predictor and the prediction job).
"""

from nasstudio.predict.llm.cache import ResponseCache
from nasstudio.predict.llm.client import (
    EndpointUnreachable,
    LLMClient,
    LLMProfile,
    LLMRequestError,
    ProfileError,
    ProfileStore,
    Usage,
)
from nasstudio.predict.llm.job import (
    LLMJobSummary,
    LLMPrediction,
    LLMPredictor,
    NothingPredicted,
    TaskArchitectures,
    llm_predict_job,
    predict_stream,
)
from nasstudio.predict.llm.parser import ParsedAnswer, parse_bleu
from nasstudio.predict.llm.prompt import (
    Demonstration,
    DemoSettings,
    DemoStrategy,
    NewPrompt,
    Prompt,
    PromptError,
    PromptSections,
    ablation_variants,
    current_prompt,
    default_prompt,
    load_prompt,
    save_prompt,
)

__all__ = [
    "DemoSettings",
    "DemoStrategy",
    "Demonstration",
    "EndpointUnreachable",
    "LLMClient",
    "LLMJobSummary",
    "LLMPrediction",
    "LLMPredictor",
    "LLMProfile",
    "LLMRequestError",
    "NewPrompt",
    "NothingPredicted",
    "ParsedAnswer",
    "ProfileError",
    "ProfileStore",
    "Prompt",
    "PromptError",
    "PromptSections",
    "ResponseCache",
    "TaskArchitectures",
    "Usage",
    "ablation_variants",
    "current_prompt",
    "default_prompt",
    "llm_predict_job",
    "load_prompt",
    "parse_bleu",
    "predict_stream",
    "save_prompt",
]
