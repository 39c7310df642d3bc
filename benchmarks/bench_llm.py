"""LLM-PP throughput: predictions per second against a local OpenAI-compatible server.

The test server (tests/llm_server.py) answers after an artificial latency (200 ms by default),
like a remote model would. The same prediction job (a coroutine on an event loop) runs at
concurrency 1, 8 and 32 through the real openai client, then once more served from the answer
cache:
  python benchmarks/bench_llm.py [--latency 0.2] [--per-slot 12]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ holds the server

from nasstudio.jobs import JobRunner, JobState
from nasstudio.jobs.async_executor import AsyncExecutor, background_loop
from nasstudio.predict.llm import LLMProfile, llm_predict_job
from nasstudio.space import get_space
from nasstudio.store import Project
from tests.llm_server import FakeLLMServer, add_wmt_architectures


def run(project: Project, ids: list[str], profile: LLMProfile, cache: Path) -> tuple[float, int]:
    # As in the CLI: the job is a coroutine on an event loop of its own thread.
    runner = JobRunner(project, executors={"async": AsyncExecutor(background_loop())})
    start = time.perf_counter()
    job = runner.submit(
        "llm",
        "bench",
        llm_predict_job,
        task="wmt14ende",
        arch_ids=ids,
        profile=profile,
        cache_path=str(cache),
    )
    summary = runner.wait(job)
    elapsed = time.perf_counter() - start
    runner.shutdown()
    if project.job(job).state != JobState.DONE or summary.predicted != len(ids):
        raise SystemExit(f"the job did not predict everything: {project.job(job)}")
    return elapsed, summary.usage.requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2, help="server latency (s)")
    parser.add_argument("--per-slot", type=int, default=12, help="predictions per concurrent slot")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, FakeLLMServer(delay=args.latency) as server:
        project = Project(Path(folder) / "bench.nasproj")
        add_wmt_architectures(project, measured=10, unmeasured=0)
        archs = get_space("hat-wmt").sample_many(32 * args.per_slot, 7)
        project.add_architectures("wmt14ende", archs, "bench")
        ids = [a.id for a in archs]
        print(f"server latency {args.latency * 1000:.0f} ms; 10 demonstrations per prompt")
        rates = {}
        for concurrency in (1, 8, 32):
            n = concurrency * args.per_slot
            profile = LLMProfile(
                f"c{concurrency}", base_url=server.base_url, model="fake", concurrency=concurrency
            )
            server.reset_counts()
            elapsed, requests = run(project, ids[:n], profile, Path(folder) / f"c{concurrency}")
            rates[concurrency] = n / elapsed
            ideal = concurrency / args.latency
            print(
                f"concurrency {concurrency:>2}: {n:>4} predictions in {elapsed:6.2f} s = "
                f"{rates[concurrency]:6.1f}/s ({requests} requests, at most "
                f"{server.max_in_flight} in flight; {rates[concurrency] / ideal:.0%} of the "
                f"{ideal:.0f}/s that the latency allows; {rates[concurrency] / rates[1]:.1f}x "
                "concurrency 1)"
            )
            last = (ids[:n], profile, Path(folder) / f"c{concurrency}", elapsed)
        server.reset_counts()
        same_ids, profile, cache, first = last
        elapsed, requests = run(project, same_ids, profile, cache)
        print(
            f"the same {len(same_ids)} again, from the cache: {elapsed:6.2f} s "
            f"({len(same_ids) / elapsed:,.0f}/s), {requests} requests, {server.requests} seen by "
            f"the server; {first / elapsed:.0f}x faster than the first run"
        )
        project.close()


if __name__ == "__main__":
    main()
