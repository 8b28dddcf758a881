"""The snapshot store on S3 over HTTP: moto's S3 server on 127.0.0.1, reached through
pyarrow's S3FileSystem with the AWS SDK's standard configuration (``AWS_ENDPOINT_URL``,
credentials and region from the environment), as a user reaches AWS's own S3."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import pandas as pd
import pytest
from history_data import history_fleets, save_history, wire_history

from patchframe import Fleet
from patchframe.exceptions import ValidationError
from patchframe.history import (
    diff,
    findings,
    list_snapshots,
    load_snapshot,
    save_snapshot,
    trend,
)

JUNE = pd.Timestamp("2024-06-14T08:00:00Z")
FIRST = "20240614T080000.000000Z"


def keys(uri: str) -> list[str]:
    """Every object key under an ``s3://bucket/prefix``, as S3 itself lists them."""
    where = urlsplit(uri)
    pages = boto3.client("s3").get_paginator("list_objects_v2")
    return [
        item["Key"]
        for page in pages.paginate(Bucket=where.netloc, Prefix=where.path.lstrip("/"))
        for item in page.get("Contents", [])
    ]


def assert_same_fleet(back: Fleet, saved: Fleet) -> None:
    for name in ("patches", "nodes", "errors"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(saved, name))


@pytest.fixture(scope="module")
def local_history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic history in a local store: what the S3 store must answer alike."""
    return save_history(tmp_path_factory.mktemp("history") / "store")


def test_a_snapshot_round_trips_through_s3(sample_fleet_frames: Fleet, s3_bucket: str) -> None:
    store = f"{s3_bucket}/history"
    saved = save_snapshot(sample_fleet_frames, store, when=JUNE)
    assert saved.id == FIRST
    written = keys(store)
    assert (
        f"history/patches/snapshot={FIRST}/account_id=123456789012/region=eu-west-1/part-0.parquet"
    ) in written
    assert f"history/patches/snapshot={FIRST}/_snapshot.json" in written
    listed = list_snapshots(store)
    assert listed["snapshot"].tolist() == [FIRST]
    assert listed["patches"].tolist() == [len(sample_fleet_frames.patches)]
    assert_same_fleet(load_snapshot(store), sample_fleet_frames)


def test_the_s3_only_endpoint_variable_is_honoured(
    sample_fleet_frames: Fleet,
    s3_bucket: str,
    moto_s3_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto_s3_endpoint)
    save_snapshot(sample_fleet_frames, f"{s3_bucket}/store", when=JUNE)
    assert list_snapshots(f"{s3_bucket}/store")["snapshot"].tolist() == [FIRST]


def test_trend_diff_and_findings_read_s3_as_they_read_a_folder(
    s3_bucket: str, local_history: Path
) -> None:
    store = f"{s3_bucket}/history"
    for (when, _), fleet in zip(wire_history(), history_fleets(), strict=True):
        save_snapshot(fleet, store, when=when)

    pd.testing.assert_frame_equal(list_snapshots(store), list_snapshots(local_history))
    pd.testing.assert_frame_equal(trend(store), trend(local_history))
    pd.testing.assert_frame_equal(findings(store), findings(local_history))
    ids = list_snapshots(store)["snapshot"]
    old, new = load_snapshot(store, ids.iloc[0]), load_snapshot(store, ids.iloc[-1])
    assert_same_fleet(old, history_fleets()[0])
    changes, expected = diff(old, new), diff(history_fleets()[0], history_fleets()[-1])
    for name in ("added_nodes", "removed_nodes", "newly_missing", "fixed", "changed"):
        pd.testing.assert_frame_equal(getattr(changes, name), getattr(expected, name))
    assert changes.counts() == expected.counts() and sum(changes.counts().values()) > 0


KILLED = textwrap.dedent(
    """
    import os, sys
    import pyarrow.parquet as pq
    import patchframe as pf

    write_table, written = pq.write_table, []

    def dies_on_the_second_file(*args, **kwargs):
        written.append(args[1])
        if len(written) == 2:
            os._exit(3)  # killed after an upload: no cleanup, no finally, no manifest
        write_table(*args, **kwargs)

    pq.write_table = dies_on_the_second_file
    fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    pf.save_snapshot(fleet, sys.argv[1], when="2024-06-14T08:00:00Z")
    """
)


def test_a_writer_killed_before_the_manifest_leaves_no_snapshot(
    sample_fleet_frames: Fleet, s3_bucket: str
) -> None:
    store = f"{s3_bucket}/store"
    done = subprocess.run(
        [sys.executable, "-c", KILLED, store], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 3, done.stderr
    uploaded = [k for k in keys(store) if k.endswith(".parquet")]
    assert len(uploaded) == 1  # part of a snapshot is on S3 ...
    assert not [k for k in keys(store) if k.endswith("_snapshot.json")]
    assert list_snapshots(store).empty  # ... yet no snapshot is
    with pytest.raises(ValidationError, match="no snapshot yet"):
        load_snapshot(store)

    saved = save_snapshot(sample_fleet_frames, store, when=JUNE)
    assert saved.id == f"{FIRST}-2"  # the interrupted save's id stays its own
    assert list_snapshots(store)["snapshot"].tolist() == [saved.id]
    assert_same_fleet(load_snapshot(store), sample_fleet_frames)


def test_writers_saving_the_same_second_at_once_all_land(
    sample_fleet_frames: Fleet, s3_bucket: str
) -> None:
    store, writers = f"{s3_bucket}/store", 4
    start = threading.Barrier(writers)
    ids: list[str] = []

    def save() -> None:
        start.wait()
        ids.append(save_snapshot(sample_fleet_frames, store, when=JUNE).id)

    threads = [threading.Thread(target=save) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    expected = [FIRST, *(f"{FIRST}-{n}" for n in range(2, writers + 1))]
    assert sorted(ids) == expected
    assert sorted(list_snapshots(store)["snapshot"]) == expected
    for snapshot_id in expected:
        assert_same_fleet(load_snapshot(store, snapshot_id), sample_fleet_frames)
