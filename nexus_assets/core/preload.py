"""Importing a stage's heavy libraries in the background while earlier steps run.

The compliance PDF needs pandas and reportlab (about a second to import on these machines), and
a run reaches it only after the image step, which mostly waits on the engine: importing them in
a thread from the run's start overlaps that second with the wait instead of adding it to the end
of every run that makes the PDF. An import is idempotent and the interpreter's import lock makes
the step's own import wait for a half-done one, so the step behaves exactly as without this; a
failure here is ignored (the step's own import then raises it where it belongs)."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterable


def preload(modules: Iterable[str]) -> threading.Thread:
    """Start importing modules in a daemon thread; returns the thread (tests join it)."""
    names = list(modules)

    def load() -> None:
        for name in names:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001  # the step's own import reports it
                return

    thread = threading.Thread(target=load, name="nexus-preload", daemon=True)
    thread.start()
    return thread
