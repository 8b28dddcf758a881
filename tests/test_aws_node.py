"""The single-node loader: argument checks, paging, page size, errors.

Answered in-process through botocore's ``before-send`` event (tests/mock_ssm.py), so
botocore's retries, the fast path and error parsing run as they do against AWS; the
last tests, about the endpoint and throttling over HTTP, use the emulator.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from mock_ssm import REGION, MockSSM, Request, error, page

import patchframe as pf
from patchframe.aws._node import fetch_node_patches
from patchframe.exceptions import (
    AWSRequestError,
    NodeNotFoundError,
    PatchframeError,
    ValidationError,
)
from patchframe.sandbox.emulator import Emulator
from patchframe.sandbox.sample import WireFleet, synthetic_fleet

NODE = "i-0123456789abcdef0"
ONE_ATTEMPT = {"retries": {"mode": "standard", "total_max_attempts": 1}}
REFUSAL = (
    "1 validation error detected: Value '100' at 'maxResults' failed to satisfy "
    "constraint: Member must have value less than or equal to 50"
)


def patches(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "Title": f"Update {i}",
            "KBId": f"KB{i}",
            "Classification": "SecurityUpdates",
            "Severity": "Critical",
            "State": "Installed",
            "InstalledTime": 1704067200,
        }
        for i in range(start, start + n)
    ]


def asked(max_results: int = 100, token: str | None = None, **extra: Any) -> dict[str, Any]:
    body = {"InstanceId": NODE, "Filters": [], "MaxResults": max_results, **extra}
    if token:
        body["NextToken"] = token
    return body


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
def test_bad_input_raises_before_any_call(kwargs: dict[str, Any], named: str) -> None:
    ssm = MockSSM([])
    args = {"instance_id": NODE, **kwargs}
    with pytest.raises(
        ValidationError, match=named.replace("[", r"\[").replace("]", r"\]")
    ) as info:
        pf.load_instance_patches(args.pop("instance_id"), client=ssm.client(), **args)
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, PatchframeError)
    assert ssm.requests == []


def test_pages_to_the_last_page() -> None:
    ssm = MockSSM([page(patches(100), "t1"), page(patches(30, 100))])
    df = pf.load_instance_patches(NODE, client=ssm.client())
    assert ssm.bodies == [asked(), asked(token="t1")]
    assert len(df) == 130
    assert df["kb_id"].is_unique
    assert df["instance_id"].unique().tolist() == [NODE]
    assert df["region"].unique().tolist() == [REGION]
    assert str(df["installed_time"].dtype) == "datetime64[ns, UTC]"


def test_one_node_keeps_its_texts_as_sent_and_a_fleet_s_nodes_share_a_table() -> None:
    """A table holding each text once pays in a fleet, whose nodes repeat them; one
    node's columns become its frame at once, so it makes none."""
    ssm = MockSSM([page(patches(3)), page(patches(3))])
    assert fetch_node_patches(ssm.client(), NODE).texts is None
    table: dict[str, str] = {}
    shared = fetch_node_patches(ssm.client(), NODE, texts=table)
    assert shared.texts is table and len(table) > 3


def test_dict_and_list_filters_send_the_same_request() -> None:
    wanted = [
        {"Key": "State", "Values": ["Missing", "Failed"]},
        {"Key": "Severity", "Values": ["Critical"]},
    ]
    ssm = MockSSM([page([]), page([])])
    client = ssm.client()
    pf.load_instance_patches(
        NODE, client=client, filters={"State": ["MISSING", "Failed"], "Severity": ["Critical"]}
    )
    assert pf.load_instance_patches(NODE, client=client, filters=wanted).empty
    assert ssm.bodies == [asked(Filters=wanted)] * 2


def test_falls_back_to_50_when_the_service_refuses_100() -> None:
    ssm = MockSSM(
        [
            error("ValidationException", REFUSAL),
            page(patches(50), "t"),
            page(patches(5, 50)),
            page(patches(1)),
        ]
    )
    client = ssm.client()
    assert len(pf.load_instance_patches(NODE, client=client)) == 55
    # The client remembers: the next node starts at 50 at once.
    assert len(pf.load_instance_patches(NODE, client=client)) == 1
    assert [b["MaxResults"] for b in ssm.bodies] == [100, 50, 50, 50]


def test_a_page_size_the_service_accepts_is_remembered_too() -> None:
    ssm = MockSSM([page(patches(3)), page(patches(3))])
    client = ssm.client()
    pf.load_instance_patches(NODE, client=client)
    pf.load_instance_patches(NODE, client=client)
    assert [b["MaxResults"] for b in ssm.bodies] == [100, 100]


def test_threads_learn_the_page_size_from_one_refused_request() -> None:
    """Workers that start while the first request is out ask for 50 meanwhile."""

    def answer(request: Request) -> tuple[int, dict[str, Any]]:
        time.sleep(0.05)  # every worker starts before the first answer is back
        if request[1]["MaxResults"] > 50:
            return error("ValidationException", REFUSAL)
        return page(patches(2))

    ssm = MockSSM(answer)
    client = ssm.client(max_pool_connections=8)
    threads = [
        threading.Thread(target=pf.load_instance_patches, args=(NODE,), kwargs={"client": client})
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [b["MaxResults"] for b in ssm.bodies].count(100) == 1
    assert len(ssm.requests) == 9


def test_a_probe_that_fails_otherwise_lets_the_next_request_probe() -> None:
    ssm = MockSSM([error("InvalidInstanceId", "gone"), page(patches(1))])
    client = ssm.client()
    with pytest.raises(NodeNotFoundError):
        pf.load_instance_patches(NODE, client=client)
    pf.load_instance_patches(NODE, client=client)
    assert [b["MaxResults"] for b in ssm.bodies] == [100, 100]


def test_an_explicit_page_size_is_not_second_guessed() -> None:
    ssm = MockSSM([error("ValidationException", REFUSAL)])
    with pytest.raises(AWSRequestError, match="ValidationException"):
        pf.load_instance_patches(NODE, client=ssm.client(), page_size=100)
    assert len(ssm.requests) == 1


def test_expired_token_restarts_paging_once_without_double_counting() -> None:
    ssm = MockSSM(
        [
            page(patches(100), "t1"),
            error("InvalidNextToken", "expired"),
            page(patches(100), "t2"),
            page(patches(7, 100)),
        ]
    )
    df = pf.load_instance_patches(NODE, client=ssm.client())
    assert ssm.bodies == [asked(), asked(token="t1"), asked(), asked(token="t2")]
    assert len(df) == 107
    assert df["kb_id"].is_unique


def test_expired_token_twice_is_an_error() -> None:
    ssm = MockSSM([page(patches(100), "t1"), error("InvalidNextToken", "expired")] * 2)
    with pytest.raises(AWSRequestError, match="InvalidNextToken") as info:
        pf.load_instance_patches(NODE, client=ssm.client())
    assert info.value.instance_id == NODE
    assert ssm.unused() == 0


@pytest.mark.parametrize(
    ("code", "status", "cls"),
    [
        ("InvalidInstanceId", 400, NodeNotFoundError),
        ("InvalidFilter", 400, AWSRequestError),
        ("InternalServerError", 500, AWSRequestError),
        ("AccessDeniedException", 400, AWSRequestError),
    ],
)
def test_api_errors_name_the_node_and_carry_aws_message(
    code: str, status: int, cls: type[AWSRequestError]
) -> None:
    ssm = MockSSM([error(code, f"AWS says {code}", status)])
    with pytest.raises(cls) as info:
        pf.load_instance_patches(NODE, client=ssm.client(**ONE_ATTEMPT))
    err = info.value
    assert NODE in str(err) and f"AWS says {code}" in str(err)
    assert (err.code, err.operation, err.instance_id) == (code, "DescribeInstancePatches", NODE)
    assert err.aws_message == f"AWS says {code}"
    assert err.attempts == 1
    assert isinstance(err.__cause__, ClientError)


def test_server_errors_are_retried_and_counted() -> None:
    ssm = MockSSM([error("InternalServerError", "boom", 500)] * 3)
    with pytest.raises(AWSRequestError) as info:
        pf.load_instance_patches(NODE, client=ssm.client(retries={"total_max_attempts": 3}))
    assert info.value.attempts == 3 and len(ssm.requests) == 3


# Over real HTTP: the environment's endpoint, and botocore's retries against a rate limit.


def test_load_instance_patches_honours_aws_endpoint_url(
    wire_fleet: WireFleet, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", pf.sample_client().meta.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEMUL" + wire_fleet.account_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "dummy")
    node = wire_fleet.instances[0]["InstanceId"]
    df = pf.load_instance_patches(node, region=wire_fleet.region)
    assert len(df) == len(wire_fleet.patches[node])


def test_one_node_under_throttling_is_retried_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    fleet = synthetic_fleet(1, seed=4, patches_per_node=300)
    node = fleet.instances[0]["InstanceId"]
    with Emulator(fleet, rate_limit=10, burst=1) as emulator:
        monkeypatch.setenv("AWS_ENDPOINT_URL", emulator.url)
        session = boto3.Session(**emulator.credentials())
        df = pf.load_instance_patches(node, boto3_session=session, region=fleet.region)
        assert emulator.stats.throttled > 0
        assert len(df) == len(fleet.patches[node])


def test_throttling_beyond_the_retry_budget_is_an_error() -> None:
    fleet = synthetic_fleet(1, seed=4, patches_per_node=900)
    node = fleet.instances[0]["InstanceId"]
    with Emulator(fleet, rate_limit=0.5, burst=1) as emulator:
        stingy = emulator.client(
            config=Config(retries={"mode": "standard", "total_max_attempts": 2})
        )
        with pytest.raises(pf.AWSRequestError, match="ThrottlingException") as info:
            pf.load_instance_patches(node, client=stingy)
    assert info.value.code == "ThrottlingException" and info.value.attempts == 2


def test_load_instance_patches_refuses_a_client_that_is_not_an_ssm_client() -> None:
    with pytest.raises(pf.ValidationError, match="is not an SSM client"):
        pf.load_instance_patches("i-0123456789abcdef0", client="ssm")  # type: ignore[arg-type]
