"""The items of a list in a JSON document, read one at a time by Python's own parser.

For what a fast streaming parser cannot read: an integer past 64 bits (valid JSON), or
NaN and Infinity (not JSON, though Python's ``json.dumps`` writes them for a missing
value). The file is read a block at a time into a window that holds no more than the item
being read and as much again, so a file of any size goes through in little memory. An item
that holds NaN or Infinity is given as :class:`NotJson` (its text), so that a reader can
hold it back and go on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import IO, Any, Final, NamedTuple, NoReturn

__all__ = ["BrokenJsonError", "ConstantError", "NotJson", "list_items", "not_json"]

_BLOCK: Final = 1 << 20  # characters read at a time
_SPACE: Final = re.compile(r"[ \t\n\r]*")


class NotJson(NamedTuple):
    """An item that holds NaN or Infinity: its text, and the first such constant."""

    text: str
    constant: str


class BrokenJsonError(ValueError):
    """The text is not the JSON object expected, or is cut short."""


class ConstantError(ValueError):
    """A constant JSON has not (NaN, Infinity, -Infinity), met by a strict decoder."""

    def __init__(self, name: str) -> None:
        super().__init__(f"{name} is not JSON")
        self.name = name


def not_json(constant: str) -> NoReturn:
    """``parse_constant`` for Python's parser that refuses what JSON has not."""
    raise ConstantError(constant)


def list_items(handle: IO[str], key: str) -> Iterator[Any]:
    """The items of the list under ``key`` of the JSON object that ``handle`` holds,
    one by one; an item holding NaN or Infinity as :class:`NotJson`.

    Raises:
        BrokenJsonError: The text is not such an object, or is cut short.
    """
    strict = json.JSONDecoder(parse_constant=not_json)
    lenient = json.JSONDecoder()  # reads NaN and Infinity: to find where such an item ends
    window = _Window(handle)
    window.expect("{")
    while not window.take("}"):
        name = window.decode(lenient)
        window.expect(":")
        if name != key:
            window.decode(lenient)
        elif not window.take("["):
            raise BrokenJsonError(f"{key!r} is not a list")
        else:
            while not window.take("]"):
                window.release()  # what lies before this item; positions hold until the next
                start = window.at
                try:
                    yield window.decode(strict)
                except ConstantError as constant:
                    window.at = start
                    window.decode(lenient)
                    yield NotJson(window.text[start : window.at].strip(), constant.name)
                window.take(",")
        window.take(",")
        window.release()


class _Window:
    """A text read a block at a time, with a position in it. What lies before the
    position is let go only when :meth:`release` says, so positions taken between two
    releases stay good."""

    def __init__(self, handle: IO[str]) -> None:
        self._handle = handle
        self.text = ""
        self.at = 0
        self._ended = False

    def release(self) -> None:
        """Let go of the text before the position."""
        if self.at:
            self.text, self.at = self.text[self.at :], 0

    def _more(self) -> bool:
        if self._ended:
            return False
        # At least as much as is still unread in the window: an item that spans many
        # blocks is decoded again after each read, so the reads grow with it (each at
        # least doubling the window) and a large item costs time in line with its size.
        block = self._handle.read(max(_BLOCK, len(self.text) - self.at))
        if not block:
            self._ended = True
            return False
        self.text += block
        return True

    def _skip_space(self) -> None:
        while True:
            self.at = _SPACE.match(self.text, self.at).end()  # type: ignore[union-attr]
            if self.at < len(self.text) or not self._more():
                return

    def take(self, token: str) -> bool:
        """Move past ``token`` (after any space), if it comes next."""
        self._skip_space()
        if self.text.startswith(token, self.at):
            self.at += len(token)
            return True
        if self.at >= len(self.text):
            raise BrokenJsonError(f"incomplete JSON: expected {token!r} at the end")
        return False

    def expect(self, token: str) -> None:
        if not self.take(token):
            found = self.text[self.at : self.at + 20]
            raise BrokenJsonError(f"expected {token!r}, found {found!r}")

    def decode(self, decoder: json.JSONDecoder) -> Any:
        """The next JSON value, read further into the file until it is whole."""
        self._skip_space()
        while True:
            try:
                value, end = decoder.raw_decode(self.text, self.at)
            except json.JSONDecodeError as exc:
                if self._more():
                    continue
                raise BrokenJsonError(f"incomplete or invalid JSON: {exc}") from exc
            # A number may go on past the window's end ("12" of "123").
            if end == len(self.text) and self._more():
                continue
            self.at = end
            return value
