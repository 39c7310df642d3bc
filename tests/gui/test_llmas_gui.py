"""llmas's templates in the GUI: the prompt editor's llmas tab imports a template folder and
shows each template's text; the ablation table lists llmas's cumulative templates beside the
project's leave-one-out variants, each marked with its kind (LLM requests go to the tests' own
server, tests/llm_server.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QFileDialog

from nasstudio.gui import llm_dialogs
from nasstudio.jobs import JobState
from nasstudio.predict.llm import LLMProfile
from tests.conftest import require_refdata
from tests.llm_server import write_seedarchs
from tests.test_predict_evaluate import SMALL_ARCHS, SMALL_BLEU

# llmas's ablation in the paper's order: each published template is the one before plus lines.
CUMULATIVE = [
    "gpt_scorer_no_instruction",
    "gpt_scorer_task_defn",
    "gpt_scorer_search_dimension_defn",
    "gpt_scorer_dataset_name",
    "gpt_scorer_dataset_examples",
    "gpt_scorer_architecture_paper",
    "gpt_scorer_gigaflops",
    "gpt_scorer_concentrate_statement",
]
LEAVE_ONE_OUT = [
    *(f"without instruction {i}" for i in range(1, 6)),
    "no instructions",
    "no definitions",
    "k=1",
    "k=3",
    "k=5",
]


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.fixture
def templates() -> Path:
    return require_refdata("llmpp", "instruction_templates", "wmt14ende")


@pytest.fixture
def llm(window, server):
    actions = window.llm
    profile = LLMProfile("fake", base_url=server.base_url, model="fake-llm", concurrency=4)
    actions.profiles.save(profile)
    actions.choose_profile(profile.name)
    actions.dock.show()
    return actions


def _import_through_the_button(qtbot, editor, folder: Path, monkeypatch) -> list[str]:
    statuses: list[str] = []
    editor.status.connect(statuses.append)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))
    qtbot.mouseClick(editor.llmas_import_button, Qt.MouseButton.LeftButton)
    return statuses


def test_the_llmas_tab_imports_a_folder_and_shows_each_template(llm, qtbot, templates, monkeypatch):
    editor = llm.editor
    assert editor.llmas_names() == []
    statuses = _import_through_the_button(qtbot, editor, templates, monkeypatch)
    assert editor.llmas_names() == [f"llmas/{name}" for name in CUMULATIVE]
    assert "8 llmas templates of wmt14ende" in statuses[-1]
    assert "skipped default_flops" in statuses[-1]
    for row, name in enumerate(CUMULATIVE):
        editor.llmas_list.setCurrentRow(row)
        assert editor.llmas_view.toPlainText() == (templates / name).read_text(encoding="utf-8")
        assert not editor.llmas_save_button.isEnabled()  # as stored: nothing to save
    # The history of the editor's task lists the project's own prompts only.
    assert editor.versions() == ["default"]
    # Importing again keeps the same prompts.
    _import_through_the_button(qtbot, editor, templates, monkeypatch)
    assert editor.llmas_names() == [f"llmas/{name}" for name in CUMULATIVE]


def test_a_folder_without_templates_says_so(llm, qtbot, tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    statuses = _import_through_the_button(qtbot, llm.editor, tmp_path / "empty", monkeypatch)
    assert "Not imported" in statuses[-1] and "no llmas predictor template" in statuses[-1]
    assert llm.editor.llmas_names() == []


def test_the_ablation_table_marks_llmas_cumulative_and_leave_one_out_rows(
    llm, window, qtbot, tmp_path, templates, monkeypatch
):
    llm.editor.import_llmas(str(templates))
    seedarchs = tmp_path / "seedarchs"
    write_seedarchs(seedarchs, "wmt14ende", SMALL_ARCHS, SMALL_BLEU, {1: ([0, 1, 2], [3, 4, 5])})
    source, target = tmp_path / "src.en", tmp_path / "tgt.de"
    source.write_text("".join(f"source {i}\n" for i in range(8)))
    target.write_text("".join(f"target {i}\n" for i in range(8)))

    # Evaluate ablations… asks for the folder, the task and the task-example corpus.
    def fill_and_accept(dialog):
        dialog.folder_edit.setText(str(seedarchs))
        dialog.task_combo.setCurrentText("wmt14ende")
        dialog.example_edits[0].setText(str(source))
        dialog.example_edits[1].setText(str(target))
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(llm_dialogs.EvaluateDialog, "exec", fill_and_accept)
    started = []
    submit = window.session.submit
    monkeypatch.setattr(
        window.session, "submit", lambda *a, **k: started.append(submit(*a, **k)) or started[-1]
    )
    llm.ablation_action.trigger()
    (job_id,) = started
    qtbot.waitUntil(lambda: window.jobs.state(job_id) == JobState.DONE, timeout=45_000)
    panel = llm.editor.evaluations
    # The files carry no baseline predictions: the prompt, 10 variants and llmas's 8.
    qtbot.waitUntil(lambda: len(panel.rows()) == 1 + 10 + 8, timeout=5000)
    rows = panel.rows()
    prompts = [(r[6].split(" · ")[0], r[7]) for r in rows]
    name = llm.editor.prompt().name + " on wmt14ende"
    assert prompts == [
        (name, ""),
        *((variant, "leave-one-out") for variant in LEAVE_ONE_OUT),
        *((template, "llmas cumulative") for template in CUMULATIVE),
    ]
    assert all(r[5] == "3/3" for r in rows)


def test_ablations_with_llmas_templates_need_the_example_corpus(
    llm, window, tmp_path, templates, monkeypatch
):
    llm.editor.import_llmas(str(templates))
    seedarchs = tmp_path / "seedarchs"
    write_seedarchs(seedarchs, "wmt14ende", SMALL_ARCHS, SMALL_BLEU, {1: ([0, 1, 2], [3, 4, 5])})
    errors = []
    monkeypatch.setattr(llm, "_show_error", lambda title, message: errors.append(message))
    assert llm.start_evaluation(str(seedarchs), "wmt14ende", ablations=True) is None
    assert "task examples" in errors[-1] and "Task examples" in errors[-1]
