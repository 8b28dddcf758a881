"""Patch history: what changed between two fleets, compliance over time.

:func:`diff` says what changed between two fleets, :func:`trend` and :func:`plot_trend`
show compliance over time, from the snapshots in a store. The store itself,
:func:`save_snapshot`, :func:`list_snapshots`, :func:`load_snapshot` and
:class:`Snapshot`, lives in :mod:`patchframe.history._store` (its notes describe the layout,
safe writes and damage); this module re-exports it.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt
import pandas as pd
from matplotlib.axes import Axes

from .._axes import check_top, no_data, over_time
from .._fleet import Fleet
from .._frames import (
    Codes,
    CveLists,
    category_codes,
    distinct_pairs,
    level_codes,
    require_columns,
    state_codes,
    state_mask,
    texts_at,
    utc_nanoseconds,
)
from .._palette import severity_color
from .._schema import NON_COMPLIANT_STATES, PATCH_DTYPES, SEVERITY_LEVELS, STATES
from .._text import counted
from ..exceptions import ValidationError
from ._store import (
    Snapshot,
    StorePath,
    _read_snapshot,
    _scan,
    _store,
    list_snapshots,
    load_snapshot,
    save_snapshot,
)

__all__ = [
    "FleetDiff",
    "Snapshot",
    "diff",
    "list_snapshots",
    "load_snapshot",
    "plot_trend",
    "save_snapshot",
    "trend",
]

_OPEN = frozenset({"MISSING", "FAILED"})
_INSTALLED = frozenset(
    {"INSTALLED", "INSTALLED_OTHER", "INSTALLED_PENDING_REBOOT", "INSTALLED_REJECTED"}
)
_LEVEL_DTYPE: pd.CategoricalDtype = PATCH_DTYPES["severity_level"]
NAT = np.iinfo(np.int64).min
_KEY = ("account_id", "region", "instance_id")


# --- what changed: diff -------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class FleetDiff:
    """What changed between two fleets, as tidy frames.

    Node frames (``added_nodes``, ``removed_nodes``) have one row per node:
    ``account_id``, ``region``, ``instance_id``, ``platform_name`` (str),
    ``patches`` (its patch rows) and ``missing`` (of those, MISSING or FAILED),
    counts ``int64``, sorted by account, region and node.

    Patch frames (``newly_missing``, ``fixed``, ``changed``) have one row per node
    and patch, on nodes in both fleets: ``account_id``, ``region``,
    ``instance_id``, ``kb_id``, ``title``, ``cve_ids`` (str), ``severity_level``,
    ``old_state`` and ``new_state`` (the contract's ordered state category, NA
    where the patch was not listed on that side) and ``installed_time`` (the new
    side's, UTC), sorted worst severity first, then by account, region, node, patch.

    CVE frames (``cves_opened``, ``cves_closed``) have one row per node and CVE id
    listed by its MISSING or FAILED patches, on nodes in both fleets:
    ``account_id``, ``region``, ``instance_id``, ``cve_id``, ``kb_ids`` (the open
    patches listing it, comma-separated; str), ``severity_level`` (the highest of
    theirs), sorted worst first, then by CVE, account, region, node.

    Attributes
    ----------
    added_nodes, removed_nodes
        Nodes only in the new fleet, only in the old one.
    newly_missing
        Patches MISSING or FAILED now that were not before: released since, or
        broken by a failed install.
    fixed
        Patches MISSING or FAILED before and installed now (INSTALLED,
        INSTALLED_OTHER, INSTALLED_PENDING_REBOOT or INSTALLED_REJECTED).
    changed
        Any other change of state, a patch newly listed or no longer listed included.
    cves_opened, cves_closed
        CVEs open on a node now and not before, and the other way round.
    """

    added_nodes: pd.DataFrame
    removed_nodes: pd.DataFrame
    newly_missing: pd.DataFrame
    fixed: pd.DataFrame
    changed: pd.DataFrame
    cves_opened: pd.DataFrame
    cves_closed: pd.DataFrame

    def counts(self) -> dict[str, int]:
        """Rows of each frame; for CVEs, distinct CVE ids.

        Examples
        --------
        See :func:`diff`.
        """
        return {
            "added_nodes": len(self.added_nodes),
            "removed_nodes": len(self.removed_nodes),
            "newly_missing": len(self.newly_missing),
            "fixed": len(self.fixed),
            "changed": len(self.changed),
            "cves_opened": int(self.cves_opened["cve_id"].nunique()),
            "cves_closed": int(self.cves_closed["cve_id"].nunique()),
        }

    def summary(self) -> str:
        """What changed, in one line.

        Examples
        --------
        See :func:`diff`.
        """
        c = self.counts()
        return (
            f"{counted(c['added_nodes'], 'node')} added, {c['removed_nodes']:,} removed; "
            f"{counted(c['newly_missing'], 'patch', 'patches')} newly missing, "
            f"{c['fixed']:,} fixed, {c['changed']:,} other changes; "
            f"{counted(c['cves_opened'], 'CVE')} opened, {c['cves_closed']:,} closed"
        )

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return f"<FleetDiff: {self.summary()}>"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(name.replace('_', ' '))}</th>"
            f"<td style='text-align:right'>{count:,}</td></tr>"
            for name, count in self.counts().items()
        )
        return f"<div><p>{html.escape(self.summary())}</p><table>{rows}</table></div>"


@dataclass(frozen=True)
class _Side:
    patches: pd.DataFrame
    nodes: pd.DataFrame | None


_DIFF_COLUMNS = (*_KEY, "kb_id", "title", "severity_level", "state", "installed_time", "cve_ids")


def _side(data: Fleet | pd.DataFrame, name: str) -> _Side:
    if isinstance(data, Fleet):
        side = _Side(data.patches, data.nodes)
        require_columns(data.nodes, _KEY, needed_by=f"diff ({name} nodes)")
    elif isinstance(data, pd.DataFrame):
        side = _Side(data, None)
    else:
        raise ValidationError(
            f"{name}: expected a Fleet or a patches DataFrame, got {type(data).__name__}"
        )
    require_columns(side.patches, _DIFF_COLUMNS, needed_by=f"diff ({name})")
    return side


def _union_codes(columns: Sequence[pd.Series[Any]]) -> tuple[list[Codes], pd.Index]:
    """Codes of several columns over the union of their values (-1 for NA), and that union."""
    coded = [category_codes(c) for c in columns]
    union = pd.Index(np.concatenate([np.asarray(cats, dtype=object) for _, cats in coded]))
    union = union.unique()
    return [
        np.append(union.get_indexer(cats), -1).astype(np.intp)[codes] for codes, cats in coded
    ], union


def _ids(columns: Sequence[tuple[Codes, int]]) -> tuple[Codes, int]:
    """One id (0, 1, ... in order of first appearance) per distinct tuple of codes."""
    key = np.zeros(len(columns[0][0]), dtype=np.int64)
    bound = 1
    for codes, size in columns:
        if bound * (size + 1) >= 2**62:  # renumber before the next column could overflow
            key, firsts = pd.factorize(key)
            bound = len(firsts)
        key = key * (size + 1) + (codes + 1)
        bound *= size + 1
    ids, firsts = pd.factorize(key)
    return ids.astype(np.intp), len(firsts)


def _positions(ids: Codes, n: int) -> Codes:
    """The first row of each id, -1 where it has none."""
    where = np.full(n, -1, dtype=np.intp)
    distinct, first = np.unique(ids, return_index=True)
    where[distinct] = first
    return where


def _at(values: npt.NDArray[Any], pos: Codes, fill: Any) -> npt.NDArray[Any]:
    """``values[pos]``, ``fill`` where ``pos`` is -1."""
    out = np.full(len(pos), fill, dtype=values.dtype)
    found = pos >= 0
    out[found] = values[pos[found]]
    return out


def _text_at(series: pd.Series[Any], pos: Codes) -> npt.NDArray[np.object_]:
    """The values of ``series`` at ``pos`` as objects, None where ``pos`` is -1 (NA as NA)."""
    out = np.full(len(pos), None, dtype=object)
    found = pos >= 0
    out[found] = series.iloc[pos[found]].to_numpy(dtype=object)
    return out


def _either(old: pd.Series[Any], po: Codes, new: pd.Series[Any], pn: Codes) -> Any:
    """Text from the new side where the row is there, else from the old side."""
    values = _text_at(old, po)
    from_new = pn >= 0
    values[from_new] = _text_at(new, pn[from_new])
    return pd.array(values, dtype="str")


class _Diff:
    """Both fleets on one numbering of nodes and (node, patch) rows."""

    def __init__(self, old: _Side, new: _Side) -> None:
        self.old, self.new = old, new
        self._number_nodes()
        self._number_rows()
        self._align_states()

    def _number_nodes(self) -> None:
        """One id per node (account, region, instance) named by any frame of either side."""
        frames, owners = [self.old.patches, self.new.patches], [0, 1]
        for side, fleet in enumerate((self.old, self.new)):
            if fleet.nodes is not None:
                frames.append(fleet.nodes)
                owners.append(side)
        self.key_names: dict[str, pd.Index] = {}
        flat: dict[str, Codes] = {}
        for column in _KEY:
            codes, self.key_names[column] = _union_codes([f[column] for f in frames])
            flat[column] = np.concatenate(codes)
        node, self.n_nodes = _ids([(flat[c], len(self.key_names[c])) for c in _KEY])
        self.node_codes = {c: _at_ids(node, flat[c], self.n_nodes) for c in _KEY}
        per_frame = np.split(node, np.cumsum([len(f) for f in frames])[:-1])
        self.present = np.zeros((2, self.n_nodes), dtype=bool)
        for owner, ids in zip(owners, per_frame, strict=True):
            self.present[owner, ids] = True
        self.node_old, self.node_new = per_frame[0], per_frame[1]
        self.node_frames = [
            [(f, ids) for f, ids, o in zip(frames, per_frame, owners, strict=True) if o == side]
            for side in (0, 1)
        ]

    def _number_rows(self) -> None:
        """One id per (node, patch) key, and the first row of each key on either side."""
        kb, self.kb_names = _union_codes([self.old.patches["kb_id"], self.new.patches["kb_id"]])
        nodes, kbs = np.concatenate([self.node_old, self.node_new]), np.concatenate(kb)
        rows, self.n_keys = _ids([(nodes, self.n_nodes), (kbs, len(self.kb_names))])
        n_old = len(self.old.patches)
        self.pos_old = _positions(rows[:n_old], self.n_keys)
        self.pos_new = _positions(rows[n_old:], self.n_keys)
        self.key_node = _at_ids(rows, nodes, self.n_keys)
        self.key_kb = _at_ids(rows, kbs, self.n_keys)

    def _align_states(self) -> None:
        """Each key's state on either side, on one list of states; -1 where not listed."""
        old_codes, old_names = state_codes(self.old.patches["state"])
        new_codes, new_names = state_codes(self.new.patches["state"])
        unknown = dict.fromkeys(n for n in [*old_names, *new_names] if n not in STATES)
        self.states = [*STATES, *unknown]
        self.state_old = _at(_recode(old_codes, old_names, self.states), self.pos_old, -1)
        self.state_new = _at(_recode(new_codes, new_names, self.states), self.pos_new, -1)

    def in_states(self, states: frozenset[str], codes: Codes) -> npt.NDArray[np.bool_]:
        table = np.array([*(s in states for s in self.states), False], dtype=bool)
        return table[codes]

    def node_text(self, column: str, nodes: Codes) -> pd.Index:
        return texts_at(self.key_names[column], self.node_codes[column][nodes])

    def patch_rows(self, mask: npt.NDArray[np.bool_]) -> pd.DataFrame:
        keys = np.flatnonzero(mask)
        po, pn = self.pos_old[keys], self.pos_new[keys]
        old, new = self.old.patches, self.new.patches
        times = _at(utc_nanoseconds(new["installed_time"]), pn, NAT)
        state_dtype = pd.CategoricalDtype(self.states, ordered=True)
        nodes = self.key_node[keys]
        frame = pd.DataFrame(
            {
                "account_id": self.node_text("account_id", nodes),
                "region": self.node_text("region", nodes),
                "instance_id": self.node_text("instance_id", nodes),
                "kb_id": texts_at(self.kb_names, self.key_kb[keys]),
                "title": _either(old["title"], po, new["title"], pn),
                "cve_ids": _either(old["cve_ids"], po, new["cve_ids"], pn),
                "severity_level": pd.Categorical(
                    _either(old["severity_level"], po, new["severity_level"], pn),
                    dtype=_LEVEL_DTYPE,
                ),
                "old_state": pd.Categorical.from_codes(self.state_old[keys], dtype=state_dtype),
                "new_state": pd.Categorical.from_codes(self.state_new[keys], dtype=state_dtype),
                "installed_time": pd.DatetimeIndex(times.view("M8[ns]")).tz_localize("UTC"),
            }
        )
        return _worst_first(frame, [*_KEY, "kb_id"])

    def node_rows(self, side: int, nodes: npt.NDArray[np.bool_]) -> pd.DataFrame:
        ids = np.flatnonzero(nodes)
        patches = (self.old, self.new)[side].patches
        node = (self.node_old, self.node_new)[side]
        open_rows = state_mask(patches, _OPEN)
        platform = np.full(len(ids), None, dtype=object)
        # Each frame that names the node may know its platform; the nodes frame, last, wins.
        for frame, frame_ids in self.node_frames[side]:
            if "platform_name" in frame.columns:
                pos = _positions(frame_ids, self.n_nodes)[ids]
                known = _text_at(frame["platform_name"], pos)
                platform = np.where(pd.isna(known), platform, known)
        frame = pd.DataFrame(
            {
                "account_id": self.node_text("account_id", ids),
                "region": self.node_text("region", ids),
                "instance_id": self.node_text("instance_id", ids),
                "platform_name": pd.array(platform, dtype="str"),
                "patches": np.bincount(node, minlength=self.n_nodes)[ids].astype(np.int64),
                "missing": np.bincount(node[open_rows], minlength=self.n_nodes)[ids].astype(
                    np.int64
                ),
            }
        )
        return frame.sort_values(list(_KEY), kind="stable", ignore_index=True)

    def open_cves(self, side: int, common: npt.NDArray[np.bool_]) -> _OpenCves:
        patches = (self.old, self.new)[side].patches
        node = (self.node_old, self.node_new)[side]
        cve, lists_of = category_codes(patches["cve_ids"])
        rows = np.flatnonzero(state_mask(patches, _OPEN) & (cve >= 0) & common[node])
        lists = CveLists.of(lists_of, cve[rows])
        at, which = lists.explode(cve[rows])
        kb, kb_names = category_codes(patches["kb_id"], rows[at])
        return _OpenCves(
            node[rows[at]],
            np.array(lists.ids, dtype=object)[which],
            level_codes(patches["severity_level"], rows[at]),
            kb,
            kb_names,
        )

    def cve_rows(self, now: _OpenCves, before: _OpenCves) -> pd.DataFrame:
        """The (node, CVE) pairs open in ``now`` and not in ``before``."""
        names = pd.Index(np.concatenate([now.cve, before.cve])).unique()
        width = len(names) + 1
        now_pairs = now.node.astype(np.int64) * width + names.get_indexer(now.cve)
        before_pairs = before.node.astype(np.int64) * width + names.get_indexer(before.cve)
        keep = np.flatnonzero(~np.isin(now_pairs, before_pairs))
        pairs, pair_of = np.unique(now_pairs[keep], return_inverse=True)
        worst = np.full(len(pairs), -1, dtype=np.intp)
        np.maximum.at(worst, pair_of, now.level[keep])
        node = (pairs // width).astype(np.intp)
        frame = pd.DataFrame(
            {
                "account_id": self.node_text("account_id", node),
                "region": self.node_text("region", node),
                "instance_id": self.node_text("instance_id", node),
                "cve_id": pd.array(names[pairs % width].to_numpy(), dtype="str"),
                "kb_ids": _joined(pair_of, now.kb[keep], now.kb_names, len(pairs)),
                "severity_level": pd.Categorical.from_codes(worst, dtype=_LEVEL_DTYPE),
            }
        )
        return _worst_first(frame, ["cve_id", *_KEY])


class _OpenCves(NamedTuple):
    """One entry per open patch row and CVE it lists."""

    node: Codes
    cve: npt.NDArray[np.object_]
    level: Codes
    kb: Codes
    kb_names: pd.Index


def _joined(group: Codes, codes: Codes, names: pd.Index, n_groups: int) -> Any:
    """Per group, the distinct names its codes pick, sorted and comma-separated."""
    order = np.argsort(np.asarray(names, dtype=object), kind="stable")
    alphabetical = np.asarray(names, dtype=object)[order]
    rank = np.empty(len(names), dtype=np.int64)
    rank[order] = np.arange(len(names))
    width = max(len(names), 1)
    known = codes >= 0
    # Sorted (group, name) keys: each group's names are a run, in alphabetical order.
    keys = np.unique(group[known].astype(np.int64) * width + rank[codes[known]])
    bounds = np.searchsorted(keys // width, np.arange(n_groups + 1))
    texts = alphabetical[keys % width]
    return pd.array(
        [",".join(texts[bounds[i] : bounds[i + 1]]) for i in range(n_groups)], dtype="str"
    )


def _at_ids(ids: Codes, values: Codes, n: int) -> Codes:
    """Per id, the value of (any of) its rows."""
    out = np.full(n, -1, dtype=np.intp)
    out[ids] = values
    return out


def _recode(codes: Codes, names: list[str], onto: list[str]) -> Codes:
    table = np.array([*(onto.index(n) for n in names), -1], dtype=np.intp)
    return table[codes]


def _worst_first(frame: pd.DataFrame, then: list[str]) -> pd.DataFrame:
    return frame.sort_values(
        ["severity_level", *then],
        ascending=[False, *([True] * len(then))],
        kind="stable",
        na_position="last",
        ignore_index=True,
    )


def diff(old: Fleet | pd.DataFrame, new: Fleet | pd.DataFrame) -> FleetDiff:
    """What changed between two fleets: nodes, patch states and open CVEs.

    Rows are matched on (account_id, region, instance_id, kb_id), all at once on
    category codes: two fleets of a million rows each compare in about half a second
    when a few thousand rows changed, in a few seconds when most did.
    Nodes are those with patch rows, and with a Fleet also those in its nodes frame
    (nodes never scanned, or whose patches failed to load). Patch and CVE changes
    are reported for nodes in both fleets only; a node that came or went is in
    ``added_nodes`` or ``removed_nodes`` instead. Should a (node, patch) pair be
    listed twice in one frame, its first row counts.

    Parameters
    ----------
    old, new
        Two fleets (e.g. from :func:`load_snapshot`) or two patches frames.

    Returns
    -------
    FleetDiff
        Tidy frames ``added_nodes``, ``removed_nodes``, ``newly_missing``,
        ``fixed``, ``changed``, ``cves_opened``, ``cves_closed``, and a one-line
        :meth:`~FleetDiff.summary`.

    Raises
    ------
    ValidationError
        ``old`` or ``new`` is neither a Fleet nor a DataFrame.
    ColumnsError
        A patches frame lacks a column of the contract that ``diff`` uses.

    Examples
    --------
    >>> import patchframe as pf
    >>> from patchframe.history import diff
    >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    >>> patches = fleet.patches
    >>> later = patches[patches["instance_id"] != "i-0e8c6a4f2d0b13579"].copy()
    >>> first = (later["state"] == "MISSING").idxmax()
    >>> later.loc[first, "state"] = "INSTALLED"
    >>> changes = diff(patches, later)
    >>> print(changes)  # doctest: +NORMALIZE_WHITESPACE
    0 nodes added, 1 removed; 0 patches newly missing, 1 fixed, 0 other changes;
    0 CVEs opened, 0 closed
    >>> changes.fixed[["instance_id", "kb_id", "old_state", "new_state"]]
               instance_id      kb_id old_state  new_state
    0  i-0e1f2a3b4c5d6e7f8  KB5035530   MISSING  INSTALLED
    """
    pair = _Diff(_side(old, "old"), _side(new, "new"))
    common = pair.present[0] & pair.present[1]
    on_common = common[pair.key_node]
    was_open = pair.in_states(_OPEN, pair.state_old)
    now_open = pair.in_states(_OPEN, pair.state_new)
    newly_missing = on_common & now_open & ~was_open
    fixed = on_common & was_open & pair.in_states(_INSTALLED, pair.state_new)
    listed_differently = (pair.pos_old >= 0) != (pair.pos_new >= 0)
    changed = (
        on_common
        & ~newly_missing
        & ~fixed
        & (listed_differently | (pair.state_old != pair.state_new))
    )
    before, after = pair.open_cves(0, common), pair.open_cves(1, common)
    return FleetDiff(
        added_nodes=pair.node_rows(1, pair.present[1] & ~pair.present[0]),
        removed_nodes=pair.node_rows(0, pair.present[0] & ~pair.present[1]),
        newly_missing=pair.patch_rows(newly_missing),
        fixed=pair.patch_rows(fixed),
        changed=pair.patch_rows(changed),
        cves_opened=pair.cve_rows(after, before),
        cves_closed=pair.cve_rows(before, after),
    )


# --- compliance over time: trend -----------------------------------------------------

#: Scopes of a trend frame, broadest first.
_SCOPES = pd.CategoricalDtype(["fleet", "platform", "node"])
_LEVEL_COLUMNS = [f"missing_{level.lower()}" for level in reversed(SEVERITY_LEVELS)]
_TREND_METRICS = ("nodes", "non_compliant_nodes", "missing", *_LEVEL_COLUMNS, "open_cves")
_METRIC_LABELS = {
    "nodes": "nodes",
    "non_compliant_nodes": "non-compliant nodes",
    "missing": "missing and failed patches",
    **{c: f"missing and failed {c.split('_')[1]} patches" for c in _LEVEL_COLUMNS},
    "open_cves": "open CVEs",
}
_TREND_PATCH_COLUMNS = (*_KEY, "state", "severity_level", "cve_ids", "platform_name")
_TREND_NODE_COLUMNS = (*_KEY, "platform_name", "compliance")


def _figures(patches: pd.DataFrame, nodes: pd.DataFrame) -> pd.DataFrame:
    """One snapshot's figures per scope: the fleet, each platform, each node."""
    require_columns(patches, _TREND_PATCH_COLUMNS, needed_by="trend (patches)")
    require_columns(nodes, _TREND_NODE_COLUMNS, needed_by="trend (nodes)")
    keys = {c: _union_codes([nodes[c], patches[c]]) for c in _KEY}
    flat = {c: np.concatenate(codes) for c, (codes, _) in keys.items()}
    node, n_nodes = _ids([(flat[c], len(keys[c][1])) for c in _KEY])
    of_nodes, of_patches = node[: len(nodes)], node[len(nodes) :]
    names = pd.DataFrame({c: texts_at(keys[c][1], _at_ids(node, flat[c], n_nodes)) for c in _KEY})

    # Per node: itself, AWS's verdict, open patches, and those by level, worst first.
    open_rows = np.flatnonzero(state_mask(patches, _OPEN))
    levels = level_codes(patches["severity_level"], open_rows)
    graded = levels >= 0
    by_level = np.bincount(
        of_patches[open_rows[graded]] * len(SEVERITY_LEVELS) + levels[graded],
        minlength=n_nodes * len(SEVERITY_LEVELS),
    ).reshape(n_nodes, len(SEVERITY_LEVELS))[:, ::-1]
    per_node = [
        np.ones(n_nodes),
        _non_compliant(patches, nodes, of_patches, of_nodes, n_nodes),
        np.bincount(of_patches[open_rows], minlength=n_nodes),
        *by_level.T,
    ]
    cve_node, cve = _open_cves_by_node(patches, of_patches, open_rows)

    platform, platforms = _platforms(patches, nodes, of_patches, of_nodes, n_nodes)
    platform_order = np.argsort(np.array(platforms, dtype=object), kind="stable")
    node_order = names.sort_values(list(_KEY), kind="stable").index.to_numpy()
    scopes = {
        "fleet": (np.zeros(n_nodes, dtype=np.intp), ["fleet"], np.array([0])),
        "platform": (platform, platforms, platform_order),
        "node": (np.arange(n_nodes), names["instance_id"].tolist(), node_order),
    }
    tables = []
    for scope, (group, labels, order) in scopes.items():
        counts = [np.bincount(group, weights=v, minlength=len(labels)) for v in per_node]
        cves = distinct_pairs(group[cve_node], cve, max(int(cve.max(initial=0)) + 1, 1))[0]
        counts.append(np.bincount(cves, minlength=len(labels)))
        # A platform only the patches named, with no node left, is none; the fleet always is.
        shown = order[counts[0][order] > 0] if scope == "platform" else order
        tables.append(_scope_table(scope, [labels[i] for i in shown], [c[shown] for c in counts]))
    return pd.concat(tables, ignore_index=True)


def _non_compliant(
    patches: pd.DataFrame, nodes: pd.DataFrame, of_patches: Codes, of_nodes: Codes, n_nodes: int
) -> npt.NDArray[np.float64]:
    """1.0 per non-compliant node: AWS's verdict where the nodes frame has one, else its states."""
    bad = np.zeros(n_nodes)
    bad[of_patches[state_mask(patches, NON_COMPLIANT_STATES)]] = 1.0
    bad[of_nodes] = (nodes["compliance"] == "NON_COMPLIANT").to_numpy(dtype=bool, na_value=False)
    return bad


def _open_cves_by_node(
    patches: pd.DataFrame, of_patches: Codes, open_rows: Codes
) -> tuple[Codes, Codes]:
    """One (node, CVE index) entry per CVE listed by each open patch row."""
    cve, lists_of = category_codes(patches["cve_ids"], open_rows)
    listed = cve >= 0
    at, which = CveLists.of(lists_of, cve[listed]).explode(cve[listed])
    return of_patches[open_rows[listed][at]], which


def _platforms(
    patches: pd.DataFrame, nodes: pd.DataFrame, of_patches: Codes, of_nodes: Codes, n_nodes: int
) -> tuple[Codes, list[str]]:
    """Each node's platform, as an index into the names returned ("unknown" last)."""
    (from_nodes, from_patches), names = _union_codes(
        [nodes["platform_name"], patches["platform_name"]]
    )
    platform = np.full(n_nodes, len(names), dtype=np.intp)
    for ids, codes in ((of_patches, from_patches), (of_nodes, from_nodes)):
        platform[ids] = np.where(codes >= 0, codes, len(names))  # the nodes frame, last, wins
    return platform, [*(str(n) for n in names), "unknown"]


def _scope_table(scope: str, groups: list[str], values: list[npt.NDArray[Any]]) -> pd.DataFrame:
    columns: dict[str, Any] = {
        "scope": pd.Categorical([scope] * len(groups), dtype=_SCOPES),
        "group": pd.array(groups, dtype="str"),
    }
    for name, column in zip(_TREND_METRICS, values, strict=True):
        columns[name] = np.asarray(column).astype(np.int64)
    return pd.DataFrame(columns)


def trend(store: StorePath, *, filesystem: object = None) -> pd.DataFrame:
    """Compliance over time: figures per snapshot for the fleet, each platform and each node.

    Parameters
    ----------
    store
        A folder or a URI such as ``s3://bucket/prefix``.
    filesystem
        As for :func:`save_snapshot`.

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
          ``compliance`` column of the nodes frame, as in ``Fleet.summary()``;
        - ``missing``: MISSING or FAILED patches (node x patch rows), and
          ``missing_critical`` ... ``missing_unspecified``, the same by severity_level;
        - ``open_cves``: distinct CVE ids those patches list.

        All counts are ``int64``.

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
    where = _store(store, filesystem)
    wanted = {"patches": _TREND_PATCH_COLUMNS, "nodes": _TREND_NODE_COLUMNS}
    tables = []
    for entry in _scan(where):
        frames = _read_snapshot(where, entry, wanted)
        table = _figures(frames["patches"], frames["nodes"])
        table.insert(0, "snapshot", pd.Series(entry.id, index=table.index, dtype="str"))
        times = pd.DatetimeIndex([entry.time] * len(table), dtype="datetime64[ns, UTC]")
        table.insert(1, "time", times)
        tables.append(table)
    if not tables:
        empty = _scope_table("fleet", [], [np.array([])] * len(_TREND_METRICS))
        empty.insert(0, "snapshot", pd.Series(dtype="str", index=empty.index))
        empty.insert(1, "time", pd.DatetimeIndex([], dtype="datetime64[ns, UTC]"))
        return empty
    return pd.concat(tables, ignore_index=True)


def plot_trend(
    data: pd.DataFrame,
    *,
    ax: Axes | None = None,
    metric: str = "missing",
    scope: str = "fleet",
    top: int = 8,
) -> Axes:
    """Chart a trend frame over time.

    The fleet's ``"missing"`` is drawn as areas stacked by severity level, worst at
    the bottom, in patchframe's severity colours; any other metric or scope as one
    line per group: the ``top`` groups with the highest latest value.

    Parameters
    ----------
    data
        What :func:`trend` returns.
    ax
        The Axes to draw on; a new figure when None.
    metric
        A count column of the trend frame: ``"missing"``, ``"non_compliant_nodes"``,
        ``"open_cves"``, ``"nodes"`` or ``"missing_critical"`` ... ``"missing_unspecified"``.
    scope
        ``"fleet"``, ``"platform"`` or ``"node"``.
    top
        How many groups get a line.

    Examples
    --------
    >>> import tempfile, matplotlib.pyplot as plt, patchframe as pf
    >>> from patchframe.history import plot_trend, save_snapshot, trend
    >>> fleet = pf.load_fleet(client=pf.sample_client(), progress=False)
    >>> with tempfile.TemporaryDirectory() as store:
    ...     _ = save_snapshot(fleet, store, when="2024-06-14")
    ...     _ = save_snapshot(fleet, store, when="2024-06-21")
    ...     figures = trend(store)
    >>> ax = plot_trend(figures)
    >>> ax.get_title(), [t.get_text() for t in ax.get_legend().get_texts()][:2]
    ('Missing and failed patches by severity', ['Critical', 'High'])
    >>> plt.close(ax.figure)
    """
    shown = check_top(top)
    if metric not in _TREND_METRICS:
        raise ValidationError(f"metric {metric!r}: expected one of {', '.join(_TREND_METRICS)}")
    if scope not in _SCOPES.categories:
        raise ValidationError(f"scope {scope!r}: expected 'fleet', 'platform' or 'node'")
    require_columns(data, ["time", "scope", "group", metric], needed_by="plot_trend")
    rows = data[(data["scope"] == scope).to_numpy(dtype=bool, na_value=False)]
    if ax is None:
        _, ax = plt.subplots(figsize=(9.0, 4.5), layout="constrained")
    label = _METRIC_LABELS[metric]
    ax.set_xlabel("snapshot (UTC)")
    ax.set_ylabel(label)
    if rows.empty:
        ax.set_title(f"{label.capitalize()} by {scope}")
        return no_data(ax, "no snapshots")
    times = pd.DatetimeIndex(rows["time"]).tz_convert("UTC").tz_localize(None)
    if metric == "missing" and scope == "fleet":
        _stacked_levels(ax, rows.set_index(times).sort_index())
    else:
        _lines(ax, rows.assign(time=times), metric, scope, shown)
    return over_time(ax)


def _stacked_levels(ax: Axes, rows: pd.DataFrame) -> None:
    levels = list(reversed(SEVERITY_LEVELS))  # worst first, at the bottom of the stack
    ax.stackplot(
        rows.index.to_numpy(),
        *(rows[c].to_numpy(dtype=np.float64) for c in _LEVEL_COLUMNS),
        labels=levels,
        colors=[severity_color(level) for level in levels],
    )
    ax.set_title("Missing and failed patches by severity")


def _lines(ax: Axes, rows: pd.DataFrame, metric: str, scope: str, shown: int) -> None:
    table = rows.pivot_table(index="time", columns="group", values=metric, aggfunc="sum")
    latest = table.ffill().iloc[-1].fillna(0)
    ranked = sorted(table.columns, key=lambda g: (-latest[g], str(g)))
    for group in ranked[:shown]:
        # A gap where the group was absent: a node that left, a platform not yet there.
        ax.plot(table.index.to_numpy(), table[group].to_numpy(), marker=".", label=str(group))
    title = f"{_METRIC_LABELS[metric].capitalize()} by {scope}"
    if len(ranked) > shown:
        title += f": top {shown} of {len(ranked):,}"
    ax.set_title(title)
