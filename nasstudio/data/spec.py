"""A corpus named by a small JSON-able spec, so jobs, the CLI and settings can refer to one.

Specs: ``{"kind": "demo"}`` (the built-in synthetic pair), ``{"kind": "multi30k", "path":
folder, "src": "en", "tgt": "de"}``, and ``{"kind": "folder", "path": folder, "src": ...,
"tgt": ...}`` for files named ``{train,valid,test}.{lang}[.gz]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import platformdirs

from nasstudio.data.corpus import Corpus, CorpusError, corpus_from_folder, multi30k
from nasstudio.data.demo import write_demo_corpus

CORPUS_KINDS = ("demo", "multi30k", "folder")
DEMO_TASK = "demo"


def open_corpus(spec: Mapping[str, Any], cache_dir: str | Path | None = None) -> Corpus:
    """The corpus a spec names; the demo is written once under ``cache_dir``."""
    kind = spec.get("kind")
    if kind == "demo":
        base = Path(cache_dir or platformdirs.user_cache_dir("nasstudio"))
        folder = base / "corpora" / f"demo-seed{int(spec.get('seed', 0))}"
        return write_demo_corpus(folder, seed=int(spec.get("seed", 0)))
    if kind in ("multi30k", "folder"):
        missing = [key for key in ("path", "src", "tgt") if not spec.get(key)]
        if missing:
            raise CorpusError(f"corpus spec {dict(spec)}: missing {', '.join(missing)}")
        opener = multi30k if kind == "multi30k" else corpus_from_folder
        return opener(spec["path"], spec["src"], spec["tgt"])
    raise CorpusError(f"corpus kind {kind!r}: expected one of {', '.join(CORPUS_KINDS)}")


def task_name(spec: Mapping[str, Any]) -> str:
    """The corpus' own project task: results on it are recorded there, or in a task named
    after the space and vocabulary when this one has others (``train.result_task``)."""
    if spec.get("kind") == "demo":
        return DEMO_TASK
    stem = Path(str(spec.get("path", "corpus"))).name.lower() or "corpus"
    return f"{stem}-{spec.get('src', '')}{spec.get('tgt', '')}"
