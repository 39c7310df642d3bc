"""Fuzzing every importer (llmas JSON lines, plain and gzip-compressed; HAT latency CSV; HAT
YAML) with damaged files: each import either succeeds or raises ImportFormatError naming the
file (and the line, where there is one), and a refused import leaves the project as it was."""

import gzip
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nasstudio.space import get_space, to_arch_info, to_yaml
from nasstudio.store import Project
from nasstudio.store.importers import HAT_LATENCY_COLUMNS, ImportFormatError, import_file
from tests.test_importers import dump

ARCHS = get_space("hat-wmt").sample_many(3, seed=8)
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Values a damaged file may hold where a number or a list should be.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
)

# What a damaged file may hold where a HAT value should be, as text.
value_texts = json_values.map(lambda v: json.dumps(v, default=str)) | st.sampled_from(
    ["9" * 5_000, "9" * 400, "[" * 5_000 + "]" * 5_000, "NaN", "-Infinity", "1e999", "", "[]"]
)

# Damage done to a file's bytes.
text_damage = st.sampled_from(
    [
        "truncate",
        "insert bytes",
        "drop a line",
        "deep nesting",
        "huge integer",
        "latin-1",
        "empty field",
        "nothing",
    ]
)


def llmas_record(arch, bleu=25.0):
    return {
        "scratch": {
            "arch_info": to_arch_info(arch),
            "valid_BLEU": bleu,
            "test_BLEU": bleu - 1,
            "overall_latency": 150.0,
            "total_flops": 3.1e9,
        },
        "HAT": {"valid_BLEU": bleu - 0.5, "test_BLEU": bleu - 1.5},
    }


@st.composite
def damaged(draw, raw: bytes) -> bytes:
    """``raw`` with one kind of damage at a drawn place."""
    kind = draw(text_damage)
    at = draw(st.integers(min_value=0, max_value=len(raw)))
    if kind == "truncate":
        return raw[:at]
    if kind == "insert bytes":
        return raw[:at] + draw(st.binary(min_size=1, max_size=8)) + raw[at:]
    if kind == "drop a line":
        lines = raw.split(b"\n")
        del lines[draw(st.integers(min_value=0, max_value=len(lines) - 1))]
        return b"\n".join(lines)
    if kind == "deep nesting":
        depth = draw(st.sampled_from([50, 5_000, 200_000]))
        return raw[:at] + b"[" * depth + b"]" * depth + raw[at:]
    if kind == "huge integer":
        return raw[:at] + b"9" * draw(st.sampled_from([30, 400, 5_000])) + raw[at:]
    if kind == "latin-1":
        return raw[:at] + "é".encode("latin-1") + raw[at:]
    if kind == "empty field":
        return raw.replace(b",", b",,", 1) if b"," in raw else raw
    return raw


@st.composite
def llmas_files(draw) -> bytes:
    """Lines of records whose values may be replaced by anything JSON holds, then damaged."""
    records = [llmas_record(arch, 20.0 + i) for i, arch in enumerate(ARCHS)]
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        record = draw(st.sampled_from(records))
        part = draw(st.sampled_from(["scratch", "HAT", "arch_info"]))
        lines = record["scratch"].get("arch_info")
        if part == "arch_info" and isinstance(lines, list) and lines:
            at = draw(st.integers(min_value=0, max_value=len(lines) - 1))
            # str(): an earlier draw may have replaced the lines by any JSON value
            lines[at] = f"{str(lines[at]).split(':')[0]}: {draw(value_texts)}"
        elif part != "arch_info" and record[part]:
            key = draw(st.sampled_from(sorted(record[part])))
            if draw(st.booleans()):
                record[part][key] = draw(json_values)
            else:
                del record[part][key]
    if draw(st.booleans()):  # an architecture repeated, with its own numbers or others
        records.append(llmas_record(ARCHS[0], draw(st.sampled_from([20.0, 21.0]))))
    raw = "".join(json.dumps(r) + "\n" for r in records).encode()
    return draw(damaged(raw))


@st.composite
def latency_files(draw) -> bytes:
    values = st.sampled_from(["640", "6", "1962.5", "0", "-1", "nan", "inf", "1e308", "", "x"])
    rows = [
        ",".join(draw(values) if draw(st.integers(0, 5)) == 0 else "5.5" for _ in range(14))
        for _ in range(draw(st.integers(min_value=0, max_value=4)))
    ]
    raw = "\n".join([",".join(HAT_LATENCY_COLUMNS), *rows]).encode() + b"\n"
    if draw(st.booleans()):
        raw += b'"' + b"y" * 140_000 + b'"\n'  # a field over csv's size limit
    return draw(damaged(raw))


@st.composite
def yaml_files(draw) -> bytes:
    lines = to_yaml(ARCHS[1]).splitlines()
    if draw(st.booleans()):
        at = draw(st.integers(min_value=0, max_value=len(lines) - 1))
        key = lines[at].split(":")[0]
        lines[at] = f"{key}: {draw(value_texts)}"
    return draw(damaged(("\n".join(lines) + "\n").encode()))


def check_import(project: Project, path, task=None) -> None:
    before = dump(project)
    try:
        import_file(project, path, task=task)
    except ImportFormatError as exc:
        assert exc.path == str(path)
        assert str(exc).startswith(f"{path}:")
        lines = len(path.read_bytes().split(b"\n")) if path.suffix != ".gz" else None
        assert exc.line is None or lines is None or 1 <= exc.line <= lines
        assert dump(project) == before


@pytest.fixture
def project(tmp_path):
    with Project(tmp_path / "fuzz.nasproj") as p:
        yield p


@FUZZ
@given(content=llmas_files())
def test_damaged_llmas_lines_give_clean_errors(project, tmp_path, content):
    path = tmp_path / "wmt14ende" / "train.jsonl"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(content)
    check_import(project, path)


@FUZZ
@given(content=llmas_files(), damage_compressed=st.booleans())
def test_damaged_gzip_pools_give_clean_errors(project, tmp_path, content, damage_compressed):
    path = tmp_path / "wmt14enfr.jsonl.gz"
    compressed = gzip.compress(content)
    if damage_compressed:  # a cut download
        compressed = compressed[: len(compressed) // 2]
    path.write_bytes(compressed)
    check_import(project, path)


@FUZZ
@given(content=latency_files())
def test_damaged_latency_tables_give_clean_errors(project, tmp_path, content):
    path = tmp_path / "wmt14ende_cpu_xeon_all.csv"
    path.write_bytes(content)
    check_import(project, path)


@FUZZ
@given(content=yaml_files())
def test_damaged_hat_yaml_gives_clean_errors(project, tmp_path, content):
    path = tmp_path / "subtransformer.yml"
    path.write_bytes(content)
    check_import(project, path, task="wmt14ende")


@FUZZ
@given(content=st.binary(max_size=300))
@pytest.mark.parametrize(
    "name", ["wmt14ende.jsonl", "wmt14ende.jsonl.gz", "wmt14ende_cpu.csv", "a.yml"]
)
def test_random_bytes_give_clean_errors(project, tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    check_import(project, path, task="wmt14ende" if name.endswith(".yml") else None)
