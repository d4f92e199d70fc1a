"""The items of a JSON document's list, read one at a time from a window of the file."""

from __future__ import annotations

import io
import json
import math

import pytest

from poiflow.sources import json_items
from poiflow.sources.json_items import BrokenJsonError, NotJson, list_items

# Items of many lengths, every third one with a NaN, an integer past 64 bits among them,
# and strings that hold what the reader looks for ("]", ",", "}", quotes).
ITEMS = [
    {"id": n, "name": 'x"],}' * (n % 5) + "y" * (7 * n), "ref": math.nan if n % 3 == 2 else n}
    for n in range(12)
] + [{"id": 12, "big": 123456789012345678901234567890}]
DOCUMENT = {"type": "FeatureCollection", "name": "x", "features": ITEMS, "bbox": [1, 2]}


@pytest.mark.parametrize("indent", [None, 1])
def test_every_item_is_read_whole_whatever_the_size_of_a_block(
    monkeypatch: pytest.MonkeyPatch, indent: int | None
) -> None:
    text = json.dumps(DOCUMENT, indent=indent)
    for block in [*range(1, 65), 1 << 20]:
        monkeypatch.setattr(json_items, "_BLOCK", block)
        read = list(list_items(io.StringIO(text), "features"))
        held = [item for item in read if isinstance(item, NotJson)]
        assert [i.constant for i in held] == ["NaN"] * 4, block
        assert [json.loads(i.text)["id"] for i in held] == [2, 5, 8, 11], block
        kept = [item for item in read if not isinstance(item, NotJson)]
        assert kept == [item for item in ITEMS if item.get("ref") == item.get("ref")], block


def test_a_document_cut_short_is_refused() -> None:
    text = json.dumps(DOCUMENT)
    with pytest.raises(BrokenJsonError):
        list(list_items(io.StringIO(text[: len(text) // 2]), "features"))
    with pytest.raises(BrokenJsonError, match="'features' is not a list"):
        list(list_items(io.StringIO('{"features": 3}'), "features"))


class _Counted(io.StringIO):
    """A text whose reads are counted, with the characters they gave."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.reads = 0

    def read(self, size: int | None = -1) -> str:
        self.reads += 1
        return super().read(size)


def test_a_large_item_costs_reads_in_line_with_its_size(monkeypatch: pytest.MonkeyPatch) -> None:
    # An item is decoded again from its start after each read that did not make it whole:
    # were the reads all of one block, an item of n blocks would be decoded n times over
    # (n^2 / 2 blocks' work: minutes for a polygon of 50 MB). The reads grow with it.
    monkeypatch.setattr(json_items, "_BLOCK", 10)
    big = {"id": 1, "ring": [[24.9 + i * 1e-6, 60.1] for i in range(2_000)]}
    text = json.dumps({"features": [{"id": 0, "x": math.nan}, big, {"id": 2}]})
    handle = _Counted(text)
    read = list(list_items(handle, "features"))
    assert [type(i).__name__ for i in read] == ["NotJson", "dict", "dict"]
    assert read[1] == big
    blocks = len(text) / 10
    assert blocks > 4_000
    assert handle.reads < 2 * math.log2(blocks) + 10
