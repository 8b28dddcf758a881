"""Compliance over time: :func:`trend`, figures per snapshot of a store."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from .._frames import cve_lists, require_columns, severity_levels, state_mask
from .._schema import NON_COMPLIANT_STATES, OPEN_STATES, SEVERITY_LEVELS
from ._diff import NODE_KEY, Numbers, _node_numbers, node_flags
from ._store import StorePath, _each_snapshot

__all__ = ["LEVEL_COLUMNS", "METRIC_LABELS", "SCOPES", "TREND_METRICS", "trend"]

#: Scopes of a trend frame, broadest first.
SCOPES = pd.CategoricalDtype(["fleet", "platform", "node"])
#: The missing patches of each severity level, worst first.
LEVEL_COLUMNS = [f"missing_{level.lower()}" for level in reversed(SEVERITY_LEVELS)]
TREND_METRICS = ("nodes", "non_compliant_nodes", "missing", *LEVEL_COLUMNS, "open_cves")
METRIC_LABELS = {
    "nodes": "nodes",
    "non_compliant_nodes": "non-compliant nodes",
    "missing": "missing and failed patches",
    **{c: f"missing and failed {c.split('_')[1]} patches" for c in LEVEL_COLUMNS},
    "open_cves": "open CVEs",
}
_SUMMED = list(TREND_METRICS[:-1])
_PATCH_COLUMNS = (*NODE_KEY, "state", "severity_level", "cve_ids", "platform_name")
_NODE_COLUMNS = (*NODE_KEY, "platform_name", "compliance")


def _texts(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype(dict.fromkeys(frame.columns, "str"))


def _per_node(
    patches: pd.DataFrame, nodes: pd.DataFrame, node: Numbers, listed: Numbers, span: int
) -> pd.DataFrame:
    """One row per node either frame names: its number ``_node`` (``node`` and ``listed``
    number the rows of ``patches`` and ``nodes``), its key (str), platform and figures."""
    # AWS's verdict and platform, where the nodes frame has the node, win.
    last = ~pd.Series(listed).duplicated(keep="last").to_numpy()
    verdicts = nodes[last]
    from_nodes = _texts(verdicts[list(NODE_KEY)]).assign(
        _node=listed[last],
        verdict=(verdicts["compliance"] == "NON_COMPLIANT").to_numpy(dtype=bool, na_value=False),
        known=True,
        platform=verdicts["platform_name"].astype(object).to_numpy(),
    )
    # Nodes the nodes frame lacks: their key, and the platform of their last row (NA
    # there is "unknown", not "look further").
    unlisted = np.flatnonzero(~node_flags(span, listed)[node])
    rows = patches[[*NODE_KEY, "platform_name"]].iloc[unlisted].assign(_node=node[unlisted])
    rows = rows.drop_duplicates("_node", keep="last")
    from_patches = _texts(rows[list(NODE_KEY)]).assign(
        _node=rows["_node"], platform=rows["platform_name"].astype(object)
    )
    table = pd.concat([from_nodes, from_patches], ignore_index=True)
    figures = _figures_per_node(patches, node).reindex(table["_node"], fill_value=0)
    table[_SUMMED[1:]] = figures.to_numpy(dtype="int64")
    known_rows = table["known"].notna().to_numpy(dtype=bool)
    table["non_compliant_nodes"] = table["non_compliant_nodes"].clip(upper=1)
    table.loc[known_rows, "non_compliant_nodes"] = table.loc[known_rows, "verdict"].astype("int64")
    table["nodes"] = 1
    table["platform"] = table["platform"].fillna("unknown").astype("str")
    return table.sort_values(list(NODE_KEY), kind="stable", ignore_index=True)


def _figures_per_node(patches: pd.DataFrame, node: Numbers) -> pd.DataFrame:
    """The summed figures of each node with a non-compliant row, by node number."""
    # Its rows only, an eighth of the fleet's: the others count in no figure.
    counted = np.flatnonzero(state_mask(patches, NON_COMPLIANT_STATES))
    rows = patches[["state", "severity_level"]].iloc[counted]
    open_rows = state_mask(rows, OPEN_STATES)
    levels = severity_levels(rows["severity_level"]).to_numpy()
    flags = pd.DataFrame(
        {
            "non_compliant_nodes": np.ones(len(rows), dtype="int64"),
            "missing": open_rows,
            **{
                column: open_rows & (levels == level)
                for column, level in zip(LEVEL_COLUMNS, reversed(SEVERITY_LEVELS), strict=True)
            },
        }
    )
    return flags.groupby(node[counted]).sum()


def _open_cves(patches: pd.DataFrame, node: Numbers) -> pd.DataFrame:
    """The distinct (``_node``, ``cve_id``) pairs of the open patches."""
    at = np.flatnonzero(state_mask(patches, OPEN_STATES) & patches["cve_ids"].notna().to_numpy())
    rows = pd.DataFrame(
        {"_node": node[at], "cve_ids": patches["cve_ids"].array.take(at)}
    ).drop_duplicates()
    pairs = rows.merge(cve_lists(rows["cve_ids"]), on="cve_ids")[["_node", "cve_id"]]
    return pairs.drop_duplicates()


def _scope_table(scope: str, figures: pd.DataFrame) -> pd.DataFrame:
    """``figures`` (a ``group`` column and the metrics) under its scope, counts int64."""
    return pd.DataFrame(
        {
            "scope": pd.Categorical([scope] * len(figures), dtype=SCOPES),
            "group": pd.Index(figures["group"], dtype="str"),
            **{m: figures[m].to_numpy(dtype="int64") for m in TREND_METRICS},
        }
    )


def _figures(patches: pd.DataFrame, nodes: pd.DataFrame) -> pd.DataFrame:
    """One snapshot's figures per scope: the fleet, each platform, each node."""
    require_columns(patches, _PATCH_COLUMNS, needed_by="trend (patches)")
    require_columns(nodes, _NODE_COLUMNS, needed_by="trend (nodes)")
    (node, listed), span = _node_numbers([patches, nodes])
    per_node = _per_node(patches, nodes, node, listed, span)
    cves = _open_cves(patches, node).merge(per_node[["_node", "platform"]], on="_node")

    fleet = per_node[_SUMMED].sum().to_frame().T.assign(group="fleet")
    fleet["open_cves"] = cves["cve_id"].nunique()
    platforms = per_node.groupby("platform")[_SUMMED].sum()
    platforms["open_cves"] = cves.groupby("platform")["cve_id"].nunique()
    platforms = platforms.fillna({"open_cves": 0}).rename_axis("group").reset_index()
    per_node["open_cves"] = (
        per_node["_node"].map(cves.groupby("_node")["cve_id"].nunique()).fillna(0).to_numpy()
    )
    per_node["group"] = per_node["instance_id"]
    tables = [_scope_table("fleet", fleet), _scope_table("platform", platforms)]
    return pd.concat([*tables, _scope_table("node", per_node)], ignore_index=True)


def trend(
    store: StorePath, *, filesystem: object = None, on_error: Literal["raise", "skip"] = "raise"
) -> pd.DataFrame:
    """Compliance over time: figures per snapshot for the fleet, each platform and each node.

    Parameters
    ----------
    store
        A folder or a URI such as ``s3://bucket/prefix``.
    filesystem
        As for :func:`save_snapshot`.
    on_error
        What a damaged snapshot (or a folder in the store that is not one) does:
        ``"raise"`` a StoreError naming it, or ``"skip"`` it with a
        :class:`~patchframe.exceptions.StoreWarning` naming it, giving the figures
        of every other snapshot.

    Returns
    -------
    pandas.DataFrame
        Tidy: one row per snapshot and scope, oldest snapshot first, then the
        fleet row, platforms by name, nodes by account, region and id. Columns:

        - ``snapshot`` (the id, str) and ``time`` (UTC);
        - ``scope``: ``"fleet"``, ``"platform"`` or ``"node"`` (a category);
        - ``group``: ``"fleet"``, the platform name (``"unknown"`` where none is
          known) or the node's instance id (str);
        - ``nodes`` and ``non_compliant_nodes``: by AWS's verdict, the
          ``compliance`` column of the nodes frame, as in ``Fleet.figures()``;
        - ``missing``: MISSING or FAILED patches (node x patch rows), and
          ``missing_critical`` ... ``missing_unspecified``, the same by severity_level;
        - ``open_cves``: distinct CVE ids those patches list.

        All counts are ``int64``.

    Raises
    ------
    StoreError
        A snapshot is damaged, or the store holds a folder that is not a snapshot
        (unless ``on_error="skip"``); the message names it.
    ValidationError
        ``store`` is not a path or URI, or ``on_error`` is neither value.

    Examples
    --------
    >>> import tempfile, patchframe as pf
    >>> from patchframe.history import save_snapshot, trend
    >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    >>> with tempfile.TemporaryDirectory() as store:
    ...     _ = save_snapshot(fleet, store, when="2024-06-14")
    ...     figures = trend(store)
    >>> fleet_rows = figures[figures["scope"] == "fleet"]
    >>> fleet_rows[["nodes", "non_compliant_nodes", "missing", "missing_critical", "open_cves"]]
       nodes  non_compliant_nodes  missing  missing_critical  open_cves
    0     13                   11      271                41         44
    >>> figures["scope"].value_counts().to_dict()
    {'node': 13, 'platform': 6, 'fleet': 1}
    """
    wanted = {"patches": _PATCH_COLUMNS, "nodes": _NODE_COLUMNS}
    tables = []
    for snapshot, frames in _each_snapshot(store, filesystem, wanted, on_error=on_error):
        table = _figures(frames["patches"], frames["nodes"])
        table.insert(0, "snapshot", pd.Series(snapshot.id, index=table.index, dtype="str"))
        table.insert(1, "time", pd.Series(snapshot.time, index=table.index).dt.as_unit("ns"))
        tables.append(table)
    if not tables:
        empty = _scope_table("fleet", pd.DataFrame(columns=["group", *TREND_METRICS]))
        empty.insert(0, "snapshot", pd.Series(dtype="str", index=empty.index))
        empty.insert(1, "time", pd.DatetimeIndex([], dtype="datetime64[ns, UTC]"))
        return empty
    return pd.concat(tables, ignore_index=True)
