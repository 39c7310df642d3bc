"""The LLM GUI: prompt editor, Predict with LLM, Evaluate, ablations, LLM settings, keys.

LLM requests go to the tests' own OpenAI-compatible server on 127.0.0.1 (tests/llm_server.py),
as coroutines on the GUI thread's qasync event loop (tests/gui/conftest.py).
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from pathlib import Path

import keyring
import keyring.backends.fail
import pytest
from keyring.backend import KeyringBackend
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCharFormat
from PySide6.QtWidgets import QDialog

from nasstudio.gui import llm_dialogs
from nasstudio.gui.llm_actions import predicted_column
from nasstudio.gui.llm_settings import LLMSettingsDialog
from nasstudio.gui.prompt_evaluations import EvaluationPanel, evaluation_records
from nasstudio.jobs import JobState
from nasstudio.predict.evaluate import SeedScores, SplitResult, score
from nasstudio.predict.llm import LLMClient, LLMProfile, ProfileStore, current_prompt
from nasstudio.store import Project
from nasstudio.store.importers import LLMAS_BASELINES
from tests.conftest import require_refdata
from tests.gui.conftest import FIXTURE_ARCHS

SECRET = "sk-test-never-stored-0123456789"


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The LLM answer cache (platformdirs' cache folder) goes under tmp_path too."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.fixture
def profile(server) -> LLMProfile:
    return LLMProfile("fake", base_url=server.base_url, model="fake-llm", concurrency=4)


@pytest.fixture
def llm(window, profile):
    """The window's LLM actions using the fake server's profile, with the editor shown."""
    actions = window.llm
    actions.profiles.save(profile)
    actions.choose_profile(profile.name)
    actions.dock.show()
    editor = actions.editor
    editor.refresh()
    assert editor.task == "demo"
    return actions


@pytest.fixture
def requests_seen(monkeypatch: pytest.MonkeyPatch) -> list:
    """Where each LLM request was made: (thread, event loop, names of the threads then alive).
    The client's own method is wrapped; the HTTP still goes to the test server."""
    seen = []
    complete = LLMClient.complete

    async def recording(self, messages, *args, **kwargs):
        threads = {t.name for t in threading.enumerate()}
        seen.append((threading.current_thread(), asyncio.get_running_loop(), threads))
        return await complete(self, messages, *args, **kwargs)

    monkeypatch.setattr(LLMClient, "complete", recording)
    return seen


def _on_the_gui_loop(seen, loop) -> bool:
    """Every request ran on the GUI thread's event loop, and no job had a thread of its own."""
    return all(
        thread is threading.main_thread()
        and running is loop
        and not any(re.match(r"nasstudio-job-\d", name) for name in threads)
        for thread, running, threads in seen
    )


def _preview_ready(editor) -> bool:
    return "Test architecture:" in editor.preview_text()


def test_editing_a_section_updates_preview_and_version(llm, window, qtbot):
    editor = llm.editor
    qtbot.waitUntil(lambda: _preview_ready(editor), timeout=5000)
    first = editor.prompt().version
    assert first in editor.version_label.text() and "saved" in editor.version_label.text()
    assert editor.preview_text().startswith("=== system\nYou estimate")
    assert "input tokens" in editor.tokens_label.text()
    query = window.pareto.front_ids()[0]
    window.browser.select_ids([query])
    qtbot.waitUntil(lambda: query in editor.query_label.text(), timeout=5000)
    editor.role_edit.setPlainText("You are a careful BLEU estimator for {task_name}.")
    qtbot.waitUntil(
        lambda: "careful BLEU estimator for Synthetic demo" in editor.preview_text(), timeout=5000
    )
    second = editor.prompt().version
    assert second != first
    assert second in editor.version_label.text() and "unsaved" in editor.version_label.text()
    editor.k_spin.setValue(2)
    qtbot.waitUntil(lambda: editor.preview_text().count("BLEU: ") == 3, timeout=5000)
    assert editor.prompt().version not in (first, second)


def test_an_unknown_placeholder_is_an_error(llm, qtbot):
    editor = llm.editor
    editor.instructions_edit.appendPlainText("\nMind the {gpu_model}.")
    qtbot.waitUntil(lambda: editor.error() is not None, timeout=5000)
    assert "unknown placeholder {gpu_model}" in editor.error_label.text()
    assert editor.error_label.isVisibleTo(editor)
    assert editor.prompt() is None and not editor.save_button.isEnabled()
    document = editor.instructions_edit.document()
    block = document.findBlock(document.toPlainText().index("{gpu_model}"))
    underlined = [
        r.format.underlineStyle() == QTextCharFormat.UnderlineStyle.WaveUnderline
        for r in block.layout().formats()
    ]
    assert any(underlined)  # the highlighter marks it
    editor.instructions_edit.undo()
    qtbot.waitUntil(lambda: editor.error() is None, timeout=5000)
    assert not editor.error_label.isVisibleTo(editor)


def test_saving_adds_a_version_and_the_diff_shows_the_change(llm, window, qtbot):
    editor = llm.editor
    assert editor.versions() == ["default"]
    editor.role_edit.setPlainText("You predict BLEU.")
    editor.refresh()
    first = editor.save()
    assert editor.versions() == [first, "default"]
    assert current_prompt(window.project, "demo").version == first
    assert "(saved)" in editor.version_label.text()
    editor.select_version("default", compare_with=first)
    diff = editor.diff_text()
    assert "-You estimate the quality" in diff and "+You predict BLEU." in diff
    editor.definitions_edit.setPlainText("")
    editor.refresh()
    second = editor.save()
    assert editor.versions() == [second, first, "default"]
    editor.select_version(first, compare_with=second)
    diff = editor.diff_text()
    assert "-encoder-embed-dim-subtransformer:" in diff and "+(none)" in diff
    assert "You predict BLEU." not in diff.replace(" You predict BLEU.", "")  # unchanged: context


def test_predict_with_llm_records_predictions_shown_on_the_pareto_view(
    llm, window, qtbot, profile, monkeypatch
):
    chosen = window.pareto.front_ids()[:3] + window.pareto.unscored_ids()[:2]
    window.browser.select_ids(chosen)
    monkeypatch.setattr(llm_dialogs.PredictDialog, "exec", lambda self: QDialog.DialogCode.Accepted)
    job_id = llm.predict()  # what Ctrl+L does: a dialog (accepted here), then the job
    column = predicted_column(profile)
    qtbot.waitUntil(lambda: window.jobs.state(job_id) == JobState.DONE, timeout=15_000)
    qtbot.waitUntil(lambda: window.pareto.axes()[1] == column, timeout=5000)
    y_keys = [window.pareto.y_combo.itemData(i) for i in range(window.pareto.y_combo.count())]
    assert column in y_keys
    qtbot.waitUntil(lambda: sorted(window.pareto.plotted_ids()) == sorted(chosen), timeout=5000)
    stored = window.project.table("demo")[column].dropna()
    assert sorted(stored.index) == sorted(chosen)
    assert "cost" in window.jobs.tree.currentItem().text(4)
    versions = {p.prompt_version for i in chosen for p in window.project.predictions(i, "demo")}
    assert versions == {llm.editor.prompt().version}


def test_a_prediction_job_is_a_coroutine_on_the_gui_threads_loop(
    llm, window, qtbot, event_loop, requests_seen
):
    job_id = llm.start_prediction(window.pareto.front_ids()[:3])
    qtbot.waitUntil(lambda: window.jobs.state(job_id) == JobState.DONE, timeout=15_000)
    assert len(requests_seen) == 3 and _on_the_gui_loop(requests_seen, event_loop)
    assert window.project.job(job_id).worker == "event loop in thread MainThread"


def test_cancel_keeps_the_predictions_received(llm, window, qtbot, server, profile):
    server.delay = 0.15
    slow = LLMProfile("slow", base_url=server.base_url, model="fake-llm", concurrency=1)
    llm.profiles.save(slow)
    llm.choose_profile("slow")
    job_id = llm.start_prediction()  # every architecture of the task, one at a time
    column = predicted_column(slow)
    qtbot.waitUntil(lambda: window.pareto.axes()[1] == column, timeout=10_000)
    qtbot.waitUntil(lambda: len(window.pareto.plotted_ids()) >= 2, timeout=10_000)
    qtbot.mouseClick(window.jobs.cancel_button(job_id), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.jobs.state(job_id) == JobState.CANCELLED, timeout=5000)
    kept = window.project.table("demo")[column].notna().sum()
    assert 2 <= kept < FIXTURE_ARCHS
    time.sleep(0.4)  # nothing is written after the cancel
    assert window.project.table("demo")[column].notna().sum() == kept
    qtbot.waitUntil(lambda: len(window.pareto.plotted_ids()) == kept, timeout=5000)


def test_closing_the_window_ends_a_running_prediction(llm, window, qtbot, server, project_path):
    server.delay = 0.2
    slow = LLMProfile("slow", base_url=server.base_url, model="fake-llm", concurrency=1)
    llm.profiles.save(slow)
    llm.choose_profile("slow")
    job_id = llm.start_prediction()
    qtbot.waitUntil(lambda: window.jobs.state(job_id) == JobState.RUNNING, timeout=10_000)
    start = time.perf_counter()
    window.close()  # waits for the job on the GUI thread, whose event loop runs the job
    assert time.perf_counter() - start < 2.0
    with Project(project_path, readonly=True) as project:
        assert project.job(job_id).state == JobState.CANCELLED


@pytest.fixture
def seedarchs() -> Path:
    return require_refdata("llmpp", "seedarchs")


def test_evaluate_shows_seeds_next_to_the_baselines(llm, window, qtbot, seedarchs, profile):
    job_id = llm.start_evaluation(str(seedarchs), "wmt14ende")
    qtbot.waitUntil(lambda: window.jobs.state(job_id) == JobState.DONE, timeout=30_000)
    panel = llm.editor.evaluations
    assert llm.editor.tabs.currentWidget() is panel
    qtbot.waitUntil(lambda: len(panel.rows()) == 5, timeout=5000)
    rows = panel.rows()
    assert [r[0] for r in rows] == [*LLMAS_BASELINES, profile.predictor_name]
    hat = rows[0]
    assert hat[2].startswith("1.14 (") and hat[3].startswith("0.71 (")
    prompt_row = rows[-1]
    assert prompt_row[1] == "mean (std)" and "on wmt14ende" in prompt_row[6]
    item = panel.tree.topLevelItem(4)
    assert [item.child(i).text(1) for i in range(item.childCount())] == ["123", "456", "789"]
    assert all(item.child(i).text(5) == "20/20" for i in range(3))
    # an edited prompt is evaluated next to the earlier version
    editor = llm.editor
    editor.k_spin.setValue(3)
    editor.refresh()
    job_id = llm.start_evaluation(str(seedarchs), "wmt14ende")
    qtbot.waitUntil(lambda: window.jobs.state(job_id) == JobState.DONE, timeout=30_000)
    rows = panel.rows()
    assert [r[0] for r in rows] == [*LLMAS_BASELINES, *[profile.predictor_name] * 2]
    assert rows[-1][6] != rows[-2][6]  # two versions
    assert panel.tree.topLevelItem(5).font(6).bold()  # the editor's version
    # the scores are the project's: opened again, it shows them
    with Project(window.project.path, readonly=True) as reopened:
        again = evaluation_records(reopened, "wmt14ende", str(seedarchs))
    assert [r.predictor for r in again] == [r[0] for r in rows]
    assert [round(r.mean("mae"), 2) for r in again[:1]] == [1.14]


def test_ablations_are_evaluated_in_one_table(llm, window, qtbot, seedarchs, profile):
    job_id = llm.start_evaluation(str(seedarchs), "wmt14enfr", ablations=True)
    qtbot.waitUntil(lambda: window.jobs.state(job_id) == JobState.DONE, timeout=45_000)
    rows = llm.editor.evaluations.rows()
    assert [r[0] for r in rows[:4]] == list(LLMAS_BASELINES)
    labels = [r[6].split(" · ")[0] for r in rows[4:]]
    name = llm.editor.prompt().name + " on wmt14enfr"
    instructions = [f"without instruction {i}" for i in range(1, 6)]
    assert labels == [name, *instructions, "no instructions", "no definitions", "k=1", "k=3", "k=5"]
    assert all(r[1] == "mean (std)" and r[5] == "60/60" for r in rows)
    # Without sentence pairs the examples instruction is left out anyway: that variant renders
    # like the full prompt (same version, same scores) and still has its own row.
    full, without_examples = rows[4], rows[6]
    assert full[6].split(" · ")[1] == without_examples[6].split(" · ")[1]
    assert full[2:5] == without_examples[2:5]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_settings_dialog_saves_profiles_and_tests_the_connection(
    qtbot, tmp_path, server, event_loop, requests_seen
):
    store = ProfileStore(tmp_path / "profiles.json")
    dialog = LLMSettingsDialog(store)
    qtbot.addWidget(dialog)
    dialog._new_profile()
    dialog.form.name.setText("fake")
    dialog.form.base_url.setText(server.base_url)
    dialog.form.model.setText("fake-llm")
    dialog.form.concurrency.setValue(3)
    assert dialog.save_profile() is not None
    assert store.get("fake").base_url == server.base_url and store.get("fake").concurrency == 3
    assert dialog.current_name() == "fake"
    server.delay = 0.5
    start = time.perf_counter()
    check = dialog.test_connection()  # returns at once: the request is a coroutine
    assert time.perf_counter() - start < 0.3 and not dialog.test_button.isEnabled()
    assert check.get_loop() is event_loop and not requests_seen
    qtbot.waitUntil(lambda: "answered" in dialog.message_text(), timeout=10_000)
    assert "fake-llm" in dialog.message_text() and dialog.test_button.isEnabled()
    assert len(requests_seen) == 1 and _on_the_gui_loop(requests_seen, event_loop)
    dialog.form.base_url.setText(f"http://127.0.0.1:{_free_port()}/v1")
    dialog.test_connection()
    qtbot.waitUntil(lambda: "Connection failed" in dialog.message_text(), timeout=20_000)
    assert "Connection error" in dialog.message_text()
    dialog.form.base_url.setText("ftp://nowhere")
    assert dialog.save_profile() is None and "base_url" in dialog.message_text()
    dialog.form.base_url.setText(server.base_url)
    dialog.form.name.setText("renamed")
    dialog.save_profile()
    assert "renamed" in store.load() and "fake" not in store.load()
    dialog.delete_profile()
    assert "renamed" not in store.load()


def test_test_connection_never_sends_a_key_over_plain_http(
    qtbot, tmp_path, server, event_loop, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    for variable in ("HTTP_PROXY", "http_proxy"):  # a proxy that would carry the request
        monkeypatch.setenv(variable, server.root_url)
    for variable in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(variable, raising=False)
    dialog = LLMSettingsDialog(ProfileStore(tmp_path / "profiles.json"))
    qtbot.addWidget(dialog)
    dialog._new_profile()
    dialog.form.name.setText("plain")
    dialog.form.base_url.setText("http://api.openai.com/v1")
    dialog.form.model.setText("gpt-4o-mini")
    dialog.form.key_env.setText("OPENAI_API_KEY")
    dialog.test_connection()
    qtbot.waitUntil(lambda: "Connection failed" in dialog.message_text(), timeout=10_000)
    assert "would travel in clear text" in dialog.message_text()
    assert SECRET not in dialog.message_text() and server.seen == []


class MemoryKeyring(KeyringBackend):
    """A keyring backend kept in memory, standing in for the system keyring."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.passwords.pop((service, username), None)


@pytest.fixture
def use_keyring():
    """Install a keyring backend for one test: ``use_keyring(backend)``; the previous one
    comes back afterwards."""
    previous = keyring.get_keyring()
    yield keyring.set_keyring
    keyring.set_keyring(previous)


@pytest.fixture
def fake_keyring(use_keyring) -> dict:
    backend = MemoryKeyring()
    use_keyring(backend)
    return backend.passwords


def test_the_api_key_never_lands_in_settings_or_the_project(
    window, qtbot, server, fake_keyring, project_path, tmp_path
):
    dialog = window.llm.open_settings()
    dialog._new_profile()
    dialog.form.name.setText("keyed")
    dialog.form.base_url.setText(server.base_url)
    dialog.form.model.setText("fake-llm")
    dialog.form.key_env.setText("NASSTUDIO_TEST_KEY_UNSET")
    dialog.form.send_key.setChecked(True)
    dialog.key_edit.setText(SECRET)
    dialog.store_key()
    assert fake_keyring == {("nasstudio", "NASSTUDIO_TEST_KEY_UNSET"): SECRET}
    assert dialog.key_edit.text() == ""
    dialog.accept()  # saves the profile and makes it the chosen one
    assert window.llm.profile().name == "keyed"
    job_id = window.llm.start_prediction(window.pareto.front_ids()[:2])
    qtbot.waitUntil(lambda: window.jobs.state(job_id) == JobState.DONE, timeout=15_000)
    assert server.authorizations and all(a == f"Bearer {SECRET}" for a in server.authorizations)
    window.settings.sync()
    window.close()
    written = [project_path, *tmp_path.rglob("*.ini"), *tmp_path.rglob("*.json")]
    written += list(tmp_path.rglob("*.sqlite*")) + list(tmp_path.rglob("*.nasproj*"))
    assert written and all(SECRET.encode() not in p.read_bytes() for p in written)
    with Project(project_path) as project:
        assert len(project.table("demo")[predicted_column(window.llm.profile())].dropna()) == 2


def test_a_key_stored_from_the_dialog_goes_to_the_keyring(qtbot, tmp_path, fake_keyring):
    dialog = LLMSettingsDialog(ProfileStore(tmp_path / "profiles.json"))
    qtbot.addWidget(dialog)
    dialog.form.key_env.setText("NASSTUDIO_TEST_KEY_UNSET")
    assert dialog.key_edit.isEnabled() and dialog.key_button.isEnabled()
    qtbot.keyClicks(dialog.key_edit, SECRET)
    qtbot.mouseClick(dialog.key_button, Qt.MouseButton.LeftButton)
    assert fake_keyring == {("nasstudio", "NASSTUDIO_TEST_KEY_UNSET"): SECRET}
    assert dialog.message_text() == "Key stored in the keyring as NASSTUDIO_TEST_KEY_UNSET"
    assert "found" in dialog.key_status.text() and "not found" not in dialog.key_status.text()


def test_without_a_system_keyring_the_dialog_says_to_set_the_variable(qtbot, tmp_path, use_keyring):
    use_keyring(keyring.backends.fail.Keyring())  # what keyring picks on a headless machine
    dialog = LLMSettingsDialog(ProfileStore(tmp_path / "profiles.json"))
    qtbot.addWidget(dialog)
    dialog.show()
    assert not dialog.key_edit.isEnabled() and not dialog.key_button.isEnabled()
    status = dialog.key_status.text()
    assert "no system keyring" in status
    assert f"Set the environment variable {dialog.form.key_env.text()}" in status
    assert dialog.key_status.isVisible()


def test_the_evaluation_table_says_what_each_figure_rests_on(qtbot, tmp_path):
    """A small model's evaluation: seed 1 predicted 3 of 4 test architectures, all 25 (no
    correlation), seed 2 all 4 (see tests/test_predict_evaluate.py for the hand computation)."""
    with Project(tmp_path / "p.nasproj") as project:
        for split in (
            SplitResult(1, score([22.0, 24.0, 26.0], [25.0, 25.0, 25.0]), {}, ("a",)),
            SplitResult(2, score([24.0, 26.0, 21.0, 23.0], [25.0, 25.0, 19.5, 27.0]), {}),
        ):
            SeedScores("wmt14ende", "/seedarchs", "small@t", "small", split, "v1").write(project, 0)
        records = evaluation_records(project, "wmt14ende")
    panel = EvaluationPanel()
    qtbot.addWidget(panel)
    panel.show_records("/seedarchs", records, None)
    (row,) = panel.rows()
    # MAE over both seeds; the correlations rest on seed 2 only; 7 of 8 predicted
    assert row[2:6] == ["1.77 (0.10)", "0.18 (0.00) n=4/8", "0.32 (0.00) n=4/8", "7/8"]
    first = panel.tree.topLevelItem(0).child(0)
    assert [first.text(c) for c in range(1, 6)] == [
        "1",
        "1.67",
        "undefined (constant predictions)",
        "undefined (constant predictions)",
        "3/4",
    ]
    assert "nan" not in str(panel.rows())
