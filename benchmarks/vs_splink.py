"""poiflow conflate against Splink (DuckDB backend) on the same generated records.

Generates about 100,000 records (seeded) with ``poiflow generate``, then runs, each as a
whole process so wall times are comparable:

- ``poiflow conflate`` with its shipped default model;
- ``poiflow conflate --model em``: no model, no labels, a Fellegi-Sunter model fitted by EM
  on the run's own pairs (the like-for-like with Splink, which is Fellegi-Sunter with EM);
- Splink 4+/5 on DuckDB, configured for POIs as a competent user would: the names folded
  (lower case, ASCII, legal forms dropped), phones reduced to their last nine digits,
  website domains, a ~1 km grid cell and a ~100 m cell from the coordinates; blocking on
  name word + cell, near cell, phone, domain + city, and name + city (for records without
  coordinates); comparisons of name (Jaro-Winkler levels with term-frequency adjustment),
  distance in km, phone, domain, house number, postcode; u by random sampling, m by EM.

Both are scored with ``poiflow evaluate``'s metrics against the generator's truth; Splink
at every clustering threshold of a sweep, and its best is reported.

A third process matches nothing (``io_floor.py``): it reads the same CSV files and writes
the records, a membership and poiflow's scored pairs again. Its time is the floor under
any Python conflation of these files that writes what ``poiflow conflate`` must, and is
printed beside a fifth of Splink's (the speed target of issue 3).

With ``--vendor-noise NAME=VALUE`` (repeatable), the vendor sources have that noise or
habit of real feeds (``poiflow generate --vendor-noise``): the same world, its points
rounded, its text garbled on its way, and so on, for both systems alike.

Usage:
    .venv/bin/python benchmarks/vs_splink.py [--places 35000] [--sources 4] [--seed 2024]
        [--vendor-noise rounded_points=0.3 ...]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

from measure import DATA, fresh_folder, habit_suffix, world_arguments

THRESHOLDS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99)

LEGAL = (
    "oy",
    "oyj",
    "ab",
    "ltd",
    "llc",
    "inc",
    "gmbh",
    "ag",
    "kg",
    "sa",
    "sarl",
    "sas",
    "plc",
    "bv",
    "nv",
    "sl",
    "srl",
    "spa",
    "as",
    "asa",
    "aps",
    "ky",
    "hb",
)


def splink_run(folder: Path, out: Path) -> None:
    """Run Splink on the generated sources in ``folder``; write membership per threshold."""
    import duckdb
    import splink.comparison_library as cl
    from splink import DuckDBAPI, Linker, SettingsCreator, block_on

    con = duckdb.connect()
    files = sorted(str(p) for p in folder.glob("source_*.csv"))
    legal = "|".join(LEGAL)
    con.execute(
        f"""
        CREATE TABLE records AS
        WITH raw AS (
            SELECT regexp_extract(filename, 'source_[a-z]+') AS source, *
            FROM read_csv({files!r}, union_by_name = true, filename = true, all_varchar = true)
        ), folded AS (
            SELECT *,
                trim(regexp_replace(
                    regexp_replace(lower(strip_accents(name)), '[^a-z0-9 ]', ' ', 'g'),
                    '\\b({legal})\\b', ' ', 'g')) AS name0,
                TRY_CAST(lat AS DOUBLE) AS lat_d, TRY_CAST(lon AS DOUBLE) AS lon_d
            FROM raw
        )
        SELECT
            source || ':' || id AS unique_id, source, id,
            regexp_replace(name0, ' +', ' ', 'g') AS name_norm,
            split_part(regexp_replace(name0, ' +', ' ', 'g'), ' ', 1) AS name_tok1,
            lat_d AS lat, lon_d AS lon,
            CASE WHEN lat_d IS NULL THEN NULL ELSE
                floor(lat_d * 100)::BIGINT || '_'
                || floor(lon_d * 100 * cos(radians(lat_d)))::BIGINT
            END AS cell_1km,
            CASE WHEN lat_d IS NULL THEN NULL ELSE
                floor(lat_d * 1000)::BIGINT || '_'
                || floor(lon_d * 1000 * cos(radians(lat_d)))::BIGINT
            END AS cell_100m,
            NULLIF(right(regexp_replace(coalesce(phone, ''), '[^0-9]', '', 'g'), 9), '') AS phone9,
            NULLIF(regexp_extract(lower(coalesce(website, '')),
                   '^(?:https?://)?(?:www\\.)?([^/:?]+)', 1), '') AS domain,
            lower(city) AS city, housenumber, upper(replace(postcode, ' ', '')) AS postcode
        FROM folded
        """
    )
    db_api = DuckDBAPI(connection=con)
    records = db_api.register("records", dataset_display_name="records")
    settings = SettingsCreator(
        link_type="dedupe_only",
        comparisons=[
            cl.JaroWinklerAtThresholds("name_norm", [0.95, 0.88, 0.75]).configure(
                term_frequency_adjustments=True
            ),
            cl.DistanceInKMAtThresholds("lat", "lon", [0.03, 0.1, 0.3, 1.0]),
            cl.ExactMatch("phone9"),
            cl.ExactMatch("domain"),
            cl.ExactMatch("housenumber"),
            cl.ExactMatch("postcode"),
        ],
        blocking_rules_to_generate_predictions=[
            block_on("name_tok1", "cell_1km"),
            block_on("cell_100m"),
            block_on("phone9"),
            block_on("domain", "city"),
            block_on("name_norm", "city"),
        ],
        retain_intermediate_calculation_columns=False,
    )
    linker = Linker(records, settings)
    linker.training.estimate_probability_two_random_records_match(
        [block_on("phone9"), block_on("name_norm", "cell_100m")], recall=0.7
    )
    linker.training.estimate_u_using_random_sampling(max_pairs=2e6)
    linker.training.estimate_parameters_using_expectation_maximisation(
        block_on("name_tok1", "cell_1km")
    )
    linker.training.estimate_parameters_using_expectation_maximisation(block_on("phone9"))
    predictions = linker.inference.predict(threshold_match_probability=0.3)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    for threshold in THRESHOLDS:
        t = time.perf_counter()
        clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
            predictions, threshold
        )
        relation = clusters.as_duckdbpyrelation()
        pl.DataFrame(
            relation.select("source, id, cluster_id::VARCHAR AS place_id").pl()
        ).write_parquet(out / f"membership-{threshold}.parquet")
        timings[str(threshold)] = time.perf_counter() - t
    (out / "clustering_seconds.json").write_text(json.dumps(timings))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    world_arguments(parser, places=35_000, sources=4, seed=2024)
    parser.add_argument(
        "--vendor-noise",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a noise or habit of every vendor source, as poiflow generate takes it "
        "(repeatable; e.g. rounded_points=0.3 mojibake=0.1)",
    )
    parser.add_argument("--splink-only", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.splink_only:
        splink_run(args.splink_only, args.splink_only / "splink")
        return

    from poiflow.conflate.evaluate import read_gold, score_membership
    from poiflow.generate import generate
    from poiflow.generate.noise import parse_noise

    noise = parse_noise(args.vendor_noise)
    folder = DATA / f"splink-{args.places}-{args.sources}-{args.seed}{habit_suffix(noise)}"
    if fresh_folder(folder):
        generate(args.places, args.sources, args.seed, folder, vendor_noise=noise)
    gold = read_gold(folder / "gold.csv")
    print(
        f"input: {gold.height:,} records of {args.places:,} places in {args.sources} sources "
        f"(seed {args.seed}){', vendors with ' + ', '.join(args.vendor_noise) if noise else ''}"
    )

    sources = sorted(str(p) for p in folder.glob("source_*.csv"))
    poiflow_runs = {}
    for label, model, out in (
        ("poiflow conflate (default model)", "default", folder / "poiflow"),
        ("poiflow conflate --model em", "em", folder / "poiflow-em"),
    ):
        command = [sys.executable, "-m", "poiflow", "conflate", *sources, "-o", str(out)]
        t = time.perf_counter()
        subprocess.run([*command, "--json", "--model", model], check=True, capture_output=True)
        seconds = time.perf_counter() - t
        membership = pl.read_parquet(out / "membership.parquet")
        run = json.loads((out / "run.json").read_text())
        poiflow_runs[label] = (seconds, score_membership(membership, gold), run)

    t = time.perf_counter()
    subprocess.run(
        [sys.executable, __file__, "--splink-only", str(folder)], check=True, capture_output=True
    )
    splink_total = time.perf_counter() - t
    t = time.perf_counter()
    floor = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("io_floor.py")), str(folder)],
        check=True,
        capture_output=True,
        text=True,
    )
    # Its reading of poiflow's pairs, before it starts its work, is not part of the floor.
    floor_s = time.perf_counter() - t - json.loads(floor.stdout)["reading_pairs_s"]
    sweep = json.loads((folder / "splink" / "clustering_seconds.json").read_text())
    # Splink's time for one run: everything but the extra clusterings of the sweep.
    splink_s = splink_total - sum(sweep.values()) + sweep["0.9"]
    scores = {
        th: score_membership(pl.read_parquet(folder / "splink" / f"membership-{th}.parquet"), gold)
        for th in THRESHOLDS
    }
    best = max(scores, key=lambda th: scores[th].f1)

    for label, (_, _, run) in poiflow_runs.items():
        print(f"{label} stages (s): {run['seconds']}")
    print(f"{'system':<34} {'wall s':>8} {'precision':>10} {'recall':>8} {'F1':>7} {'B3 F1':>7}")
    for label, (seconds, p, _) in poiflow_runs.items():
        print(
            f"{label:<34} {seconds:>8.1f} {p.precision:>10.4f} "
            f"{p.recall:>8.4f} {p.f1:>7.4f} {p.bcubed_f1:>7.4f}"
        )
    for th in THRESHOLDS:
        s = scores[th]
        mark = "  <- best" if th == best else ""
        print(
            f"{'splink @ ' + str(th):<34} {splink_s if th == best else float('nan'):>8.1f} "
            f"{s.precision:>10.4f} {s.recall:>8.4f} {s.f1:>7.4f} {s.bcubed_f1:>7.4f}{mark}"
        )
    print(f"{'files alone, no matching':<34} {floor_s:>8.1f}")
    for label, (seconds, _, _) in poiflow_runs.items():
        print(f"wall ratio {label} / splink: {seconds / splink_s:.2f}")
    print(
        f"wall ratio files alone / splink: {floor_s / splink_s:.2f} "
        f"(a fifth of Splink's time: {splink_s / 5:.1f} s)"
    )


if __name__ == "__main__":
    main()
