"""The LLM settings dialog: profiles (endpoint, model, decoding preset, sampling, limits,
prices, key variable) kept by ProfileStore, an API key stored in the system keyring, and
"Test connection".

The key typed here goes to the keyring only; it is never written to QSettings, the profiles
file or the project. The connection test is a coroutine on the app's event loop, so the window
stays live while it waits.
"""

from __future__ import annotations

import asyncio

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import signals_blocked

from nasstudio.predict.llm import LLMProfile, ProfileError, ProfileStore
from nasstudio.predict.llm.client import (
    DECODINGS,
    DEFAULT_PROFILES,
    PROJECT_DECODING,
    resolve_api_key,
    save_api_key,
)
from nasstudio.predict.prompt_jobs import check_connection

_OK_STYLE = "color: #1b7a1b"
_ERROR_STYLE = "color: #b00020"
_BUILT_IN = {p.name for p in DEFAULT_PROFILES}


def keyring_problem() -> str | None:
    """Why no key can be stored in a system keyring here (None: one can)."""
    try:
        import keyring
        from keyring.backends import fail, null
    except ImportError:
        return "the keyring package is not installed"
    # keyring falls back to these when it finds no system keyring (a headless machine).
    if isinstance(keyring.get_keyring(), fail.Keyring | null.Keyring):
        return "this machine has no system keyring (Secret Service, KWallet, macOS Keychain…)"
    return None


def _spin(maximum: int, tip: str, minimum: int = 0) -> QSpinBox:
    spin = QSpinBox(minimum=minimum, maximum=maximum, toolTip=tip)
    spin.setGroupSeparatorShown(True)
    return spin


def _double(
    maximum: float, decimals: int, step: float, tip: str, suffix: str = ""
) -> QDoubleSpinBox:
    return QDoubleSpinBox(
        minimum=0.0,
        maximum=maximum,
        decimals=decimals,
        singleStep=step,
        suffix=suffix,
        toolTip=tip,
    )


class ProfileForm(QWidget):
    """The fields of one LLMProfile."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = QLineEdit(toolTip="Name of the profile; predictions are named model@profile")
        self.base_url = QLineEdit(
            toolTip="OpenAI-compatible endpoint, e.g. https://api.openai.com/v1, "
            "http://127.0.0.1:8000/v1 (vLLM), http://127.0.0.1:11434/v1 (Ollama)"
        )
        self.model = QLineEdit(toolTip="Model name as the endpoint knows it")
        self.decoding = QComboBox(
            toolTip="How requests are sent and answers read:\n"
            + "\n".join(f"• {name}: {what}" for name, what in DECODINGS.items())
        )
        for index, (name, what) in enumerate(DECODINGS.items()):
            self.decoding.addItem(name, name)
            self.decoding.setItemData(index, what, Qt.ItemDataRole.ToolTipRole)
        self.temperature = _double(2.0, 2, 0.1, "Sampling temperature (0: greedy)")
        self.max_tokens = _spin(100_000, "Most tokens in an answer (a BLEU needs few)", 1)
        self.timeout = _double(3600.0, 1, 5.0, "Seconds before a request is given up", " s")
        self.concurrency = _spin(256, "Requests in flight at once", 1)
        self.max_retries = _spin(20, "Retries on 429, 5xx and timeouts, with backoff")
        self.price_in = _double(1000.0, 6, 0.0001, "Price per 1,000 input tokens")
        self.price_out = _double(1000.0, 6, 0.0001, "Price per 1,000 output tokens")
        self.key_env = QLineEdit(
            toolTip="Environment variable that holds the API key (also the keyring entry's name)"
        )
        self.send_key = QCheckBox(
            "Send the API key to this custom URL",
            toolTip="The key goes to api.openai.com only, unless this is ticked",
        )
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        for label, widget in (
            ("Name", self.name),
            ("Base URL", self.base_url),
            ("Model", self.model),
            ("Decoding", self.decoding),
            ("Temperature", self.temperature),
            ("Max tokens", self.max_tokens),
            ("Timeout", self.timeout),
            ("Concurrency", self.concurrency),
            ("Retries", self.max_retries),
            ("Price / 1k input tokens", self.price_in),
            ("Price / 1k output tokens", self.price_out),
            ("API key variable", self.key_env),
        ):
            form.addRow(label, widget)
        form.addRow("", self.send_key)
        for edit in (self.name, self.base_url, self.model, self.key_env):
            edit.textChanged.connect(self.changed)
        for spin in (
            self.temperature,
            self.timeout,
            self.price_in,
            self.price_out,
            self.max_tokens,
            self.concurrency,
            self.max_retries,
        ):
            spin.valueChanged.connect(self.changed)
        self.send_key.toggled.connect(self.changed)
        self.decoding.currentIndexChanged.connect(self.changed)
        self.decoding.currentIndexChanged.connect(self._show_decoding)

    def _show_decoding(self) -> None:
        """Temperature and max tokens are the project preset's; llmas sets its own."""
        own = self.decoding.currentData() == PROJECT_DECODING
        for spin in (self.temperature, self.max_tokens):
            spin.setEnabled(own)

    def set_profile(self, profile: LLMProfile) -> None:
        with signals_blocked(self):
            self.name.setText(profile.name)
            self.base_url.setText(profile.base_url)
            self.model.setText(profile.model)
            self.temperature.setValue(profile.temperature)
            self.max_tokens.setValue(profile.max_tokens)
            self.timeout.setValue(profile.timeout)
            self.concurrency.setValue(profile.concurrency)
            self.max_retries.setValue(profile.max_retries)
            self.price_in.setValue(profile.price_input_per_1k)
            self.price_out.setValue(profile.price_output_per_1k)
            self.key_env.setText(profile.api_key_env)
            self.send_key.setChecked(profile.send_key_to_custom_url)
            self.decoding.setCurrentIndex(self.decoding.findData(profile.decoding))
        self._show_decoding()
        self.changed.emit()

    def profile(self) -> LLMProfile:
        """The profile as entered; raises ProfileError naming the field at fault."""
        return LLMProfile(
            name=self.name.text().strip(),
            base_url=self.base_url.text().strip(),
            model=self.model.text().strip(),
            temperature=self.temperature.value(),
            max_tokens=self.max_tokens.value(),
            timeout=self.timeout.value(),
            concurrency=self.concurrency.value(),
            max_retries=self.max_retries.value(),
            price_input_per_1k=self.price_in.value(),
            price_output_per_1k=self.price_out.value(),
            api_key_env=self.key_env.text().strip(),
            send_key_to_custom_url=self.send_key.isChecked(),
            decoding=self.decoding.currentData(),
        )


class LLMSettingsDialog(QDialog):
    """Profiles on the left, the chosen one's fields on the right; OK uses that profile."""

    def __init__(
        self, store: ProfileStore, current: str | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("LLM settings")
        self.store = store
        self._check: asyncio.Task | None = None
        self.profiles = QListWidget(toolTip=f"Profiles, kept in {store.path}")
        self.profiles.setMaximumWidth(200)
        self.form = ProfileForm()
        self.new_button = QPushButton("New", toolTip="A new profile from the one shown")
        self.delete_button = QPushButton(
            "Delete", toolTip="Delete the profile (a built-in one returns to its defaults)"
        )
        self.save_button = QPushButton("Save profile", toolTip="Save the fields (Ctrl+S)")
        self.save_button.setShortcut("Ctrl+S")
        self.test_button = QPushButton(
            "Test connection", toolTip="Send one tiny request with these fields (not saved)"
        )
        self.key_edit = QLineEdit(
            echoMode=QLineEdit.EchoMode.Password, placeholderText="paste an API key"
        )
        self.key_button = QPushButton("Store in keyring")
        self.key_status = QLabel(wordWrap=True)
        self._keyring_problem = keyring_problem()  # asked once: a backend may be slow to probe
        self.message = QLabel(wordWrap=True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._layout_widgets()
        self._connect()
        self._fill(current)

    def _layout_widgets(self) -> None:
        buttons = QHBoxLayout()
        buttons.addWidget(self.new_button)
        buttons.addWidget(self.delete_button)
        left = QVBoxLayout()
        left.addWidget(self.profiles, 1)
        left.addLayout(buttons)
        key_row = QHBoxLayout()
        key_row.addWidget(self.key_edit, 1)
        key_row.addWidget(self.key_button)
        right = QVBoxLayout()
        right.addWidget(self.form)
        right.addWidget(QLabel("<b>API key</b>"))
        right.addLayout(key_row)
        right.addWidget(self.key_status)
        actions = QHBoxLayout()
        actions.addWidget(self.save_button)
        actions.addWidget(self.test_button)
        actions.addStretch(1)
        right.addLayout(actions)
        right.addWidget(self.message)
        right.addStretch(1)
        body = QHBoxLayout()
        body.addLayout(left)
        body.addLayout(right, 1)
        box = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        box.button(QDialogButtonBox.StandardButton.Ok).setText("Use this profile")
        box.button(QDialogButtonBox.StandardButton.Ok).setToolTip(
            "Save the fields and use this profile for predictions and evaluations"
        )
        box.accepted.connect(self.accept)
        box.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(body, 1)
        layout.addWidget(box)
        self._show_keyring()

    def _show_keyring(self) -> None:
        """Offer the key field only where a system keyring can hold the key; else say why."""
        problem = self._keyring_problem
        self.key_edit.setEnabled(problem is None)
        self.key_button.setEnabled(problem is None)
        if problem is None:
            self.key_button.setToolTip("Keep the key in the system keyring, not in any file")
            return
        self.key_edit.setPlaceholderText("no keyring: set the key's variable instead")
        self.key_button.setToolTip(f"Cannot store a key: {problem}")

    def _connect(self) -> None:
        self.profiles.currentTextChanged.connect(self._show_profile)
        self.new_button.clicked.connect(self._new_profile)
        self.delete_button.clicked.connect(self.delete_profile)
        self.save_button.clicked.connect(self.save_profile)
        self.test_button.clicked.connect(self.test_connection)
        self.key_button.clicked.connect(self.store_key)
        self.finished.connect(self._stop_check)  # no answer reaches a closed dialog
        # The keyring is asked only when what decides the key changes, not on every keystroke.
        for edit in (self.form.key_env, self.form.base_url):
            edit.editingFinished.connect(self._update_key_status)
        self.form.send_key.toggled.connect(self._update_key_status)

    # --- profiles ---------------------------------------------------------------------------------

    def _load(self) -> dict[str, LLMProfile]:
        try:
            return self.store.load()
        except ProfileError as exc:
            self._say(str(exc), ok=False)
            return {p.name: p for p in DEFAULT_PROFILES}

    def _fill(self, current: str | None) -> None:
        profiles = self._load()
        with signals_blocked(self.profiles):
            self.profiles.clear()
            self.profiles.addItems(list(profiles))
        names = list(profiles)
        self.profiles.setCurrentRow(names.index(current) if current in names else 0)

    def _show_profile(self, name: str) -> None:
        profile = self._load().get(name)
        if profile is not None:
            self.form.set_profile(profile)
            self.delete_button.setText("Reset" if name in _BUILT_IN else "Delete")
            self._update_key_status()

    def current_name(self) -> str | None:
        item = self.profiles.currentItem()
        return item.text() if item else None

    def _new_profile(self) -> None:
        names = set(self._load())
        name = next(f"profile {i}" for i in range(1, len(names) + 2) if f"profile {i}" not in names)
        self.form.name.setText(name)
        self.form.name.setFocus()
        self.form.name.selectAll()
        self._say("Edit the fields, then Save profile.", ok=True)

    def save_profile(self) -> LLMProfile | None:
        """Save the fields; a changed name renames the profile. Returns it, or None when a
        field is invalid (the message says which)."""
        try:
            profile = self.form.profile()
        except ProfileError as exc:
            self._say(str(exc), ok=False)
            return None
        old = self.current_name()
        self.store.save(profile)
        if old and old != profile.name and old not in _BUILT_IN and old in self._load():
            self.store.delete(old)
        self._fill(profile.name)
        self._say(f"Saved profile '{profile.name}' in {self.store.path}", ok=True)
        return profile

    def delete_profile(self) -> None:
        name = self.current_name()
        if name is None:
            return
        self.store.delete(name)
        self._fill(name if name in _BUILT_IN else None)
        what = "reset to its defaults" if name in _BUILT_IN else "deleted"
        self._say(f"Profile '{name}' {what}", ok=True)

    def accept(self) -> None:
        if self.save_profile() is not None:
            super().accept()

    # --- keys -------------------------------------------------------------------------------------

    def _update_key_status(self) -> None:
        variable = self.form.key_env.text().strip()
        no_keyring = (
            f"No key can be stored here: {self._keyring_problem}. Set the environment variable "
            f"{variable or 'named above'} before starting nasstudio instead."
            if self._keyring_problem
            else ""
        )
        if not variable:
            self.key_status.setText(no_keyring)
            return
        try:
            profile = self.form.profile()
        except ProfileError:
            return
        found = resolve_api_key(profile) is not None
        source = f"${variable}" if self._keyring_problem else f"${variable} or the keyring"
        where = "found" if found else "not found"
        sent = (
            "sent to this URL"
            if profile.is_openai or profile.send_key_to_custom_url
            else "not sent to this custom URL"
        )
        self.key_status.setText(
            f"Key from {source}: {where}; {sent}. Keys never go into a "
            f"file of nasstudio. {no_keyring}".strip()
        )

    def store_key(self) -> None:
        key = self.key_edit.text().strip()
        if not key:
            self._say("Paste a key first.", ok=False)
            return
        try:
            profile = self.form.profile()
            save_api_key(profile, key)
        except ProfileError as exc:
            self._say(str(exc), ok=False)
            return
        except Exception as exc:  # keyring backends raise their own errors (no Secret Service…)
            self._say(f"The keyring refused the key: {exc}", ok=False)
            return
        finally:
            self.key_edit.clear()  # the key does not linger in the widget
        self._say(f"Key stored in the keyring as {profile.api_key_env}", ok=True)
        self._update_key_status()

    # --- connection test --------------------------------------------------------------------------

    def test_connection(self) -> asyncio.Task | None:
        """Send one request with the fields as they are; the answer shows when it comes."""
        try:
            profile = self.form.profile()
        except ProfileError as exc:
            self._say(str(exc), ok=False)
            return None
        self._stop_check()
        self.test_button.setEnabled(False)
        self._say(f"Asking {profile.model} at {profile.base_url}…", ok=True)
        self._check = asyncio.get_running_loop().create_task(self._run_check(profile))
        return self._check

    async def _run_check(self, profile: LLMProfile) -> None:
        # Cancelled (the dialog closed, or a new test started): nothing is shown.
        try:
            check = await check_connection(profile)
        except Exception as exc:  # a bug or an unforeseen library error: say it, keep the dialog
            self._say(f"Connection test failed: {type(exc).__name__}: {exc}", ok=False)
        else:
            self._say(check.message, ok=check.ok)
        self.test_button.setEnabled(True)

    def _stop_check(self) -> None:
        if self._check is not None:
            self._check.cancel()
            self._check = None

    def _say(self, text: str, ok: bool) -> None:
        self.message.setStyleSheet(_OK_STYLE if ok else _ERROR_STYLE)
        self.message.setText(text)

    def message_text(self) -> str:
        return self.message.text()
