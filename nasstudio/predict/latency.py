"""HAT's latency predictor: an MLP from the 10 averaged features to encoder + decoder latency.

As HAT's ``latency_predictor.py``: features divided by fixed norms (640, 6, 2048, 6, 640, 6,
2048, 6, 6, 2), latency divided by 200 ms, 10 -> 400 -> 400 -> 400 -> 400 -> 1 with ReLU
(a first layer and 3 hidden ones), MSE, Adam at learning rate 1e-5, batches of 128. It is fitted
on one latency table (one task and device) and scored on a seeded held-out 10 % by MAPE and
Kendall's tau. A fitted predictor is saved as a file of tensors and plain values.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from scipy.stats import kendalltau
from torch import nn

from nasstudio.predict.base import PredictionResult
from nasstudio.space import FEATURE_NAMES, Architecture, average_features
from nasstudio.store.importers import LatencyFile

HAT_FEATURE_NORM = (640.0, 6.0, 2048.0, 6.0, 640.0, 6.0, 2048.0, 6.0, 6.0, 2.0)
HAT_LATENCY_NORM_MS = 200.0
HAT_HIDDEN_DIM = 400
HAT_HIDDEN_LAYERS = 3
HAT_LEARNING_RATE = 1e-5
HAT_BATCH = 128
HAT_STEPS = 5000
HELD_OUT_FRACTION = 0.1


def _network() -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(len(FEATURE_NAMES), HAT_HIDDEN_DIM), nn.ReLU()]
    for _ in range(HAT_HIDDEN_LAYERS):
        layers += [nn.Linear(HAT_HIDDEN_DIM, HAT_HIDDEN_DIM), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(HAT_HIDDEN_DIM, 1))


@dataclass(frozen=True, slots=True)
class LatencyTable:
    """Features (rows x 10) and measured encoder + decoder latency (ms) of one table."""

    features: np.ndarray
    latency_ms: np.ndarray

    @classmethod
    def from_file(cls, table: LatencyFile) -> LatencyTable:
        width = len(FEATURE_NAMES)
        encoder_ms, decoder_ms = table.rows[:, width], table.rows[:, width + 1]
        return cls(table.rows[:, :width], encoder_ms + decoder_ms)

    def subset(self, rows: np.ndarray) -> LatencyTable:
        return LatencyTable(self.features[rows], self.latency_ms[rows])


@dataclass(frozen=True, slots=True)
class LatencyScores:
    """How well predicted latency matches measured: mean absolute percentage error (%) and
    Kendall's tau, over ``rows`` architectures."""

    mape: float
    tau: float
    rows: int


def latency_scores(predicted_ms: np.ndarray, measured_ms: np.ndarray) -> LatencyScores:
    mape = float(np.mean(np.abs(predicted_ms - measured_ms) / measured_ms) * 100)
    tau = float(kendalltau(predicted_ms, measured_ms).statistic)
    return LatencyScores(mape, tau, len(measured_ms))


class LatencyPredictor:
    """A fitted latency MLP of one task and device; a Predictor of ``latency_ms@<device>``."""

    kind = "fitted"

    def __init__(self, name: str, task: str, device: str, network: nn.Sequential) -> None:
        self.name = name
        self.task = task
        self.device = device
        self.network = network.eval()
        self.held_out: LatencyScores | None = None

    @property
    def metric(self) -> str:
        return f"latency_ms@{self.device}"

    def predict_ms(self, features: np.ndarray) -> np.ndarray:
        normalised = np.asarray(features, dtype=np.float32) / np.float32(HAT_FEATURE_NORM)
        with torch.no_grad():
            out = self.network(torch.from_numpy(normalised)).squeeze(1)
        return out.numpy().astype(np.float64) * HAT_LATENCY_NORM_MS

    def predict(self, archs: Sequence[Architecture]) -> list[PredictionResult]:
        if not archs:
            return []
        predicted = self.predict_ms(np.stack([average_features(a) for a in archs]))
        return [
            PredictionResult(a.id, float(ms), provenance={"latency_table": self.name})
            for a, ms in zip(archs, predicted, strict=True)
        ]

    def score(self, table: LatencyTable) -> LatencyScores:
        return latency_scores(self.predict_ms(table.features), table.latency_ms)

    def save(self, path: Path) -> None:
        """Write the weights, the table it was fitted on and its held-out scores; a crash
        mid-write leaves any previous file intact."""
        payload = {
            "name": self.name,
            "task": self.task,
            "device": self.device,
            "weights": self.network.state_dict(),
            "held_out": asdict(self.held_out) if self.held_out else None,
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        torch.save(payload, partial)
        os.replace(partial, path)

    @classmethod
    def load(cls, path: Path) -> LatencyPredictor:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        network = _network()
        network.load_state_dict(payload["weights"])
        predictor = cls(payload["name"], payload["task"], payload["device"], network)
        if payload["held_out"]:
            predictor.held_out = LatencyScores(**payload["held_out"])
        return predictor


def held_out_split(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Training and held-out row indices: a seeded shuffle, the last 10 % held out."""
    order = np.random.default_rng(seed).permutation(rows)
    held_out = max(1, round(rows * HELD_OUT_FRACTION))
    return order[:-held_out], order[-held_out:]


def fit_latency_predictor(
    name: str,
    tables: Sequence[LatencyFile],
    seed: int = 0,
    steps: int = HAT_STEPS,
    learning_rate: float = HAT_LEARNING_RATE,
) -> LatencyPredictor:
    """Fit HAT's MLP on 90 % of the rows of ``tables`` (one device's) and score it on the
    held-out 10 %."""
    devices = sorted({t.device for t in tables})
    if len(devices) != 1:
        raise ValueError(f"one latency predictor is for one device; the tables are of {devices}")
    parts = [LatencyTable.from_file(t) for t in tables]
    whole = LatencyTable(
        np.concatenate([p.features for p in parts]), np.concatenate([p.latency_ms for p in parts])
    )
    if len(whole.latency_ms) < 2:
        raise ValueError("a latency predictor needs at least 2 rows")
    train_rows, held_out_rows = held_out_split(len(whole.latency_ms), seed)
    torch.manual_seed(seed)
    network = _network()
    _train(
        network, whole.subset(train_rows), steps, learning_rate, torch.Generator().manual_seed(seed)
    )
    task = "+".join(dict.fromkeys(t.task for t in tables))
    predictor = LatencyPredictor(name, task, devices[0], network)
    predictor.held_out = predictor.score(whole.subset(held_out_rows))
    return predictor


def _train(
    network: nn.Sequential,
    table: LatencyTable,
    steps: int,
    learning_rate: float,
    rng: torch.Generator,
) -> None:
    x = torch.from_numpy((table.features / np.array(HAT_FEATURE_NORM)).astype(np.float32))
    y = torch.from_numpy((table.latency_ms / HAT_LATENCY_NORM_MS).astype(np.float32))
    optimizer = torch.optim.Adam(network.parameters(), lr=learning_rate)
    batch = min(HAT_BATCH, len(y))
    network.train()
    for _ in range(steps):
        rows = torch.randperm(len(y), generator=rng)[:batch]  # HAT samples without replacement
        loss = nn.functional.mse_loss(network(x[rows]).squeeze(1), y[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    network.eval()
