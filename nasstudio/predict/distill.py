"""LLM-Distill-PP and the fitted predictor: llmas's MLP regressor on the 10 averaged features.

Fitted on (architecture, value) pairs: LLM-PP's predictions of a task (``pred:bleu@<llm>``, the
distilled predictor) or measured BLEU (the fitted predictor). The features and the network
follow llmas's ``bleu_predictor.py``: each feature divided by the space's maximum (640, 6, 3072,
8 for HAT's WMT space), arbitrary attention as (1 + mean of HAT's values) / 3; a first layer of
400 units then ``hidden_layers`` more of 400, ReLU, one output; MSE, Adam. An ensemble over
seeds gives the mean and the std.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nasstudio.predict.base import PredictionResult
from nasstudio.space import Architecture, SearchSpace
from nasstudio.store import BLEU_VALID, Project

_FORMAT = "nasstudio-distilled-1"
# A file name on every system: no separators, not hidden.
_STORED_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class FitSettings:
    """llmas's defaults: 5,000 Adam steps of batch 128 at learning rate 1e-5, 400 units."""

    steps: int = 5000
    batch_size: int = 128
    learning_rate: float = 1e-5
    hidden_dim: int = 400
    hidden_layers: int = 3  # after the first 10 -> 400 layer, as llmas's --hidden-layer-num
    seeds: tuple[int, ...] = (0, 1, 2)
    # llmas's output starts near 0; starting at the labels' mean spends no steps on the offset
    start_at_mean: bool = False


def feature_scale(space: SearchSpace) -> np.ndarray:
    """llmas's divisors: the space's maximum of each feature; arbitrary attention's (1 + mean)
    is divided by 1 + its largest value (3 in HAT's spaces)."""
    embed = max(space.encoder_embed_dims + space.decoder_embed_dims)
    ffn = max(space.encoder_ffn_dims + space.decoder_ffn_dims)
    heads = max(space.encoder_heads + space.decoder_heads + space.cross_heads)
    layers = max(space.max_encoder_layers, space.max_decoder_layers)
    arbitrary = 1 + max(space.arbitrary_attn)
    return np.array(
        [embed, layers, ffn, heads, embed, layers, ffn, heads, heads, arbitrary], dtype=np.float64
    )


def distill_features(archs: Sequence[Architecture], scale: np.ndarray) -> np.ndarray:
    """One row of 10 normalised features per architecture (llmas's ``feature_type='hat'``)."""

    def mean(values: Sequence[int]) -> float:  # a plain mean: np.mean costs 20x on a tuple
        return sum(values) / len(values)

    def row(a: Architecture) -> list[float]:
        return [
            a.encoder_embed_dim,
            a.encoder_layers,
            mean(a.encoder_ffn_dims),
            mean(a.encoder_heads),
            a.decoder_embed_dim,
            a.decoder_layers,
            mean(a.decoder_ffn_dims),
            mean(a.decoder_heads),
            mean(a.decoder_cross_heads),
            1.0 + mean(a.decoder_arbitrary_attn),  # HAT's raw values: -1, 1, 2
        ]

    return np.array([row(a) for a in archs], dtype=np.float64).reshape(-1, 10) / scale


def _network(settings: FitSettings) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(10, settings.hidden_dim), nn.ReLU()]
    for _ in range(settings.hidden_layers):
        layers += [nn.Linear(settings.hidden_dim, settings.hidden_dim), nn.ReLU()]
    layers.append(nn.Linear(settings.hidden_dim, 1))
    return nn.Sequential(*layers)


_REPORT_EVERY = 100  # steps between progress reports


def _fit_member(
    x: torch.Tensor,
    y: torch.Tensor,
    seed: int,
    settings: FitSettings,
    progress: Callable[[int], None] | None = None,
) -> nn.Module:
    """One network trained as llmas trains: each step a batch drawn without replacement.
    ``progress(steps done)`` is called every few steps (it may raise to stop the fit)."""
    with torch.random.fork_rng(devices=[]):  # a seeded init without touching the caller's RNG
        torch.manual_seed(seed)
        net = _network(settings)
    if settings.start_at_mean:
        nn.init.constant_(net[-1].bias, float(y.mean()))
    batches = torch.Generator().manual_seed(seed)
    batch_size = min(settings.batch_size, len(x))
    optimizer = torch.optim.Adam(net.parameters(), lr=settings.learning_rate)
    loss_fn = nn.MSELoss()
    for step in range(settings.steps):
        if progress is not None and step % _REPORT_EVERY == 0:
            progress(step)
        pick = torch.randperm(len(x), generator=batches)[:batch_size]
        loss = loss_fn(net(x[pick]).squeeze(1), y[pick])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return net.eval()


class DistilledPredictor:
    """An ensemble of llmas regressors; ``kind`` 'distilled' (fitted on an LLM's predictions) or
    'fitted' (on measurements). ``provenance`` says what it was fitted on, ``evaluation`` how
    well it did (held-out and seed-architecture scores, filled in by the job that fits it).
    It is stored as ``stored_name`` and predicts as ``<kind>:<stored_name>``."""

    def __init__(
        self,
        name: str,
        kind: str,
        scale: np.ndarray,
        settings: FitSettings,
        members: Sequence[nn.Module],
        provenance: Mapping[str, Any],
        metric: str = BLEU_VALID,
        evaluation: Mapping[str, Any] | None = None,
    ) -> None:
        self.stored_name = name
        self._kind = kind
        self._metric = metric
        self.scale = np.asarray(scale, dtype=np.float64)
        self.settings = settings
        self.members = list(members)
        self.provenance = dict(provenance)
        self.evaluation = dict(evaluation or {})

    @property
    def name(self) -> str:
        return f"{self._kind}:{self.stored_name}"

    @property
    def kind(self) -> str:
        return self._kind

    @property
    def metric(self) -> str:
        return self._metric

    @classmethod
    def fit(
        cls,
        archs: Sequence[Architecture],
        values: Sequence[float],
        space: SearchSpace,
        name: str,
        kind: str = "distilled",
        settings: FitSettings | None = None,
        provenance: Mapping[str, Any] | None = None,
        metric: str = BLEU_VALID,
        progress: Callable[[float], None] | None = None,
    ) -> DistilledPredictor:
        """One network per seed of ``settings`` on ``values`` (of ``metric``) of ``archs``;
        ``progress(fraction done)`` hears how far the fit is (it may raise to stop it)."""
        if len(archs) != len(values) or not archs:
            raise ValueError(
                f"need as many values as architectures (>0): {len(archs)}, {len(values)}"
            )
        settings = settings or FitSettings()
        scale = feature_scale(space)
        x = torch.tensor(distill_features(archs, scale), dtype=torch.float32)
        y = torch.tensor(np.asarray(values, dtype=np.float64), dtype=torch.float32)
        total = settings.steps * len(settings.seeds)

        def member_progress(index: int) -> Callable[[int], None] | None:
            if progress is None:
                return None
            return lambda step: progress((index * settings.steps + step) / total)

        members = [
            _fit_member(x, y, seed, settings, member_progress(i))
            for i, seed in enumerate(settings.seeds)
        ]
        fitted_on = {"space": space.name, "architectures": len(archs), **(provenance or {})}
        return cls(name, kind, scale, settings, members, fitted_on, metric)

    def predict_values(self, archs: Sequence[Architecture]) -> tuple[np.ndarray, np.ndarray]:
        """Ensemble mean and std (population std; 0 with one member) per architecture."""
        x = torch.tensor(distill_features(archs, self.scale), dtype=torch.float32)
        with torch.no_grad():
            outputs = torch.stack([net(x).squeeze(1) for net in self.members]).double().numpy()
        return outputs.mean(axis=0), outputs.std(axis=0)

    def predict(self, archs: Sequence[Architecture]) -> list[PredictionResult]:
        mean, std = self.predict_values(archs)
        provenance = {"fitted_on": self.provenance, "members": len(self.members)}
        return [
            PredictionResult(a.id, float(m), float(s), provenance=provenance)
            for a, m, s in zip(archs, mean, std, strict=True)
        ]

    def save(self, path: Path) -> None:
        """State dicts, normalisation, settings and provenance in one torch file; a crash
        mid-write leaves any previous file intact."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        torch.save(
            {
                "format": _FORMAT,
                "name": self.stored_name,
                "kind": self.kind,
                "metric": self.metric,
                "scale": self.scale.tolist(),
                "settings": asdict(self.settings),
                "provenance": self.provenance,
                "evaluation": self.evaluation,
                "members": [net.state_dict() for net in self.members],
            },
            partial,
        )
        os.replace(partial, path)

    @classmethod
    def load(cls, path: Path) -> DistilledPredictor:
        saved = torch.load(path, weights_only=True)
        if not isinstance(saved, dict) or saved.get("format") != _FORMAT:
            raise ValueError(f"{path}: not a distilled predictor file (expected {_FORMAT})")
        settings = FitSettings(**{**saved["settings"], "seeds": tuple(saved["settings"]["seeds"])})
        members = []
        for state in saved["members"]:
            net = _network(settings)
            net.load_state_dict(state)
            members.append(net.eval())
        return cls(
            saved["name"],
            saved["kind"],
            np.array(saved["scale"]),
            settings,
            members,
            saved["provenance"],
            saved["metric"],
            saved.get("evaluation"),
        )


def distilled_dir(project_path: Path) -> Path:
    """Distilled and fitted predictors live beside the project file, in ``<project>.distilled/``."""
    project_path = Path(project_path)
    return project_path.with_name(project_path.name + ".distilled")


def distilled_path(project_path: Path, name: str) -> Path:
    """Where predictor ``name`` is stored; the name must be a plain file name."""
    if not _STORED_NAME.fullmatch(name):
        raise ValueError(f"'{name}' is not a predictor name (letters, digits, '.', '-', '_')")
    return distilled_dir(project_path) / f"{name}.pt"


def load_distilled(project_path: Path, name: str) -> DistilledPredictor:
    """The predictor stored as ``name`` (its ``stored_name``) for the project at
    ``project_path``."""
    path = distilled_path(project_path, name)
    if not path.is_file():
        stored = ", ".join(p.stored_name for p in stored_distilled(project_path)) or "none"
        raise ValueError(f"no distilled predictor '{name}' in {path.parent} (stored: {stored})")
    return DistilledPredictor.load(path)


def stored_distilled(project_path: Path) -> list[DistilledPredictor]:
    """Every predictor stored for the project, by name."""
    paths = sorted(distilled_dir(project_path).glob("*.pt"))
    return [DistilledPredictor.load(p) for p in paths]


def labelled_pairs(
    project: Project, task: str, column: str, archs: Sequence[Architecture] | None = None
) -> tuple[list[Architecture], list[float]]:
    """The architectures of ``task`` that have a value in ``column`` of its table (an LLM's
    ``pred:bleu@<model>`` or a measured ``bleu_valid``), with those values. ``archs``, the
    task's architectures when the caller has them, saves reading them again."""
    table = project.table(task)
    labels = table[column].dropna() if column in table.columns else table.iloc[:0, :0]
    if labels.empty:
        raise ValueError(f"task '{task}' has no values in column '{column}'")
    by_id = {a.id: a for a in (project.architectures(task) if archs is None else archs)}
    return [by_id[i] for i in labels.index], [float(v) for v in labels]


def kind_of_labels(column: str) -> str:
    """'distilled' for labels an LLM predicted, 'fitted' for measured ones."""
    return "distilled" if column.startswith("pred:") else "fitted"
