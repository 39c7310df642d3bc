"""Entry point of the desktop application. Qt and the window load only when ``run`` is called,
so importing this module stays cheap."""

from __future__ import annotations

import asyncio
import gc
import signal
import sys

APP_NAME = "nasstudio"


def run(project_path: str | None = None) -> int:
    """Open the main window on ``project_path``, else the last project, else the default one
    (created with a demo when missing); run the event loop and return its exit code."""
    from PySide6.QtCore import QSettings, Qt
    from PySide6.QtWidgets import QApplication
    from qasync import QEventLoop

    from nasstudio.gui import settings
    from nasstudio.gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv)
    # Qt's event loop is asyncio's too: LLM requests are coroutines on the GUI thread. It is the
    # thread's loop before the window's job runner takes it.
    loop = QEventLoop(app)
    asyncio.set_event_loop(loop)
    app.setOrganizationName(APP_NAME)
    app.setApplicationName(APP_NAME)
    window = MainWindow(QSettings())
    # Closing deletes the window's Qt objects here, on the GUI thread, never later in whatever
    # thread the garbage collector happens to run in.
    window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    start = settings.start_project(window.settings, project_path)
    if not window.open_project(start) and start is not None:
        window.open_project(None)  # the error box shows over the default project
    window.show()
    # Ended by the session (logout, `kill`): close as the user would, cancelling the jobs and
    # saving the layout. The handler runs at the window's next timer tick (Python code).
    signal.signal(signal.SIGTERM, lambda *_: window.close())
    # What start-up made (torch, Qt wrappers, the window) lives as long as the app: out of the
    # collector's sight, full collections stay short.
    gc.freeze()
    with loop:
        return loop.run_forever()
