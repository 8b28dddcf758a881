"""load_patch_catalog over the emulator: baselines' effective patches and Amazon Linux products."""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Iterator

import boto3
import pandas as pd
import pytest

import patchframe as pf
from patchframe.sandbox import Emulator
from patchframe.sandbox.sample import WireFleet

OTHER_ACCOUNT = "111122223333"


@pytest.fixture
def emulator(wire_fleet: WireFleet) -> Iterator[Emulator]:
    with Emulator(wire_fleet) as served:
        yield served


def windows_baselines(fleet: pf.Fleet) -> list[str]:
    windows = fleet.nodes[fleet.nodes["platform_type"] == "Windows"]
    return sorted(windows["baseline_id"].dropna().astype(str).unique())


def test_every_windows_kb_of_the_sample_gets_a_release_date(
    emulator: Emulator, sample_fleet_frames: pf.Fleet
) -> None:
    catalog = pf.load_patch_catalog(sample_fleet_frames, client=emulator.client())
    assert sorted(catalog["baseline_id"].dropna().unique()) == windows_baselines(
        sample_fleet_frames
    )
    assert isinstance(catalog["release_date"].dtype, pd.DatetimeTZDtype)
    assert str(catalog["release_date"].dt.tz) == "UTC"
    assert catalog["release_date"].notna().all()
    assert (catalog["approval_date"] >= catalog["release_date"]).all()
    assert isinstance(catalog["title"].dtype, pd.CategoricalDtype)

    dated = pf.with_release_dates(sample_fleet_frames.patches, catalog)
    windows = dated[dated["platform_type"] == "Windows"]
    assert len(windows) > 0
    assert windows["release_date"].notna().all()
    assert windows["approval_date"].notna().all()
    # The sample has no Amazon Linux 1 or 2 node: its Linux rows have no catalog.
    assert dated.attrs["unmatched_release_dates"] == (dated["platform_type"] == "Linux").sum()


def test_every_page_is_followed(emulator: Emulator, sample_fleet_frames: pf.Fleet) -> None:
    whole = pf.load_patch_catalog(sample_fleet_frames, client=emulator.client())
    emulator.reset_stats()
    paged = pf.load_patch_catalog(sample_fleet_frames, client=emulator.client(), page_size=7)
    pd.testing.assert_frame_equal(paged, whole)
    sizes = whole.groupby("baseline_id", observed=True).size()
    expected = {baseline: math.ceil(n / 7) for baseline, n in sizes.items()}
    assert emulator.stats.pages == expected
    assert emulator.stats.requests == {
        "DescribeEffectivePatchesForPatchBaseline": sum(expected.values())
    }


def test_an_aws_managed_baseline_is_fetched_once_for_two_accounts(
    wire_fleet: WireFleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    twin = dataclasses.replace(wire_fleet, account_id=OTHER_ACCOUNT)
    with Emulator([wire_fleet, twin]) as emulator:
        monkeypatch.setenv("AWS_ENDPOINT_URL", emulator.url)
        sessions = [
            boto3.Session(**emulator.credentials(account), region_name=wire_fleet.region)
            for account in (wire_fleet.account_id, OTHER_ACCOUNT)
        ]
        fleet = pf.load_fleet(boto3_sessions=sessions, progress=False, tags=False)
        assert set(fleet.nodes["account_id"]) == {wire_fleet.account_id, OTHER_ACCOUNT}
        emulator.reset_stats()
        catalog = pf.load_patch_catalog(fleet, boto3_sessions=sessions, page_size=50)
        pages = emulator.stats.pages
    sizes = catalog.groupby("baseline_id", observed=True).size()
    managed = [b for b in sizes.index if b.startswith("arn:aws:ssm:")]
    assert len(managed) == 1
    for baseline, n in sizes.items():
        # The account's own baselines are asked in each account; AWS's once.
        per_account = 1 if baseline in managed else 2
        assert pages[baseline] == per_account * math.ceil(n / 50)


def al2_fleet(wire_fleet: WireFleet) -> WireFleet:
    """The sample with its Amazon Linux 2023 nodes reporting Amazon Linux 2."""
    fleet = copy.deepcopy(wire_fleet)
    for info in fleet.instances:
        if info["PlatformName"] == "Amazon Linux":
            info["PlatformVersion"] = "2"
    return fleet


def test_amazon_linux_2_packages_are_dated_through_the_product_filter(
    wire_fleet: WireFleet,
) -> None:
    with Emulator(al2_fleet(wire_fleet)) as emulator:
        client = emulator.client()
        fleet = pf.load_fleet(client=client, progress=False, tags=False)
        emulator.reset_stats()
        catalog = pf.load_patch_catalog(fleet, client=client, page_size=100)
        requests = emulator.stats.requests
    assert requests["DescribeAvailablePatches"] >= 2  # more than one page of packages
    linux = catalog[catalog["baseline_id"].isna()]
    assert set(linux["product"]) == {"AmazonLinux2"}
    assert linux["release_date"].notna().all()
    assert linux["approval_date"].isna().all()

    dated = pf.with_release_dates(fleet.patches, catalog)
    al2 = dated[dated["platform_name"] == "Amazon Linux"]
    assert len(al2) > 0
    assert al2["release_date"].notna().all()
    others = dated[
        (dated["platform_type"] == "Linux") & (dated["platform_name"] != "Amazon Linux")
    ]
    assert others["release_date"].isna().all()
    assert dated.attrs["unmatched_release_dates"] == len(others)


@pytest.mark.parametrize("page_size", [0, 101, 2.5, True, "100"])
def test_a_bad_page_size_is_refused_before_any_call(
    emulator: Emulator, sample_fleet_frames: pf.Fleet, page_size: object
) -> None:
    emulator.reset_stats()
    with pytest.raises(pf.ValidationError, match="page_size"):
        pf.load_patch_catalog(
            sample_fleet_frames,
            client=emulator.client(),
            page_size=page_size,  # type: ignore[arg-type]
        )
    assert emulator.stats.total == 0


def test_what_is_not_a_fleet_or_lacks_node_columns_is_refused(emulator: Emulator) -> None:
    with pytest.raises(pf.ValidationError, match="Fleet"):
        pf.load_patch_catalog(pd.DataFrame(), client=emulator.client())  # type: ignore[arg-type]
    empty = pf.Fleet(pf.empty_patches(), pd.DataFrame({"region": []}), pd.DataFrame())
    with pytest.raises(pf.ColumnsError, match="baseline_id"):
        pf.load_patch_catalog(empty, client=emulator.client())


def test_one_client_for_a_fleet_of_another_region_is_refused(
    emulator: Emulator, sample_fleet_frames: pf.Fleet
) -> None:
    with pytest.raises(pf.ValidationError, match="one account and region"):
        pf.load_patch_catalog(sample_fleet_frames, client=emulator.client(region="us-east-1"))


def test_a_failed_call_is_an_aws_request_error_with_its_cause(
    emulator: Emulator, sample_fleet_frames: pf.Fleet
) -> None:
    nodes = sample_fleet_frames.nodes.assign(baseline_id="pb-0aaaaaaaaaaaaaaaa")
    unknown = dataclasses.replace(sample_fleet_frames, nodes=nodes)
    with pytest.raises(pf.AWSRequestError, match="pb-0aaaaaaaaaaaaaaaa") as caught:
        pf.load_patch_catalog(unknown, client=emulator.client())
    assert caught.value.code == "DoesNotExistException"
    assert caught.value.operation == "DescribeEffectivePatchesForPatchBaseline"
    assert caught.value.__cause__ is not None
