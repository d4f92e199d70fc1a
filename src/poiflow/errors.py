"""Every error poiflow raises on purpose, rooted at one class.

The tree::

    PoiflowError                 anything poiflow refuses to do, with a readable message
    ├── ConfigError              a config or mapping file is malformed (names the file, line, key)
    │   └── NoSuchStageError     a run has no stage of that name (a KeyError too)
    ├── InputError               an input file cannot be read as what it claims to be
    │   ├── UnknownFormatError   the file's kind cannot be told from its name or content
    │   ├── CorruptInputError    the file is truncated or its bytes are not the format
    │   └── SchemaMismatchError  columns are missing, unknown, or of the wrong type
    ├── OutputError              an output cannot be written, or would be empty
    │   └── QualityGateError     the checks flagged more than the gate allows: not published
    └── StageFailedError         a pipeline stage failed; says which, and how to resume

Bad *records* are not errors: they go to the quarantine table with a reason. Errors are for
the cases where nothing sensible can be produced, and they always say where and what.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = [
    "ConfigError",
    "CorruptInputError",
    "InputError",
    "NoCandidatesError",
    "NoSuchStageError",
    "NothingValidError",
    "OutputError",
    "PoiflowError",
    "QualityGateError",
    "SchemaMismatchError",
    "StageFailedError",
    "Terminated",
    "UnknownFormatError",
    "did_you_mean",
]


class PoiflowError(Exception):
    """The root of every error poiflow raises on purpose.

    Args:
        message: What went wrong and, where it helps, what was expected.
        path: The file the error is about, if any.
        location: Where in that file: a line number, a field, a row, an OSM object.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        location: str | int | None = None,
    ) -> None:
        self.message = message
        self.stage: str | None = None  # the pipeline stage it came from, set by the runner
        self.path = str(path) if path is not None else None
        self.location = str(location) if location is not None else None
        super().__init__(str(self))

    def __reduce__(self) -> tuple[Any, ...]:
        # Errors cross process boundaries (the local engine's workers) with their context.
        return (_rebuild, (type(self), self.message, self.path, self.location))

    def __str__(self) -> str:
        where = self.path or ""
        if self.location is not None:
            where = f"{where}:{self.location}" if where else self.location
        return f"{where}: {self.message}" if where else self.message


class ConfigError(PoiflowError):
    """A config, pipeline or mapping file is malformed."""


class NoSuchStageError(ConfigError, KeyError):
    """A stage a run does not have: a ``KeyError`` too, as a missing key is."""


class InputError(PoiflowError):
    """An input file cannot be read as what it claims to be."""


class UnknownFormatError(InputError):
    """The kind of an input cannot be told from its name or its content."""


class CorruptInputError(InputError):
    """An input is truncated, or its bytes are not the format its name says."""


class SchemaMismatchError(InputError):
    """An input's columns are missing, unknown, or of the wrong type."""


class NoCandidatesError(InputError, ValueError):
    """A model is to be fitted on candidate pairs, and the records give none.

    Args:
        what: What needed them ("fitting a Fellegi-Sunter model").
    """

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(
            f"{what} needs candidate pairs, and these records give none: no two of them are "
            "near each other or share a name word, a phone, a web site or an address"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (NoCandidatesError, (self.what,))


class ServerUnavailableError(InputError):
    """A server poiflow reads from (a search server, a serving store) cannot be reached, or
    does not hold what was asked for yet (nothing published there)."""


class OutputError(PoiflowError):
    """An output cannot be written, or would be meaningless (e.g. empty)."""


class NothingValidError(OutputError):
    """No record read survived validation, or the inputs held none.

    Args:
        why: What was read and why it was held back (the commonest reasons, each with where
            it first occurs).
        quarantine: The file that keeps each held-back record with its reason, where the
            reader can still open it (not a run's staging folder, which is removed).
        path: The input, where there is one.

    Attributes:
        why: As given: a caller whose quarantine file goes away raises it again without it.
    """

    def __init__(
        self, why: str, *, quarantine: str | Path | None = None, path: str | Path | None = None
    ) -> None:
        self.why = why
        self.quarantine = str(quarantine) if quarantine is not None else None
        where = f"; each, with its reason, is in {quarantine}" if quarantine is not None else ""
        super().__init__(why + where, path=path)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_nothing_valid, (self.why, self.quarantine, self.path))


class QualityGateError(OutputError):
    """A run's quality checks flagged more than its gate allows: nothing was published."""


class StageFailedError(PoiflowError):
    """A stage of a pipeline run failed; the error it raised is the ``__cause__``.

    Attributes:
        stage: The stage that failed. The stages before it are kept (in the cache, if the
            pipeline has one), so a re-run, or one ``--from`` this stage, starts here.
    """

    def __init__(
        self,
        message: str,
        *,
        stage: str,
        path: str | Path | None = None,
        location: str | int | None = None,
    ) -> None:
        super().__init__(message, path=path, location=location)
        self.stage = stage

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_stage, (self.message, self.stage, self.path, self.location))


def _rebuild_stage(
    message: str, stage: str, path: str | None, location: str | None
) -> StageFailedError:
    return StageFailedError(message, stage=stage, path=path, location=location)


def _rebuild_nothing_valid(why: str, quarantine: str | None, path: str | None) -> NothingValidError:
    return NothingValidError(why, quarantine=quarantine, path=path)


def _rebuild(
    cls: type[PoiflowError], message: str, path: str | None, location: str | None
) -> PoiflowError:
    return cls(message, path=path, location=location)


class Terminated(SystemExit):
    """The process was sent SIGTERM (Kubernetes, Airflow, ``kill``): it exits with status
    143 as the signal would, but by unwinding, so that its ``finally`` clauses remove what
    it had half written."""

    def __init__(self) -> None:
        super().__init__(143)


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest choice, or ``""`` if none is close.

    Args:
        name: What the user typed.
        choices: The names that would have been accepted.
    """
    close = difflib.get_close_matches(name, sorted(set(choices)), n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""
