"""Node tags: EC2 instances through the Resource Groups Tagging API, hybrid nodes through SSM.

Which calls, and why
--------------------
EC2 nodes (``i-``): ``GetResources`` of the Resource Groups Tagging API, given the
loaded instances' ARNs, 100 a call, one call a batch.

- ``ResourceARNList`` takes 1 to 100 ARNs and answers every tag of each in one
  page (it may not be combined with paging). An ARN that names no tagged
  resource is left out of the answer, not an error: an untagged node has no tags.
- The ARN needs the account id, which a load knows from the organization or from
  STS (asked once per account, beside its first listing), and the partition, which
  the client knows.
- EC2 ``DescribeTags`` filtered on ``resource-id`` (200 ids a call) was used first.
  Its client is what a load pays for: botocore builds each client's class from its
  service model, and EC2's is the largest there is. Measured here, an EC2 client
  costs 19-26 ms of CPU and 7,400-8,400 objects that every full garbage collection
  walks, the Tagging API's 4.5-5 ms and 1,000 objects; in a fresh process the
  first EC2 client reads its model for 170-250 ms, the Tagging API's in 6 ms. A load
  makes one per account and region: on 20 accounts x 2 regions, EC2 clients held
  3.3 s of the load's threads and added 4 full collections (1.1 s).
- Listing every tagged instance of the region (``ResourceTypeFilters``) would be
  fewer calls on a whole-region load, but a load filtered to ten nodes in an
  account of thousands would read them all: batches of the loaded ARNs bound the
  calls by what was loaded, ``ceil(nodes / 100)``.

Hybrid nodes (``mi-``): SSM ``ListTagsForResource`` with ``ResourceType`` ManagedInstance.
``DescribeInstanceInformation`` does not return tags, and ``ListTagsForResource``
takes one resource: one call per hybrid node. It goes through the fleet's SSM
client, so the account and region's pacer paces it with the patch calls.

A refused call (:data:`DENIED_CODES`) tells the loader to make no more of that
kind in that account and region; it is reported once, and the load goes on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_resourcegroupstaggingapi import ResourceGroupsTaggingAPIClient
    from mypy_boto3_ssm import SSMClient

__all__ = [
    "ARNS_PER_CALL",
    "DENIED_CODES",
    "PERMISSIONS",
    "NodeTags",
    "hybrid_tags",
    "instance_arn_batches",
    "instance_tags",
]

#: ARNs in one GetResources call: the API's limit of ``ResourceARNList``.
ARNS_PER_CALL = 100
#: Error codes of a call refused for want of permission: the Tagging API and SSM say
#: AccessDeniedException, some proxies and older endpoints AccessDenied.
DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException"})
#: The IAM action each tag call needs.
PERMISSIONS = {
    "GetResources": "tag:GetResources",
    "ListTagsForResource": "ssm:ListTagsForResource",
}

#: Instance id to its (key, value) tags, in the order AWS sent them.
NodeTags = dict[str, list[tuple[str, str]]]


def instance_arn_batches(
    instance_ids: Sequence[str], *, account_id: str, region: str, partition: str = "aws"
) -> list[list[str]]:
    """The EC2 ids' ARNs in batches of :data:`ARNS_PER_CALL`, hybrid ids left out.

    Examples
    --------
    >>> ids = [f"i-{n:017x}" for n in range(250)] + ["mi-0123456789abcdef0"]
    >>> batches = instance_arn_batches(ids, account_id="123456789012", region="eu-west-1")
    >>> [len(batch) for batch in batches]
    [100, 100, 50]
    >>> batches[0][0]
    'arn:aws:ec2:eu-west-1:123456789012:instance/i-00000000000000000'
    """
    arns = [
        f"arn:{partition}:ec2:{region}:{account_id}:instance/{i}"
        for i in instance_ids
        if i.startswith("i-")
    ]
    return [arns[i : i + ARNS_PER_CALL] for i in range(0, len(arns), ARNS_PER_CALL)]


def instance_tags(client: ResourceGroupsTaggingAPIClient, arns: Sequence[str]) -> NodeTags:
    """The tags of up to :data:`ARNS_PER_CALL` EC2 instances, by ARN, in one call.

    ``client`` is a Resource Groups Tagging API client of the instances' account
    and region. An instance without tags is not in the answer.

    Examples
    --------
    >>> import patchframe as pf
    >>> from patchframe.aws._client import tagging_client_like
    >>> tagging = tagging_client_like(pf.sample_client())
    >>> arn = "arn:aws:ec2:eu-west-1:123456789012:instance/i-0e1f2a3b4c5d6e7f8"
    >>> instance_tags(tagging, [arn])
    {'i-0e1f2a3b4c5d6e7f8': [('Name', 'web-iis-01'), ('Environment', 'prod'), ('Team', 'web'), ('Patch Group', 'prod-windows')]}
    """  # noqa: E501
    answer = client.get_resources(ResourceARNList=list(arns))
    return {
        mapping["ResourceARN"].rpartition("/")[2]: [
            (tag["Key"], tag.get("Value", "")) for tag in mapping.get("Tags", [])
        ]
        for mapping in answer.get("ResourceTagMappingList", [])
    }


def hybrid_tags(client: SSMClient, instance_id: str) -> NodeTags:
    """The tags of one hybrid (``mi-``) node, from SSM.

    Examples
    --------
    >>> import patchframe as pf
    >>> hybrid_tags(pf.sample_client(), "mi-0a1b2c3d4e5f67890")["mi-0a1b2c3d4e5f67890"][2]
    ('Team', 'it')
    """
    answer = client.list_tags_for_resource(ResourceType="ManagedInstance", ResourceId=instance_id)
    return {instance_id: [(t["Key"], t.get("Value", "")) for t in answer.get("TagList", [])]}
