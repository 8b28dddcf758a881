"""Node tags from AWS: EC2 DescribeTags in batches, SSM ListTagsForResource per hybrid node.

The calls go to the emulator over real HTTP; what a whole load does with them (counts,
refusals, the tags frame) is in ``test_aws_fleet.py``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest

from patchframe.aws._client import ec2_client_like
from patchframe.aws._tags import (
    EC2_IDS_PER_CALL,
    EC2_PAGE_SIZE,
    ec2_batches,
    ec2_tags,
    hybrid_tags,
)
from patchframe.sandbox.emulator import Emulator
from patchframe.sandbox.sample import WireFleet, synthetic_fleet


def test_batches_hold_at_most_what_ec2_takes_and_only_ec2_ids() -> None:
    ids = [f"i-{n:017x}" for n in range(401)] + ["mi-0123456789abcdef0"]
    batches = ec2_batches(ids)
    assert [len(b) for b in batches] == [200, 200, 1]
    assert [i for b in batches for i in b] == ids[:401]
    assert EC2_IDS_PER_CALL == 200 and EC2_PAGE_SIZE == 1000  # EC2's own limits
    assert ec2_batches(["mi-0123456789abcdef0"]) == []


@pytest.fixture(scope="module")
def crowded() -> Iterator[Emulator]:
    """200 EC2 nodes with 50 tags each (EC2's most): 10,000 tags, ten pages of 1,000;
    and a hybrid node without tags."""
    fleet = synthetic_fleet(230, seed=4, patches_per_node=1)
    ec2 = [i for i in fleet.instance_ids if i.startswith("i-")][:200]
    for instance_id in ec2:
        fleet.tags[instance_id] = {f"key-{n:02d}": f"{instance_id}-{n}" for n in range(50)}
    untagged = next(i for i in fleet.instance_ids if i.startswith("mi-"))
    fleet.tags.pop(untagged, None)
    with Emulator(fleet) as emulator:
        yield emulator


def test_a_batch_pages_through_every_tag(crowded: Emulator) -> None:
    truth: WireFleet = crowded.fleet()
    ec2 = [i for i in truth.instance_ids if i.startswith("i-")][:200]
    got = ec2_tags(ec2_client_like(crowded.client()), ec2)
    assert got == {i: list(truth.tags[i].items()) for i in ec2}
    calls = crowded.stats.requests["DescribeTags"]
    assert calls == math.ceil(200 * 50 / EC2_PAGE_SIZE) == 10


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
