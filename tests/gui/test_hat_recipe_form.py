"""The train form's Recipe combo: choosing HAT fills the fields with HAT's recipe, choosing the
defaults puts the CPU-friendly values back, and the choice persists like the other fields; the
supernet trains with HAT's SuperTransformer warm-up unless the user changed it."""

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QLabel

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


def set_by_keyboard(qtbot, form, label: str, text: str) -> None:
    """Replace the value of the field labelled ``label`` by typing, as a user does."""
    [spin] = [w.buddy() for w in form.findChildren(QLabel) if w.text() == label]
    spin.setFocus()
    spin.selectAll()
    qtbot.keyClicks(spin, text)
    qtbot.keyClick(spin, Qt.Key.Key_Enter)


def test_the_supernet_takes_hats_supertransformer_warmup_unless_it_was_changed(window, qtbot):
    panel = window.train_panel
    window.session.runner.slots["cpu"] = 0  # runs stay queued: only their settings matter here
    choose(qtbot, panel.form.recipe_combo, Qt.Key.Key_Down)
    assert "10,000" in panel.form.recipe_combo.toolTip()

    def queued_config(run) -> dict:
        return window.project.job(run.job_id).params["config"]

    window.browser.select_ids(window.project.table("demo").index[:1].tolist())
    [subnet] = panel.train_selected()
    supernet = panel.train_supernet()
    # HAT's configs/wmt14.en-de: subtransformer/common.yml warmup-updates 4000,
    # supertransformer/space0.yml warmup-updates 10000; the rest is the same recipe.
    assert queued_config(subnet)["warmup_steps"] == 4000
    assert queued_config(supernet)["warmup_steps"] == 10000
    assert (queued_config(supernet)["dropout"], queued_config(supernet)["max_steps"]) == (
        0.3,
        40000,
    )
    # A warm-up the user typed wins, as --warmup does in `nasstudio supernet train`.
    set_by_keyboard(qtbot, panel.form, "Warm-up steps", "6000")
    changed = panel.train_supernet()
    assert queued_config(changed)["warmup_steps"] == 6000
    for run in (subnet, supernet, changed):
        panel.cancel(run.job_id)
    qtbot.waitUntil(lambda: all(r.finished for r in panel.run_list()), timeout=5000)
