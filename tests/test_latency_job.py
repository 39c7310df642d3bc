"""The latency job: HAT-protocol measurements recorded per architecture, cancel between them."""

import pytest

from nasstudio.jobs import JobHandle, JobRunner, JobState
from nasstudio.jobs.latency import MEASURED_SOURCE, latency_job
from nasstudio.metrics import device_name
from nasstudio.model import largest_architecture, smallest_architecture
from nasstudio.space import get_space
from nasstudio.store import KNOWN_TASKS, LATENCY_MS

SPACE = get_space("tiny-cpu")
ARCHS = [smallest_architecture(SPACE), largest_architecture(SPACE)]
# One thread and few repeats: fast, and the other processes of a busy machine matter less.
QUICK = {"beam": 2, "repeats": 3, "warmup": 1, "threads": 1}


@pytest.fixture
def demo(project):
    project.ensure_task(KNOWN_TASKS["demo"])
    project.add_architectures("demo", ARCHS, origin="test")
    return project


def test_each_architecture_is_measured_and_recorded_with_its_protocol(demo):
    runner = JobRunner(demo)
    events = []
    runner.subscribe(events.append)
    ids = [a.id for a in ARCHS]
    job = runner.submit("latency", "Latency", latency_job, task="demo", arch_ids=ids, **QUICK)
    estimates = runner.wait(job, timeout=60)
    runner.shutdown()
    assert demo.job(job).state == JobState.DONE
    assert [e.payload.rows[0].arch_id for e in events if e.kind == "partial"] == ids
    assert len([e for e in events if e.kind == "progress"]) >= len(ids)

    device = device_name("cpu")
    column = f"{LATENCY_MS}@{device}"
    table = demo.table("demo")
    for arch_id in ids:
        (m,) = [m for m in demo.measurements(arch_id, "demo") if m.metric == LATENCY_MS]
        estimate = estimates[arch_id]
        assert m.source == MEASURED_SOURCE and m.device == device
        assert m.value == pytest.approx(estimate.total_ms) == table.loc[arch_id, column]
        assert m.std is not None and m.std >= max(estimate.encoder_std_ms, estimate.decoder_std_ms)
        p = m.provenance
        assert p["encoder_ms"] + p["decoder_ms"] == pytest.approx(m.value)
        assert p["encoder_std_ms"] == estimate.encoder_std_ms
        assert (p["beam"], p["repeats"], p["warmup"], p["threads"]) == (2, 3, 1, 1)
        assert p["vocab_size"] == KNOWN_TASKS["demo"].vocab_size
        assert "30-token source" in p["protocol"] and p["torch"] and p["time"] > 0
    # Three plus three layers of width 128 against one plus one of 64: slower.
    assert estimates[ids[1]].total_ms > estimates[ids[0]].total_ms


def test_a_cancel_between_architectures_keeps_the_ones_measured(demo):
    runner = JobRunner(demo)
    ids = [a.id for a in ARCHS]
    runner.subscribe(lambda e: e.kind == "partial" and runner.cancel(e.job_id))
    job = runner.submit("latency", "Latency", latency_job, task="demo", arch_ids=ids, **QUICK)
    runner.wait(job, timeout=120)
    runner.shutdown()
    assert demo.job(job).state == JobState.CANCELLED
    measured = {m.arch_id for a in ids for m in demo.measurements(a) if m.metric == LATENCY_MS}
    # The job may have measured one more while the cancel was on its way: all are kept.
    assert ids[0] in measured and measured == set(ids[: len(measured)])


def test_unknown_ids_and_tasks_are_refused_before_anything_is_measured(demo):
    handle = JobHandle(1, lambda event: None)
    with pytest.raises(KeyError, match="not in task 'demo': nope"):
        next(latency_job(handle, demo, "demo", [ARCHS[0].id, "nope"], **QUICK))
    with pytest.raises(KeyError, match="no task 'wmt14ende'"):
        next(latency_job(handle, demo, "wmt14ende", [ARCHS[0].id], **QUICK))
    assert not [m for a in ARCHS for m in demo.measurements(a.id) if m.metric == LATENCY_MS]
