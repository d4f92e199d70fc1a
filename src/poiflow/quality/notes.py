"""What a run says of its sources in words, on the terminal and in its report."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from poiflow.text import kept_examples

__all__ = [
    "input_notes",
    "partly_rounded_note",
    "repair_note",
    "repair_notes",
    "rounding_note",
    "unjudged_notes",
]

_ROUNDED: Final = {2: "1 km", 1: "10 km", 0: "100 km"}  # a point's error, rounded so
_EXAMPLE_CHARACTERS: Final = 50  # of a value shown as an example of a repair: a name, mostly


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


def repair_note(path: str, what: str, records: int, examples: Sequence[str] = ()) -> str:
    """That ``records`` records of the input at ``path`` had a value repaired, by ``what``
    (``poiflow.text.REPAIRS``), and the first values it was made of (``examples``).

    >>> repair_note("feed.csv", "text garbled", 2, ["CafÃ©", "BrÃ¶d"])
    'feed.csv: 2 records had text garbled: "CafÃ©", "BrÃ¶d"'
    """
    return f"{path}: {records:,} record{'s' if records != 1 else ''} had {what}{_shown(examples)}"


def _shown(examples: Sequence[str]) -> str:
    """``examples`` quoted after a colon, each cut to a few words ("" for none)."""
    cut = [
        v if len(v) <= _EXAMPLE_CHARACTERS else f"{v[: _EXAMPLE_CHARACTERS - 1].rstrip()}…"
        for v in examples
    ]
    return ": " + ", ".join(f'"{v}"' for v in cut) if cut else ""


def repair_notes(
    inputs: Iterable[tuple[str, Mapping[str, int], Mapping[str, Sequence[str]]]],
) -> list[str]:
    """A note for each kind of repair the inputs made (each input its path, its records
    repaired by ``what``, and the first values of each): one input's as
    :func:`repair_note` words it, several inputs' in one line that names their folder
    once, so that ten feeds of one habit say it once.

    >>> repair_notes([("feed.csv", {"text garbled": 2}, {"text garbled": ["CafÃ©"]})])
    ['feed.csv: 2 records had text garbled: "CafÃ©"']
    >>> repair_notes([("in/a.csv", {"text garbled": 2}, {}), ("in/b.csv", {"text garbled": 1}, {})])
    ['3 records had text garbled; in in/: a.csv 2, b.csv 1']
    """
    by_what: dict[str, dict[str, int]] = {}
    shown: dict[str, tuple[str, ...]] = {}
    for path, repaired, examples in inputs:
        for what, records in repaired.items():
            counts = by_what.setdefault(what, {})
            counts[path] = counts.get(path, 0) + records
            shown[what] = kept_examples(shown.get(what, ()), examples.get(what, ()))
    notes = []
    for what, counts in sorted(by_what.items()):
        if len(counts) == 1:
            [(path, records)] = counts.items()
            notes.append(repair_note(path, what, records, shown[what]))
            continue
        # Split at the last "/" (not as a local path: an input may be in object storage,
        # s3://bucket/feeds/a.csv, whose "//" a local path would make one).
        folders, names = zip(*(_folder_and_name(path) for path in counts), strict=True)
        where = ""
        if len(set(folders)) == 1 and len(set(names)) == len(names):
            where = f"in {folders[0]}/: " if folders[0] else ""
        else:  # files of one name in other folders: each by its whole path
            names = tuple(counts)
        files = ", ".join(
            f"{name} {records:,}" for name, records in zip(names, counts.values(), strict=True)
        )
        total = sum(counts.values())
        notes.append(f"{total:,} records had {what}{_shown(shown[what])}; {where}{files}")
    return notes


def _folder_and_name(path: str) -> tuple[str, str]:
    folder, _, name = path.rpartition("/")
    return folder, name


def partly_rounded_note(source: str, share: float) -> str:
    """What a source that gives ``share`` of its points to 2 decimals or fewer means.

    >>> partly_rounded_note("acme", 0.25)[:58]
    "source 'acme' gives 25% of its points to 2 decimals or few"
    """
    return (
        f"source '{source}' gives {share:.0%} of its points to 2 decimals or fewer (about "
        "1 km): matching reads each of those as that far from its place, the others as given"
    )


def input_notes(inputs: Iterable[Mapping[str, Any]]) -> list[str]:
    """What a run's inputs (``run.json``'s ``inputs``) mean for it, in words: each source
    whose points are mostly rounded to a kilometre or more, each that rounds some of
    them, and each kind of repair ingest made of their text (:func:`repair_notes`)."""
    inputs = list(inputs)
    return [
        *(
            rounding_note(name, decimals)
            for i in inputs
            for name, decimals in sorted(i.get("rounded", {}).items())
        ),
        *(
            partly_rounded_note(name, share)
            for i in inputs
            for name, share in sorted(i.get("partly_rounded", {}).items())
        ),
        *repair_notes(
            (i["path"], i.get("repaired", {}), i.get("repair_examples", {})) for i in inputs
        ),
    ]


def unjudged_notes(
    accuracy: Mapping[str, Mapping[str, float]], shown: Iterable[str], far: Iterable[str] = ()
) -> list[str]:
    """What the table of how often each source is right cannot say, and why: attributes
    (of ``shown``) that two sources alone judge, whose agreement cannot tell which of them
    is wrong, and sources (``far``) whose points no place of enough located records judges.

    >>> unjudged_notes({"name": {"osm": 0.9, "feed": 0.9}}, ["name"])[0][:36]
    'Name: judged by two sources alone. W'
    """
    said = []
    # A point is judged by its distance from its place's others, not by agreement.
    pair = [a for a in shown if a != "location" and len(accuracy.get(a, {})) == 2]
    if pair:
        said.append(
            f"{', '.join(pair).capitalize()}: judged by two sources alone. Where they differ, "
            "agreement cannot say which one is wrong, so each is taken to be as often right "
            "as the other; a third source tells them apart."
        )
    far = list(far)
    if far:
        said.append(
            f"Points typically off, '-' ({', '.join(far)}): too few of "
            + ("its" if len(far) == 1 else "their")
            + " points lie in places with enough other located records to judge them by."
        )
    return said
