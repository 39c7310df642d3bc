"""LLM ▸ Propose with LLM…: the dialog asks for llmas's search-agent template, k, the GFLOPs
target and the task-example corpus; the LLM's valid proposals appear in the browser with origin
llm-proposed (LLM requests go to the tests' own server, tests/llm_server.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from nasstudio.cli import main
from nasstudio.gui import columns
from nasstudio.gui.propose_dialog import ProposeDialog
from nasstudio.predict.llm import LLMProfile
from nasstudio.space import to_arch_info
from nasstudio.store import Project
from tests.conftest import require_refdata
from tests.gui.conftest import table_shown


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.fixture
def split() -> Path:
    return require_refdata("llmpp", "seedarchs", "123", "wmt14ende")


@pytest.fixture
def window(qtbot, tmp_path: Path, split: Path, server):
    from nasstudio.gui.main_window import MainWindow

    path = tmp_path / "llmas.nasproj"
    files = [str(split / "train.jsonl"), str(split / "test.jsonl")]
    assert main(["import", *files, "-p", str(path)]) == 0
    win = MainWindow()
    qtbot.addWidget(win)
    assert win.open_project(path)
    win.show()
    qtbot.waitUntil(lambda: table_shown(win, 30), timeout=5000)
    profile = LLMProfile("fake", base_url=server.base_url, model="fake-llm")
    win.llm.profiles.save(profile)
    win.llm.choose_profile(profile.name)
    yield win
    win.close()


def _answer(split: Path) -> tuple[str, list[str]]:
    """Two proposals as a model writes them: a new architecture (the first test architecture
    with a 1024-wide decoder FFN) and one whose embedding dim 768 is not in HAT's space."""
    first = json.loads((split / "test.jsonl").read_text().splitlines()[0])["scratch"]
    new = [
        "decoder-ffn-embed-dim-all-subtransformer: [1024]" if "decoder-ffn" in line else line
        for line in first["arch_info"]
    ]
    outside = [line.replace(": 512", ": 768", 1) for line in first["arch_info"]]
    text = "\n\n".join(
        "\n".join([*lines, "GFLOPS: 2.3", "BLEU: 26.00"]) for lines in (new, outside)
    )
    return text, new


def _open_dialog(window, qtbot) -> ProposeDialog:
    assert window.propose.action in window.llm.menu.actions()
    window.propose.action.trigger()
    (dialog,) = window.findChildren(ProposeDialog)
    qtbot.waitUntil(dialog.isVisible, timeout=2000)
    return dialog


def test_proposals_appear_in_the_browser_with_their_origin(window, qtbot, server, split):
    answer, new_lines = _answer(split)
    server.reply = lambda messages: answer
    templates = require_refdata("llmpp", "instruction_templates", "wmt14ende")
    multi30k = require_refdata("multi30k")
    dialog = _open_dialog(window, qtbot)
    ok = dialog.buttons.button(dialog.buttons.StandardButton.Ok)

    # Without a template the dialog says what is missing and stays open.
    qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
    assert dialog.isVisible() and "search-agent template" in dialog.error.text()
    qtbot.keyClicks(dialog.template_edit, str(templates))
    qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
    assert dialog.isVisible() and "5 task examples" in dialog.error.text()
    qtbot.keyClicks(dialog.example_edits[0], str(multi30k / "train.en.gz"))
    qtbot.keyClicks(dialog.example_edits[1], str(multi30k / "train.de.gz"))
    dialog.count_spin.setValue(2)
    dialog.gflops_spin.setValue(2.5)
    qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()

    model = window.browser.model
    qtbot.waitUntil(lambda: model.total_count() == 31, timeout=20_000)
    (body,) = server.bodies
    content = body["messages"][0]["content"]
    assert "exactly 2.5 GFLOPs" in content and "should identify 2 configurations" in content
    origins = dict(zip(model.values(columns.ID), model.values(columns.ORIGIN), strict=True))
    (added,) = [i for i, origin in origins.items() if origin == "llm-proposed"]
    with Project(window.project.path, readonly=True) as project:
        assert to_arch_info(project.architecture(added)) == new_lines
    qtbot.waitUntil(
        lambda: "1 added, 1 rejected" in window.statusBar().currentMessage(), timeout=5000
    )
