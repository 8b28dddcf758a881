"""The patch catalog: release and approval dates Systems Manager publishes for a fleet's patches.

DescribeInstancePatches carries no release date. Two calls do, for some platforms:
``DescribeEffectivePatchesForPatchBaseline`` gives a Windows baseline's patches with
their release date and the date the baseline approves them, and
``DescribeAvailablePatches`` lists Amazon Linux 1 and 2 packages with theirs (it
needs a PRODUCT filter for Linux). :func:`load_patch_catalog` asks each once for
what a loaded :class:`~patchframe.Fleet` uses;
:func:`~patchframe.with_release_dates` joins the result onto a patches frame.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import boto3
import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError

from .._fleet import Fleet
from .._frames import require_columns
from .._release_dates import CATALOG_COLUMNS, available_patches_product, linux_patch_id
from ..exceptions import AWSRequestError, ValidationError
from ._client import caller_account, check_ssm_client, make_client
from ._fleet import _sessions
from ._node import aws_error

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient

__all__ = ["is_aws_managed", "load_patch_catalog"]

_EFFECTIVE = "DescribeEffectivePatchesForPatchBaseline"
_AVAILABLE = "DescribeAvailablePatches"
# AWS-managed (predefined) baselines are shared by every account and named by their
# full ARN, e.g. arn:aws:ssm:us-east-2:733109147000:patchbaseline/pb-0e392de35e7c563b7;
# an account's own baselines by their pb- id alone.
_AWS_MANAGED = re.compile(r"arn:aws[a-z-]*:ssm:[a-z0-9-]+:\d{12}:patchbaseline/pb-[0-9a-f]{17}")
_TEXT_COLUMNS = [c for c in CATALOG_COLUMNS if c not in ("release_date", "approval_date")]


def is_aws_managed(baseline_id: str) -> bool:
    """Whether a baseline id names an AWS-managed baseline, which every account shares.

    Examples
    --------
    >>> is_aws_managed("arn:aws:ssm:us-east-2:733109147000:patchbaseline/pb-0e392de35e7c563b7")
    True
    >>> is_aws_managed("pb-0e392de35e7c563b7")
    False
    """
    return _AWS_MANAGED.fullmatch(baseline_id) is not None


def _check_page_size(page_size: object) -> int:
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= 100:
        raise ValidationError(f"page_size must be a whole number from 1 to 100, not {page_size!r}")
    return page_size


def _wanted(nodes: pd.DataFrame) -> tuple[set[tuple[str, str, str]], set[tuple[str, str, str]]]:
    """(account, region, baseline) of Windows nodes; (account, region, product) of Amazon Linux."""
    baselines, products = set(), set()
    for row in nodes.itertuples(index=False):
        account, region = str(row.account_id), str(row.region)
        if row.platform_type == "Windows" and isinstance(row.baseline_id, str):
            baselines.add((account, region, row.baseline_id))
        product = available_patches_product(row.platform_name, row.platform_version)
        if product is not None:
            products.add((account, region, product))
    return baselines, products


def _failed(err: ClientError | BotoCoreError, operation: str, what: str) -> AWSRequestError:
    found = aws_error(err, operation=operation)
    return AWSRequestError(
        f"{operation} for {what} failed: {found.code}: {found.aws_message or err}",
        code=found.code,
        operation=operation,
        aws_message=found.aws_message,
        attempts=found.attempts,
    )


def _pages(
    client: SSMClient, operation: str, what: str, key: str, **kwargs: Any
) -> Iterator[dict[str, Any]]:
    paginator = client.get_paginator(
        "describe_effective_patches_for_patch_baseline"
        if operation == _EFFECTIVE
        else "describe_available_patches"
    )
    try:
        for page in paginator.paginate(**kwargs):
            entries = page.get(key)
            if not isinstance(entries, list):
                raise AWSRequestError(
                    f"{operation} for {what} answered a page without a {key} list",
                    code="MalformedResponse",
                    operation=operation,
                )
            yield from entries
    except (ClientError, BotoCoreError) as err:
        raise _failed(err, operation, what) from err


def _cves(patch: dict[str, Any]) -> str | None:
    ids = patch.get("CVEIds") or []
    return ",".join(ids) if ids else None


def _effective_rows(client: SSMClient, baseline_id: str, page_size: int) -> list[dict[str, Any]]:
    rows = []
    for entry in _pages(
        client,
        _EFFECTIVE,
        f"baseline {baseline_id}",
        "EffectivePatches",
        BaselineId=baseline_id,
        PaginationConfig={"PageSize": page_size},
    ):
        patch, status = entry.get("Patch") or {}, entry.get("PatchStatus") or {}
        rows.append(
            {
                "baseline_id": baseline_id,
                "patch_id": patch.get("Id"),
                "kb_id": patch.get("KbNumber"),
                "title": patch.get("Title"),
                "release_date": patch.get("ReleaseDate"),
                "approval_date": status.get("ApprovalDate"),
                "deployment_status": status.get("DeploymentStatus"),
                "compliance_level": status.get("ComplianceLevel"),
                "msrc_severity": patch.get("MsrcSeverity"),
                "product": patch.get("Product"),
                "cve_ids": _cves(patch),
            }
        )
    return rows


def _available_rows(client: SSMClient, product: str, page_size: int) -> list[dict[str, Any]]:
    rows = []
    for patch in _pages(
        client,
        _AVAILABLE,
        f"product {product}",
        "Patches",
        Filters=[{"Key": "PRODUCT", "Values": [product]}],
        PaginationConfig={"PageSize": page_size},
    ):
        parts = [patch.get(k) for k in ("Name", "Arch", "Epoch", "Version", "Release")]
        named = all(part is not None for part in parts)
        rows.append(
            {
                "baseline_id": None,
                # The id DescribeInstancePatches reports in Title for the same package.
                "patch_id": linux_patch_id(*map(str, parts)) if named else patch.get("Id"),
                "kb_id": patch.get("KbNumber"),
                "title": patch.get("Title"),
                "release_date": patch.get("ReleaseDate"),
                "approval_date": None,
                "deployment_status": None,
                "compliance_level": None,
                "msrc_severity": patch.get("MsrcSeverity") or patch.get("Severity"),
                "product": patch.get("Product") or product,
                "cve_ids": _cves(patch),
            }
        )
    return rows


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(CATALOG_COLUMNS))
    for column in ("release_date", "approval_date"):
        frame[column] = pd.to_datetime(frame[column], utc=True).astype("datetime64[ns, UTC]")
    for column in _TEXT_COLUMNS:
        frame[column] = frame[column].astype("string").astype("category")
    return frame.drop_duplicates(ignore_index=True)


def _clients(
    regions: set[tuple[str, str]],
    client: SSMClient | None,
    profiles: Sequence[str] | None,
    boto3_sessions: Sequence[boto3.Session] | None,
) -> dict[tuple[str, str], SSMClient]:
    """A client per (account, region) the fleet has nodes in."""
    if client is not None:
        if profiles is not None or boto3_sessions is not None:
            raise ValidationError("give client, or profiles/boto3_sessions, not both")
        check_ssm_client(client)
        accounts = {account for account, _ in regions}
        where = {region for _, region in regions}
        if len(accounts) > 1 or where - {client.meta.region_name}:
            raise ValidationError(
                f"one client serves one account and region ({client.meta.region_name}); "
                f"the fleet has nodes in {sorted(regions)}: pass boto3_sessions or profiles"
            )
        return dict.fromkeys(regions, client)
    sessions = _sessions(profiles, boto3_sessions)
    clients: dict[tuple[str, str], SSMClient] = {}
    for session in sessions:
        made = {
            region: make_client(boto3_session=session, region=region)
            for region in sorted({region for _, region in regions})
        }
        if not made:
            continue
        try:
            account = caller_account(next(iter(made.values())))
        except (ClientError, BotoCoreError) as err:
            raise _failed(err, "GetCallerIdentity", "a session") from err
        clients.update({(account, region): made[region] for region in made})
    missing = sorted(regions - set(clients))
    if missing:
        raise ValidationError(
            f"no session speaks for account(s) {', '.join(sorted({a for a, _ in missing}))} "
            "of the fleet: pass one boto3 session or profile per account"
        )
    return clients


def load_patch_catalog(
    fleet: Fleet,
    *,
    client: SSMClient | None = None,
    profiles: Sequence[str] | None = None,
    boto3_sessions: Sequence[boto3.Session] | None = None,
    page_size: int = 100,
) -> pd.DataFrame:
    """Release and approval dates of the patches a loaded fleet's baselines know.

    For each patch baseline the fleet's Windows nodes use,
    DescribeEffectivePatchesForPatchBaseline (every page): once per baseline,
    account and region, and for an AWS-managed baseline (named by its ARN, shared by
    every account) once per baseline whichever accounts use it. For the Amazon
    Linux 1 and 2 products among the nodes, DescribeAvailablePatches with a
    PRODUCT filter, once per product and region (the catalog is public). Other
    platforms have no such call: their rows stay undated.

    Parameters
    ----------
    fleet
        What :func:`~patchframe.load_fleet` returned (its ``nodes`` are read).
    client
        A ready SSM client, for a fleet of its one account and region.
    profiles, boto3_sessions
        One profile name or boto3 session per account of the fleet, as for
        :func:`~patchframe.load_fleet`; boto3's default session when all are None.
    page_size
        MaxResults of each call, 1 to 100.

    Returns
    -------
    pandas.DataFrame
        One row per baseline and patch (``baseline_id`` is missing for the rows of
        DescribeAvailablePatches): baseline_id, patch_id (Windows: the service's
        id; Linux: ``name.arch:epoch:version-release``), kb_id, title,
        release_date, approval_date (UTC), deployment_status, compliance_level,
        msrc_severity (the vendor's severity for Linux), product, cve_ids
        (comma-separated); text columns are categories.

    Raises
    ------
    ValidationError
        Before any call, for a bad argument or a fleet without the node columns.
    AWSRequestError
        If a call fails after botocore's retries; the botocore error is its cause.

    Examples
    --------
    >>> import patchframe as pf
    >>> client = pf.sample_client()
    >>> fleet = pf.load_fleet(client=client, progress=False)
    >>> catalog = load_patch_catalog(fleet, client=client)
    >>> catalog["baseline_id"].nunique(), catalog["release_date"].notna().all()
    (3, np.True_)
    """
    if not isinstance(fleet, Fleet):
        raise ValidationError(f"fleet must be a patchframe Fleet, not {type(fleet).__name__}")
    page_size = _check_page_size(page_size)
    needed = ["account_id", "region", "platform_type", "platform_name", "platform_version"]
    require_columns(
        fleet.nodes,
        [*needed, "baseline_id"],
        needed_by="load_patch_catalog",
        argument="fleet.nodes",
    )
    baselines, products = _wanted(fleet.nodes)
    regions = {(a, r) for a, r, _ in baselines | products}
    clients = _clients(regions, client, profiles, boto3_sessions)

    fetched: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for account, region, baseline_id in sorted(baselines):
        key = (
            (region, baseline_id)
            if is_aws_managed(baseline_id)
            else (account, region, baseline_id)
        )
        if key not in fetched:
            fetched[key] = _effective_rows(clients[account, region], baseline_id, page_size)
    for account, region, product in sorted(products):
        key = (region, "PRODUCT", product)
        if key not in fetched:
            fetched[key] = _available_rows(clients[account, region], product, page_size)
    return _frame([row for rows in fetched.values() for row in rows])
