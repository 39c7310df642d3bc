"""What the window shows, without Qt: the task, the Pareto axes, the selected and current
architectures and the LLM profile. Panels set it and bind to its change events (as napari's
widgets bind to its evented models) instead of calling each other or the window.

``state.events.<field>.connect(callback)`` calls ``callback(new_value)`` after each change of
``state.<field>``. Bound methods are held weakly, so a binding never keeps a panel alive.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

Callback = Callable[[Any], object]


class Emitter:
    """The callbacks of one field's change event."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[], Callback | None]] = []

    def connect(self, callback: Callback) -> Callback:
        if hasattr(callback, "__self__") and hasattr(callback, "__func__"):
            self._callbacks.append(weakref.WeakMethod(callback))
        else:
            self._callbacks.append(lambda: callback)
        return callback

    def disconnect(self, callback: Callback) -> None:
        self._callbacks = [ref for ref in self._callbacks if ref() not in (callback, None)]

    def callbacks(self) -> list[Callback]:
        """The live callbacks (dead weak ones are dropped)."""
        live = [(ref, ref()) for ref in self._callbacks]
        self._callbacks = [ref for ref, callback in live if callback is not None]
        return [callback for _, callback in live if callback is not None]


class Events:
    """One ``Emitter`` per field of a ``ViewState``."""

    def __init__(self, names: list[str]) -> None:
        for name in names:
            setattr(self, name, Emitter())


@dataclass(eq=False)
class ViewState:
    task: str | None = None
    x_axis: str | None = None  # column key of the Pareto view's cost axis
    y_axis: str | None = None  # column key of its BLEU axis
    selection: tuple[str, ...] = ()  # selected architecture ids, in the table's order
    current: str | None = None  # the architecture the detail pane shows
    profile: str | None = None  # name of the LLM profile in use
    events: Events = field(init=False, repr=False)

    def __post_init__(self) -> None:
        names = [f.name for f in fields(self) if f.name != "events"]
        object.__setattr__(self, "events", Events(names))

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "selection":
            value = tuple(value)
        if getattr(self, name, _UNSET) == value:
            return
        object.__setattr__(self, name, value)
        events = self.__dict__.get("events")
        if events is None:  # still in __init__
            return
        for callback in getattr(events, name).callbacks():
            # A callback that set the field again has already told everyone the newer value.
            if getattr(self, name) is not value:
                break
            callback(value)


_UNSET = object()
