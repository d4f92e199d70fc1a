"""Hypothesis strategies for your own tests: tables as a run hands them to your code.

A stage of your own (``custom:`` in a pipeline) gets the records after ingest, the scored
pairs after score, or the golden places after merge; a check of your own gets the golden
places as a polars DataFrame. These strategies draw such tables, made by poiflow's own
reading, normalization, scoring and merge of places drawn as feeds write them (names in
several languages and scripts, in capitals, with a legal form; phones and web addresses
in many formats; fields missing; points near a town, or none), so that a property test of
your function sees what a run would give it::

    from hypothesis import given
    from poiflow.testing import records, stage_result

    from rules import drop_closed

    @given(records())
    def test_drop_closed_leaves_out_only_closed_places(table):
        kept = stage_result(drop_closed, table, after="ingest", statuses=["permanently_closed"])
        assert "permanently_closed" not in kept.column("operating_status").to_pylist()

:func:`stage_result` holds what your function returns to what a run holds it to, and
fails as the run would (a ``ConfigError`` naming what is wrong); :func:`check_result`
does the same for a check of yours, and gives the places it flagged.

Needs hypothesis (``pip install hypothesis``; poiflow's ``testing`` extra installs it).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any, Final

try:
    from hypothesis import strategies as st
except ImportError as exc:  # a dependency of tests, not of poiflow
    raise ImportError(
        "poiflow.testing draws its tables with hypothesis: pip install hypothesis "
        "(or poiflow[testing])"
    ) from exc

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from poiflow.conflate.merge import merge_clusters
from poiflow.generate.habits import (
    CLOSED_MARKS,
    MARKUP,
    NUMBER_FORMS,
    PHONE_NOTES,
    STORE_FORMS,
    escaped_for_the_web,
    read_as_windows_1252,
)
from poiflow.pipeline.custom import checked_result
from poiflow.pipeline.preparing import prepare_records
from poiflow.quality.checking import CheckResult, QualityInput
from poiflow.quality.checks import FunctionCheck
from poiflow.schema import PLACE_SCHEMA
from poiflow.sources import flat_records
from poiflow.taxonomy import taxonomy

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "check_frames",
    "check_result",
    "flat_places",
    "golden_places",
    "records",
    "scored_pairs",
    "stage_result",
]

# Names as feeds write them: several languages and scripts, chains, punctuation.
_NAMES: Final = (
    "Café Aalto",
    "Ravintola Sävel",
    "Kahvila Kulma",
    "Yliopiston Apteekki",
    "Stockmann",
    "Starbucks",
    "McDonald's",
    "Ben & Jerry's",
    "Bäckerei Müller",
    "Pizzeria Da Mario",
    "Hotel Kämp",
    "Librairie Gallimard",
    "Musée d'Orsay",
    "Farmacia San José",
    "Café de Flore",
    "Kauppahalli",
    "Merenneito / Sjöjungfru",
    "Otto. automaatti (ATM)",
    "Книжный магазин Москва",
    "東京タワー",
    "Πλατεία Συντάγματος",
    "K-Market Kamppi",
    "7-Eleven",
)
_FORMS: Final = ("", " Oy", " Ltd", " GmbH", " S.A.", " Inc.")
# A town of each of a few countries: its name, country, a postcode and its centre.
_TOWNS: Final = (
    ("Helsinki", "FI", "00100", 60.1699, 24.9384),
    ("Berlin", "DE", "10117", 52.5200, 13.4050),
    ("Paris", "FR", "75001", 48.8566, 2.3522),
    ("Madrid", "ES", "28013", 40.4168, -3.7038),
    ("New York", "US", "10001", 40.7128, -74.0060),
    ("Tokyo", "JP", "100-0005", 35.6762, 139.6503),
)
_STREETS: Final = (
    "Mannerheimintie",
    "Aleksanterinkatu",
    "Unter den Linden",
    "Rue de Rivoli",
    "Calle Mayor",
    "Broadway",
    "Main St",
)
_PHONES: Final = ("+{c} {a} {n}", "0{a} {n}", "({a}) {n}", "0{a}-{n}", "{a}{n}", "tel. 0{a} {n}")
_CODES: Final = {"FI": "358", "DE": "49", "FR": "33", "ES": "34", "US": "1", "JP": "81"}
_SITES: Final = ("https://www.{d}.com/", "www.{d}.fi", "http://{d}.de/menu", "{d}.com")
_HOURS: Final = ("Mo-Fr 09:00-17:00", "24/7", "Mo-Sa 10:00-20:00; Su off", "Mon-Fri 9am-5pm")
_STATUSES: Final = ("open", "Open", "temporarily closed", "permanently_closed", "closed")
_LABELS: Final = ("Café", "Restaurant", "amenity=pharmacy", "Hotel", "shop")


def flat_places(
    *, source: str = "feed", located: bool | None = None
) -> st.SearchStrategy[dict[str, Any]]:
    """Places in the flat place format (a CSV's or a JSON-lines feed's columns, and the
    body of ``POST /match``), as dictionaries: an ``id`` and a ``name`` always, any of the
    other fields where drawn.

    Args:
        source: Their ``source``.
        located: True: each has a point; False: none has; None: either.
    """
    return _flat_place(source, st.text("0123456789", min_size=1, max_size=8), located)


def _as_is(name: str, _number: int) -> str:
    return name


# What feeds do to a name, as the generator's habits do it (``poiflow generate
# --vendor-noise``): a spreadsheet's wrong encoding, an export for the web, a scraped
# page's markup, a closure or a store's number written in it; most names as they are.
_NAME_HABITS: Final = (
    *(_as_is,) * 4,
    lambda name, _: read_as_windows_1252(name),
    lambda name, _: escaped_for_the_web(name),
    *(lambda name, _, form=form: form.format(name) for form in (*MARKUP, *CLOSED_MARKS)),
    *(lambda name, number, form=form: form.format(name, number) for form in STORE_FORMS),
)


@st.composite
def _flat_place(
    draw: st.DrawFn, source: str, ids: st.SearchStrategy[str], located: bool | None
) -> dict[str, Any]:
    town, country, postcode, lat, lon = draw(st.sampled_from(_TOWNS))
    name = draw(st.sampled_from(_NAMES)) + draw(st.sampled_from(_FORMS))
    name = name.upper() if draw(st.booleans()) and draw(st.booleans()) else name
    name = draw(st.sampled_from(_NAME_HABITS))(name, draw(st.integers(10, 99_999)))
    place: dict[str, Any] = {"source": source, "id": draw(ids), "name": name}
    if located if located is not None else draw(st.booleans()):
        step = st.floats(-0.02, 0.02, allow_nan=False)
        place["lat"], place["lon"] = round(lat + draw(step), 6), round(lon + draw(step), 6)
    optional = {
        "category": st.sampled_from(sorted(taxonomy().categories)) | st.sampled_from(_LABELS),
        "street": st.sampled_from(_STREETS),
        "housenumber": st.builds(  # as buildings and feeds write them (the generator's)
            lambda form, n, street: form.format(n=n, m=n + 2, street=street),
            st.sampled_from(("{n}", *NUMBER_FORMS)),
            st.integers(1, 120),
            st.sampled_from(_STREETS),
        ),
        "postcode": st.just(postcode),
        "city": st.just(town) | st.just(town.upper()),
        "country": st.just(country),
        "phone": st.builds(
            lambda form, area, number, note: note.format(
                form.format(c=_CODES[country], a=area, n=number)
            ),
            st.sampled_from(_PHONES),
            st.integers(2, 99),
            st.integers(1_000_000, 9_999_999),
            st.sampled_from(("{}", *PHONE_NOTES)),
        ),
        "website": st.builds(
            lambda form, domain: form.format(d=domain),
            st.sampled_from(_SITES),
            st.from_regex(r"[a-z]{3,10}", fullmatch=True),
        ),
        "opening_hours": st.sampled_from(_HOURS),
        "operating_status": st.sampled_from(_STATUSES),
        "update_time": st.dates(min_value=date(2015, 1, 1), max_value=date(2026, 1, 1)).map(str),
    }
    for field, values in optional.items():
        if draw(st.booleans()):
            place[field] = draw(values)
    return place


def records(
    *, min_size: int = 0, max_size: int = 20, sources: Sequence[str] = ("osm", "vendor")
) -> st.SearchStrategy[pa.Table]:
    """Tables of normalized records (``PLACE_SCHEMA``), as a stage after ingest gets them:
    places drawn in the flat format (:func:`flat_places`), read and normalized by poiflow,
    each (source, id) once.

    Args:
        min_size, max_size: How many records.
        sources: The sources they come from.
    """
    return _records(min_size, max_size, tuple(sources))


@st.composite
def _records(draw: st.DrawFn, min_size: int, max_size: int, sources: tuple[str, ...]) -> pa.Table:
    n = draw(st.integers(min_size, max_size))
    drawn = [
        draw(_flat_place(draw(st.sampled_from(sources)), st.just(str(row)), None))
        for row in range(n)
    ]
    return _normalized(drawn)


def golden_places(
    *, min_size: int = 0, max_size: int = 10, sources: Sequence[str] = ("osm", "vendor", "web")
) -> st.SearchStrategy[pa.Table]:
    """Tables of golden places (``GOLDEN_PLACE_SCHEMA``), as a stage after merge gets
    them: each place described by records of one or more ``sources`` that differ as
    feeds of one place do (its name in capitals or with a legal form, its point a few
    metres off, fields one of them lacks), merged by poiflow's merge.

    Args:
        min_size, max_size: How many places.
        sources: The sources that describe them.
    """
    return _golden_places(min_size, max_size, tuple(sources))


@st.composite
def _golden_places(
    draw: st.DrawFn, min_size: int, max_size: int, sources: tuple[str, ...]
) -> pa.Table:
    places = draw(st.integers(min_size, max_size))
    records, labels = draw(_described(places, sources))
    best = np.array(draw(st.lists(st.floats(0.3, 1.0), min_size=len(labels), max_size=len(labels))))
    alone = np.bincount(labels, minlength=places)[labels] == 1  # a place of one record
    best[alone] = 1.0
    golden, _ = merge_clusters(records, labels, best)
    return golden


@st.composite
def _described(
    draw: st.DrawFn, places: int, sources: tuple[str, ...]
) -> tuple[pa.Table, np.ndarray]:
    """The normalized records of ``places`` places, each described by one or more of
    ``sources`` as feeds of one place differ; and each record's place."""
    drawn: list[dict[str, Any]] = []
    labels: list[int] = []
    for place in range(places):
        base = draw(_flat_place(sources[0], st.just(str(place)), None))
        described = draw(st.lists(st.sampled_from(sources), min_size=1, unique=True))
        for source in described:
            record = {**base, "source": source}
            if draw(st.booleans()):  # another feed's spelling of the name
                record["name"] = draw(st.sampled_from((base["name"].upper(), base["name"])))
            if "lat" in record and draw(st.booleans()):
                record["lat"] = round(record["lat"] + draw(st.floats(-2e-4, 2e-4)), 6)
            lacks = sorted(set(record) - _KEPT - {"lon"})  # what this feed may not give
            for field in draw(st.sets(st.sampled_from(lacks))) if lacks else ():
                del record[field]
                record.pop("lon" if field == "lat" else field, None)  # a point is both
            drawn.append(record)
            labels.append(place)
    return _normalized(drawn), np.array(labels, dtype=np.int64)


def scored_pairs(
    *,
    min_size: int = 0,
    max_size: int = 10,
    sources: Sequence[str] = ("osm", "vendor", "web"),
    model: str = "default",
) -> st.SearchStrategy[pa.Table]:
    """Tables of scored candidate pairs, as a stage after score gets them: the records of
    places as :func:`golden_places` draws them, blocked, featured and scored by ``model``;
    each pair's two records (``left_source``, ``left_id``, ...), its
    ``match_probability``, the features behind it, and the records' rows (``left_row``,
    ``right_row``).

    Args:
        min_size, max_size: How many places the records describe (not how many pairs).
        sources: The sources that describe them.
        model: The model that scores them: ``default`` (the one poiflow ships) or a model
            file of ``poiflow train``.
    """
    return _scored_pairs(min_size, max_size, tuple(sources), model)


@st.composite
def _scored_pairs(
    draw: st.DrawFn, min_size: int, max_size: int, sources: tuple[str, ...], model: str
) -> pa.Table:
    from poiflow.conflate.blocking import candidate_pairs
    from poiflow.conflate.features import RecordView, pair_features
    from poiflow.pipeline.stage_results import pairs_table, scores_table

    records, _ = draw(_described(draw(st.integers(min_size, max_size)), sources))
    candidates = candidate_pairs(records)
    left = candidates.column("left").to_numpy()
    right = candidates.column("right").to_numpy()
    features = pair_features(RecordView.of(records), left, right)
    probability = _matcher(model).predict(features)
    rows = scores_table(left, right, probability)
    pairs = pairs_table(records, left, right, probability, features)
    return pairs.append_column("left_row", rows.column("left_row")).append_column(
        "right_row", rows.column("right_row")
    )


@functools.cache
def _matcher(model: str) -> Any:
    """The model ``model`` names, loaded once a process (as a run loads it)."""
    from poiflow.conflate.matcher import load_matcher

    return load_matcher(model)


_KEPT: Final = frozenset({"source", "id", "name"})  # what every record of a feed has


def check_frames(
    *, min_size: int = 0, max_size: int = 10, sources: Sequence[str] = ("osm", "vendor", "web")
) -> st.SearchStrategy[pl.DataFrame]:
    """Golden places (:func:`golden_places`) as a check of your own gets them: a polars
    DataFrame of every column of ``places.parquet``, with ``name``, ``category`` and
    ``locality`` read out."""
    return golden_places(min_size=min_size, max_size=max_size, sources=sources).map(
        lambda places: QualityInput(places).frame
    )


def _normalized(drawn: list[dict[str, Any]]) -> pa.Table:
    """The drawn flat places read and normalized by poiflow (``PLACE_SCHEMA``)."""
    if not drawn:
        return PLACE_SCHEMA.empty_table()
    table = flat_records(drawn, "feed", [f"drawn[{row}]" for row in range(len(drawn))])
    places, held = prepare_records(table, "feed")
    refused = held.filter(pc.equal(held.column("scope"), "record"))
    if refused.num_rows:  # a drawn place no feed would be refused for: a bug of ours
        raise AssertionError(f"poiflow.testing drew a record ingest refuses: {refused.to_pylist()}")
    return places


def stage_result(
    function: Callable[..., Any], table: pa.Table, *, after: str, **params: Any
) -> pa.Table:
    """What a run makes of ``function`` as a stage of yours after ``after`` (``ingest``:
    ``table`` is the records; ``score``: the scored pairs, with their records' rows
    ``left_row`` and ``right_row``; ``merge``: the golden places), called with ``params``:
    its result held to what the run holds it to.

    Raises:
        ConfigError: What the run would say of it: not a table, a column missing or of
            the wrong type, or (after merge) places added or dropped.
    """
    return checked_result(function, table, after=after, params=params, where=function.__name__)


def check_result(function: Callable[..., Any], places: pa.Table, **params: Any) -> CheckResult:
    """What a run makes of ``function`` as a check of yours (``checks: custom:``) of the
    golden ``places`` (:func:`golden_places`), called with ``params`` as a run calls it
    (the places as :func:`check_frames` gives them): the places it flagged
    (``.issues``, each with its ``place_id`` and ``detail``) and how many it checked.

    Raises:
        ConfigError: What the run would say of it: it failed, returned no ``id`` column,
            or ids that are no place.
    """
    check = FunctionCheck(function.__name__, function, params=params)
    return check.run(QualityInput(places))
