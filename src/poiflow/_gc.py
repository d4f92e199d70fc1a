"""Pause Python's cycle collector while records are turned into Python objects and back.

Normalizing a batch makes a few Python containers per record (``to_pylist`` rows, lists of
phones, dicts of categories). Each counts towards the collector's thresholds, so a batch of
100k records sets off thousands of young collections and several full ones, and every full
one walks every object the process holds. Validating and normalizing 1.1M records took
54 s with the collector on and 25 s with it paused (``benchmarks/ingest_overheads.py``).

While paused it does not run at all. A cycle made meanwhile waits until the pause ends, or
until a young collection at the end of the batch (``collect_young``) finds it. So a long
pause (a pipeline stage) that reads batch by batch collects after each batch, and what
waits is bounded by one batch. Normalizing makes no cycles of its own: the one library that
did (the phone parser keeps an exception in a local, and through its frames every caller's
lists) has its frames cleared where its exception is caught, so the batch's objects go as
soon as they are unused and these collections find little to walk.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["paused_gc"]

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def paused_gc(*, collect_young: bool = False) -> Iterator[None]:
    """Run the block with the cycle collector off; nested and threaded uses share one pause,
    and the collector comes back on (if it was on) when the last of them ends.

    Args:
        collect_young: When the block ends inside an enclosing pause (a pipeline stage that
            reads its input batch by batch), collect the objects made since the last
            collection, so that the cycles of one batch do not wait for the whole stage.
            That walks only what is young, not everything the process holds.
    """
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            outermost = _depth == 0
            if outermost and _was_enabled:
                gc.enable()
        if collect_young and not outermost:
            gc.collect(0)
