"""The "HAT recipe" preset: its values against the numbers in HAT's configs, the CLI's
--recipe (explicit options override it), and the length penalty reaching beam search."""

from pathlib import Path

import pytest
import torch

from nasstudio.cli import main
from nasstudio.model import TransformerMT
from nasstudio.space import Architecture, get_space
from nasstudio.store import BLEU_TEST, KNOWN_TASKS, Project
from nasstudio.train.checkpoint import read_checkpoint_file
from nasstudio.train.config import TrainConfig, recipe_settings
from nasstudio.train.trainer import EvalSet, Trainer

# Read in mit-han-lab/hardware-aware-transformers:
# configs/wmt14.en-de/subtransformer/common.yml
HAT_SUBTRANSFORMER_COMMON_YML = {
    "dropout": 0.3,
    "attention-dropout": 0.1,
    "lr-scheduler": "cosine",
    "warmup-updates": 4000,
    "max-update": 40000,
    "clip-norm": 0.0,
    "max-lr": 0.001,
    "lr": 1e-7,
    "adam-betas": (0.9, 0.98),
    "weight-decay": 0.0,
    "label-smoothing": 0.1,
    "max-tokens": 4096,
}
# configs/wmt14.en-de/supertransformer/space0.yml: the same but for the warm-up
HAT_SUPERTRANSFORMER_SPACE0_YML = {**HAT_SUBTRANSFORMER_COMMON_YML, "warmup-updates": 10000}
# configs/wmt14.en-de/test.sh: generate.py --beam 4 --lenpen 0.6
HAT_TEST_SH = {"beam": 4, "lenpen": 0.6}


def as_train_config(hat: dict) -> dict:
    return {
        "dropout": hat["dropout"],
        "attention_dropout": hat["attention-dropout"],
        "schedule": hat["lr-scheduler"],
        "warmup_steps": hat["warmup-updates"],
        "max_steps": hat["max-update"],
        "clip_norm": hat["clip-norm"],
        "lr": hat["max-lr"],
        "min_lr": hat["lr"],
        "betas": hat["adam-betas"],
        "weight_decay": hat["weight-decay"],
        "label_smoothing": hat["label-smoothing"],
        "max_tokens": hat["max-tokens"],
        "beam": HAT_TEST_SH["beam"],
        "length_penalty": HAT_TEST_SH["lenpen"],
    }


def test_the_hat_recipe_has_the_numbers_of_hats_configs():
    assert recipe_settings("hat") == as_train_config(HAT_SUBTRANSFORMER_COMMON_YML)
    expected = as_train_config(HAT_SUPERTRANSFORMER_SPACE0_YML)
    assert recipe_settings("hat", supernet=True) == expected
    assert recipe_settings("default") == {}
    config = TrainConfig.from_dict(recipe_settings("hat"))  # a valid configuration
    assert (config.precision, config.accumulate, TrainConfig().length_penalty) == ("auto", 1, 1.0)


@pytest.fixture
def project_path(tmp_path, monkeypatch, tmp_path_factory):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    path = tmp_path / "p.nasproj"
    with Project(path) as project:
        project.ensure_task(KNOWN_TASKS["demo"])
        project.add_architectures("demo", [ARCH], origin="test")
    yield path
    torch.set_num_threads(previous)


ARCH = get_space("tiny-cpu").sample_many(1, seed=5)[0]


def test_train_with_the_hat_recipe_and_explicit_overrides(project_path, capsys):
    code = main(
        ["train", "-p", str(project_path), "--ids", ARCH.id, "--recipe", "hat", "--steps", "3",
         "--warmup", "2", "--beam", "1", "--max-tokens", "512", "--device", "cpu", "--json"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    with Project(project_path) as project:
        (bleu,) = [m for m in project.measurements(ARCH.id, "demo") if m.metric == BLEU_TEST]
    config = bleu.provenance["config"]
    # The recipe ...
    assert config["dropout"] == 0.3 and config["attention_dropout"] == 0.1
    assert (config["schedule"], config["clip_norm"], config["lr"]) == ("cosine", 0.0, 0.001)
    assert (config["min_lr"], config["length_penalty"]) == (1e-7, 0.6)
    # ... and the options given, which override it.
    assert (config["max_steps"], config["warmup_steps"], config["beam"]) == (3, 2, 1)
    assert config["max_tokens"] == 512
    # Trained as HAT trains a SubTransformer: inside the space's widest SuperTransformer.
    (checkpoint,) = Path(f"{project_path}.checkpoints").glob(f"{ARCH.id}-*.pt")
    payload = read_checkpoint_file(checkpoint)
    assert payload["model"]["position_table_widths"].tolist() == [128, 128]
    assert payload["meta"]["super_embed_dims"] == [128, 128]


def test_supernet_train_with_the_hat_recipe(project_path, tmp_path, capsys):
    out = tmp_path / "net.pt"
    code = main(
        ["supernet", "train", "-p", str(project_path), "--recipe", "hat", "--steps", "2",
         "--warmup", "1", "--max-tokens", "256", "--out", str(out), "--device", "cpu"]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    config = read_checkpoint_file(out)["meta"]["config"]
    assert (config["dropout"], config["schedule"], config["min_lr"]) == (0.3, "cosine", 1e-7)
    assert config["warmup_steps"] == 1


@pytest.mark.parametrize(
    ("command", "source"),
    [(["train"], "subtransformer/common.yml"), (["supernet", "train"], "space0.yml")],
)
def test_help_says_what_the_recipe_sets(capsys, command, source):
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--recipe {default,hat}" in text and source in text
    assert "dropout 0.3, attention_dropout 0.1, schedule cosine" in text
    assert "Explicit options override it" in text


def test_the_trainer_decodes_with_the_configured_length_penalty(monkeypatch):
    torch.manual_seed(0)
    model = TransformerMT(Architecture(16, 16, [16], [2], [16], [2], [2], [-1], 16), 12)
    penalties = []
    real = model.beam_search

    def beam_search(*args, **kwargs):
        penalties.append(kwargs["length_penalty"])
        return real(*args, **kwargs)

    monkeypatch.setattr(model, "beam_search", beam_search)
    config = TrainConfig(beam=4, length_penalty=0.6)
    trainer = Trainer(model, config, lambda epoch: [], EvalSet([]), str, torch.device("cpu"))
    trainer.translate([torch.tensor([[5, 6, 7, 2]])], beam=4)
    assert penalties == [0.6]
