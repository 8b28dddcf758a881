"""Release and approval dates from a patch catalog, joined onto a patches frame.

:func:`with_release_dates` is the analysis side of
:func:`~patchframe.aws.load_patch_catalog`: it needs only the catalog frame, so
the SLA clocks (``clock="release"`` / ``"approval"`` in :func:`patchframe.summary.sla`)
work on a catalog read back from a file as well as on a fresh one.
"""

from __future__ import annotations

import re

import pandas as pd

from ._frames import require_columns

__all__ = [
    "CATALOG_COLUMNS",
    "available_patches_product",
    "linux_patch_id",
    "with_release_dates",
]

#: The columns of a patch catalog, in order.
CATALOG_COLUMNS = (
    "baseline_id",
    "patch_id",
    "kb_id",
    "title",
    "release_date",
    "approval_date",
    "deployment_status",
    "compliance_level",
    "msrc_severity",
    "product",
    "cve_ids",
)

# DescribeAvailablePatches serves Amazon Linux 1 and 2 only (besides Windows), and
# only with a PRODUCT filter; its product names carry the PlatformVersion.
_AMAZON_LINUX = re.compile(r"2|20\d\d\.\d\d")


def available_patches_product(platform_name: object, platform_version: object) -> str | None:
    """The PRODUCT filter value DescribeAvailablePatches knows a Linux node's patches by.

    None for platforms that call does not serve (everything but Amazon Linux 1 and 2).

    Examples
    --------
    >>> available_patches_product("Amazon Linux", "2")
    'AmazonLinux2'
    >>> available_patches_product("Amazon Linux AMI", "2018.03")
    'AmazonLinux2018.03'
    >>> available_patches_product("Amazon Linux", "2023") is None
    True
    """
    if not isinstance(platform_name, str) or not platform_name.startswith("Amazon Linux"):
        return None
    version = str(platform_version)
    return f"AmazonLinux{version}" if _AMAZON_LINUX.fullmatch(version) else None


def linux_patch_id(name: str, arch: str, epoch: object, version: str, release: str) -> str:
    """A Linux patch's id as the API writes it, and DescribeInstancePatches in ``Title``.

    Examples
    --------
    >>> linux_patch_id("zlib", "x86_64", 0, "1.2.7", "21.amzn2.0.2")
    'zlib.x86_64:0:1.2.7-21.amzn2.0.2'
    """
    return f"{name}.{arch}:{epoch}:{version}-{release}"


_LINUX_ID = re.compile(r"(?P<name>[^:]+)\.(?P<arch>[^.:]+):\d+:(?P<rest>.+)")


def _key_table(catalog: pd.DataFrame) -> pd.DataFrame:
    """The catalog's dates by join key: KB number, else the patch id, and for Linux
    patch ids also the ``name-version-release.arch`` form patches give as ``kb_id``
    (the rows DescribeInstancePatches leaves without a ``Title``)."""
    patch_id = catalog["patch_id"].astype("string")
    key = catalog["kb_id"].astype("string").fillna(patch_id)
    parts = patch_id.str.extract(_LINUX_ID)
    package = parts["name"] + "-" + parts["rest"] + "." + parts["arch"]
    columns = {
        "baseline_id": catalog["baseline_id"].astype("string"),
        "release_date": catalog["release_date"],
        "approval_date": catalog["approval_date"],
    }
    table = pd.concat(
        [
            pd.DataFrame({"key": key, **columns}),
            pd.DataFrame({"key": package.where(catalog["kb_id"].isna()), **columns}),
        ],
        ignore_index=True,
    )
    return table.dropna(subset=["key"])


def with_release_dates(patches: pd.DataFrame, catalog: pd.DataFrame) -> pd.DataFrame:
    """Add ``release_date`` and ``approval_date`` (UTC) from a patch catalog.

    Windows rows are matched on their KB number (``kb_id``), Linux rows on
    ``title``, which DescribeInstancePatches fills with the patch id the catalog
    calls ``patch_id`` (``name.arch:epoch:version-release``); Linux rows the
    service sent without a title, on ``kb_id`` (``name-version-release.arch``,
    which the patch id also gives). A patch's release
    date is the same in every baseline; its approval date is taken from the row's
    own baseline where the catalog has it, else the earliest any baseline gives.

    Parameters
    ----------
    patches
        A patches frame (kb_id and title; platform_type and baseline_id if present).
    catalog
        What :func:`~patchframe.aws.load_patch_catalog` returns.

    Returns
    -------
    pandas.DataFrame
        A copy of ``patches`` with the two columns, NaT where the catalog does not
        know the patch; ``attrs["unmatched_release_dates"]`` counts those rows.

    Raises
    ------
    ValidationError
        If either is not a DataFrame.
    ColumnsError
        If either frame lacks a column the join needs.

    Examples
    --------
    >>> catalog = pd.DataFrame({
    ...     "baseline_id": ["pb-0123456789abcdef0", None],
    ...     "patch_id": ["8f1c0bde-0000-4000-8000-000000000001", "zlib.x86_64:0:1.2.7-21.amzn2"],
    ...     "kb_id": ["KB5039227", None],
    ...     "release_date": pd.to_datetime(["2024-06-11", "2024-05-02"], utc=True),
    ...     "approval_date": pd.to_datetime(["2024-06-18", None], utc=True),
    ... })
    >>> patches = pd.DataFrame({
    ...     "platform_type": ["Windows", "Linux", "Linux"],
    ...     "kb_id": ["KB5039227", "zlib-1.2.7-21.amzn2.x86_64", "curl-8.5.0-1.amzn2.x86_64"],
    ...     "title": ["2024-06 Cumulative Update", "zlib.x86_64:0:1.2.7-21.amzn2",
    ...               "curl.x86_64:0:8.5.0-1.amzn2"],
    ... })
    >>> dated = with_release_dates(patches, catalog)
    >>> dated[["release_date", "approval_date"]]
                   release_date             approval_date
    0 2024-06-11 00:00:00+00:00 2024-06-18 00:00:00+00:00
    1 2024-05-02 00:00:00+00:00                       NaT
    2                       NaT                       NaT
    >>> dated.attrs["unmatched_release_dates"]
    1
    """
    require_columns(
        patches, ["kb_id", "title"], needed_by="with_release_dates", argument="patches"
    )
    require_columns(
        catalog,
        ["baseline_id", "patch_id", "kb_id", "release_date", "approval_date"],
        needed_by="with_release_dates",
        argument="catalog",
    )
    table = _key_table(catalog)
    kb = patches["kb_id"].astype("string")
    title = patches["title"].astype("string")
    if "platform_type" in patches.columns:
        windows = patches["platform_type"].astype("string").eq("Windows").fillna(False)
    else:
        windows = kb.str.fullmatch(r"KB\d+").fillna(False)
    # Linux rows by the patch id in title; rows the service sent without a title by kb_id.
    key = kb.where(windows | title.isna(), title)

    release = table.groupby("key")["release_date"].min()
    approval_any = table.groupby("key")["approval_date"].min()
    # reindex, not map: it keeps the dates' dtype even for a catalog with no rows.
    release_date = pd.Series(release.reindex(key).to_numpy(), index=patches.index)
    approval_date = pd.Series(approval_any.reindex(key).to_numpy(), index=patches.index)
    if "baseline_id" in patches.columns:
        own = (
            table.dropna(subset=["baseline_id"])
            .groupby(["baseline_id", "key"])["approval_date"]
            .min()
        )
        pairs = pd.MultiIndex.from_arrays([patches["baseline_id"].astype("string"), key])
        by_baseline = pd.Series(own.reindex(pairs).to_numpy(), index=patches.index)
        approval_date = by_baseline.where(by_baseline.notna(), approval_date)

    dated = patches.copy()
    dated["release_date"] = pd.to_datetime(release_date.to_numpy(), utc=True)
    dated["approval_date"] = pd.to_datetime(approval_date.to_numpy(), utc=True)
    dated.attrs["unmatched_release_dates"] = int(dated["release_date"].isna().sum())
    return dated
