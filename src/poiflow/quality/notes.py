"""What a run says of its sources in words, on the terminal and in its report."""

from __future__ import annotations

from typing import Final

__all__ = ["partly_rounded_note", "repair_note", "rounding_note"]

_ROUNDED: Final = {2: "1 km", 1: "10 km", 0: "100 km"}  # a point's error, rounded so


def rounding_note(source: str, decimals: int) -> str:
    """What a source whose points are mostly rounded to ``decimals`` means for matching.

    >>> rounding_note("acme", 2)[:55]
    "source 'acme' gives most of its points to 2 decimals (a"
    """
    return (
        f"source '{source}' gives most of its points to {decimals} decimals (about "
        f"{_ROUNDED.get(decimals, '1 km')}): its points can be that far from its places, and "
        "matching reads its records' distances less that"
    )


def repair_note(path: str, what: str, records: int) -> str:
    """That ``records`` records of the input at ``path`` had a value repaired, by ``what``
    (``poiflow.text.REPAIRS``).

    >>> repair_note("feed.csv", "text garbled", 2)
    'feed.csv: 2 records had text garbled'
    """
    return f"{path}: {records:,} record{'s' if records != 1 else ''} had {what}"


def partly_rounded_note(source: str, share: float) -> str:
    """What a source that gives ``share`` of its points to 2 decimals or fewer means.

    >>> partly_rounded_note("acme", 0.25)[:58]
    "source 'acme' gives 25% of its points to 2 decimals or few"
    """
    return (
        f"source '{source}' gives {share:.0%} of its points to 2 decimals or fewer (about "
        "1 km): matching reads each of those as that far from its place, the others as given"
    )
