"""The prompt editor's llmas tab: an edited template is saved as a new version (a template that
loses its demonstrations placeholder is refused), and "Predict selected…" predicts with the
selected version, asking for the task-example corpus and the seed; the request the LLM gets is
llmas's, byte for byte against ../shared/data/llmpp/golden_llmas (LLM requests go to the tests'
own server, tests/llm_server.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QDialog

from nasstudio.cli import main
from nasstudio.gui import llm_dialogs
from nasstudio.gui.llm_actions import predicted_column
from nasstudio.jobs import JobState
from nasstudio.predict.llm import LLMProfile
from nasstudio.predict.llm.llmas import stored_templates
from nasstudio.store import Project
from nasstudio.store.importers import read_llmas
from tests.conftest import require_refdata
from tests.gui.conftest import table_shown

TEMPLATE = "gpt_scorer_concentrate_statement"


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.fixture
def split() -> Path:
    return require_refdata("llmpp", "seedarchs", "123", "wmt14ende")


@pytest.fixture
def project_path(tmp_path: Path, split: Path) -> Path:
    """llmas's wmt14ende seed-123 files and its templates, imported as a user does."""
    templates = require_refdata("llmpp", "instruction_templates", "wmt14ende")
    path = tmp_path / "llmas.nasproj"
    assert (
        main(["import", str(split / "train.jsonl"), str(split / "test.jsonl"), "-p", str(path)])
        == 0
    )
    assert main(["prompt", "import-llmas", str(templates), "-p", str(path)]) == 0
    return path


@pytest.fixture
def window(qtbot, project_path: Path):
    from nasstudio.gui.main_window import MainWindow

    with Project(project_path, readonly=True) as project:
        count = project.count_architectures("wmt14ende")
    win = MainWindow()
    qtbot.addWidget(win)
    assert win.open_project(project_path)
    win.show()
    qtbot.waitUntil(lambda: table_shown(win, count), timeout=5000)
    yield win
    win.close()


@pytest.fixture
def editor(window, server):
    """The prompt editor on its llmas tab, with the fake server's profile chosen."""
    actions = window.llm
    profile = LLMProfile("fake", base_url=server.base_url, model="fake-llm", concurrency=4)
    actions.profiles.save(profile)
    actions.choose_profile(profile.name)
    actions.dock.show()
    actions._sync()
    editor = actions.editor
    editor.tabs.setCurrentIndex(
        editor.tabs.indexOf(editor.llmas_list.parentWidget().parentWidget())
    )
    return editor


def _select(editor, version: str) -> None:
    rows = [
        editor.llmas_list.item(i).data(Qt.ItemDataRole.UserRole)
        for i in range(editor.llmas_list.count())
    ]
    editor.llmas_list.setCurrentRow([t.version for t in rows].index(version))


def _stored_version(project_path: Path, name: str) -> str:
    with Project(project_path, readonly=True) as project:
        (record,) = [r for r in project.prompts() if r["name"] == name]
    return record["version"]


def _type_line_at_end(qtbot, edit, text: str) -> None:
    edit.setFocus()
    edit.moveCursor(QTextCursor.MoveOperation.End)
    qtbot.keyClick(edit, Qt.Key.Key_Return)
    qtbot.keyClicks(edit, text)


def test_an_edited_template_is_saved_as_a_new_version(editor, window, qtbot, project_path):
    name = f"llmas/{TEMPLATE}"
    original = _stored_version(project_path, name)
    _select(editor, original)
    assert not editor.llmas_save_button.isEnabled()  # nothing edited yet
    text = editor.llmas_view.toPlainText()
    _type_line_at_end(qtbot, editor.llmas_view, "Answer with one number.")
    assert editor.llmas_save_button.isEnabled()
    assert not editor.llmas_predict_button.isEnabled()  # a prediction uses a stored version
    qtbot.mouseClick(editor.llmas_save_button, Qt.MouseButton.LeftButton)

    with Project(project_path, readonly=True) as project:
        records = [r for r in project.prompts() if r["name"] == name]
        assert records[0]["version"] == original  # the old one kept
        (edit,) = records[1:]
        assert edit["sections"]["template"] == text + "\nAnswer with one number."
        assert edit["sections"]["edited_from"] == original
        # llmas's cumulative ablation keeps llmas's own text.
        ablation = {t.name: t.version for t in stored_templates(project, "wmt14ende")}
    assert edit["version"] != original and ablation[name] == original
    # The list shows both versions, the new one selected, saved (nothing to save, can predict).
    assert editor.selected_llmas().version == edit["version"]
    assert editor.llmas_names().count(name) == 2
    assert f"edited from {original}" in editor.llmas_list.currentItem().text()
    assert not editor.llmas_save_button.isEnabled() and editor.llmas_predict_button.isEnabled()


def test_a_template_without_the_demonstrations_placeholder_is_refused(editor, qtbot, project_path):
    _select(editor, _stored_version(project_path, f"llmas/{TEMPLATE}"))
    with Project(project_path, readonly=True) as project:
        before = len(project.prompts())
    editor.llmas_view.setFocus()
    qtbot.keyClick(editor.llmas_view, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(editor.llmas_view, "Predict the BLEU.")
    qtbot.mouseClick(editor.llmas_save_button, Qt.MouseButton.LeftButton)
    assert editor.llmas_error.isVisible()
    message = editor.llmas_error.text()
    assert message.startswith(f"Not saved: llmas/{TEMPLATE}: not an llmas predictor template")
    assert "expected $$$seedarch_examples$$$" in message
    with Project(project_path, readonly=True) as project:
        assert len(project.prompts()) == before


def _golden(template: str) -> dict:
    golden = require_refdata("llmpp", "golden_llmas")
    entries = json.loads((golden / "index.json").read_text(encoding="utf-8"))
    (entry,) = [e for e in entries if e["task"] == "wmt14ende" and e["template"] == template]
    return {**entry, "text": (golden / entry["file"]).read_text(encoding="utf-8")}


def test_predict_selected_with_an_llmas_prompt_sends_llmas_s_request(
    editor, window, qtbot, server, split, project_path, monkeypatch
):
    golden = _golden(TEMPLATE)
    multi30k = require_refdata("multi30k")
    examples = (str(multi30k / "train.en.gz"), str(multi30k / "train.de.gz"))
    query = read_llmas(split / "test.jsonl", "wmt14ende").records[golden["test_index"]].arch.id
    version = _stored_version(project_path, f"llmas/{TEMPLATE}")
    _select(editor, version)
    window.browser.select_ids([query])

    # The dialog asks for the task-example corpus, the seed and the demonstrations.
    def fill_and_accept(dialog):
        dialog.example_edits[0].setText(examples[0])
        assert not dialog.buttons.button(dialog.buttons.StandardButton.Ok).isEnabled()
        dialog.example_edits[1].setText(examples[1])
        dialog.seed_spin.setValue(golden["seed"])
        dialog.demos_edit.setText(str(split / "train.jsonl"))
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(llm_dialogs.PredictDialog, "exec", fill_and_accept)
    started = []
    submit = window.session.submit
    monkeypatch.setattr(
        window.session, "submit", lambda *a, **k: started.append(submit(*a, **k)) or started[-1]
    )
    qtbot.mouseClick(editor.llmas_predict_button, Qt.MouseButton.LeftButton)
    (job_id,) = started
    qtbot.waitUntil(lambda: window.jobs.state(job_id) == JobState.DONE, timeout=20_000)
    (body,) = server.bodies
    assert body["messages"] == [{"role": "user", "content": golden["text"]}]
    # The prediction streams in like any LLM prediction: the Pareto view's y axis shows it.
    column = predicted_column(window.llm.profile())
    qtbot.waitUntil(lambda: window.pareto.axes()[1] == column, timeout=5000)
    qtbot.waitUntil(lambda: window.pareto.plotted_ids() == [query], timeout=5000)
    with Project(project_path, readonly=True) as project:
        (prediction,) = [p for p in project.predictions(query) if p.predictor_kind == "llm"]
    assert prediction.prompt_version == version
    assert prediction.provenance["llmas"]["example_line_indices"] == golden["example_line_indices"]

    # The next dialog starts from what was given (the corpus shared with Evaluate's fields).
    seen = {}

    def look_and_cancel(dialog):
        seen.update(fill=dialog.llmas_fill())
        return QDialog.DialogCode.Rejected

    monkeypatch.setattr(llm_dialogs.PredictDialog, "exec", look_and_cancel)
    qtbot.mouseClick(editor.llmas_predict_button, Qt.MouseButton.LeftButton)
    assert seen["fill"] == llm_dialogs.LlmasFill(
        examples, golden["seed"], str(split / "train.jsonl")
    )
    assert len(started) == 1
    monkeypatch.setattr(
        llm_dialogs.EvaluateDialog, "exec", lambda d: seen.update(evaluate=d.examples()) or 0
    )
    window.llm.evaluate()
    assert seen["evaluate"] == examples
