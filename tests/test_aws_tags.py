"""Node tags from AWS: GetResources by ARN in batches, SSM ListTagsForResource per hybrid node.

The calls go to the emulator over real HTTP; what a whole load does with them (counts,
refusals, the tags frame) is in ``test_aws_fleet.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from patchframe.aws._client import tagging_client_like
from patchframe.aws._tags import (
    ARNS_PER_CALL,
    hybrid_tags,
    instance_arn_batches,
    instance_tags,
)
from patchframe.sandbox.emulator import Emulator
from patchframe.sandbox.sample import WireFleet, synthetic_fleet


def test_batches_hold_at_most_what_get_resources_takes_and_only_ec2_arns() -> None:
    ids = [f"i-{n:017x}" for n in range(201)] + ["mi-0123456789abcdef0"]
    batches = instance_arn_batches(
        ids, account_id="111122223333", region="cn-north-1", partition="aws-cn"
    )
    assert [len(b) for b in batches] == [100, 100, 1]
    assert [a.rpartition("/")[2] for b in batches for a in b] == ids[:201]
    assert batches[2] == ["arn:aws-cn:ec2:cn-north-1:111122223333:instance/" + ids[200]]
    assert ARNS_PER_CALL == 100  # the API's own limit
    assert instance_arn_batches(["mi-0123456789abcdef0"], account_id="1", region="r") == []


@pytest.fixture(scope="module")
def crowded() -> Iterator[Emulator]:
    """100 EC2 nodes with 50 tags each (AWS's most), some untagged EC2 nodes, and a
    hybrid node without tags."""
    fleet = synthetic_fleet(230, seed=4, patches_per_node=1)
    ec2 = [i for i in fleet.instance_ids if i.startswith("i-")]
    for instance_id in ec2[:100]:
        fleet.tags[instance_id] = {f"key-{n:02d}": f"{instance_id}-{n}" for n in range(50)}
    for instance_id in ec2[100:110]:
        fleet.tags.pop(instance_id, None)
    untagged = next(i for i in fleet.instance_ids if i.startswith("mi-"))
    fleet.tags.pop(untagged, None)
    with Emulator(fleet) as emulator:
        yield emulator


def test_a_batch_is_one_call_with_every_tag(crowded: Emulator) -> None:
    truth: WireFleet = crowded.fleet()
    ec2 = [i for i in truth.instance_ids if i.startswith("i-")][:100]
    (arns,) = instance_arn_batches(ec2, account_id=truth.account_id, region=truth.region)
    crowded.reset_stats()
    got = instance_tags(tagging_client_like(crowded.client()), arns)
    assert got == {i: list(truth.tags[i].items()) for i in ec2}
    assert sum(len(tags) for tags in got.values()) == 5000
    assert crowded.stats.requests == {"GetResources": 1}


def test_untagged_and_unknown_instances_are_left_out(crowded: Emulator) -> None:
    truth: WireFleet = crowded.fleet()
    ec2 = [i for i in truth.instance_ids if i.startswith("i-")][100:110]
    assert not set(ec2) & set(truth.tags)
    ids = [*ec2, "i-0000000000000dead"]
    (arns,) = instance_arn_batches(ids, account_id=truth.account_id, region=truth.region)
    assert instance_tags(tagging_client_like(crowded.client()), arns) == {}


def test_hybrid_tags_one_call_each(crowded: Emulator) -> None:
    truth = crowded.fleet()
    hybrid = [i for i in truth.instance_ids if i.startswith("mi-")]
    ssm = crowded.client()
    crowded.reset_stats()
    got = {}
    for instance_id in hybrid:
        got |= hybrid_tags(ssm, instance_id)
    assert got == {i: list(truth.tags.get(i, {}).items()) for i in hybrid}
    assert crowded.stats.requests == {"ListTagsForResource": len(hybrid)}
    assert sum(not tags for tags in got.values()) == 1  # the untagged one: no tags, no error
