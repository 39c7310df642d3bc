"""The LLM-PP prompt editor: one editor per section with its placeholders highlighted, the
demonstration settings, a live preview of the exact messages for one architecture with their
token count, the task's saved versions with a diff, and the evaluation table.

The llmas tab lists the llmas templates imported as prompts, every version of each, and imports
a template folder; an edited template is saved as a new version (the one it was edited from is
kept), and "Predict selected…" asks ``llm_actions`` to predict with the selected version.

The editor only edits and renders: saving writes one prompt record, importing llmas templates a
few, and everything that talks to an LLM is started by ``llm_actions`` as a job.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontDatabase,
    QKeySequence,
    QShortcut,
    QSyntaxHighlighter,
    QTextCharFormat,
    QTextDocument,
)
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import signals_blocked

from nasstudio.gui.prompt_evaluations import EvaluationPanel
from nasstudio.gui.prompt_tokens import count_tokens
from nasstudio.predict.llm import (
    Demonstration,
    DemoSettings,
    DemoStrategy,
    Prompt,
    PromptError,
    current_prompt,
    default_prompt,
    load_prompt,
    save_prompt,
)
from nasstudio.predict.llm.llmas import (
    LlmasError,
    LlmasTemplate,
    import_templates,
    is_llmas,
    template_versions,
)
from nasstudio.predict.llm.prompt import EXAMPLES_PLACEHOLDER
from nasstudio.store import Project

SPLITTER_KEY = "llm/editor_splitter"
SECTIONS_SPLITTER_KEY = "llm/editor_sections_splitter"
REFRESH_MS = 150  # typing pauses this long before the preview is rebuilt
SECTION_LINES = 6  # each section's editor shows at least this many lines
DEFAULT_ENTRY = "default"  # the history entry of the task's default prompt
EDITOR_ENTRY = "editor"  # the diff's "the editor as it is now"
# The placeholder pattern that Prompt rendering fills (names in braces; other braces stay).
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_PARAGRAPHS = re.compile(r"\n[ \t]*\n")
_STRATEGY_TIPS = {
    DemoStrategy.RANDOM: "A seeded random draw: the same demonstrations for every query",
    DemoStrategy.SPREAD: "Evenly spread over GFLOPS, listed by GFLOPS",
    DemoStrategy.NEAREST: "The architectures nearest to the query (HAT's averaged features)",
}


def _format(color: str, bold: bool = False, wavy: bool = False) -> QTextCharFormat:
    fmt = QTextCharFormat()
    fmt.setForeground(QColor(color))
    if bold:
        fmt.setFontWeight(QFont.Weight.Bold)
    if wavy:
        fmt.setUnderlineStyle(QTextCharFormat.UnderlineStyle.WaveUnderline)
        fmt.setUnderlineColor(QColor(color))
    return fmt


class PlaceholderHighlighter(QSyntaxHighlighter):
    """``{name}``: blue when the task fills it, red and underlined when it does not."""

    def __init__(self, document: QTextDocument, known: set[str] | None = None) -> None:
        super().__init__(document)
        self._known = set(known or ())
        self._ok = _format("#0b5cad", bold=True)
        self._unknown = _format("#c00000", bold=True, wavy=True)

    def set_known(self, known: set[str]) -> None:
        if known != self._known:
            self._known = set(known)
            self.rehighlight()

    def highlightBlock(self, text: str) -> None:
        for match in PLACEHOLDER.finditer(text):
            fmt = self._ok if match.group(1) in self._known else self._unknown
            self.setFormat(match.start(), match.end() - match.start(), fmt)


class DiffHighlighter(QSyntaxHighlighter):
    """Unified diff colours: additions green, removals red, hunk headers grey."""

    _STYLES = (
        ("+++", _format("#555555", bold=True)),
        ("---", _format("#555555", bold=True)),
        ("@@", _format("#6f42c1")),
        ("+", _format("#1b7a1b")),
        ("-", _format("#b00020")),
    )

    def highlightBlock(self, text: str) -> None:
        for prefix, fmt in self._STYLES:
            if text.startswith(prefix):
                self.setFormat(0, len(text), fmt)
                return


class MessagesHighlighter(QSyntaxHighlighter):
    """Bold ``=== role`` lines between the previewed messages."""

    def __init__(self, document: QTextDocument) -> None:
        super().__init__(document)
        self._heading = _format("#6f42c1", bold=True)

    def highlightBlock(self, text: str) -> None:
        if text.startswith("=== "):
            self.setFormat(0, len(text), self._heading)


def instructions_text(instructions: Sequence[str]) -> str:
    return "\n\n".join(instructions)


def parse_instructions(text: str) -> tuple[str, ...]:
    """One instruction per paragraph: blank lines separate them, single newlines stay."""
    return tuple(p.strip() for p in _PARAGRAPHS.split(text) if p.strip())


def prompt_text(prompt: Prompt) -> str:
    """The editable sections as one text (templates, not rendered), for diffs."""
    s = prompt.sections
    demos = s.demonstrations
    lines = ["== role", s.role, "", "== instructions"]
    lines += [f"{i}. {text}" for i, text in enumerate(s.instructions, 1)] or ["(none)"]
    lines += ["", "== hyperparameter definitions", s.definitions or "(none)", ""]
    lines.append(
        f"== demonstrations\nk = {demos.k}, strategy = {demos.strategy.value}, seed = {demos.seed}"
    )
    return "\n".join(lines) + "\n"


def messages_text(messages: Sequence[Mapping[str, str]]) -> str:
    return "\n\n".join(f"=== {m['role']}\n{m['content']}" for m in messages)


def _text_edit(tip: str, placeholder: str, mono: bool = False) -> QPlainTextEdit:
    edit = QPlainTextEdit(toolTip=tip, placeholderText=placeholder)
    edit.setTabChangesFocus(True)  # Tab moves to the next section, as in a form
    if mono:
        edit.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        edit.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
    margins = 2 * (edit.frameWidth() + edit.document().documentMargin())
    edit.setMinimumHeight(round(SECTION_LINES * edit.fontMetrics().lineSpacing() + margins))
    return edit


def _section(title: str, hint: str, *widgets: QWidget) -> QGroupBox:
    box = QGroupBox(title)
    layout = QVBoxLayout(box)
    layout.setContentsMargins(6, 4, 6, 6)
    if hint:
        note = QLabel(hint, wordWrap=True)
        note.setStyleSheet("color: #555")
        layout.addWidget(note)
    for widget in widgets:
        layout.addWidget(widget, 1)
    return box


class PromptEditor(QWidget):
    """Edits the prompt of one task of one project; see the module docstring."""

    prompt_changed = Signal()  # the editor's prompt (or its error) changed
    saved = Signal(str)  # version
    evaluate_requested = Signal()
    ablation_requested = Signal()
    settings_requested = Signal()
    profile_chosen = Signal(str)
    llmas_predict_requested = Signal(object)  # the LlmasTemplate selected in the llmas tab
    status = Signal(str)  # a message for the status bar

    def __init__(self, settings: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.project: Project | None = None
        self.task: str | None = None
        self._base: Prompt | None = None  # what the sections fill in: task, variables, examples
        self._saved: Prompt | None = None  # the version last loaded or saved
        self._drafts: dict[tuple[str, str], Prompt] = {}  # unsaved edits of other tasks
        self._query: Demonstration | None = None
        self._pool: list[Demonstration] = []
        self._query_note = ""
        self._model = ""
        self._error: str | None = None
        self._notes: dict[str, str] = {}  # version -> evaluation summary, for the history
        self._refresh_timer = QTimer(self, singleShot=True, interval=REFRESH_MS)
        self._refresh_timer.timeout.connect(self.refresh)
        self._build_widgets()
        self._layout_widgets()
        self._connect()
        self._restore_splitters()
        self.setEnabled(False)

    # --- construction -------------------------------------------------------------------------

    def _build_widgets(self) -> None:
        self.task_label = QLabel()
        self.name_edit = QLineEdit(placeholderText="prompt name", toolTip="A name for this prompt")
        self.name_edit.setMinimumWidth(80)
        self.version_label = QLabel(
            textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse
        )
        self.version_label.setToolTip(
            "The version is a hash of the rendered sections and demonstration settings; every "
            "prediction records the version of its prompt"
        )
        self.profile_combo = QComboBox(toolTip="LLM profile for Predict, Evaluate and tokens")
        self.profile_combo.setMinimumWidth(90)
        self.settings_button = QToolButton(text="…", toolTip="LLM settings: profiles and keys")
        self.save_button = QPushButton("Save", toolTip="Save as the task's current prompt (Ctrl+S)")
        self.reset_button = QToolButton(text="Reset", toolTip="Revert the editor")
        self.reset_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        reset_menu = QMenu(self.reset_button)
        reset_menu.addAction("Revert to the saved version", self.revert)
        reset_menu.addAction("Reset to the task's default prompt", self.reset_to_default)
        self.reset_button.setMenu(reset_menu)
        self.evaluate_button = QPushButton(
            "Evaluate…",
            toolTip="Score this prompt and the stored baselines on a seedarchs folder, as a job "
            "(Ctrl+Shift+E)",
        )
        self.ablation_button = QPushButton(
            "Ablations…",
            toolTip="Evaluate every ablation variant of this prompt (each instruction removed, "
            "no instructions, no definitions, other k) in one table",
        )
        self.placeholders_label = QLabel(wordWrap=True)
        self.error_label = QLabel(wordWrap=True)
        self.error_label.setStyleSheet(
            "QLabel { color: #b00020; background: #fdecee; padding: 4px; border-radius: 3px; }"
        )
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.hide()
        self.role_edit = _text_edit(
            "The system message: who the LLM is and what it estimates", "role (system message)"
        )
        self.instructions_edit = _text_edit(
            "Numbered when rendered; an instruction that uses {examples} is left out when the "
            "prompt has no sentence pairs",
            "one instruction per paragraph",
        )
        self.definitions_edit = _text_edit(
            "One line per HAT architecture key; empty leaves the section out",
            "key: meaning",
            mono=True,
        )
        self.k_spin = QSpinBox(minimum=0, maximum=500, toolTip="Number of demonstrations")
        self.strategy_combo = QComboBox(toolTip="How the demonstrations are chosen")
        for strategy in DemoStrategy:
            self.strategy_combo.addItem(strategy.value, strategy)
            self.strategy_combo.setItemData(
                self.strategy_combo.count() - 1,
                _STRATEGY_TIPS[strategy],
                Qt.ItemDataRole.ToolTipRole,
            )
        self.seed_spin = QSpinBox(
            minimum=0, maximum=2**31 - 1, toolTip="Seed of the random strategy"
        )
        self.seed_spin.setMinimumWidth(80)  # room for seeds in use, not for ten digits
        self.highlighters = [
            PlaceholderHighlighter(edit.document())
            for edit in (self.role_edit, self.instructions_edit, self.definitions_edit)
        ]
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.query_label = QLabel(wordWrap=True)
        self.tokens_label = QLabel(wordWrap=True)
        self.preview = QPlainTextEdit(readOnly=True, font=mono)
        self.preview.setToolTip("The exact messages sent for the query architecture")
        self._preview_highlighter = MessagesHighlighter(self.preview.document())
        self.history = QListWidget(toolTip="Saved versions of this task's prompt, newest first")
        self.compare_combo = QComboBox(toolTip="What the selected version is compared with")
        self.load_button = QPushButton(
            "Load into editor", toolTip="Replace the editor's sections with the selected version"
        )
        self.diff_view = QPlainTextEdit(readOnly=True, font=mono)
        self.diff_view.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self._diff_highlighter = DiffHighlighter(self.diff_view.document())
        self.evaluations = EvaluationPanel()
        self.llmas_list = QListWidget(
            toolTip="llmas's templates imported as prompts, and their edited versions: use one "
            "with --prompt-version; Ablations… evaluates a task's imported ones as llmas's "
            "cumulative ablation"
        )
        self.llmas_view = QPlainTextEdit(font=mono)
        self.llmas_view.setToolTip(
            "The selected version's text; an edit is saved as a new version of the template"
        )
        self.llmas_error = QLabel(wordWrap=True, styleSheet=self.error_label.styleSheet())
        self.llmas_error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.llmas_error.hide()
        self.llmas_save_button = QPushButton(
            "Save as new version",
            enabled=False,
            toolTip="Store the edited text as a new version of this template (the one it was "
            "edited from is kept)",
        )
        self.llmas_predict_button = QPushButton(
            "Predict selected…",
            enabled=False,
            toolTip="Predict the selected architectures (or all of the task) with this version, "
            "asking for the task-example corpus and the seed",
        )
        self.llmas_import_button = QPushButton(
            "Import llmas folder…",
            toolTip="Store the predictor templates of an llmas instruction_templates/<task> "
            "folder as prompts of the project",
        )

    def _layout_widgets(self) -> None:
        top = QHBoxLayout()
        top.addWidget(self.task_label)
        top.addWidget(self.name_edit, 1)
        top.addWidget(self.version_label)
        top.addSpacing(6)
        top.addWidget(QLabel("LLM"))
        top.addWidget(self.profile_combo)
        top.addWidget(self.settings_button)
        buttons = QHBoxLayout()
        buttons.addWidget(self.placeholders_label, 1)
        for widget in (self.save_button, self.reset_button):
            buttons.addWidget(widget)
        buttons.addSpacing(12)
        buttons.addWidget(self.evaluate_button)
        buttons.addWidget(self.ablation_button)
        demos = QWidget()
        form = QVBoxLayout(demos)
        form.setContentsMargins(0, 0, 0, 0)
        # Two short rows rather than one long one: the editor fits beside the main window's
        # panels on a 1280 px screen.
        for fields in (
            (("k", self.k_spin), ("strategy", self.strategy_combo)),
            (("seed", self.seed_spin),),
        ):
            row = QHBoxLayout()
            for label, widget in fields:
                row.addWidget(QLabel(label))
                row.addWidget(widget)
            row.addStretch(1)
            form.addLayout(row)
        self.sections = QSplitter(Qt.Orientation.Vertical, childrenCollapsible=False)
        self.sections.addWidget(_section("Role (system message)", "", self.role_edit))
        self.sections.addWidget(
            _section(
                "Instructions",
                "One instruction per paragraph (separate them with a blank line); they are "
                "numbered when rendered.",
                self.instructions_edit,
            )
        )
        self.sections.addWidget(_section("Hyperparameter definitions", "", self.definitions_edit))
        self.sections.addWidget(
            _section(
                "Demonstrations",
                "Architectures with measured BLEU shown before the query.",
                demos,
            )
        )
        self.sections.setSizes([140, 260, 220, 60])
        self.tabs = QTabWidget()
        self.tabs.addTab(self._preview_tab(), "Preview")
        self.tabs.addTab(self._history_tab(), "History")
        self.tabs.addTab(self.evaluations, "Evaluation")
        self.tabs.addTab(self._llmas_tab(), "llmas")
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.sections, 1)
        self.splitter.addWidget(left)
        self.splitter.addWidget(self.tabs)
        self.splitter.setSizes([300, 700])  # the sections wrap; the Evaluation table cannot
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(buttons)
        layout.addWidget(self.error_label)
        layout.addWidget(self.splitter, 1)

    def _preview_tab(self) -> QWidget:
        tab = QWidget()
        layout = QVBoxLayout(tab)
        layout.addWidget(self.query_label)
        layout.addWidget(self.tokens_label)
        layout.addWidget(self.preview, 1)
        return tab

    def _history_tab(self) -> QWidget:
        tab = QWidget()
        layout = QVBoxLayout(tab)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.history)
        lower = QWidget()
        lower_layout = QVBoxLayout(lower)
        lower_layout.setContentsMargins(0, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Diff with"))
        row.addWidget(self.compare_combo, 1)
        row.addWidget(self.load_button)
        lower_layout.addLayout(row)
        lower_layout.addWidget(self.diff_view, 1)
        splitter.addWidget(lower)
        splitter.setSizes([140, 360])
        layout.addWidget(splitter)
        return tab

    def _llmas_tab(self) -> QWidget:
        tab = QWidget()
        layout = QVBoxLayout(tab)
        row = QHBoxLayout()
        row.addWidget(QLabel("Each a prompt of the project", wordWrap=True), 1)
        row.addWidget(self.llmas_import_button)
        layout.addLayout(row)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.llmas_list)
        splitter.addWidget(self.llmas_view)
        splitter.setSizes([140, 360])
        layout.addWidget(splitter, 1)
        layout.addWidget(self.llmas_error)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.llmas_save_button)
        buttons.addWidget(self.llmas_predict_button)
        layout.addLayout(buttons)
        return tab

    def _connect(self) -> None:
        self.llmas_list.currentItemChanged.connect(self._show_llmas_template)
        self.llmas_import_button.clicked.connect(self._choose_llmas_folder)
        self.llmas_view.textChanged.connect(self._on_llmas_edited)
        self.llmas_save_button.clicked.connect(self.save_llmas)
        self.llmas_predict_button.clicked.connect(self._request_llmas_prediction)
        for edit in (self.role_edit, self.instructions_edit, self.definitions_edit):
            edit.textChanged.connect(self._schedule_refresh)
        self.name_edit.textChanged.connect(self._schedule_refresh)
        self.k_spin.valueChanged.connect(self._schedule_refresh)
        self.seed_spin.valueChanged.connect(self._schedule_refresh)
        self.strategy_combo.currentIndexChanged.connect(self._on_strategy)
        self.save_button.clicked.connect(self.save)
        self.evaluate_button.clicked.connect(self.evaluate_requested)
        self.ablation_button.clicked.connect(self.ablation_requested)
        self.settings_button.clicked.connect(self.settings_requested)
        self.profile_combo.currentTextChanged.connect(self._on_profile_chosen)
        self.history.currentItemChanged.connect(self._show_diff)
        self.compare_combo.currentIndexChanged.connect(self._show_diff)
        self.load_button.clicked.connect(self.load_selected)
        save = QShortcut(QKeySequence.StandardKey.Save, self, self.save)
        save.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        for splitter, key in (
            (self.splitter, SPLITTER_KEY),
            (self.sections, SECTIONS_SPLITTER_KEY),
        ):
            splitter.splitterMoved.connect(
                lambda *_, s=splitter, k=key: self.settings.setValue(k, s.saveState())
            )

    def _restore_splitters(self) -> None:
        for splitter, key in (
            (self.splitter, SPLITTER_KEY),
            (self.sections, SECTIONS_SPLITTER_KEY),
        ):
            state = self.settings.value(key)
            if state is not None:
                splitter.restoreState(state)

    # --- context: project, task, profile, preview data ----------------------------------------

    def set_context(self, project: Project | None, task: str | None) -> None:
        """Edit ``task``'s prompt: a draft left earlier, else its current prompt."""
        if project is self.project and task == self.task:
            return
        self._keep_draft()
        self.project, self.task = project, task
        self.setEnabled(project is not None and task is not None)
        if project is None or task is None:
            self._base = self._saved = None
            self.task_label.setText("No task")
            return
        try:
            self._saved = current_prompt(project, task)
        except PromptError as exc:  # a damaged stored prompt: say so, start from the default
            self.status.emit(f"The stored prompt of {task} cannot be read ({exc}); default shown")
            self._saved = default_prompt(project.task(task))
        draft = self._drafts.pop((str(project.path), task), None)
        self._load(draft or self._saved)
        self.fill_history()
        self.fill_llmas()

    def _keep_draft(self) -> None:
        prompt = self.prompt()
        if self.project is None or self.task is None or prompt is None:
            return
        if self._saved is None or prompt.to_json() != self._saved.to_json():
            self._drafts[(str(self.project.path), self.task)] = prompt

    def set_profiles(self, names: Sequence[str], current: str | None) -> None:
        with signals_blocked(self.profile_combo):
            self.profile_combo.clear()
            self.profile_combo.addItems(list(names))
            if current in names:
                self.profile_combo.setCurrentText(current)

    def set_model(self, model: str) -> None:
        """The model whose tokenizer counts the preview's tokens."""
        self._model = model
        self._schedule_refresh()

    def set_preview_data(
        self, query: Demonstration | None, pool: Sequence[Demonstration], note: str
    ) -> None:
        """The architecture previewed and the architectures with BLEU to draw demonstrations
        from; ``note`` says which architecture it is and why."""
        self._query, self._pool, self._query_note = query, list(pool), note
        self._schedule_refresh()

    def set_version_notes(self, notes: Mapping[str, str]) -> None:
        """Evaluation summaries per version, shown in the history."""
        self._notes = dict(notes)
        self.fill_history()

    def _on_profile_chosen(self, name: str) -> None:
        if name:
            self.profile_chosen.emit(name)

    def _on_strategy(self) -> None:
        random = self.strategy_combo.currentData() == DemoStrategy.RANDOM
        self.seed_spin.setEnabled(random)
        self._schedule_refresh()

    # --- the prompt -----------------------------------------------------------------------------

    def _load(self, prompt: Prompt) -> None:
        self._base = prompt
        sections = prompt.sections
        known = set(prompt.variables) | {EXAMPLES_PLACEHOLDER}
        for highlighter in self.highlighters:
            highlighter.set_known(known)
        self.task_label.setText(f"<b>{prompt.task}</b>")
        self.placeholders_label.setText(
            "Placeholders: " + " ".join(f"<code>{{{name}}}</code>" for name in sorted(known))
        )
        self.placeholders_label.setToolTip(self._placeholder_values(prompt))
        widgets = (
            self.name_edit,
            self.role_edit,
            self.instructions_edit,
            self.definitions_edit,
            self.k_spin,
            self.strategy_combo,
            self.seed_spin,
        )
        for widget in widgets:  # one refresh at the end, not one per field
            widget.blockSignals(True)
        try:
            self.name_edit.setText(prompt.name)
            self.role_edit.setPlainText(sections.role)
            self.instructions_edit.setPlainText(instructions_text(sections.instructions))
            self.definitions_edit.setPlainText(sections.definitions)
            self.k_spin.setValue(sections.demonstrations.k)
            self.strategy_combo.setCurrentIndex(
                self.strategy_combo.findData(sections.demonstrations.strategy)
            )
            self.seed_spin.setValue(sections.demonstrations.seed)
        finally:
            for widget in widgets:
                widget.blockSignals(False)
        self._on_strategy()
        self.refresh()

    @staticmethod
    def _placeholder_values(prompt: Prompt) -> str:
        lines = [f"{{{k}}} = {v}" for k, v in sorted(prompt.variables.items())]
        examples = f"{len(prompt.examples)} sentence pairs" if prompt.examples else "none"
        lines.append(f"{{{EXAMPLES_PLACEHOLDER}}} = {examples}")
        return "\n".join(lines)

    def _build(self) -> Prompt:
        demonstrations = DemoSettings(
            self.k_spin.value(), self.strategy_combo.currentData(), self.seed_spin.value()
        )
        prompt = self._base.with_sections(
            role=self.role_edit.toPlainText(),
            instructions=parse_instructions(self.instructions_edit.toPlainText()),
            definitions=self.definitions_edit.toPlainText(),
            demonstrations=demonstrations,
        )
        return replace(prompt, name=self.name_edit.text().strip() or prompt.task)

    def prompt(self) -> Prompt | None:
        """The prompt in the editor, or None when it cannot be rendered (see ``error``)."""
        if self._base is None:
            return None
        prompt = self._build()
        try:
            prompt.render_sections()
        except PromptError:
            return None
        return prompt

    def error(self) -> str | None:
        return self._error

    def is_modified(self) -> bool:
        prompt = self.prompt() if self._base is not None else None
        return prompt is None or self._saved is None or prompt.to_json() != self._saved.to_json()

    def _schedule_refresh(self) -> None:
        self._refresh_timer.start()

    def refresh(self) -> None:
        """Re-render now: version, error, preview and token count."""
        self._refresh_timer.stop()
        if self._base is None:
            return
        prompt = self._build()
        try:
            version = prompt.version  # renders: raises on an unknown placeholder
        except PromptError as exc:
            self._show_error(str(exc))
        else:
            self._show_error(None)
            state = "unsaved" if self.is_modified() else "saved"
            self.version_label.setText(f"Version <b>{version}</b> ({state})")
            self._show_preview(prompt)
        self._show_diff()
        self.prompt_changed.emit()

    def _show_error(self, message: str | None) -> None:
        self._error = message
        self.error_label.setText(message or "")
        self.error_label.setVisible(message is not None)
        self.save_button.setEnabled(message is None)
        if message is not None:
            self.version_label.setText("Version — (cannot render)")
            self.tokens_label.setText("preview not updated: fix the error above")

    def _show_preview(self, prompt: Prompt) -> None:
        self.query_label.setText(self._query_note)
        if self._query is None:
            self.preview.setPlainText("")
            self.tokens_label.setText("")
            return
        messages = prompt.messages(self._query, self._pool)
        self.preview.setPlainText(messages_text(messages))
        count = count_tokens(messages, self._model)
        self.tokens_label.setText(count.describe())
        self.tokens_label.setToolTip(
            "Counted with the model's tokenizer"
            if count.exact
            else "No offline tokenizer for this model: an estimate (install bpe-openai for "
            "exact counts of OpenAI models)"
        )

    def preview_text(self) -> str:
        return self.preview.toPlainText()

    # --- saving and versions ----------------------------------------------------------------------

    def save(self) -> str | None:
        """Save the editor's prompt as the task's current one; returns its version."""
        prompt = self.prompt()
        if prompt is None or self.project is None:
            if self._error:
                self.status.emit(f"Not saved: {self._error}")
            return None
        version = save_prompt(self.project, prompt, current=True)
        self._saved = prompt
        self.fill_history()
        self.refresh()
        self.status.emit(f"Saved prompt {version} as the current prompt of {prompt.task}")
        self.saved.emit(version)
        return version

    def revert(self) -> None:
        if self._saved is not None:
            self._load(self._saved)

    def reset_to_default(self) -> None:
        if self.project is not None and self.task is not None:
            spec = self.project.task(self.task)
            if spec is not None:
                self._load(replace(default_prompt(spec), examples=self._base.examples))

    def _stored_versions(self) -> list[dict]:
        """This task's saved prompts, newest first."""
        if self.project is None:
            return []
        records = [
            r
            for r in self.project.prompts()
            if r["sections"].get("task") == self.task and not is_llmas(r["sections"])
        ]
        return records[::-1]

    def fill_history(self) -> None:
        """List the saved versions (newest first) and the task's default at the end."""
        selected = self._selected_entry()
        current = self._saved.version if self._saved is not None else None
        with signals_blocked(self.history), signals_blocked(self.compare_combo):
            compare = self.compare_combo.currentData()
            self.history.clear()
            self.compare_combo.clear()
            self.compare_combo.addItem("the editor", EDITOR_ENTRY)
            for record in self._stored_versions():
                version = record["version"]
                when = datetime.fromtimestamp(record["created_at"]).strftime("%Y-%m-%d %H:%M")
                flags = " · current" if version == current else ""
                note = f" · {self._notes[version]}" if version in self._notes else ""
                item = QListWidgetItem(f"{version} · {when} · {record['name']}{flags}{note}")
                item.setData(Qt.ItemDataRole.UserRole, version)
                self.history.addItem(item)
                self.compare_combo.addItem(version, version)
            item = QListWidgetItem("task default (built in)")
            item.setData(Qt.ItemDataRole.UserRole, DEFAULT_ENTRY)
            self.history.addItem(item)
            self.compare_combo.addItem("task default", DEFAULT_ENTRY)
            self.compare_combo.setCurrentIndex(max(self.compare_combo.findData(compare), 0))
            self._select_entry(selected)
        self._show_diff()

    def versions(self) -> list[str]:
        """Entries of the history list: saved versions newest first, then ``default``."""
        return [
            self.history.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.history.count())
        ]

    def _selected_entry(self) -> str | None:
        item = self.history.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else None

    def _select_entry(self, entry: str | None) -> None:
        entries = self.versions()
        index = entries.index(entry) if entry in entries else 0
        self.history.setCurrentRow(index)

    def select_version(self, entry: str, compare_with: str = EDITOR_ENTRY) -> None:
        """Show the diff of ``entry`` (a version or ``default``) with ``compare_with``."""
        with signals_blocked(self.compare_combo):
            self.compare_combo.setCurrentIndex(max(self.compare_combo.findData(compare_with), 0))
        self._select_entry(entry)
        self._show_diff()

    def _entry_prompt(self, entry: str | None) -> Prompt | None:
        if entry is None or self.project is None or self._base is None:
            return None
        if entry == EDITOR_ENTRY:
            return self._build()
        if entry == DEFAULT_ENTRY:
            spec = self.project.task(self.task)
            return default_prompt(spec) if spec is not None else None
        return load_prompt(self.project, entry)

    def _show_diff(self) -> None:
        old_entry, new_entry = self._selected_entry(), self.compare_combo.currentData()
        old, new = self._entry_prompt(old_entry), self._entry_prompt(new_entry)
        self.load_button.setEnabled(old is not None)
        if old is None or new is None:
            self.diff_view.setPlainText("")
            return
        diff = difflib.unified_diff(
            prompt_text(old).splitlines(keepends=True),
            prompt_text(new).splitlines(keepends=True),
            fromfile=_entry_name(old_entry, old),
            tofile=_entry_name(new_entry, new),
        )
        text = "".join(diff)
        self.diff_view.setPlainText(text or "No differences in the sections.")

    def diff_text(self) -> str:
        return self.diff_view.toPlainText()

    def load_selected(self) -> None:
        prompt = self._entry_prompt(self._selected_entry())
        if prompt is not None:
            self._load(replace(prompt, examples=self._base.examples))
            self.status.emit(f"Loaded {prompt.name} into the editor (not saved)")

    # --- llmas templates -----------------------------------------------------------------------

    def fill_llmas(self, select: str | None = None) -> None:
        """List the project's llmas prompts, every version, by task in llmas's ablation order;
        select the version ``select``, else the first."""
        self.llmas_list.clear()
        self._show_llmas_template(None)
        if self.project is None:
            return
        for template in template_versions(self.project):
            edit = f" · edited from {template.edited_from}" if template.edited_from else ""
            item = QListWidgetItem(f"{template.task} · {template.name} · {template.version}{edit}")
            item.setData(Qt.ItemDataRole.UserRole, template)
            self.llmas_list.addItem(item)
        versions = [t.version for t in self._llmas_templates()]
        self.llmas_list.setCurrentRow(versions.index(select) if select in versions else 0)

    def _llmas_templates(self) -> list[LlmasTemplate]:
        return [
            self.llmas_list.item(i).data(Qt.ItemDataRole.UserRole)
            for i in range(self.llmas_list.count())
        ]

    def selected_llmas(self) -> LlmasTemplate | None:
        item = self.llmas_list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item is not None else None

    def llmas_names(self) -> list[str]:
        """The listed llmas prompts' names (what a test reads)."""
        return [t.name for t in self._llmas_templates()]

    def _show_llmas_template(self, item: QListWidgetItem | None) -> None:
        template = item.data(Qt.ItemDataRole.UserRole) if item is not None else None
        with signals_blocked(self.llmas_view):
            self.llmas_view.setPlainText(template.template if template is not None else "")
        self._on_llmas_edited()

    def llmas_edited(self) -> bool:
        """Whether the llmas tab's text differs from the selected version's."""
        template = self.selected_llmas()
        return template is not None and self.llmas_view.toPlainText() != template.template

    def _on_llmas_edited(self) -> None:
        edited = self.llmas_edited()
        self.llmas_error.hide()
        self.llmas_save_button.setEnabled(edited)
        # A prediction uses a stored version: an edit is saved first.
        self.llmas_predict_button.setEnabled(self.selected_llmas() is not None and not edited)

    def save_llmas(self) -> str | None:
        """Store the tab's edited text as a new version of the selected template; returns its
        version, or None (and says why in the tab) when it is no predictor template."""
        template = self.selected_llmas()
        if self.project is None or template is None or not self.llmas_edited():
            return None
        try:
            edited = template.edited(self.llmas_view.toPlainText())
        except LlmasError as exc:
            self.llmas_error.setText(f"Not saved: {exc}")
            self.llmas_error.show()
            self.status.emit(f"Not saved: {exc}")
            return None
        version = save_prompt(self.project, edited)
        self.fill_llmas(select=version)
        self.status.emit(
            f"Saved llmas prompt {version} ({edited.name}), edited from {template.version}"
        )
        return version

    def _request_llmas_prediction(self) -> None:
        template = self.selected_llmas()
        if template is not None and not self.llmas_edited():
            self.llmas_predict_requested.emit(template)

    def _choose_llmas_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "llmas template folder (one task's)")
        if folder:
            self.import_llmas(folder)

    def import_llmas(self, folder: str) -> None:
        """Store the folder's predictor templates as prompts and say what was imported."""
        if self.project is None:
            return
        try:
            summary = import_templates(self.project, folder)
        except (LlmasError, OSError) as exc:
            self.status.emit(f"Not imported: {exc}")
            return
        self.fill_llmas()
        self.status.emit("Imported " + " ".join(s.strip() for s in summary.describe().splitlines()))


def _entry_name(entry: str, prompt: Prompt) -> str:
    if entry == EDITOR_ENTRY:
        return "editor"
    if entry == DEFAULT_ENTRY:
        return "task default"
    return f"{entry} ({prompt.name})"
