"""LLM-PP prompt: default sections per task (golden files), versions, demonstrations, storage."""

import gzip
import os
from dataclasses import replace
from pathlib import Path

import pytest

from nasstudio.metrics import efficiency
from nasstudio.predict.llm.prompt import (
    Demonstration,
    DemoSettings,
    DemoStrategy,
    PromptError,
    ablation_variants,
    current_prompt,
    default_prompt,
    default_sections,
    load_prompt,
    read_example_pairs,
    save_prompt,
    select_demonstrations,
)
from nasstudio.space import get_space, to_arch_info
from nasstudio.store import KNOWN_TASKS, Task
from tests.llm_server import _config, fake_bleu

GOLDEN = Path(__file__).parent / "golden"
# NASSTUDIO_UPDATE_GOLDEN=1 rewrites the golden files after an intended change of the texts.
UPDATE = os.environ.get("NASSTUDIO_UPDATE_GOLDEN") == "1"
EXAMPLES = (
    ("A man rides a bike.", "Ein Mann fährt Fahrrad."),
    ("Two dogs play.", "Zwei Hunde spielen."),
)


def pool_for(task: Task, n: int = 6, seed: int = 3) -> list[Demonstration]:
    archs = get_space(task.space).sample_many(n + 1, seed)
    return [
        Demonstration(
            a,
            efficiency(a, task.vocab_size).gflops,
            None if i == n else fake_bleu(_config(to_arch_info(a))),
        )
        for i, a in enumerate(archs)
    ]


def rendered(prompt, pool) -> str:
    *demos, query = pool
    messages = prompt.messages(query, demos)
    body = "\n\n".join(f"=== {m['role']}\n{m['content']}" for m in messages)
    return f"version: {prompt.version}\n\n{body}\n"


@pytest.mark.parametrize(
    ("task", "examples"),
    [
        ("wmt14ende", ()),
        ("wmt14enfr", ()),
        ("wmt19ende", ()),
        ("demo", ()),
        ("wmt14ende", EXAMPLES),
    ],
    ids=["wmt14ende", "wmt14enfr", "wmt19ende", "generic", "wmt14ende-examples"],
)
def test_rendering_matches_the_golden_file(task, examples):
    spec = KNOWN_TASKS[task]
    prompt = default_prompt(spec, examples)
    text = rendered(prompt, pool_for(spec))
    name = f"prompt_{task}{'_examples' if examples else ''}.txt"
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} changed; see the module docstring"


def test_the_messages_follow_the_documented_layout():
    spec = KNOWN_TASKS["wmt14enfr"]
    pool = pool_for(spec)
    system, user = default_prompt(spec).messages(pool[-1], pool[:-1])
    assert system["role"] == "system" and "WMT'14 English-French" in system["content"]
    content = user["content"]
    assert content.startswith("1. The task is WMT'14 English-French")
    assert "Hyperparameter definitions:\n" in content and "Demonstrations:\n" in content
    assert content.endswith("GFLOPS: " + f"{pool[-1].gflops:.1f}" + "\nBLEU: ")
    # every HAT key has a definition, and -1/1/2 of arbitrary attention are explained
    definitions = default_sections().definitions
    for key in to_arch_info(pool[0].arch):
        assert key.split(":")[0] + ":" in definitions
    assert "-1 the last encoder layer, 1 the last two, 2 the last three" in definitions
    assert content.count("\nBLEU: ") == 7  # six demonstrations and the query


def test_the_generic_prompt_names_the_projects_task():
    task = Task("mycorpus", 8000, "hat-wmt", "Icelandic-English news")
    prompt = default_prompt(task)
    assert "Icelandic-English news" in prompt.render_sections().system
    assert "{" not in prompt.render_sections().system


def test_version_covers_the_sections_not_the_query():
    spec = KNOWN_TASKS["wmt14ende"]
    prompt = default_prompt(spec)
    pool = pool_for(spec)
    assert len(prompt.version) == 12
    assert prompt.messages(pool[0], pool) != prompt.messages(pool[1], pool)
    assert prompt.version == default_prompt(spec).version
    edited = prompt.with_sections(role=prompt.sections.role + " Be careful.")
    fewer = prompt.with_sections(demonstrations=DemoSettings(k=3))
    with_examples = replace(prompt, examples=EXAMPLES)
    versions = {prompt.version, edited.version, fewer.version, with_examples.version}
    assert len(versions) == 4
    # the other tasks' defaults differ in their variables, so in their versions
    assert default_prompt(KNOWN_TASKS["wmt19ende"]).version != prompt.version


def test_the_examples_instruction_is_left_out_without_examples_and_the_rest_renumbered():
    spec = KNOWN_TASKS["wmt14ende"]
    without = default_prompt(spec).render_sections().instructions
    with_pairs = default_prompt(spec, EXAMPLES).render_sections().instructions
    assert len(with_pairs) == len(without) + 1
    assert "   English: A man rides a bike.\n   German: Ein Mann fährt Fahrrad." in with_pairs[1]


def test_an_unknown_placeholder_names_the_section():
    prompt = default_prompt(KNOWN_TASKS["wmt14ende"])
    bad = prompt.with_sections(instructions=("Fine.", "Uses {langauge} here."))
    with pytest.raises(PromptError, match=r"instruction 2: unknown placeholder \{langauge\}"):
        bad.render_sections()
    # braces that are not placeholders need no escaping
    ok = prompt.with_sections(role="JSON like {} or { x } is fine for {task_name}")
    assert ok.render_sections().system == "JSON like {} or { x } is fine for WMT'14 English-German"


def test_bad_demonstration_settings_are_refused():
    with pytest.raises(PromptError, match="strategy must be one of random, spread, nearest"):
        DemoSettings(strategy="best")
    with pytest.raises(PromptError, match="k must be 0 or more"):
        DemoSettings(k=-1)


def test_demonstration_strategies():
    spec = KNOWN_TASKS["wmt14ende"]
    pool = pool_for(spec, n=20, seed=5)
    demos, queries = pool[:-1], pool[-5:]
    random_picks = [
        select_demonstrations(DemoSettings(4, DemoStrategy.RANDOM, 1), q, demos[:10])
        for q in queries
    ]
    # one seeded draw for every query whose pool is the same (the queries are not in it)
    assert all([d.arch.id for d in p] == [d.arch.id for d in random_picks[0]] for p in random_picks)
    assert (
        select_demonstrations(DemoSettings(4, "random", 2), queries[0], demos[:10])
        != (random_picks[0])
    )
    # the query itself is never its own demonstration
    for q in pool[:5]:
        chosen = select_demonstrations(DemoSettings(50, "random", 0), q, demos)
        assert q.arch.id not in {d.arch.id for d in chosen}
    spread = select_demonstrations(DemoSettings(5, "spread"), pool[-1], demos)
    costs = sorted(d.gflops for d in demos)
    assert spread[0].gflops == costs[0] and spread[-1].gflops == costs[-1]
    assert [d.gflops for d in spread] == sorted(d.gflops for d in spread)
    base = demos[3].arch
    near = replace(
        base, encoder_ffn_dims=(base.encoder_ffn_dims[0] + 8, *base.encoder_ffn_dims[1:])
    )
    nearest = select_demonstrations(DemoSettings(3, "nearest"), Demonstration(near, 1.0), demos)
    assert len(nearest) == 3 and nearest[-1] == demos[3]  # the nearest sits next to the query
    # the pool's order does not change what is chosen
    assert select_demonstrations(DemoSettings(4, "nearest"), pool[-1], demos[::-1]) == (
        select_demonstrations(DemoSettings(4, "nearest"), pool[-1], demos)
    )
    assert select_demonstrations(DemoSettings(0), pool[-1], demos) == []


def test_ablation_variants():
    prompt = default_prompt(KNOWN_TASKS["wmt14ende"], EXAMPLES)
    variants = dict(ablation_variants(prompt, ks=(1, 5, 10)))
    n = len(prompt.sections.instructions)
    assert list(variants) == [
        *(f"without instruction {i}" for i in range(1, n + 1)),
        "no instructions",
        "no definitions",
        "k=1",
        "k=5",
    ]
    assert len({p.version for p in variants.values()} | {prompt.version}) == len(variants) + 1
    user = variants["no instructions"].messages(*_one_query())[1]["content"]
    assert user.startswith("Hyperparameter definitions:")
    assert (
        "Hyperparameter definitions"
        not in variants["no definitions"].messages(*_one_query())[1]["content"]
    )
    assert variants["k=1"].name.endswith("(k=1)")


def _one_query():
    pool = pool_for(KNOWN_TASKS["wmt14ende"])
    return pool[-1], pool[:-1]


def test_prompts_are_stored_by_version_and_the_chosen_one_is_current(project):
    spec = project.ensure_task(KNOWN_TASKS["wmt14ende"])
    default = default_prompt(spec)
    assert current_prompt(project, spec.name).version == default.version
    edited = default_prompt(spec, EXAMPLES).with_sections(definitions="")
    version = save_prompt(project, edited)
    assert save_prompt(project, edited) == version  # saving again adds nothing
    assert len(project.prompts()) == 1
    assert load_prompt(project, version) == edited
    # a prompt a job used is not the current one until it is chosen
    assert current_prompt(project, spec.name).version == default.version
    save_prompt(project, edited, current=True)
    assert current_prompt(project, spec.name).version == version
    for _, variant in ablation_variants(edited):
        save_prompt(project, variant)
    assert current_prompt(project, spec.name).version == version
    save_prompt(project, default, current=True)
    assert current_prompt(project, spec.name).version == default.version
    save_prompt(project, edited, current=True)  # choosing an earlier prompt again
    assert current_prompt(project, spec.name).version == version
    with pytest.raises(KeyError, match="no prompt with version nope"):
        load_prompt(project, "nope")


def test_example_pairs_are_drawn_from_aligned_files(tmp_path):
    src, tgt = tmp_path / "train.en.gz", tmp_path / "train.de"
    lines = [f"sentence {i}" for i in range(100)]
    with gzip.open(src, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    tgt.write_text("\n".join(f"Satz {i}" if i % 10 else "" for i in range(100)) + "\n")
    pairs = read_example_pairs(src, tgt, n=3, seed=1)
    assert len(pairs) == 3 and pairs == read_example_pairs(src, tgt, n=3, seed=1)
    for s, t in pairs:
        assert s.split()[1] == t.split()[1] and t  # aligned, never an empty side
    tgt.write_text("only one line\n")
    with pytest.raises(PromptError, match="different numbers of lines"):
        read_example_pairs(src, tgt)
