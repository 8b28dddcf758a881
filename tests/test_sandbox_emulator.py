"""The local SSM endpoint, over real HTTP on 127.0.0.1, with real boto3 clients."""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.client
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import botocore.model
import cbor2
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from patchframe._schema import normalise_state
from patchframe.exceptions import ValidationError
from patchframe.sandbox.emulator import Emulator, add_serve_arguments, sample_client
from patchframe.sandbox.sample import WireFleet, synthetic_fleet

WINDOWS_2022 = "i-0e1f2a3b4c5d6e7f8"  # 320 patches
UBUNTU_SNAKE = "i-07e9a1c3e5f7b9d2e"  # states in upper snake case
UNSCANNED = "i-05a7c9e1b3d5f7092"
LOST = "mi-0c2a5e7f9b1d3486a"
NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})
UNVALIDATED = Config(parameter_validation=False, retries={"total_max_attempts": 1})
RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 25})


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator() as running:
        yield running


@pytest.fixture(scope="module")
def truth(emulator: Emulator) -> WireFleet:
    return emulator.fleet()


@pytest.fixture(scope="module")
def ssm(emulator: Emulator) -> Any:
    return emulator.client(config=NO_RETRIES)


def post(
    url: str,
    target: str,
    payload: object,
    *,
    account: str = "123456789012",
    region: str = "eu-west-1",
    content_type: str = "application/x-amz-json-1.1",
    service: str = "ssm",
) -> tuple[int, Any]:
    """Send one request by hand, to see exactly what goes over the wire."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {
        "Content-Type": content_type,
        "Authorization": f"AWS4-HMAC-SHA256 Credential=AKIAEMUL{account}/20240614/{region}"
        f"/{service}/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
    }
    if target:
        headers["X-Amz-Target"] = target
    connection.request("POST", "/", body, headers)
    response = connection.getresponse()
    status, text = response.status, response.read()
    connection.close()
    return status, json.loads(text)


def error_of(call: Callable[[], object]) -> ClientError:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value


def code_of(call: Callable[[], object]) -> str:
    return str(error_of(call).response["Error"]["Code"])


def all_patches(
    client: Any, instance_id: str, page_size: int = 100, **kwargs: Any
) -> list[dict[str, Any]]:
    pages = client.get_paginator("describe_instance_patches").paginate(
        InstanceId=instance_id, PaginationConfig={"PageSize": page_size}, **kwargs
    )
    return [row for page in pages for row in page["Patches"]]


def raw_patches(url: str, instance_id: str, **request: Any) -> tuple[list[dict[str, Any]], int]:
    rows: list[dict[str, Any]] = []
    pages, token = 0, None
    while True:
        payload = {"InstanceId": instance_id, "MaxResults": 100, **request}
        if token:
            payload["NextToken"] = token
        status, answer = post(url, "AmazonSSM.DescribeInstancePatches", payload)
        assert status == 200, answer
        rows += answer["Patches"]
        pages += 1
        token = answer.get("NextToken")
        if not token:
            return rows, pages


def kb_states(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(row["KBId"], row["State"]) for row in rows]


TAGGING = "ResourceGroupsTaggingAPI_20170126"
CBOR = "smithy-rpc-v2-cbor"
PROTOCOLS = ["json", CBOR]  # JSON 1.1, and Smithy RPC v2 CBOR


def tagging(emulator: Emulator, protocol: str = CBOR, **kwargs: Any) -> Any:
    """A Resource Groups Tagging API client speaking ``protocol``.

    The service offers both; botocore picks the first of its own priority list that
    the service offers (JSON 1.1, in botocore 1.44). Putting ``protocol`` first makes
    the client speak it, as a botocore preferring it does.
    """
    order = (protocol, *botocore.model.PRIORITY_ORDERED_SUPPORTED_PROTOCOLS)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.model, "PRIORITY_ORDERED_SUPPORTED_PROTOCOLS", order)
        client = emulator.client("resourcegroupstaggingapi", **kwargs)
    assert client.meta.service_model.resolved_protocol == protocol
    return client


def ec2_arn(
    instance_id: str,
    *,
    account: str = "123456789012",
    region: str = "eu-west-1",
    partition: str = "aws",
) -> str:
    return f"arn:{partition}:ec2:{region}:{account}:instance/{instance_id}"


def mapping(arn: str, tags: dict[str, str]) -> dict[str, Any]:
    """One ResourceTagMapping, as GetResources answers it."""
    return {"ResourceARN": arn, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}


def post_cbor(
    url: str, path: str, payload: object, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    """Send one Smithy RPC v2 CBOR request by hand: the status, headers and decoded body."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    sent = {
        "Content-Type": "application/cbor",
        "smithy-protocol": "rpc-v2-cbor",
        "Authorization": RAW_AUTH.replace("/ssm/", "/tagging/"),
        **(headers or {}),
    }
    body = payload if isinstance(payload, bytes) else cbor2.dumps(payload)
    connection.request("POST", path, body, {k: v for k, v in sent.items() if v})
    response = connection.getresponse()
    status, answer = response.status, response.read()
    got = {k.lower(): v for k, v in response.getheaders()}
    connection.close()
    return status, got, cbor2.loads(answer)


# --------------------------------------------------------------------------- lifecycle


def test_url_needs_a_running_emulator() -> None:
    emulator = Emulator()
    with pytest.raises(RuntimeError, match="start"):
        _ = emulator.url
    with emulator:
        assert emulator.url.startswith("http://127.0.0.1:")
    with pytest.raises(RuntimeError):
        _ = emulator.url


def test_stop_closes_idle_keep_alive_connections() -> None:
    emulator = Emulator().start()
    client = emulator.client(config=NO_RETRIES)
    client.describe_instance_information()
    emulator.stop()
    with pytest.raises((EndpointConnectionError, ConnectionClosedError)):
        client.describe_instance_information()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"error_rate": 1.5}, "error_rate"),
        ({"drop_rate": -0.1}, "drop_rate"),
        ({"expire_rate": 2}, "expire_rate"),
        ({"expire_rate": "0.1"}, "expire_rate must be a number"),
        ({"latency": -1}, "latency"),
        ({"latency": None}, "latency must be a number"),
        ({"rate_limit": 0}, "rate_limit"),
        ({"rate_limit": "40"}, "rate_limit"),
        ({"burst": 0}, "burst"),
        ({"burst": 2.5}, "burst must be a whole number"),
        ({"max_patch_results": 101}, "max_patch_results"),
        ({"max_patch_results": True}, "max_patch_results"),
        ({"latency": math.nan}, "latency must be 0 or more, not nan"),
        ({"error_rate": math.nan}, "error_rate must be between 0 and 1, not nan"),
        ({"rate_limit": math.inf}, "rate_limit"),
        ({"port": 65536}, "port must be between 0 and 65535"),
        ({"port": -1}, "port"),
        ({"fleets": []}, "at least one fleet"),
        ({"fleets": ["sample"]}, "not a WireFleet"),
        ({"fleets": [WireFleet("1" * 12, "us-east-1")] * 2}, "two fleets"),
    ],
)
def test_bad_options_are_refused(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        Emulator(**kwargs)


def test_sample_client_needs_no_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_DEFAULT_REGION",
        "AWS_PROFILE",
    ):
        monkeypatch.delenv(name, raising=False)
    first, second = sample_client(), sample_client()
    assert first.meta.region_name == "eu-west-1"
    assert first.meta.endpoint_url == second.meta.endpoint_url
    assert first.meta.endpoint_url.startswith("http://127.0.0.1:")
    assert len(all_patches(second, WINDOWS_2022)) == 320


def test_sample_client_starts_one_emulator_across_threads() -> None:
    urls: list[str] = []
    threads = [
        threading.Thread(target=lambda: urls.append(sample_client().meta.endpoint_url))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(urls)) == 1


# ---------------------------------------------------------------- DescribeInstanceInformation


def test_instance_information_pages_to_the_ground_truth(
    emulator: Emulator, ssm: Any, truth: WireFleet
) -> None:
    pages = list(
        ssm.get_paginator("describe_instance_information").paginate(
            PaginationConfig={"PageSize": 5}
        )
    )
    assert [len(p["InstanceInformationList"]) for p in pages] == [5, 5, 3]
    ids = [n["InstanceId"] for p in pages for n in p["InstanceInformationList"]]
    assert ids == truth.instance_ids
    assert len(ssm.describe_instance_information()["InstanceInformationList"]) == 13  # 50 a page
    status, answer = post(emulator.url, "AmazonSSM.DescribeInstanceInformation", {})
    assert status == 200 and answer == {"InstanceInformationList": truth.instances}


@pytest.mark.parametrize(
    ("key", "values", "expected"),
    [
        ("PingStatus", ["ConnectionLost"], [LOST]),
        (
            "PlatformTypes",
            ["Windows"],
            [WINDOWS_2022, "i-0b7e2d4f6a8c91023", "i-04c9e1a7b3d5f2068", LOST],
        ),
        ("ResourceType", ["ManagedInstance"], [LOST, "mi-0a1b2c3d4e5f67890"]),
        ("InstanceIds", [UNSCANNED, UBUNTU_SNAKE], [UNSCANNED, UBUNTU_SNAKE]),
        ("AssociationStatus", ["Pending"], [UNSCANNED]),
        ("tag:Environment", ["dev", "staging"], ["i-04c9e1a7b3d5f2068", UNSCANNED]),
        ("tag-key", ["No Such Tag"], []),
    ],
)
def test_instance_information_filters(
    ssm: Any, truth: WireFleet, key: str, values: list[str], expected: list[str]
) -> None:
    answer = ssm.describe_instance_information(Filters=[{"Key": key, "Values": values}])
    found = [n["InstanceId"] for n in answer["InstanceInformationList"]]
    assert sorted(found) == sorted(expected)
    assert found == [i for i in truth.instance_ids if i in found]


def test_instance_information_tag_key_and_agent_version(ssm: Any, truth: WireFleet) -> None:
    grouped = ssm.describe_instance_information(
        Filters=[{"Key": "tag-key", "Values": ["Patch Group"]}]
    )
    expected = [i for i in truth.instance_ids if "Patch Group" in truth.tags[i]]
    assert [n["InstanceId"] for n in grouped["InstanceInformationList"]] == expected
    version = truth.instances[0]["AgentVersion"]
    answer = ssm.describe_instance_information(
        Filters=[{"Key": "AgentVersion", "Values": [version]}]
    )
    assert {n["AgentVersion"] for n in answer["InstanceInformationList"]} == {version}


def test_older_filter_list_in_either_spelling(ssm: Any) -> None:
    online = ssm.describe_instance_information(
        InstanceInformationFilterList=[{"key": "PingStatus", "valueSet": ["Online"]}]
    )
    assert len(online["InstanceInformationList"]) == 12
    both = ssm.describe_instance_information(
        InstanceInformationFilterList=[{"key": "platformTypes", "valueSet": ["Linux"]}],
        Filters=[{"Key": "ResourceType", "Values": ["ManagedInstance"]}],
    )
    assert [n["InstanceId"] for n in both["InstanceInformationList"]] == ["mi-0a1b2c3d4e5f67890"]


def test_instance_information_filtered_paging(ssm: Any) -> None:
    linux = [{"Key": "PlatformTypes", "Values": ["Linux"]}]
    first = ssm.describe_instance_information(Filters=linux, MaxResults=5)
    second = ssm.describe_instance_information(
        Filters=linux, MaxResults=5, NextToken=first["NextToken"]
    )
    assert "NextToken" not in second
    assert len(first["InstanceInformationList"]) + len(second["InstanceInformationList"]) == 9
    other_filters = [{"Key": "PlatformTypes", "Values": ["Windows"]}]
    assert (
        code_of(
            lambda: ssm.describe_instance_information(
                Filters=other_filters, NextToken=first["NextToken"]
            )
        )
        == "InvalidNextToken"
    )


@pytest.mark.parametrize(
    ("request_", "code", "words"),
    [
        ({"MaxResults": 51}, "ValidationException", "'maxResults' failed to satisfy constraint"),
        ({"MaxResults": 4}, "ValidationException", "greater than or equal to 5"),
        ({"Filters": [{"Key": "Colour", "Values": ["red"]}]}, "InvalidFilterKey", "Colour"),
        (
            {"InstanceInformationFilterList": [{"key": "colour", "valueSet": ["red"]}]},
            "InvalidFilterKey",
            "colour",
        ),
        (
            {"Filters": [{"Key": "PingStatus", "Values": ["Asleep"]}]},
            "InvalidInstanceInformationFilterValue",
            "Asleep",
        ),
        (
            {"Filters": [{"Key": "InstanceIds", "Values": ["i-nope"]}]},
            "InvalidInstanceInformationFilterValue",
            "i-nope",
        ),
        (
            {"Filters": [{"Key": "PlatformTypes", "Values": []}]},
            "InvalidInstanceInformationFilterValue",
            "PlatformTypes",
        ),
        ({"NextToken": "bm90IGEgdG9rZW4="}, "InvalidNextToken", "token"),
    ],
)
def test_instance_information_errors(
    emulator: Emulator, request_: dict[str, Any], code: str, words: str
) -> None:
    client = emulator.client(config=UNVALIDATED)
    error = error_of(lambda: client.describe_instance_information(**request_))
    assert error.response["Error"]["Code"] == code
    assert words in error.response["Error"]["Message"]
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400


# ---------------------------------------------------------------- DescribeInstancePatchStates


def test_patch_states_in_batches(emulator: Emulator, ssm: Any, truth: WireFleet) -> None:
    unknown = "i-0123456789abcdef0"
    ids = [*truth.instance_ids, unknown]
    pages = list(
        ssm.get_paginator("describe_instance_patch_states").paginate(
            InstanceIds=ids, PaginationConfig={"PageSize": 10}
        )
    )
    assert [len(p["InstancePatchStates"]) for p in pages] == [10, 2]
    states = [s for p in pages for s in p["InstancePatchStates"]]
    assert [s["InstanceId"] for s in states] == [s["InstanceId"] for s in truth.patch_states]
    assert states[0]["MissingCount"] == truth.patch_states[0]["MissingCount"]
    status, answer = post(
        emulator.url, "AmazonSSM.DescribeInstancePatchStates", {"InstanceIds": ids * 2}
    )
    assert status == 200 and answer == {"InstancePatchStates": truth.patch_states}
    assert ssm.describe_instance_patch_states(InstanceIds=[UNSCANNED])["InstancePatchStates"] == []


@pytest.mark.parametrize(
    ("request_", "words"),
    [
        ({"InstanceIds": [f"i-{n:017x}" for n in range(51)]}, "length less than or equal to 50"),
        ({"InstanceIds": ["i-123"]}, "regular expression pattern"),
        ({"InstanceIds": [WINDOWS_2022], "MaxResults": 101}, "less than or equal to 100"),
        ({"InstanceIds": [WINDOWS_2022], "MaxResults": 9}, "greater than or equal to 10"),
    ],
)
def test_patch_states_validation(emulator: Emulator, request_: dict[str, Any], words: str) -> None:
    client = emulator.client(config=UNVALIDATED)
    error = error_of(lambda: client.describe_instance_patch_states(**request_))
    assert error.response["Error"]["Code"] == "ValidationException"
    assert error.response["Error"]["Message"].startswith("1 validation error detected: Value ")
    assert words in error.response["Error"]["Message"]


# ---------------------------------------------------------------- DescribeInstancePatches


def test_every_node_pages_to_the_ground_truth(emulator: Emulator, truth: WireFleet) -> None:
    emulator.reset_stats()
    for instance_id in truth.instance_ids:
        rows, pages = raw_patches(emulator.url, instance_id)
        assert rows == truth.patches.get(instance_id, [])
        assert pages == max(1, math.ceil(len(rows) / 100))
        assert emulator.stats.pages[instance_id] == pages


@pytest.mark.parametrize("page_size", [10, 50, 100])
def test_boto3_paginator_gets_every_row_once(ssm: Any, truth: WireFleet, page_size: int) -> None:
    rows = all_patches(ssm, WINDOWS_2022, page_size)
    assert kb_states(rows) == kb_states(truth.patches[WINDOWS_2022])
    assert len({row["KBId"] for row in rows}) == len(rows) == 320


def test_timestamps_go_out_as_epoch_seconds(emulator: Emulator, truth: WireFleet) -> None:
    mixed = [
        instance_id
        for instance_id, rows in truth.patches.items()
        if {type(row["InstalledTime"]) for row in rows} == {int, float}
    ]
    rows, _ = raw_patches(emulator.url, mixed[0])
    times = [row["InstalledTime"] for row in rows]
    assert {type(t) for t in times} == {int, float}
    assert times == [row["InstalledTime"] for row in truth.patches[mixed[0]]]
    _, answer = post(emulator.url, "AmazonSSM.DescribeInstancePatches", {"InstanceId": LOST})
    assert len(answer["Patches"]) == 50 and "NextToken" in answer  # 50 a page by default


def test_boto3_parses_the_wire(ssm: Any, truth: WireFleet) -> None:
    rows = all_patches(ssm, "i-0d1f3a5c7e9b24680")
    wire = truth.patches["i-0d1f3a5c7e9b24680"]
    for parsed, sent in zip(rows, wire, strict=True):
        assert parsed["InstalledTime"].timestamp() == pytest.approx(float(sent["InstalledTime"]))
        assert parsed.get("CVEIds") == sent.get("CVEIds")


def test_a_node_never_scanned_has_no_patches(ssm: Any) -> None:
    answer = ssm.describe_instance_patches(InstanceId=UNSCANNED)
    assert answer["Patches"] == [] and "NextToken" not in answer


def test_bad_instance_id_is_a_validation_error(ssm: Any) -> None:
    error = error_of(lambda: ssm.describe_instance_patches(InstanceId="i-123"))
    assert error.response["Error"] == {
        "Code": "ValidationException",
        "Message": "1 validation error detected: Value 'i-123' at 'instanceId' failed to "
        "satisfy constraint: Member must satisfy regular expression pattern: "
        r"(^mi-[0-9a-f]{17}$)|(^i-(\w{8}|\w{17})$)",
    }


def test_unknown_node_is_invalid_instance_id(ssm: Any) -> None:
    error = error_of(lambda: ssm.describe_instance_patches(InstanceId="i-0123456789abcdef0"))
    assert error.response["Error"]["Code"] == "InvalidInstanceId"
    assert "i-0123456789abcdef0" in error.response["Error"]["Message"]


@pytest.mark.parametrize(("size", "words"), [(101, "less than or equal to 100"), (9, "greater")])
def test_patch_page_size_is_checked(emulator: Emulator, size: int, words: str) -> None:
    client = emulator.client(config=UNVALIDATED)
    error = error_of(
        lambda: client.describe_instance_patches(InstanceId=WINDOWS_2022, MaxResults=size)
    )
    message = error.response["Error"]["Message"]
    assert error.response["Error"]["Code"] == "ValidationException"
    assert f"Value '{size}' at 'maxResults'" in message and words in message


def test_a_service_that_rejects_pages_of_100() -> None:
    with Emulator(max_patch_results=50) as emulator:
        client = emulator.client(config=NO_RETRIES)
        error = error_of(
            lambda: client.describe_instance_patches(InstanceId=WINDOWS_2022, MaxResults=100)
        )
        assert error.response["Error"]["Code"] == "ValidationException"
        assert "'maxResults'" in error.response["Error"]["Message"]
        assert "less than or equal to 50" in error.response["Error"]["Message"]
        assert len(all_patches(client, WINDOWS_2022, 50)) == 320


@pytest.mark.parametrize("instance_id", [WINDOWS_2022, UBUNTU_SNAKE])
@pytest.mark.parametrize(
    "spelling",
    [
        ["Missing", "InstalledOther"],
        ["MISSING", "INSTALLED_OTHER"],
        ["Missing", "INSTALLED_OTHER"],
    ],
)
def test_state_filter_takes_either_spelling(
    ssm: Any, truth: WireFleet, instance_id: str, spelling: list[str]
) -> None:
    rows = all_patches(ssm, instance_id, Filters=[{"Key": "State", "Values": spelling}])
    expected = [
        row
        for row in truth.patches[instance_id]
        if normalise_state(row["State"]) in {"MISSING", "INSTALLED_OTHER"}
    ]
    assert kb_states(rows) == kb_states(expected) and rows


def test_filters_combine(ssm: Any, truth: WireFleet) -> None:
    node = "i-0f2b4d6f8a0c1e3a5"
    filters = [
        {"Key": "State", "Values": ["Missing", "Failed"]},
        {"Key": "Classification", "Values": ["Security"]},
        {"Key": "Severity", "Values": ["Critical", "Important"]},
    ]
    rows = all_patches(ssm, node, 10, Filters=filters)
    expected = [
        row
        for row in truth.patches[node]
        if row["State"] in {"Missing", "Failed"}
        and row["Classification"] == "Security"
        and row["Severity"] in {"Critical", "Important"}
    ]
    assert kb_states(rows) == kb_states(expected) and rows
    kb_id = truth.patches[node][7]["KBId"]
    one = ssm.describe_instance_patches(
        InstanceId=node, Filters=[{"Key": "KBId", "Values": [kb_id]}]
    )
    assert [row["KBId"] for row in one["Patches"]] == [kb_id]


@pytest.mark.parametrize(
    ("filters", "code"),
    [
        ([{"Key": "Colour", "Values": ["red"]}], "InvalidFilter"),
        ([{"Key": "State", "Values": ["Sideways"]}], "InvalidFilter"),
        ([{"Key": "Severity", "Values": []}], "InvalidFilter"),
        ([{"Key": "Severity", "Values": ["Low"]}] * 6, "ValidationException"),
    ],
)
def test_bad_patch_filters(ssm: Any, filters: list[dict[str, Any]], code: str) -> None:
    call = functools.partial(
        ssm.describe_instance_patches, InstanceId=WINDOWS_2022, Filters=filters
    )
    assert code_of(call) == code


def test_next_tokens_are_bound_to_their_request(ssm: Any) -> None:
    first = ssm.describe_instance_patches(InstanceId=WINDOWS_2022, MaxResults=100)
    token = first["NextToken"]
    second = ssm.describe_instance_patches(
        InstanceId=WINDOWS_2022, MaxResults=100, NextToken=token
    )
    assert second["Patches"][0] != first["Patches"][0]
    describe = functools.partial(ssm.describe_instance_patches, MaxResults=100)
    missing = [{"Key": "State", "Values": ["Missing"]}]
    for call in (
        functools.partial(describe, InstanceId="i-0b7e2d4f6a8c91023", NextToken=token),
        functools.partial(describe, InstanceId=WINDOWS_2022, NextToken=token, Filters=missing),
        functools.partial(describe, InstanceId=WINDOWS_2022, NextToken=token[:-6] + "AAAAAA"),
        functools.partial(describe, InstanceId=WINDOWS_2022, NextToken="%%%"),
    ):
        assert code_of(call) == "InvalidNextToken"


def test_unknown_operations_and_bad_bodies(emulator: Emulator, ssm: Any) -> None:
    assert code_of(lambda: ssm.describe_patch_baselines()) == "UnknownOperationException"
    status, answer = post(emulator.url, "AmazonSSM.Frobnicate", {})
    assert status == 400
    assert answer["__type"] == "com.amazon.coral.service#UnknownOperationException"
    status, answer = post(emulator.url, "", {})
    assert status == 400 and answer["__type"].endswith("UnknownOperationException")
    status, answer = post(emulator.url, "AmazonSSM.DescribeInstancePatches", b"{not json")
    assert (status, answer["__type"]) == (400, "SerializationException")
    status, answer = post(emulator.url, "AmazonSSM.DescribeInstancePatches", {})
    assert answer["message"].endswith("Member must not be null")


def test_stats_count_requests_per_operation_across_threads(truth: WireFleet) -> None:
    with Emulator(truth) as emulator:
        client = emulator.client(config=Config(max_pool_connections=8))

        def work() -> None:
            for _ in range(5):
                client.describe_instance_patches(InstanceId=LOST, MaxResults=100)
                client.describe_instance_patch_states(InstanceIds=[LOST])

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stats = emulator.stats
        assert stats.requests == {"DescribeInstancePatches": 40, "DescribeInstancePatchStates": 40}
        assert stats.pages == {LOST: 40} and stats.total == 80
        emulator.reset_stats()
        assert emulator.stats.total == 0 and emulator.stats.pages == {}


# --------------------------------------------------------------------------- accounts and regions


@pytest.fixture(scope="module")
def places() -> Iterator[Emulator]:
    fleets = [
        synthetic_fleet(
            5, seed=1, patches_per_node=30, account_id="111111111111", region="us-east-1"
        ),
        synthetic_fleet(
            4, seed=1, patches_per_node=30, account_id="111111111111", region="eu-central-1"
        ),
        synthetic_fleet(
            3, seed=1, patches_per_node=30, account_id="222222222222", region="us-east-1"
        ),
    ]
    with Emulator(fleets) as emulator:
        yield emulator


@pytest.mark.parametrize(
    ("account", "region", "nodes"),
    [
        ("111111111111", "us-east-1", 5),
        ("111111111111", "eu-central-1", 4),
        ("222222222222", "us-east-1", 3),
        ("222222222222", "eu-central-1", 0),
        ("333333333333", "us-east-1", 0),
    ],
)
def test_each_account_and_region_sees_its_own_fleet(
    places: Emulator, account: str, region: str, nodes: int
) -> None:
    client = places.client(account_id=account, region=region)
    found = client.describe_instance_information()["InstanceInformationList"]
    truth = places.fleet(account, region)
    assert [n["InstanceId"] for n in found] == truth.instance_ids
    assert len(found) == nodes
    if nodes:
        node = truth.instance_ids[0]
        assert kb_states(all_patches(client, node)) == kb_states(truth.patches.get(node, []))
        other = places.client(account_id="222222222222" if account != "222222222222" else None)
        assert (
            code_of(lambda: other.describe_instance_patches(InstanceId=node))
            == "InvalidInstanceId"
        )


def test_sts_tells_each_client_its_account(places: Emulator) -> None:
    for account in ("111111111111", "222222222222", "444455556666"):
        identity = places.client("sts", account_id=account).get_caller_identity()
        assert identity["Account"] == account
        assert identity["Arn"].startswith(f"arn:aws:iam::{account}:")
    assert places.client("sts").get_caller_identity()["Account"] == "111111111111"


def test_any_other_key_speaks_for_the_first_account(places: Emulator) -> None:
    session = boto3.session.Session(
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="x",
        region_name="us-east-1",
    )
    ssm = session.client("ssm", endpoint_url=places.url)
    found = ssm.describe_instance_information()["InstanceInformationList"]
    assert [n["InstanceId"] for n in found] == places.fleet().instance_ids
    sts = session.client("sts", endpoint_url=places.url)
    assert sts.get_caller_identity()["Account"] == "111111111111"


def test_defaults_and_credentials(places: Emulator) -> None:
    assert (places.fleet().account_id, places.fleet().region) == ("111111111111", "us-east-1")
    assert places.fleet("111111111111", "eu-central-1").region == "eu-central-1"
    assert places.fleet("999999999999").instances == []
    keys = places.credentials("222222222222")
    assert (
        keys["aws_access_key_id"].endswith("222222222222") and len(keys["aws_access_key_id"]) == 20
    )
    assert places.credentials()["aws_access_key_id"].endswith("111111111111")
    with pytest.raises(ValidationError, match="12 digits"):
        places.credentials("12")
    assert places.client(account_id="111111111111").meta.region_name == "us-east-1"


def test_sts_answers_only_caller_identity_and_assume_role(places: Emulator) -> None:
    host, port = places.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request(
        "POST",
        "/",
        "Action=GetSessionToken&Version=2011-06-15",
        {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    response = connection.getresponse()
    assert response.status == 400 and b"<Code>InvalidAction</Code>" in response.read()


# --------------------------------------------------------------------------- faults

SMALL = synthetic_fleet(3, seed=4, patches_per_node=40, region="eu-west-1")


def load_small(client: Any) -> dict[str, list[tuple[str, str]]]:
    return {i: kb_states(all_patches(client, i, 10)) for i in SMALL.instance_ids}


def expected_small() -> dict[str, list[tuple[str, str]]]:
    return {i: kb_states(SMALL.patches.get(i, [])) for i in SMALL.instance_ids}


def test_latency_delays_every_request() -> None:
    with Emulator(SMALL, latency=0.25) as emulator:
        client = emulator.client()
        started = time.perf_counter()
        client.describe_instance_information()
        emulator.client("sts").get_caller_identity()
        assert time.perf_counter() - started >= 0.5


def test_every_answer_leaves_the_latency_after_its_request() -> None:
    latency = 0.25
    with Emulator(SMALL, latency=latency) as emulator:
        pool = Config(max_pool_connections=8, retries={"total_max_attempts": 1})
        ssm, ec2 = emulator.client(config=pool), emulator.client("ec2", config=pool)
        sts, tags = emulator.client("sts", config=pool), tagging(emulator, config=pool)
        arns = [ec2_arn(i, account=SMALL.account_id) for i in SMALL.instance_ids]

        def refused() -> None:
            with pytest.raises(ClientError):
                ssm.describe_instance_patches(InstanceId="i-00000000000000000")

        calls: list[Callable[[], object]] = [
            ssm.describe_instance_information,
            lambda: ec2.describe_tags(),
            sts.get_caller_identity,
            lambda: tags.get_resources(ResourceARNList=arns),
            refused,
        ]
        for call in calls:  # connections open, models load: the client's own first costs
            call()
        took: list[float] = []

        def work(call: Callable[[], object]) -> None:
            for _ in range(3):
                started = time.perf_counter()
                call()
                took.append(time.perf_counter() - started)

        threads = [threading.Thread(target=work, args=(call,)) for call in calls * 2]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(took) == 30
    assert all(latency <= t < latency + 0.15 for t in took), sorted(took)


def test_the_latency_counts_from_the_request_line() -> None:
    """A request whose headers come 0.3 s after its request line is answered
    ``latency`` after the line, as a service's response time counts from the first
    byte in, not latency after its body was read."""
    body = json.dumps({"InstanceId": SMALL.instance_ids[0]}).encode()
    with Emulator(SMALL, latency=0.5) as emulator:
        host, port = emulator.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as connection:
            started = time.perf_counter()
            connection.sendall(b"POST / HTTP/1.1\r\n")
            time.sleep(0.3)
            connection.sendall(
                "Host: x\r\nX-Amz-Target: AmazonSSM.DescribeInstancePatches\r\n"
                f"Authorization: {RAW_AUTH}\r\nContent-Type: application/x-amz-json-1.1\r\n"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            answer = http.client.HTTPResponse(connection)
            answer.begin()
            took = time.perf_counter() - started
    assert answer.status == 200
    assert 0.5 <= took < 0.7, took


def test_throttling_without_and_with_retries() -> None:
    with Emulator(SMALL, rate_limit=2, burst=2) as emulator:
        client = emulator.client(config=NO_RETRIES)
        codes = []
        for _ in range(10):
            try:
                client.describe_instance_information()
                codes.append("ok")
            except ClientError as error:
                codes.append(error.response["Error"]["Code"])
                assert error.response["Error"]["Message"] == "Rate exceeded"
                assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert codes[:2] == ["ok", "ok"] and "ThrottlingException" in codes
        assert emulator.stats.throttled == codes.count("ThrottlingException")
    with Emulator(SMALL, rate_limit=10, burst=2) as emulator:
        assert load_small(emulator.client(config=RETRIES)) == expected_small()
        assert emulator.stats.throttled > 0


def test_the_rate_limit_changes_while_serving() -> None:
    def outcomes(client: Any, n: int) -> list[str]:
        seen = []
        for _ in range(n):
            try:
                client.describe_instance_information()
                seen.append("ok")
            except ClientError as error:
                seen.append(error.response["Error"]["Code"])
        return seen

    with Emulator(SMALL, burst=1) as emulator:
        client = emulator.client(config=NO_RETRIES)
        assert outcomes(client, 3) == ["ok"] * 3
        emulator.rate_limit = 0.5  # one request, then one every two seconds
        assert outcomes(client, 3) == ["ok", "ThrottlingException", "ThrottlingException"]
        emulator.rate_limit = 1000  # at once: a token is back within a millisecond
        time.sleep(0.01)
        assert outcomes(client, 1) == ["ok"]
        emulator.rate_limit = None
        assert outcomes(client, 5) == ["ok"] * 5
        assert emulator.rate_limit is None and emulator.stats.throttled == 2
        with pytest.raises(ValidationError, match="rate_limit"):
            emulator.rate_limit = -1


def test_each_account_and_region_has_its_own_bucket() -> None:
    fleets = [SMALL, synthetic_fleet(2, seed=1, patches_per_node=5, account_id="111111111111")]
    with Emulator(fleets, rate_limit=0.5, burst=2) as emulator:
        for account in (SMALL.account_id, "111111111111"):
            client = emulator.client(account_id=account, config=NO_RETRIES)
            client.describe_instance_information()
            client.describe_instance_information()
        assert emulator.stats.throttled == 0


def test_internal_errors_without_and_with_retries() -> None:
    with Emulator(SMALL, error_rate=0.3, seed=1) as emulator:
        client = emulator.client(config=NO_RETRIES)
        errors = []
        for _ in range(20):
            try:
                client.describe_instance_patch_states(InstanceIds=SMALL.instance_ids)
            except ClientError as error:
                errors.append(error)
        assert errors and emulator.stats.errors == len(errors)
        assert {e.response["Error"]["Code"] for e in errors} == {"InternalServerError"}
        assert {e.response["ResponseMetadata"]["HTTPStatusCode"] for e in errors} == {500}
        assert load_small(emulator.client(config=RETRIES)) == expected_small()


def test_dropped_connections_without_and_with_retries() -> None:
    with Emulator(SMALL, drop_rate=0.3, seed=2) as emulator:
        client = emulator.client(config=NO_RETRIES)
        dropped = 0
        for _ in range(20):
            try:
                client.describe_instance_information()
            except ConnectionClosedError:
                dropped += 1
        assert dropped and emulator.stats.dropped == dropped
        assert load_small(emulator.client(config=RETRIES)) == expected_small()


def test_expired_tokens_and_restarting_pagination() -> None:
    node = max(SMALL.patches, key=lambda i: len(SMALL.patches[i]))
    with Emulator(SMALL, expire_rate=0.4, seed=3) as emulator:
        client = emulator.client(config=NO_RETRIES)
        restarts = 0
        while True:
            try:
                rows = all_patches(client, node, 10)
                break
            except ClientError as error:
                assert error.response["Error"]["Code"] == "InvalidNextToken"
                assert "expired" in error.response["Error"]["Message"]
                restarts += 1
        assert restarts and emulator.stats.expired == restarts
        assert kb_states(rows) == kb_states(SMALL.patches[node])


def outcomes(**faults: Any) -> list[str]:
    with Emulator(SMALL, seed=9, **faults) as emulator:
        client = emulator.client(config=NO_RETRIES)
        seen = []
        for _ in range(30):
            try:
                client.describe_instance_information()
                seen.append("ok")
            except ClientError as error:
                seen.append(error.response["Error"]["Code"])
            except ConnectionClosedError:
                seen.append("dropped")
        return seen


def test_faults_are_deterministic_given_the_seed() -> None:
    first = outcomes(error_rate=0.2, drop_rate=0.2)
    assert first == outcomes(error_rate=0.2, drop_rate=0.2)
    assert {"ok", "dropped", "InternalServerError"} == set(first)


def test_faults_never_touch_the_ground_truth() -> None:
    with Emulator(SMALL, error_rate=0.2, drop_rate=0.1, expire_rate=0.1) as emulator:
        client = emulator.client(config=NO_RETRIES)
        for _ in range(20):
            with contextlib.suppress(ClientError, ConnectionClosedError):
                client.describe_instance_patches(InstanceId=SMALL.instance_ids[0], MaxResults=10)
        assert emulator.fleet() == SMALL


# --------------------------------------------------------------------------- command line


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_from_the_command_line(stop: signal.Signals) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "patchframe.sandbox.emulator", "--synthetic", "5", "--seed", "3"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        prefix = "patchframe emulator listening on http://127.0.0.1:"
        assert line.startswith(prefix), line
        url = line.rsplit(" ", 1)[1]
        client = boto3.session.Session().client(
            "ssm",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="AKIAEMUL123456789012",
            aws_secret_access_key="x",
        )
        found = client.describe_instance_information()["InstanceInformationList"]
        assert [n["InstanceId"] for n in found] == synthetic_fleet(5, seed=3).instance_ids
        process.send_signal(stop)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_serve_arguments() -> None:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    args = parser.parse_args(
        [
            *("--host", "127.0.0.1", "--port", "0", "--seed", "4", "--latency", "0.2"),
            *("--rate-limit", "40", "--burst", "3", "--error-rate", "0.1", "--drop-rate", "0.05"),
            *("--expire-rate", "0.02", "--max-patch-results", "50", "--deny-tags"),
        ]
    )
    assert vars(args) == {
        "host": "127.0.0.1",
        "port": 0,
        "synthetic": None,
        "organization": None,
        "seed": 4,
        "latency": 0.2,
        "rate_limit": 40.0,
        "burst": 3,
        "error_rate": 0.1,
        "drop_rate": 0.05,
        "expire_rate": 0.02,
        "max_patch_results": 50,
        "deny_tags": True,
    }


@pytest.mark.skipif(shutil.which("aws") is None, reason="the AWS CLI is not installed")
def test_the_aws_cli_works_against_it(emulator: Emulator, truth: WireFleet) -> None:
    env = {
        **os.environ,
        **{k.upper(): v for k, v in emulator.credentials().items()},
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    env.pop("AWS_PROFILE", None)
    command = ["aws", "--endpoint-url", emulator.url, "--region", "eu-west-1", "--output", "json"]
    result = subprocess.run(
        [*command, "ssm", "describe-instance-patches", "--instance-id", WINDOWS_2022],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode and "No module named" in result.stderr:
        pytest.skip("the AWS CLI on PATH is broken")
    assert result.returncode == 0, result.stderr
    assert kb_states(json.loads(result.stdout)["Patches"]) == kb_states(
        truth.patches[WINDOWS_2022]
    )


# --------------------------------------------------------------------------- tags


def ec2_tag_set(answer: dict[str, Any]) -> dict[str, dict[str, str]]:
    tags: dict[str, dict[str, str]] = {}
    for tag in answer["Tags"]:
        assert tag["ResourceType"] == "instance"
        tags.setdefault(tag["ResourceId"], {})[tag["Key"]] = tag["Value"]
    return tags


def test_describe_tags_serves_every_ec2_node_and_no_hybrid_one(
    emulator: Emulator, truth: WireFleet
) -> None:
    ec2 = emulator.client("ec2", config=NO_RETRIES)
    served = ec2_tag_set(ec2.describe_tags())
    expected = {i: tags for i, tags in truth.tags.items() if i.startswith("i-")}
    assert served == expected and len(expected) == 11


def test_describe_tags_filters(emulator: Emulator, truth: WireFleet) -> None:
    ec2 = emulator.client("ec2", config=NO_RETRIES)
    ids = [WINDOWS_2022, UNSCANNED, LOST]  # a hybrid id is no EC2 resource
    by_id = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": ids}])
    assert ec2_tag_set(by_id) == {i: truth.tags[i] for i in ids[:2]}
    teams = ec2.describe_tags(
        Filters=[{"Name": "key", "Values": ["Team"]}, {"Name": "value", "Values": ["data"]}]
    )
    assert set(ec2_tag_set(teams)) == {
        i for i, t in truth.tags.items() if i.startswith("i-") and t.get("Team") == "data"
    }
    other = ec2.describe_tags(Filters=[{"Name": "resource-type", "Values": ["volume"]}])
    assert other["Tags"] == []


def test_describe_tags_pages_with_next_token(emulator: Emulator, truth: WireFleet) -> None:
    ec2 = emulator.client("ec2", config=NO_RETRIES)
    pages = list(ec2.get_paginator("describe_tags").paginate(PaginationConfig={"PageSize": 5}))
    assert [len(p["Tags"]) for p in pages][:-1] == [5] * (len(pages) - 1)
    assert len(pages) == math.ceil(sum(len(t) for i, t in truth.tags.items() if i[:2] == "i-") / 5)
    merged = ec2_tag_set({"Tags": [t for p in pages for t in p["Tags"]]})
    assert merged == {i: t for i, t in truth.tags.items() if i.startswith("i-")}


@pytest.mark.parametrize(
    ("kwargs", "code", "words"),
    [
        (
            {"Filters": [{"Name": "resource-id", "Values": [f"i-{n:08x}" for n in range(201)]}]},
            "FilterLimitExceeded",
            "maximum number of filter values specified on a single call is 200",
        ),
        ({"MaxResults": 4}, "InvalidParameterValue", "between 5 and 1000"),
        ({"MaxResults": 1001}, "InvalidParameterValue", "between 5 and 1000"),
        ({"Filters": [{"Name": "owner", "Values": ["me"]}]}, "InvalidParameterValue", "owner"),
        ({"NextToken": "not-a-token"}, "InvalidNextToken", "isn't valid"),
    ],
)
def test_describe_tags_refuses_what_ec2_refuses(
    emulator: Emulator, kwargs: dict[str, Any], code: str, words: str
) -> None:
    ec2 = emulator.client("ec2", config=UNVALIDATED)
    with pytest.raises(ClientError) as caught:
        ec2.describe_tags(**kwargs)
    assert caught.value.response["Error"]["Code"] == code
    assert words in caught.value.response["Error"]["Message"]


def test_two_hundred_filter_values_are_allowed(emulator: Emulator) -> None:
    ec2 = emulator.client("ec2", config=NO_RETRIES)
    ids = [WINDOWS_2022, *(f"i-{n:08x}" for n in range(199))]
    assert len(ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": ids}])["Tags"]) == 4


def test_tags_keep_case_spaces_and_any_unicode() -> None:
    fleet = synthetic_fleet(2, seed=1, patches_per_node=5)
    ec2_id = next(i for i in fleet.instance_ids if i.startswith("i-"))
    odd = {"Équipe": "Zahlungsverkehr ü", "cost center": "<&> 42", "team": "lower", "Empty": ""}
    fleet.tags[ec2_id] = odd
    with Emulator(fleet) as emulator:
        served = emulator.client("ec2").describe_tags(
            Filters=[{"Name": "resource-id", "Values": [ec2_id]}]
        )
    assert ec2_tag_set(served) == {ec2_id: odd}


def test_list_tags_for_resource_serves_hybrid_nodes(emulator: Emulator, truth: WireFleet) -> None:
    ssm = emulator.client(config=NO_RETRIES)
    answer = ssm.list_tags_for_resource(ResourceType="ManagedInstance", ResourceId=LOST)
    assert {t["Key"]: t["Value"] for t in answer["TagList"]} == truth.tags[LOST]
    for kind, resource, code in [
        ("ManagedInstance", WINDOWS_2022, "InvalidResourceId"),  # EC2 ids are not SSM's
        ("ManagedInstance", "mi-00000000000000000", "InvalidResourceId"),
        ("Instance", LOST, "ValidationException"),
    ]:
        with pytest.raises(ClientError) as caught:
            emulator.client(config=UNVALIDATED).list_tags_for_resource(
                ResourceType=kind, ResourceId=resource
            )
        assert caught.value.response["Error"]["Code"] == code


def test_deny_tags_refuses_both_tag_calls_as_aws_does() -> None:
    with Emulator(deny_tags=True) as emulator:
        ec2 = emulator.client("ec2", config=NO_RETRIES)
        with pytest.raises(ClientError) as caught:
            ec2.describe_tags()
        error = caught.value.response
        assert error["Error"]["Code"] == "UnauthorizedOperation"
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert "ec2:DescribeTags" in error["Error"]["Message"]
        ssm = emulator.client(config=NO_RETRIES)
        with pytest.raises(ClientError) as caught:
            ssm.list_tags_for_resource(ResourceType="ManagedInstance", ResourceId=LOST)
        assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
        assert ssm.describe_instance_information()["InstanceInformationList"]  # the rest works
        emulator.deny_tags = False
        assert ec2.describe_tags()["Tags"]


def test_ec2_answers_only_describe_tags(emulator: Emulator) -> None:
    ec2 = emulator.client("ec2", config=NO_RETRIES)
    with pytest.raises(ClientError) as caught:
        ec2.describe_instances()
    assert caught.value.response["Error"]["Code"] == "InvalidAction"


def test_ec2_is_throttled_as_ec2_throttles_and_retried() -> None:
    with Emulator(rate_limit=0.1, burst=1) as emulator:
        ec2 = emulator.client("ec2", config=NO_RETRIES)
        ec2.describe_tags()
        with pytest.raises(ClientError) as caught:
            ec2.describe_tags()
        assert caught.value.response["Error"]["Code"] == "RequestLimitExceeded"
        assert emulator.stats.throttled == 1
    with Emulator(rate_limit=0.1, burst=1) as emulator:  # each API has its own limit
        emulator.client("ec2", config=NO_RETRIES).describe_tags()
        emulator.client(config=NO_RETRIES).describe_instance_information()
        assert emulator.stats.throttled == 0
    with Emulator(error_rate=0.5, seed=2) as flaky:
        ec2 = flaky.client("ec2", config=RETRIES)
        answers = [len(ec2.describe_tags()["Tags"]) for _ in range(6)]
        assert answers == [answers[0]] * 6 and answers[0] and flaky.stats.errors > 0


# --------------------------------------------------------------------------- tagging API


@pytest.fixture(scope="module", params=PROTOCOLS)
def tagger(emulator: Emulator, request: pytest.FixtureRequest) -> Any:
    return tagging(emulator, request.param, config=UNVALIDATED)


def test_get_resources_answers_the_tags_of_ec2_nodes_by_arn(
    emulator: Emulator, truth: WireFleet, tagger: Any
) -> None:
    ec2_ids = [i for i in reversed(truth.instance_ids) if i.startswith("i-")]
    nothing = [
        ec2_arn(LOST),  # a hybrid node is no EC2 instance
        f"arn:aws:ssm:eu-west-1:123456789012:managed-instance/{LOST}",
        ec2_arn("i-00000000000000000"),
        ec2_arn(WINDOWS_2022, account="111122223333"),
        ec2_arn(WINDOWS_2022, region="us-east-1"),
        f"arn:aws:ec2:eu-west-1:123456789012:volume/{WINDOWS_2022}",
        "arn:aws:s3:::patch-reports",
    ]
    arns = [ec2_arn(i) for i in ec2_ids]
    answer = tagger.get_resources(ResourceARNList=[*nothing[:3], *arns, *nothing[3:]])
    assert answer["PaginationToken"] == ""
    assert answer["ResourceTagMappingList"] == [
        mapping(arn, truth.tags[i]) for arn, i in zip(arns, ec2_ids, strict=True)
    ]
    assert len(ec2_ids) == 11
    # Either protocol really went over the wire.
    headers = answer["ResponseMetadata"]["HTTPHeaders"]
    cbor = tagger.meta.service_model.resolved_protocol == CBOR
    assert headers["content-type"] == (
        "application/cbor" if cbor else "application/x-amz-json-1.1"
    )
    assert headers.get("smithy-protocol") == ("rpc-v2-cbor" if cbor else None)


def test_get_resources_leaves_out_untagged_nodes_and_answers_each_once() -> None:
    fleet = synthetic_fleet(4, seed=1, patches_per_node=5)
    bare, empty, tagged, *_ = fleet.instance_ids
    del fleet.tags[bare]
    fleet.tags[empty] = {}
    with Emulator(fleet) as emulator:
        client = tagging(emulator, config=NO_RETRIES)
        arns = [
            ec2_arn(i, account=fleet.account_id, region=fleet.region)
            for i in (bare, tagged, empty, tagged)
        ]
        answer = client.get_resources(ResourceARNList=arns)
        assert answer["ResourceTagMappingList"] == [mapping(arns[1], fleet.tags[tagged])]
        assert emulator.stats.requests == {"GetResources": 1}


ONE = [ec2_arn(WINDOWS_2022)]


@pytest.mark.parametrize(
    ("request_", "words"),
    [
        ({"ResourceARNList": []}, "ResourceARNList must hold 1 to 100 ARNs, not 0"),
        ({"ResourceARNList": ONE * 101}, "ResourceARNList must hold 1 to 100 ARNs, not 101"),
        *(
            (
                {"ResourceARNList": ONE, member: value},
                f"You can't specify both ResourceARNList and {member}",
            )
            for member, value in [
                ("ResourceTypeFilters", ["ec2:instance"]),
                ("TagFilters", [{"Key": "Team", "Values": ["web"]}]),
                ("ResourcesPerPage", 50),
                ("TagsPerPage", 100),
                ("PaginationToken", "token"),
            ]
        ),
        ({"ResourceARNList": [*ONE, WINDOWS_2022]}, f"'{WINDOWS_2022}' is not an ARN"),
        ({"ResourceARNList": ["arn:aws:ec2"]}, "'arn:aws:ec2' is not an ARN"),
        (
            {"ResourceARNList": [ec2_arn(WINDOWS_2022, partition="aws-cn")]},
            "partition of arn:aws-cn:ec2:eu-west-1:123456789012:instance/"
            f"{WINDOWS_2022} is aws-cn, not aws",
        ),
        ({}, "serves GetResources with a ResourceARNList (1 to 100 ARNs) only"),
        ({"ResourceTypeFilters": ["ec2:instance"]}, "with a ResourceARNList"),
    ],
)
def test_get_resources_refuses_what_aws_refuses(
    tagger: Any, request_: dict[str, Any], words: str
) -> None:
    error = error_of(lambda: tagger.get_resources(**request_)).response
    assert error["Error"]["Code"] == "InvalidParameterException"
    assert words in error["Error"]["Message"]
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_get_resources_takes_a_hundred_arns(tagger: Any) -> None:
    arns = [*(ec2_arn(f"i-{n:017x}") for n in range(99)), *ONE]
    mappings = tagger.get_resources(ResourceARNList=arns)["ResourceTagMappingList"]
    assert [m["ResourceARN"] for m in mappings] == ONE


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_deny_tags_refuses_get_resources_as_aws_does(protocol: str) -> None:
    with Emulator(deny_tags=True) as emulator:
        client = tagging(emulator, protocol, config=NO_RETRIES)
        error = error_of(lambda: client.get_resources(ResourceARNList=ONE)).response
        assert error["Error"]["Code"] == "AccessDeniedException"
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert error["Error"]["Message"] == (
            "User: arn:aws:iam::123456789012:user/patchframe is not authorized to perform: "
            "tag:GetResources because no identity-based policy allows the tag:GetResources "
            "action"
        )
        emulator.deny_tags = False
        assert client.get_resources(ResourceARNList=ONE)["ResourceTagMappingList"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_get_resources_is_throttled_as_tagging_throttles_and_retried(protocol: str) -> None:
    with Emulator(rate_limit=0.1, burst=1) as emulator:
        client = tagging(emulator, protocol, config=NO_RETRIES)
        client.get_resources(ResourceARNList=ONE)
        error = error_of(lambda: client.get_resources(ResourceARNList=ONE)).response
        assert (error["Error"]["Code"], error["Error"]["Message"]) == (
            "ThrottledException",
            "Rate exceeded",
        )
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
        # Each API has its own limit.
        emulator.client(config=NO_RETRIES).describe_instance_information()
        emulator.client("ec2", config=NO_RETRIES).describe_tags()
        assert emulator.stats.throttled == 1
        assert emulator.stats.requests["GetResources"] == 2
    with Emulator(rate_limit=20, burst=1) as emulator:
        client = tagging(emulator, protocol, config=RETRIES)
        answers = [client.get_resources(ResourceARNList=ONE) for _ in range(6)]
        assert all(a["ResourceTagMappingList"] for a in answers)
        assert emulator.stats.throttled > 0  # botocore retries ThrottledException


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_get_resources_fails_and_drops_as_ssm_does(protocol: str) -> None:
    with Emulator(error_rate=0.3, drop_rate=0.2, seed=5) as emulator:
        client = tagging(emulator, protocol, config=NO_RETRIES)
        seen = []
        for _ in range(20):
            try:
                client.get_resources(ResourceARNList=ONE)
                seen.append("ok")
            except ClientError as error:
                seen.append(error.response["Error"]["Code"])
                assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 500
            except ConnectionClosedError:
                seen.append("dropped")
        assert set(seen) == {"ok", "InternalServiceException", "dropped"}
        stats = emulator.stats
        assert stats.errors == seen.count("InternalServiceException")
        assert stats.dropped == seen.count("dropped")
        steady = tagging(emulator, protocol, config=RETRIES)
        answers = [steady.get_resources(ResourceARNList=ONE) for _ in range(5)]
        assert all(a["ResourceTagMappingList"] for a in answers)


def test_tagging_answers_only_get_resources(emulator: Emulator, tagger: Any) -> None:
    assert code_of(lambda: tagger.get_tag_keys()) == "UnknownOperationException"
    path = f"/service/{TAGGING}/operation/TagResources"
    status, _, answer = post_cbor(emulator.url, path, {})
    assert status == 400
    assert answer == {
        "__type": "com.amazon.coral.service#UnknownOperationException",
        "message": f"Unknown operation {TAGGING}.TagResources",
    }
    status, _, answer = post_cbor(emulator.url, "/service/Other/operation/GetResources", {})
    assert status == 400 and answer["__type"].endswith("UnknownOperationException")


def test_get_resources_in_either_protocol_by_hand(emulator: Emulator, truth: WireFleet) -> None:
    request = {"ResourceARNList": [ec2_arn(LOST), ec2_arn(UNSCANNED), ec2_arn(WINDOWS_2022)]}
    expected = {
        "PaginationToken": "",
        "ResourceTagMappingList": [
            mapping(ec2_arn(UNSCANNED), truth.tags[UNSCANNED]),
            mapping(ec2_arn(WINDOWS_2022), truth.tags[WINDOWS_2022]),
        ],
    }
    # JSON 1.1, as older botocore speaks it.
    status, answer = post(emulator.url, f"{TAGGING}.GetResources", request, service="tagging")
    assert (status, answer) == (200, expected)
    # Smithy RPC v2 CBOR, as botocore may speak it.
    status, headers, answer = post_cbor(
        emulator.url, f"/service/{TAGGING}/operation/GetResources", request
    )
    assert (status, answer) == (200, expected)
    assert headers["content-type"] == "application/cbor"
    assert headers["smithy-protocol"] == "rpc-v2-cbor"


@pytest.mark.parametrize(
    ("body", "headers", "words"),
    [
        (b"\xff", {}, "not valid CBOR"),
        (cbor2.dumps(["a", "list"]), {}, "must be a CBOR map"),
        (cbor2.dumps({}), {"smithy-protocol": ""}, "smithy-protocol header is None"),
        (cbor2.dumps({}), {"Content-Type": "application/json"}, "expected 'application/cbor'"),
        (cbor2.dumps({"ResourceARNList": "arn"}), {}, "must be a list"),
    ],
)
def test_a_cbor_request_that_is_not_one_gets_a_cbor_answer(
    emulator: Emulator, body: bytes, headers: dict[str, str], words: str
) -> None:
    path = f"/service/{TAGGING}/operation/GetResources"
    status, got, answer = post_cbor(emulator.url, path, body, headers)
    assert (status, answer["__type"]) == (400, "SerializationException")
    assert words in answer["message"]
    assert got["smithy-protocol"] == "rpc-v2-cbor"


# --- a hostile client, on a raw socket ----------------------------------------------

RAW_AUTH = (
    "AWS4-HMAC-SHA256 Credential=AKIAEMUL123456789012/20240614/eu-west-1/ssm/aws4_request, "
    "SignedHeaders=host, Signature=0"
)


def raw_post(emulator: Emulator, length: str, body: bytes = b"") -> tuple[int, bytes]:
    """POST with any Content-Length; the answer's status and body (status 0: none)."""
    host, port = emulator.url.removeprefix("http://").split(":")
    head = (
        "POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Target: AmazonSSM.DescribeInstancePatches\r\n"
        f"Authorization: {RAW_AUTH}\r\nContent-Type: application/x-amz-json-1.1\r\n"
        f"Content-Length: {length}\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(head.encode() + body)
        answer = http.client.HTTPResponse(connection)
        try:
            answer.begin()
        except (http.client.RemoteDisconnected, ConnectionError):
            return 0, b""
        return answer.status, answer.read()


def raw_json(emulator: Emulator, payload: object) -> tuple[int, bytes]:
    body = json.dumps(payload).encode()
    return raw_post(emulator, str(len(body)), body)


@pytest.mark.parametrize(
    ("length", "status"),
    [
        ("99999999999999999999999999", 413),  # a size no machine could allocate
        (str(1 << 40), 413),
        ("-5", 400),
        ("abc", 400),
        ("1_000", 400),  # int() reads it, HTTP does not
        ("", 400),
    ],
)
def test_a_content_length_that_is_no_size_gets_a_4xx(
    emulator: Emulator, length: str, status: int
) -> None:
    answer, body = raw_post(emulator, length)
    assert answer == status
    assert "__type" in json.loads(body)
    assert raw_json(emulator, {"InstanceId": WINDOWS_2022})[0] == 200  # still serving


def test_a_body_over_the_limit_gets_413_unread(emulator: Emulator) -> None:
    # Only the start is sent: the server must answer before the rest of the 6 MiB arrive.
    answer, body = raw_post(emulator, str(6 << 20), b"{" * 1024)
    assert answer == 413
    assert json.loads(body)["__type"] == "RequestEntityTooLarge"
    assert raw_json(emulator, {"InstanceId": WINDOWS_2022})[0] == 200


@pytest.mark.parametrize(
    "payload",
    [
        {"InstanceId": WINDOWS_2022, "Filters": [1]},
        {"InstanceId": WINDOWS_2022, "Filters": [None, "State"]},
        {"InstanceId": WINDOWS_2022, "Filters": [{"Key": "State", "Values": [1]}]},
    ],
)
def test_a_malformed_member_gets_an_answer(emulator: Emulator, payload: object) -> None:
    answer, body = raw_json(emulator, payload)
    assert answer == 400
    error = json.loads(body)
    assert error["__type"] in {"ValidationException", "InvalidFilter"}
    assert raw_json(emulator, {"InstanceId": WINDOWS_2022})[0] == 200


def test_a_filter_that_is_not_an_object_is_a_validation_exception(emulator: Emulator) -> None:
    answer, body = raw_json(emulator, {"InstanceId": WINDOWS_2022, "Filters": [1]})
    error = json.loads(body)
    assert (answer, error["__type"]) == (400, "ValidationException")
    assert "'filters.1.member'" in error["message"]


def test_a_body_that_is_not_text_gets_an_answer(emulator: Emulator) -> None:
    body = b"\xff\xfe{}"
    answer, reply = raw_post(emulator, str(len(body)), body)
    assert (answer, json.loads(reply)["__type"]) == (400, "SerializationException")


def test_serve_refuses_options_set_in_python_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from patchframe.sandbox.emulator import serve

    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    args = parser.parse_args([])
    args.latency = math.nan  # past the flags' own checks
    assert serve(args) == 2
    printed = capsys.readouterr()
    assert printed.out == ""
    assert printed.err.splitlines() == [
        "patchframe serve: error: latency must be 0 or more, not nan"
    ]
