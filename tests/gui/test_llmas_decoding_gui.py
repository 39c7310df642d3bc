"""The decoding preset in the GUI: chosen in the LLM settings dialog's combo, saved with the
profile, and counted in the prediction dialog's cost estimate."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialogButtonBox

from nasstudio.gui.llm_dialogs import PredictDialog
from nasstudio.gui.llm_settings import LLMSettingsDialog
from nasstudio.gui.prompt_tokens import TokenCount
from nasstudio.predict.llm import LLMProfile, ProfileStore


def _open(qtbot, store: ProfileStore, name: str) -> LLMSettingsDialog:
    dialog = LLMSettingsDialog(store, current=name)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def test_the_decoding_preset_is_chosen_saved_and_shown_again(qtbot, tmp_path):
    store = ProfileStore(tmp_path / "profiles.json")
    dialog = _open(qtbot, store, "local")
    form = dialog.form
    assert form.decoding.currentText() == "project"  # the default preset
    assert form.temperature.isEnabled() and form.max_tokens.isEnabled()
    tip = form.decoding.toolTip()
    assert "project: the profile's temperature and max tokens" in tip
    assert "llmas: llmas's gpt_scorer.py: max tokens 25" in tip and "asked again" in tip
    form.decoding.setFocus()
    qtbot.keyClick(form.decoding, Qt.Key.Key_Down)
    assert form.decoding.currentText() == "llmas"
    # llmas sends its own max tokens and no temperature: the profile's fields do not apply
    assert not form.temperature.isEnabled() and not form.max_tokens.isEnabled()
    qtbot.mouseClick(dialog.save_button, Qt.MouseButton.LeftButton)
    assert "Saved profile 'local'" in dialog.message_text()
    dialog.close()

    dialog = _open(qtbot, ProfileStore(store.path), "local")
    form = dialog.form
    assert form.decoding.currentText() == "llmas"
    assert not form.temperature.isEnabled()
    form.decoding.setFocus()
    qtbot.keyClick(form.decoding, Qt.Key.Key_Up)
    ok = dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok)
    qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)  # "Use this profile" saves it too
    assert ProfileStore(store.path).get("local").decoding == "project"
    assert ProfileStore(store.path).get("openai").decoding == "project"


def test_the_predict_dialogs_estimate_counts_llmas_tokens_and_asks(qtbot):
    # 10 requests of 1,000 input and at most 25 output tokens (llmas), at 1 per 1,000 tokens:
    # (10 * 1,000 + 10 * 25) / 1,000 = 10.25
    profile = LLMProfile(
        "p", decoding="llmas", max_tokens=16, price_input_per_1k=1.0, price_output_per_1k=1.0
    )
    dialog = PredictDialog(10, "the selection", profile, TokenCount(1000, "o200k_base"))
    qtbot.addWidget(dialog)
    text = dialog.estimate.text()
    assert "at most 10.2500 at the profile's prices (5 times that if every answer" in text
