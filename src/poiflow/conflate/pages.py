"""Which page of a site a record's website names.

A chain often gives each branch a page of its own ("example.com/stores/kamppi"): two
records with one such page are one branch, where one domain says only one chain. The
``page_match`` feature compares records' pages; a page that one source gives to several
records (a store finder) is left out, by the run's counts (``features.FeatureStats``).

The batch path (:func:`record_pages`, :func:`page_lists`) and the few-record path
(:func:`own_pages`) give the same pages; the parity tests hold them together.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable
from typing import Final

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["list_column", "own_pages", "page_key", "page_lists", "record_pages"]

# Path segments that say nothing of which page: a language ("en", "fi-fi", "sv_se"), an
# index file, a home page. A path of only these is the site's front page.
_TRIVIAL_SEGMENT: Final = re.compile(
    r"^(?:[a-z]{2}(?:[-_][a-z]{2})?|(?:index|default|home|start)(?:\.[a-z]{2,5})?|etusivu)$"
)
_HOST_PREFIX: Final = re.compile(r"^(?:(?:www\d*|m)\.)+(?=[^.]+\.)")  # not of "m.fi"
# A URL with a path or a query after its host (a superset of those ``page_key`` keys).
_BEYOND_HOST: Final = r"^.*?://[^/?#]*[/?]"


@functools.lru_cache(maxsize=1 << 18)
def page_key(url: str) -> str | None:
    """The page a canonical URL names, beyond its site: ``host/path``, without the
    scheme, letter case, a "www." or "m." prefix, the fragment, empty segments (so a
    trailing "/"), and the language and index segments of the path; ``None`` for a site's
    front page.

    >>> page_key("https://www.Raflaamo.fi/fi/helsinki/la-famiglia/")
    'raflaamo.fi/helsinki/la-famiglia'
    >>> page_key("http://example.com/en/") is None
    True
    """
    _, sep, rest = url.partition("://")
    rest = (rest if sep else url).split("#", 1)[0].lower()
    host, slash, path = rest.partition("/")
    if not slash:
        host, question, query = host.partition("?")
        path = f"{question}{query}"
    host = _HOST_PREFIX.sub("", host.rstrip("."))
    segments = [s for s in path.split("/") if s and not _TRIVIAL_SEGMENT.match(s)]
    if not host or not segments:
        return None
    return f"{host}/{'/'.join(segments)}"


def own_pages(urls: Iterable[str] | None, shared: Collection[str]) -> list[str]:
    """One record's pages, in the order of its websites, but those in ``shared``."""
    keys = (page_key(u) for u in urls or ())
    return list(dict.fromkeys(k for k in keys if k is not None and k not in shared))


def record_pages(records: pa.Table) -> pl.DataFrame:
    """Each record's distinct pages (``row``, ``page``; in the order of its websites), the
    key made once per distinct URL, and only of URLs with more than a host (most websites
    are a front page)."""
    websites = records.column("websites").combine_chunks()
    flat = pc.list_flatten(websites)
    rows = pc.list_parent_indices(websites).to_numpy().astype(np.int64)
    beyond = pc.or_kleene(
        pc.invert(pc.match_substring(flat, "://")), pc.match_substring_regex(flat, _BEYOND_HOST)
    )
    beyond = pc.fill_null(beyond, False).to_numpy(zero_copy_only=False)  # a null URL: no
    urls = pc.dictionary_encode(flat.filter(pa.array(beyond)))
    keys = pl.Series([page_key(u) for u in urls.dictionary.to_pylist()], dtype=pl.String)
    codes = urls.indices.to_numpy().astype(np.int64)
    return (
        pl.DataFrame({"row": rows[beyond], "page": keys.gather(codes)})
        .drop_nulls("page")
        .unique(["row", "page"], maintain_order=True)
    )


def page_lists(n: int, pages: pl.DataFrame, shared: Collection[str]) -> pa.ChunkedArray:
    """The pages of each of ``n`` records (:func:`record_pages`), but those in
    ``shared``, as a list column (null where none is left)."""
    if shared:
        pages = pages.filter(~pl.col("page").is_in(list(shared)))
    return list_column(n, pages["row"].to_numpy(), pages["page"].to_arrow().cast(pa.string()))


def list_column(n: int, rows: np.ndarray, values: pa.Array) -> pa.ChunkedArray:
    """A list column of ``n`` records from each value's record (``rows``, ascending) and
    the values in that order; null where a record has none."""
    counts = np.bincount(rows, minlength=n)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    lists = pa.ListArray.from_arrays(pa.array(offsets), values, mask=pa.array(counts == 0))
    return pa.chunked_array([lists])
