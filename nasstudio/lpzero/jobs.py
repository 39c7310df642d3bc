"""An LPZero proxy search as a job: it yields the sampled architectures with the classic
proxies' correlations (``ProxySample``), then one ``ProxyIteration`` per GP iteration, which the
runner records as they come, so a cancelled search keeps the iterations done.

Submitted as ``session.submit("lpzero", title, lpzero_search_job, spec=spec.as_params())``.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from nasstudio.jobs import JobHandle
from nasstudio.jobs.model import job_defaults
from nasstudio.jobs.records import ProxyIteration, ProxySample
from nasstudio.lpzero.search import GPSettings, Iteration, gp_search
from nasstudio.lpzero.suites import TASK_PREFIX, classic_correlations, open_suite
from nasstudio.store import Project


@dataclass(frozen=True)
class LPZeroSpec:
    """What to search on and how: ``benchmark`` as :func:`~nasstudio.lpzero.suites.open_suite`
    takes it (``task`` is the same as benchmark ``task:<task>``), ``sample`` architectures
    drawn with the GP seed (all when None), the GP ``settings``, whether to compute the
    ``classic`` proxies for comparison, and the LPZero ``data_dir`` of a named benchmark
    ('' for ``$NASSTUDIO_LPZERO_DATA``)."""

    benchmark: str = ""
    sample: int | None = None
    settings: GPSettings = field(default_factory=GPSettings)
    classic: bool = True
    task: str = ""
    data_dir: str = ""

    def __post_init__(self) -> None:
        if self.task and self.benchmark not in ("", TASK_PREFIX + self.task):
            raise ValueError(f"benchmark '{self.benchmark}' and task '{self.task}' disagree")
        if self.task:
            object.__setattr__(self, "benchmark", TASK_PREFIX + self.task)
        elif self.benchmark.startswith(TASK_PREFIX):
            object.__setattr__(self, "task", self.benchmark.removeprefix(TASK_PREFIX))
        if not self.benchmark:
            raise ValueError("say which benchmark to search on")

    def as_params(self) -> dict[str, Any]:
        """The spec as JSON values: the job's stored parameters, so a search can be re-run."""
        return asdict(self)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> LPZeroSpec:
        settings = GPSettings(**params.get("settings", {}))
        return cls(**{**params, "settings": settings})


def proxy_iteration(iteration: Iteration) -> ProxyIteration:
    """The record of a GP iteration."""
    return ProxyIteration(
        iteration.index,
        iteration.best_fitness,
        iteration.median_fitness,
        iteration.best,
        iteration.best_rho,
        iteration.best_tau,
        iteration.best_values,
        iteration.child,
        iteration.child_fitness,
        iteration.pruned_by,
    )


@job_defaults("process")
def lpzero_search_job(
    handle: JobHandle, project: Project, spec: Mapping[str, Any]
) -> Generator[Any, None, dict[str, Any]]:
    """Search proxies as ``spec`` (``LPZeroSpec.as_params()``) says; returns a summary: the
    best formula, its signed ``rho`` and ``tau``, the ``sign`` to use it with, the iterations
    done and the seconds the search took."""
    spec = LPZeroSpec.from_params(spec)
    started = time.perf_counter()
    settings = spec.settings
    handle.progress(0.0, f"opening {spec.benchmark}")
    suite = open_suite(
        spec.benchmark,
        project=project,
        sample=spec.sample,
        seed=settings.seed,
        data_dir=spec.data_dir or None,
    )
    steps = (len(suite) if spec.classic else 0) + settings.population + settings.iterations

    def classic_step(index: int) -> None:
        handle.check_cancelled()
        handle.progress(index / steps, f"classic proxies: architecture {index + 1}/{len(suite)}")

    classic = classic_correlations(suite, classic_step) if spec.classic else {}
    yield ProxySample(suite.name, suite.arch_ids, suite.truth, suite.truth_label, classic)
    done = len(suite) if spec.classic else 0

    def scored(members: int, total: int) -> None:
        handle.check_cancelled()
        handle.progress((done + members) / steps, f"initial population: {members}/{total} scored")

    last: Iteration | None = None
    for iteration in gp_search(suite.evaluator(), settings, scored):
        last = iteration
        handle.progress(
            (done + settings.population + iteration.index + 1) / steps,
            f"iteration {iteration.index + 1}/{settings.iterations}, best |rho| "
            f"{iteration.best_fitness:.3f}",
        )
        yield proxy_iteration(iteration)
        handle.check_cancelled()
    if last is None:
        raise ValueError("the search ran no iteration (--iterations 0?)")
    return summary(handle.job_id, suite.name, last, time.perf_counter() - started)


def summary(job_id: int, benchmark: str, last: Iteration, seconds: float) -> dict[str, Any]:
    """What a finished search found, for the CLI and the jobs panel."""
    return {
        "job_id": job_id,
        "benchmark": benchmark,
        "best": last.best,
        "rho": last.best_rho,
        "tau": last.best_tau,
        "sign": -1 if last.best_rho < 0 else 1,
        "iterations": last.index + 1,
        "seconds": seconds,
    }
