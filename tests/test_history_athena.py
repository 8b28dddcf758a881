"""Athena tables over a store on S3 (moto's server on 127.0.0.1): the DDL's columns and types
against the Parquet files the store writes, partition projection over what the store holds,
and the README's trend query, run in DuckDB over the same files, equal to trend()."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from history_data import history_fleets, wire_history

from patchframe import Fleet
from patchframe.exceptions import ValidationError
from patchframe.history import athena_ddl, list_snapshots, save_snapshot, trend
from patchframe.history._trend import TREND_METRICS

README = Path(__file__).parents[1] / "README.md"
#: The Athena type of each Arrow type the store's files hold, as AWS's Parquet reader sees it.
ATHENA_TYPES = {
    "string": "string",
    "large_string": "string",
    "bool": "boolean",
    "int64": "bigint",
    "double": "double",
    "timestamp[ns, tz=UTC]": "timestamp",
    "duration[ns]": "bigint",
}


def parsed(statement: str) -> dict[str, object]:
    """A CREATE EXTERNAL TABLE statement's parts: columns, partitions, location, properties."""
    head, rest = statement.split("\n)\nPARTITIONED BY (", 1)
    columns = re.findall(r"^  `(\w+)` (\w+),?$", head, flags=re.MULTILINE)
    partitions = re.findall(r"`(\w+)` (\w+)", rest.split(")", 1)[0])
    location = re.search(r"^LOCATION '([^']+)'$", statement, flags=re.MULTILINE)
    properties = dict(re.findall(r"^  '([^']+)' = '([^']*)',?$", statement, flags=re.MULTILINE))
    assert location is not None
    return {
        "table": re.match(r"CREATE EXTERNAL TABLE `(\w+)`\.`(\w+)` \(", statement).groups(),  # type: ignore[union-attr]
        "columns": columns,
        "partitions": partitions,
        "location": location.group(1),
        "properties": properties,
        "stored": "\nSTORED AS PARQUET\n" in statement,
    }


def athena_type(arrow: object) -> str:
    text = str(arrow)
    if text.startswith("dictionary<values=string"):
        return "string"
    return ATHENA_TYPES[text]


@pytest.fixture
def s3_history(s3_bucket: str) -> str:
    """The synthetic history, six weekly snapshots, in a store on S3."""
    store = f"{s3_bucket}/history"
    for (when, _), fleet in zip(wire_history(), history_fleets(), strict=True):
        save_snapshot(fleet, store, when=when)
    return store


def test_the_tables_columns_and_types_are_those_of_the_files(s3_history: str) -> None:
    ddl = athena_ddl(s3_history, database="patch_history")
    assert list(ddl) == ["patches", "nodes", "errors"]
    fs, root = pafs.FileSystem.from_uri(s3_history)
    snapshot = list_snapshots(s3_history)["snapshot"].iloc[-1]
    account, region = history_fleets()[-1].nodes[["account_id", "region"]].iloc[0]
    for name in ("patches", "nodes"):
        part = f"{root}/{name}/snapshot={snapshot}/account_id={account}/region={region}"
        schema = pq.read_schema(f"{part}/part-0.parquet", filesystem=fs)
        table = parsed(ddl[name])
        assert table["table"] == ("patch_history", name)
        assert table["columns"] == [(f.name, athena_type(f.type)) for f in schema]
        assert table["partitions"] == [
            ("snapshot", "string"),
            ("account_id", "string"),
            ("region", "string"),
        ]
        assert table["stored"] and table["location"] == f"{s3_history}/{name}/"
    assert parsed(ddl["errors"])["columns"] == [
        ("instance_id", "string"),
        ("operation", "string"),
        ("error_code", "string"),
        ("message", "string"),
        ("attempts", "bigint"),
    ]


def test_partitions_are_projected_over_what_the_store_holds(s3_history: str) -> None:
    properties = parsed(athena_ddl(s3_history)["patches"])["properties"]
    snapshots = list_snapshots(s3_history)["snapshot"].tolist()
    account, region = history_fleets()[-1].nodes[["account_id", "region"]].iloc[0]
    assert properties == {
        "projection.enabled": "true",
        "projection.snapshot.type": "enum",
        "projection.snapshot.values": ",".join(snapshots),
        "projection.account_id.type": "enum",
        "projection.account_id.values": account,
        "projection.region.type": "enum",
        "projection.region.values": region,
        "storage.location.template": f"{s3_history}/patches/"
        "snapshot=${snapshot}/account_id=${account_id}/region=${region}/",
    }


def test_an_unfinished_snapshot_is_not_projected(
    sample_fleet_frames: Fleet, s3_bucket: str
) -> None:
    store = f"{s3_bucket}/store"
    save_snapshot(sample_fleet_frames, store, when="2024-06-14")
    fs, root = pafs.FileSystem.from_uri(store)
    fs.delete_file(f"{root}/patches/snapshot=20240614T000000.000000Z/_snapshot.json")
    save_snapshot(sample_fleet_frames, store, when="2024-06-21")
    values = parsed(athena_ddl(store)["nodes"])["properties"]["projection.snapshot.values"]  # type: ignore[index]
    assert values == "20240621T000000.000000Z"


def readme_trend_query() -> str:
    blocks = re.findall(r"```sql\n(.*?)```", README.read_text(), flags=re.DOTALL)
    (query,) = [b for b in blocks if b.startswith("-- trend")]
    return query


def test_the_readme_trend_query_equals_trend_on_the_same_files(
    s3_history: str, tmp_path: Path
) -> None:
    fs, root = pafs.FileSystem.from_uri(s3_history)
    local = tmp_path / "store"
    pafs.copy_files(root, str(local), source_filesystem=fs)  # the very files on S3
    db = duckdb.connect()
    db.execute("CREATE SCHEMA patchframe")
    for name in ("patches", "nodes"):
        # What Athena's tables show: the files' columns and the three partition columns, text.
        db.execute(
            f"CREATE VIEW patchframe.{name} AS SELECT * FROM read_parquet("
            f"'{local}/{name}/*/*/*/*.parquet', hive_partitioning = true, "
            "hive_types_autocast = false)"
        )
    by_sql = db.execute(readme_trend_query()).df()
    figures = trend(s3_history)
    fleet = figures[figures["scope"] == "fleet"].reset_index(drop=True)
    expected = fleet[["snapshot", *TREND_METRICS]]
    pd.testing.assert_frame_equal(by_sql, expected, check_dtype=False)
    assert (by_sql["missing"] > 0).all() and (by_sql["open_cves"] > 0).all()


def test_bad_arguments_and_an_empty_store_are_refused(s3_bucket: str, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="Athena reads S3 only"):
        athena_ddl(str(tmp_path))
    with pytest.raises(ValidationError, match="database"):
        athena_ddl(f"{s3_bucket}/store", database="Patch-Frame")
    with pytest.raises(ValidationError, match="no snapshot yet"):
        athena_ddl(f"{s3_bucket}/store")
