"""The "llmas" decoding preset of a profile: llmas's max_tokens 25, no temperature (the
endpoint's default), and its answer rule (the first word read as a number, else the same request
asked again, at most LLMAS_MAX_ASKS times), against tests/llm_server.py."""

import json

import pytest

from nasstudio.cli import main
from nasstudio.jobs import JobRunner, JobState
from nasstudio.jobs.async_executor import AsyncExecutor, background_loop
from nasstudio.predict.llm import LLMProfile, ProfileError, ProfileStore, llm_predict_job
from nasstudio.predict.llm.client import LLMAS_MAX_ASKS
from nasstudio.predict.llm.parser import parse_llmas_answer
from nasstudio.store import Project
from tests.llm_server import (
    add_wmt_architectures,
    reply_by_architecture,
    reply_in_turn,
    write_seedarchs,
)
from tests.test_predict_evaluate import SMALL_ARCHS, SMALL_BLEU, SMALL_SPLITS

CHATTY = "Sure! Based on the demonstrations, I estimate the BLEU score."


@pytest.fixture
def runner(project):
    r = JobRunner(project, executors={"async": AsyncExecutor(background_loop())})
    yield r
    r.shutdown()


@pytest.fixture
def unmeasured(project):
    return add_wmt_architectures(project, measured=8, unmeasured=2)[1]


def llmas_profile(server, **fields):
    return LLMProfile("t", base_url=server.base_url, model="fake", decoding="llmas", **fields)


def predict(runner, project, ids, profile, tmp_path):
    job = runner.submit(
        "llm",
        "LLM-PP",
        llm_predict_job,
        task="wmt14ende",
        arch_ids=ids,
        profile=profile,
        cache_path=str(tmp_path / "cache.sqlite"),
        retry_base_delay=0.01,
    )
    return job, runner.wait(job, timeout=60)


def llm_rows(project, ids):
    return {i: p for i in ids for p in project.predictions(i) if p.predictor_kind == "llm"}


# --- the answer rule: gpt_scorer.py's extract_bleu_v1 (strip, split()[0], float) --------------


@pytest.mark.parametrize(
    ("answer", "value"),
    [
        ("27.3", 27.3),
        ("27.3 BLEU", 27.3),
        ("  26\n", 26.0),
        ("-3.5 is low", -3.5),  # any float: llmas checks no range
        ("250", 250.0),
        ("1e1", 10.0),
        ("BLEU: 27.3", None),  # the first word is "BLEU:"
        ("27.3,", None),  # float("27.3,") fails
        ("abc", None),
        ("", None),
        # llmas's float() takes "nan" and "inf" (and its MAE becomes nan); asked again here
        ("nan", None),
        ("inf", None),
    ],
)
def test_the_answer_rule_reads_the_first_word_as_a_number(answer, value):
    parsed = parse_llmas_answer(answer)
    if value is None:
        assert parsed.value is None and parsed.problem
    else:
        assert parsed.value == value and parsed.problem is None


# --- requests and asking again -------------------------------------------------------------------


def test_llmas_requests_carry_max_tokens_25_and_no_temperature(
    project, runner, server, unmeasured, tmp_path
):
    job, summary = predict(runner, project, unmeasured, llmas_profile(server), tmp_path)
    assert project.job(job).state == JobState.DONE and summary.predicted == 2
    assert len(server.bodies) == 2
    for body in server.bodies:
        assert body["max_tokens"] == 25 and "temperature" not in body
    for row in llm_rows(project, unmeasured).values():
        assert row.predictor == "fake@t+llmas"  # beside the project preset's fake@t
        p = row.provenance
        assert (p["decoding"], p["temperature"], p["max_tokens"], p["asks"]) == (
            "llmas",
            None,
            25,
            [1],
        )


def test_the_project_preset_stays_the_default_and_asks_once(
    project, runner, server, unmeasured, tmp_path
):
    assert LLMProfile("x").decoding == "project"
    server.reply = lambda messages: "The BLEU score is 27.4"
    profile = LLMProfile("t", base_url=server.base_url, model="fake")
    job, _ = predict(runner, project, unmeasured[:1], profile, tmp_path)
    assert [(b["temperature"], b["max_tokens"]) for b in server.bodies] == [(0.0, 16)]
    row = llm_rows(project, unmeasured)[unmeasured[0]]
    assert row.value == 27.4 and row.provenance["decoding"] == "project"
    assert row.predictor == "fake@t"
    assert "asks" not in row.provenance
    assert "answer rule" not in project.job_log(job)[-1]


def test_a_chatty_answer_is_asked_again_and_the_number_is_used(
    project, runner, server, unmeasured, tmp_path
):
    server.reply = reply_in_turn(CHATTY, "27.4")
    job, summary = predict(runner, project, unmeasured, llmas_profile(server), tmp_path)
    assert project.job(job).state == JobState.DONE
    assert (summary.predicted, summary.failed) == (2, 0)
    assert server.requests == 4  # each architecture: the chatty answer, then the number
    assert (summary.usage.asked_again, summary.usage.gave_up) == (2, 0)
    for row in llm_rows(project, unmeasured).values():
        assert row.value == 27.4
        p = row.provenance
        assert p["answers"] == [CHATTY, "27.4"] and p["values"] == [None, 27.4]
        assert p["asks"] == [2]
    assert (
        "llmas answer rule: asked again 2, gave up 0 (after 5 asks)" in (project.job_log(job)[-1])
    )
    # Run again: the answer used was cached, so nothing is sent nor asked again.
    server.reset_counts()
    job, summary = predict(runner, project, unmeasured, llmas_profile(server), tmp_path)
    assert server.requests == 0 and summary.usage.cache_hits == 2
    assert summary.usage.asked_again == 0


def test_an_always_chatty_answer_ends_in_a_reported_failure_after_the_bound(
    project, runner, server, unmeasured, tmp_path
):
    known = {a.id: a for a in project.architectures("wmt14ende")}
    chatty, fine = (known[i] for i in unmeasured)
    server.reply = reply_by_architecture({chatty: CHATTY, fine: "26.5"})
    job, summary = predict(runner, project, unmeasured, llmas_profile(server), tmp_path)
    assert project.job(job).state == JobState.DONE
    assert (summary.predicted, summary.failed) == (1, 1)
    assert LLMAS_MAX_ASKS == 5 and server.requests == 5 + 1
    assert (summary.usage.asked_again, summary.usage.gave_up) == (1, 1)
    rows = llm_rows(project, unmeasured)
    assert set(rows) == {fine.id} and rows[fine.id].value == 26.5  # no made-up value
    log = "\n".join(project.job_log(job))
    failure = next(line for line in project.job_log(job) if line.startswith(chatty.id))
    assert "no prediction: gave up after 5 asks: no answer started with a number" in failure
    assert failure.endswith("answers: " + "; ".join([repr(CHATTY)] * 5))
    assert "llmas answer rule: asked again 1, gave up 1 (after 5 asks)" in log


def test_a_job_whose_every_answer_gives_up_fails(project, runner, server, unmeasured, tmp_path):
    server.reply = lambda messages: CHATTY
    job, summary = predict(runner, project, unmeasured[:1], llmas_profile(server), tmp_path)
    record = project.job(job)
    assert summary is None and record.state == JobState.FAILED and server.requests == 5
    assert "none of the 1 architectures got a prediction" in record.error


# --- the preset is kept with the profile ---------------------------------------------------------


def test_profiles_keep_the_preset_and_old_files_without_it_load(tmp_path):
    path = tmp_path / "profiles.json"
    path.write_text(json.dumps({"profiles": [{"name": "old", "model": "m", "max_tokens": 8}]}))
    store = ProfileStore(path)
    assert store.get("old").decoding == "project" and store.get("old").max_tokens == 8
    store.save(LLMProfile("new", decoding="llmas"))
    assert ProfileStore(path).get("new").decoding == "llmas"
    with pytest.raises(ProfileError, match="decoding must be 'project' or 'llmas', got 'greedy'"):
        LLMProfile("x", decoding="greedy")


def test_cli_profile_save_sets_the_preset_and_predict_reports_the_asks(capsys, tmp_path, server):
    profiles = str(tmp_path / "profiles.json")
    args = ["--profiles", profiles, "--base-url", server.base_url, "--model", "fake"]
    assert main(["profile", "save", "mine", *args, "--decoding", "llmas"]) == 0
    assert "saved profile 'mine'" in capsys.readouterr().out
    assert main(["profile", "save", "mine", "--profiles", profiles, "--concurrency", "2"]) == 0
    capsys.readouterr()
    assert main(["profile", "list", "--profiles", profiles]) == 0
    listed = capsys.readouterr().out
    assert f"mine: fake at {server.base_url}, decoding llmas" in listed
    assert "llmas: llmas's gpt_scorer.py: max tokens 25" in listed
    project_path = tmp_path / "p.nasproj"
    with Project(project_path) as project:
        ids = add_wmt_architectures(project, measured=6, unmeasured=1)[1]
    server.reply = reply_in_turn("I think", "25.5")
    cache = str(tmp_path / "c.sqlite")
    predict_args = ["predict", "llm", "-p", str(project_path), "--ids", *ids, "--cache", cache]
    code = main([*predict_args, "--profile", "mine", "--profiles", profiles])
    out = capsys.readouterr().out
    assert code == 0 and "llmas answer rule: asked again 1, gave up 0 (after 5 asks)" in out
    assert [b["max_tokens"] for b in server.bodies] == [25, 25]
    with Project(project_path) as project:
        (row,) = llm_rows(project, ids).values()
    assert row.value == 25.5 and row.provenance["decoding"] == "llmas"


def test_evaluate_with_the_llmas_preset_reports_the_asks(capsys, tmp_path, server):
    folder = tmp_path / "seedarchs"
    write_seedarchs(folder, "wmt14ende", SMALL_ARCHS, SMALL_BLEU, {1: SMALL_SPLITS[1]})
    server.reply = reply_in_turn(CHATTY, "25")
    project_path = tmp_path / "e.nasproj"
    endpoint = ["--base-url", server.base_url, "--model", "small", "--decoding", "llmas"]
    code = main(
        ["evaluate", "-p", str(project_path), "--seedarchs", str(folder), "--no-cache", *endpoint]
    )
    assert code == 0, capsys.readouterr().err
    # the 4 test architectures: a chatty answer each, then 25 (truth 20, 22, 24, 26)
    assert server.requests == 8
    row = next(line for line in capsys.readouterr().out.splitlines() if "small@" in line)
    assert "2.50 (0.00)" in row and row.endswith("n=4/4")  # MAE (5 + 3 + 1 + 1) / 4
    assert row.startswith(f"small@{server.base_url.split('/')[2]}+llmas ")
    with Project(project_path) as project:
        (job,) = project.jobs()
        log = "\n".join(project.job_log(job.id))
    assert "llmas answer rule: asked again 4, gave up 0 (after 5 asks)" in log
