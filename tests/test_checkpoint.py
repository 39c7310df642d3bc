"""Checkpoints load with ``weights_only``: a file planted where a run keeps its checkpoint
never runs code, and a corrupt or unsafe one is named (the train jobs log it as a warning)
while the run starts over. Driven through the Trainer that ``train`` and ``supernet train``
resume with: a whole job costs seconds of corpus preparation and decoding."""

from pathlib import Path

import pytest
import torch

from nasstudio.model import TransformerMT
from nasstudio.train.config import TrainConfig
from nasstudio.train.trainer import EvalSet, Trainer
from tests.test_train import TINY

META = {"arch": TINY.id, "corpus": "test"}


class Planted:
    """Unpickling this calls ``Path.touch(marker)``: what a hostile checkpoint would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def plant(path: Path, marker: Path) -> None:
    torch.save({"state": {"step": 7}, "model": Planted(marker)}, path)
    # the plant is real: loading it the old way runs its code
    torch.load(path, weights_only=False)
    assert marker.exists()
    marker.unlink()


def trainer(path: Path) -> Trainer:
    """A trainer of TINY that keeps its checkpoint at ``path`` (resuming it when there)."""
    torch.manual_seed(0)
    model = TransformerMT(TINY, 32, pad_id=0, bos_id=1, eos_id=2)
    config = TrainConfig.from_dict({"max_steps": 4, "warmup_steps": 1})
    return Trainer(
        model, config, lambda epoch: [], EvalSet([], [], []), str, torch.device("cpu"), path, META
    )


def test_a_checkpoint_holds_only_what_weights_only_loads(tmp_path):
    path = tmp_path / "run.pt"
    first = trainer(path)
    first.state.step = 3
    first.save()
    payload = torch.load(path, weights_only=True)  # rng states and settings included
    assert payload["state"]["step"] == 3 and set(payload["rng"]) == {
        "python",
        "numpy",
        "torch",
        "cuda",
    }
    resumed = trainer(path)
    assert resumed.resumed and resumed.state.step == 3 and resumed.unreadable_checkpoint is None
    for name, weight in first.model.state_dict().items():
        assert torch.equal(weight, resumed.model.state_dict()[name])


@pytest.mark.parametrize("damage", ["planted", "cut short", "not a checkpoint"])
def test_a_bad_checkpoint_is_named_and_the_run_starts_over(tmp_path, damage):
    path = tmp_path / "run.pt"
    marker = tmp_path / "the-planted-code-ran"
    if damage == "planted":
        plant(path, marker)
    elif damage == "cut short":
        first = trainer(path)
        first.save()
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        torch.save({"model": [1, 2, 3]}, path)
    run = trainer(path)
    assert not marker.exists()
    assert not run.resumed and run.state.step == 0
    assert run.unreadable_checkpoint.startswith(f"{path}: ")
