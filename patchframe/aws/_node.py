"""Loading one managed node's patches: argument checks, paging, error mapping."""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import boto3
import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from .._schema import (
    WIRE_STATES,
    NodeKey,
    PatchColumns,
    build_patches,
    normalise_state,
    validate_instance_id,
)
from ..exceptions import AWSRequestError, NodeNotFoundError, ValidationError
from ._client import PAGE_KEY, check_ssm_client, fast_patch_pages, make_client

if TYPE_CHECKING:
    from mypy_boto3_ssm import SSMClient
    from mypy_boto3_ssm.type_defs import PatchOrchestratorFilterTypeDef

__all__ = [
    "PatchFilters",
    "aws_error",
    "fetch_node_patches",
    "load_instance_patches",
    "validate_page_size",
    "validate_patch_filters",
]

#: What ``filters`` accepts: ``{"State": ["Missing"]}`` or the API's own list.
PatchFilters = Mapping[str, Sequence[str]] | Sequence[Mapping[str, Any]]

_FILTER_KEYS = ("Classification", "KBId", "Severity", "State")
_MAX_FILTERS = 5
_PAGE_SIZES = range(10, 101)
_LARGEST_PAGE, _FALLBACK_PAGE = 100, 50


class _LargestPage:
    """The largest page one client's service accepts, learnt with one request.

    The first request asks for 100 and is the probe. Requests sent while it is out
    ask for 50, which every service accepts, rather than wait for its answer; so a
    service that refuses 100 sees one refused request per client (one account and
    region), not one per worker, and no worker idles meanwhile.
    """

    def __init__(self) -> None:
        self._size: int | None = None
        self._probing = False
        self._lock = threading.Lock()

    def claim(self) -> tuple[int, bool]:
        """The page size to ask for, and whether this request is the probe."""
        with self._lock:
            if self._size is not None:
                return self._size, False
            if self._probing:
                return _FALLBACK_PAGE, False
            self._probing = True
            return _LARGEST_PAGE, True

    def settle(self, size: int | None) -> None:
        """The probe's lesson: the size the service accepts, or None if it told nothing."""
        with self._lock:
            self._size, self._probing = size, False


_largest_pages: weakref.WeakKeyDictionary[Any, _LargestPage] = weakref.WeakKeyDictionary()
_largest_pages_lock = threading.Lock()


def _largest_page(client: SSMClient) -> _LargestPage:
    with _largest_pages_lock:
        return _largest_pages.setdefault(client, _LargestPage())


def validate_page_size(page_size: object) -> int | None:
    """Check a DescribeInstancePatches page size (10-100, or None for the largest).

    Examples
    --------
    >>> validate_page_size(5)
    Traceback (most recent call last):
    ...
    patchframe.exceptions.ValidationError: page_size 5 is outside 10-100, ...
    """
    if page_size is None:
        return None
    if (
        isinstance(page_size, bool)
        or not isinstance(page_size, int)
        or page_size not in _PAGE_SIZES
    ):
        raise ValidationError(
            f"page_size {page_size!r} is outside 10-100, the page sizes "
            "DescribeInstancePatches accepts"
        )
    return page_size


def validate_patch_filters(
    filters: PatchFilters | None,
) -> list[PatchOrchestratorFilterTypeDef]:
    """Check patch filters and return them in the API's own shape.

    State values may be spelled as the model does (``MISSING``) or as filters
    want them (``Missing``); they are sent as the latter.

    Examples
    --------
    >>> validate_patch_filters({"State": ["MISSING", "Failed"]})
    [{'Key': 'State', 'Values': ['Missing', 'Failed']}]
    >>> validate_patch_filters({"Product": ["WindowsServer2022"]})
    Traceback (most recent call last):
    ...
    patchframe.exceptions.ValidationError: filter key 'Product' is not one ... accepts: ...
    """
    if filters is None:
        return []
    if isinstance(filters, Mapping):
        pairs = list(filters.items())
    elif isinstance(filters, Sequence) and not isinstance(filters, str):
        pairs = []
        for f in filters:
            if not isinstance(f, Mapping) or set(f) != {"Key", "Values"}:
                raise ValidationError(
                    f"filter {f!r} is not a {{'Key': ..., 'Values': [...]}} mapping"
                )
            pairs.append((f["Key"], f["Values"]))
    else:
        raise ValidationError(
            f"filters {filters!r}: expected a dict such as {{'State': ['Missing']}} "
            "or a list of {'Key': ..., 'Values': [...]}"
        )
    if len(pairs) > _MAX_FILTERS:
        raise ValidationError(
            f"{len(pairs)} filters given; DescribeInstancePatches takes at most {_MAX_FILTERS}"
        )
    checked: list[PatchOrchestratorFilterTypeDef] = []
    for key, values in pairs:
        if key not in _FILTER_KEYS:
            raise ValidationError(
                f"filter key {key!r} is not one DescribeInstancePatches accepts: "
                + ", ".join(_FILTER_KEYS)
            )
        if (
            isinstance(values, str)
            or not isinstance(values, Sequence)
            or not values
            or not all(isinstance(v, str) and v for v in values)
        ):
            raise ValidationError(
                f"filter {key!r} values {values!r}: expected a non-empty list of non-empty strings"
            )
        if key == "State":
            values = [_state_filter_value(v) for v in values]
        checked.append({"Key": key, "Values": list(values)})
    return checked


def _state_filter_value(value: str) -> str:
    state = normalise_state(value)
    if state not in WIRE_STATES:
        raise ValidationError(
            f"filter 'State' value {value!r} is not a patch state: expected one of "
            + ", ".join(WIRE_STATES.values())
        )
    return WIRE_STATES[state]


def aws_error(
    err: ClientError | BotoCoreError, *, operation: str, instance_id: str | None = None
) -> AWSRequestError:
    """Turn a botocore error into a patchframe error naming the node.

    Examples
    --------
    >>> from botocore.exceptions import ClientError
    >>> err = ClientError({"Error": {"Code": "InvalidFilter", "Message": "bad key"}},
    ...                   "DescribeInstancePatches")
    >>> print(aws_error(err, operation="DescribeInstancePatches", instance_id="i-12345678"))
    DescribeInstancePatches for node i-12345678 failed: InvalidFilter: bad key
    """
    where = f" for node {instance_id}" if instance_id else ""
    attempts: int | None = None
    if isinstance(err, ClientError):
        code = str(err.response.get("Error", {}).get("Code", "Unknown"))
        message = str(err.response.get("Error", {}).get("Message", ""))
        retries = err.response.get("ResponseMetadata", {}).get("RetryAttempts")
        attempts = None if retries is None else retries + 1
    else:
        code, message = type(err).__name__, str(err)
    text = f"{operation}{where} failed: {code}: {message}"
    if isinstance(err, NoCredentialsError):
        text += (
            " (configure a profile or AWS_* variables, or try the sample fleet "
            "with patchframe.sample_client())"
        )
    cls = NodeNotFoundError if code == "InvalidInstanceId" else AWSRequestError
    return cls(
        text,
        code=code,
        operation=operation,
        instance_id=instance_id,
        aws_message=message,
        attempts=attempts,
    )


def fetch_node_patches(
    client: SSMClient,
    instance_id: str,
    *,
    filters: Sequence[PatchOrchestratorFilterTypeDef] = (),
    page_size: int | None = None,
    texts: dict[str, str] | None = None,
) -> PatchColumns:
    """Page DescribeInstancePatches for one node to the last page.

    ``texts`` is a table of the load's texts, shared by its nodes so that each
    distinct text is held once (:class:`PatchColumns`); None keeps them as sent.

    Arguments must already be checked. Raises :class:`AWSRequestError` once
    botocore's retries are spent, or at once for an answer that is not a page of
    patches (code ``"MalformedResponse"``): no row of a node is kept unless every
    page of it was read. An expired NextToken restarts the node's paging once,
    from the first page, so no page is counted twice.
    """
    for restart in (False, True):
        try:
            return _page_through(client, instance_id, filters, page_size, texts)
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code")
            if code != "InvalidNextToken" or restart:
                raise aws_error(
                    err, operation="DescribeInstancePatches", instance_id=instance_id
                ) from err
        except BotoCoreError as err:
            raise aws_error(
                err, operation="DescribeInstancePatches", instance_id=instance_id
            ) from err
    raise AssertionError("unreachable")  # pragma: no cover


def _page_through(
    client: SSMClient,
    instance_id: str,
    filters: Sequence[PatchOrchestratorFilterTypeDef],
    page_size: int | None,
    texts: dict[str, str] | None,
) -> PatchColumns:
    columns = PatchColumns(texts=texts)
    request: dict[str, Any] = {"InstanceId": instance_id, "Filters": list(filters)}
    with fast_patch_pages(client):
        while True:
            try:
                response = _describe_page(client, request, page_size)
            except (json.JSONDecodeError, UnicodeDecodeError) as err:
                # The fast path decodes a 200 answer itself; botocore's own parser would
                # have made an empty page of it, and the node's rows would vanish unseen.
                raise _malformed(instance_id, f"its body is not JSON ({err})") from err
            patches, token = _patches_and_token(response.get(PAGE_KEY, response), instance_id)
            columns.extend(patches)
            if not token:
                return columns
            request["NextToken"] = token


def _patches_and_token(page: object, instance_id: str) -> tuple[list[Any], str | None]:
    """A page's patch records and next token, once checked to be what the API sends."""
    if not isinstance(page, Mapping):
        raise _malformed(instance_id, f"it is a JSON {type(page).__name__}, not an object")
    patches, token = page.get("Patches", []), page.get("NextToken")
    # JSON objects decode to dicts; a Mapping test per row cost 1.2 ms a 4,000-row load.
    if not isinstance(patches, list) or not all(isinstance(p, dict) for p in patches):
        raise _malformed(instance_id, "its Patches member is not a list of objects")
    if token is not None and not isinstance(token, str):
        raise _malformed(instance_id, "its NextToken member is not a string")
    return patches, token


def _malformed(instance_id: str, why: str) -> AWSRequestError:
    return AWSRequestError(
        f"DescribeInstancePatches for node {instance_id} failed: the service's answer is "
        f"not a page of patches: {why}; no row of it was kept",
        code="MalformedResponse",
        operation="DescribeInstancePatches",
        instance_id=instance_id,
    )


def _describe_page(
    client: SSMClient, request: dict[str, Any], page_size: int | None
) -> Mapping[str, Any]:
    """One page; without a page size, of the largest size the client's service accepts."""
    if page_size is not None:
        return client.describe_instance_patches(**request, MaxResults=page_size)
    largest = _largest_page(client)
    size, probe = largest.claim()
    if not probe:
        return client.describe_instance_patches(**request, MaxResults=size)
    accepted: int | None = None
    try:
        response = client.describe_instance_patches(**request, MaxResults=_LARGEST_PAGE)
        accepted = _LARGEST_PAGE
        return response
    except ClientError as err:
        if not _refused_page_size(err):
            raise
        accepted = _FALLBACK_PAGE
    finally:
        largest.settle(accepted)
    return client.describe_instance_patches(**request, MaxResults=_FALLBACK_PAGE)


def _refused_page_size(err: ClientError) -> bool:
    error = err.response.get("Error", {})
    return (
        error.get("Code") == "ValidationException"
        and "maxresults" in str(error.get("Message", "")).lower()
    )


def load_instance_patches(
    instance_id: str,
    *,
    filters: PatchFilters | None = None,
    page_size: int | None = None,
    client: SSMClient | None = None,
    boto3_session: boto3.Session | None = None,
    region: str | None = None,
) -> pd.DataFrame:
    """Load one managed node's patches into a typed DataFrame.

    Pages DescribeInstancePatches to the last page. Every argument is checked
    before any call.

    Parameters
    ----------
    instance_id
        An EC2 (``i-...``) or hybrid (``mi-...``) managed node id.
    filters
        ``{"State": ["Missing", "Failed"], "Severity": ["Critical"]}``, or the
        API's own list of ``{"Key": ..., "Values": [...]}``; at most 5, keys
        Classification, KBId, Severity, State.
    page_size
        Patches per request, 10-100. By default the largest the service accepts:
        100, or 50 where the service refuses 100 (learnt once per client).
    client
        A boto3 SSM client to use; made from ``boto3_session`` and ``region`` when None.
    boto3_session, region
        Where credentials and region come from when no client is given.

    Returns
    -------
    pandas.DataFrame
        One row per patch, with the columns and dtypes of the data contract.
        ``account_id`` is NA: one node's call does not say which account it is in.

    Raises
    ------
    ValidationError
        A bad argument, before any call.
    NodeNotFoundError
        The node does not exist in that account and region.
    AWSRequestError
        Any other failure, once retries are spent; the botocore error is ``__cause__``.
        Transport failures (TLS, a dropped connection, a garbage status line) are
        botocore's and so retried; an answer that is not a page of patches (a body that
        is not JSON, or cut short) is code ``"MalformedResponse"``, with the decoding
        error, if any, as ``__cause__``.

    Examples
    --------
    >>> import patchframe as pf
    >>> client = pf.sample_client()
    >>> node = client.describe_instance_information()["InstanceInformationList"][0]
    >>> patches = pf.load_instance_patches(node["InstanceId"], client=client)
    >>> patches["state"].dtype.name, patches["instance_id"].nunique()
    ('category', 1)
    >>> missing = pf.load_instance_patches(node["InstanceId"], client=client,
    ...                                     filters={"State": ["Missing"]})
    >>> set(missing["state"].unique())  <= {"MISSING"}
    True
    """
    validate_instance_id(instance_id)
    checked = validate_patch_filters(filters)
    size = validate_page_size(page_size)
    if client is None:
        client = make_client(boto3_session=boto3_session, region=region)
    client = check_ssm_client(client)
    columns = fetch_node_patches(client, instance_id, filters=checked, page_size=size)
    key = NodeKey(instance_id, region=client.meta.region_name)
    return build_patches([(key, columns)])
