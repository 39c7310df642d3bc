"""Training settings: one JSON-able value, so a job records exactly what it ran with."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

Schedule = Literal["inverse_sqrt", "cosine"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
Recipe = Literal["default", "hat"]
RECIPES: tuple[Recipe, ...] = ("default", "hat")


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """How to train one architecture. The budget ends training at whichever of ``max_steps``,
    ``max_epochs`` and ``max_minutes`` comes first (None: no limit of that kind)."""

    max_steps: int | None = 2000
    max_epochs: int | None = None
    max_minutes: float | None = None
    max_tokens: int = 4096  # tokens per batch (padded), like fairseq's --max-tokens
    accumulate: int = 1  # batches per optimiser step
    lr: float = 1e-3
    schedule: Schedule = "inverse_sqrt"
    warmup_steps: int = 200
    min_lr: float = 1e-6  # cosine schedule floor
    betas: tuple[float, float] = (0.9, 0.98)
    weight_decay: float = 0.0
    label_smoothing: float = 0.1
    dropout: float = 0.1
    attention_dropout: float = 0.0
    clip_norm: float = 1.0  # 0 disables clipping
    precision: Precision = "auto"  # auto: bf16 (or fp16) autocast on CUDA, fp32 on CPU
    seed: int = 1
    eval_every: int = 250  # steps between validation loss and BLEU evaluations
    eval_sentences: int = 200  # validation sentences decoded for the BLEU curve
    patience: int | None = None  # evaluations without a better validation loss before stopping
    checkpoint_every: int = 500  # steps between checkpoints (and one at the end)
    beam: int = 5  # beam size of the final BLEU on valid and test (1: greedy)
    length_penalty: float = 1.0  # beam scores are log p / length ** length_penalty
    max_len: int = 128  # longer sentences are skipped in training and truncated in evaluation

    def __post_init__(self) -> None:
        if all(v is None for v in (self.max_steps, self.max_epochs, self.max_minutes)):
            raise ValueError("give a budget: max_steps, max_epochs or max_minutes")
        for name in ("max_tokens", "accumulate", "warmup_steps", "eval_every", "beam"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0 <= self.dropout < 1 or not 0 <= self.label_smoothing < 1:
            raise ValueError("dropout and label_smoothing must be in [0, 1)")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """The inverse of ``as_dict``; unknown keys are an error that names them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training settings: {', '.join(unknown)}")
        if "betas" in values:
            values = {**values, "betas": tuple(values["betas"])}
        return cls(**values)


def fit_warmup(config: TrainConfig) -> TrainConfig:
    """``config`` with a warm-up longer than its step budget shortened to a tenth of the
    budget: such a run never reaches the peak learning rate, and the model learns next to
    nothing. Other warm-ups stay as they are, so that a run resumed with a larger budget
    keeps its schedule."""
    if config.max_steps is None or config.warmup_steps <= config.max_steps:
        return config
    return replace(config, warmup_steps=max(1, config.max_steps // 10))


# HAT's recipe for training a SubTransformer, from mit-han-lab/hardware-aware-transformers
# configs/wmt14.en-de/subtransformer/common.yml (wmt14.en-fr and wmt19.en-de have the same
# numbers); beam and length penalty from configs/wmt14.en-de/test.sh. Not taken: fp16 (see
# ``precision``) and the batch of 8 GPUs x update-freq 16 x 4,096 tokens (``accumulate`` 128 on
# one device; HAT's README), which would make one step take minutes on a CPU.
HAT_RECIPE: dict[str, Any] = {
    "dropout": 0.3,  # dropout: 0.3
    "attention_dropout": 0.1,  # attention-dropout: 0.1
    "schedule": "cosine",  # lr-scheduler: cosine
    "warmup_steps": 4000,  # warmup-updates: 4000
    "max_steps": 40000,  # max-update: 40000
    "clip_norm": 0.0,  # clip-norm: 0.0
    "lr": 1e-3,  # max-lr: 0.001 (fairseq's cosine peaks at max-lr ...)
    "min_lr": 1e-7,  # lr: 1e-7 (... and anneals down to lr)
    "betas": (0.9, 0.98),  # adam-betas: (0.9, 0.98)
    "weight_decay": 0.0,  # weight-decay: 0.0
    "label_smoothing": 0.1,  # label-smoothing: 0.1
    "max_tokens": 4096,  # max-tokens: 4096
    "beam": 4,  # test.sh: --beam 4
    "length_penalty": 0.6,  # test.sh: --lenpen 0.6
}

# HAT trains the SuperTransformer with the same recipe but a longer warm-up:
# configs/wmt14.en-de/supertransformer/space0.yml, warmup-updates: 10000.
HAT_SUPERNET_RECIPE: dict[str, Any] = {**HAT_RECIPE, "warmup_steps": 10000}


def recipe_settings(recipe: Recipe, supernet: bool = False) -> dict[str, Any]:
    """The TrainConfig fields a recipe sets: none for "default" (the CPU-friendly defaults),
    HAT's for "hat" (its SuperTransformer's when ``supernet``)."""
    if recipe == "default":
        return {}
    if recipe == "hat":
        return dict(HAT_SUPERNET_RECIPE if supernet else HAT_RECIPE)
    raise ValueError(f"unknown recipe '{recipe}', expected one of {', '.join(RECIPES)}")


def supernet_overrides(recipe: Recipe) -> dict[str, Any]:
    """The fields whose value a recipe's SuperTransformer takes in place of its
    SubTransformers' (HAT: the warm-up), with the supernet's values."""
    subnet = recipe_settings(recipe)
    return {
        name: value
        for name, value in recipe_settings(recipe, supernet=True).items()
        if subnet.get(name) != value
    }


def describe_recipe(recipe: Recipe, supernet: bool = False) -> str:
    """What a recipe sets, in words (for help texts and tooltips)."""
    settings = recipe_settings(recipe, supernet)
    return describe_settings(settings) if settings else "the CPU-friendly defaults"


def describe_settings(settings: dict[str, Any]) -> str:
    """TrainConfig fields in words: ``warmup_steps 10,000, betas 0.9/0.98``."""
    return ", ".join(f"{name} {_plain(value)}" for name, value in settings.items())


def _plain(value: Any) -> str:
    if isinstance(value, tuple):
        return "/".join(map(str, value))
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
