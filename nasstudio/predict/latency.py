"""HAT's latency predictor: an MLP from the 10 averaged features to encoder + decoder latency.

As HAT's ``latency_predictor.py``: features divided by fixed norms (640, 6, 2048, 6, 640, 6,
2048, 6, 6, 2), latency divided by 200 ms, 10 -> 400 -> 400 -> 400 -> 400 -> 1 with ReLU
(a first layer and 3 hidden ones), MSE, Adam at learning rate 1e-5, batches of 128. It is fitted
on one latency table (one task and device) and scored on a seeded held-out 10 % by MAPE and
Kendall's tau. A fitted predictor is saved as a file of tensors and plain values.

Its rows come from HAT CSVs, a table the project imported, or the project's own measurements of
a task on a device (``latency_source``); ``latency_predictor_job`` fits and stores one as a job.

On HAT's Titan XP tables tau stays near 0.85 whatever the model: the rows are in measurement
order and their latency drifts with it (the residual of any fit on the features keeps a lag-1
autocorrelation above 0.9), a slowly changing factor of about 8 % that no architecture feature
predicts (see tests/test_latency_predictor.py for the numbers).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Generator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import kendalltau
from torch import nn

from nasstudio.jobs import JobHandle
from nasstudio.jobs.model import job_defaults
from nasstudio.predict.base import PredictionResult
from nasstudio.space import FEATURE_NAMES, Architecture, average_features
from nasstudio.store import LATENCY_MS, Project
from nasstudio.store.importers import LatencyFile, read_hat_latency

HAT_FEATURE_NORM = (640.0, 6.0, 2048.0, 6.0, 640.0, 6.0, 2048.0, 6.0, 6.0, 2.0)
HAT_LATENCY_NORM_MS = 200.0
HAT_HIDDEN_DIM = 400
HAT_HIDDEN_LAYERS = 3
HAT_LEARNING_RATE = 1e-5
HAT_BATCH = 128
HAT_STEPS = 5000
HELD_OUT_FRACTION = 0.1
# Training steps between two progress reports (and cancel checks) of the job.
_REPORT_EVERY = 100
# A predictor's name is its file's name on every system: no separators, not hidden.
PREDICTOR_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


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
        return cls.from_rows(table.rows)

    @classmethod
    def from_rows(cls, rows: np.ndarray) -> LatencyTable:
        """From HAT's columns: 10 features, encoder and decoder mean ms (then their stds)."""
        width = len(FEATURE_NAMES)
        return cls(rows[:, :width], rows[:, width] + rows[:, width + 1])

    @classmethod
    def joined(cls, parts: Sequence[LatencyTable]) -> LatencyTable:
        return cls(
            np.concatenate([p.features for p in parts]),
            np.concatenate([p.latency_ms for p in parts]),
        )

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


@dataclass(frozen=True, slots=True)
class HeldOut:
    """A fitted predictor's held-out rows: measured and predicted latency (ms), and their
    scores."""

    measured_ms: np.ndarray
    predicted_ms: np.ndarray

    @property
    def scores(self) -> LatencyScores:
        return latency_scores(self.predicted_ms, self.measured_ms)


class LatencyPredictor:
    """A fitted latency MLP of one task and device; a Predictor of ``latency_ms@<device>``.
    ``trained_on`` says which rows it was fitted on, ``training_rows`` how many."""

    kind = "fitted"

    def __init__(
        self,
        name: str,
        task: str,
        device: str,
        network: nn.Sequential,
        trained_on: str = "",
        training_rows: int = 0,
    ) -> None:
        self.name = name
        self.task = task
        self.device = device
        self.network = network.eval()
        self.trained_on = trained_on
        self.training_rows = training_rows
        self.held_out_rows: HeldOut | None = None

    @property
    def metric(self) -> str:
        return f"{LATENCY_MS}@{self.device}"

    @property
    def held_out(self) -> LatencyScores | None:
        return self.held_out_rows.scores if self.held_out_rows else None

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
        """Write the weights, what it was fitted on and its held-out rows; a crash mid-write
        leaves any previous file intact."""
        held_out = self.held_out_rows
        payload = {
            "name": self.name,
            "task": self.task,
            "device": self.device,
            "trained_on": self.trained_on,
            "training_rows": self.training_rows,
            "weights": self.network.state_dict(),
            "held_out_measured_ms": held_out.measured_ms.tolist() if held_out else None,
            "held_out_predicted_ms": held_out.predicted_ms.tolist() if held_out else None,
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
        predictor = cls(
            payload["name"],
            payload["task"],
            payload["device"],
            network,
            payload.get("trained_on", ""),
            payload.get("training_rows", 0),
        )
        if payload.get("held_out_measured_ms"):
            predictor.held_out_rows = HeldOut(
                np.asarray(payload["held_out_measured_ms"]),
                np.asarray(payload["held_out_predicted_ms"]),
            )
        return predictor


def latency_predictor_path(project_path: str | Path, name: str) -> Path:
    """Where latency predictor ``name`` of a project is stored: ``<project>.latency/<name>.pt``."""
    project_path = Path(project_path)
    return project_path.with_name(project_path.name + ".latency") / f"{name}.pt"


def load_latency_predictor(project_path: str | Path, name: str) -> LatencyPredictor:
    """The latency predictor stored as ``name`` beside the project at ``project_path``."""
    path = latency_predictor_path(project_path, name)
    if not path.is_file():
        raise ValueError(f"no latency predictor '{name}' (looked for {path})")
    return LatencyPredictor.load(path)


def latency_predictors(project_path: str | Path) -> list[LatencyPredictor]:
    """Every latency predictor stored beside the project, by name."""
    folder = latency_predictor_path(project_path, "x").parent
    return [LatencyPredictor.load(p) for p in sorted(folder.glob("*.pt"))]


@dataclass(frozen=True, slots=True)
class LatencySource:
    """The rows a latency predictor is fitted on, of one task and device; ``trained_on`` says
    where they came from."""

    task: str
    device: str
    trained_on: str
    table: LatencyTable


def files_source(paths: Sequence[str | Path]) -> LatencySource:
    """The rows of HAT latency CSVs, all of one device."""
    return _tables_source([read_hat_latency(p) for p in paths])


def _tables_source(tables: Sequence[LatencyFile]) -> LatencySource:
    devices = sorted({t.device for t in tables})
    if len(devices) != 1:
        raise ValueError(f"one latency predictor is for one device; the tables are of {devices}")
    return LatencySource(
        "+".join(dict.fromkeys(t.task for t in tables)),
        devices[0],
        ", ".join(t.name for t in tables),
        LatencyTable.joined([LatencyTable.from_file(t) for t in tables]),
    )


def table_source(project: Project, name: str) -> LatencySource:
    """The rows of a latency table the project imported."""
    tables = project.latency_tables().set_index("name")
    if name not in tables.index:
        raise KeyError(f"no latency table '{name}' in {project.path}; tables: {list(tables.index)}")
    rows = project.latency_table_rows(name)
    return LatencySource(
        tables.at[name, "task"], tables.at[name, "device"], name, LatencyTable.from_rows(rows)
    )


def measured_devices(project: Project, task: str) -> list[str]:
    """The devices the project holds measured latency of ``task``'s architectures on."""
    prefix = f"{LATENCY_MS}@"
    return [
        c[len(prefix) :] for c in project.value_columns(task)["measured"] if c.startswith(prefix)
    ]


def measurements_source(project: Project, task: str, device: str) -> LatencySource:
    """The project's measured latency of ``task`` on ``device``: one row per architecture (its
    latest measurement, as the browser shows it)."""
    if project.task(task) is None:
        raise KeyError(f"no task '{task}' in {project.path}")
    column = f"{LATENCY_MS}@{device}"
    table = project.table(task)
    if column not in table:
        raise ValueError(
            f"no latency of task '{task}' measured on '{device}';"
            f" measured on: {measured_devices(project, task) or 'none'}"
        )
    measured = table[table[column].notna()]
    return LatencySource(
        task,
        device,
        f"{task} measurements on {device}",
        LatencyTable(
            measured[list(FEATURE_NAMES)].to_numpy(np.float64), measured[column].to_numpy()
        ),
    )


def latency_source(
    project: Project,
    files: Sequence[str] = (),
    table: str = "",
    task: str = "",
    device: str = "",
) -> LatencySource:
    """Rows from HAT CSV ``files``, else the imported ``table``, else the project's measurements
    of ``task`` on ``device``."""
    if files:
        return files_source(files)
    if table:
        return table_source(project, table)
    if not (task and device):
        raise ValueError("say what to fit on: HAT CSV files, a latency table, or a task and device")
    return measurements_source(project, task, device)


def held_out_split(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Training and held-out row indices: a seeded shuffle, the last 10 % held out."""
    order = np.random.default_rng(seed).permutation(rows)
    held_out = max(1, round(rows * HELD_OUT_FRACTION))
    return order[:-held_out], order[-held_out:]


def fit_on(
    name: str,
    source: LatencySource,
    seed: int = 0,
    steps: int = HAT_STEPS,
    learning_rate: float = HAT_LEARNING_RATE,
    on_progress: Callable[[int], None] | None = None,
) -> LatencyPredictor:
    """Fit HAT's MLP on 90 % of ``source``'s rows and keep its predictions of the held-out
    10 %. ``on_progress(steps_done)`` is called every few steps (a job reports and checks for
    cancel there)."""
    whole = source.table
    if len(whole.latency_ms) < 2:
        raise ValueError(f"a latency predictor needs at least 2 rows; {source.trained_on} has")
    train_rows, held_out_rows = held_out_split(len(whole.latency_ms), seed)
    torch.manual_seed(seed)
    network = _network()
    rng = torch.Generator().manual_seed(seed)
    _train(network, whole.subset(train_rows), steps, learning_rate, rng, on_progress)
    predictor = LatencyPredictor(
        name, source.task, source.device, network, source.trained_on, len(train_rows)
    )
    held_out = whole.subset(held_out_rows)
    predictor.held_out_rows = HeldOut(held_out.latency_ms, predictor.predict_ms(held_out.features))
    return predictor


def fit_latency_predictor(
    name: str,
    tables: Sequence[LatencyFile],
    seed: int = 0,
    steps: int = HAT_STEPS,
    learning_rate: float = HAT_LEARNING_RATE,
) -> LatencyPredictor:
    """Fit HAT's MLP on 90 % of the rows of ``tables`` (one device's) and score it on the
    held-out 10 %."""
    return fit_on(name, _tables_source(tables), seed, steps, learning_rate)


def _train(
    network: nn.Sequential,
    table: LatencyTable,
    steps: int,
    learning_rate: float,
    rng: torch.Generator,
    on_progress: Callable[[int], None] | None = None,
) -> None:
    x = torch.from_numpy((table.features / np.array(HAT_FEATURE_NORM)).astype(np.float32))
    y = torch.from_numpy((table.latency_ms / HAT_LATENCY_NORM_MS).astype(np.float32))
    optimizer = torch.optim.Adam(network.parameters(), lr=learning_rate)
    batch = min(HAT_BATCH, len(y))
    network.train()
    for step in range(steps):
        if on_progress is not None and step % _REPORT_EVERY == 0:
            on_progress(step)
        rows = torch.randperm(len(y), generator=rng)[:batch]  # HAT samples without replacement
        loss = nn.functional.mse_loss(network(x[rows]).squeeze(1), y[rows])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    network.eval()


@job_defaults("process")
def latency_predictor_job(
    handle: JobHandle,
    project: Project,
    name: str,
    files: Sequence[str] = (),
    table: str = "",
    task: str = "",
    device: str = "",
    seed: int = 0,
    steps: int = HAT_STEPS,
    learning_rate: float = HAT_LEARNING_RATE,
) -> Generator[dict[str, Any], None, dict[str, Any]]:
    """Fit a latency predictor on the rows ``latency_source`` reads and store it beside the
    project as ``name``. Yields, once stored, and returns what it was fitted on and its
    held-out scores (the project itself records nothing)."""
    source = latency_source(project, files, table, task, device)
    handle.log(f"fitting '{name}' on {source.trained_on}: {len(source.table.latency_ms)} rows")

    def report(done: int) -> None:
        handle.check_cancelled()
        handle.progress(done / steps, f"step {done}/{steps}")

    predictor = fit_on(name, source, seed, steps, learning_rate, report)
    path = latency_predictor_path(project.path, name)
    predictor.save(path)
    scores = predictor.held_out
    handle.progress(1.0, f"'{name}': held-out MAPE {scores.mape:.2f} %, tau {scores.tau:.3f}")
    summary = {
        "name": name,
        "predictor": str(path),
        "task": predictor.task,
        "device": predictor.device,
        "trained_on": predictor.trained_on,
        **asdict(scores),
    }
    yield summary
    return summary
