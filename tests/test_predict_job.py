"""predict_job runs any Predictor over architectures of a task, in a worker process, and the
runner records what it predicts."""

from nasstudio.jobs import JobRunner, JobState
from nasstudio.predict.base import Predictor, predict_job
from nasstudio.space import get_space
from nasstudio.store import KNOWN_TASKS
from tests.jobfns import WidthPredictor


def test_predict_job_records_each_prediction_and_logs_failures(project):
    project.ensure_task(KNOWN_TASKS["wmt14ende"])
    archs = get_space("hat-wmt").sample_many(40, seed=2)
    project.add_architectures("wmt14ende", archs, origin="test")
    predictor = WidthPredictor()
    assert isinstance(predictor, Predictor)
    runner = JobRunner(project)
    job = runner.submit(
        "predict",
        "Width",
        predict_job,
        predictor=predictor,
        task="wmt14ende",
        arch_ids=[a.id for a in archs],
        batch_size=16,
    )
    predicted = runner.wait(job, timeout=120)
    runner.shutdown()
    assert project.job(job).state == JobState.DONE
    wide = [a for a in archs if a.encoder_embed_dim == 640]
    assert 0 < len(wide) < len(archs) and predicted == len(archs) - len(wide)
    table = project.table("wmt14ende")
    for arch in archs:
        value = table.loc[arch.id].get("pred:bleu_valid@width/10")
        if arch in wide:
            assert value != value  # NaN: no prediction stored
        else:
            assert value == arch.encoder_embed_dim / 10
            (row,) = project.predictions(arch.id, "wmt14ende")
            assert row.predictor_kind == "fitted" and row.provenance == {"rule": "width"}
    log = "\n".join(project.job_log(job))
    assert log.count("no prediction: too wide") == len(wide)
