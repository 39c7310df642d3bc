"""LLM-PP over HTTP with the real openai client against tests/llm_server.py: retries,
concurrency, cache, cost, keys, failures and cancel."""

import asyncio
import json
import threading
import time

import pytest

from nasstudio.jobs import JobRunner, JobState
from nasstudio.jobs.async_executor import AsyncExecutor, background_loop
from nasstudio.jobs.records import Predictions
from nasstudio.predict.base import Predictor, to_predictions
from nasstudio.predict.llm import (
    LLMClient,
    LLMPredictor,
    LLMProfile,
    LLMRequestError,
    ProfileError,
    ProfileStore,
    ResponseCache,
    TaskArchitectures,
    default_prompt,
    llm_predict_job,
)
from nasstudio.predict.llm.client import PLACEHOLDER_KEY, request_api_key
from nasstudio.predict.prompt_jobs import check_connection
from nasstudio.space import get_space
from nasstudio.store import KNOWN_TASKS
from tests.llm_server import BROKEN_JSON, DROP, HTML_PAGE, FakeLLMServer, add_wmt_architectures

SECRET = "sk-test-0123456789abcdefSECRET"


@pytest.fixture
def runner(project):
    r = JobRunner(project, executors={"async": AsyncExecutor(background_loop())})
    yield r
    r.shutdown()


@pytest.fixture
def archs(project):
    """(measured ids, unmeasured ids) of task wmt14ende."""
    return add_wmt_architectures(project, measured=8, unmeasured=6)


def profile_for(server, **fields):
    return LLMProfile(
        "test",
        base_url=server.base_url,
        model="fake",
        concurrency=fields.pop("concurrency", 4),
        max_retries=fields.pop("max_retries", 3),
        **fields,
    )


def run_job(runner, project, ids, profile, tmp_path, **params):
    params.setdefault("cache_path", str(tmp_path / "cache.sqlite"))
    params.setdefault("retry_base_delay", 0.01)
    job = runner.submit(
        "llm",
        "LLM-PP",
        llm_predict_job,
        task="wmt14ende",
        arch_ids=ids,
        profile=profile,
        **params,
    )
    return job, runner.wait(job, timeout=60)


def llm_predictions(project, ids):
    return [p for i in ids for p in project.predictions(i) if p.predictor_kind == "llm"]


def test_predictions_are_recorded_with_their_provenance(project, runner, server, archs, tmp_path):
    _, unmeasured = archs
    profile = profile_for(server, price_input_per_1k=0.5, price_output_per_1k=2.0)
    job, summary = run_job(runner, project, unmeasured, profile, tmp_path)
    assert project.job(job).state == JobState.DONE
    assert (summary.predicted, summary.failed) == (6, 0)
    assert summary.usage.requests == server.requests == 6
    rows = llm_predictions(project, unmeasured)
    assert len(rows) == 6
    version = default_prompt(KNOWN_TASKS["wmt14ende"]).version
    for row in rows:
        assert (row.metric, row.predictor, row.prompt_version) == (
            "bleu_valid",
            "fake@test",
            version,
        )
        p = row.provenance
        assert p["answers"] == [f"{row.value}"] and p["temperature"] == 0.0
        assert p["cost"] == pytest.approx((p["input_tokens"] * 0.5 + p["output_tokens"] * 2) / 1000)
    # the job's cost is the sum of the predictions' costs, and the server's token counts
    assert summary.usage.cost == pytest.approx(sum(r.provenance["cost"] for r in rows))
    sent = sum(sum(len(m["content"]) for m in b["messages"]) // 4 + 1 for b in server.bodies)
    assert summary.usage.input_tokens == sent
    assert project.prompt(version)["sections"]["task"] == "wmt14ende"
    # the demonstrations are the measured architectures
    body = server.bodies[0]["messages"][1]["content"]
    assert body.count("\nBLEU: ") == 9 and body.endswith("BLEU: ")
    assert f"cost {summary.usage.cost:.4f}" in project.job_log(job)[-1]
    table = project.table("wmt14ende")
    assert table["pred:bleu_valid@fake@test"].notna().sum() == 6


def test_a_repeated_prediction_is_served_from_the_cache(project, runner, server, archs, tmp_path):
    _, ids = archs
    profile = profile_for(server, price_input_per_1k=1.0)
    run_job(runner, project, ids, profile, tmp_path)
    server.reset_counts()
    _, summary = run_job(runner, project, ids, profile, tmp_path)
    assert server.requests == 0
    assert summary.usage.cache_hits == 6 and summary.usage.cost == 0
    assert summary.predicted == 6
    again = [p for p in llm_predictions(project, ids) if p.provenance["cached"]]
    assert len(again) == 6 and all(p.provenance["cost"] == 0 for p in again)
    # another temperature is another question
    run_job(runner, project, ids[:2], profile_for(server, temperature=0.7), tmp_path)
    assert server.requests == 2
    # and use_cache=False asks again
    run_job(runner, project, ids[:1], profile, tmp_path, use_cache=False)
    assert server.requests == 3


def test_429_and_500_are_retried_with_backoff(project, runner, server, archs, tmp_path):
    _, ids = archs
    server.faults.extend([429, 500, 503])
    job, summary = run_job(runner, project, ids[:1], profile_for(server), tmp_path)
    assert summary.predicted == 1 and summary.usage.retries == 3
    assert server.requests == 4
    log = "\n".join(project.job_log(job))
    assert "HTTP 429" in log and "retry 1/3" in log and "retry 3/3" in log


def test_giving_up_after_max_retries_is_recorded_and_the_job_goes_on(
    project, runner, server, archs, tmp_path
):
    _, ids = archs
    server.faults.extend([500] * 3)
    job, summary = run_job(runner, project, ids[:1], profile_for(server, max_retries=2), tmp_path)
    # nothing predicted: the job failed, and says so
    record = project.job(job)
    assert summary is None and record.state == JobState.FAILED and server.requests == 3
    assert "none of the 1 architectures got a prediction" in record.error
    log = "\n".join(project.job_log(job))
    assert "gave up after 3 attempts: HTTP 500" in log and f"{ids[0]}: no prediction:" in log
    # one failure among several: the others are recorded
    server.faults.append(503)
    profile = profile_for(server, max_retries=0, concurrency=1)
    job, summary = run_job(runner, project, ids[1:4], profile, tmp_path)
    assert project.job(job).state == JobState.DONE
    assert (summary.predicted, summary.failed) == (2, 1)
    assert len(llm_predictions(project, ids[1:4])) == 2


def test_a_client_error_is_not_retried():
    async def ask(profile):
        async with LLMClient(profile, retry_base_delay=0.01) as client:
            return await client.complete([{"role": "user", "content": "hi"}])

    with FakeLLMServer() as server:
        server.faults.append(400)
        with pytest.raises(LLMRequestError, match="not retryable: HTTP 400") as failure:
            asyncio.run(ask(profile_for(server)))
        assert failure.value.attempts == 1 and failure.value.status == 400
        assert server.requests == 1


def test_concurrency_never_exceeds_the_profile(project, runner, archs, tmp_path):
    ids = [a.id for a in get_space("hat-wmt").sample_many(16, 9)]
    project.add_architectures("wmt14ende", get_space("hat-wmt").sample_many(16, 9), "test")
    with FakeLLMServer(delay=0.1) as server:
        _, summary = run_job(runner, project, ids, profile_for(server, concurrency=3), tmp_path)
        assert summary.predicted == 16
        assert server.max_in_flight == 3


def test_unreadable_answers_keep_the_raw_text(project, runner, server, archs, tmp_path):
    _, ids = archs
    long_answer = "I would rather not say. " + "Let me think about it. " * 2000  # 46 KB
    huge_answer = "no " * 30_000  # 90 KB
    server.faults.extend([long_answer, "BLEU: 150", huge_answer])
    profile = profile_for(server, concurrency=1)
    job, summary = run_job(runner, project, ids[:4], profile, tmp_path)
    assert (summary.predicted, summary.failed) == (1, 3)
    log = project.job_log(job)
    # kept whole in the job log, up to 64 KB (65,536 characters)
    assert any(repr(long_answer) in line for line in log)
    assert "no number within [0, 100]" in "\n".join(log)
    (huge,) = [line for line in log if "no no no" in line]
    assert f"{huge_answer[:65_536]}… [cut at 65,536 of 90,000 characters]" in huge


def test_a_body_that_is_not_a_chat_completion_is_retried(project, runner, server, archs, tmp_path):
    _, ids = archs
    # a proxy's HTML page and broken JSON, then good answers: retried like a 5xx
    server.faults.extend([HTML_PAGE, BROKEN_JSON])
    job, summary = run_job(runner, project, ids[:1], profile_for(server), tmp_path)
    assert project.job(job).state == JobState.DONE
    assert summary.predicted == 1 and summary.usage.retries == 2 and server.requests == 3
    log = "\n".join(project.job_log(job))
    assert "HTTP 200 with a body that is not a chat completion (text/html" in log
    assert "(application/json" in log
    # one that stays unreadable fails that architecture only, its body kept whole in the log
    # (three pages for two architectures of two attempts each: one of them gets two)
    server.faults.extend([HTML_PAGE] * 3)
    profile = profile_for(server, concurrency=1, max_retries=1)
    job, summary = run_job(runner, project, ids[1:3], profile, tmp_path)
    assert project.job(job).state == JobState.DONE
    assert (summary.predicted, summary.failed) == (1, 1)
    failure = next(line for line in project.job_log(job) if "no prediction" in line)
    assert "gave up after 2 attempts" in failure and HTML_PAGE.body in failure


def test_an_endpoint_that_is_down_stops_the_job_after_a_few_requests(
    project, runner, server, archs, tmp_path
):
    measured, unmeasured = archs
    server.faults.extend([DROP] * 1000)  # every connection closed without an answer
    profile = profile_for(server, concurrency=1, max_retries=1)
    job, summary = run_job(runner, project, measured + unmeasured, profile, tmp_path)
    record = project.job(job)
    assert summary is None and record.state == JobState.FAILED
    assert record.error.startswith(f"cannot reach {server.base_url}: ")
    assert "is the server running?" in record.error
    # 5 queries in a row failed (2 attempts each); at most 2 more were under way (2 x
    # concurrency start at once), and nothing was sent after
    assert server.requests <= (5 + 2) * 2
    failures = [line for line in project.job_log(job) if "no prediction" in line]
    assert len(failures) < 5 + 2  # not one line per architecture


def test_a_key_goes_over_plain_http_only_to_this_machine(monkeypatch):
    monkeypatch.setenv("NASSTUDIO_TEST_KEY", SECRET)
    with FakeLLMServer() as server:
        # a local server (llama.cpp, vLLM) gets the key over http, by name or address
        for host in ("127.0.0.1", "localhost"):
            local = LLMProfile(
                "local",
                base_url=server.base_url.replace("127.0.0.1", host),
                model="m",
                api_key_env="NASSTUDIO_TEST_KEY",
                send_key_to_custom_url=True,
            )
            assert asyncio.run(check_connection(local)).ok
        assert server.authorizations == [f"Bearer {SECRET}"] * 2
        # anywhere else over http, the key is refused before any connection: here through a
        # proxy, which does carry requests that have no key
        server.reset_counts()
        for variable in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(variable, server.root_url)
        for variable in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(variable, raising=False)
        keyless = LLMProfile("keyless", base_url="http://llm.example/v1", model="m")
        assert asyncio.run(check_connection(keyless)).ok
        assert server.seen == [("http://llm.example/v1/chat/completions", "Bearer not-needed")]
        monkeypatch.setenv("OPENAI_API_KEY", SECRET)
        plain = [
            LLMProfile("openai", base_url="http://api.openai.com/v1"),
            LLMProfile(
                "custom",
                base_url="http://llm.example/v1",
                model="m",
                api_key_env="NASSTUDIO_TEST_KEY",
                send_key_to_custom_url=True,
            ),
        ]
        for profile in plain:
            with pytest.raises(ProfileError, match="would travel in clear text"):
                LLMClient(profile)
            check = asyncio.run(check_connection(profile))  # the settings' Test connection
            assert not check.ok and "use an https:// base URL" in check.message
            assert SECRET not in check.message
        assert len(server.seen) == 1  # the keyless request only
        assert request_api_key(LLMProfile("openai")) == SECRET  # https is fine


def test_samples_give_mean_median_and_std(project, runner, server, archs, tmp_path):
    _, ids = archs
    answers = iter(["24.0", "no idea", "26.0", "25.0"])
    server.reply = lambda messages: next(answers)
    profile = profile_for(server, concurrency=1, temperature=0.8)
    _, summary = run_job(runner, project, ids[:1], profile, tmp_path, samples=4)
    assert summary.predicted == 1
    (row,) = llm_predictions(project, ids[:1])
    assert row.value == pytest.approx(25.0) and row.std == pytest.approx(1.0)
    p = row.provenance
    assert p["samples"] == 4 and p["median"] == 25.0
    assert sorted(p["answers"]) == ["24.0", "25.0", "26.0", "no idea"]
    assert any("no number" in problem for problem in p["problems"])


def test_cancel_keeps_the_predictions_already_received(project, runner, tmp_path):
    archs = get_space("hat-wmt").sample_many(40, 4)
    project.ensure_task(KNOWN_TASKS["wmt14ende"])
    project.add_architectures("wmt14ende", archs, "test")
    first = threading.Event()

    def on_event(event):
        if event.kind == "partial" and isinstance(event.payload, Predictions):
            first.set()  # predictions were recorded (the first partial result is the prompt)

    runner.subscribe(on_event)
    with FakeLLMServer(delay=0.3) as server:
        job = runner.submit(
            "llm",
            "LLM-PP",
            llm_predict_job,
            task="wmt14ende",
            arch_ids=[a.id for a in archs],
            profile=profile_for(server, concurrency=2),
            cache_path=str(tmp_path / "cache.sqlite"),
        )
        assert first.wait(30)
        asked = time.monotonic()
        runner.cancel(job)
        runner.wait(job, timeout=30)
        assert time.monotonic() - asked < 2.0
        assert project.job(job).state == JobState.CANCELLED
        kept = llm_predictions(project, [a.id for a in archs])
        assert 0 < len(kept) < 40
        time.sleep(0.5)  # nothing is still sending once the job has ended
        sent = server.requests
        time.sleep(0.5)
        assert server.requests == sent


def test_a_job_that_cannot_start_fails_with_the_reason(project, runner, server, archs, tmp_path):
    job, summary = run_job(runner, project, ["nope"], profile_for(server), tmp_path)
    record = project.job(job)
    assert summary is None and record.state == JobState.FAILED
    assert "architecture nope is not in task 'wmt14ende'" in record.error
    assert server.requests == 0 and record.worker.startswith("event loop in thread")


def test_the_key_stays_out_of_the_project_and_away_from_custom_urls(
    project, runner, server, archs, tmp_path, monkeypatch
):
    monkeypatch.setenv("NASSTUDIO_TEST_KEY", SECRET)
    _, ids = archs
    profile = profile_for(server, api_key_env="NASSTUDIO_TEST_KEY")
    job, _ = run_job(runner, project, ids[:2], profile, tmp_path)
    assert set(server.authorizations) == {f"Bearer {PLACEHOLDER_KEY}"}
    allowed = profile_for(server, api_key_env="NASSTUDIO_TEST_KEY", send_key_to_custom_url=True)
    server.faults.append(500)  # an error message passes through the log too
    job2, _ = run_job(runner, project, ids[2:4], allowed, tmp_path)
    assert f"Bearer {SECRET}" in server.authorizations
    project.close()
    for path in tmp_path.iterdir():  # project file, its WAL, the cache
        assert SECRET.encode() not in path.read_bytes(), path
    reopened = type(project)(project.path)
    for job_id in (job, job2):
        assert SECRET not in "\n".join(reopened.job_log(job_id))
        assert SECRET not in json.dumps(reopened.job(job_id).params)
    reopened.close()


def test_the_openai_endpoint_needs_a_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setitem(__import__("sys").modules, "keyring", None)  # no keyring either
    with pytest.raises(ProfileError, match="set the environment variable OPENAI_API_KEY"):
        request_api_key(LLMProfile("openai"))
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    assert request_api_key(LLMProfile("openai")) == SECRET
    assert request_api_key(LLMProfile("local", base_url="http://127.0.0.1:1/v1")) == (
        PLACEHOLDER_KEY
    )


def test_profiles_are_kept_as_json_without_keys(tmp_path):
    store = ProfileStore(tmp_path / "llm_profiles.json")
    assert {"openai", "local"} <= set(store.load())  # built-in profiles when there is no file
    mine = LLMProfile("mine", base_url="http://127.0.0.1:8080/v1", model="m", concurrency=8)
    store.save(mine)
    assert ProfileStore(store.path).get("mine") == mine
    store.delete("mine")
    with pytest.raises(ProfileError, match="no LLM profile 'mine'"):
        store.get("mine")
    store.path.write_text(json.dumps({"profiles": [{"name": "x", "api_key": "sk-1"}]}))
    with pytest.raises(ProfileError, match=r"profiles\[0\]: 'api_key' looks like an API key"):
        store.load()
    store.path.write_text(json.dumps({"profiles": [{"name": "x", "concurrency": 0}]}))
    with pytest.raises(ProfileError, match="profile 'x': concurrency must be 1 or more, got 0"):
        store.load()
    store.path.write_text("{not json")
    with pytest.raises(ProfileError, match=r"llm_profiles\.json: cannot read the profiles"):
        store.load()


def test_the_llm_predictor_fits_the_predictor_protocol(project, archs, tmp_path):
    measured, unmeasured = archs
    known = TaskArchitectures.load(project, "wmt14ende")
    prompt = default_prompt(KNOWN_TASKS["wmt14ende"])
    with FakeLLMServer() as server:
        predictor = LLMPredictor(
            profile_for(server),
            prompt,
            known.demonstrations(measured),
            vocab_size=KNOWN_TASKS["wmt14ende"].vocab_size,
            cache=ResponseCache(tmp_path / "cache.sqlite"),
        )
        assert isinstance(predictor, Predictor)
        queries = [known.archs[i] for i in unmeasured]
        results = predictor.predict(queries)
        assert [r.arch_id for r in results] == unmeasured and all(r.ok for r in results)
        again = predictor.predict(queries)
        assert [r.value for r in again] == [r.value for r in results]
        assert server.requests == 6 and all(r.cached == 1 for r in again)
    rows = to_predictions(predictor, "wmt14ende", results, prompt.version)
    assert {(r.predictor_kind, r.predictor) for r in rows} == {("llm", "fake@test")}
