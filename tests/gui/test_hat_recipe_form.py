"""The train form's Recipe combo: choosing HAT fills the fields with HAT's recipe, choosing the
defaults puts the CPU-friendly values back, and the choice persists like the other fields."""

from PySide6.QtCore import QSettings, Qt

from nasstudio.gui.train_form import TrainForm
from nasstudio.train.config import TrainConfig


def choose(qtbot, combo, key: Qt.Key) -> None:
    """Pick the next (Down) or previous (Up) entry with the keyboard, as a user does."""
    combo.setFocus()
    qtbot.keyClick(combo, key)


def test_the_recipe_combo_fills_the_fields_and_persists(qtbot):
    form = TrainForm(QSettings())
    qtbot.addWidget(form)
    assert form.recipe_combo.currentData() == "default"
    assert "common.yml" in form.recipe_combo.itemData(1, Qt.ItemDataRole.ToolTipRole)
    choose(qtbot, form.recipe_combo, Qt.Key.Key_Down)
    assert form.recipe_combo.currentText() == "HAT (its configs' recipe)"
    config = form.config()
    # HAT's configs/wmt14.en-de/subtransformer/common.yml and test.sh, read by hand.
    assert (config["dropout"], config["attention_dropout"]) == (0.3, 0.1)
    assert (config["schedule"], config["warmup_steps"], config["max_steps"]) == (
        "cosine",
        4000,
        40000,
    )
    assert (config["clip_norm"], config["lr"], config["min_lr"]) == (0.0, 0.001, 1e-7)
    assert (config["beam"], config["length_penalty"], config["betas"]) == (4, 0.6, (0.9, 0.98))
    assert form.budget_combo.currentText() == "Steps"
    form.set_values({"config/lr": 5e-4})  # a field edited after the recipe keeps its value

    again = TrainForm(QSettings())
    qtbot.addWidget(again)
    assert again.recipe_combo.currentData() == "hat"
    assert (again.config()["dropout"], again.config()["lr"]) == (0.3, 5e-4)

    choose(qtbot, again.recipe_combo, Qt.Key.Key_Up)
    defaults, config = TrainConfig(), again.config()
    assert again.recipe_combo.currentData() == "default"
    assert (config["dropout"], config["schedule"], config["max_steps"]) == (
        defaults.dropout,
        defaults.schedule,
        defaults.max_steps,
    )
    assert (config["clip_norm"], config["length_penalty"]) == (defaults.clip_norm, 1.0)
