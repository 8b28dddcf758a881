"""Node tags: EC2 instances through EC2 ``DescribeTags``, hybrid nodes through SSM.

Which calls, and why
--------------------
EC2 nodes (``i-``): EC2 ``DescribeTags`` filtered on ``resource-id``, the loaded
instance ids in batches of 200, pages of 1,000 tags.

- EC2 takes at most 200 filter values in one call (more is refused with
  ``FilterLimitExceeded``), ``MaxResults`` from 5 to 1,000, and pages on with
  ``NextToken``. An instance has at most 50 tags, so a batch is at most 10 pages,
  and one page as long as its instances average 5 tags or fewer: 300 nodes with
  the sample's 3 or 4 tags each take 2 calls.
- The Resource Groups Tagging API (``GetResources``) was the other candidate. It
  takes ARNs, at most 100 a call, so it needs the account id (STS) first and half
  the batch size; it leaves out resources without tags; and it is one more
  endpoint and permission (``tag:GetResources``) to grant. ``ec2:DescribeTags``
  is in AWS's ReadOnlyAccess and AmazonEC2ReadOnlyAccess policies.
- Listing every instance's tags in the region (no ``resource-id`` filter) would
  be fewer calls on a whole-region load, but a load filtered to ten nodes in an
  account of thousands would read them all: batches of the loaded ids bound the
  calls by what was loaded, ``ceil(nodes / 200)`` for up to 5 tags a node.

Hybrid nodes (``mi-``): SSM ``ListTagsForResource`` with ``ResourceType`` ManagedInstance.
EC2 does not know managed instances, ``DescribeInstanceInformation`` does not
return tags, and ``ListTagsForResource`` takes one resource: one call per hybrid
node is unavoidable. It goes through the fleet's SSM client, so the account and
region's pacer paces it with the patch calls.

A refused call (:data:`DENIED_CODES`) tells the loader to make no more of that
kind in that account and region; it is reported once, and the load goes on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from mypy_boto3_ssm import SSMClient

__all__ = [
    "DENIED_CODES",
    "EC2_IDS_PER_CALL",
    "EC2_PAGE_SIZE",
    "PERMISSIONS",
    "NodeTags",
    "ec2_batches",
    "ec2_tags",
    "hybrid_tags",
]

#: Instance ids in one DescribeTags call: EC2's limit of filter values per call.
EC2_IDS_PER_CALL = 200
#: DescribeTags MaxResults: the largest page EC2 gives (5 to 1,000).
EC2_PAGE_SIZE = 1000
#: Error codes of a call refused for want of permission: EC2 says UnauthorizedOperation,
#: SSM AccessDeniedException, and some proxies and older endpoints AccessDenied.
DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})
#: The IAM action each tag call needs.
PERMISSIONS = {
    "DescribeTags": "ec2:DescribeTags",
    "ListTagsForResource": "ssm:ListTagsForResource",
}

#: Instance id to its (key, value) tags, in the order AWS sent them.
NodeTags = dict[str, list[tuple[str, str]]]


def ec2_batches(instance_ids: Sequence[str]) -> list[list[str]]:
    """The EC2 ids in batches of :data:`EC2_IDS_PER_CALL`, hybrid ids left out.

    Examples
    --------
    >>> ids = [f"i-{n:017x}" for n in range(450)] + ["mi-0123456789abcdef0"]
    >>> [len(batch) for batch in ec2_batches(ids)]
    [200, 200, 50]
    """
    ec2 = [i for i in instance_ids if i.startswith("i-")]
    return [ec2[i : i + EC2_IDS_PER_CALL] for i in range(0, len(ec2), EC2_IDS_PER_CALL)]


def ec2_tags(client: BaseClient, instance_ids: Sequence[str]) -> NodeTags:
    """The tags of up to :data:`EC2_IDS_PER_CALL` EC2 instances, every page of them.

    Examples
    --------
    >>> import patchframe as pf
    >>> from patchframe.aws._client import ec2_client_like
    >>> ec2 = ec2_client_like(pf.sample_client())
    >>> ec2_tags(ec2, ["i-0e1f2a3b4c5d6e7f8"])
    {'i-0e1f2a3b4c5d6e7f8': [('Name', 'web-iis-01'), ('Environment', 'prod'), ('Team', 'web'), ('Patch Group', 'prod-windows')]}
    """  # noqa: E501
    tags: NodeTags = {}
    pages = client.get_paginator("describe_tags").paginate(
        Filters=[{"Name": "resource-id", "Values": list(instance_ids)}],
        PaginationConfig={"PageSize": EC2_PAGE_SIZE},
    )
    for page in pages:
        for tag in page.get("Tags", []):
            tags.setdefault(tag["ResourceId"], []).append((tag["Key"], tag.get("Value", "")))
    return tags


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
