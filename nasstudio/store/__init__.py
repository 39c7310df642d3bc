"""The project store (one SQLite file), its importers and exporters."""

from nasstudio.store.owners import JobOwner, this_process
from nasstudio.store.project import (
    BLEU_TEST,
    BLEU_TEST_TOKENIZED,
    BLEU_VALID,
    GFLOPS,
    KNOWN_TASKS,
    LATENCY_MS,
    PARAMS,
    PARAMS_NO_EMB,
    JobRecord,
    Measurement,
    Prediction,
    Project,
    ProxyIteration,
    ProxySample,
    SearchGeneration,
    SearchMember,
    StoredProxy,
    Task,
)
from nasstudio.store.schema import SCHEMA_VERSION, SchemaError

__all__ = [
    "BLEU_TEST",
    "BLEU_TEST_TOKENIZED",
    "BLEU_VALID",
    "GFLOPS",
    "KNOWN_TASKS",
    "LATENCY_MS",
    "PARAMS",
    "PARAMS_NO_EMB",
    "SCHEMA_VERSION",
    "JobOwner",
    "JobRecord",
    "Measurement",
    "Prediction",
    "Project",
    "ProxyIteration",
    "ProxySample",
    "SchemaError",
    "SearchGeneration",
    "SearchMember",
    "StoredProxy",
    "Task",
    "this_process",
]
