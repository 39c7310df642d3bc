"""How responsive the window stays while jobs run, with 30,000 architectures in the project.

  python benchmarks/bench_gui.py [--archs 30000] [--steps 40] [--idle-s 5] [--latency-archs 5]

Opens the main window (offscreen unless QT_QPA_PLATFORM says otherwise) on a temporary project
whose demo task has --archs sampled architectures, and measures with a QTimer heartbeat every
5 ms the stalls of the GUI event loop: the gap between two beats minus the interval (max, 99th
percentile and median), in three phases of the same process:

- idle: the window shown, no job running (the baseline);
- training: a real ``train_job`` (worker process, synthetic demo corpus, the smallest
  architecture, --steps steps) from its submission until its BLEU is on the Pareto view, the
  reload of the task's table after its results were recorded included;
- latency: a ``latency_job`` (worker process) measuring --latency-archs architectures, the
  Pareto view's x axis being that latency.

It also prints the runs of Python's cyclic garbage collector (after ``gc.freeze()``, as the app
does after start-up), how long the browser's and the Pareto view's ``set_table`` kept the GUI
thread at each reload, and the time from a job's yielded record to its point on the Pareto
view: each measurement carries the time it was taken (its provenance), and its point counts
as shown once the view's plot items hold it.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

HEARTBEAT_MS = 5


def build_project(path: Path, count: int) -> None:
    from nasstudio.space import get_space
    from nasstudio.store import KNOWN_TASKS, Project

    with Project(path) as project:
        task = project.ensure_task(KNOWN_TASKS["demo"])
        space, seed, added = get_space(task.space), 0, 0
        while added < count:  # sampled with repeats: draw until there are enough distinct ones
            archs = space.sample_many(count - added, seed)
            added += len(project.add_architectures(task.name, archs, f"bench (seed {seed})"))
            seed += 1


class Heartbeat:
    """Beats every ``interval_ms`` on the GUI thread; the stalls are the late beats."""

    def __init__(self, interval_ms: int = HEARTBEAT_MS) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.interval_ms = interval_ms
        self.timer = QTimer(interval=interval_ms)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self._beat)
        self.beats: list[float] = []

    def _beat(self) -> None:
        self.beats.append(time.perf_counter())

    def start(self) -> None:
        self.beats.clear()
        self.timer.start()

    def stop(self) -> np.ndarray:
        """The stall of each beat, in ms."""
        self.timer.stop()
        return np.diff(np.asarray(self.beats)) * 1000 - self.interval_ms


class CollectorPauses:
    """How long each run of Python's cyclic garbage collector took, per generation."""

    def __init__(self) -> None:
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses[info["generation"]].append(time.perf_counter() - self._started)

    def describe(self) -> str:
        parts = [
            f"generation {g}: {len(p)} runs, longest {1000 * max(p, default=0):.1f} ms"
            for g, p in self.pauses.items()
        ]
        return "cyclic GC during the phases: " + "; ".join(parts)


def run_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Run the event loop (as the app does) until ``predicate`` holds."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop, check = QEventLoop(), QTimer(interval=20)
    deadline = time.monotonic() + timeout_s
    check.timeout.connect(lambda: (predicate() or time.monotonic() > deadline) and loop.quit())
    check.start()
    loop.exec()
    check.stop()
    if not predicate():
        raise TimeoutError(f"{what}: not within {timeout_s:.0f} s")


class RecordToPoint:
    """Times each measurement a job yields from its taking to its point on the Pareto view."""

    def __init__(self, window) -> None:
        self.window = window
        # arch id -> when its measurement was taken, and whether it is a BLEU (the y axis:
        # its point leaves the strip for the plot) or a cost (x: the point appears)
        self.pending: dict[str, tuple[float, bool]] = {}
        self.delays: list[float] = []
        window.session.bridge.job_event.connect(self._on_event)

    def _on_event(self, event) -> None:
        from nasstudio.jobs.records import Measurements

        for record in event.payload if isinstance(event.payload, list) else [event.payload]:
            if event.kind == "partial" and isinstance(record, Measurements):
                for row in record.rows:
                    bleu = row.metric.startswith("bleu")
                    self.pending[row.arch_id] = (row.provenance["time"], bleu)

    def check(self) -> None:
        """After the Pareto view took a new table: which pending points it now holds."""
        now = time.time()
        plotted = set(self.window.pareto.plotted_ids())
        drawn = plotted | set(self.window.pareto.unscored_ids())
        for arch_id, (taken, bleu) in list(self.pending.items()):
            if arch_id in (plotted if bleu else drawn):
                self.delays.append(now - taken)
                del self.pending[arch_id]


def timed_reloads(window, record_to_point: RecordToPoint) -> dict[str, list[float]]:
    """Record how long each view's set_table keeps the GUI thread (the window calls them in
    two turns of the event loop), and check for new points after the Pareto view's."""
    spent: dict[str, list[float]] = {"browser": [], "pareto": []}
    for name, view in (("browser", window.browser), ("pareto", window.pareto)):
        original = view.set_table

        def timed(*args, original=original, name=name, **kwargs) -> None:
            started = time.perf_counter()
            original(*args, **kwargs)
            spent[name].append(time.perf_counter() - started)
            if name == "pareto":
                record_to_point.check()

        view.set_table = timed
    return spent


def describe(name: str, stalls: np.ndarray, seconds: float) -> str:
    if stalls.size == 0:
        return f"  {name:<10} no beats"
    p99, p50 = np.percentile(stalls, [99, 50])
    return (
        f"  {name:<10} {seconds:6.1f} s {stalls.size + 1:7,} beats   max {stalls.max():7.1f}   "
        f"p99 {p99:6.1f}   median {p50:5.2f}   beats late >50 ms: {(stalls > 50).sum()}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--archs", type=int, default=30_000)
    parser.add_argument("--steps", type=int, default=40, help="training steps")
    parser.add_argument("--idle-s", type=float, default=5.0, help="seconds of the baseline")
    parser.add_argument("--latency-archs", type=int, default=5)
    args = parser.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    folder = Path(tempfile.mkdtemp(prefix="nasstudio-bench-gui-"))
    os.environ["XDG_CACHE_HOME"] = str(folder / "cache")  # the workers inherit it

    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from nasstudio.gui.main_window import MainWindow
    from nasstudio.jobs import JobState
    from nasstudio.metrics.latency import device_name
    from nasstudio.store import BLEU_VALID, LATENCY_MS

    started = time.perf_counter()
    build_project(folder / "bench.nasproj", args.archs)
    print(f"project of {args.archs:,} architectures built in {time.perf_counter() - started:.1f} s")
    app = QApplication.instance() or QApplication(sys.argv[:1])
    settings = QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings)
    window.show()
    started = time.perf_counter()
    window.open_project(folder / "bench.nasproj")
    run_until(lambda: window.browser.model.rowCount() == args.archs, 120, "first table")
    run_until(lambda: window.pareto.plotted_count() + len(window.pareto.unscored_ids()), 60, "plot")
    print(f"window open, table shown in {time.perf_counter() - started:.2f} s")
    gc.freeze()  # as the app does after start-up: long-lived objects out of full collections
    collector = CollectorPauses()
    record_to_point = RecordToPoint(window)
    reloads = timed_reloads(window, record_to_point)
    heartbeat = Heartbeat()
    panel = window.train_panel
    panel.form.set_values(
        {
            "corpus/kind": "demo",
            "budget/kind": "max_steps",
            "budget/max_steps": args.steps,
            "config/eval_every": max(args.steps // 2, 1),
            "config/eval_sentences": 8,
            "config/beam": 1,
            "config/max_tokens": 2048,
            "config/warmup_steps": 10,
            "executor": "process",
            "device": "cpu",
            "latency/repeats": 5,
        }
    )
    table = window.project.table("demo")
    by_cost = table["gflops"].astype(float).sort_values().index.tolist()
    lines = [f"heartbeat every {HEARTBEAT_MS} ms; stall = gap between beats minus that, in ms"]

    heartbeat.start()
    t0 = time.perf_counter()
    run_until(lambda: time.perf_counter() - t0 >= args.idle_s, args.idle_s + 10, "idle")
    lines.append(describe("idle", heartbeat.stop(), time.perf_counter() - t0))

    window.view.selection = by_cost[:1]
    heartbeat.start()
    t0 = time.perf_counter()
    [run] = panel.train_selected()
    run_until(lambda: run.finished and by_cost[0] in window.pareto.plotted_ids(), 600, "training")
    seconds = time.perf_counter() - t0
    lines.append(describe("training", heartbeat.stop(), seconds))
    assert run.state == JobState.DONE.value, run.message
    assert window.view.y_axis == BLEU_VALID
    training_delays = list(record_to_point.delays)

    window.view.x_axis = f"{LATENCY_MS}@{device_name('cpu')}"
    window.view.selection = by_cost[1 : 1 + args.latency_archs]
    heartbeat.start()
    t0 = time.perf_counter()
    latency = panel.measure_latency()
    run_until(lambda: latency.finished and not record_to_point.pending, 600, "latency")
    lines.append(describe("latency", heartbeat.stop(), time.perf_counter() - t0))
    assert latency.state == JobState.DONE.value, latency.message
    latency_delays = record_to_point.delays[len(training_delays) :]

    print("\n".join(lines))
    print(collector.describe())
    for name, spent in reloads.items():
        print(
            f"{name} set_table on the GUI thread ({args.archs:,} rows): {len(spent)} times, "
            f"median {1000 * statistics.median(spent):.0f} ms, max {1000 * max(spent):.0f} ms"
        )
    for what, delays in (("training BLEU", training_delays), ("latency", latency_delays)):
        if delays:
            print(
                f"record -> point on the Pareto view, {what}: {len(delays)} record(s), "
                f"median {statistics.median(delays):.2f} s, min {min(delays):.2f} s, "
                f"max {max(delays):.2f} s"
            )
    window.close()
    app.processEvents()


if __name__ == "__main__":  # worker processes are spawned: they import this module again
    main()
