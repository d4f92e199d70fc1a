"""The shipped model on worlds named in other languages and scripts.

The default model was trained on worlds drawn from the bundled Helsinki extract: Finnish,
Swedish and English names. Here the same world (same seed: the same places, categories,
chains, cities, noise) is named again by Faker in another locale: each distinct Helsinki
name becomes one company name of that locale without its legal form (so a chain stays a
chain; two names that are one to a person, "Kramer" and "Kramer GmbH", or "株式会社山田"
and "山田株式会社", are not both used), each street a street of that
locale. German, French and
Polish names are Latin script with other letters and legal forms; Greek and Japanese are
other scripts (Japanese names have no spaces between words). Then ``poiflow generate
--names``, ``poiflow conflate`` (the shipped model, and ``--model em``) and the scores,
with where the errors came from.

Usage:
    .venv/bin/python benchmarks/generalize.py
    .venv/bin/python benchmarks/generalize.py --seed 7 --locale de_DE --locale ja_JP
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
from faker import Faker

from measure import DATA, fresh_folder, measure
from poiflow.conflate.clustering import ClusterConfig
from poiflow.conflate.diagnosis import CAUSES, diagnose
from poiflow.conflate.evaluate import read_gold, score_membership
from poiflow.generate.world import SEED_COLUMNS, bundled_seed
from poiflow.normalize.names import name_key

LOCALES = ("de_DE", "fr_FR", "pl_PL", "el_GR", "ja_JP")


def renamed_seed(locale: str, seed: int, path: Path) -> Path:
    """The bundled places, named in ``locale``: written as a ``--names`` CSV."""
    fake = Faker(locale)
    fake.seed_instance(seed)
    places = bundled_seed()
    names: dict[str, str] = {}
    used: set[str] = set()
    for place in places:
        if place["name"] not in names:
            # Distinct names stay distinct once folded ("Kramer" and "Kramer GmbH" are
            # one name to a matcher, and were two places of the seed).
            name = _without_legal_form(fake.company())
            for attempt in range(1000):
                if _core(name) not in used:
                    break
                # A locale with few company names runs out: add a place word of its own.
                extra = f" {fake.city()}" if attempt > 20 else ""
                name = _without_legal_form(fake.company()) + extra
            used.add(_core(name))
            names[place["name"]] = name
    streets = {s: fake.street_name() for s in sorted({p["street"] for p in places if p["street"]})}
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(SEED_COLUMNS)
        for place in places:
            writer.writerow(
                (
                    names[place["name"]],
                    place["category"],
                    streets.get(place["street"], ""),
                    names.get(place["brand"] or "", ""),
                    "",  # the generator makes each name's own domain
                    place["opening_hours"] or "",
                )
            )
    return path


# Japanese company forms: part of a Faker ja_JP name, written before or after it with no
# space ("株式会社山田電気", "山田電気株式会社": one name to a person).
_JAPANESE_FORMS = re.compile("株式会社|有限会社|合同会社|合資会社|合名会社")


def _core(name: str) -> str:
    """What makes two names one to a person: the name key, Japanese forms left out."""
    return name_key(_JAPANESE_FORMS.sub("", name)) or name_key(name)


def _without_legal_form(name: str) -> str:
    """A company name without the legal form it ends in ("Scheel KG" -> "Scheel"): a
    place's name, as the bundled names are; the generator's noise adds legal forms back."""
    words = name.split()
    while len(words) > 1 and name_key(" ".join(words)) == name_key(" ".join(words[:-1])):
        words = words[:-1]
    return " ".join(words).rstrip(" ,&-")


def run(label: str, folder: Path, model: str) -> dict:
    files = sorted(str(p) for p in folder.glob("source_*.csv"))
    out = folder / f"run-{model}"
    command = [sys.executable, "-m", "poiflow", "conflate", *files, "-o", str(out), "--json"]
    seconds, _, _ = measure([*command, "--model", model])
    gold = read_gold(folder / "gold.csv")
    membership = pl.read_parquet(out / "membership.parquet")
    scores = score_membership(membership, gold)
    cluster = ClusterConfig(**json.loads((out / "run.json").read_text())["matching"]["cluster"])
    pairs = pq.read_table(
        out / "pairs.parquet",
        columns=["left_source", "left_id", "right_source", "right_id", "match_probability"],
    )
    errors = diagnose(membership, gold, pairs, cluster).counts()
    return {"names": label, "model": model, "wall_s": seconds, **scores.as_dict(), **errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--places", type=int, default=8000, help="places in each world")
    parser.add_argument("--sources", type=int, default=4, help="sources describing them")
    parser.add_argument(
        "--seed",
        type=int,
        action="append",
        help="world seeds (default: 7, 8, 9); the noise of each source is drawn after the "
        "names, so it differs between locales of one seed: several seeds average it out",
    )
    parser.add_argument("--locale", action="append", help=f"Faker locales (default: {LOCALES})")
    args = parser.parse_args()
    root = DATA / "generalize"
    worlds = [("Helsinki (bundled)", None), *((loc, loc) for loc in args.locale or LOCALES)]
    results = []
    for label, locale in worlds:
        for seed in args.seed or (7, 8, 9):
            folder = root / f"{locale or 'bundled'}-{args.places}-{args.sources}-{seed}"
            if fresh_folder(folder):
                command = [sys.executable, "-m", "poiflow", "generate", "-o", str(folder)]
                command += ["--places", str(args.places), "--sources", str(args.sources)]
                command += ["--seed", str(seed)]
                if locale is not None:
                    names = renamed_seed(locale, seed, root / f"names-{locale}-{seed}.csv")
                    command += ["--names", str(names)]
                measure(command)
            results += [run(label, folder, model) for model in ("default", "em")]
    kinds = [f"{e}_{s}" for e, s in CAUSES]
    table = (
        pl.DataFrame(results)
        .group_by("names", "model", maintain_order=True)
        .agg(
            pl.len().alias("worlds"),
            pl.col("records").sum(),
            pl.col("precision", "recall", "f1", "bcubed_f1").mean(),
            pl.col("f1").min().alias("f1_min"),
            pl.col("f1").max().alias("f1_max"),
            *(pl.col(k).sum() for k in kinds),
        )
    )
    print(
        f"{'names':<20} {'model':<8} {'worlds':>6} {'records':>8} {'P':>7} {'R':>7} "
        f"{'F1':>7} {'F1 range':>15} {'B3 F1':>7}  " + " ".join(f"{k:>17}" for k in kinds)
    )
    for r in table.iter_rows(named=True):
        print(
            f"{r['names']:<20} {r['model']:<8} {r['worlds']:>6} {r['records']:>8,} "
            f"{r['precision']:>7.4f} {r['recall']:>7.4f} {r['f1']:>7.4f} "
            f"{r['f1_min']:>7.4f}-{r['f1_max']:.4f} {r['bcubed_f1']:>7.4f}  "
            + " ".join(f"{r[k]:>17,}" for k in kinds)
        )


if __name__ == "__main__":
    main()
