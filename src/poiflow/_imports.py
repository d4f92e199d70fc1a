"""Imports with some packages kept out, as if they were not installed.

Some libraries import a large package only for a part of their API that poiflow never
uses, or only to ask whether a value is one of that package's objects: LightGBM imports
scikit-learn (with SciPy's statistics, about 1.5 s) for its scikit-learn estimators, and
pyarrow imports pandas (0.3 s) the first time it converts a list or makes an array for
numpy, and lleaves to read data frames. Where poiflow owns the process (an ingest worker,
the ``poiflow`` command), such a package can be kept out of that import, or out of a
whole command's work (``poiflow conflate`` on this machine). A library user's own process
(a notebook, their program) is theirs: there nothing is kept out, since they may want the
whole API.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

__all__ = ["Unimportable", "command_process", "is_command_process", "kept_out", "without"]

_command = False


class Unimportable:
    """An import finder that refuses ``packages`` and their modules, as if they were not
    installed (``ModuleNotFoundError``, which ``importlib.util.find_spec`` raises too).
    A module already imported is not looked for again, and stays."""

    def __init__(self, packages: Sequence[str]) -> None:
        self.packages = tuple(packages)

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name.partition(".")[0] in self.packages:
            raise ModuleNotFoundError(f"No module named {name!r} here", name=name)


@contextmanager
def without(packages: Sequence[str]) -> Iterator[None]:
    """Import in the block as if ``packages`` were not installed (any thread's imports
    meanwhile too; keep the block to one import)."""
    finder = Unimportable(packages)
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


@contextmanager
def kept_out(packages: Sequence[str]) -> Iterator[None]:
    """In the ``poiflow`` command's own process, import in the block, in every thread, as if
    ``packages`` were not installed: for a command's whole work, where nothing it runs
    needs them. Elsewhere (a library user's process) imports go on as usual."""
    if not _command or not packages:
        yield
        return
    with without(packages):
        yield


def command_process() -> None:
    """Say that this process runs the ``poiflow`` command, which owns it."""
    global _command
    _command = True


def is_command_process() -> bool:
    """Whether this process runs the ``poiflow`` command (:func:`command_process`)."""
    return _command
