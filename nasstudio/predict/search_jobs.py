"""Architecture search as a job: HAT's evolutionary search (or NSGA-II) ranked by stored
predictors, under a constraint on predicted latency, GFLOPs or parameters.

HS-NAS (llmas): iterations before ``switch_at`` are ranked by the first predictor (the cheap
distilled one), the rest by the second (the supernet); the time spent in each is recorded.
Every generation is yielded as a ``SearchGeneration``: the runner records its population and
front as it goes, so a cancelled search keeps the generations done. The predictors are loaded
inside the worker from picklable specs.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from nasstudio.jobs import JobHandle
from nasstudio.jobs.model import job_defaults
from nasstudio.jobs.records import NewTask, SearchGeneration, SearchMember
from nasstudio.metrics import efficiency
from nasstudio.predict.base import PredictionResult, Predictor, to_predictions
from nasstudio.predict.distill import load_distilled
from nasstudio.predict.latency import LatencyPredictor, load_latency_predictor
from nasstudio.search import pareto_front_2d
from nasstudio.search.evolution import EvolutionSettings, evolve
from nasstudio.search.nsga import nsga2
from nasstudio.space import Architecture, SearchSpace, average_features, get_space
from nasstudio.store import GFLOPS, LATENCY_MS, PARAMS, Prediction, Project

PREDICTOR_KINDS = ("distilled", "fitted", "supernet", "proxy")
MODES = ("evolution", "nsga2")
# Architectures a predictor scores between two looks at the cancel flag.
_SCORE_CHUNK = 8


@dataclass(frozen=True)
class PredictorSpec:
    """A predictor to load in the worker: ``kind`` 'distilled' or 'fitted' with the ``name``
    it is stored under beside the project, 'proxy' with the name of a proxy stored in the
    project, or 'supernet' with the checkpoint path as ``name`` and ``options`` ``corpus`` (a
    data.spec corpus, required), ``device``, ``cache_dir``."""

    kind: str
    name: str
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.name}"


@dataclass(frozen=True)
class SearchSpec:
    """What to search with: one predictor, or two for HS-NAS (the first ranks iterations
    before ``switch_at``); a constraint ``constraint_metric`` <= ``constraint_limit`` on
    'gflops', 'params' or 'latency_ms' (predicted by the stored ``latency_predictor``;
    'latency_ms@<device>' must name its device)."""

    predictors: tuple[PredictorSpec, ...]
    switch_at: int = 15
    constraint_metric: str = ""
    constraint_limit: float | None = None
    latency_predictor: str | None = None
    settings: EvolutionSettings = field(default_factory=EvolutionSettings)
    mode: str = "evolution"
    initial_arch_ids: tuple[str, ...] = ()

    def as_params(self) -> dict[str, Any]:
        """The spec as JSON values: the job's stored parameters, so a search can be re-run."""
        return asdict(self)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> SearchSpec:
        predictors = tuple(PredictorSpec(**p) for p in params["predictors"])
        settings = EvolutionSettings(**params.get("settings", {}))
        initial = tuple(params.get("initial_arch_ids", ()))
        rest = {k: v for k, v in params.items() if k not in ("predictors", "settings")}
        return cls(predictors, **{**rest, "settings": settings, "initial_arch_ids": initial})

    def check(self) -> None:
        """A clear error for a spec that cannot run, before anything is loaded."""
        if not 1 <= len(self.predictors) <= 2:
            raise ValueError(f"give one predictor, or two for HS-NAS, not {len(self.predictors)}")
        for spec in self.predictors:
            if spec.kind not in PREDICTOR_KINDS:
                raise ValueError(f"predictor kind '{spec.kind}': expected one of {PREDICTOR_KINDS}")
            if spec.kind == "supernet" and "corpus" not in spec.options:
                raise ValueError(f"predictor {spec.label}: a supernet needs its corpus")
        if self.mode not in MODES:
            raise ValueError(f"search mode '{self.mode}': expected one of {MODES}")
        if self.mode == "nsga2" and len(self.predictors) > 1:
            raise ValueError("NSGA-II ranks with one predictor: HS-NAS's switch is for evolution")
        if len(self.predictors) == 2 and not 0 < self.switch_at < self.settings.iterations:
            raise ValueError(
                f"switch_at must be between 1 and {self.settings.iterations - 1} (the iterations"
                f" before the second predictor takes over), got {self.switch_at}"
            )
        metric = self.constraint_metric
        if metric and metric not in (GFLOPS, PARAMS) and metric.split("@")[0] != LATENCY_MS:
            raise ValueError(f"constraint '{metric}': expected gflops, params or latency_ms")
        if metric and (self.constraint_limit is None or not self.constraint_limit > 0):
            raise ValueError(f"constraint on {metric} needs a limit above 0")
        if metric.startswith(LATENCY_MS) and not self.latency_predictor:
            raise ValueError("a latency constraint needs a stored latency predictor")


class _Scorer:
    """A predictor as a fitness: ``score`` is its value, negated for a loss (higher is
    better). It keeps every result, for the predictions of the front architectures."""

    def __init__(self, predictor: Predictor, task: str, handle: JobHandle) -> None:
        self.predictor, self.task, self.handle = predictor, task, handle
        self.label = _label(predictor)
        proxy = predictor.kind == "proxy"  # signed already; its metric names the proxy
        self.sign = -1.0 if predictor.metric.endswith("loss") and not proxy else 1.0
        metric = "BLEU" if "bleu" in predictor.metric else predictor.metric.replace("_", " ")
        metric = "proxy" if proxy else metric
        self.score_label = f"{'-' if self.sign < 0 else ''}{metric} ({self.label})"
        self.results: dict[str, PredictionResult] = {}

    def scores(self, archs: Sequence[Architecture]) -> np.ndarray:
        """Each architecture scored once (a parent carried over is not scored again)."""
        todo = list({a.id: a for a in archs if a.id not in self.results}.values())
        for start in range(0, len(todo), _SCORE_CHUNK):
            self.handle.check_cancelled()
            for result in self.predictor.predict(todo[start : start + _SCORE_CHUNK]):
                if not result.ok:
                    raise ValueError(f"{self.label} cannot score {result.arch_id}: {result.error}")
                self.results[result.arch_id] = result
        return np.array([self.sign * self.results[a.id].value for a in archs])

    def predictions(self, arch_ids: Sequence[str]) -> list[Prediction]:
        return to_predictions(self.predictor, self.task, [self.results[i] for i in arch_ids])


def _label(predictor: Predictor) -> str:
    """'distilled:<name>'; a supernet's name says its kind already."""
    prefix = f"{predictor.kind}:"
    return predictor.name if predictor.name.startswith(prefix) else prefix + predictor.name


class _Metrics:
    """The constraint and objective metrics of architectures: analytic GFLOPs and parameters,
    and the latency a stored predictor predicts."""

    def __init__(self, vocab_size: int, task: str, latency: LatencyPredictor | None) -> None:
        self.vocab_size, self.task, self.latency = vocab_size, task, latency

    def of(self, archs: Sequence[Architecture]) -> dict[str, np.ndarray]:
        costs = [efficiency(a, self.vocab_size) for a in archs]
        values = {
            GFLOPS: np.array([c.gflops for c in costs]),
            PARAMS: np.array([float(c.params) for c in costs]),
        }
        if self.latency is not None and archs:
            features = np.stack([average_features(a) for a in archs])
            values[self.latency.metric] = self.latency.predict_ms(features)
        return values

    def latency_predictions(self, archs: Sequence[Architecture]) -> list[Prediction]:
        if self.latency is None:
            return []
        return to_predictions(self.latency, self.task, self.latency.predict(archs))


@job_defaults("process")
def search_job(
    handle: JobHandle, project: Project, task: str, spec: Mapping[str, Any]
) -> Generator[Any, None, dict[str, Any]]:
    """Search ``task``'s space as ``spec`` (``SearchSpec.as_params()``) says, yielding each
    generation for the runner to record; returns a summary: the best architecture and score of
    the last generation, the seconds spent in each predictor and the generations done."""
    spec = SearchSpec.from_params(spec)
    spec.check()
    task_spec = project.task(task)
    if task_spec is None:
        raise ValueError(f"no task '{task}' in {project.path}")
    space = get_space(task_spec.space)
    initial = project.task_architectures(task, spec.initial_arch_ids)
    handle.progress(0.0, "loading the predictors")
    scorers = [_load_scorer(handle, project, task, space, p) for p in spec.predictors]
    for scorer in scorers:  # a supernet's predictions go to its corpus' task
        if scorer.task != task:
            yield NewTask(scorer.predictor.prepared.task)
    latency = (
        load_latency_predictor(project.path, spec.latency_predictor)
        if spec.latency_predictor
        else None
    )
    constraint = _constraint_metric(spec, latency)
    metrics = _Metrics(task_spec.vocab_size, task, latency)
    axis = constraint or (latency.metric if latency else GFLOPS)
    recorded: set[tuple[str, str]] = set()  # (scorer, arch id) whose predictions are recorded
    seconds: dict[str, float] = {}
    last: SearchGeneration | None = None
    for generation in _generations(space, spec, scorers, metrics, constraint, axis, initial):
        generation = _with_predictions(generation, scorers, metrics, recorded)
        seconds[generation.scorer] = seconds.get(generation.scorer, 0.0) + generation.seconds
        last = generation
        handle.progress(
            (generation.generation + 1) / spec.settings.iterations,
            f"generation {generation.generation + 1}/{spec.settings.iterations}"
            f" ({generation.scorer}), best {generation.best.score:.2f}",
        )
        yield generation
    if last is None:
        raise ValueError("the search ran no generation")
    return {
        "job_id": handle.job_id,
        "task": task,
        "best_id": last.best.arch.id,
        "best_score": last.best.score,
        "score_label": last.score_label,
        "front": list(last.front),
        "seconds": seconds,
        "generations": last.generation + 1,
    }


def _load_scorer(
    handle: JobHandle, project: Project, task: str, space: SearchSpace, spec: PredictorSpec
) -> _Scorer:
    if spec.kind == "proxy":
        from nasstudio.predict.proxy import ProxyPredictor  # the MT model stack: only here

        vocab_size = project.task(task).vocab_size
        return _Scorer(ProxyPredictor(project.proxy(spec.name), vocab_size), task, handle)
    if spec.kind != "supernet":
        return _Scorer(load_distilled(project.path, spec.name), task, handle)
    from nasstudio.predict.supernet import SupernetPredictor  # the training stack: only here

    options = dict(spec.options)
    predictor = SupernetPredictor.load(
        handle,
        project,
        task,
        spec.name,
        options["corpus"],
        options.get("device", "cpu"),
        options.get("cache_dir"),
        bleu_sentences=0,  # the loss only: greedy BLEU of every candidate is far too slow
    )
    if predictor.provenance["space"] != space.name:
        raise ValueError(
            f"supernet {spec.name} is of space '{predictor.provenance['space']}', "
            f"task '{task}' of '{space.name}'"
        )
    return _Scorer(predictor, predictor.prepared.task.name, handle)


def _constraint_metric(spec: SearchSpec, latency: LatencyPredictor | None) -> str:
    """The constrained metric as members' metrics name it: latency with its device."""
    metric = spec.constraint_metric
    if not metric.startswith(LATENCY_MS) or latency is None:
        return metric
    if metric != LATENCY_MS and metric != latency.metric:
        raise ValueError(
            f"constraint on {metric}, but latency predictor '{spec.latency_predictor}' "
            f"predicts {latency.metric}"
        )
    return latency.metric


def _generations(
    space: SearchSpace,
    spec: SearchSpec,
    scorers: Sequence[_Scorer],
    metrics: _Metrics,
    constraint: str,
    axis: str,
    initial: Sequence[Architecture],
) -> Iterator[SearchGeneration]:
    """The search's generations, each with its population's metrics and front."""
    limit = spec.constraint_limit

    def feasible(archs: Sequence[Architecture]) -> np.ndarray:
        if not constraint:
            return np.ones(len(archs), dtype=bool)
        return metrics.of(archs)[constraint] <= limit

    def scorer_at(iteration: int) -> _Scorer:
        return scorers[0] if iteration < spec.switch_at else scorers[-1]

    def generation(
        index: int, archs: Sequence[Architecture], scores: np.ndarray, scorer: _Scorer, s: float
    ) -> SearchGeneration:
        order = np.argsort(-scores, kind="stable")  # best first
        archs, scores = [archs[i] for i in order], scores[order]
        values = metrics.of(archs)
        members = tuple(
            SearchMember(a, float(scores[i]), {k: float(v[i]) for k, v in values.items()})
            for i, a in enumerate(archs)
        )
        front = tuple(dict.fromkeys(archs[i].id for i in pareto_front_2d(values[axis], scores)))
        return SearchGeneration(
            metrics.task, index, scorer.label, scorer.score_label, s, members, front, constraint
        )

    described = f"{constraint} <= {limit:g}" if constraint else "the constraint"
    if spec.mode == "nsga2":
        scorer = scorers[0]

        def objectives(archs: Sequence[Architecture]) -> np.ndarray:
            return np.column_stack([-scorer.scores(archs), metrics.of(archs)[axis]])

        for g in nsga2(space, spec.settings, objectives, feasible, initial, constraint=described):
            yield generation(g.index, g.archs, -g.objectives[:, 0], scorer, g.seconds)
        return

    def fitness(iteration: int, archs: Sequence[Architecture]) -> tuple[np.ndarray, str]:
        scorer = scorer_at(iteration)
        return scorer.scores(archs), scorer.label

    for g in evolve(space, spec.settings, fitness, feasible, initial, constraint=described):
        yield generation(g.index, g.archs, np.asarray(g.fitness), scorer_at(g.index), g.seconds)


def _with_predictions(
    generation: SearchGeneration,
    scorers: Sequence[_Scorer],
    metrics: _Metrics,
    recorded: set[tuple[str, str]],
) -> SearchGeneration:
    """The generation carrying the predictions of its front and best architectures that this
    search has not recorded yet: the scorer's, and the predicted latency."""
    scorer = next(s for s in scorers if s.label == generation.scorer)
    chosen = dict.fromkeys((*generation.front, generation.best.arch.id))
    scored = [i for i in chosen if (scorer.label, i) not in recorded]
    timed = [i for i in chosen if (LATENCY_MS, i) not in recorded]
    recorded.update((scorer.label, i) for i in scored)
    recorded.update((LATENCY_MS, i) for i in timed)
    archs = {m.arch.id: m.arch for m in generation.members}  # a population may repeat one
    rows = scorer.predictions(scored) + metrics.latency_predictions([archs[i] for i in timed])
    return replace(generation, predictions=tuple(rows))
