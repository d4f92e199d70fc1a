"""What an ingest run says: counts per input file and in all (:class:`IngestReport`, kept
in ``run.json``), and what it tells a progress display while it reads
(:class:`IngestProgress`).

Every record read is counted once: a place (``valid``) or held back whole
(``quarantined``); values withheld from a record that went on are counted apart.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

__all__ = ["IngestProgress", "IngestReport", "SourceReport", "report_table"]


class IngestProgress(Protocol):
    """What ingest tells a progress display (the CLI draws it with rich)."""

    def start(self, label: str, total: int | None) -> None:
        """A source begins; ``total`` records if known."""

    def advance(self, records: int) -> None:
        """``records`` more records of the current source were read."""

    def finish(self) -> None:
        """The current source is done."""


@dataclass(slots=True)
class SourceReport:
    """Counts for one input file."""

    path: str
    kind: str
    sources: set[str] = field(default_factory=set)
    read: int = 0
    valid: int = 0
    quarantined: int = 0
    withheld_values: int = 0
    seconds: float = 0.0
    # Its sources whose points are mostly rounded to 2 decimals or fewer, and to how many.
    rounded: dict[str, int] = field(default_factory=dict)
    # Its other sources that give some of their points to 2 decimals, and what share.
    partly_rounded: dict[str, float] = field(default_factory=dict)
    # How many of its records had a name, street, town or brand repaired, by what
    # (``poiflow.text.REPAIRS``), and the first values each kind was made of.
    repaired: dict[str, int] = field(default_factory=dict)
    repair_examples: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def balanced(self) -> bool:
        """Whether every record read is accounted for."""
        return self.read == self.valid + self.quarantined


@dataclass(slots=True, repr=False)
class IngestReport:
    """What an ingest run read, kept, held back, and where it wrote."""

    output: Path
    quarantine: Path
    inputs: list[SourceReport] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def read(self) -> int:
        """Records read, over all inputs."""
        return sum(s.read for s in self.inputs)

    @property
    def valid(self) -> int:
        """Records that became places."""
        return sum(s.valid for s in self.inputs)

    @property
    def quarantined(self) -> int:
        """Records held back whole."""
        return sum(s.quarantined for s in self.inputs)

    @property
    def withheld_values(self) -> int:
        """Single values withheld from records that went on."""
        return sum(s.withheld_values for s in self.inputs)

    @property
    def balanced(self) -> bool:
        """``read == valid + quarantined`` for every input."""
        return all(s.balanced for s in self.inputs)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> IngestReport:
        """The report back from what :meth:`to_dict` wrote."""
        report = cls(Path(data["output"]), Path(data["quarantine"]), seconds=data["seconds"])
        for item in data["inputs"]:
            report.inputs.append(
                SourceReport(
                    item["path"],
                    item["kind"],
                    set(item["sources"]),
                    item["read"],
                    item["valid"],
                    item["quarantined"],
                    item["withheld_values"],
                    item["seconds"],
                    dict(item.get("rounded", {})),
                    dict(item.get("partly_rounded", {})),
                    dict(item.get("repaired", {})),
                    {k: tuple(v) for k, v in item.get("repair_examples", {}).items()},
                )
            )
        return report

    def __repr__(self) -> str:
        return (
            f"IngestReport(output={str(self.output)!r}, inputs={len(self.inputs)}, "
            f"read={self.read}, valid={self.valid}, quarantined={self.quarantined}, "
            f"withheld_values={self.withheld_values}, seconds={self.seconds:.1f})"
        )

    def _repr_html_(self) -> str:
        """A notebook's view: each input's counts, and the totals."""
        return report_table(
            ["input", "kind", "read", "valid", "quarantined", "values withheld"],
            [
                [s.path, s.kind, s.read, s.valid, s.quarantined, s.withheld_values]
                for s in self.inputs
            ]
            + [["all", "", self.read, self.valid, self.quarantined, self.withheld_values]],
            caption=f"ingest: {self.output} (held back: {self.quarantine})",
        )

    def to_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready data."""
        return {
            "output": str(self.output),
            "quarantine": str(self.quarantine),
            "read": self.read,
            "valid": self.valid,
            "quarantined": self.quarantined,
            "withheld_values": self.withheld_values,
            "seconds": round(self.seconds, 3),
            "inputs": [
                {
                    "path": s.path,
                    "kind": s.kind,
                    "sources": sorted(s.sources),
                    "read": s.read,
                    "valid": s.valid,
                    "quarantined": s.quarantined,
                    "withheld_values": s.withheld_values,
                    "seconds": round(s.seconds, 3),
                    "rounded": s.rounded,
                    "partly_rounded": s.partly_rounded,
                    "repaired": s.repaired,
                    "repair_examples": {k: list(v) for k, v in s.repair_examples.items()},
                }
                for s in self.inputs
            ],
        }


def report_table(
    header: list[str], rows: list[list[Any]], *, caption: str = "", note: str = ""
) -> str:
    """A small HTML table for a report's view in a notebook (numbers right-aligned, with
    thousands separators; every text escaped)."""

    def cell(value: Any, tag: str) -> str:
        if isinstance(value, int | float) and not isinstance(value, bool):
            text = f"{value:,}" if isinstance(value, int) else f"{value:,.2f}"
            return f'<{tag} style="text-align:right">{text}</{tag}>'
        return f"<{tag}>{html.escape(str(value))}</{tag}>"

    head = "".join(cell(name, "th") for name in header)
    body = "".join("<tr>" + "".join(cell(v, "td") for v in row) + "</tr>" for row in rows)
    title = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    after = f"<p>{html.escape(note)}</p>" if note else ""
    return f"<table>{title}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{after}"
