"""Resource Data Sync as a source: the sync the sandbox writes, read back, equals load_fleet
over the emulator column by column, for one place and for several accounts and regions, from
a folder and from S3 (moto's server on 127.0.0.1); what the sync lacks is NA."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import patchframe as pf
from patchframe import Fleet
from patchframe.exceptions import ValidationError
from patchframe.sandbox.data_sync import write_resource_data_sync
from patchframe.sandbox.emulator import Emulator
from patchframe.sandbox.sample import WireFleet, synthetic_fleet

#: Columns load_fleet has and a sync does not carry: NA after reading a sync.
LACKING = {"patches": {"cve_ids"}, "nodes": {"name", "ping_status", "last_ping_time"}}
#: Worked out from a column the sync lacks (ping status): True for every node, unknown.
UNKNOWN = {"nodes": {"reachable"}, "patches": set()}
#: Times a sync keeps to the second.
TIMES = {"installed_time", "operation_end_time"}
NODE_KEY = ["account_id", "region", "instance_id"]
CLOCK = "2024-06-14T08:00Z"


def comparable(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Rows in one order, each column's values as plain objects, times to the second."""
    # By value: sorting a categorical goes by its categories' order, which may differ.
    out = frame.sort_values(by, kind="stable", ignore_index=True, key=lambda c: c.astype(str))
    for column in out.columns:
        if column in TIMES:
            out[column] = out[column].dt.floor("s")
    if "scan_age" in out.columns:  # to a clock of whole seconds from an end to the second
        out["scan_age"] = out["scan_age"].dt.ceil("s")
    return out


def assert_equal_where_carried(read: Fleet, loaded: Fleet) -> list[str]:
    """Every column of ``read`` equals ``loaded``'s, but those the sync lacks, all NA.

    Returns the columns checked equal, as ``frame.column``.
    """
    read, loaded = read.as_of(CLOCK), loaded.as_of(CLOCK)
    checked = []
    for name, by in (("patches", [*NODE_KEY, "kb_id"]), ("nodes", NODE_KEY)):
        ours, theirs = getattr(read, name), getattr(loaded, name)
        assert list(ours.columns) == list(theirs.columns)
        assert ours.dtypes.astype(str).tolist() == theirs.dtypes.astype(str).tolist()
        ours, theirs = comparable(ours, by), comparable(theirs, by)
        for column in ours.columns:
            if column in LACKING[name]:
                assert ours[column].isna().all(), column
                continue
            if column in UNKNOWN[name]:
                assert ours[column].all(), column
                continue
            pd.testing.assert_series_equal(
                ours[column], theirs[column], check_categorical=False, obj=f"{name}.{column}"
            )
            checked.append(f"{name}.{column}")
    tags = ["account_id", "region", "instance_id", "key"]
    pd.testing.assert_frame_equal(
        comparable(read.tags, tags), comparable(loaded.tags, tags), check_categorical=False
    )
    assert read.errors.empty and list(read.errors.columns) == list(loaded.errors.columns)
    return checked


def loaded_from(wires: list[WireFleet]) -> Fleet:
    """load_fleet over an emulator per fleet, the fleets' frames stacked."""
    fleets = []
    for wire in wires:
        with Emulator(wire) as emulator:
            fleets.append(pf.load_fleet(client=emulator.client(), progress=False))
    # concat_patches unions categories, where pandas.concat would fall back to text.
    return Fleet(
        patches=pf.concat_patches([f.patches for f in fleets]),
        nodes=pf.concat_patches([f.nodes for f in fleets]),
        errors=pd.concat([f.errors for f in fleets], ignore_index=True),
        tags=pf.concat_patches([f.tags for f in fleets]),
        loaded_at=fleets[0].loaded_at,
    )


def test_the_sample_read_from_a_sync_equals_load_fleet_column_by_column(
    sample_fleet_frames: Fleet, tmp_path: Path
) -> None:
    write_resource_data_sync(tmp_path)
    read = pf.read_resource_data_sync(tmp_path)
    checked = assert_equal_where_carried(read, sample_fleet_frames)
    assert {"patches.state", "patches.severity_level", "patches.installed_time"} <= set(checked)
    assert {"nodes.compliance", "nodes.missing", "nodes.scan_age", "nodes.ip_address"} <= set(
        checked
    )
    assert read.patches["installed_time"].isna().sum() > 0  # the sentinels, as NaT


def test_several_accounts_and_regions_take_their_place_from_the_folders(tmp_path: Path) -> None:
    wires = [
        synthetic_fleet(6, patches_per_node=40, account_id=account, region=region, seed=3)
        for account in ("111111111111", "222222222222")
        for region in ("eu-west-1", "us-east-1")
    ]
    write_resource_data_sync(tmp_path, wires)
    read = pf.read_resource_data_sync(tmp_path, max_workers=4)
    assert read.figures()["accounts"] == 2 and read.figures()["regions"] == 2
    assert_equal_where_carried(read, loaded_from(wires))


def test_a_sync_on_s3_reads_as_its_local_copy(tmp_path: Path, s3_bucket: str) -> None:
    write_resource_data_sync(f"{s3_bucket}/sync")
    write_resource_data_sync(tmp_path)
    on_s3 = pf.read_resource_data_sync(f"{s3_bucket}/sync").as_of(CLOCK)
    local = pf.read_resource_data_sync(tmp_path).as_of(CLOCK)
    assert on_s3.figures()["nodes"] == 13
    for name in ("patches", "nodes", "tags"):
        pd.testing.assert_frame_equal(getattr(on_s3, name), getattr(local, name))


def test_snapshot_saves_what_was_read_into_a_store(tmp_path: Path) -> None:
    write_resource_data_sync(tmp_path / "sync")
    read = pf.read_resource_data_sync(tmp_path / "sync", snapshot=tmp_path / "store")
    listed = pf.list_snapshots(tmp_path / "store")
    assert listed["time"].tolist() == [read.loaded_at]
    pd.testing.assert_frame_equal(pf.load_snapshot(tmp_path / "store").patches, read.patches)


def add_lines(path: Path, records: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        out.writelines(json.dumps(r) + "\n" for r in records)


def test_other_items_resource_types_and_terminated_nodes_are_left_out(
    sample_fleet_frames: Fleet, tmp_path: Path
) -> None:
    write_resource_data_sync(tmp_path)
    place = "accountid=123456789012/region=eu-west-1"
    node = sample_fleet_frames.nodes["instance_id"].iloc[0]
    items = tmp_path / f"AWS:ComplianceItem/{place}/resourcetype=ManagedInstanceInventory"
    association = {"resourceId": node, "ComplianceType": "Association", "Id": "x", "Status": ""}
    add_lines(items / f"{node}.json", [association])
    gone = "i-0ffffffffffffffff"
    for type_name in ("AWS:InstanceInformation", "AWS:ComplianceItem"):
        record = {"resourceId": gone, "InstanceId": gone, "InstanceStatus": "Terminated"}
        folder = tmp_path / f"{type_name}/{place}/resourcetype=ManagedInstanceInventory"
        add_lines(folder / f"{gone}.json", [{**record, "ComplianceType": "Patch", "Id": "KB1"}])
    other = tmp_path / f"AWS:ComplianceItem/{place}/resourcetype=AWSResource/thing.json"
    add_lines(other, [{"resourceId": "thing", "ComplianceType": "Patch", "Id": "KB2"}])

    read = pf.read_resource_data_sync(tmp_path)
    assert read.figures()["nodes"] == 13 and len(read.patches) == len(sample_fleet_frames.patches)
    assert_equal_where_carried(read, sample_fleet_frames)


def test_a_node_without_a_patch_summary_was_never_scanned(tmp_path: Path) -> None:
    write_resource_data_sync(tmp_path)
    summaries = sorted(tmp_path.glob("AWS:PatchSummary/*/*/*/*.json"))
    summaries[0].unlink()
    read = pf.read_resource_data_sync(tmp_path)
    node = read.nodes.set_index("instance_id").loc[summaries[0].stem]
    assert node["compliance"] == "NOT_SCANNED" and pd.isna(node["missing"])


def test_a_damaged_file_is_named(tmp_path: Path) -> None:
    write_resource_data_sync(tmp_path)
    damaged = sorted(tmp_path.glob("AWS:ComplianceItem/*/*/*/*.json"))[3]
    damaged.write_text('{"resourceId": "i-1", "Id": ')
    with pytest.raises(ValidationError, match=f"{damaged.name}: not JSON lines"):
        pf.read_resource_data_sync(tmp_path)


def test_an_empty_or_absent_sync_is_an_empty_fleet(
    sample_fleet_frames: Fleet, tmp_path: Path
) -> None:
    read = pf.read_resource_data_sync(tmp_path / "nothing")
    assert read.figures()["nodes"] == 0
    for name in ("patches", "nodes"):
        ours, theirs = getattr(read, name), getattr(sample_fleet_frames, name)
        assert list(ours.columns) == list(theirs.columns)


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="max_workers"):
        pf.read_resource_data_sync(tmp_path, max_workers=0)
    with pytest.raises(ValidationError, match="expected a folder or a URI"):
        pf.read_resource_data_sync(42)  # type: ignore[arg-type]
