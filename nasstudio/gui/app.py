"""Entry point of the desktop application. Qt and the window load only when ``run`` is called,
so importing this module stays cheap."""

from __future__ import annotations

import gc
import sys

APP_NAME = "nasstudio"


def run(project_path: str | None = None) -> int:
    """Open the main window on ``project_path``, else the last project, else the default one
    (created with a demo when missing); run the event loop and return its exit code."""
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from nasstudio.gui import settings
    from nasstudio.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv)
    # Python's cyclic garbage collector runs in whichever thread allocates; a Qt object it
    # destroys in a job's worker thread deadlocks against the GUI thread. Collect here only.
    gc.disable()
    collector = QTimer(app, interval=2000)
    collector.timeout.connect(gc.collect)
    collector.start()
    app.setOrganizationName(APP_NAME)
    app.setApplicationName(APP_NAME)
    window = MainWindow(QSettings())
    start = settings.start_project(window.settings, project_path)
    if not window.open_project(start) and start is not None:
        window.open_project(None)  # the error box shows over the default project
    window.show()
    return app.exec()
