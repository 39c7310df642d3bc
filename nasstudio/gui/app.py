"""Entry point of the desktop application. Qt and the window load only when ``run`` is called,
so importing this module stays cheap."""

from __future__ import annotations

import sys

APP_NAME = "nasstudio"


def run(project_path: str | None = None) -> int:
    """Open the main window on ``project_path``, else the last project, else the default one
    (created with a demo when missing); run the event loop and return its exit code."""
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    from nasstudio.gui import settings
    from nasstudio.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv)
    app.setOrganizationName(APP_NAME)
    app.setApplicationName(APP_NAME)
    window = MainWindow(QSettings())
    start = settings.start_project(window.settings, project_path)
    if not window.open_project(start) and start is not None:
        window.open_project(None)  # the error box shows over the default project
    window.show()
    return app.exec()
