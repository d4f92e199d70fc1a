"""OpenStreetMap PBF extracts, read with pyosmium.

Every named node, way (at its centroid) and multipolygon relation (at the centroid of its
outer rings) that carries one of the configured keys becomes a record. Ids are
``node/123``, ``way/123``, ``relation/123``; the source is ``osm``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, cast

import osmium
import pyarrow as pa
from osmium.filter import KeyFilter

from poiflow.config import OsmOptions
from poiflow.errors import CorruptInputError, InputError
from poiflow.sources.base import DEFAULT_BATCH_SIZE, SourceBatch, owns, records_table
from poiflow.sources.geometry import area_centroid, centroid
from poiflow.sources.osm_tags import OSM_KEY_PRIORITY, TagRows

__all__ = ["OSM_KEY_PRIORITY", "OsmSource"]


class OsmSource:
    """An OpenStreetMap ``.osm.pbf`` (or ``.osm``/``.osm.bz2``) file.

    Args:
        path: The extract.
        options: Which keys make a place, and whether ways and relations count.
        name: The source name written into each record.
    """

    def __init__(self, path: str | Path, options: OsmOptions | None = None, name: str = "osm"):
        self.path = Path(path)
        self.options = options or OsmOptions()
        self.name = name

    @property
    def kind(self) -> str:
        """An OpenStreetMap extract."""
        return "OpenStreetMap"

    def size_hint(self) -> int | None:
        """Unknown without reading the file."""
        return None

    def batches(
        self, batch_size: int = DEFAULT_BATCH_SIZE, part: int = 0, parts: int = 1
    ) -> Iterator[SourceBatch]:
        """Yield the extract's places in batches (of ``batch_size`` candidate objects).

        The nodes are split between the partitions, batch by batch. Ways and multipolygons
        need every node's location, held in memory, and are read by the last partition
        alone, in batches numbered from ``SHAPE_CHUNKS`` (after every node's, however many);
        the others read only the file's nodes, without locations. So one process holds
        the locations, and a way is assembled once.
        """
        if not self.path.is_file():
            raise InputError("no such file", path=self.path)
        shapes = part == parts - 1 and (self.options.ways or self.options.relations)
        processor = osmium.FileProcessor(
            str(self.path), osmium.osm.ALL if shapes else osmium.osm.NODE
        )
        scratch = None
        if shapes and self.options.locations == "disk":
            scratch = Path(tempfile.mkdtemp(prefix="poiflow-nodes-"))
            processor = processor.with_locations(f"sparse_file_array,{scratch / 'nodes.idx'}")
        elif shapes:
            processor = processor.with_locations()
        # A place is named and has one of the keys, a multipolygon as its relation's tags
        # say: only such relations are assembled (not a country's forests and lakes).
        places = (KeyFilter("name"), KeyFilter(*self.options.keys))
        if shapes and self.options.relations:
            processor = processor.with_areas(*places)
        for only in places:
            processor = processor.with_filter(only)
        batch = _Batch(self.name)
        nodes = others = 0
        pending: int | None = None  # the chunk whose records are being collected
        try:
            for obj in processor:
                if obj.type_str() == "n":
                    chunk = nodes // batch_size
                    nodes += 1
                    if not owns(chunk, part, parts):
                        continue
                else:
                    chunk = SHAPE_CHUNKS + others // batch_size
                    others += 1
                if pending is not None and chunk != pending:
                    yield SourceBatch(batch.table(), chunk=pending)
                    batch = _Batch(self.name)
                pending = chunk
                self._add(obj, batch)
        except RuntimeError as exc:
            raise CorruptInputError(
                f"not a readable OSM file ({exc}); is it truncated or not OSM data?",
                path=self.path,
            ) from exc
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
        if pending is not None:
            yield SourceBatch(batch.table(), chunk=pending)

    def _add(self, obj: Any, batch: _Batch) -> None:
        """Add an OSM object to the batch as a record, unless it is not a place here."""
        kind = obj.type_str()
        if kind == "n":
            osm_id = f"node/{obj.id}"
            location = obj.location
            lat, lon = (location.lat, location.lon) if location.valid() else (None, None)
        elif kind == "w":
            if not self.options.ways:
                return
            osm_id = f"way/{obj.id}"
            lat, lon = _way_centroid(obj)
        elif kind == "a":
            if obj.from_way():
                return  # the way itself is already a record
            osm_id = f"relation/{obj.orig_id()}"
            lat, lon = _area_centroid(obj)
        else:
            return  # plain relations have no location of their own
        batch.add(osm_id, lat, lon, _tag_list(obj.tags), obj.timestamp)


def _tag_list(tags: Any) -> Iterable[tuple[str, str]]:
    """An object's tags as ``(key, value)`` pairs. pyosmium's own iterator ends each
    list by raising ``StopIteration`` from C++, which cost more than reading the tags
    (2.4 against 0.3 µs a tag): the tags are read by count where its tag list
    allows, and through the iterator where it does not."""
    data = getattr(tags, "_pyosmium_data", None)
    if data is None:
        return cast("Iterable[tuple[str, str]]", tags)
    following, position = data.tags_next, data.tags_begin()
    return [following(position) for _ in range(data.tags_size())]


class _Batch:
    """The records of a batch as they are read: their tags in long form, the rest field by
    field."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.tags = TagRows()
        self.ids: list[str] = []
        self.lats: list[float | None] = []
        self.lons: list[float | None] = []
        self.times: list[datetime | None] = []
        self.issues: list[list[str] | None] = []

    def add(
        self,
        osm_id: str,
        lat: float | None,
        lon: float | None,
        tags: Iterable[tuple[str, str]],
        timestamp: datetime,
    ) -> None:
        self.tags.add(tags)
        self.ids.append(osm_id)
        self.lats.append(lat)
        self.lons.append(lon)
        self.times.append(timestamp if timestamp > _EPOCH else None)
        self.issues.append(
            None
            if lat is not None
            else ["location: no node of the object has a location in this extract"]
        )

    def table(self) -> pa.Table:
        count = len(self.ids)
        ids = pa.array(self.ids, pa.string())
        return records_table(
            self.tags.columns()
            | {
                "source": pa.array([self.name] * count, pa.string()),
                "id": ids,
                "lat": pa.array(self.lats, pa.float64()),
                "lon": pa.array(self.lons, pa.float64()),
                "update_time": pa.array(self.times, pa.timestamp("ms", tz="UTC")),
                "origin": ids,
                "issues": pa.array(self.issues, pa.list_(pa.string())),
            }
        )


_EPOCH: Final = datetime(1970, 1, 2, tzinfo=UTC)
SHAPE_CHUNKS: Final = 1 << 40
"""The number of an extract's first batch of ways and multipolygons (its nodes' come
first: an extract lists its nodes before its ways)."""


def _way_centroid(way: Any) -> tuple[float | None, float | None]:
    points = [(n.location.lon, n.location.lat) for n in way.nodes if n.location.valid()]
    if len(points) < len(way.nodes):
        # Clipped by the extract's edge: what is left is no polygon, so take the mean.
        points = points[:-1] if len(points) > 1 and points[0] == points[-1] else points
    return centroid(points)


def _area_centroid(area: Any) -> tuple[float | None, float | None]:
    """Area-weighted centroid of the outer rings (holes are small; ignoring them is fine here)."""
    return area_centroid(
        [(n.location.lon, n.location.lat) for n in ring if n.location.valid()]
        for ring in area.outer_rings()
    )
