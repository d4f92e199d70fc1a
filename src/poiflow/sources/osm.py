"""OpenStreetMap PBF extracts, read with pyosmium.

Every named node, way (at its centroid) and multipolygon relation (at the centroid of its
outer rings) that carries one of the configured keys becomes a record. Ids are
``node/123``, ``way/123``, ``relation/123``; the source is ``osm``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import osmium
from osmium.filter import KeyFilter

from poiflow.config import OsmOptions
from poiflow.errors import CorruptInputError, InputError
from poiflow.sources.base import DEFAULT_BATCH_SIZE, SourceBatch, owns, records_from_rows

__all__ = ["OSM_KEY_PRIORITY", "OsmSource"]

OSM_KEY_PRIORITY: Final = (
    "amenity",
    "shop",
    "tourism",
    "leisure",
    "healthcare",
    "office",
    "craft",
    "aeroway",
    "railway",
    "public_transport",
)
"""The order in which tags decide a record's primary category."""

_ADDRESS_TAGS: Final = {
    "addr:street": "street",
    "addr:place": "street",
    "addr:housenumber": "housenumber",
    "addr:unit": "unit",
    "addr:flats": "unit",
    "addr:door": "unit",
    "addr:postcode": "postcode",
    "addr:city": "locality",
    "addr:state": "region",
    "addr:province": "region",
    "addr:country": "country",
    "addr:full": "freeform",
}
_PHONE_TAGS: Final = ("phone", "contact:phone", "contact:mobile", "mobile")
_WEBSITE_TAGS: Final = ("website", "contact:website", "url")
_EMAIL_TAGS: Final = ("email", "contact:email")
_NAME_VARIANTS: Final = {
    "alt_name": "alternate",
    "short_name": "short",
    "official_name": "official",
    "old_name": "old",
    "loc_name": "alternate",
}
_CLOSED_LIFECYCLE: Final = ("disused:", "abandoned:", "was:")
# What each tag that matters is for: (role, field).
_ROLES: Final[dict[str, tuple[str, str]]] = {
    "name": ("name", "primary"),
    "opening_hours": ("opening_hours", "opening_hours"),
    "brand": ("brand", "name"),
    "brand:wikidata": ("brand", "wikidata"),
    **{key: ("category", key) for key in OSM_KEY_PRIORITY},
    **{key: ("address", part) for key, part in _ADDRESS_TAGS.items()},
    **{key: ("variant", variant) for key, variant in _NAME_VARIANTS.items()},
    **{key: ("phone", key) for key in _PHONE_TAGS},
    **{key: ("website", key) for key in _WEBSITE_TAGS},
    **{key: ("email", key) for key in _EMAIL_TAGS},
}


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

    def size_hint(self) -> int | None:
        """Unknown without reading the file."""
        return None

    def batches(
        self, batch_size: int = DEFAULT_BATCH_SIZE, part: int = 0, parts: int = 1
    ) -> Iterator[SourceBatch]:
        """Yield the extract's places in batches (of ``batch_size`` candidate objects).

        Every partition parses the whole file (fast, in C++); only turning an object into a
        record (slow, in Python) is split between them.
        """
        if not self.path.is_file():
            raise InputError("no such file", path=self.path)
        processor = osmium.FileProcessor(str(self.path))
        if self.options.ways:
            processor = processor.with_locations()
        if self.options.relations:
            processor = processor.with_areas()
        processor = processor.with_filter(KeyFilter("name")).with_filter(
            KeyFilter(*self.options.keys)
        )
        rows: list[dict[str, Any]] = []
        index = -1
        pending: int | None = None  # the chunk whose rows are being collected
        try:
            for obj in processor:
                index += 1
                chunk = index // batch_size
                if not owns(chunk, part, parts):
                    continue
                if pending is not None and chunk != pending:
                    yield SourceBatch(records_from_rows(rows), chunk=pending)
                    rows = []
                pending = chunk
                row = self._record(obj)
                if row is not None:
                    rows.append(row)
        except RuntimeError as exc:
            raise CorruptInputError(
                f"not a readable OSM file ({exc}); is it truncated or not OSM data?",
                path=self.path,
            ) from exc
        if pending is not None:
            yield SourceBatch(records_from_rows(rows), chunk=pending)

    def _record(self, obj: Any) -> dict[str, Any] | None:
        """One record from an OSM object, or None if the object is not a place here."""
        issues: list[str] = []
        kind = obj.type_str()
        if kind == "n":
            osm_id = f"node/{obj.id}"
            lat, lon = (
                (obj.location.lat, obj.location.lon) if obj.location.valid() else (None, None)
            )
        elif kind == "w":
            if not self.options.ways:
                return None
            osm_id = f"way/{obj.id}"
            lat, lon = _way_centroid(obj)
        elif kind == "a":
            if obj.from_way():
                return None  # the way itself is already a record
            osm_id = f"relation/{obj.orig_id()}"
            lat, lon = _area_centroid(obj)
        else:
            return None  # plain relations have no location of their own
        if lat is None:
            issues.append("location: no node of the object has a location in this extract")
        # One pass over the tags, each sorted by its role (iterating tags is the costly part).
        name = None
        category_tags: dict[str, str] = {}
        address: dict[str, str] = {}
        alternates: list[dict[str, str | None]] = []
        phones: list[str] = []
        websites: list[str] = []
        emails: list[str] = []
        brand: dict[str, str | None] = {}
        opening_hours = None
        closed = False
        for tag in obj.tags:
            key, value = tag.k, tag.v
            role = _ROLES.get(key)
            if role is None:
                if key.startswith("name:") and len(key) > 5:
                    alternates.append({"value": value, "language": key[5:], "variant": "common"})
                elif key.startswith(_CLOSED_LIFECYCLE):
                    closed = True
                continue
            kind_of, field = role
            if kind_of == "name":
                name = value
            elif kind_of == "category":
                category_tags[key] = value
            elif kind_of == "address":
                address.setdefault(field, value)
            elif kind_of == "variant":
                alternates.extend(
                    {"value": part.strip(), "language": None, "variant": field}
                    for part in value.split(";")
                    if part.strip()
                )
            elif kind_of == "phone":
                phones.append(value)
            elif kind_of == "website":
                websites.append(value)
            elif kind_of == "email":
                emails.append(value)
            elif kind_of == "brand":
                brand[field] = value
            else:
                opening_hours = value
        labels = [
            f"{key}={part.strip()}"
            for key in OSM_KEY_PRIORITY
            if key in category_tags
            for part in category_tags[key].split(";")
            if part.strip()
        ]
        status = "permanently_closed" if closed and not labels else "open"
        timestamp = obj.timestamp
        return {
            "source": self.name,
            "id": osm_id,
            "names": {"primary": name, "alternates": alternates or None},
            "categories": {"primary": labels[0], "alternate": labels[1:]} if labels else None,
            "source_category": labels[0] if labels else None,
            "lat": lat,
            "lon": lon,
            "address": address or None,
            "phones": phones or None,
            "websites": websites or None,
            "emails": emails or None,
            "brand": brand or None,
            "opening_hours": opening_hours,
            "operating_status": status,
            "update_time": timestamp if timestamp > _EPOCH else None,
            "origin": osm_id,
            "issues": issues or None,
        }


_EPOCH: Final = datetime(1970, 1, 2, tzinfo=UTC)


def _way_centroid(way: Any) -> tuple[float | None, float | None]:
    points = [(n.location.lon, n.location.lat) for n in way.nodes if n.location.valid()]
    if len(points) < len(way.nodes):
        # Clipped by the extract's edge: what is left is no polygon, so take the mean.
        points = points[:-1] if len(points) > 1 and points[0] == points[-1] else points
    return _centroid(points)


def _area_centroid(area: Any) -> tuple[float | None, float | None]:
    """Area-weighted centroid of the outer rings (holes are small; ignoring them is fine here)."""
    total_x = total_y = total_area = 0.0
    fallback: list[tuple[float, float]] = []
    for ring in area.outer_rings():
        points = [(n.location.lon, n.location.lat) for n in ring if n.location.valid()]
        fallback.extend(points)
        x, y, a = _ring_moments(points)
        if a < 0:  # rings may wind either way; only their size matters here
            x, y, a = -x, -y, -a
        total_x, total_y, total_area = total_x + x, total_y + y, total_area + a
    if abs(total_area) > 1e-15:
        return total_y / total_area, total_x / total_area
    return _centroid(fallback)


def _centroid(points: list[tuple[float, float]]) -> tuple[float | None, float | None]:
    """(lat, lon) of a closed ring's area centroid, else of its points' mean."""
    if not points:
        return None, None
    if len(points) >= 4 and points[0] == points[-1]:
        x, y, a = _ring_moments(points)
        if abs(a) > 1e-15:
            lon, lat = x / a, y / a
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            # A near-degenerate ring can put the centroid far away; keep it within the ring's box.
            if min(xs) <= lon <= max(xs) and min(ys) <= lat <= max(ys):
                return lat, lon
    unique = list(dict.fromkeys(points))
    return (sum(p[1] for p in unique) / len(unique), sum(p[0] for p in unique) / len(unique))


def _ring_moments(points: list[tuple[float, float]]) -> tuple[float, float, float]:
    """First moments and signed area of a ring (shoelace), as (Sx, Sy, A)."""
    sx = sy = a = 0.0
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        cross = x0 * y1 - x1 * y0
        a += cross
        sx += (x0 + x1) * cross
        sy += (y0 + y1) * cross
    a /= 2.0
    return sx / 6.0, sy / 6.0, a
