from __future__ import annotations

from dataclasses import replace

import h3
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from poiflow.conflate.blocking import (
    blocking_recall,
    candidate_pairs,
    common_kinds,
    common_words,
    finish_pairs,
    key_counts,
    key_pairs,
    key_stats,
    open_to_unlocated,
    record_keys,
    shared_keys,
    table_stats,
)
from poiflow.conflate.keys import BLOCKING_COLUMNS, KEY_ROWS_SCHEMA, KEYS, BlockingConfig, Kind
from poiflow.conflate.lookup import FEW_RECORDS, StatsLookup
from poiflow.normalize import normalize_records
from poiflow.sources import records_from_rows

from . import few_records
from .conftest import World


def places(*rows: dict) -> pa.Table:
    base = {"source": "s", "origin": "x"}
    return normalize_records(records_from_rows([{**base, **r} for r in rows])).places


def keys_of(pairs: pa.Table) -> dict[tuple[int, int], int]:
    """(left, right) -> the bits of the keys that proposed the pair."""
    return {
        (int(a), int(b)): int(k)
        for a, b, k in zip(
            pairs.column("left").to_numpy(),
            pairs.column("right").to_numpy(),
            pairs.column("keys").to_numpy(),
            strict=True,
        )
    }


def numbered(records: pa.Table) -> pa.Table:
    """The ``BLOCKING_COLUMNS`` of records, and their ``row`` from 0."""
    return records.select(list(BLOCKING_COLUMNS)).append_column(
        "row", pa.array(np.arange(records.num_rows, dtype=np.int64))
    )


def test_pairs_are_ordered_unique_and_deterministic(world: World) -> None:
    pairs = candidate_pairs(world.records)
    left, right = pairs.column("left").to_numpy(), pairs.column("right").to_numpy()
    assert (left < right).all()
    assert len({(a, b) for a, b in zip(left, right, strict=True)}) == len(left)
    assert candidate_pairs(world.records).equals(pairs)


def test_key_rows_come_once_and_pairs_once_or_not_give_the_same_candidates(
    world: World,
) -> None:
    n = world.records.num_rows
    table = numbered(world.records)
    keys = record_keys(table, key_stats(key_counts(table)))
    assert keys.height == keys.unique().height  # no key row twice (a doubled letter's typo)
    once = key_pairs(keys)
    repeated = key_pairs(keys, once=False)
    assert repeated.height > once.height  # the pairs a key group finds from both sides
    assert finish_pairs([repeated], n).equals(finish_pairs([once], n))


def test_recall_and_cost_on_generated_data(world: World) -> None:
    pairs = candidate_pairs(world.records)
    recall, _found, total = blocking_recall(pairs, pa.array(world.truth))
    assert total > 1000
    assert recall > 0.96
    assert pairs.num_rows / world.records.num_rows < 30  # candidates per record


def test_each_key_finds_what_only_it_can() -> None:
    table = places(
        # 1, 2: translations 15 m apart, no shared word: only "near" can propose them
        {"id": "1", "names": {"primary": "Kansallismuseo"}, "lat": 60.1750, "lon": 24.9310},
        {"id": "2", "names": {"primary": "Nationalmuseet"}, "lat": 60.17512, "lon": 24.93105},
        # 3, 4: one phone, 40 km apart
        {
            "id": "3",
            "names": {"primary": "Acme"},
            "lat": 60.0,
            "lon": 24.0,
            "phones": ["+358401234567"],
        },
        {
            "id": "4",
            "names": {"primary": "Acme Oy"},
            "lat": 60.3,
            "lon": 24.6,
            "phones": ["+358 40 123 4567"],
        },
        # 5, 6: no coordinates, same locality, a shared rare word
        {"id": "5", "names": {"primary": "Kahvila Zyxwv"}, "address": {"locality": "Tampere"}},
        {"id": "6", "names": {"primary": "Zyxwv"}, "address": {"locality": "Tampere"}},
        # 7, 8: the same name 400 m apart (a cafe's ring)
        {"id": "7", "names": {"primary": "Regatta"}, "lat": 60.1800, "lon": 24.9100},
        {"id": "8", "names": {"primary": "Cafe Regatta"}, "lat": 60.1836, "lon": 24.9100},
    )
    found = keys_of(candidate_pairs(table))
    assert found[(0, 1)] & KEYS["near"]
    assert found[(2, 3)] & KEYS["phone"]
    assert found[(4, 5)] & KEYS["locality"]
    assert found[(6, 7)] & KEYS["name"]
    assert (0, 6) not in found  # far apart, nothing shared


def test_a_name_without_spaces_meets_by_two_syllables_side_by_side() -> None:
    # 田中 folds to "tian zhong": each syllable is common here (four and three records),
    # so only the two side by side make a rare word. The same words in Latin letters are
    # words of their own, not syllables: no pair of them becomes a key.
    at = {"lat": 60.1800, "lon": 24.9100}
    near = {"lat": 60.1813, "lon": 24.9100}  # ~150 m: beyond "near", within a cafe's ring
    far = {"lat": 61.5, "lon": 23.8}
    further = {"lat": 61.5013, "lon": 23.8}
    cafe = {"categories": {"primary": "cafe"}}
    table = places(
        {"id": "0", "names": {"primary": "田中"}, **at, **cafe},
        {"id": "1", "names": {"primary": "Kamppi 田中"}, **near, **cafe},
        {"id": "2", "names": {"primary": "中田"}, "lat": 62.0, "lon": 25.0, **cafe},
        {"id": "3", "names": {"primary": "田村"}, "lat": 63.0, "lon": 26.0, **cafe},
        {"id": "4", "names": {"primary": "Tian Zhong"}, **far, **cafe},
        {"id": "5", "names": {"primary": "Keskusta Tian Zhong"}, **further, **cafe},
    )
    config = BlockingConfig(rare_token_min=2, rare_token_share=0.0)
    found = keys_of(candidate_pairs(table, config))
    assert found[(0, 1)] == KEYS["name"]
    assert (4, 5) not in found
    assert set(found) == {(0, 1)}  # "zhong tian" and "tian cun" meet no one


def test_a_branch_word_on_one_side_still_meets_the_name() -> None:
    # No word is rare here: only whole names make keys. A name with one word more at its
    # end (a branch, a district) meets the name without it within its ring; two branches
    # of one name do not meet each other that way, nor does a name with a word before.
    # The two branches' first twelve letters are alike ("nordeapankki"): they meet by the
    # typo key, in their ~36 km² cell, as the name 15 km off does not.
    north, south = {"lat": 60.1813, "lon": 24.91}, {"lat": 60.1787, "lon": 24.91}
    cafe = {"categories": {"primary": "cafe"}}
    table = places(
        {"id": "0", "names": {"primary": "Nordea Pankki"}, "lat": 60.18, "lon": 24.91, **cafe},
        {"id": "1", "names": {"primary": "Nordea Pankki Kamppi"}, **north, **cafe},
        {"id": "2", "names": {"primary": "Nordea Pankki Keskusta"}, **south, **cafe},
        {"id": "3", "names": {"primary": "Kamppi Nordea Pankki"}, "lat": 60.1822, "lon": 24.91},
        {"id": "4", "names": {"primary": "Nordea Pankki Airport"}, "lat": 60.32, "lon": 24.96},
    )
    found = keys_of(candidate_pairs(table, BlockingConfig(rare_token_min=0, rare_token_share=0)))
    name, typo = KEYS["name"], KEYS["typo"]
    assert found == {(0, 1): name | typo, (0, 2): name | typo, (1, 2): typo}


def test_a_point_rounded_to_a_kilometre_meets_its_place_further_and_by_a_typo() -> None:
    # A point at whole hundredths of a degree may be ~0.6 km from its place: its name
    # keys look in a wider ring, and its typo variants are name keys there too. The same
    # record a hundred-thousandth of a degree off is an ordinary point and meets neither
    # (a name one typo off still meets it by the typo key, in their ~36 km² cell).
    bank = {"categories": {"primary": "bank"}}

    def found(name: str, far: str, at: tuple[float, float], lat: float) -> int:
        table = places(
            {"id": "a", "names": {"primary": name}, "lat": at[0], "lon": at[1], **bank},
            {"id": "b", "names": {"primary": far}, "lat": lat, "lon": 24.9403, **bank},
        )
        return keys_of(candidate_pairs(table)).get((0, 1), 0)

    rounded, off = (60.17, 24.94), (60.17001, 24.94001)
    name, typo = KEYS["name"], KEYS["typo"]
    assert found("Aino", "Kahvila Aino", rounded, 60.1812) == name  # 1.3 km apart, a word
    assert found("Aino", "Kahvila Aino", off, 60.1812) == 0
    assert found("Granit", "Grabit", rounded, 60.1751) == name | typo  # 0.6 km, one typo
    assert found("Granit", "Grabit", off, 60.1751) == typo


def test_a_name_one_typo_off_meets_its_place_beyond_the_near_key() -> None:
    # One letter dropped, added, changed, two swapped, a space lost: each pair lies 150 m
    # apart (beyond the near key's hundred metres) and shares no word, yet meets by the
    # typo key. So does the same name 2.5 km off (a geocoder's error), in the same ~36 km²
    # cell; two typos, or another cell, do not. Names are cafes: their name ring is small.
    cafe = {"categories": {"primary": "cafe"}}
    at, near, far = (60.17013, 24.94017), (60.17148, 24.94017), (60.14763, 24.94017)
    assert h3.latlng_to_cell(*at, 6) == h3.latlng_to_cell(*far, 6)
    other = (60.05013, 24.94017)  # 13 km south: another cell at resolution 6
    assert h3.latlng_to_cell(*at, 6) != h3.latlng_to_cell(*other, 6)

    def met(name: str, other_name: str, where: tuple[float, float]) -> int:
        table = places(
            {"id": "a", "names": {"primary": name}, "lat": at[0], "lon": at[1], **cafe},
            {"id": "b", "names": {"primary": other_name}, "lat": where[0], "lon": where[1], **cafe},
        )
        return keys_of(candidate_pairs(table)).get((0, 1), 0)

    typo = KEYS["typo"]
    for misspelt in ("Finlaysn", "Finnlayson", "Finlaison", "Finalyson"):
        assert met("Finlayson", misspelt, near) == typo, misspelt
    assert met("Wok Pupu", "Wokpupu", near) == typo
    assert met("Finlayson", "Finlayson", far) & typo
    assert met("Finlayson", "Fimlaysom", near) == 0  # two typos
    assert met("Finlayson", "Finlaysn", other) == 0


def test_a_typo_key_that_too_many_records_share_makes_no_pairs() -> None:
    # Twenty records whose names begin alike in one cell pair up by the typo key (the cap
    # is half the name key's, 20); twenty-one do not.
    cafe = {"categories": {"primary": "cafe"}}

    def pairs(n: int) -> int:
        table = places(
            *(
                {
                    "id": str(i),
                    "names": {"primary": f"Ravintolapaikka {i:02d}"},
                    "lat": 60.17013 + 0.0001 * i,
                    "lon": 24.94017,
                    **cafe,
                }
                for i in range(n)
            )
        )
        found = keys_of(candidate_pairs(table))
        return sum(1 for bits in found.values() if bits & KEYS["typo"])

    config = BlockingConfig()
    assert config.cap(Kind.TYPO) == 20
    assert pairs(20) == 20 * 19 // 2
    assert pairs(21) == 0


def _call_centre(n: int) -> list[dict[str, object]]:
    """``n`` records far apart with one phone (a call centre's)."""
    return [
        {
            "id": str(i),
            "names": {"primary": f"Branch {i} Qwz{i}"},
            "lat": 10.0 + i,
            "lon": 10.0,
            "phones": ["+358401234567"],
        }
        for i in range(n)
    ]


def test_crowded_keys_are_skipped() -> None:
    # 30 records with one phone (a call centre): the group exceeds the cap and says nothing.
    rows = _call_centre(30)
    pairs = candidate_pairs(places(*rows), BlockingConfig(max_group=100))
    keys = pairs.column("keys").to_numpy()
    assert not (keys & KEYS["phone"]).any()
    assert candidate_pairs(places(*rows), BlockingConfig(max_group=400)).num_rows == 30 * 29 // 2
    assert np.all(keys >= 0)


def test_shared_keys_say_why_two_records_were_or_were_not_compared(world: World) -> None:
    # Pairs blocking made, and true pairs it missed: the two records' shared keys tell
    # them apart (a key too crowded to pair does not count).
    pairs = candidate_pairs(world.records)
    made = set(
        zip(pairs.column("left").to_pylist(), pairs.column("right").to_pylist(), strict=True)
    )
    truth = pl.DataFrame({"place": world.truth}).with_row_index("row").drop_nulls()
    true_pairs = (
        truth.join(truth, on="place")
        .filter(pl.col("row") < pl.col("row_right"))
        .select("row", "row_right")
        .rows()
    )
    missed = [p for p in true_pairs if p not in made][:12]
    stats = table_stats(world.records)
    assert missed, "the test world's blocking misses no true pair: pick another seed"
    some = sorted(made)[:: max(1, len(made) // 12)][:12]
    for pair in [*missed, *some]:
        found = shared_keys(world.records, pair)
        assert any(key.pairs for key in found) == (pair in made), (pair, found)
        assert all(key.kind in KEYS for key in found)
        # Without the groups' sizes: the same kinds.
        assert common_kinds(world.records, pair, BlockingConfig(), stats) == sorted(
            {key.kind for key in found}
        )
    (phone,) = shared_keys(places(*_call_centre(30)), (0, 1), BlockingConfig(max_group=100))
    assert (phone.kind, phone.records, phone.pairs) == ("phone", 30, False)


def test_a_feed_without_coordinates_meets_located_objects_without_an_address() -> None:
    table = places(
        # 0: an OSM-like object: coordinates, no address; 1: a neighbour that has a locality
        {"id": "0", "names": {"primary": "Nordea"}, "lat": 60.1700, "lon": 24.9400},
        {
            "id": "1",
            "names": {"primary": "Kirjasto"},
            "lat": 60.1710,
            "lon": 24.9410,
            "address": {"locality": "Helsinki"},
        },
        # 2: a vendor record with a typo, no coordinates: "norda" shares no word with "nordea"
        {"id": "2", "names": {"primary": "Norda"}, "address": {"locality": "Helsinki"}},
        # 3: the same typo in another town
        {"id": "3", "names": {"primary": "Norda"}, "address": {"locality": "Tampere"}},
        # 4: a name two typos away, same town
        {"id": "4", "names": {"primary": "Nrdia"}, "address": {"locality": "Helsinki"}},
    )
    found = keys_of(candidate_pairs(table))
    assert found[(0, 2)] & KEYS["locality"]  # locality taken from the neighbour; one typo
    assert (0, 3) not in found  # other town
    assert (0, 4) not in found  # two typos: not a key


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(picked=st.lists(st.integers(0, 10**9), min_size=1, max_size=12))
def test_keys_from_narrowed_stats_are_the_keys_from_the_whole(
    world: World, picked: list[int]
) -> None:
    # Real-time matching makes a few records' keys from just the part of the statistics
    # they touch; they must be exactly the keys the whole statistics give.
    n = world.records.num_rows
    table = numbered(world.records)
    stats = key_stats(key_counts(table))
    some = table.take(pa.array(sorted({p % n for p in picked})))
    whole = record_keys(some, stats).sort(KEY_ROWS_SCHEMA.names)
    narrowed = StatsLookup(stats).record_keys(some).sort(KEY_ROWS_SCHEMA.names)
    assert narrowed.equals(whole)
    assert whole.height > 0


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(drawn=st.lists(few_records.row, min_size=1, max_size=FEW_RECORDS), located=st.booleans())
def test_keys_of_a_few_records_in_python_are_the_batch_keys(
    world: World, drawn: list[dict], located: bool
) -> None:
    # A request of a few records takes a plain-Python path; its key rows must be the
    # batch's, row for row (added records' keys are counted: a row more or less would
    # change what a key caps). Drawn records share words, typos, cells, phones, domains,
    # localities and alternates with each other; the world's statistics decide which
    # words are rare, and with ``located`` every record has coordinates (no locality
    # keys at all).
    records = pa.concat_tables([world.records, few_records.records_of(drawn)])
    if located:
        records = records.filter(pc.is_valid(records.column("lat")))
    table = numbered(records)
    stats = key_stats(key_counts(table))
    assert stats.unlocated is not located
    known = world.records.num_rows - (world.records.column("lat").null_count if located else 0)
    some = table.slice(known)
    assume(some.num_rows > 0)
    batch = record_keys(some, stats).sort(KEY_ROWS_SCHEMA.names)
    few = StatsLookup(stats).record_keys(some).sort(KEY_ROWS_SCHEMA.names)
    assert few.equals(batch)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(drawn=st.lists(few_records.row, min_size=1, max_size=FEW_RECORDS), located=st.booleans())
def test_keys_of_a_few_records_counted_with_a_run_in_python_are_the_batch_keys(
    world: World, drawn: list[dict], located: bool
) -> None:
    # New records grouped among themselves (MatchIndex.among) are keyed as a run of them
    # and the run's records would count them: in Python, from the run's statistics and the
    # words too common to be keys; in batch, from the summed counts. Where the few records
    # change no cell's locality and no word's rarity, their key rows are the same. With
    # ``located``, the run has no record without coordinates (no locality keys of its
    # own), and the records' own terms make them.
    run = world.records
    if located:
        run = run.filter(pc.is_valid(run.column("lat")))
    new = numbered(few_records.records_of(drawn))
    counts = key_counts(numbered(run))
    alone, together = key_stats(counts), key_stats([counts, key_counts(new)])
    assert alone.unlocated is not located
    common = common_words(counts)
    words = set(pl.DataFrame(key_counts(new)).filter(pl.col("what") == "word")["value"])
    rare = set(together.rare_words["word"])
    assume(all((w in rare) is (w not in common) for w in words))
    assume(alone.localities.sort("cell").equals(together.localities.sort("cell")))
    batch = record_keys(new, together).sort(KEY_ROWS_SCHEMA.names)
    rows = new.to_pylist()
    few = StatsLookup(alone).row_keys(rows, rows=[r["row"] for r in rows], common=common)
    assert pl.DataFrame(few, schema=batch.schema).sort(KEY_ROWS_SCHEMA.names).equals(batch)


def test_keys_open_to_records_without_coordinates_pair_located_records_as_before(
    world: World,
) -> None:
    # A run's records held for matching get the keys a record without coordinates would
    # meet them by (MatchIndex); among themselves they pair as they did.
    located = numbered(world.records.filter(pc.is_valid(world.records.column("lat"))))
    stats = key_stats(key_counts(located))
    assert not stats.unlocated
    opened = open_to_unlocated(stats)
    before, after = record_keys(located, stats), record_keys(located, opened)
    assert after.height > before.height
    n = located.num_rows
    assert finish_pairs([key_pairs(after)], n).equals(finish_pairs([key_pairs(before)], n))
    # ... and one of them without coordinates meets itself by its locality and name (no
    # phone nor website to meet it by).
    rows = pl.DataFrame(located).with_row_index("at")
    at = rows.filter(
        pl.col("keys").struct.field("locality").is_not_null()
        & (pl.col("phones").list.len().fill_null(0) == 0)
        & (pl.col("keys").struct.field("domains").list.len().fill_null(0) == 0)
    )["at"][0]
    lost = located.slice(at, 1).to_pylist()[0] | {"lat": None, "lon": None, "row": n}
    keys = pl.concat([after, record_keys(pa.Table.from_pylist([lost], located.schema), opened)])
    pairs = finish_pairs([key_pairs(keys)], n + 1)
    met = pairs.filter(pc.equal(pairs.column("right"), n))
    assert at in met.column("left").to_pylist()
    assert met.num_rows < n // 10


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(picked=st.lists(st.integers(0, 10**9), min_size=2, max_size=FEW_RECORDS * 2))
def test_cells_the_statistics_lack_take_the_records_own_localities(
    world: World, picked: list[int]
) -> None:
    # A run of records without coordinates knows no cell's locality. Located records
    # matched against it (a few in Python, more in a batch) lend theirs to neighbours
    # without one, as a run of them would count it; the run's own statistics otherwise.
    unlocated = world.records.filter(pc.is_null(world.records.column("lat")))
    located = world.records.filter(pc.is_valid(world.records.column("lat")))
    run = key_stats(key_counts(numbered(unlocated)))
    assert run.unlocated
    assert run.localities.is_empty()
    some = numbered(located.take(sorted({p % located.num_rows for p in picked})))
    own = key_stats(key_counts(some)).localities
    assume(not own.is_empty())
    expected = record_keys(some, replace(run, localities=own)).sort(KEY_ROWS_SCHEMA.names)
    assert StatsLookup(run).record_keys(some).sort(KEY_ROWS_SCHEMA.names).equals(expected)


def test_keys_of_more_than_a_few_records_take_the_batch_path(world: World) -> None:
    n = FEW_RECORDS * 3
    table = numbered(world.records)
    stats = key_stats(key_counts(table))
    some = table.slice(0, n)
    whole = record_keys(some, stats).sort(KEY_ROWS_SCHEMA.names)
    lookup = StatsLookup(stats)
    assert lookup.record_keys(some).sort(KEY_ROWS_SCHEMA.names).equals(whole)
    # ... and the few path, run on each part, gives the same rows.
    parts = [lookup.record_keys(some.slice(i, FEW_RECORDS)) for i in range(0, n, FEW_RECORDS)]
    assert pl.concat(parts).sort(KEY_ROWS_SCHEMA.names).equals(whole)
    assert whole.height > n
