"""Foundation benchmarks: Pareto front, pool import, sampling into a project and exporting it,
Pareto view redraw.

Prints figures and ratios against baselines run in the same process:
  python benchmarks/bench_foundation.py [--points 1000000] [--view-points 100000]
      [--sample 20000 100000]
The pool import and the view redraw need ../shared/data beside the checkout; the view uses
Qt offscreen when no display is set.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from nasstudio.jobs import JobRunner, sample_job
from nasstudio.search import pareto_front_2d
from nasstudio.store import Project
from nasstudio.store.exporters import export
from nasstudio.store.importers import import_files

REFDATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
VIEW_SIZE = (900, 650)


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def python_front(x: list[float], y: list[float]) -> list[int]:
    """Baseline: the textbook sort-and-sweep in plain Python (minimise x, maximise y)."""
    order = sorted(range(len(x)), key=lambda i: (x[i], -y[i]))
    front, best = [], -float("inf")
    for i in order:
        if y[i] > best:
            front.append(i)
            best = y[i]
    return front


def bench_pareto(n: int) -> None:
    rng = np.random.default_rng(0)
    x, y = rng.random(n), rng.random(n)
    ours = best_of(3, lambda: pareto_front_2d(x, y))
    xl, yl = x.tolist(), y.tolist()
    baseline = best_of(1, lambda: python_front(xl, yl))
    assert sorted(pareto_front_2d(x, y).tolist()) == sorted(python_front(xl, yl))
    print(
        f"pareto front of {n:,} random points: {ours:.3f} s "
        f"(plain-Python sweep {baseline:.3f} s, {baseline / ours:.1f}x faster)"
    )


def bench_import() -> None:
    pools = sorted((REFDATA / "llmpp" / "pool").glob("*.jsonl.gz"))
    if len(pools) != 3:
        print(f"pool import: skipped, reference data not found under {REFDATA}")
        return

    def parse_only() -> int:
        count = 0
        for path in pools:
            with gzip.open(path, "rt") as handle:
                count += sum(1 for line in handle if json.loads(line))
        return count

    count = parse_only()
    baseline = best_of(3, parse_only)
    runs = []
    for _ in range(3):
        with tempfile.TemporaryDirectory() as folder:
            project = Project(Path(folder) / "bench.nasproj")
            start = time.perf_counter()
            import_files(project, pools)
            runs.append(time.perf_counter() - start)
            project.close()
    ours = min(runs)
    print(
        f"import of the {count:,} pool architectures: {ours:.2f} s "
        f"({count / ours:,.0f} arch/s; json.loads of the same lines alone {baseline:.2f} s, "
        f"import costs {ours / baseline:.1f}x that)"
    )


def bench_sample_and_export(counts: list[int]) -> None:
    """``sample -n N`` into a new project should take time linear in N, and exporting the N
    as JSON memory far below the file's size (it streams; only their ids are held)."""
    per_arch = {}
    for count in counts:
        with tempfile.TemporaryDirectory() as folder:
            project = Project(Path(folder) / "bench.nasproj")
            runner = JobRunner(project)
            start = time.perf_counter()
            job = runner.submit(
                "sample", "bench", sample_job, task="wmt14ende", count=count, seed=0
            )
            added = runner.wait(job)
            sampled = time.perf_counter() - start
            runner.shutdown()
            per_arch[count] = sampled / added
            target = Path(folder) / "all.json"
            tracemalloc.start()
            start = time.perf_counter()
            export(project, "wmt14ende", None, "json", target)
            exported = time.perf_counter() - start
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            print(
                f"sample {added:,} into a project: {sampled:.1f} s "
                f"({per_arch[count] * 1e6:.0f} us/arch); export them as JSON: {exported:.1f} s "
                f"(under tracemalloc), peak {peak / 1e6:.1f} MB for a "
                f"{target.stat().st_size / 1e6:.0f} MB file"
            )
            project.close()
    first, last = counts[0], counts[-1]
    print(
        f"time per architecture at {last:,} / at {first:,}: "
        f"{per_arch[last] / per_arch[first]:.2f} (1 = linear)"
    )


def synthetic_table(n: int, seed: int = 0) -> pd.DataFrame:
    """A ``Project.table``-shaped frame of ``n`` made-up architectures (benchmark data only):
    latency, GFLOPs, parameters and a BLEU from three sources."""
    rng = np.random.default_rng(seed)
    gflops = rng.uniform(1.5, 5.5, n)
    return pd.DataFrame(
        {
            "origin": "synthetic",
            "gflops": gflops,
            "params": gflops * 1.6e7,
            "latency_ms@bench": gflops * 20 + rng.normal(0, 5, n),
            "bleu_valid": 22 + 3 * np.log(gflops) + rng.normal(0, 0.6, n),
            "source:bleu_valid": rng.choice(["llmas", "llm", "distilled"], n),
        },
        index=pd.Index([f"{i:016x}" for i in range(n)], name="id"),
    )


def _timed(fn: Callable[[], object], widget, repeats: int) -> list[float]:
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        widget.grab()  # includes painting every point
        app.processEvents()
        times.append(time.perf_counter() - start)
    return times


def time_pareto_redraw(n: int, repeats: int = 5) -> tuple[list[float], list[float]]:
    """Seconds per ``ParetoView.set_table`` + paint of ``n`` points, and per bare
    ``ScatterPlotItem.setData`` + paint of the same points (the floor pyqtgraph sets).

    The view gets two different tables in turn: it skips redrawing points that did not change.
    """
    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication

    from nasstudio.gui.pareto_view import ParetoView
    from nasstudio.gui.view_state import ViewState

    app = QApplication.instance() or QApplication([])
    tables = [synthetic_table(n, seed) for seed in (0, 1)]
    table = tables[0]
    view = ParetoView(ViewState())
    view.resize(*VIEW_SIZE)
    view.show()
    view.set_axes("latency_ms@bench", "bleu_valid")
    turns = iter(range(repeats))
    ours = _timed(lambda: view.set_table(tables[next(turns) % 2]), view, repeats)
    bare = pg.PlotWidget()
    bare.resize(*VIEW_SIZE)
    bare.show()
    scatter = pg.ScatterPlotItem(size=7, pen=None, brush=pg.mkBrush("#0072B2"))
    bare.addItem(scatter)
    x = table["latency_ms@bench"].to_numpy()
    y = table["bleu_valid"].to_numpy()
    baseline = _timed(lambda: scatter.setData(x, y), bare, repeats)
    view.close()
    bare.close()
    app.processEvents()
    return ours, baseline


def bench_view(n: int) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    ours, baseline = time_pareto_redraw(n)
    print(
        f"Pareto view redraw with {n:,} points: {statistics.median(ours) * 1e3:.0f} ms median "
        f"(bare pyqtgraph ScatterPlotItem.setData of the same points "
        f"{statistics.median(baseline) * 1e3:.0f} ms, ratio "
        f"{statistics.median(ours) / statistics.median(baseline):.2f})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--view-points", type=int, default=100_000)
    parser.add_argument("--sample", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--skip-view", action="store_true", help="no Qt part")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, {os.cpu_count()} cores")
    bench_pareto(args.points)
    bench_import()
    bench_sample_and_export(args.sample)
    if not args.skip_view:
        bench_view(args.view_points)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
