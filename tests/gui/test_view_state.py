"""The Qt-free view state: change events, weak bindings; it and the table reader (what the
reader process imports) import no Qt."""

from __future__ import annotations

import gc
import subprocess
import sys

from nasstudio.gui.view_state import ViewState


def test_a_change_calls_each_callback_once_with_the_new_value():
    state, heard = ViewState(), []
    state.events.task.connect(heard.append)
    state.task = "demo"
    state.task = "demo"  # unchanged: no event
    state.selection = ["a", "b"]  # stored as a tuple
    assert heard == ["demo"] and state.selection == ("a", "b")
    state.events.task.disconnect(heard.append)
    state.task = "other"
    assert heard == ["demo"]


def test_a_callback_that_sets_the_field_again_wins():
    state, heard = ViewState(), []
    state.events.selection.connect(lambda ids: setattr(state, "selection", ids[:1]))
    state.events.selection.connect(heard.append)
    state.selection = ["a", "b"]
    assert state.selection == ("a",) and heard == [("a",)]  # never the stale ("a", "b")


def test_bound_methods_are_held_weakly():
    class Panel:
        def __init__(self) -> None:
            self.seen = []

        def on_task(self, task: str) -> None:
            self.seen.append(task)

    state, panel = ViewState(), Panel()
    state.events.task.connect(panel.on_task)
    state.task = "demo"
    assert panel.seen == ["demo"]
    del panel
    gc.collect()
    assert state.events.task.callbacks() == []
    state.task = "other"  # nobody left to call


def test_the_view_state_and_the_table_reader_import_no_qt():
    code = (
        "import sys, nasstudio.gui.view_state, nasstudio.gui.table_reader\n"
        "print(sorted(m for m in sys.modules if m.startswith(('PySide', 'shiboken', 'pyqtgraph'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
