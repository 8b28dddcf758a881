"""The nodes frame beside the patches: which node a patch row belongs to, which nodes are stale.

A patches frame names its node by account, region and instance id; :func:`node_positions`
finds each row's node in a nodes frame (``Fleet.nodes``), deciding once per distinct
node, never per row, so that node columns (tags, staleness) reach a million patch rows
in milliseconds. :func:`stale_mask` and :func:`unreachable_mask` are the rules the
filters, the summaries and a Fleet's figures share.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np
import numpy.typing as npt
import pandas as pd

from ._frames import category_codes, require_columns
from .exceptions import ValidationError

__all__ = ["DEFAULT_STALE_DAYS", "NODE_KEY", "node_positions", "stale_mask", "unreachable_mask"]

#: A node whose last patch scan is older than this many days is stale, by default.
DEFAULT_STALE_DAYS = 7
#: The columns naming a node, in the patches frame and the nodes frame alike.
NODE_KEY: tuple[str, ...] = ("account_id", "region", "instance_id")


def node_positions(patches: pd.DataFrame, nodes: pd.DataFrame) -> npt.NDArray[np.intp]:
    """For each patch row, the position of its node in ``nodes``; -1 where it has none.

    Rows match on the node key columns both frames have (``instance_id`` at least);
    an unknown account or region (NA) matches NA.

    Examples
    --------
    >>> nodes = pd.DataFrame({"instance_id": ["i-00000001", "i-00000002"]})
    >>> patches = pd.DataFrame({"instance_id": ["i-00000002", "i-00000009", "i-00000002"]})
    >>> node_positions(patches, nodes).tolist()
    [1, -1, 1]
    """
    require_columns(patches, ["instance_id"], needed_by="node_positions (patches)")
    require_columns(nodes, ["instance_id"], needed_by="node_positions (nodes)")
    keys = [c for c in NODE_KEY if c in patches.columns and c in nodes.columns]
    if nodes.duplicated(keys).any():
        raise ValidationError(
            "the nodes frame lists one node (" + ", ".join(keys) + ") twice: "
            "a nodes frame has one row per node"
        )
    # Each row's key as one int64 from its columns' category codes (NA is code -1), and
    # each node's key the same way, in the patches' categories: the few thousand nodes
    # are looked up, the million rows only indexed.
    rows = np.zeros(len(patches), dtype=np.int64)
    node_keys = np.zeros(len(nodes), dtype=np.int64)
    in_patches = np.ones(len(nodes), dtype=np.bool_)
    for column in keys:
        codes, names = category_codes(patches[column])
        labels = nodes[column]
        found = np.asarray(pd.Index(names).get_indexer(labels.astype(names.dtype)))
        absent = labels.isna().to_numpy()
        in_patches &= absent | (found >= 0)
        width = len(names) + 1
        rows = rows * width + (codes + 1)
        node_keys = node_keys * width + np.where(absent, 0, found + 1)
    listed = np.flatnonzero(in_patches)
    found = np.asarray(pd.Index(node_keys[listed]).get_indexer(pd.Index(rows)))
    return np.where(found >= 0, np.append(listed, -1)[found], -1).astype(np.intp)


def stale_mask(nodes: pd.DataFrame, days: float, *, needed_by: str) -> npt.NDArray[np.bool_]:
    """Nodes whose last scan is older than ``days`` at the load's time, or never happened.

    Decided on ``scan_age`` (measured to ``Fleet.loaded_at`` when the fleet was
    loaded, never to the wall clock) and ``operation_end_time`` (NaT: never scanned).
    A scanned node whose age is unknown (a frame built without a load time) is
    not stale.
    """
    require_columns(nodes, ["scan_age", "operation_end_time"], needed_by=needed_by)
    limit = pd.Timedelta(days=check_days(days, needed_by=needed_by))
    ages = pd.to_timedelta(nodes["scan_age"])
    old = (ages > limit).fillna(False).to_numpy(dtype=np.bool_)
    never = pd.isna(nodes["operation_end_time"]).to_numpy(dtype=np.bool_)
    return old | never


def unreachable_mask(nodes: pd.DataFrame, *, needed_by: str) -> npt.NDArray[np.bool_]:
    """Nodes whose agent no longer answers: ``reachable`` is False (ConnectionLost, Inactive)."""
    require_columns(nodes, ["reachable"], needed_by=needed_by)
    return ~nodes["reachable"].fillna(True).to_numpy(dtype=np.bool_)


def check_days(days: object, *, needed_by: str) -> float:
    """``days`` as a number of days of 0 or more; ValidationError otherwise."""
    number = float(days) if isinstance(days, Real) and not isinstance(days, bool) else math.nan
    if not 0 <= number < math.inf:
        raise ValidationError(
            f"{needed_by}: days {days!r} is not a number of days of 0 or more, e.g. 7"
        )
    return number
