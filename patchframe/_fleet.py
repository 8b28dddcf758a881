"""The result of a fleet load: patches, nodes, errors, tags, accounts, and when it was loaded."""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ._frames import TimeLike, string_arguments, utc_timestamp
from ._html import fleet_html
from ._nodes import DEFAULT_STALE_DAYS, NODE_KEY, node_positions, stale_mask, unreachable_mask
from ._schema import account_count, empty_accounts, empty_tags, scan_ages
from ._text import counted
from .exceptions import ValidationError

__all__ = ["TAG_PREFIX", "Fleet", "tag_values"]

#: How a tag's column is named in ``nodes`` and ``patches``: ``tag:Team``.
TAG_PREFIX = "tag:"


@dataclass(frozen=True, eq=False)
class Fleet:
    """Every node's patches, the nodes themselves, what failed, the nodes' tags, the accounts.

    Attributes
    ----------
    patches
        One row per node and patch: the data contract's columns plus the node
        columns computer_name, platform_type, platform_name, platform_version,
        patch_group and baseline_id.
    nodes
        One row per node: its account (``account_id``; ``account_name``, NA
        unless the load knew the names), instance information, patch-state
        counts (columns named after the states in lower case), ``compliance`` by
        AWS's rules, ``patch_rows``, the rows loaded (NA for a node that
        failed), and beside AWS's verdict ``scan_age`` (from the last patch
        operation to ``loaded_at``) and ``reachable`` (False for ping status
        ConnectionLost or Inactive).
    errors
        One row per failed node or call: account_id, region, instance_id,
        operation, error_code, message, attempts. Empty when nothing failed.
    tags
        One row per node and tag key: account_id, region, instance_id, key, value
        (categories, exactly as AWS sends them). :meth:`with_tags` puts chosen
        keys into ``nodes`` and ``patches`` as columns.
    loaded_at
        When the load started (UTC): what ``scan_age`` is measured to. None for
        a fleet put together by hand.
    accounts
        One row per account of the load, in the order listed: account_id,
        account_name, state (AWS Organizations' word), loaded, regions (those
        loaded, joined with ", "), nodes, non_compliant_nodes (NA for an account
        that did not load) and error_code (NA for one that did). Empty for a
        fleet put together by hand or read back from a snapshot store. The last
        field, so that the others keep their positions.

    Examples
    --------
    >>> import patchframe as pf
    >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    >>> fleet.figures()["errors"]
    0
    >>> fleet.tags.query("instance_id == 'mi-0a1b2c3d4e5f67890'")[["key", "value"]]
                key          value
    30         Name  onprem-app-01
    31  Environment           prod
    32         Team             it
    33  Patch Group   onprem-linux
    """

    patches: pd.DataFrame
    nodes: pd.DataFrame
    errors: pd.DataFrame
    tags: pd.DataFrame = field(default_factory=empty_tags)
    loaded_at: pd.Timestamp | None = None
    accounts: pd.DataFrame = field(default_factory=empty_accounts)

    def figures(self, *, stale_after_days: float = DEFAULT_STALE_DAYS) -> dict[str, int]:
        """The figures at a glance: nodes, patches, non-compliant, stale and unreachable nodes.

        Named apart from :mod:`patchframe.summary`, whose functions return frames:
        these are a few counts, as the repr and the HTML show them. ``stale_nodes``
        counts nodes never scanned or last scanned more than ``stale_after_days``
        before :attr:`loaded_at`; both it and ``unreachable_nodes`` are 0 for a
        nodes frame without ``scan_age`` or ``reachable`` (a snapshot saved before
        they existed). ``accounts`` counts the rows of :attr:`accounts` when it has
        any (accounts that failed or hold no nodes included), else the accounts of
        the nodes.

        Examples
        --------
        >>> import patchframe as pf
        >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
        >>> figures = fleet.as_of("2024-06-14T08:00Z").figures()
        >>> figures["accounts"], figures["regions"], figures["errors"]
        (1, 1, 0)
        >>> figures["stale_nodes"], figures["unreachable_nodes"]
        (2, 1)
        """
        nodes = self.nodes
        stale = unreachable = 0
        if {"scan_age", "operation_end_time"} <= set(nodes.columns):
            stale = int(stale_mask(nodes, stale_after_days, needed_by="figures").sum())
        if "reachable" in nodes.columns:
            unreachable = int(unreachable_mask(nodes, needed_by="figures").sum())
        return {
            "nodes": len(nodes),
            "patches": len(self.patches),
            "non_compliant_nodes": int((nodes["compliance"] == "NON_COMPLIANT").sum()),
            "failed_nodes": int(nodes["patch_rows"].isna().sum()),
            "errors": len(self.errors),
            "accounts": account_count(self.accounts, nodes),
            "regions": int(nodes["region"].nunique()),
            "stale_nodes": stale,
            "unreachable_nodes": unreachable,
        }

    def with_tags(self, *keys: str) -> Fleet:
        """This fleet with one column per tag key in ``nodes`` and ``patches``.

        Each column is named ``tag:<key>`` (``tag:Team``), holds the node's value
        as a category, and is NA where the node lacks the tag. Keys match exactly,
        case included.

        Raises
        ------
        ValidationError
            No key given; a key no node has (when the fleet has tags at all: a
            fleet loaded without them gets all-NA columns); or a column of that
            name already in ``nodes`` or ``patches``.

        Examples
        --------
        >>> import patchframe as pf
        >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
        >>> tagged = fleet.with_tags("Team", "Environment")
        >>> tagged.nodes[["instance_id", "tag:Team", "tag:Environment"]].head(3)
                   instance_id tag:Team tag:Environment
        0  i-0e1f2a3b4c5d6e7f8      web            prod
        1  i-0b7e2d4f6a8c91023     data            prod
        2  i-04c9e1a7b3d5f2068 platform             dev
        >>> tagged.patches["tag:Team"].value_counts().head(2).to_dict()
        {'data': 460, 'payments': 335}
        >>> fleet.with_tags("team")
        Traceback (most recent call last):
        ...
        patchframe.exceptions.ValidationError: with_tags: no node has the tag key 'team' ...
        """
        names = list(
            dict.fromkeys(
                string_arguments(keys, what="tag key", example="fleet.with_tags('Team')")
            )
        )
        for key in names:
            column = TAG_PREFIX + key
            for frame_name, frame in (("nodes", self.nodes), ("patches", self.patches)):
                if column in frame.columns:
                    raise ValidationError(
                        f"with_tags: {frame_name} already has a column {column!r}; "
                        "a tag is added once (drop the column to add it again)"
                    )
        values = {key: tag_values(self, key, needed_by="with_tags") for key in names}
        # Shallow copies: pandas copies on write, so the new columns never reach this fleet.
        nodes = self.nodes.copy(deep=False)
        patches = self.patches.copy(deep=False)
        rows = node_positions(patches, nodes)
        for key, per_node in values.items():
            nodes[TAG_PREFIX + key] = per_node
            codes = np.append(per_node.cat.codes.to_numpy(), -1)[rows]
            categories = pd.Index(per_node.cat.categories, dtype="str")
            patches[TAG_PREFIX + key] = pd.Categorical.from_codes(codes, categories=categories)
        return dataclasses.replace(self, nodes=nodes, patches=patches)

    def as_of(self, when: TimeLike) -> Fleet:
        """This fleet with ``scan_age`` measured to ``when`` instead of the load's time.

        For a fleet whose clock is not now: the bundled sample, last scanned up to
        2024-06-14T08:00Z, or a snapshot read back from a store.

        Examples
        --------
        >>> import patchframe as pf
        >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
        >>> sample = fleet.as_of("2024-06-14T08:00Z")
        >>> sample.loaded_at, sample.nodes["scan_age"].max().days
        (Timestamp('2024-06-14 08:00:00+0000', tz='UTC'), 14)
        """
        stamp = utc_timestamp(when, name="when")
        nodes = self.nodes.copy(deep=False)
        nodes["scan_age"] = scan_ages(nodes["operation_end_time"], stamp)
        return dataclasses.replace(self, nodes=nodes, loaded_at=stamp)

    def __repr__(self) -> str:
        s = self.figures()
        return (
            f"<Fleet: {counted(s['nodes'], 'node')} in {counted(s['accounts'], 'account')} and "
            f"{counted(s['regions'], 'region')}, {counted(s['patches'], 'patch', 'patches')}, "
            f"{counted(s['non_compliant_nodes'], 'non-compliant node')}, "
            f"{counted(s['errors'], 'error')}>"
        )

    def _repr_html_(self) -> str:
        """The figures, nodes by compliance and patches by state, as Jupyter shows a Fleet.

        Examples
        --------
        >>> import patchframe as pf
        >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
        >>> "non-compliant nodes" in fleet._repr_html_()
        True
        """
        return fleet_html(self)


def tag_values(fleet: Fleet, key: str, *, needed_by: str) -> pd.Series[Any]:
    """The value of tag ``key`` for each of ``fleet.nodes`` (a category, NA where absent).

    Raises ValidationError for a key no node has, when the fleet has any tags.
    """
    tags = fleet.tags
    known = set(tags["key"].astype("str").dropna()) if len(tags) else set()
    if known and key not in known:
        close = difflib.get_close_matches(key, sorted(known), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValidationError(
            f"{needed_by}: no node has the tag key {key!r} (keys match exactly, case "
            f"included){hint} Keys present: {', '.join(sorted(known))}"
        )
    nodes = fleet.nodes
    chosen = tags[tags["key"].astype("str") == key]
    keys = [c for c in NODE_KEY if c in nodes.columns]
    found = node_positions(chosen[keys], nodes[keys])
    values = np.full(len(nodes), None, dtype=object)
    values[found[found >= 0]] = chosen["value"].astype("str").to_numpy()[found >= 0]
    present = sorted({v for v in values if v is not None})
    dtype = pd.CategoricalDtype(pd.Index(present, dtype="str"))
    return pd.Series(values, index=nodes.index, dtype=object).astype(dtype)
