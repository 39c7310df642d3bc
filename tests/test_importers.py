import gzip
import json
import os
import sqlite3
import subprocess
import sys
import time

import pytest

from nasstudio.space import get_space, to_arch_info, to_yaml
from nasstudio.store import BLEU_VALID, GFLOPS, Project
from nasstudio.store.importers import (
    HAT_LATENCY_COLUMNS,
    ImportFormatError,
    import_file,
    import_files,
    read_hat_yaml_files,
)
from tests.conftest import require_refdata


def dump(project):
    """Every row of every table: what 'unchanged' means."""
    conn = sqlite3.connect(project.path)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    out = {t: sorted(map(repr, conn.execute(f"SELECT * FROM {t}"))) for t in tables}
    conn.close()
    return out


def llmas_lines(refdata_file, n=None):
    return refdata_file.read_text().splitlines()[:n]


@pytest.fixture
def seed_file():
    return require_refdata("llmpp", "seedarchs", "123", "wmt14ende", "train.jsonl")


def test_llmas_seed_file_imports_ground_truth_and_baselines(project, seed_file):
    report = import_file(project, seed_file)
    assert report.task == "wmt14ende" and report.architectures_added == 10
    first = json.loads(llmas_lines(seed_file)[0])
    table = project.table("wmt14ende")
    arch_id = table.index[table[BLEU_VALID] == first["scratch"]["valid_BLEU"]][0]
    row = table.loc[arch_id]
    assert row["bleu_test"] == first["scratch"]["test_BLEU"]
    assert row[GFLOPS] == pytest.approx(first["scratch"]["total_flops"] / 1e9)
    assert row["latency_ms@llmas"] == pytest.approx(first["scratch"]["overall_latency"])
    assert row["pred:bleu_valid@HAT"] == first["HAT"]["valid_BLEU"]
    assert row["pred:bleu_test@Neuron-wise MoS"] == first["Neuron-wise MoS"]["test_BLEU"]


def test_reimporting_a_file_changes_nothing(project, seed_file):
    import_file(project, seed_file)
    before = dump(project)
    import_file(project, seed_file)
    after = dump(project)
    for table in ("architectures", "task_architectures", "predictions", "tasks"):
        assert len(after[table]) == len(before[table]), table
    assert len(after["measurements"]) == len(before["measurements"])


def test_all_seed_files_and_pools_import_quickly(project):
    seeds = sorted(require_refdata("llmpp", "seedarchs").glob("*/*/*.jsonl"))
    pools = sorted(require_refdata("llmpp", "pool").glob("*.jsonl.gz"))
    assert len(seeds) == 18 and len(pools) == 3
    start = time.perf_counter()
    reports = import_files(project, seeds + pools)
    elapsed = time.perf_counter() - start
    print(f"imported {sum(r.architectures_read for r in reports)} architectures in {elapsed:.1f} s")
    for task in ("wmt14ende", "wmt14enfr", "wmt19ende"):
        table = project.table(task)
        assert len(table) == 8530
        assert table[BLEU_VALID].notna().sum() == 30
        assert table[GFLOPS].notna().all()


def edited(line, change):
    record = json.loads(line)
    change(record)
    return json.dumps(record)


def write_gz(path, lines):
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    "corrupt, message",
    [
        (lambda line: line[:-5], "not valid JSON"),
        (
            lambda line: edited(line, lambda r: r["scratch"].update(valid_BLEU="24.3")),
            "'valid_BLEU' must be a number",
        ),
        (lambda line: line.replace('"valid_BLEU": ', '"valid_BLEU": 1', 1), "'valid_BLEU' is 1"),
        (
            lambda line: line.replace(
                "encoder-embed-dim-subtransformer: 512", "encoder-embed-dim-subtransformer: 768"
            ).replace(
                "encoder-embed-dim-subtransformer: 640", "encoder-embed-dim-subtransformer: 768"
            ),
            "encoder_embed_dim is 768",
        ),
        (
            lambda line: line.replace("decoder-layer-num-subtransformer", "decoder-layers", 1),
            "missing key 'decoder-layer-num-subtransformer'",
        ),
        (lambda line: '{"other": 1}', "expected an object with 'scratch'"),
    ],
)
def test_a_malformed_llmas_line_names_file_and_line_and_changes_nothing(
    project, seed_file, tmp_path, corrupt, message
):
    import_file(project, seed_file)
    before = dump(project)
    lines = llmas_lines(require_refdata("llmpp", "seedarchs", "456", "wmt14ende", "test.jsonl"))
    lines[6] = corrupt(lines[6])
    bad = tmp_path / "wmt14ende" / "test.jsonl"
    bad.parent.mkdir()
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(ImportFormatError, match=message) as info:
        import_file(project, bad)
    assert str(info.value).startswith(f"{bad}:7: ")
    assert info.value.line == 7
    assert dump(project) == before


def test_a_bad_pool_file_in_a_batch_leaves_the_whole_batch_out(project, seed_file, tmp_path):
    pool = require_refdata("llmpp", "pool", "wmt14enfr.jsonl.gz")
    with gzip.open(pool, "rt") as handle:
        lines = handle.read().splitlines()[:100]
    lines[41] = lines[41].replace('"total_flops": ', '"total_flops": -')
    bad = tmp_path / "wmt14enfr.jsonl.gz"
    write_gz(bad, lines)
    before = dump(project)
    with pytest.raises(ImportFormatError, match=r"wmt14enfr.jsonl.gz:42: 'total_flops' is -"):
        import_files(project, [seed_file, bad])
    assert dump(project) == before


def test_an_unreadable_gzip_is_reported(project, tmp_path):
    bad = tmp_path / "wmt14ende.jsonl.gz"
    bad.write_bytes(b"not gzip at all")
    with pytest.raises(ImportFormatError, match="cannot read the file"):
        import_file(project, bad)
    assert project.tasks() == []


def test_hat_latency_csv_imports_as_a_device_table(project):
    path = require_refdata("hat", "latency", "wmt14ende_cpu_xeon_all.csv")
    report = import_file(project, path)
    assert report.latency_rows == 2000
    tables = project.latency_tables()
    assert tables.loc[0, "device"] == "cpu_xeon" and tables.loc[0, "task"] == "wmt14ende"
    assert tables.loc[0, "rows"] == 2000


@pytest.mark.parametrize(
    "edit, line, message",
    [
        (
            lambda rows: rows.__setitem__(0, rows[0].replace("latency_mean_encoder", "enc")),
            1,
            "expected the header",
        ),
        (
            lambda rows: rows.__setitem__(12, rows[12].replace(",", ",x", 1)),
            13,
            "'encoder_layer_num' must be a number",
        ),
        (lambda rows: rows.__setitem__(30, rows[30].rsplit(",", 1)[0]), 31, "expected 14 fields"),
        (lambda rows: rows.__setitem__(5, rows[5].replace(",", ",-", 1)), 6, "expected 0 to"),
    ],
)
def test_a_malformed_latency_row_is_rejected(project, tmp_path, edit, line, message):
    rows = require_refdata("hat", "latency", "wmt14ende_gpu_titanxp_all.csv").read_text()
    rows = rows.splitlines()
    edit(rows)
    bad = tmp_path / "wmt14ende_gpu_titanxp_all.csv"
    bad.write_text("\n".join(rows) + "\n")
    before = dump(project)
    with pytest.raises(ImportFormatError, match=message) as info:
        import_file(project, bad)
    assert info.value.line == line
    assert dump(project) == before
    assert len(HAT_LATENCY_COLUMNS) == 14


def test_hat_yaml_files_import_and_a_bad_one_names_its_line(project, tmp_path):
    archs = get_space("hat-wmt").sample_many(3, seed=5)
    paths = []
    for i, arch in enumerate(archs):
        paths.append(tmp_path / f"a{i}.yml")
        paths[-1].write_text(to_yaml(arch))
    parsed = read_hat_yaml_files(project, paths, task="wmt14ende")
    parsed.write(project)
    report = parsed.report
    assert report.architectures_added == 3
    assert set(project.table("wmt14ende").index) == {a.id for a in archs}

    before = dump(project)
    text = to_yaml(get_space("hat-wmt").sample_many(1, seed=9)[0])
    bad = tmp_path / "bad.yml"
    bad.write_text(
        text.replace("decoder-layer-num-subtransformer: ", "decoder-layer-num-subtransformer: x")
    )
    with pytest.raises(ImportFormatError, match=r"bad.yml:6: .*must be an integer"):
        import_file(project, bad, task="wmt14ende")
    iwslt = tmp_path / "iwslt.yml"
    iwslt.write_text(text.replace("[4,", "[16,").replace("[8,", "[16,"))
    with pytest.raises(ImportFormatError, match="not in search space"):
        import_file(project, iwslt, task="wmt14ende")
    assert dump(project) == before


def test_unknown_file_types_and_tasks_get_clear_errors(project, tmp_path):
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    with pytest.raises(ImportFormatError, match=r"expected \.jsonl"):
        import_file(project, other)
    pool = tmp_path / "mytask.jsonl"
    pool.write_text("")
    with pytest.raises(ValueError, match="give its vocabulary size"):
        import_file(project, pool)


def test_an_import_reads_its_files_before_it_takes_the_write_lock(tmp_path):
    path = tmp_path / "p.nasproj"
    Project(path).close()
    fifo = tmp_path / "wmt14ende.jsonl"
    os.mkfifo(fifo)
    process = subprocess.Popen(
        [sys.executable, "-m", "nasstudio", "import", "--project", str(path), str(fifo)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with open(fifo, "w") as writer:  # opens once the import reads it
            for arch in get_space("hat-wmt").sample_many(20, seed=2):
                writer.write(json.dumps({"scratch": {"arch_info": to_arch_info(arch)}}) + "\n")
            writer.flush()
            # Mid-read, another writer gets the project at once.
            other = sqlite3.connect(path, timeout=0.5, isolation_level=None)
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            other.close()
        _, err = process.communicate(timeout=120)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 0, err
    with Project(path) as project:
        assert project.count_architectures("wmt14ende") == 20
