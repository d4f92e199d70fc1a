from __future__ import annotations

from pathlib import Path

import pytest

from poiflow.config import SourceMapping, SparkSettings, load_yaml
from poiflow.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mapping.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_mapping(tmp_path: Path) -> None:
    mapping = load_yaml(
        write(tmp_path, "source: acme\ncolumns:\n  id: vid\n  name: title\n"), SourceMapping
    )
    assert mapping.source == "acme"
    assert mapping.columns == {"id": "vid", "name": "title"}


def test_misspelt_key_names_line_and_suggests(tmp_path: Path) -> None:
    path = write(tmp_path, "source: acme\ncolums:\n  id: vid\n")
    with pytest.raises(ConfigError) as err:
        load_yaml(path, SourceMapping)
    assert str(err.value).startswith(
        f"{path}:2: colums: unknown key 'colums'. Did you mean 'columns'?"
    )


def test_nested_misspelt_key(tmp_path: Path) -> None:
    path = write(tmp_path, "csv:\n  delimiter: ';'\n  encodng: latin-1\n")
    with pytest.raises(
        ConfigError, match=r":3: csv.encodng: unknown key 'encodng'. Did you mean 'encoding'"
    ):
        load_yaml(path, SourceMapping)


def test_unknown_flat_field(tmp_path: Path) -> None:
    path = write(tmp_path, "columns:\n  id: a\n  zipcode: b\n")
    with pytest.raises(ConfigError, match=r":3: columns: unknown flat field 'zipcode'"):
        load_yaml(path, SourceMapping)


def test_a_feeds_category_codes_map_to_categories_of_the_taxonomy(tmp_path: Path) -> None:
    mapping = load_yaml(
        write(tmp_path, "categories:\n  5812: restaurant\n  Ravintola: restaurant\n"),
        SourceMapping,
    )
    assert mapping.categories == {"5812": "restaurant", "Ravintola": "restaurant"}
    path = write(tmp_path, "source: acme\ncategories:\n  5812: restuarant\n")
    with pytest.raises(ConfigError) as err:
        load_yaml(path, SourceMapping)
    assert str(err.value).startswith(
        f"{path}:3: categories: '5812' maps to 'restuarant', not a category of the "
        "taxonomy. Did you mean 'restaurant'?"
    )


def test_a_bad_source_of_a_pipeline_is_one_problem_not_two(tmp_path: Path) -> None:
    """The list of sources is too short only because its one source was refused: that
    follows, and is not said again."""
    from poiflow.config import PipelineSpec

    text = "name: p\nsources:\n  - path: a.csv\n    mapping:\n      columns: {zipcode: b}\n"
    with pytest.raises(ConfigError) as err:
        load_yaml(write(tmp_path, text), PipelineSpec)
    assert ":5: sources.0.mapping.columns: unknown flat field 'zipcode'" in str(err.value)
    assert "\n  and" not in str(err.value)
    with pytest.raises(ConfigError, match=r":2: sources: .*at least 1 item"):
        load_yaml(write(tmp_path, "name: p\nsources: []\n"), PipelineSpec)


def test_a_wrong_key_of_a_mapping_is_named_with_its_line(tmp_path: Path) -> None:
    from poiflow.config import MergeSettings

    path = write(tmp_path, "trust: {a: 2}\naccuracy:\n  colour: {a: 0.5}\n")
    with pytest.raises(ConfigError) as err:
        load_yaml(path, MergeSettings)
    assert str(err.value).startswith(
        f"{path}:3: accuracy.colour: not a key here: Input should be 'name', 'category'"
    )


def test_bad_yaml_and_bad_shape(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r":2: not valid YAML"):
        load_yaml(write(tmp_path, "a: [1,\nb: c: d\n"), SourceMapping)
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_yaml(write(tmp_path, "- 1\n- 2\n"), SourceMapping)
    with pytest.raises(ConfigError, match="cannot read"):
        load_yaml(tmp_path / "missing.yaml", SourceMapping)


def test_stage_settings_default_to_the_stages_own_defaults() -> None:
    """``conflate`` builds its plan from these settings without importing the stages'
    modules when none is given: their defaults must be the stages' own."""
    from dataclasses import asdict

    from poiflow.config import BlockSettings, MergeSettings
    from poiflow.conflate.keys import BlockingConfig
    from poiflow.conflate.merge import MergeConfig

    assert BlockSettings() == BlockSettings(**asdict(BlockingConfig()))
    # Every merge setting but the words of names, which each run counts for itself.
    merging = {k: v for k, v in asdict(MergeConfig()).items() if k != "name_words"}
    assert MergeSettings() == MergeSettings(**merging)
    assert set(MergeSettings.model_fields) == set(merging)


def test_a_sources_coverage_said_out_of_range_is_named_with_its_line(tmp_path: Path) -> None:
    from poiflow.config import MergeSettings

    path = write(tmp_path, "whole: {osm: 0.8}\nsplit:\n  osm: 1.5\n")
    with pytest.raises(ConfigError, match=r":3: split.osm: .*less than 1"):
        load_yaml(path, MergeSettings)
    said = load_yaml(write(tmp_path, "whole: {osm: 0.8}\nsplit: {osm: 0.05}\n"), MergeSettings)
    assert (said.whole, said.split) == ({"osm": 0.8}, {"osm": 0.05})


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("trust: {osm: -1}", "greater than 0"),  # would turn the source's votes against it
        ("trust: {osm: 0}", "greater than 0"),
        ("trust: {osm: .nan}", "finite number"),
        ("recency_weight: .inf", "finite number"),
        ("precision_m: {osm: .inf}", "finite number"),
    ],
)
def test_a_weight_that_is_no_positive_number_is_refused_with_its_line(
    tmp_path: Path, text: str, said: str
) -> None:
    from poiflow.config import MergeSettings

    path = write(tmp_path, f"# the vendor's votes\n{text}\n")
    with pytest.raises(ConfigError, match=f":2: .*{said}"):
        load_yaml(path, MergeSettings)


def test_every_problem_is_named_with_its_line(tmp_path: Path) -> None:
    from poiflow.config import PipelineSpec

    path = write(
        tmp_path,
        "sources: [a.csv]\nstages:\n  score: {modle: em}\n  cluster: {threshold: 2}\n",
    )
    with pytest.raises(ConfigError) as err:
        load_yaml(path, PipelineSpec)
    lines = str(err.value).splitlines()
    assert lines[0] == f"{path}:1: name: Field required"
    assert lines[1] == (
        f"  and {path}:3: stages.score.modle: unknown key 'modle'. Did you mean 'model'? "
        "Known keys: model"
    )
    assert lines[2].startswith(f"  and {path}:4: stages.cluster.threshold: ")
    assert len(lines) == 3


def test_a_source_may_be_its_path_alone(tmp_path: Path) -> None:
    from poiflow.config import PipelineSpec

    short = load_yaml(write(tmp_path, "name: x\nsources: [a.csv, {path: b.csv}]\n"), PipelineSpec)
    long = load_yaml(
        write(tmp_path, "name: x\nsources: [{path: a.csv}, {path: b.csv}]\n"), PipelineSpec
    )
    assert short == long
    assert [s.path for s in short.sources] == ["a.csv", "b.csv"]
    with pytest.raises(ConfigError, match=r":2: sources.0.path: String should have at least 1"):
        load_yaml(write(tmp_path, "name: x\nsources: ['']\n"), PipelineSpec)


def test_a_value_of_the_wrong_shape_is_told_what_shape_it_should_have(tmp_path: Path) -> None:
    from poiflow.config import PipelineSpec

    text = "name: my pipeline\nsources: [a.csv]\nresources: {cpu: lots, memory: 8GB}\n"
    with pytest.raises(ConfigError) as err:
        load_yaml(write(tmp_path, text), PipelineSpec)
    said = str(err.value)
    assert ":1: name: 'my pipeline': expected a name of letters, digits" in said
    assert ":3: resources.cpu: 'lots': expected CPU cores ('2', '500m')" in said
    assert ":3: resources.memory: '8GB': expected memory as Kubernetes writes it" in said
    assert "^[0-9]" not in said  # words, not the regular expression


def test_the_spark_driver_takes_results_of_three_quarters_of_its_memory() -> None:
    # Scoring brings every scored pair to the driver: past Spark's 1 GiB default at a
    # million records. The cap follows the driver's memory, whatever its unit; a
    # pipeline's own spark.conf still wins.
    def cap(**settings: object) -> str:
        return SparkSettings(**settings).spark_conf()["spark.driver.maxResultSize"]

    assert cap() == "3072m"  # 4g
    assert cap(driver_memory="8g") == "6144m"
    assert cap(driver_memory="512m") == "384m"
    assert cap(driver_memory="2048") == "1536m"  # MiB, as Spark reads a bare number
    assert cap(driver_memory="1t") == f"{1024 * 1024 * 3 // 4}m"
    assert cap(conf={"spark.driver.maxResultSize": "0"}) == "0"


def test_a_mappings_crs_given_as_a_bare_code_is_epsgs(tmp_path: Path) -> None:
    # YAML reads "crs: 3067" as a number: the code of EPSG's Finland's system.
    said = load_yaml(write(tmp_path, "columns: {lat: y, lon: x}\ncrs: 3067\n"), SourceMapping)
    assert said.crs == "EPSG:3067"
    with pytest.raises(ConfigError, match=r":2: crs: Input should be a valid string"):
        load_yaml(write(tmp_path, "columns: {lat: y, lon: x}\ncrs: true\n"), SourceMapping)


def test_a_mapping_that_reads_lat_and_lon_from_one_column_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "columns: {id: ID, lat: Y, lon: Y}\n")
    with pytest.raises(ConfigError, match=r":1: columns: .*lat and lon both read the column 'Y'"):
        load_yaml(path, SourceMapping)
    # A constant point may have its two numbers alike.
    said = load_yaml(write(tmp_path, "constants: {lat: '60', lon: '60'}\n"), SourceMapping)
    assert (said.constants["lat"], said.constants["lon"]) == ("60", "60")


def test_a_pipeline_made_in_code_is_told_its_problems_as_a_files_are(tmp_path: Path) -> None:
    from poiflow import Pipeline

    pipeline = Pipeline.from_dict({"name": "x", "sources": ["a.csv"]}, base=tmp_path)
    # A key with dots names a setting inside: the same pipeline as the nested mapping.
    dotted = pipeline.replace({"stages.cluster.threshold": 0.6, "stages.merge.trust.a": 2.0})
    nested = pipeline.replace(
        {"stages": {"cluster": {"threshold": 0.6}, "merge": {"trust": {"a": 2.0}}}}
    )
    assert dotted.spec == nested.spec
    assert dotted.spec.stages.cluster.threshold == 0.6
    assert dotted.spec.stages.merge.trust == {"a": 2.0}
    # A misspelt key: the same "did you mean" and the keys there are as in a file.
    with pytest.raises(ConfigError) as err:
        pipeline.replace({"stages.clusterr.threshold": 0.6})
    assert str(err.value) == (
        "stages.clusterr: unknown key 'clusterr'. Did you mean 'cluster'? "
        "Known keys: ingest, block, score, cluster, merge"
    )
    # Every problem at once, each by its key.
    with pytest.raises(ConfigError) as err:
        Pipeline.from_dict({"sources": ["a.csv"], "stages": {"cluster": {"threshold": 2}}})
    assert str(err.value) == (
        "name: Field required; stages.cluster.threshold: Input should be less than or equal to 1"
    )
    with pytest.raises(ConfigError, match="expected a mapping of keys to values, found list"):
        Pipeline.from_dict(["a.csv"])  # type: ignore[arg-type]
