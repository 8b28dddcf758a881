"""An AWS Organization served by the emulator, over real HTTP, to real boto3 clients."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import botocore.model
import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from patchframe.exceptions import ValidationError
from patchframe.sandbox.emulator import Emulator, _emulator, add_serve_arguments
from patchframe.sandbox.organization import (
    WireAccount,
    WireOrganization,
    WireUnit,
    synthetic_organization,
)
from patchframe.sandbox.sample import WireFleet, synthetic_fleet

ROLE = "PatchframeReadOnly"
NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})
ORG = synthetic_organization(5, nodes_per_account=4, patches_per_node=5, seed=3)
MEMBER = ORG.accounts[2].account_id  # dev-sandbox, in a nested unit


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(organization=ORG) as running:
        yield running


def code_of(call: Callable[[], object]) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return str(caught.value.response["Error"]["Code"])


def assume(emulator: Emulator, account_id: str, **request: Any) -> dict[str, Any]:
    sts = emulator.client("sts", config=NO_RETRIES)
    arn = f"arn:aws:iam::{account_id}:role/{ROLE}"
    answer: dict[str, Any] = sts.assume_role(RoleArn=arn, RoleSessionName="test", **request)
    return answer


def as_member(
    emulator: Emulator, credentials: dict[str, Any], service: str = "ssm", **kw: Any
) -> Any:
    return emulator.client(
        service,  # type: ignore[call-overload]
        config=NO_RETRIES,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        **kw,
    )


# --------------------------------------------------------------------------- data


def test_synthetic_organization_is_deterministic_and_fast() -> None:
    started = time.perf_counter()
    big = synthetic_organization(20)
    assert time.perf_counter() - started < 3.0  # about 0.2 s on a quiet machine
    assert big == synthetic_organization(20)
    assert big != synthetic_organization(20, seed=1)
    names = [account.name for account in big.accounts]
    assert len(set(names)) == 20 and names[:3] == ["management", "prod-payments", "dev-sandbox"]
    assert big.management_account_id == big.accounts[0].account_id
    assert big.accounts[0].parent_id == big.root_id
    assert all(len(account.fleets) == 2 for account in big.accounts)
    assert all(sum(len(f.instances) for f in a.fleets) == 10 for a in big.accounts)
    nested = {unit.unit_id for unit in big.units if unit.parent_id != big.root_id}
    assert any(account.parent_id in nested for account in big.accounts)


def test_synthetic_organization_splits_nodes_across_regions() -> None:
    org = synthetic_organization(
        2, nodes_per_account=5, regions=["eu-west-1", "us-east-1", "ap-south-1"]
    )
    fleets = org.accounts[1].fleets
    assert [(f.region, len(f.instances)) for f in fleets] == [
        ("eu-west-1", 2),
        ("us-east-1", 2),
        ("ap-south-1", 1),
    ]
    assert fleets[0] == synthetic_fleet(
        2, seed=0, account_id=org.accounts[1].account_id, region="eu-west-1", patches_per_node=60
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"accounts": 0}, "accounts"),
        ({"accounts": 2.5}, "accounts"),
        ({"nodes_per_account": -1}, "nodes_per_account"),
        ({"regions": []}, "regions"),
        ({"regions": "eu-west-1"}, "regions"),
        ({"regions": ["eu-west-1", "eu-west-1"]}, "twice"),
        ({"regions": ["Europe"]}, "region names"),
        ({"seed": "x"}, "seed"),
        ({"patches_per_node": 5000}, "patches_per_node"),
    ],
)
def test_synthetic_organization_refuses_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        synthetic_organization(**kwargs)


def account(account_id: str = "111122223333", **kw: Any) -> WireAccount:
    return WireAccount(account_id, "a", **{"parent_id": "r-ab12", **kw})


ROOT_ONLY = {"organization_id": "o-abcdef1234", "root_id": "r-ab12", "regions": ("eu-west-1",)}


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: account("1111"), "account_id"),
        (lambda: account(state="GONE"), "state"),
        (lambda: account(parent_id="x"), "parent_id"),
        (lambda: account(email="nobody"), "email"),
        (lambda: account(fleets=[WireFleet("444455556666", "eu-west-1")]), "fleet of account"),
        (lambda: account(fleets=[WireFleet("111122223333", "eu-west-1")] * 2), "twice"),
        (lambda: account(deny_role="yes"), "deny_role"),
        (lambda: WireUnit("ou-ab12-cdef3456", "", "r-ab12"), "name"),
        (
            lambda: WireOrganization(
                "o-1", "r-ab12", "111122223333", [account()], regions=["eu-west-1"]
            ),
            "organization_id",
        ),
        (
            lambda: WireOrganization(
                **ROOT_ONLY, management_account_id="999999999999", accounts=[account()]
            ),
            "management",
        ),
        (
            lambda: WireOrganization(
                **ROOT_ONLY, management_account_id="111122223333", accounts=[account(), account()]
            ),
            "twice",
        ),
        (
            lambda: WireOrganization(
                **ROOT_ONLY,
                management_account_id="111122223333",
                accounts=[account(parent_id="ou-ab12-cdef3456")],
            ),
            "parent",
        ),
        (
            lambda: WireOrganization(
                **ROOT_ONLY,
                management_account_id="111122223333",
                accounts=[account()],
                units=[
                    WireUnit("ou-ab12-aaaaaaaa", "A", "ou-ab12-bbbbbbbb"),
                    WireUnit("ou-ab12-bbbbbbbb", "B", "ou-ab12-aaaaaaaa"),
                ],
            ),
            "ancestor",
        ),
        (
            lambda: WireOrganization(
                **ROOT_ONLY,
                management_account_id="111122223333",
                accounts=[account(fleets=[WireFleet("111122223333", "us-east-1")])],
            ),
            "us-east-1",
        ),
        (
            lambda: WireOrganization(
                **ROOT_ONLY,
                management_account_id="111122223333",
                accounts=[account(disabled_regions=("us-east-1",))],
            ),
            "us-east-1",
        ),
        (lambda: dataclasses.replace(ORG, role_name="arn:aws:iam::1:role/x"), "role_name"),
        (lambda: dataclasses.replace(ORG, external_id="x"), "external_id"),
        (lambda: ORG.with_account("000000000000", state="SUSPENDED"), "not an account"),
    ],
)
def test_organizations_that_do_not_hold_together_are_refused(
    make: Callable[[], object], match: str
) -> None:
    with pytest.raises(ValidationError, match=match):
        make()


def test_a_disabled_region_has_no_fleet_served() -> None:
    org = ORG.with_account(MEMBER, disabled_regions=("us-east-1",))
    assert org.enabled_regions(MEMBER) == ("eu-west-1",)
    assert [f.region for f in org.fleets if f.account_id == MEMBER] == ["eu-west-1"]
    assert len(org.fleets) == 2 * len(org.accounts) - 1


def test_emulator_options_are_checked() -> None:
    with pytest.raises(ValidationError, match="not both"):
        Emulator([ORG.accounts[0].fleets[0]], organization=ORG)
    with pytest.raises(ValidationError, match="WireOrganization"):
        Emulator(organization="o-abcdef1234")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="credential_lifetime"):
        Emulator(organization=ORG, credential_lifetime=-1)


# --------------------------------------------------------------------------- Organizations


def test_list_accounts_pages_every_account_once(emulator: Emulator) -> None:
    org = emulator.client("organizations")  # type: ignore[call-overload]
    listed = [
        a["Id"]
        for page in org.get_paginator("list_accounts").paginate(PaginationConfig={"PageSize": 2})
        for a in page["Accounts"]
    ]
    assert listed == [a.account_id for a in ORG.accounts]
    first = org.list_accounts()
    assert len(first["Accounts"]) == 5 and "NextToken" not in first
    entry = org.list_accounts(
        MaxResults=1, NextToken=org.list_accounts(MaxResults=2)["NextToken"]
    )["Accounts"][0]
    truth = ORG.accounts[2]
    assert entry["Id"] == truth.account_id and entry["Name"] == "dev-sandbox"
    where = f"{ORG.organization_id}/{truth.account_id}"
    assert entry["Arn"] == f"arn:aws:organizations::{ORG.management_account_id}:account/{where}"
    assert (entry["State"], entry["Status"], entry["JoinedMethod"]) == (
        "ACTIVE",
        "ACTIVE",
        "CREATED",
    )
    assert entry["Email"] == truth.email and isinstance(entry["JoinedTimestamp"], dt.datetime)
    assert entry["Paths"] == [ORG.path(truth.account_id)]


def test_default_pages_are_small() -> None:
    big = synthetic_organization(25, nodes_per_account=0)
    with Emulator(organization=big) as emulator:
        org = emulator.client("organizations")  # type: ignore[call-overload]
        pages = list(org.get_paginator("list_accounts").paginate())
        assert [len(page["Accounts"]) for page in pages] == [10, 10, 5]
        assert emulator.stats.requests == {"ListAccounts": 3}


def test_walking_the_units_finds_every_account_once(emulator: Emulator) -> None:
    org = emulator.client("organizations")  # type: ignore[call-overload]
    root = org.list_roots()["Roots"]
    assert [(r["Id"], r["Name"]) for r in root] == [(ORG.root_id, "Root")]
    found: dict[str, str] = {}
    queue = [ORG.root_id]
    while queue:
        parent = queue.pop()
        for page in org.get_paginator("list_accounts_for_parent").paginate(
            ParentId=parent, PaginationConfig={"PageSize": 1}
        ):
            for a in page["Accounts"]:
                assert a["Id"] not in found
                found[a["Id"]] = parent
        for page in org.get_paginator("list_organizational_units_for_parent").paginate(
            ParentId=parent, PaginationConfig={"PageSize": 1}
        ):
            for unit in page["OrganizationalUnits"]:
                assert unit["Path"] == ORG.path(unit["Id"]) and unit["Arn"].endswith(unit["Id"])
                queue.append(unit["Id"])
    assert found == {a.account_id: a.parent_id for a in ORG.accounts}


def test_describe_organization_answers_every_member(emulator: Emulator) -> None:
    for account_id in (ORG.management_account_id, MEMBER):
        answer = emulator.client("organizations", account_id=account_id).describe_organization()  # type: ignore[call-overload]
        assert answer["Organization"]["Id"] == ORG.organization_id
        assert answer["Organization"]["MasterAccountId"] == ORG.management_account_id


def test_legacy_status_answers_status_only() -> None:
    org = dataclasses.replace(ORG, legacy_status=True).with_account(MEMBER, state="CLOSED")
    with Emulator(organization=org) as emulator:
        listed = emulator.client("organizations").list_accounts()["Accounts"]  # type: ignore[call-overload]
    assert all("State" not in a and "Paths" not in a for a in listed)
    assert {a["Id"]: a["Status"] for a in listed}[MEMBER] == "SUSPENDED"


def test_organization_errors(emulator: Emulator) -> None:
    member = emulator.client("organizations", account_id=MEMBER, config=NO_RETRIES)  # type: ignore[call-overload]
    with pytest.raises(ClientError) as caught:
        member.list_accounts()
    assert caught.value.response["Error"] == {
        "Code": "AccessDeniedException",
        "Message": "You don't have permissions to access this resource.",
    }
    outsider = emulator.client("organizations", account_id="999999999999")  # type: ignore[call-overload]
    assert code_of(outsider.list_accounts) == "AWSOrganizationsNotInUseException"
    org = emulator.client("organizations", config=NO_RETRIES)  # type: ignore[call-overload]
    assert (
        code_of(lambda: org.list_accounts_for_parent(ParentId="ou-zzzz-zzzzzzzz"))
        == "ParentNotFoundException"
    )
    with pytest.raises(ClientError) as caught:
        org.list_accounts(MaxResults=21)
    assert caught.value.response["Reason"] == "MAX_VALUE_EXCEEDED"
    assert code_of(lambda: org.list_accounts(NextToken="nonsense")) == "InvalidInputException"
    scoped = org.list_accounts(MaxResults=1)["NextToken"]  # bound to its own operation
    assert (
        code_of(lambda: org.list_accounts_for_parent(ParentId=ORG.root_id, NextToken=scoped))
        == "InvalidInputException"
    )


def test_an_emulator_without_an_organization_is_not_in_use() -> None:
    with Emulator() as emulator:
        org = emulator.client("organizations", config=NO_RETRIES)  # type: ignore[call-overload]
        with pytest.raises(ClientError) as caught:
            org.describe_organization()
        assert (
            caught.value.response["Error"]["Message"]
            == "Your account is not a member of an organization."
        )
        assert caught.value.response["Error"]["Code"] == "AWSOrganizationsNotInUseException"
        assert code_of(lambda: assume(emulator, "111122223333")) == "AccessDenied"
        ec2 = emulator.client("ec2")
        assert [r["RegionName"] for r in ec2.describe_regions(AllRegions=True)["Regions"]] == [
            "eu-west-1"
        ]
        assert emulator.stats.requests["DescribeOrganization"] == 1


# --------------------------------------------------------------------------- AssumeRole


def test_assume_role_gives_credentials_for_the_account(emulator: Emulator) -> None:
    before = dt.datetime.now(dt.UTC)
    answer = assume(emulator, MEMBER, DurationSeconds=900)
    credentials = answer["Credentials"]
    key = credentials["AccessKeyId"]
    assert key.startswith("ASIA") and key.endswith(MEMBER) and len(key) == 20
    assert (
        before + dt.timedelta(seconds=890)
        < credentials["Expiration"]
        < before + dt.timedelta(seconds=910)
    )
    assert answer["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{MEMBER}:assumed-role/{ROLE}/test"
    assert answer["AssumedRoleUser"]["AssumedRoleId"].endswith(":test")
    assert assume(emulator, MEMBER)["Credentials"]["SessionToken"] != credentials["SessionToken"]
    identity = as_member(emulator, credentials, "sts").get_caller_identity()
    assert (identity["Account"], identity["Arn"]) == (MEMBER, answer["AssumedRoleUser"]["Arn"])
    for region in ORG.regions:
        ssm = as_member(emulator, credentials, region=region)
        nodes = ssm.describe_instance_information()["InstanceInformationList"]
        truth = {f.region: f for f in ORG.account(MEMBER).fleets}[region]
        assert [n["InstanceId"] for n in nodes] == truth.instance_ids and nodes
    assert emulator.stats.requests["AssumeRole"] >= 2


# One switch per account: 1 refuses the role, 2 is suspended, 3 closed; 4 is open.
REFUSING = (
    dataclasses.replace(ORG, external_id="secret-id")
    .with_account(ORG.accounts[1].account_id, deny_role=True)
    .with_account(ORG.accounts[2].account_id, state="SUSPENDED")
    .with_account(ORG.accounts[3].account_id, state="CLOSED")
)
OPEN = ORG.accounts[4].account_id


@pytest.fixture(scope="module")
def refusing() -> Iterator[Emulator]:
    with Emulator(organization=REFUSING) as running:
        yield running


@pytest.mark.parametrize(
    ("role_arn", "request_", "code"),
    [
        (f"arn:aws:iam::{ORG.accounts[1].account_id}:role/{ROLE}", {}, "AccessDenied"),
        (f"arn:aws:iam::{ORG.accounts[2].account_id}:role/{ROLE}", {}, "AccessDenied"),
        (f"arn:aws:iam::{ORG.accounts[3].account_id}:role/{ROLE}", {}, "AccessDenied"),
        (f"arn:aws:iam::{OPEN}:role/Other", {}, "AccessDenied"),
        (f"arn:aws:iam::999999999999:role/{ROLE}", {}, "AccessDenied"),
        (f"arn:aws:iam::{OPEN}:role/{ROLE}", {"ExternalId": None}, "AccessDenied"),
        (f"arn:aws:iam::{OPEN}:role/{ROLE}", {"ExternalId": "other-id"}, "AccessDenied"),
        ("PatchframeReadOnly-is-not-an-arn", {}, "ValidationError"),
        (f"arn:aws:iam::{OPEN}:role/{ROLE}", {"DurationSeconds": 43201}, "ValidationError"),
    ],
)
def test_assume_role_is_refused(
    refusing: Emulator, role_arn: str, request_: dict[str, Any], code: str
) -> None:
    request = {"ExternalId": "secret-id", **request_}
    if request["ExternalId"] is None:
        del request["ExternalId"]
    sts = refusing.client("sts", config=NO_RETRIES)
    with pytest.raises(ClientError) as caught:
        sts.assume_role(RoleArn=role_arn, RoleSessionName="test", **request)
    error = caught.value.response["Error"]
    assert error["Code"] == code
    if code == "AccessDenied":
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert error["Message"] == (
            f"User: arn:aws:iam::{ORG.management_account_id}:user/patchframe is not authorized "
            f"to perform: sts:AssumeRole on resource: {role_arn}"
        )


def test_the_external_id_is_what_opens_the_role(refusing: Emulator) -> None:
    answer = assume(refusing, OPEN, ExternalId="secret-id")
    assert answer["Credentials"]["AccessKeyId"].endswith(OPEN)


def test_credentials_expire_after_their_lifetime() -> None:
    with Emulator(organization=ORG, credential_lifetime=1.0) as emulator:
        for service in ("ssm", "ec2", "sts"):
            emulator.client(service)  # type: ignore[call-overload]  # models loaded: clients made fast
        credentials = assume(emulator, MEMBER)["Credentials"]
        ssm, ec2, sts = (as_member(emulator, credentials, s) for s in ("ssm", "ec2", "sts"))
        assert ssm.describe_instance_information()["InstanceInformationList"]
        time.sleep(1.05)
        assert code_of(ssm.describe_instance_information) == "ExpiredTokenException"
        assert code_of(ec2.describe_regions) == "RequestExpired"
        assert code_of(sts.get_caller_identity) == "ExpiredToken"
        assert emulator.stats.expired_credentials == 3
        assert emulator.stats.requests["DescribeInstanceInformation"] == 2
        # Though the Expiration they were issued with is an hour away.
        assert credentials["Expiration"] > dt.datetime.now(dt.UTC) + dt.timedelta(minutes=50)


def test_the_lifetime_changes_while_serving(emulator: Emulator) -> None:
    ssm = as_member(emulator, assume(emulator, MEMBER)["Credentials"])
    assert ssm.describe_instance_information()["InstanceInformationList"]
    before = emulator.stats.expired_credentials
    try:
        emulator.credential_lifetime = 0
        assert code_of(ssm.describe_instance_information) == "ExpiredTokenException"
    finally:
        emulator.credential_lifetime = None
    assert ssm.describe_instance_information()["InstanceInformationList"]
    assert emulator.stats.expired_credentials == before + 1


def test_a_token_never_issued_is_refused(emulator: Emulator) -> None:
    forged = {"AccessKeyId": f"ASIAXXXX{MEMBER}", "SecretAccessKey": "x", "SessionToken": "forged"}
    before = emulator.stats.expired_credentials
    with pytest.raises(ClientError) as caught:
        as_member(emulator, forged).describe_instance_information()
    assert caught.value.response["Error"] == {
        "Code": "UnrecognizedClientException",
        "Message": "The security token included in the request is invalid.",
    }
    assert code_of(as_member(emulator, forged, "ec2").describe_regions) == "AuthFailure"
    assert (
        code_of(as_member(emulator, forged, "sts").get_caller_identity) == "InvalidClientTokenId"
    )
    organizations = as_member(emulator, forged, "organizations")
    assert code_of(organizations.describe_organization) == "UnrecognizedClientException"
    # A real token, with another account's key, is no better.
    stolen = {
        **assume(emulator, MEMBER)["Credentials"],
        "AccessKeyId": forged["AccessKeyId"][:-1] + "0",
    }
    assert (
        code_of(as_member(emulator, stolen).describe_instance_information)
        == "UnrecognizedClientException"
    )
    assert emulator.stats.expired_credentials == before


# --------------------------------------------------------------------------- regions


def test_a_disabled_region_refuses_every_regional_request() -> None:
    org = ORG.with_account(MEMBER, disabled_regions=("us-east-1",))
    with Emulator(organization=org) as emulator:
        credentials = assume(emulator, MEMBER)["Credentials"]
        east = {
            s: as_member(emulator, credentials, s, region="us-east-1")
            for s in ("ssm", "ec2", "sts")
        }
        with pytest.raises(ClientError) as caught:
            east["ssm"].describe_instance_information()
        assert caught.value.response["Error"]["Code"] == "UnrecognizedClientException"
        with pytest.raises(ClientError) as caught:
            east["ec2"].describe_tags()
        assert caught.value.response["Error"]["Code"] == "AuthFailure"
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 401
        assert code_of(east["sts"].get_caller_identity) == "InvalidClientTokenId"
        # Long-term keys are refused there too; the other region answers.
        assert (
            code_of(
                emulator.client(
                    account_id=MEMBER, region="us-east-1", config=NO_RETRIES
                ).describe_instance_information
            )
            == "UnrecognizedClientException"
        )
        west = as_member(emulator, credentials, region="eu-west-1")
        assert west.describe_instance_information()["InstanceInformationList"]
        ec2 = as_member(emulator, credentials, "ec2", region="eu-west-1")
        enabled = ec2.describe_regions()["Regions"]
        every = ec2.describe_regions(AllRegions=True)["Regions"]
    assert enabled == [
        {
            "RegionName": "eu-west-1",
            "Endpoint": "ec2.eu-west-1.amazonaws.com",
            "OptInStatus": "opt-in-not-required",
        }
    ]
    assert [(r["RegionName"], r["OptInStatus"]) for r in every] == [
        ("eu-west-1", "opt-in-not-required"),
        ("us-east-1", "not-opted-in"),
    ]


def test_describe_regions_of_an_account_with_every_region(emulator: Emulator) -> None:
    regions = emulator.client("ec2").describe_regions(AllRegions=True)["Regions"]
    assert [r["RegionName"] for r in regions] == list(ORG.regions)


# --------------------------------------------------------------------------- tagging API


@pytest.fixture
def cbor(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tagging clients made in the test speak Smithy RPC v2 CBOR (botocore 1.44 would
    pick JSON 1.1 of the two protocols the service offers)."""
    order = ("smithy-rpc-v2-cbor", *botocore.model.PRIORITY_ORDERED_SUPPORTED_PROTOCOLS)
    monkeypatch.setattr(botocore.model, "PRIORITY_ORDERED_SUPPORTED_PROTOCOLS", order)


def ec2_arns(org: WireOrganization) -> list[str]:
    """The ARN of every node of the organization, in every account and region."""
    return [
        f"arn:aws:ec2:{fleet.region}:{fleet.account_id}:instance/{node}"
        for account in org.accounts
        for fleet in account.fleets
        for node in fleet.instance_ids
    ]


@pytest.mark.usefixtures("cbor")
def test_get_resources_answers_each_account_its_own_nodes(emulator: Emulator) -> None:
    arns = ec2_arns(ORG)
    assert len(arns) == 20
    for account in ORG.accounts:
        if account.account_id == ORG.management_account_id:
            keys: dict[str, Any] = {}
        else:
            credentials = assume(emulator, account.account_id)["Credentials"]
            keys = {
                "aws_access_key_id": credentials["AccessKeyId"],
                "aws_secret_access_key": credentials["SecretAccessKey"],
                "aws_session_token": credentials["SessionToken"],
            }
        for fleet in account.fleets:
            client = emulator.client(
                "resourcegroupstaggingapi", region=fleet.region, config=NO_RETRIES, **keys
            )
            assert client.meta.service_model.resolved_protocol == "smithy-rpc-v2-cbor"
            answer = client.get_resources(ResourceARNList=arns)["ResourceTagMappingList"]
            expected = [
                {
                    "ResourceARN": f"arn:aws:ec2:{fleet.region}:{fleet.account_id}:instance/{i}",
                    "Tags": [{"Key": k, "Value": v} for k, v in fleet.tags[i].items()],
                }
                for i in fleet.instance_ids
                if i.startswith("i-") and fleet.tags.get(i)
            ]
            assert answer == expected and expected  # its own tagged EC2 nodes, no others


@pytest.mark.usefixtures("cbor")
def test_get_resources_refuses_credentials_as_ssm_does() -> None:
    org = ORG.with_account(MEMBER, disabled_regions=("us-east-1",))
    arns = ec2_arns(org)
    with Emulator(organization=org) as emulator:
        credentials = assume(emulator, MEMBER)["Credentials"]
        west = as_member(emulator, credentials, "resourcegroupstaggingapi", region="eu-west-1")
        assert west.get_resources(ResourceARNList=arns)["ResourceTagMappingList"]
        east = as_member(emulator, credentials, "resourcegroupstaggingapi", region="us-east-1")
        with pytest.raises(ClientError) as caught:
            east.get_resources(ResourceARNList=arns)
        assert caught.value.response["Error"] == {
            "Code": "UnrecognizedClientException",
            "Message": "The security token included in the request is invalid.",
        }
        forged = {**credentials, "SessionToken": "forged"}
        assert (
            code_of(
                lambda: as_member(emulator, forged, "resourcegroupstaggingapi").get_resources(
                    ResourceARNList=arns
                )
            )
            == "UnrecognizedClientException"
        )
        emulator.credential_lifetime = 0
        assert code_of(lambda: west.get_resources(ResourceARNList=arns)) == "ExpiredTokenException"
        stats = emulator.stats
        assert stats.expired_credentials == 1 and stats.requests["GetResources"] == 4


# --------------------------------------------------------------------------- sessions


def test_session_reaches_the_emulator_for_any_client(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Neither the environment's keys, profile nor proxies take the session elsewhere.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEMUL999999999999")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    session = emulator.session()
    assert session.region_name == ORG.regions[0]
    assert session.client("sts").get_caller_identity()["Account"] == ORG.management_account_id
    assert len(session.client("organizations").list_accounts()["Accounts"]) == 5
    member = emulator.session(MEMBER, region="us-east-1")
    nodes = member.client("ssm").describe_instance_information()["InstanceInformationList"]
    assert [n["InstanceId"] for n in nodes] == ORG.account(MEMBER).fleets[1].instance_ids


def test_a_botocore_session_with_the_same_profile_reaches_it(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEMUL999999999999")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    source = emulator.session(MEMBER)._session
    copy = botocore.session.Session()
    for name in ("config_file", "profile"):
        copy.set_config_variable(name, source.get_config_variable(name))
    twin = boto3.Session(botocore_session=copy)
    assert twin.region_name == ORG.regions[0]
    assert twin.client("sts").get_caller_identity()["Account"] == MEMBER


def test_session_files_go_with_the_emulator() -> None:
    emulator = Emulator(organization=ORG)
    with pytest.raises(RuntimeError, match="not running"):
        emulator.session()
    with emulator:
        path = emulator.session()._session.get_config_variable("config_file")
        assert os.path.exists(path)
    assert not os.path.exists(path)


# --------------------------------------------------------------------------- command line


def test_serve_organization_arguments() -> None:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    args = parser.parse_args(["--organization", "3", "--synthetic", "4", "--seed", "2"])
    assert args.organization == 3
    emulator = _emulator(args)
    assert emulator.organization == synthetic_organization(3, nodes_per_account=4, seed=2)
    assert emulator.credentials()["aws_access_key_id"].endswith(
        emulator.organization.management_account_id
    )
    for bad in ("0", "x", "1001"):
        with pytest.raises(SystemExit):
            parser.parse_args(["--organization", bad])


def test_serve_an_organization_from_the_command_line() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "patchframe.sandbox.emulator",
            "--organization",
            "3",
            "--synthetic",
            "2",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline().strip() for _ in range(5)]
        org = synthetic_organization(3, nodes_per_account=2)
        assert lines[0].startswith("patchframe emulator listening on http://127.0.0.1:")
        assert org.management_account_id in lines[1] and ROLE in lines[1]
        exports = dict(
            pair.split("=", 1)
            for line in lines[3:]
            for pair in line.removeprefix("export ").split()
        )
        assert exports["AWS_ENDPOINT_URL"] == lines[0].rsplit(" ", 1)[1]
        client = boto3.Session(
            aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"],
            region_name=exports["AWS_DEFAULT_REGION"],
        ).client(
            "organizations", endpoint_url=exports["AWS_ENDPOINT_URL"], config=Config(proxies={})
        )
        assert [a["Name"] for a in client.list_accounts()["Accounts"]] == [
            a.name for a in org.accounts
        ]
        process.terminate()
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
