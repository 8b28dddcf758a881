"""The single-node loader: argument checks, paging, errors (botocore's Stubber)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

import patchframe as pf
from patchframe.exceptions import (
    AWSRequestError,
    NodeNotFoundError,
    PatchframeError,
    ValidationError,
)

NODE = "i-0123456789abcdef0"


@pytest.fixture
def client() -> Any:
    return boto3.client(
        "ssm", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y"
    )


@pytest.fixture
def stub(client: Any) -> Iterator[Stubber]:
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def patches(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "Title": f"Update {i}",
            "KBId": f"KB{i}",
            "Classification": "SecurityUpdates",
            "Severity": "Critical",
            "State": "Installed",
            "InstalledTime": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        }
        for i in range(start, start + n)
    ]


def request(max_results: int = 100, token: str | None = None, **extra: Any) -> dict[str, Any]:
    params = {"InstanceId": NODE, "Filters": [], "MaxResults": max_results, **extra}
    if token:
        params["NextToken"] = token
    return params


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"instance_id": "web-1"}, "'web-1'"),
        ({"instance_id": "i-123"}, "'i-123'"),
        ({"instance_id": "mi-0123456789abcdef"}, "mi-"),
        ({"filters": {"Product": ["X"]}}, "'Product'"),
        ({"filters": {"State": []}}, "'State'"),
        ({"filters": {"State": "Missing"}}, "'Missing'"),
        ({"filters": {"Severity": [1]}}, "[1]"),
        ({"filters": {"State": ["Broken"]}}, "'Broken'"),
        ({"filters": [{"Key": "KBId"}]}, "'KBId'"),
        ({"filters": [{"Key": "KBId", "Values": [f"KB{i}"]} for i in range(6)]}, "at most 5"),
        ({"page_size": 5}, "5"),
        ({"page_size": 101}, "101"),
        ({"page_size": True}, "True"),
    ],
)
def test_bad_input_raises_before_any_call(
    stub: Stubber, client: Any, kwargs: dict[str, Any], named: str
) -> None:
    args = {"instance_id": NODE, **kwargs}
    with pytest.raises(
        ValidationError, match=named.replace("[", r"\[").replace("]", r"\]")
    ) as info:
        pf.load_instance_patches(args.pop("instance_id"), client=client, **args)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, PatchframeError)


def test_pages_to_the_last_page(stub: Stubber, client: Any) -> None:
    stub.add_response(
        "describe_instance_patches", {"Patches": patches(100), "NextToken": "t1"}, request()
    )
    stub.add_response(
        "describe_instance_patches", {"Patches": patches(30, 100)}, request(token="t1")
    )
    df = pf.load_instance_patches(NODE, client=client)
    assert len(df) == 130
    assert df["kb_id"].is_unique
    assert df["instance_id"].unique().tolist() == [NODE]
    assert df["region"].unique().tolist() == ["eu-west-1"]


def test_dict_and_list_filters_send_the_same_request(stub: Stubber, client: Any) -> None:
    wanted = [
        {"Key": "State", "Values": ["Missing", "Failed"]},
        {"Key": "Severity", "Values": ["Critical"]},
    ]
    stub.add_response("describe_instance_patches", {"Patches": []}, request(Filters=wanted))
    stub.add_response("describe_instance_patches", {"Patches": []}, request(Filters=wanted))
    pf.load_instance_patches(
        NODE, client=client, filters={"State": ["MISSING", "Failed"], "Severity": ["Critical"]}
    )
    assert pf.load_instance_patches(NODE, client=client, filters=wanted).empty


def test_falls_back_to_50_when_the_service_refuses_100(stub: Stubber, client: Any) -> None:
    refusal = (
        "1 validation error detected: Value '100' at 'maxResults' failed to satisfy "
        "constraint: Member must have value less than or equal to 50"
    )
    stub.add_client_error(
        "describe_instance_patches", "ValidationException", refusal, 400, expected_params=request()
    )
    stub.add_response(
        "describe_instance_patches", {"Patches": patches(50), "NextToken": "t"}, request(50)
    )
    stub.add_response("describe_instance_patches", {"Patches": patches(5, 50)}, request(50, "t"))
    # The client remembers: the next node starts at 50 at once.
    stub.add_response("describe_instance_patches", {"Patches": patches(1)}, request(50))
    assert len(pf.load_instance_patches(NODE, client=client)) == 55
    assert len(pf.load_instance_patches(NODE, client=client)) == 1


def test_an_explicit_page_size_is_not_second_guessed(stub: Stubber, client: Any) -> None:
    stub.add_client_error(
        "describe_instance_patches",
        "ValidationException",
        "maxResults",
        400,
        expected_params=request(),
    )
    with pytest.raises(AWSRequestError, match="ValidationException"):
        pf.load_instance_patches(NODE, client=client, page_size=100)


def test_expired_token_restarts_paging_once_without_double_counting(
    stub: Stubber, client: Any
) -> None:
    stub.add_response(
        "describe_instance_patches", {"Patches": patches(100), "NextToken": "t1"}, request()
    )
    stub.add_client_error(
        "describe_instance_patches",
        "InvalidNextToken",
        "expired",
        400,
        expected_params=request(token="t1"),
    )
    stub.add_response(
        "describe_instance_patches", {"Patches": patches(100), "NextToken": "t2"}, request()
    )
    stub.add_response(
        "describe_instance_patches", {"Patches": patches(7, 100)}, request(token="t2")
    )
    df = pf.load_instance_patches(NODE, client=client)
    assert len(df) == 107
    assert df["kb_id"].is_unique


def test_expired_token_twice_is_an_error(stub: Stubber, client: Any) -> None:
    for _ in range(2):
        stub.add_response(
            "describe_instance_patches", {"Patches": patches(100), "NextToken": "t1"}, request()
        )
        stub.add_client_error(
            "describe_instance_patches",
            "InvalidNextToken",
            "expired",
            400,
            expected_params=request(token="t1"),
        )
    with pytest.raises(AWSRequestError, match="InvalidNextToken") as info:
        pf.load_instance_patches(NODE, client=client)
    assert info.value.instance_id == NODE


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("InvalidInstanceId", NodeNotFoundError),
        ("InvalidFilter", AWSRequestError),
        ("InternalServerError", AWSRequestError),
        ("AccessDeniedException", AWSRequestError),
    ],
)
def test_api_errors_name_the_node_and_carry_aws_message(
    stub: Stubber, client: Any, code: str, cls: type[AWSRequestError]
) -> None:
    stub.add_client_error(
        "describe_instance_patches", code, f"AWS says {code}", 400, expected_params=request()
    )
    with pytest.raises(cls) as info:
        pf.load_instance_patches(NODE, client=client)
    err = info.value
    assert NODE in str(err) and f"AWS says {code}" in str(err)
    assert (err.code, err.operation, err.instance_id) == (code, "DescribeInstancePatches", NODE)
    assert err.aws_message == f"AWS says {code}"
    assert isinstance(err.__cause__, ClientError)
