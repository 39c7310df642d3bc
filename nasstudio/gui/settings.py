"""What the window remembers between runs, in QSettings (organisation and app "nasstudio")."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, Qt
from PySide6.QtWidgets import QSplitter, QWidget

MAX_RECENT = 10

LAST_PROJECT = "project/last"
RECENT_PROJECTS = "project/recent"
TASK = "view/task"
X_AXIS = "view/x"
Y_AXIS = "view/y"
GEOMETRY = "window/geometry"
STATE = "window/state"
SPLITTER = "window/splitter"
LEFT_SPLITTER = "window/left_splitter"
# Written by the Train panel's form; read when a Ray job is run again from the jobs panel.
RAY_ADDRESS = "train/ray_address"
RAY_STORAGE = "train/ray_storage"


def text(settings: QSettings, key: str) -> str | None:
    value = settings.value(key)
    return str(value) if value else None


def blob(settings: QSettings, key: str) -> QByteArray | None:
    value = settings.value(key)
    return value if isinstance(value, QByteArray) else None


def recent_projects(settings: QSettings) -> list[str]:
    value = settings.value(RECENT_PROJECTS, [])
    # A one-element list may come back as a plain string from an INI file.
    return [value] if isinstance(value, str) else [str(v) for v in value or []]


def remember_project(settings: QSettings, path: str | Path) -> None:
    """Make ``path`` the last project and the first of the recent ones."""
    path = str(Path(path).resolve())
    settings.setValue(LAST_PROJECT, path)
    recent = [path, *(p for p in recent_projects(settings) if p != path)][:MAX_RECENT]
    settings.setValue(RECENT_PROJECTS, recent)


def forget_project(settings: QSettings, path: str) -> None:
    settings.setValue(RECENT_PROJECTS, [p for p in recent_projects(settings) if p != path])
    if text(settings, LAST_PROJECT) == path:
        settings.remove(LAST_PROJECT)


def clear_recent(settings: QSettings) -> None:
    settings.setValue(RECENT_PROJECTS, [])


def start_project(settings: QSettings, requested: str | Path | None) -> Path | None:
    """The project to open at start: the requested one, else the last one if it still exists;
    None means the default project."""
    if requested is not None:
        return Path(requested)
    last = text(settings, LAST_PROJECT)
    return Path(last) if last and Path(last).exists() else None


def remembered_splitter(
    qsettings: QSettings, key: str, parts: Sequence[tuple[QWidget, int]], sizes: list[int]
) -> QSplitter:
    """A horizontal splitter of ``parts`` (widget, stretch factor) whose sizes are kept under
    ``key`` as the user drags them; ``sizes`` until then."""
    splitter = QSplitter(Qt.Orientation.Horizontal)
    for widget, stretch in parts:
        splitter.addWidget(widget)
        splitter.setStretchFactor(splitter.count() - 1, stretch)
    state = qsettings.value(key)
    if not (isinstance(state, QByteArray) and splitter.restoreState(state)):
        splitter.setSizes(sizes)
    splitter.splitterMoved.connect(lambda: qsettings.setValue(key, splitter.saveState()))
    return splitter
