"""The cycle collector's pause: off inside, back as it was after, cycles not left behind."""

from __future__ import annotations

import gc
import threading
import weakref
from collections.abc import Iterator

import pytest

from poiflow._gc import paused_gc


@pytest.fixture(autouse=True)
def _collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


class _Node:
    def __init__(self) -> None:
        self.me = self


def _cycle() -> weakref.ref[_Node]:
    return weakref.ref(_Node())


def _fail_paused(seen: list[bool]) -> None:
    with paused_gc():
        seen.append(gc.isenabled())
        raise ValueError("boom")


def test_off_inside_and_on_after_even_on_error() -> None:
    seen: list[bool] = []
    with pytest.raises(ValueError, match="boom"):
        _fail_paused(seen)
    assert seen == [False]
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with paused_gc():
        pass
    assert not gc.isenabled()


def test_nested_pauses_end_with_the_outermost() -> None:
    with paused_gc():
        with paused_gc():
            pass
        assert not gc.isenabled()
    assert gc.isenabled()


def test_collect_young_frees_a_blocks_cycles_inside_an_enclosing_pause() -> None:
    with paused_gc():
        with paused_gc():
            kept_without = _cycle()
        assert kept_without() is not None  # nothing collects while paused
        with paused_gc(collect_young=True):
            freed = _cycle()
        assert freed() is None
        assert kept_without() is None  # the young collection took the earlier one too


def test_threads_share_one_pause() -> None:
    inside = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with paused_gc():
            inside.set()
            release.wait(5)

    worker = threading.Thread(target=hold)
    worker.start()
    inside.wait(5)
    with paused_gc():
        pass
    assert not gc.isenabled()  # the other thread's pause is still on
    release.set()
    worker.join(5)
    assert gc.isenabled()


@pytest.mark.parametrize(("number", "region"), [("00 999 12345", None), ("999 123 456", None)])
def test_a_number_the_phone_parser_rejects_leaves_no_cycle(number: str, region: str | None) -> None:
    """The parser keeps its exception in a local (a cycle through its frames, and so every
    caller's frame and lists): where poiflow catches it, nothing must be left to collect."""
    from poiflow.normalize.phones import parse_phones, to_e164

    # Another test's leftover thread may make garbage meanwhile: a cycle the parser left
    # would be there every time, so the quietest of three tries must find none.
    lefts = []
    for _ in range(3):
        to_e164.cache_clear()  # parsed, not remembered
        gc.collect()
        with paused_gc():
            parsed = parse_phones(number, region)
            lefts.append(gc.collect())
        assert parsed.numbers == ()
        assert parsed.rejected == (number,)
    assert min(lefts) == 0
