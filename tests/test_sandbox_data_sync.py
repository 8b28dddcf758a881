"""The sandbox writes fleets as Resource Data Sync lays them out: one folder per inventory
type, partitioned by account, region and resource type, one JSON-lines file per node, every
value a string, times to the second; to a folder and to S3 (moto's server on 127.0.0.1)."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pytest

from patchframe.exceptions import ValidationError
from patchframe.sandbox.data_sync import write_resource_data_sync
from patchframe.sandbox.sample import WireFleet, synthetic_fleet

PLACE = "accountid=123456789012/region=eu-west-1/resourcetype=ManagedInstanceInventory"
SECOND = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def records(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_sample_is_laid_out_as_a_sync(wire_fleet: WireFleet, tmp_path: Path) -> None:
    captured = dt.datetime(2024, 6, 14, 8, tzinfo=dt.UTC)
    written = write_resource_data_sync(tmp_path, captured=captured)
    nodes = wire_fleet.instance_ids
    scanned = [s["InstanceId"] for s in wire_fleet.patch_states]
    with_rows = [n for n in nodes if wire_fleet.patches.get(n)]
    tagged = [n for n in nodes if wire_fleet.tags.get(n)]
    expected = {
        "AWS:InstanceInformation": nodes,
        "AWS:PatchSummary": scanned,
        "AWS:ComplianceItem": with_rows,
        "AWS:Tag": tagged,
    }
    for type_name, ids in expected.items():
        files = sorted(p.name for p in (tmp_path / type_name / PLACE).iterdir())
        assert files == sorted(f"{n}.json" for n in ids), type_name
    assert written == sum(len(ids) for ids in expected.values())

    for path in tmp_path.rglob("*.json"):
        for record in records(path):
            assert all(isinstance(v, str) for v in record.values()), path
            assert record["resourceId"] == path.stem
            assert record["captureTime"] == "2024-06-14T08:00:00Z"


def test_compliance_items_carry_each_patch_row(wire_fleet: WireFleet, tmp_path: Path) -> None:
    write_resource_data_sync(tmp_path)
    node = next(n for n in wire_fleet.instance_ids if wire_fleet.patches.get(n))
    items = records(tmp_path / "AWS:ComplianceItem" / PLACE / f"{node}.json")
    rows = wire_fleet.patches[node]
    assert [i["Id"] for i in items] == [r["KBId"] for r in rows]
    assert [i["PatchState"] for i in items] == [r["State"] for r in rows]
    assert [i["PatchSeverity"] for i in items] == [r["Severity"] for r in rows]
    assert {i["ComplianceType"] for i in items} == {"Patch"}
    for item, row in zip(items, rows, strict=True):
        assert item["InstalledTime"] == "" or SECOND.fullmatch(item["InstalledTime"])
        if row["InstalledTime"] not in (0, -62135596800):
            stamp = dt.datetime.fromtimestamp(int(row["InstalledTime"]), dt.UTC)
            assert item["InstalledTime"] == stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
        else:
            assert item["InstalledTime"] == ""  # "never" is no time at all
        assert "CVEIds" not in item  # a sync does not carry CVE ids


def test_patch_summaries_carry_the_counts(wire_fleet: WireFleet, tmp_path: Path) -> None:
    write_resource_data_sync(tmp_path)
    state = wire_fleet.patch_states[0]
    (summary,) = records(tmp_path / "AWS:PatchSummary" / PLACE / f"{state['InstanceId']}.json")
    assert summary["MissingCount"] == str(state["MissingCount"])
    assert summary["CriticalNonCompliantCount"] == str(state["CriticalNonCompliantCount"])
    assert summary["BaselineId"] == state["BaselineId"]
    assert summary["OperationType"] == state["Operation"]
    assert SECOND.fullmatch(summary["OperationEndTime"])


def test_several_fleets_go_to_their_own_partitions(tmp_path: Path) -> None:
    fleets = [
        synthetic_fleet(3, patches_per_node=5, account_id=account, region=region)
        for account, region in [("111111111111", "eu-west-1"), ("222222222222", "us-east-2")]
    ]
    write_resource_data_sync(tmp_path, fleets)
    files = tmp_path.glob("AWS:InstanceInformation/*/*/*/*.json")
    places = {f"{p.parents[2].name}/{p.parents[1].name}" for p in files}
    assert places == {
        "accountid=111111111111/region=eu-west-1",
        "accountid=222222222222/region=us-east-2",
    }


def test_a_sync_is_written_to_s3(s3_bucket: str) -> None:
    written = write_resource_data_sync(f"{s3_bucket}/sync")
    where = urlsplit(s3_bucket)
    listed = boto3.client("s3").list_objects_v2(Bucket=where.netloc, Prefix="sync/AWS:")
    keys = [item["Key"] for item in listed["Contents"]]
    assert len(keys) == written
    assert f"sync/AWS:InstanceInformation/{PLACE}/i-0e1f2a3b4c5d6e7f8.json" in keys


def test_bad_fleets_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="expected a WireFleet"):
        write_resource_data_sync(tmp_path, ["not a fleet"])  # type: ignore[list-item]
    with pytest.raises(ValidationError, match="expected a WireFleet"):
        write_resource_data_sync(tmp_path, [])
