"""The search server backend: the golden places in OpenSearch (or Elasticsearch's API),
through the official client, behind the same interface as the embedded index.

``OpenSearchIndex(url, alias).publish(places)`` registers an index template for
``ALIAS-*``, writes every place into a new index ``ALIAS-<time>`` with the bulk API,
checks the count, then moves the alias to it in one ``_aliases`` request (atomic: a reader
of the alias sees the old index or the new one, never a half-built one) and deletes the
indices it left. ``search`` asks the server for the text matches, word by word as the
embedded index does (exact, within typos, the last word as a prefix; the same fields and
boosts), and ranks them with the embedded index's own function (``search.rank_matches``), so
both backends order the same places the same way. Places open at a time are filtered as the
embedded index does: an hour of the week first, on the server, then exactly
(``search.gather``).

The index's mapping carries the version of its fields (``_meta``): an index published by a
poiflow whose documents had other fields is refused with a message to publish again.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.parquet as pq

from poiflow.errors import ConfigError, InputError, ServerUnavailableError
from poiflow.serving.opening import When
from poiflow.serving.ranking import (
    STARTS_BOOST,
    TEXT_FIELDS,
    TYPO_BOOST,
    Hit,
    candidates_wanted,
    check_query,
    gather,
    near_wanted,
    rank_matches,
    search_documents,
    word_typos,
)

__all__ = ["MAPPINGS", "OpenSearchIndex"]

_ALIAS: Final = re.compile(r"^[a-z0-9][a-z0-9_]{0,62}$")
_BATCH: Final = 5_000
_STORED: Final = (
    "id",
    "display",
    "primary_category",
    "lat",
    "lon",
    "confidence",
    "opening_hours",
)
_FIELDS_VERSION: Final = 2  # bumped when the documents' fields change
_LOCATED: Final = {"exists": {"field": "location"}}

MAPPINGS: Final = {
    "dynamic": "strict",
    "_meta": {"poiflow_fields": _FIELDS_VERSION},
    "properties": {
        "id": {"type": "keyword"},
        "display": {"type": "keyword", "index": False},
        "primary_category": {"type": "keyword"},
        # Already folded to ASCII words by poiflow (as the embedded index has them).
        **{field: {"type": "text", "analyzer": "standard"} for field in TEXT_FIELDS},
        "category": {"type": "keyword"},
        "lat": {"type": "double"},
        "lon": {"type": "double"},
        "location": {"type": "geo_point"},
        "confidence": {"type": "float"},
        "opening_hours": {"type": "keyword", "index": False},
        # The hours of the week (0-167) the place can be open, in UTC and in local time.
        "open_utc": {"type": "short"},
        "open_local": {"type": "short"},
    },
}


class OpenSearchIndex:
    """The golden places behind an alias on an OpenSearch server.

    Args:
        url: The server (``http://127.0.0.1:9200``; credentials in the URL if it wants them).
        alias: The name readers use (lowercase letters, digits and _).
        replicas: Replicas of each new index (0 for one node).

    Raises:
        ConfigError: The alias is not a valid name.
        InputError: The server cannot be reached.
    """

    def __init__(self, url: str, alias: str = "poiflow-places", *, replicas: int = 0) -> None:
        from opensearchpy import OpenSearch

        alias = alias.replace("-", "_")
        if not _ALIAS.match(alias):
            raise ConfigError(f"index {alias!r}: lowercase letters, digits and _ (at most 63)")
        self.url = url
        self.alias = alias
        self.replicas = replicas
        self._client = OpenSearch(hosts=[url], timeout=30, max_retries=2, retry_on_timeout=True)
        self._guard(self._client.info)
        self._checked = False

    def __len__(self) -> int:
        return int(self._guard(lambda: self._client.count(index=self.alias))["count"])

    def indices(self) -> list[str]:
        """The concrete indices the alias points at (one, once published)."""
        from opensearchpy import NotFoundError

        try:
            found = self._client.indices.get_alias(name=self.alias)
        except NotFoundError:
            return []
        return sorted(found)

    def publish(self, places: Path | pa.Table) -> int:
        """Index the golden places (``places.parquet`` or its table) into a new index and
        swap the alias onto it; the indices it pointed at before are deleted. Returns how
        many places were indexed."""
        from opensearchpy import helpers

        table = pq.read_table(places) if isinstance(places, Path) else places
        pattern = f"{self.alias}-*"
        self._guard(
            lambda: self._client.indices.put_index_template(
                name=self.alias,
                body={
                    "index_patterns": [pattern],
                    "template": {
                        "settings": {
                            "number_of_shards": 1,
                            "number_of_replicas": self.replicas,
                        },
                        "mappings": MAPPINGS,
                    },
                },
            )
        )
        name = f"{self.alias}-{datetime.now(UTC):%Y%m%d%H%M%S%f}"
        self._guard(lambda: self._client.indices.create(index=name))
        try:
            done, errors = self._guard(
                lambda: helpers.bulk(
                    self._client,
                    self._actions(table, name),
                    chunk_size=_BATCH,
                    raise_on_error=False,
                    refresh="wait_for",
                )
            )
            if errors:
                raise InputError(f"{len(errors)} places were refused by {self.url}: {errors[0]}")
            self._client.indices.refresh(index=name)
            count = int(self._client.count(index=name)["count"])
            if count != table.num_rows:
                raise InputError(f"{self.url} holds {count} of {table.num_rows} places in {name}")
        except BaseException:
            self._client.indices.delete(index=name, ignore_unavailable=True)
            raise
        old = self.indices()
        if self._client.indices.exists(index=self.alias) and not old:
            self._client.indices.delete(index=name)
            raise InputError(
                f"{self.url} has an index named {self.alias!r} (not an alias): "
                "publish under another name, or delete that index"
            )
        actions: list[dict[str, Any]] = [
            {"remove": {"index": index, "alias": self.alias}} for index in old
        ]
        actions.append({"add": {"index": name, "alias": self.alias}})
        self._client.indices.update_aliases(body={"actions": actions})
        for index in old:
            self._client.indices.delete(index=index, ignore_unavailable=True)
        return int(done)

    def upsert(self, places: pa.Table, removed: Sequence[str] = ()) -> int:
        """Write these places into the index the alias names (replacing their documents)
        and delete the ``removed`` ones; returns how many documents were written. Doing it
        twice changes nothing.

        Raises:
            ServerUnavailableError: No server, or nothing published under the alias yet.
            InputError: The server refused a document.
        """
        from opensearchpy import helpers

        published = self.indices()
        if not published:
            raise ServerUnavailableError(
                f"{self.url} has no index {self.alias!r} yet: publish into it first"
            )
        self._check_fields()
        index = published[-1]
        actions = [
            *self._actions(places, index),
            *({"_op_type": "delete", "_index": index, "_id": place} for place in removed),
        ]
        done, errors = self._guard(
            lambda: helpers.bulk(
                self._client, actions, chunk_size=_BATCH, raise_on_error=False, refresh=True
            )
        )
        refused = [e for e in errors if e.get("delete", {}).get("status") != 404]
        if refused:
            raise InputError(f"{len(refused)} places were refused by {self.url}: {refused[0]}")
        return int(done)

    def search(
        self,
        text: str,
        *,
        near: tuple[float, float] | None = None,
        category: str | None = None,
        open_at: When | None = None,
        limit: int = 10,
    ) -> list[Hit]:
        """The places that best match ``text``, best first (as ``SearchIndex.search``).

        Raises:
            InputError: A bad query (as the embedded index says), the server cannot be
                reached, or nothing has been published under the alias yet.
        """
        words = check_query(text, near, category, limit)
        must: list[dict[str, Any]] = []
        if words:
            must.append(
                {
                    "bool": {
                        "should": [
                            self._word(word, last=i == len(words) - 1)
                            for i, word in enumerate(words)
                        ],
                        "minimum_should_match": 1,
                    }
                }
            )
        filters: list[dict[str, Any]] = []
        if category:
            filters.append({"term": {"category": category.strip()}})
        if open_at is not None:
            self._check_fields()
            filters.append({"term": {open_at.field: open_at.hour}})
        body: dict[str, Any] = {"_source": list(_STORED)}
        by_distance = (
            [{"_geo_distance": {"location": {"lat": near[0], "lon": near[1]}, "order": "asc"}}]
            if near is not None
            else []
        )
        if near is not None and not words:  # the nearest first, as the embedded index does
            filters.append(_LOCATED)
            body["sort"] = by_distance
        query: dict[str, Any] = {"bool": {"must": must or [{"match_all": {}}]}}
        if filters:
            query["bool"]["filter"] = filters
        body["query"] = query

        def fetch(pool: int) -> list[tuple[dict[str, Any], float]]:
            found = self._ask({**body, "size": pool})
            if near is not None and words and len(found) == pool:
                # The index has more matches than were fetched: the nearest of them too,
                # with their text scores.
                close = {
                    **body,
                    "query": {"bool": {**query["bool"], "filter": [*filters, _LOCATED]}},
                    "sort": by_distance,
                    "track_scores": True,
                    "size": near_wanted(limit),
                }
                seen = {hit["_id"] for hit in found}
                found += [hit for hit in self._ask(close) if hit["_id"] not in seen]
            # Sorted by distance alone, no hit has a text score: all count alike.
            return [(hit["_source"], hit["_score"] or 1.0) for hit in found]

        matches = gather(fetch, candidates_wanted(limit, words, near), open_at, limit)
        return rank_matches(matches, words, near, limit)

    def _ask(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        found = self._guard(lambda: self._client.search(index=self.alias, body=body))
        return list(found["hits"]["hits"])

    def _check_fields(self) -> None:
        """Refuse an index whose documents have another poiflow's fields (once)."""
        if self._checked:
            return
        found = self._guard(lambda: self._client.indices.get_mapping(index=self.alias))
        for index, mapping in found.items():
            version = mapping.get("mappings", {}).get("_meta", {}).get("poiflow_fields")
            if version != _FIELDS_VERSION:
                raise InputError(
                    f"{self.url} index {index} was published by another poiflow version: "
                    f"publish again ('poiflow publish search DIR --opensearch {self.url} "
                    f"--index {self.alias}')"
                )
        self._checked = True

    def _word(self, word: str, *, last: bool) -> dict[str, Any]:
        """One query word, as the embedded index looks for it: exactly, within a few typos,
        and (the last one) as the start of a word, in every text field."""
        per_field = []
        for field, boost in TEXT_FIELDS.items():
            ways: list[dict[str, Any]] = [
                {"term": {field: {"value": word, "boost": 2.0}}},
                {
                    "fuzzy": {
                        field: {
                            "value": word,
                            "fuzziness": word_typos(word),
                            "transpositions": True,
                            "boost": TYPO_BOOST,
                        }
                    }
                },
            ]
            if last:
                ways.append({"prefix": {field: {"value": word, "boost": STARTS_BOOST}}})
            per_field.append({"bool": {"should": ways, "boost": boost}})
        return {"dis_max": {"queries": per_field}}

    def _actions(self, table: pa.Table, index: str) -> Iterator[dict[str, Any]]:
        since = datetime.now(UTC)
        for batch in table.to_batches(_BATCH):
            for document in search_documents(batch.to_pylist(), since=since):
                if "lat" in document and "lon" in document:
                    document["location"] = {"lat": document["lat"], "lon": document["lon"]}
                yield {"_index": index, "_id": document["id"], "_source": document}

    def _guard(self, call: Any) -> Any:
        from opensearchpy import ConnectionError as Unreachable
        from opensearchpy import NotFoundError

        try:
            return call()
        except Unreachable as exc:
            raise ServerUnavailableError(
                f"cannot reach OpenSearch at {self.url}: start one "
                "(scripts/opensearch_server.sh start DIR PORT) or name yours with --opensearch"
            ) from exc
        except NotFoundError as exc:
            raise ServerUnavailableError(
                f"{self.url} has no index {self.alias!r} yet: publish into it first "
                f"('poiflow publish search DIR --opensearch {self.url} --index {self.alias}')"
            ) from exc
