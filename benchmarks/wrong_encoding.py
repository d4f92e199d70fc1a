"""A feed read with the wrong encoding on its way: what text saved again as if it were
Windows-1252 ("CafÃ©" for "Café") does to conflation, and how well poiflow takes it.

A spreadsheet or an older system that reads a UTF-8 file as Windows-1252 and saves it as
UTF-8 again garbles every accented letter of it. The generated world (the 100k Splink
world by default) is conflated as it is, and again after the last source's file went
through such a round trip (a byte Windows-1252 leaves undefined read as Latin-1, as most
readers do), and once more after its text fields went through an export for the web:
escaped for HTML or XML ("&amp;"), every letter beyond ASCII a character reference
("Caf&#233;"), as an XML feed written in ASCII has them; and once more after a table
read its postcodes as numbers and wrote them back as pandas does a column with gaps
("00170" as "170.0"). Printed side by side: pairwise
precision, recall and F1 against the truth, and the F1 of the places with a record of
that source whose name or street has a letter beyond ASCII.

Usage:
    .venv/bin/python benchmarks/wrong_encoding.py [--places 35000 --sources 4 --seed 2024]
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import polars as pl

from measure import scored_run, their_places, world_files
from poiflow.conflate.evaluate import read_gold
from poiflow.generate.habits import (
    ESCAPED_FIELDS,
    as_a_number,
    escaped_for_the_web,
    read_as_windows_1252,
)


def main() -> None:
    world, frames = world_files(__doc__.splitlines()[0], places=35_000, sources=4, seed=2024)
    last = list(frames)[-1]
    source = Path(last).stem
    accented = frames[last].filter(
        pl.any_horizontal(
            pl.col(c).fill_null("").str.contains(r"[^\x00-\x7f]") for c in ("name", "street")
        )
    )
    gold = read_gold(world / "gold.csv")
    of_accented = their_places(gold, accented.select(source=pl.lit(source), id="id"))
    with tempfile.TemporaryDirectory() as scratch:
        garbled = Path(scratch) / "garbled"
        garbled.mkdir()
        for name in frames:
            text = (world / name).read_text(encoding="utf-8")
            if name == last:
                text = read_as_windows_1252(text)
            (garbled / name).write_text(text, encoding="utf-8")
        escaped = Path(scratch) / "escaped"
        escaped.mkdir()
        for name, frame in frames.items():
            if name == last:
                frame = frame.with_columns(
                    pl.col(c).map_elements(escaped_for_the_web, return_dtype=pl.String)
                    for c in ESCAPED_FIELDS
                    if c in frame.columns
                )
            frame.write_csv(escaped / name)
        numbers = Path(scratch) / "numbers"
        numbers.mkdir()
        for name, frame in frames.items():
            if name == last:
                frame = frame.with_columns(
                    pl.col("postcode").map_elements(as_a_number, return_dtype=pl.String)
                )
            frame.write_csv(numbers / name)
        zeros = frames[last].filter(pl.col("postcode").str.contains(r"^0[0-9]*$")).height
        print(f"{zeros:,} records of {source} with a postcode of digits beginning with 0")
        print(f"{accented.height:,} records of {source} with a letter beyond ASCII garbled")
        print(f"{'world':<26}{'seconds':>9}{'P':>8}{'R':>8}{'F1':>8}{'accented F1':>13}")
        worlds = (
            ("as generated", world),
            ("read as Windows-1252", garbled),
            ("escaped for the web", escaped),
            ("postcodes as numbers", numbers),
        )
        for label, folder in worlds:
            out = Path(scratch) / f"run-{label.replace(' ', '-')}"
            files = [folder / name for name in frames]
            seconds, scores, ours = scored_run(files, out, gold, of_accented)
            print(
                f"{label:<26}{seconds:>9.1f}{scores.precision:>8.4f}{scores.recall:>8.4f}"
                f"{scores.f1:>8.4f}{ours.f1:>13.4f}"
            )


if __name__ == "__main__":
    main()
