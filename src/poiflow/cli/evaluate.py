"""The commands around known truth: ``poiflow evaluate`` scores a conflation against it,
``poiflow generate`` writes a world of many sources with its truth, and ``poiflow train``
fits a matcher from labelled pairs (a generated world's, or a review's)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from poiflow.cli import _stages, app, console, out, print_json, print_weights
from poiflow.errors import InputError, did_you_mean


@app.command(name="evaluate", no_args_is_help=True)
def evaluate_command(
    gold: Annotated[Path, typer.Option(help="CSV of source,id,place: the truth.", metavar="CSV")],
    membership: Annotated[
        Path,
        typer.Option(
            help="membership.parquet from 'poiflow conflate', or the run's folder.",
            metavar="PATH",
        ),
    ],
    pairs: Annotated[
        Path | None,
        typer.Option(
            help="The scored pairs (default: pairs.parquet beside the membership).",
            metavar="FILE",
        ),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="The run's clustering threshold (default: from run.json beside the membership).",
            metavar="P",
        ),
    ] = None,
    examples: Annotated[
        int,
        typer.Option(
            min=0, help="How many of the surest mistakes of each kind to show.", metavar="N"
        ),
    ] = 3,
    errors: Annotated[
        Path | None,
        typer.Option(
            help="Write every missed and wrong pair here (Parquet, or .csv).", metavar="FILE"
        ),
    ] = None,
    sweep: Annotated[
        bool,
        typer.Option(
            "--sweep",
            help="Cluster the run's scored pairs again at other thresholds, and score each.",
        ),
    ] = False,
    drivers: Annotated[
        bool,
        typer.Option(
            "--drivers",
            help="Show what moved the scores of the matcher's mistakes, feature by feature.",
        ),
    ] = False,
    gold_places: Annotated[
        Path | None,
        typer.Option(
            help="The true places (gold_places.csv of 'poiflow generate'): also score the "
            "golden records' attributes (places.parquet beside the membership).",
            metavar="CSV",
        ),
    ] = None,
    json_report: Annotated[bool, typer.Option("--json", help="Print the scores as JSON.")] = False,
) -> None:
    """Score a conflation against the truth: pairwise precision, recall, F1 and B-cubed,
    where the errors came from, and with --gold-places how right the golden records are.

    Beside an output folder of [bold]poiflow conflate[/bold] (its pairs.parquet and
    run.json), every pair of records the truth puts together and the run did not
    ([bold]missed[/bold]), and every pair the run put together wrongly ([bold]wrong[/bold]),
    is traced to the stage that lost it: [bold]blocking[/bold] (never a candidate pair),
    [bold]matcher[/bold] (scored on the wrong side of the threshold) or
    [bold]clustering[/bold] (scored right, grouped wrong); or, where the run followed a
    person's decision about the pair (--decisions), [bold]decision[/bold] (shown only if
    any). Then the scores per pair of
    sources, and the surest mistakes of each kind with their names; --errors writes them
    all, with the features behind each score, for a notebook. --sweep clusters the run's
    scored pairs again at other thresholds and scores each: which threshold suits this
    data, with clustering's rules in play. --drivers takes the score of every pair the
    matcher got wrong apart (as poiflow explain does one pair) and shows, for each kind of
    mistake, each feature's mean part of the scores in bits and what the pairs showed there
    most often: what pushed wrong pairs over the threshold, what held true pairs under
    it. --gold-places holds each golden place to the
    true place most of its records describe, attribute by attribute (name, category,
    location, address, phone, website, brand), beside the simplest merge (each place's
    first record taken whole), and shows whether an attribute's confidence says how often
    it is right.

    [bold]Example[/bold]

      poiflow generate --places 5000 --sources 3 --seed 1 --output out/gen
      poiflow conflate out/gen/source_*.csv -o out/run
      poiflow evaluate --gold out/gen/gold.csv --membership out/run/membership.parquet
      poiflow evaluate --gold out/gen/gold.csv --membership out/run/membership.parquet \\
          --errors out/errors.parquet --examples 10
      poiflow evaluate --gold out/gen/gold.csv --membership out/run/membership.parquet \\
          --gold-places out/gen/gold_places.csv
    """
    from poiflow.cli.evaluation import (
        draw_accuracy,
        draw_diagnosis,
        draw_sweep,
        score_drivers,
        write_errors,
    )
    from poiflow.pipeline.evaluation import evaluate

    if membership.is_dir():  # the run's folder
        membership = membership / "membership.parquet"
    scored = evaluate(
        gold,
        membership,
        pairs=pairs,
        threshold=threshold,
        sweep=sweep,
        gold_places=gold_places,
        features=bool(errors) or drivers,
    )
    found, scores, accuracy = scored.diagnosis, scored.scores, scored.golden
    if found is None and (errors is not None or drivers):
        raise InputError(
            "no scored pairs to trace the errors with: --pairs names the pairs.parquet of the run",
            path=membership.parent / "pairs.parquet",
        )
    if found is not None and errors is not None:
        write_errors(found, errors)
    moved = None
    if found is not None and drivers:
        moved = scored.drivers()
    if json_report:
        report = scored.as_dict()
        if moved is not None:
            report["drivers"] = moved.to_dicts()
        print_json(report)
        return
    table = Table(
        "measure",
        "precision",
        "recall",
        "F1",
        show_edge=False,
        title="Matching quality",
        title_justify="left",
    )
    table.add_row("pairwise", f"{scores.precision:.4f}", f"{scores.recall:.4f}", f"{scores.f1:.4f}")
    table.add_row(
        "B-cubed",
        f"{scores.bcubed_precision:.4f}",
        f"{scores.bcubed_recall:.4f}",
        f"{scores.bcubed_f1:.4f}",
    )
    out.print(table)
    out.print(
        f"{scores.records:,} records scored; {scores.correct_pairs:,} of "
        f"{scores.predicted_pairs:,} predicted pairs correct, {scores.true_pairs:,} true "
        f"pairs; {scores.unmatched_records:,} gold records not in the membership"
    )
    if found is None:
        out.print(
            "[dim]no pairs.parquet beside the membership: give --pairs to see where the "
            "errors came from[/dim]"
        )
    else:
        out.print()
        explained = score_drivers(membership.parent, pairs) if examples > 0 else None
        draw_diagnosis(out, found, scored.said, examples, explained)
        if scored.sweep is not None:
            draw_sweep(out, scored.sweep, found.threshold)
        if moved is not None:
            from poiflow.cli.evaluation import draw_drivers

            draw_drivers(out, moved)
        if errors is not None:
            out.print(f"every error pair: {errors}")
    if accuracy is not None:
        out.print()
        draw_accuracy(out, accuracy)


@app.command(name="generate", no_args_is_help=True)
def generate_command(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The folder to write.", metavar="DIR")
    ],
    places: Annotated[
        int, typer.Option(min=1, help="Real places in the world.", metavar="N")
    ] = 10_000,
    sources: Annotated[
        int, typer.Option(min=1, max=26, help="Sources describing them.", metavar="N")
    ] = 4,
    seed: Annotated[int, typer.Option(help="Everything follows from it.", metavar="N")] = 0,
    file_format: Annotated[
        str, typer.Option("--format", help="csv or parquet.", metavar="FORMAT")
    ] = "csv",
    no_coordinates: Annotated[
        bool, typer.Option(help="Vendor sources without coordinates (address-only feeds).")
    ] = False,
    vendor_noise: Annotated[
        list[str] | None,
        typer.Option(
            "--vendor-noise",
            help="NAME=VALUE: set a noise of every vendor source (repeatable), e.g. "
            "jitter_m=250 (geocoded to the street), translate=0.5, typo=0.3; or a habit of "
            "real feeds, the share of records with it: rounded_points, town_centre, "
            "null_island, mojibake, web_escaped, html_tags, listing_title, "
            "bilingual_name, closed_in_name, former_name, contact_in_name, numeric_postcode, "
            "house_number_forms, phone_note, store_number, degrees_minutes.",
            metavar="NAME=VALUE",
        ),
    ] = None,
    names: Annotated[
        Path | None,
        typer.Option(
            help="CSV of places to draw names from (name, category; also street, brand, "
            "domain, opening_hours) instead of the bundled Helsinki extract.",
            metavar="CSV",
        ),
    ] = None,
) -> None:
    """Generate multi-source POI data with known truth, for benchmarks and training.

    Real names, categories and streets (from the bundled OpenStreetMap extract) over many
    synthetic cities, with chains, look-alike neighbours and shared buildings; each source
    with its own noise: coordinate jitter and geocoding errors, name variants (case,
    accents, translations, typos, abbreviations, legal forms, branch names), phone and
    website formats, missing fields, conflicting values, duplicates. Writes one flat file
    per source, gold.csv (source,id,place: which place each record describes),
    gold_places.csv (each place as it truly is: what poiflow evaluate --gold-places holds
    the golden records to) and manifest.json. Same arguments, same bytes. Made again into
    the same folder, a world replaces the one there whole (a source the new one lacks is
    removed, so source_*.csv names its sources only); other files stay.

    [bold]Example[/bold]

      poiflow generate --places 20000 --sources 4 --seed 7 --output out/gen

    A feed noisier than any the shipped model was trained on (to try poiflow label on):

      poiflow generate --places 15000 --sources 3 --vendor-noise jitter_m=250 -o out/coarse

    Feeds with a habit of real ones (every point to 2 decimals); the records and truth
    are those of the world without it:

      poiflow generate --places 5000 --vendor-noise rounded_points=1 -o out/rounded

    A world named like your own region (a name given twice is a chain):

      poiflow generate --places 5000 --names my-names.csv -o out/mine
    """
    from poiflow.generate import generate, read_seed
    from poiflow.generate.noise import parse_noise

    if file_format not in ("csv", "parquet"):
        hint = did_you_mean(file_format, ("csv", "parquet"))
        raise InputError(f"unknown format '{file_format}'.{hint} Use csv or parquet")
    try:
        noise = parse_noise(vendor_noise or [])
    except ValueError as exc:
        raise InputError(f"--vendor-noise {exc}") from exc
    seed_places = None if names is None else read_seed(names)
    with console.status(f"generating {places:,} places described by {sources} sources"):
        made = generate(
            places,
            sources,
            seed,
            output,
            file_format=file_format,  # type: ignore[arg-type]
            drop_coordinates=no_coordinates,
            vendor_noise=noise,
            seed_places=seed_places,
        )
    console.print(
        f"{made.records:,} records of {made.places:,} places in {len(made.sources)} "
        f"sources: {output}/ (gold.csv, gold_places.csv, manifest.json)"
    )
    console.print(
        f"next: poiflow conflate {output}/source_*.{file_format} -o out/run --gold "
        f"{output}/gold.csv (matched, merged and scored against the truth)",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


@app.command(name="train", no_args_is_help=True)
def train_command(
    inputs: Annotated[
        list[Path],
        typer.Argument(
            help="Input files whose records are labelled.", metavar="INPUT", show_default=False
        ),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The model file to write.", metavar="FILE")
    ],
    gold: Annotated[
        Path | None,
        typer.Option(
            help="CSV of source,id,place for those records (a supervised model).", metavar="CSV"
        ),
    ] = None,
    unsupervised: Annotated[
        bool,
        typer.Option("--unsupervised", help="No labels: fit a Fellegi-Sunter model by EM instead."),
    ] = False,
    answers: Annotated[
        Path | None,
        typer.Option(
            "--labels",
            help="Answers from 'poiflow label': refine --base with them.",
            metavar="CSV",
        ),
    ] = None,
    base: Annotated[
        str,
        typer.Option(
            help="With --labels: the model to refine ('default' or a file).", metavar="MODEL"
        ),
    ] = "default",
    seed: Annotated[int, typer.Option(help="Fixes the split and the boosting.", metavar="N")] = 0,
) -> None:
    """Train a matcher and write it as a model file.

    The records are ingested, blocked and featured as in [bold]poiflow conflate[/bold].

    With [bold]--gold[/bold], a gradient-boosted model (LightGBM) learns from labels: every
    candidate pair whose two records share a place in GOLD is a match. A fifth of the
    pairs is held out to calibrate the probabilities and to report precision, recall, F1.

    With [bold]--labels[/bold] (the answers [bold]poiflow label[/bold] stored, or any CSV of
    left_source, left_id, right_source, right_id, label such as a decisions file), the model
    --base is refined: a few small trees more, fitted to the answered pairs. A third of the
    answers is held out first to print the gain over --base; the model written is then
    refined on all of them. INPUT may be the run's records.parquet.

    With [bold]--unsupervised[/bold], no labels are needed: a Fellegi-Sunter model is
    fitted by EM on the candidate pairs, and its match weights are printed: how much each
    level of each comparison (name, where, phone, website, address, category, brand,
    source) counts for or against a match, in bits.

    [bold]Examples[/bold]

      poiflow generate --places 20000 --sources 4 --seed 3 --output out/train
      poiflow train out/train/source_*.csv --gold out/train/gold.csv -o out/model.json.gz
      poiflow conflate my/*.csv -o out/run --model out/model.json.gz

      poiflow train my/*.csv --unsupervised -o out/em.json.gz
    """
    from poiflow.pipeline.training import TRAIN_STAGES, train

    with _stages("train", TRAIN_STAGES, hidden=False) as stages:
        trained = train(
            inputs,
            output,
            gold=gold,
            labels=answers,
            unsupervised=unsupervised,
            base=base,
            seed=seed,
            progress=stages.reading,
            on_stage=stages,
        )
    if trained.kind == "refined":
        from poiflow.cli.label import print_refined

        print_refined(trained)
    elif trained.kind == "fellegi-sunter":
        info = trained.info
        print_weights(info, info["prior"], info["match_weights"])
        console.print(f"model: [bold]{output}[/bold]")
    else:
        held = trained.holdout
        console.print(
            f"trained on {trained.pairs:,} pairs ({trained.matches:,} matches); held out: "
            f"precision {held['precision']:.4f}, recall {held['recall']:.4f}, "
            f"F1 {held['f1']:.4f}"
        )
        console.print(f"model: [bold]{output}[/bold]")
    console.print(
        f"next: poiflow conflate INPUT... -o out/run --model {output} (or stages: {{score: "
        f"{{model: {output}}}}} in a pipeline)",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
