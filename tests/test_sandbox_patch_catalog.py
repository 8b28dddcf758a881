"""The emulator's catalog calls: page-size limits, the PRODUCT rule, baselines it knows."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from patchframe.sandbox import Emulator
from patchframe.sandbox.sample import WireFleet


@pytest.fixture
def emulator(wire_fleet: WireFleet) -> Iterator[Emulator]:
    with Emulator(wire_fleet) as served:
        yield served


def baselines(fleet: WireFleet, platform: str) -> set[str]:
    kinds = {info["InstanceId"]: info["PlatformType"] for info in fleet.instances}
    return {s["BaselineId"] for s in fleet.patch_states if kinds[s["InstanceId"]] == platform}


def code(err: pytest.ExceptionInfo[ClientError]) -> str:
    return str(err.value.response["Error"]["Code"])


@pytest.mark.parametrize("size", [0, 101])
def test_page_sizes_outside_1_to_100_are_refused(emulator: Emulator, size: int) -> None:
    # botocore checks MaxResults too: let the request reach the emulator.
    ssm = emulator.client(config=Config(parameter_validation=False))
    baseline = sorted(baselines(emulator.fleet(), "Windows"))[0]
    with pytest.raises(ClientError) as effective:
        ssm.describe_effective_patches_for_patch_baseline(BaselineId=baseline, MaxResults=size)
    assert code(effective) == "ValidationException"
    with pytest.raises(ClientError) as available:
        ssm.describe_available_patches(
            Filters=[{"Key": "PRODUCT", "Values": ["WindowsServer2022"]}], MaxResults=size
        )
    assert code(available) == "ValidationException"


def test_describe_available_patches_needs_a_product_filter(emulator: Emulator) -> None:
    ssm = emulator.client()
    with pytest.raises(ClientError, match="PRODUCT") as refused:
        ssm.describe_available_patches(Filters=[{"Key": "CVE_ID", "Values": ["CVE-2024-1"]}])
    assert code(refused) == "ValidationException"
    page = ssm.describe_available_patches(
        Filters=[{"Key": "PRODUCT", "Values": ["WindowsServer2019"]}], MaxResults=1
    )
    assert len(page["Patches"]) == 1 and "NextToken" in page


def test_every_windows_kb_of_a_baseline_is_effective_with_its_dates(
    emulator: Emulator, wire_fleet: WireFleet
) -> None:
    ssm = emulator.client()
    kinds = {info["InstanceId"]: info["PlatformType"] for info in wire_fleet.instances}
    for baseline in baselines(wire_fleet, "Windows"):
        nodes = {s["InstanceId"] for s in wire_fleet.patch_states if s["BaselineId"] == baseline}
        kbs = {row["KBId"] for node in nodes for row in wire_fleet.patches[node]}
        pages = ssm.get_paginator("describe_effective_patches_for_patch_baseline").paginate(
            BaselineId=baseline, PaginationConfig={"PageSize": 40}
        )
        got = [entry for page in pages for entry in page["EffectivePatches"]]
        assert {entry["Patch"]["KbNumber"] for entry in got} == kbs
        for entry in got:
            assert entry["PatchStatus"]["ApprovalDate"] > entry["Patch"]["ReleaseDate"]
        assert all(kinds[n] == "Windows" for n in nodes)


def test_unknown_and_linux_baselines_are_refused_as_the_service_does(
    emulator: Emulator, wire_fleet: WireFleet
) -> None:
    ssm = emulator.client()
    with pytest.raises(ClientError) as unknown:
        ssm.describe_effective_patches_for_patch_baseline(BaselineId="pb-0aaaaaaaaaaaaaaaa")
    assert code(unknown) == "DoesNotExistException"
    linux = sorted(baselines(wire_fleet, "Linux"))[0]
    with pytest.raises(ClientError) as unsupported:
        ssm.describe_effective_patches_for_patch_baseline(BaselineId=linux)
    assert code(unsupported) == "UnsupportedOperatingSystem"


def test_another_accounts_own_baseline_is_unknown_but_an_aws_managed_one_is_shared(
    wire_fleet: WireFleet,
) -> None:
    other = WireFleet("111122223333", wire_fleet.region)
    with Emulator([wire_fleet, other]) as emulator:
        ssm = emulator.client(account_id="111122223333")
        for baseline in baselines(wire_fleet, "Windows"):
            if baseline.startswith("arn:"):
                page = ssm.describe_effective_patches_for_patch_baseline(BaselineId=baseline)
                assert page["EffectivePatches"]
            else:
                with pytest.raises(ClientError, match="DoesNotExist"):
                    ssm.describe_effective_patches_for_patch_baseline(BaselineId=baseline)
