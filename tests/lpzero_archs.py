"""Small LTS GPT-2 archs files for tests: tiny decoders in the archs.jsonl format, each larger
than the one before (more or equal layers and wider FFNs), with a validation perplexity that
falls as they grow. So, by construction, #params ranks them exactly as -valid ppl does."""

from __future__ import annotations

import json
from pathlib import Path


def tiny_arch(index: int) -> dict:
    n_layer = 1 + index // 4
    config = {
        "n_layer": n_layer,
        "d_model": 16,
        "n_head": [2] * n_layer,
        "d_inner": [16 + 8 * index] * n_layer,
        "d_embed": 16,
        "div_val": 1,
        "cutoffs": [],
        "n_token": 64,
        "tgt_len": 64,
        "tie_projs": [False],
    }
    return {"id": f"tiny_{index}", "model_config": config, "ppl": {"valid_ppl": 200.0 - 10 * index}}


def write_archs(path: Path, count: int = 8) -> Path:
    path.write_text("".join(json.dumps(tiny_arch(i)) + "\n" for i in range(count)))
    return path
