"""The HTTP API over a conflate/run output (``poiflow serve DIR``), on the embedded store.

The embedded store is the output's own files: ``places.parquet`` and ``membership.parquet``
held in memory (a place by id is a dictionary lookup, a bounding box a vectorized filter of
the coordinates), and the search index ``DIR/search`` (built on start when missing). The
OpenAPI description is at ``/openapi.json`` and the interactive one at ``/docs``.

Pages, for people: ``/`` (search, results on a map, a place with its sources) and
``/review`` (the pairs most worth an answer, two records side by side on a map, answered
with the keyboard; answers need the write token).

Read endpoints:

- ``GET /health``: alive, and what is loaded;
- ``GET /review/question/{n}``: the review page's questions, one by one;
- ``GET /search?q=&lat=&lon=&category=&open_at=&limit=``: the best places for some words
  (``open_at``: only those open then, each with the time it closes);
- ``GET /places/{id}``: one golden place with its provenance and member records, and
  whether it is open now (``open_now``: null without hours) and until when;
- ``GET /places?bbox=west,south,east,north&limit=&offset=``: the places in a box, paged,
  in id order;
- ``GET /places/{id}/story``: why a place says what it says, its records beside it, and
  ``GET /explain?left=SOURCE:ID&right=SOURCE:ID``: why two records are one place or two
  (what ``poiflow explain`` shows, as JSON; from the run's files in the folder, read at
  each request: a diagnosis, not a hot path);
- ``POST /match``: one place in the flat place format (or a list of up to 1,000): the
  golden place each is the same as, with its probability and the runner-up, or ``new``;
  matched as the run matched its own records (see ``poiflow.serving.matching``). It
  changes nothing, so it needs no token.

Write endpoints need ``Authorization: Bearer TOKEN`` with the token of the server's
``POIFLOW_API_TOKEN`` (compared in constant time, never logged); a server started without
one takes no writes (403):

- ``POST /labels``: review answers about pairs of records (one object or a list), appended
  to ``DIR/labels.csv``, the labels file ``poiflow label`` writes and ``poiflow train``
  reads.

Every parameter is checked: a bad one is a 422 whose ``detail`` says which and why; an
unknown id is a 404; a body over 1 MB is a 413.

A later run into the folder is taken up while the server answers: every few seconds it
looks at ``run.json`` (written last by a run), and when a run has written it again it
loads the new places, index and matcher beside the old ones and then answers from them
(a request in hand finishes on what it began with). One that cannot be loaded is logged,
and the last one goes on answering.

An output in object storage (``s3://``, ``hdfs://``: what a Spark run on a cluster
writes) is answered from a local copy (``storage.fetch``: a restart with the output
unchanged copies nothing); a later run there (its ``run.json`` written again, last) is
copied anew and taken up the same way, and the copy before the last is removed. Such a
server takes no labels (409): a copy is no place to keep them.
"""

# No ``from __future__ import annotations``: FastAPI reads the parameters' annotations
# when the routes are made, inside create_app.
import asyncio
import hmac
import os
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, Final

from fastapi import Body, Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, Response
from fastapi.routing import APIRoute

from poiflow._version import __version__
from poiflow.errors import InputError, ServerUnavailableError, did_you_mean
from poiflow.serving.answers import MatchAnswer, MatchResults, answer_of
from poiflow.serving.cassandra import CassandraStore
from poiflow.serving.opening import open_until, parse_when
from poiflow.serving.opensearch import OpenSearchIndex
from poiflow.serving.pages import label_page, map_page
from poiflow.serving.releases import Releases
from poiflow.serving.requests import (
    FlatPlace,
    Label,
    LabelBody,
    MatchBody,
    PlaceFeature,
    PlaceFeatures,
)
from poiflow.serving.responses import Health, PlacesPage, Refusal, SearchResults, Stored

__all__ = [
    "PLACE_ID",
    "RELOAD_S",
    "TOKEN_VARIABLE",
    "FlatPlace",
    "Label",
    "create_app",
]

PLACE_ID: Final = r"^p[0-9a-f]{16}$"
TOKEN_VARIABLE: Final = "POIFLOW_API_TOKEN"  # noqa: S105 - the name of a variable, not a secret
MAX_BODY: Final = 1_000_000
_PAGE_MAX: Final = 1000
_LABELS_MAX: Final = 1000
RELOAD_S: Final = 5.0  # how often a server looks for a later run of its folder
_MATCH_MAX: Final = 1000


async def known_query(request: Request) -> None:
    """Refuse a query parameter the endpoint does not take: a misspelt one ("near=",
    "lng=") would otherwise be dropped without a word, and the answer look right. (Async:
    a plain function would be sent to the thread pool, ~0.4 ms a request.)"""
    route = request.scope.get("route")
    if route is None or not request.query_params:
        return
    known = _query_names(route)
    for name in request.query_params:
        if name not in known:
            takes = f"it takes {', '.join(known)}" if known else "it takes none"
            raise HTTPException(
                422,
                f"unknown query parameter '{name}'.{did_you_mean(name, known)} "
                f"{route.path}: {takes}",
            )


def _query_names(route: APIRoute) -> tuple[str, ...]:
    """The query parameters an endpoint takes, its dependencies' too, in its order (a
    walk of a few objects, asked only of a request with a query)."""
    names: list[str] = []
    dependants = [route.dependant]
    while dependants:
        dependant = dependants.pop(0)
        names += [p.alias for p in dependant.query_params if p.alias not in names]
        dependants += dependant.dependencies
    return tuple(names)


def create_app(
    folder: Path | str,
    cassandra: CassandraStore | None = None,
    search_server: OpenSearchIndex | None = None,
    reload_s: float | None = RELOAD_S,
) -> FastAPI:
    """The FastAPI app serving the output in ``folder``; with ``cassandra``, places by id
    come from that serving store, and with ``search_server`` that server answers
    ``/search`` (both published from the same output). While it serves, a later run into
    ``folder`` is looked for every ``reload_s`` seconds (None: never) and answered from.
    ``folder`` may be in object storage (``s3://``, ``hdfs://``): it is answered from a
    local copy (see the module).

    Raises:
        InputError: ``folder`` has no golden places.
    """
    from fastapi import FastAPI, HTTPException

    releases = Releases(folder, search_server)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if reload_s is not None:
            releases.watch(reload_s)
        try:
            yield
        finally:
            releases.stop()

    token = os.environ.get(TOKEN_VARIABLE) or None
    app = FastAPI(
        lifespan=lifespan,
        title="poiflow",
        version=__version__,
        summary="Golden places: search, lookup by id and by area; review answers.",
        max_body_size=MAX_BODY,
        dependencies=[Depends(known_query)],
        responses={422: {"model": Refusal, "description": "The request is not one it takes."}},
    )

    def authorize(header: str | None) -> None:
        if token is None:
            raise HTTPException(
                403, f"this server takes no writes: start it with {TOKEN_VARIABLE} set"
            )
        scheme, _, given = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(
                401,
                "a write needs 'Authorization: Bearer TOKEN'",
                headers={"WWW-Authenticate": "Bearer"},
            )

    @app.post(
        "/labels",
        status_code=201,
        summary="Store review answers about pairs of records",
        responses={
            201: {"model": Stored},
            409: {
                "model": Refusal,
                "description": "A server of an output in object storage takes no labels.",
            },
        },
        response_model=None,  # described, not validated: see poiflow.serving.responses
    )
    def labels(
        answers: Annotated[LabelBody, Body(description="One answer or a list of them.")],
        authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
    ) -> dict[str, Any]:
        authorize(authorization)
        if releases.remote:
            raise HTTPException(
                409,
                f"this server answers from a copy of {folder}, which is no place to keep "
                "labels: take them with a server of a local folder (poiflow serve DIR)",
            )
        batch = answers if isinstance(answers, list) else [answers]
        if not 1 <= len(batch) <= _LABELS_MAX:
            raise HTTPException(422, f"send between 1 and {_LABELS_MAX} answers at a time")
        try:
            releases.now.store.add_labels(batch)
        except InputError as exc:
            raise HTTPException(422, str(exc)) from exc
        return {"stored": len(batch)}

    @app.post(
        "/match",
        summary="The golden place a new record is, or 'new'",
        responses={
            200: {
                "model": MatchAnswer | MatchResults,
                "description": "One place's answer; for a list or a FeatureCollection, "
                "each place's answer (or why it was refused) in the order sent.",
            }
        },
    )
    async def match(
        places: Annotated[
            MatchBody,
            Body(
                description="One place in the flat place format, or a list of them; or a "
                "GeoJSON Feature (a Point and flat properties), or a FeatureCollection of them."
            ),
        ],
    ) -> Any:
        now = releases.now
        if now.matching is None:
            raise HTTPException(503, now.unavailable)
        many = isinstance(places, list | PlaceFeatures)
        batch: list[FlatPlace | PlaceFeature] = (
            list(places.features)
            if isinstance(places, PlaceFeatures)
            else list(places)
            if isinstance(places, list)
            else [places]
        )
        if not 1 <= len(batch) <= _MATCH_MAX:
            raise HTTPException(422, f"send between 1 and {_MATCH_MAX} places at a time")
        objects: list[Mapping[str, Any]] = []
        for place in batch:
            flat = (
                place.flat()
                if isinstance(place, PlaceFeature)
                else place.model_dump(exclude_none=True)
            )
            if flat is None:
                raise HTTPException(422, "a feature needs an id: its own, or in its properties")
            objects.append(flat)
        try:  # matched with whatever other requests are waiting (see MatchQueue)
            answers = await asyncio.wrap_future(now.matching.submit(objects))
        except InputError as exc:
            raise HTTPException(422, str(exc)) from exc
        if not many:
            if isinstance(answers[0], str):
                raise HTTPException(422, f"the place cannot be matched: {answers[0]}")
            return answer_of(answers[0])
        return {
            "results": [
                {"index": i, "error": a} if isinstance(a, str) else answer_of(a)
                for i, a in enumerate(answers)
            ]
        }

    @app.get("/", include_in_schema=False)
    def home() -> HTMLResponse:
        return HTMLResponse(map_page())

    @app.get("/review", include_in_schema=False)
    def review_page() -> HTMLResponse:
        return HTMLResponse(label_page(served=True))

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:  # browsers ask; no icon, and no error in their console
        return Response(status_code=204)

    @app.get(
        "/review/question/{index}",
        summary="A pair of records worth a person's answer (the review page's questions)",
    )
    def review_question(index: Annotated[int, PathParam(ge=0, le=100_000)]) -> dict[str, Any]:
        try:
            question = releases.now.review.question(index)
        except InputError as exc:
            raise HTTPException(503, str(exc)) from exc
        return jsonable_encoder(question) if question is not None else {"done": True}

    @app.get(
        "/health",
        summary="Alive, and what is loaded",
        responses={200: {"model": Health}},
        response_model=None,
    )
    def health() -> dict[str, Any]:
        # A search server that went away makes the server degraded, not dead: the rest
        # still answers, and the problem is said here.
        problems: dict[str, str] = {}
        now = releases.now
        try:
            documents: int | None = len(now.store.search)
        except ServerUnavailableError as exc:
            documents, problems["search"] = None, str(exc)
        return {
            "status": "degraded" if problems else "ok",
            **({"problems": problems} if problems else {}),
            "places": len(now.store),
            "search_documents": documents,
            "matching": now.matching is not None,
            "store": "embedded" if cassandra is None else f"cassandra {cassandra.where}",
            "search": "embedded"
            if search_server is None
            else f"opensearch {search_server.url} {search_server.alias}",
        }

    @app.get(
        "/search",
        summary="The best places for some words",
        responses={200: {"model": SearchResults}},
        response_model=None,
    )
    def search(
        q: Annotated[
            str, Query(max_length=200, description="Words: names, brands, categories, address.")
        ] = "",
        lat: Annotated[
            float | None, Query(ge=-90, le=90, description="Rank places near here higher.")
        ] = None,
        lon: Annotated[float | None, Query(ge=-180, le=180)] = None,
        category: Annotated[
            str | None,
            Query(max_length=64, pattern=r"^[a-z0-9_]+$", description="Only this category."),
        ] = None,
        open_at: Annotated[
            str | None,
            Query(
                max_length=40,
                description="Only places open then: 'now', 'HH:MM' or 'Sa 10:00' (each "
                "place's local time), or ISO 8601 (with an offset: an instant).",
            ),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 10,
    ) -> dict[str, Any]:
        if (lat is None) != (lon is None):
            raise HTTPException(422, "give both lat and lon, or neither")
        near = (lat, lon) if lat is not None and lon is not None else None
        try:
            when = parse_when(open_at) if open_at is not None else None
            hits = releases.now.store.search.search(
                q, near=near, category=category, open_at=when, limit=limit
            )
        except ServerUnavailableError as exc:  # the search server, not the request
            raise HTTPException(503, str(exc)) from exc
        except InputError as exc:
            raise HTTPException(422, str(exc)) from exc
        return {"results": [asdict(hit) for hit in hits]}

    @app.get("/places/{place_id}", summary="One golden place, with its provenance")
    def place(
        place_id: Annotated[
            str, PathParam(pattern=PLACE_ID, description="A place id: p and 16 hex digits.")
        ],
    ) -> Any:
        try:
            found = (
                releases.now.store.place(place_id)
                if cassandra is None
                else cassandra.place(place_id)
            )
        except ServerUnavailableError as exc:
            raise HTTPException(503, str(exc)) from exc
        if found is None:
            raise HTTPException(404, f"no place {place_id}")
        hours = found.get("opening_hours")
        is_open, until = open_until(hours, found.get("lat"), found.get("lon"), parse_when("now"))
        found["open_now"] = is_open if hours else None
        found["open_until"] = until.isoformat() if until else None
        return jsonable_encoder(found)

    @app.get(
        "/places/{place_id}/story",
        summary="Why a place says what it says: its records beside it (poiflow explain RUN PLACE)",
    )
    def place_story(
        place_id: Annotated[
            str, PathParam(pattern=PLACE_ID, description="A place id: p and 16 hex digits.")
        ],
    ) -> Any:
        from poiflow.pipeline.place_story import explain_place

        try:
            story = explain_place(releases.now.folder, place_id)
        except InputError as exc:
            raise HTTPException(404, str(exc)) from exc
        return jsonable_encoder(story.as_dict())

    @app.get(
        "/explain",
        summary="Why two records are one place, or two (poiflow explain RUN LEFT RIGHT)",
    )
    def explain(
        left: Annotated[str, Query(min_length=3, max_length=300, description="SOURCE:ID")],
        right: Annotated[str, Query(min_length=3, max_length=300, description="SOURCE:ID")],
    ) -> Any:
        from poiflow.pipeline.explaining import explain_pair

        try:
            story = explain_pair(releases.now.folder, left, right)
        except InputError as exc:  # a record or a file that is not there; or a malformed name
            malformed = "SOURCE:ID" in str(exc) or "one record" in str(exc)
            raise HTTPException(422 if malformed else 404, str(exc)) from exc
        return jsonable_encoder(story.as_dict())

    @app.get(
        "/places",
        summary="The places in a bounding box, paged",
        responses={200: {"model": PlacesPage}},
    )
    def places(
        bbox: Annotated[
            str, Query(max_length=100, description="west,south,east,north in degrees (WGS84).")
        ],
        limit: Annotated[int, Query(ge=1, le=_PAGE_MAX)] = 100,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> Any:
        west, south, east, north = _bbox(bbox)
        total, page = releases.now.store.in_box(west, south, east, north, limit, offset)
        following = offset + limit if offset + limit < total else None
        return jsonable_encoder(
            {"total": total, "offset": offset, "next_offset": following, "places": page}
        )

    return app


_NUMBER = re.compile(r"^\s*-?\d+(\.\d+)?\s*$")


def _bbox(text: str) -> tuple[float, float, float, float]:
    parts = text.split(",")
    if len(parts) != 4 or not all(_NUMBER.match(p) for p in parts):
        raise HTTPException(
            422, "bbox is west,south,east,north: four numbers, e.g. 24.9,60.1,25.0,60.2"
        )
    west, south, east, north = (float(p) for p in parts)
    if not (-180 <= west <= 180 and -180 <= east <= 180 and -90 <= south <= north <= 90):
        raise HTTPException(
            422,
            "bbox is out of range: longitudes in [-180, 180], latitudes in [-90, 90], "
            "south <= north",
        )
    return west, south, east, north
