"""The exceptions patchframe raises.

Every exception derives from :class:`PatchframeError`, so one ``except`` clause
catches them all::

    PatchframeError
    ├── ValidationError          bad input, raised before any AWS call (also a ValueError)
    │   └── ColumnsError         a frame lacks the columns a function needs
    ├── AWSRequestError          an AWS call failed after its retries
    │   └── NodeNotFoundError    the node does not exist (InvalidInstanceId)
    ├── OrganizationError        the organization's accounts cannot be listed
    └── StoreError               a snapshot or Parquet file patchframe reads is damaged
"""

from __future__ import annotations

__all__ = [
    "AWSRequestError",
    "ColumnsError",
    "NodeNotFoundError",
    "OrganizationError",
    "PatchframeError",
    "StoreError",
    "StoreWarning",
    "ValidationError",
]


class PatchframeError(Exception):
    """Base class of every error patchframe raises."""


class ValidationError(PatchframeError, ValueError):
    """An argument is not what the API or the function allows.

    Raised before any AWS call; the message names the bad value and what is allowed.
    """


class ColumnsError(ValidationError):
    """A DataFrame lacks columns that the function needs."""


class AWSRequestError(PatchframeError):
    """An AWS call failed after botocore's retries.

    Parameters
    ----------
    message
        A sentence naming the node (if any) and AWS's own message.
    code
        AWS's error code, e.g. ``"InvalidFilter"``; the botocore exception's name
        for errors that never reached AWS (``"SSLError"``, ``"ConnectionClosedError"``);
        ``"MalformedResponse"`` for an answer that is not what the API sends.
    operation
        The API operation, e.g. ``"DescribeInstancePatches"``.
    instance_id
        The node the call was about, if any.
    aws_message
        The message AWS sent, unchanged.
    attempts
        How many times the call was sent, retries included, where known.

    Examples
    --------
    >>> err = AWSRequestError("boom", code="InternalServerError",
    ...                       operation="DescribeInstancePatches")
    >>> err.code
    'InternalServerError'
    """

    def __init__(
        self,
        message: str,
        *,
        code: str,
        operation: str,
        instance_id: str | None = None,
        aws_message: str = "",
        attempts: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.operation = operation
        self.instance_id = instance_id
        self.aws_message = aws_message
        self.attempts = attempts


class NodeNotFoundError(AWSRequestError):
    """The managed node does not exist, or no longer does (InvalidInstanceId)."""


class OrganizationError(PatchframeError):
    """The organization's accounts cannot be listed: raised before any SSM call.

    The caller is not allowed to list them, or its account is in no organization;
    the message names the missing permission or the condition, ``code`` is AWS's.

    Examples
    --------
    >>> OrganizationError("not in an organization", code="AWSOrganizationsNotInUseException").code
    'AWSOrganizationsNotInUseException'
    """

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


class StoreError(PatchframeError):
    """A file patchframe reads back is damaged or not what it should be.

    A snapshot store's file that is not a patchframe snapshot, or a file given to
    :func:`~patchframe.read_parquet` that is not Parquet; the message names the file.
    """


class StoreWarning(UserWarning):
    """A damaged snapshot or stray folder left out of a read, as ``on_error="skip"`` asks;
    the message names it."""
